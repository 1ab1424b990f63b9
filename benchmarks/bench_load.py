"""Load benchmark: the synthetic loader against raw COPY and pandas ``to_sql``, with peak memory and wall time.

    .venv/bin/python -m benchmarks.bench_load --scale medium

Starts its own embedded PostgreSQL in a temporary GITINSIGHT_HOME (or uses the server of DATABASE_URL, creating
and dropping scratch databases there), then, in one run:

1. the loader (``load_synthetic``) in a child process on a freshly migrated database: its wall time (generate +
   load + index + analyze + view refresh), phases, rows/s, and the child's peak RSS (the server's memory is
   separate and not counted);
2. raw COPY of exactly the same rows, written to files first, into bare tables (no index, key or constraint):
   the practical limit of the server;
3. ``pandas.DataFrame.to_sql`` of a slice of the same insights rows (what an analyst would otherwise write).

Prints a table and writes ``benchmarks/results/load-<scale>.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from benchmarks._support import drop_database, recreate_database, throwaway_server
from gitinsight_analytics import server

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
TABLES = ("users", "repositories", "insights", "analysis_jobs", "user_repository_follows", "api_keys", "audit_logs")
TARGETS = {"wall_seconds_medium": 60.0, "vs_raw_copy": 0.7, "vs_to_sql": 10.0, "peak_rss_mb": 400.0}


def _server(home: Path) -> tuple[str, object | None]:
    """(URL of the server to use, settings to stop it with or None): DATABASE_URL's, else a throwaway one."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], None
    settings = throwaway_server(home)
    return server.server_url(settings), settings


def worker(url: str, scale: str, seed: int) -> None:
    """Child process: the loader alone, as ``gitinsight seed`` runs it; prints its LoadResult as JSON."""
    started = time.perf_counter()
    from gitinsight_analytics.db import make_engine
    from gitinsight_analytics.seed.synthetic import load_synthetic

    result = load_synthetic(make_engine(url), scale=scale, seed=seed, progress=False)
    print(json.dumps({"rows": dict(result.rows), "seconds": result.seconds, "phases": dict(result.phase_seconds),
                      "tables": dict(result.table_seconds), "steps": dict(result.step_seconds),
                      "wall_in_process": time.perf_counter() - started}))


def run_loader(url: str, scale: str, seed: int) -> dict:
    """Run :func:`worker` in a child; sample its RSS every 0.2 s; return its figures plus memory and wall time."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_load", "--worker", url, scale, str(seed)],
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    proc, samples = psutil.Process(child.pid), []
    while child.poll() is None:
        try:
            samples.append((round(time.perf_counter() - started, 1), proc.memory_info().rss / 2**20))
        except psutil.Error:
            break
        time.sleep(0.2)
    out, _ = child.communicate()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"loader failed with exit code {child.returncode}")
    figures = json.loads(out.strip().splitlines()[-1])
    figures["wall_seconds"] = wall
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    step = max(1, len(samples) // 10)
    figures["rss_timeline_mb"] = [[t, round(m)] for t, m in samples[::step]]
    return figures


def write_files(folder: Path, scale: str, seed: int) -> dict[str, tuple[Path, tuple[str, ...], int]]:
    """The loader's exact rows as COPY text files, one per table (not timed)."""
    from gitinsight_analytics.seed.synthetic import synthetic_sources

    files = {}
    for source in synthetic_sources(scale, seed):
        path, rows = folder / f"{source.table}.copy", 0
        with open(path, "wb") as handle:
            for block, n in source.blocks():
                handle.write(block if isinstance(block, bytes) else block.encode())
                rows += n
        files[source.table] = (path, source.columns, rows)
    return files


def raw_copy(url: str, files: dict) -> dict:
    """COPY the files into bare tables (LIKE the real ones: no index, key, constraint or partitioning)."""
    with psycopg.connect(url) as conn:
        for table in files:
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                sql.Identifier(f"bare_{table}"), sql.Identifier(table)))
        conn.commit()
        started, per_table = time.perf_counter(), {}
        for table, (path, columns, _rows) in files.items():
            t0 = time.perf_counter()
            query = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(f"bare_{table}"),
                                                             sql.SQL(", ").join(map(sql.Identifier, columns)))
            with conn.cursor() as cur, cur.copy(query) as copy, open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
            per_table[table] = time.perf_counter() - t0
        conn.commit()
        seconds = time.perf_counter() - started
    total = sum(r for _p, _c, r in files.values())
    return {"seconds": seconds, "rows": total, "rows_per_second": total / seconds, "tables": per_table}


