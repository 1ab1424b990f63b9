"""Benchmark of the GitHub ranking import (target: all files in <= 20 s on the 2-core machine).

    .venv/bin/python -m benchmarks.bench_import [--data ../shared/data/github-ranking] [--runs 1]

Uses the configured server (DATABASE_URL, else the embedded one of GITINSIGHT_HOME) but its own scratch
databases, created from nothing, migrated, and dropped afterwards. Cases: the full import into an empty database;
the same import again (every file skipped); one new day on top of all the others (the daily routine). Prints a
table and writes benchmarks/results/import.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from benchmarks._support import drop_database, recreate_database
from gitinsight_analytics.db import make_engine, resolve_url
from gitinsight_analytics.seed.github_ranking import import_github_ranking
from gitinsight_analytics.settings import PROJECT_ROOT, PoolSettings, load_settings

__all__ = ["main"]

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "github-ranking"
RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "import.json"


class Scratch:
    """A freshly migrated database on the configured server, dropped on exit."""

    def __init__(self, base_url: str, name: str) -> None:
        self.base_url = base_url
        self.name = name
        self.engine: Engine | None = None

    def __enter__(self) -> Engine:
        url = recreate_database(self.base_url, self.name)
        self.engine = make_engine(url, pool=PoolSettings(size=2, max_overflow=2))
        return self.engine

    def __exit__(self, *exc: object) -> None:
        if self.engine is not None:
            self.engine.dispose()
        drop_database(self.base_url, self.name)


def _timed(engine: Engine, paths: list[Path]) -> dict[str, object]:
    started = time.perf_counter()
    result = import_github_ranking(engine, paths, progress=False)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "files_read": result.files_read, "files_skipped": result.files_skipped,
            "snapshots_added": result.snapshots_added, "repositories_created": result.repositories_created,
            "renames": result.renames,
            "snapshots_per_s": round(result.snapshots_added / seconds) if result.snapshots_added else 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of github-ranking-*.csv")
    parser.add_argument("--runs", type=int, default=1, help="repeat the full import N times, report the best")
    args = parser.parse_args(argv)
    files = sorted(args.data.glob("github-ranking-*.csv"))
    if not files:
        parser.error(f"no github-ranking-*.csv in {args.data}")
    base_url = resolve_url(load_settings())
    name = f"gi_bench_import_{os.getpid()}"
    cases: dict[str, dict[str, object]] = {}
    for run in range(args.runs):
        with Scratch(base_url, name) as engine:
            full = _timed(engine, files)
            if "full import" not in cases or full["seconds"] < cases["full import"]["seconds"]:  # type: ignore[operator]
                cases["full import"] = full
            if run == 0:
                cases["same files again"] = _timed(engine, files)
                with engine.connect() as conn:
                    version = conn.execute(text("SHOW server_version")).scalar()
    with Scratch(base_url, name) as engine:
        import_github_ranking(engine, files[:-1], progress=False)
        cases["one new day"] = _timed(engine, files[-1:])

    print(f"{'case':<18} {'seconds':>8} {'files':>6} {'skipped':>8} {'snapshots':>10} {'snap/s':>8} {'renames':>8}")
    for case, row in cases.items():
        print(f"{case:<18} {row['seconds']:>8} {row['files_read']:>6} {row['files_skipped']:>8} "
              f"{row['snapshots_added']:>10} {row['snapshots_per_s']:>8} {row['renames']:>8}")
    target = 20.0
    verdict = "meets" if cases["full import"]["seconds"] <= target else "MISSES"  # type: ignore[operator]
    seconds = cases["full import"]["seconds"]
    print(f"full import of {len(files)} files: {seconds} s ({verdict} the {target:.0f} s target)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "github-ranking import", "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": len(files), "data": str(args.data), "target_seconds": target, "cases": cases,
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version(),
                    "postgresql": version},
    }, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
