"""Benchmark of compare and alerts on the real GitHub ranking data (all files imported into a scratch database).

    .venv/bin/python -m benchmarks.bench_alerts [--data ../shared/data/github-ranking] [--runs 5] [--users 100]
        [--follows 20]

Uses the configured server (DATABASE_URL, else the embedded one of GITINSIGHT_HOME) but its own scratch database,
created from nothing, migrated, and dropped afterwards. Cases: ``compare_repositories`` of 2, 5 and 10 of the most
starred repositories (whole history, and the daily window only); ``run_alerts`` for ``--users`` users each
following ``--follows`` repositories (first run: finds, stores and writes every digest; second run: nothing new).
Prints a table and writes benchmarks/results/alerts.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from benchmarks._support import drop_database, recreate_database
from gitinsight_analytics.alerts import run_alerts
from gitinsight_analytics.db import make_engine, resolve_url
from gitinsight_analytics.queries import compare_repositories
from gitinsight_analytics.seed.github_ranking import import_github_ranking
from gitinsight_analytics.settings import PROJECT_ROOT, PoolSettings, load_settings

__all__ = ["main"]

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "github-ranking"
RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "alerts.json"
DB_NAME = "gi_bench_alerts"


def _median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--follows", type=int, default=20)
    args = parser.parse_args(argv)
    base = resolve_url(load_settings())
    url = recreate_database(base, DB_NAME)
    engine = make_engine(url, pool=PoolSettings(size=2, max_overflow=2))
    rows: list[dict[str, object]] = []
    try:
        import_github_ranking(engine, sorted(args.data.glob("github-ranking-*.csv")), progress=False)
        with engine.connect() as conn:
            top = list(conn.execute(text(
                "SELECT r.full_name FROM repositories r ORDER BY r.stars DESC NULLS LAST, r.full_name LIMIT 10"))
                .scalars())
            daily_start = conn.execute(text("SELECT max(snapshot_date) - 34 FROM repository_snapshots")).scalar()
        for count in (2, 5, 10):
            for label, start in (("whole history", None), ("daily window", daily_start)):
                ms = _median_ms(lambda c=count, s=start: compare_repositories(engine, top[:c], start=s), args.runs)
                rows.append({"case": f"compare {count} repositories, {label}", "median_ms": ms})
        rng = random.Random(42)
        with engine.begin() as conn:
            ids = list(conn.execute(text("SELECT id FROM repositories")).scalars())
            for k in range(args.users):
                uid = conn.execute(text("INSERT INTO users (github_id, username, email) VALUES (:g, :u, NULL) "
                                        "RETURNING id"), {"g": 900_000 + k, "u": f"bench-user-{k}"}).scalar()
                conn.execute(text("INSERT INTO user_repository_follows (user_id, repository_id) "
                                  "SELECT :u, unnest(CAST(:r AS uuid[]))"),
                             {"u": uid, "r": [str(r) for r in rng.sample(ids, args.follows)]})
        with tempfile.TemporaryDirectory() as reports:
            for label in ("first run (find, store, write digests)", "second run (nothing new)"):
                started = time.perf_counter()
                result = run_alerts(engine, reports_dir=Path(reports), lookback_days=7)
                seconds = time.perf_counter() - started
                rows.append({"case": f"alerts run, {args.users} users x {args.follows} follows, {label}",
                             "median_ms": round(seconds * 1000, 1), "users": len(result.users),
                             "new": sum(u.new for u in result.users),
                             "delivered": sum(u.delivered for u in result.users),
                             "ms_per_user": round(seconds * 1000 / max(len(result.users), 1), 1)})
    finally:
        engine.dispose()
        drop_database(base, DB_NAME)
    report = {"measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": platform.node(),
              "cpus": os.cpu_count(), "load_average": os.getloadavg(), "runs": args.runs, "results": rows}
    print(f"{'case':<78} {'ms':>9}  notes")
    for row in rows:
        notes = ", ".join(f"{k}={v}" for k, v in row.items() if k not in {"case", "median_ms"})
        print(f"{row['case']:<78} {row['median_ms']:>9}  {notes}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
