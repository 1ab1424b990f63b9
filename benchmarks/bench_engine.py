"""Analysis engine throughput: ``trend_prediction`` for every repository of one as-of day, with 1 and 2 workers.

    .venv/bin/python -m benchmarks.bench_engine                        # its own embedded server, real data
    .venv/bin/python -m benchmarks.bench_engine --as-of 2026-08-15 --batch 20

Starts a throwaway embedded server, imports ../shared/data/github-ranking/ into a fresh database, then for each
worker count: empties the queue and the engine's insights, enqueues one job per repository with a snapshot on the
as-of day, and runs the workers (separate processes for 2) until the queue is empty. Reports jobs/s over the
wall time of ``work`` (process start, model fit and every job included), the claim overhead per job (time inside
the claim transactions / jobs), and writes ``benchmarks/results/engine.json``. Target: ≤ 10 s with 2 workers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
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


def _reset(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM insights WHERE analysis_key IS NOT NULL"))
        conn.execute(sa.text("DELETE FROM analysis_jobs WHERE analysis_key IS NOT NULL"))


def run(engine: sa.engine.Engine, as_of: dt.date, workers: int, batch: int) -> dict[str, float]:
    _reset(engine)
    queued = enqueue(engine, "trend_prediction", as_of=as_of)["queued"]
    started = time.perf_counter()
    stats = work(engine, workers=workers, handlers=HANDLERS,
                 options=WorkerOptions(until_empty=True, batch=batch, poll_seconds=0.2))
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.text("SELECT status, COUNT(*) FROM analysis_jobs WHERE analysis_key IS NOT NULL "
                                           "GROUP BY status")).all())
    return {"workers": workers, "jobs": queued, "completed": stats.completed, "failed": stats.failed,
            "statuses": counts, "seconds": round(seconds, 2), "jobs_per_s": round(stats.completed / seconds, 1),
            "claims": stats.claims, "claim_ms_per_job": round(1000 * stats.claim_seconds / max(stats.completed, 1), 3)}


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
            rows = [run(engine, as_of, workers, args.batch) for workers in (1, 2)]
            engine.dispose()
        finally:
            server.stop(settings)
    print(f"{'workers':>7} {'jobs':>6} {'completed':>9} {'seconds':>8} {'jobs/s':>8} {'claim ms/job':>12}")
    for r in rows:
        print(f"{r['workers']:>7} {r['jobs']:>6} {r['completed']:>9} {r['seconds']:>8.2f} {r['jobs_per_s']:>8.1f} "
              f"{r['claim_ms_per_job']:>12.3f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"as_of": args.as_of, "batch": args.batch, "runs": rows,
                                   "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                               "load_average": os.getloadavg()}}, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(PROJECT_ROOT)}")


if __name__ == "__main__":
    main()
