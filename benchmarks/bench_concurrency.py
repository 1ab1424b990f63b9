"""Concurrency benchmark: the analyses called from T threads in each of P processes for a fixed time.

    .venv/bin/python -m benchmarks.bench_concurrency --scale medium [--duration 20] [--runs 1x20,1x60,8x20@pooler]
    .venv/bin/python -m benchmarks.bench_concurrency --database-url URL --pooler-url URL --reuse

Each thread calls, in a seeded random order, search_repositories, user_dashboard, trending_by_score,
trending_by_stars and get_repository_stats on the process's engine (``make_engine``: psycopg_pool behind
SQLAlchemy, 60 s statement timeout) with varied parameters, and records each call's latency (waiting for a
connection included) and any error. A run ``PxT[@direct|@pooler][:interactive|:service]`` starts P processes of
T threads, directly against the server or through PgBouncer in transaction mode, each process with the pool of
the given profile (default: ``service``, the spec's 20 + 30, for one process; ``interactive``, 2 + 3, for several:
they stand for notebook kernels). Prints calls/s and p50/p95/p99/max per query and the errors of each run, and
writes ``benchmarks/results/concurrency.json`` (with the machine's load average, since it is shared).

Without ``--database-url`` it starts its own embedded server and PgBouncer in a temporary GITINSIGHT_HOME and
loads ``--scale`` plus the real github-ranking import (as bench_queries does).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import random
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import text

from benchmarks._support import recreate_database, throwaway_server
from gitinsight_analytics import pooler, queries, server
from gitinsight_analytics.db import libpq_url, make_engine
from gitinsight_analytics.settings import POOL_PROFILES, PROJECT_ROOT, PoolSettings

__all__ = ["main", "parse_run", "QUERIES", "TARGETS"]

RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "concurrency.json"
QUERIES = ("search", "dashboard", "trending", "star_growth", "stats")
#: (processes, threads, route) -> p99 target in ms; each also needs 0 errors.
TARGETS = {(1, 60, "direct"): 2000.0, (8, 20, "pooler"): 3000.0}
DEFAULT_RUNS = ("1x1,1x20,1x60,1x60:interactive,1x60@pooler,8x20@direct,8x20@direct:service,8x20@pooler,"
                "8x20@pooler:service")


def parse_run(spec: str) -> dict[str, Any]:
    """``PxT[@direct|@pooler][:interactive|:service]`` as a dict."""
    body, _, profile = spec.partition(":")
    shape, _, route = body.partition("@")
    processes, _, threads = shape.lower().partition("x")
    p, t = int(processes), int(threads)
    route = route or "direct"
    profile = profile or ("service" if p == 1 else "interactive")
    if route not in {"direct", "pooler"} or profile not in POOL_PROFILES or p < 1 or t < 1:
        raise SystemExit(f"--runs: {spec!r} is not PxT[@direct|@pooler][:interactive|:service]")
    return {"spec": f"{p}x{t}@{route}:{profile}", "processes": p, "threads": t, "route": route, "profile": profile}


def parameters(url: str) -> dict[str, list[Any]]:
    """Parameter values for the calls: search words, languages, users with follows, repositories."""
    engine = make_engine(url, pool=PoolSettings(size=1, max_overflow=0))
    try:
        with engine.connect() as conn:
            words = [r[0] for r in conn.execute(text(
                "SELECT w FROM (SELECT DISTINCT lower(substring(name from '[A-Za-z]{4,}')) AS w FROM repositories "
                "WHERE name ~ '[A-Za-z]{4,}') t WHERE w IS NOT NULL ORDER BY w LIMIT 400"))]
            languages = [r[0] for r in conn.execute(text(
                "SELECT language FROM repositories WHERE language IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC "
                "LIMIT 8"))]
            users = [r[0] for r in conn.execute(text(
                "SELECT u.username FROM user_repository_follows f JOIN users u ON u.id = f.user_id "
                "GROUP BY u.username HAVING count(DISTINCT u.id) = 1 ORDER BY count(*) DESC LIMIT 200"))]
            repos = [r[0] for r in conn.execute(text(
                "SELECT full_name FROM repositories ORDER BY md5(id::text) LIMIT 500"))]
    finally:
        engine.dispose()
    return {"words": words, "languages": languages, "users": users, "repos": repos}


def _call(engine: Any, name: str, rng: random.Random, values: dict[str, list[Any]]) -> None:
    if name == "search":
        queries.search_repositories(engine, text=rng.choice(values["words"]),
                                    language=rng.choice([None, None, *values["languages"]]),
                                    min_stars=rng.choice([None, 0, 10]), limit=20)
    elif name == "dashboard":
        queries.user_dashboard(engine, username=rng.choice(values["users"]))
    elif name == "trending":
        queries.trending_by_score(engine, language=rng.choice([None, *values["languages"]]))
    elif name == "star_growth":
        queries.trending_by_stars(engine, window_days=rng.choice([7, 7, 30]))
    else:
        queries.get_repository_stats(engine, full_name=rng.choice(values["repos"]))


def _worker(url: str, profile: str, threads: int, ready: Any, duration: float,
            values: dict[str, list[Any]], seed: int, out: Any) -> None:
    """One process: ``threads`` threads calling the analyses for ``duration`` s once every process is ready."""
    size, overflow = POOL_PROFILES[profile]
    engine = make_engine(url, pool=PoolSettings(size=size, max_overflow=overflow, profile=profile),
                         statement_timeout=60)
    _call(engine, "stats", random.Random(seed), values)  # imports done, pool opened
    records: list[tuple[str, float, str | None]] = []
    lock = threading.Lock()
    ready.wait()  # all processes start together
    start_at = time.time()

    def run(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        mine: list[tuple[str, float, str | None]] = []
        while time.time() < start_at + duration:
            name = rng.choice(QUERIES)
            started = time.perf_counter()
            error = None
            try:
                _call(engine, name, rng, values)
            except Exception as exc:  # recorded, not raised: the benchmark counts errors
                error = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]}"
            mine.append((name, (time.perf_counter() - started) * 1000, error))
        with lock:
            records.extend(mine)

    cpu_before = time.process_time()
    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    cpu = time.process_time() - cpu_before
    engine.dispose()
    out.put((records, cpu))


def _proc_cpu(pid: int) -> tuple[int, float, float]:
    """(parent pid, CPU seconds of the process, CPU seconds of its reaped children) from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def server_cpu(url: str) -> float | None:
    """CPU seconds the server's processes have used so far: the postmaster, its reaped children (backends that
    ended) and its live ones. None when the server is not on this machine (or /proc is missing)."""
    try:
        engine = make_engine(url, pool=PoolSettings(size=1, max_overflow=0))
        try:
            with engine.connect() as conn:  # the backend's parent, read while it runs
                postmaster = _proc_cpu(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())[0]
        finally:
            engine.dispose()
        _, own, reaped = _proc_cpu(postmaster)
        total = own + reaped
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parent, cpu, _ = _proc_cpu(int(entry.name))
                except (OSError, ValueError, IndexError):
                    continue  # ended meanwhile
                total += cpu if parent == postmaster else 0.0
        return total
    except (OSError, ValueError, IndexError):
        return None


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))] if ordered else float("nan")