def to_sql(url: str, files: dict, rows: int) -> dict:
    """``DataFrame.to_sql`` of the first ``rows`` insights, typed as an analyst must (uuid, jsonb, text[])."""
    import pandas as pd
    from sqlalchemy.dialects import postgresql as pg

    from gitinsight_analytics.db import make_engine

    path, columns, _total = files["insights"]
    frame = pd.read_csv(path, sep="\t", names=list(columns), nrows=rows, quoting=csv.QUOTE_NONE,
                        na_values=["\\N"], keep_default_na=False)
    frame["data"] = frame["data"].map(json.loads)
    frame["tags"] = frame["tags"].map(lambda s: s.strip("{}").split(",") if s != "{}" else [])
    for column in ("generated_at", "created_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE tosql_insights (LIKE insights INCLUDING DEFAULTS)")
    types = {"id": pg.UUID(as_uuid=False), "repository_id": pg.UUID(as_uuid=False), "data": pg.JSONB(),
             "tags": pg.ARRAY(pg.TEXT())}
    started = time.perf_counter()
    frame.to_sql("tosql_insights", engine, if_exists="append", index=False, dtype=types, chunksize=10_000)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"rows": len(frame), "seconds": seconds, "rows_per_second": len(frame) / seconds}


def report(scale: str, loader: dict, raw: dict, pandas: dict) -> dict:
    total = sum(loader["rows"].values())
    copy_rate = total / loader["phases"]["copy"]
    end_to_end = total / loader["wall_seconds"]
    insights_rate = loader["rows"]["insights"] / loader["tables"]["insights"]
    result = {
        "scale": scale, "rows": loader["rows"], "total_rows": total,
        "loader": {**loader, "copy_rows_per_second": copy_rate, "end_to_end_rows_per_second": end_to_end,
                   "insights_rows_per_second": insights_rate},
        "raw_copy": raw, "to_sql": pandas,
        "ratios": {"loader_copy_vs_raw_copy": copy_rate / raw["rows_per_second"],
                   "loader_end_to_end_vs_raw_copy": end_to_end / raw["rows_per_second"],
                   "loader_insights_vs_to_sql": insights_rate / pandas["rows_per_second"],
                   "loader_end_to_end_vs_to_sql": end_to_end / pandas["rows_per_second"]},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_end": os.getloadavg()},
        "targets": TARGETS,
    }
    lines = [
        ("rows (all tables)", f"{total:,}"),
        ("loader wall: generate+load+index+analyze+refresh", f"{loader['wall_seconds']:.1f} s"),
        ("  phases", ", ".join(f"{k} {v:.1f}s" for k, v in loader["phases"].items())),
        ("  slowest steps", ", ".join(f"{k} {v:.1f}s" for k, v in sorted(
            loader.get("steps", {}).items(), key=lambda kv: -kv[1])[:4])),
        ("loader rows/s, COPY phase (generation included)", f"{copy_rate:,.0f}"),
        ("loader rows/s, end to end", f"{end_to_end:,.0f}"),
        ("raw COPY from files into bare tables, rows/s", f"{raw['rows_per_second']:,.0f}"),
        ("  loader COPY phase / raw COPY", f"{result['ratios']['loader_copy_vs_raw_copy']:.2f}"),
        ("  loader end to end / raw COPY", f"{result['ratios']['loader_end_to_end_vs_raw_copy']:.2f}"),
        (f"pandas to_sql ({pandas['rows']:,} insights), rows/s", f"{pandas['rows_per_second']:,.0f}"),
        ("  loader insights rows/s / to_sql", f"{result['ratios']['loader_insights_vs_to_sql']:.1f}"),
        ("  loader end to end / to_sql", f"{result['ratios']['loader_end_to_end_vs_to_sql']:.1f}"),
        ("loader peak RSS (server not included)", f"{loader['peak_rss_mb']:.0f} MB"),
    ]
    width = max(len(k) for k, _ in lines)
    print(f"\nload benchmark, scale {scale}")
    for key, value in lines:
        print(f"  {key:<{width}}  {value}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium", choices=["tiny", "small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--to-sql-rows", type=int, default=50_000, help="insights rows for the to_sql comparison")
    parser.add_argument("--skip-raw", action="store_true", help="only the loader (e.g. at large scale)")
    parser.add_argument("--worker", nargs=3, metavar=("URL", "SCALE", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return 0
    with tempfile.TemporaryDirectory(prefix="gi-bench-") as tmp:
        folder = Path(tmp)
        admin, settings = _server(folder / "home")
        names = ("gi_bench_loader", "gi_bench_raw")
        try:
            print(f"loader: {args.scale} scale, seed {args.seed} ...", flush=True)
            loader = run_loader(recreate_database(admin, names[0]), args.scale, args.seed)
            drop_database(admin, names[0])
            raw, pandas = {"rows_per_second": float("nan")}, {"rows_per_second": float("nan"), "rows": 0}
            if not args.skip_raw:
                print("writing the same rows to files ...", flush=True)
                files = write_files(folder, args.scale, args.seed)
                url = recreate_database(admin, names[1])
                print("raw COPY ...", flush=True)
                raw = raw_copy(url, files)
                print("to_sql ...", flush=True)
                pandas = to_sql(url, files, args.to_sql_rows)
            result = report(args.scale, loader, raw, pandas)
        finally:
            for name in names:
                drop_database(admin, name)
            if settings is not None:
                server.stop(settings)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"load-{args.scale}.json"
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"\nwritten: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
