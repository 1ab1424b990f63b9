"""Operations benchmark: a load with WAL archiving on, a backup set, its verified restore, a base backup, a
point-in-time recovery, and what row-level security costs two analyses.

    .venv/bin/python -m benchmarks.bench_ops --scale small

Starts its own embedded PostgreSQL in a temporary GITINSIGHT_HOME on a free port with WAL archiving on (base
backups and recovery exist for the embedded server only, so DATABASE_URL is not used), then, in one run:

1. migrate and ``load_synthetic(scale)``: with archiving on (``wal_level = replica``) the load writes its rows and
   index builds to the WAL, so it is slower than bench_load's figure (archiving off);
2. ``create_backup`` (what ``gitinsight backup create`` runs): wall time and size of the set;
3. the set checked (``open_backup``) and restored with verification (``restore_backup``) into a new database on
   the same server, as ``gitinsight backup restore SET --into NAME`` does;
4. ``take_base_backup``: wall time and size; then rows written, a moment T taken, more rows written, and
   ``recover`` to T into a temporary folder: wall time, and the recovered server must hold exactly the rows
   committed before T;
5. p50/p95 of ``search_repositories`` and ``repository_stats`` on an admin connection and inside ``as_user`` for
   the user who follows the most repositories (alternating, so both see the same machine load).

No targets: it measures. Prints a table and writes ``benchmarks/results/ops-<scale>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
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
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from benchmarks._support import drop_database, throwaway_server
from gitinsight_analytics import migrate, queries, server
from gitinsight_analytics.backup.restore import restore_backup, restore_target
from gitinsight_analytics.backup.sets import create_backup, open_backup
from gitinsight_analytics.db import make_engine
from gitinsight_analytics.pitr.base import take_base_backup
from gitinsight_analytics.pitr.recover import recover, stop_recovered
from gitinsight_analytics.security import as_user
from gitinsight_analytics.seed import load_synthetic
from gitinsight_analytics.settings import PoolSettings, Settings

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
RESTORED_DB = "gi_bench_restored"
PITR_TABLE = "bench_pitr_rows"


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB"


def load_step(engine: Engine, scale: str, seed: int) -> dict[str, Any]:
    """Migrate, then the synthetic load with archiving on; its time, phases and the WAL it wrote."""
    started = time.perf_counter()
    migrate.upgrade(engine)
    migrate_seconds = time.perf_counter() - started
    with engine.connect() as conn:
        before = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar()
    started = time.perf_counter()
    result = load_synthetic(engine, scale=scale, seed=seed, progress=False)
    wall = time.perf_counter() - started
    with engine.connect() as conn:
        wal = conn.execute(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:b AS pg_lsn))"),
                           {"b": before}).scalar()
    return {"migrate_seconds": migrate_seconds, "wall_seconds": wall, "seconds": result.seconds,
            "rows": dict(result.rows), "total_rows": result.total_rows, "phases": dict(result.phase_seconds),
            "wal_bytes": int(wal)}


def backup_step(engine: Engine, folder: Path) -> tuple[dict[str, Any], Path]:
    """``create_backup`` into ``folder``: wall time and size (the manifest's counts and checksums are read
    while pg_dump runs and their time is not reported separately)."""
    started = time.perf_counter()
    found = create_backup(engine, folder)
    wall = time.perf_counter() - started
    return ({"wall_seconds": wall, "bytes": found.size, "rows": found.rows, "tables": len(found.tables),
             "files": {f: v["bytes"] for f, v in found.manifest["files"].items()}}, found.path)


def restore_step(base_url: str, backup_path: Path) -> dict[str, Any]:
    """Check the set, restore it with verification into a new database of the server, then drop that."""
    started = time.perf_counter()
    found = open_backup(backup_path)
    check = time.perf_counter() - started
    target, admin = restore_target(base_url, RESTORED_DB)
    try:
        started = time.perf_counter()
        report = restore_backup(target, found, admin_url=admin)
        wall = time.perf_counter() - started
    finally:
        drop_database(base_url, RESTORED_DB)  # not in the base backup measured next
    return {"check_seconds": check, "restore_verify_seconds": wall, "report_seconds": report.seconds,
            "wall_seconds": check + wall, "created": report.created, "roles_created": list(report.roles_created),
            "verification": report.verification.summary()}


def pitr_step(settings: Settings, url: str, folder: Path, marks: int) -> dict[str, Any]:
    """Base backup; ``marks`` rows, T, ``marks`` more rows; recovery to T; the recovered rows checked."""
    started = time.perf_counter()
    backup = take_base_backup(settings)
    base_wall = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:  # each INSERT commits on its own
        conn.execute(f"CREATE TABLE {PITR_TABLE} (n integer PRIMARY KEY, "  # a constant name
                     "written_at timestamptz NOT NULL DEFAULT clock_timestamp())")
        for n in range(1, marks + 1):
            conn.execute(f"INSERT INTO {PITR_TABLE} (n) VALUES (%s)", (n,))  # noqa: S608
        moment = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        time.sleep(0.05)
        for n in range(marks + 1, 2 * marks + 1):
            conn.execute(f"INSERT INTO {PITR_TABLE} (n) VALUES (%s)", (n,))  # noqa: S608
    started = time.perf_counter()
    recovered = recover(settings, to=moment, target=folder / "recovered")
    recover_wall = time.perf_counter() - started
    try:
        with psycopg.connect(recovered.url, connect_timeout=10) as conn:
            found = [n for (n,) in conn.execute(f"SELECT n FROM {PITR_TABLE} ORDER BY n").fetchall()]  # noqa: S608
    finally:
        stop_recovered(settings, recovered.pgdata)
    expected = list(range(1, marks + 1))
    if found != expected:
        raise SystemExit(f"point-in-time recovery to {moment.isoformat()} is WRONG: rows {found}, "
                         f"expected exactly {expected} (stop record: {recovered.stop_record})")
    return {"base_backup_seconds": base_wall, "base_backup_bytes": _dir_bytes(backup.path),
            "target_time": moment.isoformat(), "recover_seconds": recover_wall, "rows_recovered": len(found),
            "rows_after_target": marks, "stop_record": recovered.stop_record, "check": "exactly the rows before T",
            "wal_archive_bytes": _dir_bytes(settings.wal_archive_dir)}


def _summary(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {"runs": len(ordered), "p50_ms": statistics.median(ordered),
            "p95_ms": ordered[max(0, int(round(0.95 * len(ordered))) - 1)], "max_ms": ordered[-1]}


def rls_step(engine: Engine, runs: int, warmup: int = 5) -> dict[str, Any]:
    """Each analysis on a pooled admin connection vs inside ``as_user`` (its role and user id set in a
    transaction), alternating run by run; the rows each returns."""
    with engine.connect() as conn:
        user_id, follows = conn.execute(text(
            "SELECT user_id, count(*) FROM user_repository_follows GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1")).one()
        # Words from the names of repositories the user sees (owns or follows), so its searches find some too.
        words = [w for (w,) in conn.execute(text(
            "SELECT DISTINCT lower(substring(name from '[A-Za-z]{4,}')) AS w FROM repositories "
            "WHERE name ~ '[A-Za-z]{4,}' AND (owner_id = :u OR id IN "
            "(SELECT repository_id FROM user_repository_follows WHERE user_id = :u)) ORDER BY 1 LIMIT 20"),
            {"u": user_id})] or ["a"]
    analyses: dict[str, Callable[[Connection, int], Any]] = {
        "search_repositories": lambda c, i: queries.search_repositories(c, text=words[i % len(words)], limit=20),
        "repository_stats": lambda c, i: queries.repository_stats(c, limit=50),
    }
    out: dict[str, Any] = {"user_id": str(user_id), "user_follows": follows, "words": len(words)}
    for name, fn in analyses.items():
        times: dict[str, list[float]] = {"admin": [], "as_user": []}
        rows: dict[str, list[int]] = {"admin": [], "as_user": []}
        for i in range(warmup + runs):
            for mode in times:
                started = time.perf_counter()
                with (engine.connect() if mode == "admin" else as_user(engine, user_id)) as conn:
                    frame = fn(conn, i)
                if i >= warmup:
                    times[mode].append((time.perf_counter() - started) * 1000)
                    rows[mode].append(len(frame))
        result = {mode: _summary(t) | {"mean_rows": statistics.fmean(rows[mode])} for mode, t in times.items()}
        result["p50_ratio"] = result["as_user"]["p50_ms"] / result["admin"]["p50_ms"]
        out[name] = result
    return out


def _reference_load(scale: str) -> dict[str, Any] | None:
    """bench_load's loader figure at this scale (archiving off), if that benchmark has been run."""
    path = RESULTS / f"load-{scale}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        data = json.loads(path.read_text())
        return {"file": path.name, "seconds": data["loader"]["seconds"],
                "load_average_at_end": data["machine"]["load_average_at_end"]}
    return None