def _figures(times: list[float], duration: float) -> dict[str, float]:
    ordered = sorted(times)
    return {"calls": len(ordered), "calls_per_s": len(ordered) / duration, "p50_ms": _percentile(ordered, 0.50),
            "p95_ms": _percentile(ordered, 0.95), "p99_ms": _percentile(ordered, 0.99),
            "max_ms": ordered[-1] if ordered else float("nan")}


def _cpu_figures(client: float, server_before: float | None, server_after: float | None,
                 calls: int) -> dict[str, float | None]:
    """CPU seconds of the run's processes and of the server, and both per call in ms: what the call mix costs
    whatever else the machine runs (PgBouncer's own CPU is not counted)."""
    server = None if server_before is None or server_after is None else server_after - server_before
    def per_call(seconds: float | None) -> float | None:
        return None if seconds is None or not calls else 1000 * seconds / calls

    return {"client_s": client, "server_s": server, "client_ms_per_call": per_call(client),
            "server_ms_per_call": per_call(server)}


def run_one(run: dict[str, Any], url: str, duration: float, values: dict[str, list[Any]],
            server_url: str | None = None) -> dict[str, Any]:
    """Start the run's processes, wait for them, and summarise (server CPU read through ``server_url``, a
    direct connection: default ``url``)."""
    server_url = server_url or url
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    ready = ctx.Barrier(run["processes"] + 1)
    procs = [ctx.Process(target=_worker, args=(url, run["profile"], run["threads"], ready, duration, values,
                                               i + 1, out)) for i in range(run["processes"])]
    for p in procs:
        p.start()
    ready.wait(timeout=300)
    load_before = os.getloadavg()
    server_before = server_cpu(server_url)
    records: list[tuple[str, float, str | None]] = []
    client_cpu = 0.0
    for _ in procs:
        mine, cpu = out.get(timeout=duration + 300)
        records.extend(mine)
        client_cpu += cpu
    server_after = server_cpu(server_url)
    for p in procs:
        p.join()
    ok = [r for r in records if r[2] is None]
    summary = {**run, "duration_s": duration, "load_average_before": load_before,
               "load_average_after": os.getloadavg(), "all": _figures([r[1] for r in ok], duration),
               "errors": sum(1 for r in records if r[2] is not None),
               "cpu": _cpu_figures(client_cpu, server_before, server_after, len(records)),
               "error_kinds": dict(Counter(r[2] for r in records if r[2] is not None).most_common(5)),
               "per_query": {q: {**_figures([r[1] for r in ok if r[0] == q], duration),
                                 "errors": sum(1 for r in records if r[0] == q and r[2] is not None)}
                             for q in QUERIES}}
    target = TARGETS.get((run["processes"], run["threads"], run["route"]))
    if target is not None:
        summary["target"] = {"p99_ms": target, "met": summary["errors"] == 0 and summary["all"]["p99_ms"] <= target}
    return summary


