"""A single node against a 2-worker Citus cluster on the same machine: load, queries (p50/p95), refresh.

    python -m benchmarks.bench_cluster --scale medium [--runs 50] [--workers 2]

Citus comes from GITINSIGHT_PG_BINDIR, or is built with ../shared/citus/build.sh into GITINSIGHT_CITUS_CACHE
(default ~/.cache/gitinsight/citus, like the tests).
Both sides get the same synthetic data (same seed) in a fresh database; each query runs ``--runs`` times with
the same arguments after a warm-up call on each pooled connection (steady state: on Citus a new connection
first opens its worker connections). Prints a table and writes benchmarks/results/cluster-<scale>.json.
Targets (issue 10): the cluster's p95 within 3x the single node's and under 50 ms; its load within 2x.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from gitinsight_analytics import cluster, migrate, queries, server
from gitinsight_analytics.db import make_engine, sqlalchemy_url
from gitinsight_analytics.maintenance.refresh import refresh_repository_stats
from gitinsight_analytics.pgproc import free_port, free_port_block
from gitinsight_analytics.seed import load_synthetic
from gitinsight_analytics.settings import PoolSettings, load_settings

from ._support import recreate_database

RESULTS = Path(__file__).parent / "results"
SHARED_CITUS = Path(__file__).resolve().parents[2] / "shared" / "citus" / "build.sh"
POOL = 4
WARM_UP = POOL + 1


def citus_bindir() -> Path:
    """GITINSIGHT_PG_BINDIR, else the Citus build shared with the tests (GITINSIGHT_CITUS_CACHE)."""
    if os.environ.get("GITINSIGHT_PG_BINDIR"):
        return Path(os.environ["GITINSIGHT_PG_BINDIR"])
    cache = os.environ.get("GITINSIGHT_CITUS_CACHE") or Path.home() / ".cache" / "gitinsight" / "citus"
    return cluster.build_citus(SHARED_CITUS, Path(cache))


def _pick(engine, sql: str) -> str:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def measure(url: str, scale: str, runs: int) -> dict:
    engine = make_engine(url, pool=PoolSettings(size=POOL, max_overflow=POOL))
    migrate.upgrade(engine)
    started = time.perf_counter()
    load_synthetic(engine, scale=scale, seed=42, progress=False)
    load = time.perf_counter() - started
    started = time.perf_counter()
    refresh_repository_stats(engine)
    refresh = time.perf_counter() - started
    user = _pick(engine, "SELECT u.username FROM users u JOIN user_repository_follows f ON f.user_id = u.id "
                         "GROUP BY u.id, u.username HAVING count(*) BETWEEN 5 AND 50 ORDER BY count(*) DESC, "
                         "u.username LIMIT 1")
    repo = _pick(engine, "SELECT full_name FROM repositories ORDER BY stars DESC NULLS LAST, full_name LIMIT 1")
    calls = {
        "search": lambda: queries.search_repositories(engine, text="data", limit=20),
        "dashboard": lambda: queries.user_dashboard(engine, username=user, limit=50),
        "trending": lambda: queries.trending_by_score(engine, window_days=7, limit=25),
        "stats": lambda: queries.get_repository_stats(engine, full_name=repo),
    }
    timings = {}
    for name, call in calls.items():
        for _ in range(WARM_UP):  # every pooled connection once: on Citus a new one also opens worker connections
            call()
        seconds = []
        for _ in range(runs):
            t0 = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - t0)
        seconds.sort()
        timings[name] = {"p50_ms": 1000 * statistics.median(seconds),
                         "p95_ms": 1000 * seconds[max(0, int(0.95 * len(seconds)) - 1)]}
    engine.dispose()
    return {"load_s": load, "refresh_s": refresh, "queries": timings}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium", choices=["tiny", "small", "medium", "large"])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    bindir = citus_bindir()
    with tempfile.TemporaryDirectory(prefix="gi-bench-cluster-") as home:
        single = load_settings({"GITINSIGHT_HOME": f"{home}/single", "GITINSIGHT_PG_PORT": str(free_port())})
        multi = load_settings({"GITINSIGHT_HOME": f"{home}/multi", "GITINSIGHT_PG_BINDIR": str(bindir),
                               "GITINSIGHT_CLUSTER_PORT": str(free_port_block(args.workers + 1))})
        try:
            server.start(single)
            cluster.start(multi, workers=args.workers)
            results = {
                "single node": measure(sqlalchemy_url(recreate_database(server.server_url(single), "bench",
                                                                        migrated=False)), args.scale, args.runs),
                f"citus {args.workers} workers": measure(sqlalchemy_url(cluster.create_database(multi, "bench")),
                                                         args.scale, args.runs),
            }
        finally:
            server.stop(single)
            cluster.stop(multi)
    (one, many) = results.values()
    print(f"{'scale ' + args.scale:<22}{'single node':>14}{'citus':>14}{'ratio':>8}")
    rows = [("load (s)", one["load_s"], many["load_s"]), ("refresh (s)", one["refresh_s"], many["refresh_s"])]
    for name in one["queries"]:
        for q in ("p50_ms", "p95_ms"):
            rows.append((f"{name} {q.replace('_', ' (')})", one["queries"][name][q], many["queries"][name][q]))
    for label, a, b in rows:
        print(f"{label:<22}{a:>14.1f}{b:>14.1f}{b / a if a else float('nan'):>8.2f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"cluster-{args.scale}.json"
    out.write_text(json.dumps({"scale": args.scale, "runs": args.runs, "load_average": os.getloadavg(),
                               "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
