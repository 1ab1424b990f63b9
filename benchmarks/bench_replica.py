"""Read replica benchmark: what `gitinsight db replica start` costs, how far behind the replica runs, and
whether analyses are as fast on it as on the primary.

    .venv/bin/python -m benchmarks.bench_replica --scale small

Starts its own embedded PostgreSQL in a temporary GITINSIGHT_HOME (``wal_level = minimal``, as by default), loads
``scale`` there, then, in one run:

1. ``replica.start``: restart of the primary with ``wal_level = replica``, pg_basebackup of the loaded cluster,
   start of the hot standby until it streams: wall time and size of the replica's data directory;
2. commit-to-visible latency: ``--commits`` single-row commits on the primary, each polled for on the replica
   until it is visible there (p50/p95/max);
3. a bulk write with the replica streaming: ``load_synthetic(replace=True)`` of the same scale on the primary
   (now with full WAL) and the time the replica then needs to replay it (``wait_for_replay``), with the WAL bytes;
4. p50/p95 of four analyses on the primary and on the replica (alternating, same machine load).

No targets: it measures. Prints a table and writes ``benchmarks/results/replica-<scale>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

from gitinsight_analytics import migrate, queries, replica, server
from gitinsight_analytics.db import make_engine
from gitinsight_analytics.pgproc import free_port
from gitinsight_analytics.seed import load_synthetic
from gitinsight_analytics.settings import PoolSettings, Settings, load_settings

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
POOL = PoolSettings(size=2, max_overflow=2)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _summary(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2), "max_ms": round(ordered[-1], 2)}


def start_step(settings: Settings) -> dict[str, Any]:
    clock = time.perf_counter()
    done = replica.start(settings)
    seconds = time.perf_counter() - clock
    return {"seconds": round(seconds, 2), "actions": done.actions, "replica_bytes": _dir_bytes(settings.replica_dir)}


def visibility_step(primary_url: str, replica_url: str, commits: int) -> dict[str, Any]:
    """Commit one row at a time on the primary; time until the replica sees it."""
    times: list[float] = []
    with psycopg.connect(primary_url, autocommit=True) as primary:
        primary.execute("CREATE TABLE IF NOT EXISTS bench_replica_probe (n int PRIMARY KEY)")
        with psycopg.connect(replica_url, autocommit=True) as standby:
            deadline = time.monotonic() + 30
            while not standby.execute("SELECT to_regclass('bench_replica_probe') IS NOT NULL").fetchone()[0]:
                if time.monotonic() > deadline:
                    raise SystemExit("the probe table never reached the replica")
                time.sleep(0.01)
            for n in range(commits):
                primary.execute("INSERT INTO bench_replica_probe VALUES (%s)", (n,))
                clock = time.perf_counter()
                while not standby.execute("SELECT EXISTS (SELECT 1 FROM bench_replica_probe WHERE n = %s)",
                                          (n,)).fetchone()[0]:
                    time.sleep(0.0005)
                times.append((time.perf_counter() - clock) * 1000)
        primary.execute("DROP TABLE bench_replica_probe")
    return {"commits": commits, **_summary(times)}


def bulk_step(engine: Engine, primary_url: str, replica_url: str, scale: str, seed: int) -> dict[str, Any]:
    with psycopg.connect(primary_url, autocommit=True) as conn:
        before = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    clock = time.perf_counter()
    result = load_synthetic(engine, scale=scale, seed=seed, replace=True, progress=False)
    load_s = time.perf_counter() - clock
    clock = time.perf_counter()
    replica.wait_for_replay(primary_url, replica_url, timeout=3600)
    replay_s = time.perf_counter() - clock
    with psycopg.connect(primary_url, autocommit=True) as conn:
        wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (before,)).fetchone()[0]
    return {"rows": result.total_rows, "load_seconds": round(load_s, 2), "replay_after_commit_seconds":
            round(replay_s, 2), "wal_bytes": int(wal)}


def queries_step(primary: Engine, standby: Engine, runs: int, warmup: int = 3) -> dict[str, Any]:
    analyses: dict[str, Callable[[Engine], Any]] = {
        "search_repositories": lambda e: queries.search_repositories(e, text="data", limit=20),
        "trending_by_stars": lambda e: queries.trending_by_stars(e, window_days=7, limit=50),
        "repository_stats": lambda e: queries.repository_stats(e, limit=50),
        "job_failure_rates": lambda e: queries.job_failure_rates(e),
    }
    figures: dict[str, Any] = {}
    for name, run in analyses.items():
        times: dict[str, list[float]] = {"primary": [], "replica": []}
        for i in range(warmup + runs):
            for where, engine in (("primary", primary), ("replica", standby)):
                clock = time.perf_counter()
                run(engine)
                if i >= warmup:
                    times[where].append((time.perf_counter() - clock) * 1000)
        figures[name] = {where: _summary(values) for where, values in times.items()}
    return figures


def report(scale: str, figures: dict[str, Any]) -> None:
    start, seen, bulk = figures["start"], figures["visibility"], figures["bulk"]
    print(f"\nread replica, {scale} scale")
    print(f"  replica start (restart primary + pg_basebackup + stream): {start['seconds']:8.2f} s, "
          f"{start['replica_bytes'] / 1e6:,.0f} MB")
    print(f"  commit -> visible on replica ({seen['commits']} commits):   p50 {seen['p50_ms']:.2f} ms, "
          f"p95 {seen['p95_ms']:.2f} ms, max {seen['max_ms']:.2f} ms")
    print(f"  bulk load on primary while streaming ({bulk['rows']:,} rows): {bulk['load_seconds']:.2f} s, "
          f"{bulk['wal_bytes'] / 1e6:,.0f} MB WAL (first load, wal_level=minimal: {figures['load_minimal_seconds']:.2f}"
          f" s); replica replayed it {bulk['replay_after_commit_seconds']:.2f} s after the commit")
    print(f"  {'analysis':<22} {'primary p50':>12} {'p95':>9} {'replica p50':>12} {'p95':>9}")
    for name, pair in figures["queries"].items():
        p, r = pair["primary"], pair["replica"]
        print(f"  {name:<22} {p['p50_ms']:>10.2f}ms {p['p95_ms']:>7.2f}ms {r['p50_ms']:>10.2f}ms {r['p95_ms']:>7.2f}ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["tiny", "small", "medium", "large"], default="small")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--commits", type=int, default=200)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"scale": args.scale}
    with tempfile.TemporaryDirectory(prefix="gitinsight-bench-replica-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)  # the servers' system user (as root) must reach it
        settings = load_settings({"GITINSIGHT_HOME": str(folder / "home"), "GITINSIGHT_PG_PORT": str(free_port()),
                                  "GITINSIGHT_REPLICA_PORT": str(free_port())})
        primary_url, replica_url = server.server_url(settings), replica.replica_url(settings)
        engines: list[Engine] = []
        try:
            server.start(settings)
            engine = make_engine(primary_url, pool=POOL)
            engines.append(engine)
            migrate.upgrade(engine)
            print(f"load {args.scale} (wal_level=minimal) ...", flush=True)
            clock = time.perf_counter()
            load_synthetic(engine, scale=args.scale, seed=args.seed, progress=False)
            figures["load_minimal_seconds"] = round(time.perf_counter() - clock, 2)
            print("replica start ...", flush=True)
            figures["start"] = start_step(settings)
            print(f"commit-to-visible latency, {args.commits} commits ...", flush=True)
            figures["visibility"] = visibility_step(primary_url, replica_url, args.commits)
            print("bulk load while streaming ...", flush=True)
            engine.dispose()
            figures["bulk"] = bulk_step(engine, primary_url, replica_url, args.scale, args.seed)
            standby = make_engine(replica_url, pool=POOL)
            engines.append(standby)
            print(f"analyses on primary and replica, {args.runs} runs each ...", flush=True)
            figures["queries"] = queries_step(engine, standby, args.runs)
            with psycopg.connect(primary_url) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
        finally:
            for made in engines:
                made.dispose()
            with contextlib.suppress(Exception):
                replica.stop(settings, remove=True)
            server.stop(settings)
    figures["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "postgresql": version,
                          "load_average_at_end": os.getloadavg()}
    report(args.scale, figures)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"replica-{args.scale}.json"
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