def report(scale: str, figures: dict[str, Any]) -> None:
    load, backup, restore, pitr, rls = (figures[k] for k in ("load", "backup", "restore", "pitr", "rls"))
    reference = figures["load_without_archiving"]
    lines = [
        ("rows (all tables)", f"{load['total_rows']:,}"),
        ("migrate", f"{load['migrate_seconds']:.1f} s"),
        ("load with archiving on (load_synthetic)", f"{load['seconds']:.1f} s, WAL written {_mb(load['wal_bytes'])}"),
        ("  phases", ", ".join(f"{k} {v:.1f}s" for k, v in load["phases"].items())),
        ("  bench_load, archiving off (" + (reference["file"] if reference else "not run") + ")",
         f"{reference['seconds']:.1f} s" if reference else "-"),
        ("backup create", f"{backup['wall_seconds']:.1f} s, {_mb(backup['bytes'])} ({backup['rows']:,} rows)"),
        ("restore: set checked (sizes, sha256, pg_restore --list)", f"{restore['check_seconds']:.1f} s"),
        ("restore: load + verification into a new database", f"{restore['restore_verify_seconds']:.1f} s"),
        ("restore: total", f"{restore['wall_seconds']:.1f} s"),
        ("base backup (pg_basebackup + pg_verifybackup)",
         f"{pitr['base_backup_seconds']:.1f} s, {_mb(pitr['base_backup_bytes'])}"),
        ("point-in-time recovery to T",
         f"{pitr['recover_seconds']:.1f} s, {pitr['rows_recovered']} rows: {pitr['check']}"),
        ("WAL archive at the end", _mb(pitr["wal_archive_bytes"])),
    ]
    for name in ("search_repositories", "repository_stats"):
        admin, user = rls[name]["admin"], rls[name]["as_user"]
        lines.append((f"{name} p50/p95, admin", f"{admin['p50_ms']:.1f} / {admin['p95_ms']:.1f} ms, "
                                                f"{admin['mean_rows']:.0f} rows"))
        lines.append((f"{name} p50/p95, as_user", f"{user['p50_ms']:.1f} / {user['p95_ms']:.1f} ms, "
                                                  f"{user['mean_rows']:.0f} rows (x{rls[name]['p50_ratio']:.2f})"))
    width = max(len(k) for k, _ in lines)
    print(f"\noperations benchmark, scale {scale} (as_user: user following {rls['user_follows']} repositories)")
    for key, value in lines:
        print(f"  {key:<{width}}  {value}")
    for line in restore["verification"]:
        print(f"    restore check: {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=50, help="repetitions of each analysis per mode (RLS)")
    parser.add_argument("--marks", type=int, default=5, help="rows written before and after the recovery target")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "scale": args.scale,
                               "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="gi-bench-ops-") as tmp:
        folder = Path(tmp)
        settings = throwaway_server(folder / "home", archive=True)
        url = server.server_url(settings)
        engine = make_engine(url, pool=PoolSettings(size=2, max_overflow=2))
        try:
            with engine.connect() as conn:
                version = conn.execute(text("SHOW server_version")).scalar()
                archiving = conn.execute(text("SELECT current_setting('wal_level'), "
                                              "current_setting('archive_mode')")).one()
            if tuple(archiving) != ("replica", "on"):
                raise SystemExit(f"WAL archiving is not on: wal_level, archive_mode = {tuple(archiving)}")
            print(f"load with archiving on: {args.scale} scale ...", flush=True)
            figures["load"] = load_step(engine, args.scale, args.seed)
            figures["load_without_archiving"] = _reference_load(args.scale)
            print("backup create ...", flush=True)
            figures["backup"], backup_path = backup_step(engine, folder / "sets")
            print("restore with verification ...", flush=True)
            figures["restore"] = restore_step(url, backup_path)
            print("base backup and point-in-time recovery ...", flush=True)
            figures["pitr"] = pitr_step(settings, url, folder, args.marks)
            print(f"row-level security: {args.runs} runs per analysis and mode ...", flush=True)
            figures["rls"] = rls_step(engine, args.runs)
        finally:
            engine.dispose()
            with contextlib.suppress(Exception):  # a recovery that failed after starting its server
                if (folder / "recovered" / "postmaster.pid").exists():
                    stop_recovered(settings, folder / "recovered")
            server.stop(settings)
    figures["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "postgresql": version,
                          "load_average_at_end": os.getloadavg()}
    report(args.scale, figures)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ops-{args.scale}.json"
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"\nwritten: {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