def _print(result: dict[str, Any]) -> None:
    print(f"\n{result['spec']}: {result['all']['calls_per_s']:.1f} calls/s, {result['errors']} errors, load average "
          f"{result['load_average_before'][0]:.1f} -> {result['load_average_after'][0]:.1f}")
    print(f"  {'query':12s} {'calls':>6s} {'calls/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} "
          f"{'max ms':>8s} {'errors':>6s}")
    for name, f in [*result["per_query"].items(), ("all", {**result["all"], "errors": result["errors"]})]:
        print(f"  {name:12s} {f['calls']:6d} {f['calls_per_s']:8.1f} {f['p50_ms']:8.1f} {f['p95_ms']:8.1f} "
              f"{f['p99_ms']:8.1f} {f['max_ms']:8.1f} {f['errors']:6d}")
    cpu = result["cpu"]
    if cpu["server_ms_per_call"] is not None:
        print(f"  CPU per call: {cpu['client_ms_per_call']:.1f} ms client + {cpu['server_ms_per_call']:.1f} ms server")
    for kind, count in result["error_kinds"].items():
        print(f"  error ×{count}: {kind}")
    if "target" in result:
        t = result["target"]
        print(f"  target: 0 errors and p99 ≤ {t['p99_ms']:g} ms: {'met' if t['met'] else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run (default 20)")
    parser.add_argument("--runs", default=DEFAULT_RUNS, help=f"comma-separated (default {DEFAULT_RUNS})")
    parser.add_argument("--database-url", default=None, help="a server's database (default: its own server)")
    parser.add_argument("--pooler-url", default=None, help="the same database through PgBouncer")
    parser.add_argument("--reuse", action="store_true", help="use --database-url as it is (already loaded)")
    args = parser.parse_args(argv)
    runs = [parse_run(s.strip()) for s in args.runs.split(",") if s.strip()]

    home = settings = None
    try:
        if args.database_url:
            url = (args.database_url if args.reuse
                   else recreate_database(args.database_url, f"gi_bench_concurrency_{args.scale}", migrated=False))
            pooled = args.pooler_url
        else:
            home = tempfile.TemporaryDirectory(prefix="gi-bench-concurrency-")
            settings = throwaway_server(Path(home.name))
            name = f"gi_bench_concurrency_{args.scale}"
            url = recreate_database(server.server_url(settings), name, migrated=False)
            pooler.start(settings)
            pooled = pooler.pooler_url(settings, name)
        if not args.reuse:
            from benchmarks.bench_queries import load

            engine = make_engine(url, pool=PoolSettings(size=2, max_overflow=2))
            load(engine, args.scale)
            engine.dispose()
        values = parameters(url)
        results = []
        for run in runs:
            if run["route"] == "pooler" and not pooled:
                print(f"\n{run['spec']}: skipped (no --pooler-url)")
                continue
            result = run_one(run, libpq_url(pooled if run["route"] == "pooler" else url), args.duration, values,
                             libpq_url(url))
            _print(result)
            results.append(result)
    finally:
        if settings is not None:
            pooler.stop(settings)
            server.stop(settings)
        if home is not None:
            home.cleanup()
    report = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "scale": args.scale,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "runs": results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwritten {RESULTS.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
