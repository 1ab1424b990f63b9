"""Data for the query-layer tests: joins that fan out (a repository with several insights AND followers AND jobs),
ties, NULLs, SQL-looking and LIKE-wildcard text, and star history with gaps, spikes and unstars.

Every aggregate test recomputes its numbers with pandas from :func:`raw` rows of the same database.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gitinsight_analytics.maintenance.refresh import refresh_repository_stats

__all__ = ["Data", "build", "raw", "AS_OF", "UTC"]

UTC = dt.UTC
AS_OF = dt.date(2026, 8, 20)  # the newest insight and the newest snapshot
T0 = dt.datetime(2026, 8, 20, 12, tzinfo=UTC)


@dataclass
class Data:
    users: dict[str, uuid.UUID]
    repos: dict[str, uuid.UUID]


def _user(conn: Connection, name: str, github_id: int) -> uuid.UUID:
    return conn.execute(sa.text("INSERT INTO users (github_id, username) VALUES (:g, :u) RETURNING id"),
                        {"g": github_id, "u": name}).scalar_one()


def _repo(conn: Connection, owner: str, owner_id: uuid.UUID, name: str, github_id: int, **extra: object) -> uuid.UUID:
    values = {"github_id": github_id, "name": name, "full_name": f"{owner}/{name}", "owner_id": owner_id,
              "url": f"https://github.com/{owner}/{name}", "clone_url": f"https://github.com/{owner}/{name}.git"}
    values |= extra
    cols = ", ".join(values)
    return conn.execute(sa.text(f"INSERT INTO repositories ({cols}) VALUES ({', '.join(':' + k for k in values)}) "
                                "RETURNING id"), values).scalar_one()


def _insight(conn: Connection, repo: uuid.UUID, type_: str, conf: float, at: dt.datetime | None,
             version: str | None = "v1.9", tags: list[str | None] | None = None) -> None:
    conn.execute(
        sa.text("INSERT INTO insights (repository_id, type, title, confidence_score, data, model_version, tags, "
                "generated_at) VALUES (:r, :t, 'x', :c, CAST(:d AS jsonb), :m, :tags, :g)"),
        {"r": repo, "t": type_, "c": conf, "d": json.dumps({"k": 1}), "m": version, "tags": tags or [], "g": at},
    )


def _job(conn: Connection, repo: uuid.UUID, status: str, type_: str, created: dt.datetime,
         run_minutes: float | None = None, wait_minutes: float = 1, error: str | None = None) -> None:
    started = created + dt.timedelta(minutes=wait_minutes) if status != "queued" else None
    completed = (started + dt.timedelta(minutes=run_minutes)
                 if run_minutes is not None and status in ("completed", "failed", "cancelled") else None)
    conn.execute(
        sa.text("INSERT INTO analysis_jobs (repository_id, status, type, created_at, started_at, completed_at, "
                "error_message, progress) VALUES (:r, :s, :t, :c, :st, :co, :e, :p)"),
        {"r": repo, "s": status, "t": type_, "c": created, "st": started, "co": completed, "e": error,
         "p": 100 if status == "completed" else 0},
    )


def _snapshots(conn: Connection, repo: uuid.UUID, full_name: str, series: dict[dt.date, int],
               last_commit: dt.datetime | None = T0) -> None:
    for day, stars in series.items():
        conn.execute(
            sa.text("INSERT INTO repository_snapshots (repository_id, snapshot_date, full_name, stars, forks, "
                    "last_commit) VALUES (:r, :d, :f, :s, :k, :c)"),
            {"r": repo, "d": day, "f": full_name, "s": stars, "k": stars // 10 + day.day, "c": last_commit},
        )


def _days(start: dt.date, values: list[int]) -> dict[dt.date, int]:
    return {start + dt.timedelta(days=i): v for i, v in enumerate(values)}


def build(engine: Engine, *, refresh: bool = True) -> Data:
    """Insert the data set and refresh the analysis views."""
    h = dt.timedelta(hours=1)
    d = dt.timedelta(days=1)
    with engine.begin() as conn:
        u = {name: _user(conn, name, 100 + i) for i, name in enumerate(["alice", "bob", "carol", "dave", "eve"])}
        r = {
            "busy": _repo(conn, "alice", u["alice"], "busy", 1, stars=500, forks=40, language="Python",
                          analysis_status="completed", description="A busy 100% test_repo"),
            "quiet": _repo(conn, "bob", u["bob"], "quiet", 2, stars=10, forks=1, language="Go",
                           analysis_status="completed", description="x' OR '1'='1 is just text here"),
            "private": _repo(conn, "bob", u["bob"], "private", 3, stars=3, language="Rust"),
            "big": _repo(conn, "carol", u["carol"], "big", 4, stars=10000, forks=900, language="Python",
                         analysis_status="completed", description="Large project"),
            "oldie": _repo(conn, "dave", u["dave"], "oldie", 5, stars=300, forks=30, language="JavaScript",
                           analysis_status="completed", description="an old busy thing"),
            "pct": _repo(conn, "dave", u["dave"], "100%_done", 6, stars=7, forks=0, language="Python",
                         analysis_status="failed", description=None),
            "nulls": _repo(conn, "eve", u["eve"], "nullstars", 7, stars=None, forks=None, language=None,
                           analysis_status="completed"),
        }
        # busy: 6 insights, 3 followers, 4 jobs -> a naive join multiplies its counts by 12.
        _insight(conn, r["busy"], "security", 0.50, T0, "v1.9", ["perf", "perf", None])
        _insight(conn, r["busy"], "performance", 0.75, T0 - d, "v1.10", ["perf", "hot"])
        _insight(conn, r["busy"], "security", 0.90, T0 - 2 * d, "v1.10", ["sec"])
        _insight(conn, r["busy"], "security", 0.30, T0 - 6 * d - h, "v2", [])
        _insight(conn, r["busy"], "documentation", 0.42, T0 - 9 * d, None, ["doc"])
        _insight(conn, r["busy"], "security", 0.99, T0 - 40 * d, "v1.9", ["sec"])
        _insight(conn, r["quiet"], "documentation", 0.30, T0 - 3 * d, "v1.9", ["doc"])
        _insight(conn, r["private"], "security", 0.99, T0 - h, "v2", ["sec"])
        _insight(conn, r["oldie"], "performance", 0.65, T0 - 20 * d, "v1.10", ["perf"])
        _insight(conn, r["oldie"], "performance", 0.55, T0 - 21 * d, "v2", [])
        _insight(conn, r["pct"], "security", 0.80, T0 - 2 * h, "v2", ["sec"])
        _insight(conn, r["nulls"], "security", 0.60, None, "v2", ["sec"])  # generated_at NULL
        for who, repo, days_ago in [("alice", "busy", 3), ("bob", "busy", 1), ("carol", "busy", 2),
                                    ("alice", "quiet", 5), ("alice", "big", 0), ("dave", "oldie", 9)]:
            conn.execute(sa.text("INSERT INTO user_repository_follows (user_id, repository_id, followed_at) "
                                 "VALUES (:u, :r, :f)"), {"u": u[who], "r": r[repo], "f": T0 - days_ago * d})
        _job(conn, r["busy"], "failed", "full_analysis", T0 - 3 * d, 5, error="timeout after 300 s")
        _job(conn, r["busy"], "completed", "full_analysis", T0 - 2 * d, 12, wait_minutes=3)
        _job(conn, r["busy"], "completed", "quick_scan", T0 - d, 2, wait_minutes=2)
        _job(conn, r["busy"], "queued", "quick_scan", T0 - d)  # same created_at as the one before
        _job(conn, r["quiet"], "failed", "quick_scan", T0 - 2 * d, 1, error="timeout after 120 s")
        _job(conn, r["quiet"], "in_progress", "full_analysis", T0 - 3 * d)
        _job(conn, r["big"], "failed", "full_analysis", T0 - 4 * d, 7, error="clone failed: 404")
        _job(conn, r["big"], "completed", "full_analysis", T0 - 5 * d, 30, wait_minutes=10)
        _job(conn, r["big"], "cancelled", "quick_scan", T0 - 6 * d, 1)
        _job(conn, r["oldie"], "queued", "full_analysis", T0 - 8 * d)
        _job(conn, r["oldie"], "failed", "full_analysis", T0 - 9 * d, None, error=None)
        # Star history (window 2026-08-13..20 for 7 days): spike, entering, leaving, unstars, inactive, single.
        start = dt.date(2026, 8, 10)
        _snapshots(conn, r["busy"], "alice/busy", _days(start, [400, 410, 420, 430, 440, 450, 1450, 1460, 1470,
                                                                 1480, 1490]))
        _snapshots(conn, r["quiet"], "bob/quiet-old-name", _days(dt.date(2026, 8, 16), [5, 8, 9, 12, 20]))
        _snapshots(conn, r["big"], "carol/big", _days(start, [10000, 10100, 10150, 10120, 10180, 10170, 10160,
                                                              10150, 10140]))
        _snapshots(conn, r["oldie"], "dave/oldie", _days(start, [100, 200, 300, 400, 500, 600, 700, 800, 900,
                                                                 1000, 1100]), last_commit=T0 - 200 * d)
        _snapshots(conn, r["private"], "bob/private", {AS_OF: 3})
        _snapshots(conn, r["pct"], "dave/100%_done", {dt.date(2024, 1, 1): 1, dt.date(2026, 8, 12): 2,
                                                      dt.date(2026, 8, 15): 4, AS_OF: 7}, last_commit=None)
    if refresh:
        refresh_repository_stats(engine)
    return Data(u, r)


def raw(engine: Engine, table: str) -> pd.DataFrame:
    """All rows of a table, as pandas reads them (the independent side of every comparison)."""
    with engine.connect() as conn:
        result = conn.execute(sa.text(f"SELECT * FROM {table}"))  # test helper, constant names
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
