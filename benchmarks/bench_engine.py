"""Analysis engine throughput: ``trend_prediction`` for every repository of one as-of day, with 1 and 2 workers.

    .venv/bin/python -m benchmarks.bench_engine                        # its own embedded server, real data
    .venv/bin/python -m benchmarks.bench_engine --as-of 2026-08-15 --batch 20

Starts a throwaway embedded server, imports ../shared/data/github-ranking/ into a fresh database, then for each
worker count: empties the queue and the engine's insights, enqueues one job per repository with a snapshot on the
as-of day, and runs the workers (separate processes for 2) until the queue is empty. Reports jobs/s over the
wall time of ``work`` (process start, model fit and every job included), the claim overhead per job (time inside
the claim transactions / jobs), the CPU seconds spent by the benchmark's processes and by the server (Linux
``/proc``: on a shared machine the wall time mostly measures the other processes, the CPU time does not), and
writes ``benchmarks/results/engine.json``. Target: ≤ 10 s with 2 workers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from benchmarks._support import recreate_database, throwaway_server
from gitinsight_analytics import server
from gitinsight_analytics.analysis import WorkerOptions, enqueue, work
from gitinsight_analytics.db import make_engine
from gitinsight_analytics.seed import import_github_ranking
from gitinsight_analytics.settings import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "engine.json"
HANDLERS = {"trend_prediction": "gitinsight_analytics.analysis.registry:run_insight_job"}


def _client_cpu() -> float:
    """CPU seconds of this process and of its ended children (the worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _server_cpu(pgdata: Path) -> float:
    """CPU seconds of the server: the postmaster with its reaped children, plus the live backends (NaN off Linux)."""
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        tick, total = os.sysconf("SC_CLK_TCK"), 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            if int(pid) == postmaster:
                total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
            elif int(fields[1]) == postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / tick
    except (OSError, ValueError):
        return float("nan")


def _reset(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM insights WHERE analysis_key IS NOT NULL"))
        conn.execute(sa.text("DELETE FROM analysis_jobs WHERE analysis_key IS NOT NULL"))


def run(engine: sa.engine.Engine, as_of: dt.date, workers: int, batch: int, pgdata: Path) -> dict[str, float]:
    _reset(engine)
    queued = enqueue(engine, "trend_prediction", as_of=as_of)["queued"]
    load = os.getloadavg()[0]
    client, server_cpu = _client_cpu(), _server_cpu(pgdata)
    started = time.perf_counter()
    stats = work(engine, workers=workers, handlers=HANDLERS,
                 options=WorkerOptions(until_empty=True, batch=batch, poll_seconds=0.2))
    seconds = time.perf_counter() - started
    client, server_cpu = _client_cpu() - client, _server_cpu(pgdata) - server_cpu
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.text("SELECT status, COUNT(*) FROM analysis_jobs WHERE analysis_key IS NOT NULL "
                                           "GROUP BY status")).all())
    return {"workers": workers, "jobs": queued, "completed": stats.completed, "failed": stats.failed,
            "statuses": counts, "seconds": round(seconds, 2), "jobs_per_s": round(stats.completed / seconds, 1),
            "claims": stats.claims, "claim_ms_per_job": round(1000 * stats.claim_seconds / max(stats.completed, 1), 3),
            "client_cpu_s": round(client, 2), "server_cpu_s": round(server_cpu, 2), "load_average": round(load, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-of", default="2026-08-15")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--data", default=str(PROJECT_ROOT.parent / "shared" / "data" / "github-ranking"))
    args = parser.parse_args()
    as_of = dt.date.fromisoformat(args.as_of)
    with tempfile.TemporaryDirectory(prefix="gi-bench-engine-") as home:
        settings = throwaway_server(Path(home))
        try:
            url = recreate_database(server.server_url(settings), "gi_bench_engine")
            engine = make_engine(url)
            import_github_ranking(engine, [Path(args.data)], progress=False)
            rows = [run(engine, as_of, workers, args.batch, settings.pgdata) for workers in (1, 2)]
            engine.dispose()
        finally:
            server.stop(settings)
    print(f"{'workers':>7} {'jobs':>6} {'completed':>9} {'seconds':>8} {'jobs/s':>8} {'claim ms/job':>12} "
          f"{'client cpu s':>12} {'server cpu s':>12} {'load':>5}")
    for r in rows:
        print(f"{r['workers']:>7} {r['jobs']:>6} {r['completed']:>9} {r['seconds']:>8.2f} {r['jobs_per_s']:>8.1f} "
              f"{r['claim_ms_per_job']:>12.3f} {r['client_cpu_s']:>12.2f} {r['server_cpu_s']:>12.2f} "
              f"{r['load_average']:>5.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"as_of": args.as_of, "batch": args.batch, "runs": rows,
                                   "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                               "load_average": os.getloadavg()}}, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
