"""Small, explicit test data: rows inserted with bound parameters, ids returned for assertions."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_ids = itertools.count(1_000_000)
UTC = dt.UTC


def user(conn: Connection, username: str | None = None, **extra: object) -> uuid.UUID:
    n = next(_ids)
    values = {"github_id": n, "username": username or f"user{n}"} | extra
    cols = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    return conn.execute(sa.text(f"INSERT INTO users ({cols}) VALUES ({params}) RETURNING id"), values).scalar_one()


def repository(conn: Connection, owner_id: uuid.UUID, name: str | None = None, **extra: object) -> uuid.UUID:
    n = next(_ids)
    name = name or f"repo{n}"
    owner = conn.execute(sa.text("SELECT username FROM users WHERE id = :i"), {"i": owner_id}).scalar_one()
    values = {
        "github_id": n, "name": name, "full_name": f"{owner}/{name}", "url": f"https://github.com/{owner}/{name}",
        "clone_url": f"https://github.com/{owner}/{name}.git", "owner_id": owner_id,
    } | extra
    if "settings" in values:
        values["settings"] = json.dumps(values["settings"])
    cols = ", ".join(values)
    params = ", ".join(f"CAST(:{k} AS jsonb)" if k == "settings" else f":{k}" for k in values)
    return conn.execute(sa.text(f"INSERT INTO repositories ({cols}) VALUES ({params}) RETURNING id"),
                        values).scalar_one()


def insight(conn: Connection, repository_id: uuid.UUID, *, type: str = "code_quality", confidence: float = 0.8,
            generated_at: dt.datetime | None = None, model_version: str = "gi-1.0",
            tags: list[str] | None = None) -> uuid.UUID:
    return conn.execute(
        sa.text("""INSERT INTO insights (repository_id, type, title, confidence_score, data, model_version, tags,
                                          generated_at)
                   VALUES (:r, :t, :title, :c, CAST(:d AS jsonb), :m, :tags, COALESCE(:g, now())) RETURNING id"""),
        {"r": repository_id, "t": type, "title": f"{type} finding", "c": confidence, "d": json.dumps({"k": 1}),
         "m": model_version, "tags": tags or [], "g": generated_at},
    ).scalar_one()


def follow(conn: Connection, user_id: uuid.UUID, repository_id: uuid.UUID,
           followed_at: dt.datetime | None = None) -> None:
    conn.execute(sa.text("INSERT INTO user_repository_follows (user_id, repository_id, followed_at) "
                         "VALUES (:u, :r, COALESCE(:f, now()))"), {"u": user_id, "r": repository_id, "f": followed_at})


def job(conn: Connection, repository_id: uuid.UUID, *, status: str = "completed", type: str = "full_analysis",
        created_at: dt.datetime | None = None) -> uuid.UUID:
    return conn.execute(
        sa.text("INSERT INTO analysis_jobs (repository_id, status, type, created_at) "
                "VALUES (:r, :s, :t, COALESCE(:c, now())) RETURNING id"),
        {"r": repository_id, "s": status, "t": type, "c": created_at},
    ).scalar_one()


@dataclass
class FanOut:
    """Two users and three repositories; ``busy`` has 3 insights, 2 followers and 2 jobs (joins fan out)."""

    alice: uuid.UUID
    bob: uuid.UUID
    busy: uuid.UUID
    quiet: uuid.UUID
    private: uuid.UUID
    confidences: list[float] = field(default_factory=list)


def fan_out(conn: Connection) -> FanOut:
    alice, bob = user(conn, "alice"), user(conn, "bob")
    busy = repository(conn, alice, "busy", stars=500, forks=40, language="Python", analysis_status="completed")
    quiet = repository(conn, bob, "quiet", stars=10, forks=1, language="Go", analysis_status="completed")
    private = repository(conn, bob, "private", stars=3, language="Rust")
    base = dt.datetime(2026, 8, 1, tzinfo=UTC)
    confidences = [0.5, 0.75, 0.9]
    for i, c in enumerate(confidences):
        insight(conn, busy, type=("security", "performance", "security")[i], confidence=c,
                generated_at=base + dt.timedelta(days=i))
    insight(conn, quiet, type="documentation", confidence=0.3, generated_at=base)
    insight(conn, private, type="security", confidence=0.99, generated_at=base)
    follow(conn, alice, busy)
    follow(conn, bob, busy)
    follow(conn, alice, quiet)
    job(conn, busy, status="failed", created_at=base)
    job(conn, busy, status="completed", created_at=base + dt.timedelta(hours=1))
    return FanOut(alice, bob, busy, quiet, private, confidences)
