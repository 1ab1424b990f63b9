"""The ``analysis_jobs`` queue: enqueue, schedule, claim (``FOR UPDATE SKIP LOCKED``), lease, complete, fail with
retry and backoff, cancel, status.

Claiming commits at once: a claimed job is ``in_progress`` with ``locked_by`` and ``lease_expires_at``; the worker
renews the lease while it lives. A job whose lease expired (its worker was killed) is claimed again by another
worker. Completion is guarded by ``locked_by`` and ``status``, so a worker that lost its job (lease taken over,
cancelled) writes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..exceptions import ValidationError
from .registry import Job, RawJSON, analysis_key, job_options

__all__ = ["FREQUENCIES", "enqueue", "schedule", "claim", "complete", "fail", "release", "cancel", "renew_leases",
           "queue_status", "resolve_repositories"]

#: repositories.settings->>'analysis_frequency' -> days between analyses (``on_push`` is not time-based).
FREQUENCIES = {"daily": 1, "weekly": 7, "monthly": 30}


def resolve_repositories(conn: Connection, repos: Sequence[str], as_of: dt.date) -> list[str]:
    """Repository ids for ``--repos``: ``real`` (a snapshot on as_of), ``all``, or ``owner/name`` values."""
    if list(repos) == ["real"]:
        rows = conn.execute(sa.text("SELECT repository_id::text FROM repository_snapshots WHERE snapshot_date = :d "
                                    "ORDER BY repository_id"), {"d": as_of})
        return [r[0] for r in rows]
    if list(repos) == ["all"]:
        return [r[0] for r in conn.execute(sa.text("SELECT id::text FROM repositories ORDER BY id"))]
    if any(r in ("real", "all") for r in repos):
        raise ValidationError("repos", "'real' and 'all' stand alone", "real | all | owner/name ...")
    rows = conn.execute(sa.text("SELECT lower(full_name), id::text FROM repositories "
                                "WHERE lower(full_name) = ANY(:names)"), {"names": [r.lower() for r in repos]})
    found: dict[str, str] = dict(rows.all())
    missing = [r for r in repos if r.lower() not in found]
    if missing:
        raise ValidationError("repos", f"unknown repository {missing[0]!r}", "real | all | owner/name of the data")
    return [found[r.lower()] for r in repos]


_INSERT = sa.text("""
    INSERT INTO analysis_jobs (repository_id, type, options, analysis_key, max_attempts)
    SELECT r, :type, CAST(:options AS jsonb), :key, :max_attempts FROM unnest(CAST(:ids AS uuid[])) AS r
    ON CONFLICT (repository_id, analysis_key) DO UPDATE
        SET status = 'queued', attempts = 0, run_after = NULL, error_message = NULL, progress = 0,
            started_at = NULL, completed_at = NULL, locked_by = NULL, lease_expires_at = NULL, updated_at = now()
        WHERE analysis_jobs.status IN ('failed', 'cancelled')
    RETURNING (xmax = 0) AS inserted
""")


def enqueue(bind: Engine | Connection, insight_type: str, *, as_of: dt.date, horizon_days: int = 7,
            repos: Sequence[str] = ("real",), model_versions: list[str] | None = None,
            max_attempts: int = 3) -> dict[str, int]:
    """Queue one job per repository; idempotent: a job of the same key is left alone unless it failed or was
    cancelled, in which case it is queued again. Returns counts ``queued``, ``requeued``, ``existing``."""
    options = job_options(insight_type, as_of=as_of, horizon_days=horizon_days, model_versions=model_versions)
    if not 1 <= max_attempts <= 20:
        raise ValidationError("max_attempts", f"{max_attempts} is out of range", "1..20")
    key = f"{insight_type}:{as_of.isoformat()}:h{horizon_days}"
    if model_versions:
        key = ",".join(analysis_key(insight_type, v, as_of, horizon_days) for v in sorted(model_versions))
    with _begin(bind) as conn:
        ids = resolve_repositories(conn, repos, as_of)
        rows = conn.execute(_INSERT, {"type": insight_type, "options": json.dumps(options), "key": key,
                                      "max_attempts": max_attempts, "ids": ids}).all()
    inserted = sum(1 for r in rows if r.inserted)
    return {"queued": inserted, "requeued": len(rows) - inserted, "existing": len(ids) - len(rows)}


def schedule(bind: Engine | Connection, *, as_of: dt.date, insight_type: str = "trend_prediction",
             horizon_days: int = 7) -> dict[str, int]:
    """Queue ``insight_type`` at ``as_of`` for repositories whose ``analysis_frequency`` makes it due: no job of
    that type created within the frequency's days before as_of's job (by the newest job's ``data`` as-of)."""
    with _begin(bind) as conn:
        rows = conn.execute(sa.text("""
            SELECT r.id::text AS id FROM repositories r
            JOIN (SELECT * FROM jsonb_each_text(CAST(:freq AS jsonb))) f(name, days)
              ON f.name = r.settings->>'analysis_frequency'
            WHERE EXISTS (SELECT 1 FROM repository_snapshots s WHERE s.repository_id = r.id AND s.snapshot_date = :d)
              AND NOT EXISTS (SELECT 1 FROM analysis_jobs j WHERE j.repository_id = r.id AND j.type = :type
                              AND j.analysis_key IS NOT NULL
                              AND (j.options->>'as_of')::date > :d - f.days::int
                              AND (j.options->>'as_of')::date <= :d)
            ORDER BY r.id"""), {"freq": json.dumps(FREQUENCIES), "d": as_of, "type": insight_type}).all()
        due = [r.id for r in rows]
        counts = {"due": len(due), "queued": 0, "requeued": 0, "existing": 0}
        if due:
            names = [n for (n,) in conn.execute(sa.text("SELECT full_name FROM repositories WHERE id = ANY("
                                                        "CAST(:ids AS uuid[]))"), {"ids": due})]
            counts.update(enqueue(conn, insight_type, as_of=as_of, horizon_days=horizon_days, repos=names))
    return counts


#: Claims and completions do not wait for the WAL flush. Safe here: after a crash a lost claim leaves the job queued,
#: a lost completion leaves it in progress until its lease expires; either way it runs again and, being
#: idempotent, writes no duplicate.
_ASYNC_COMMIT = sa.text("SET LOCAL synchronous_commit = off")

_CLAIM_EXPIRED = sa.text("""
    UPDATE analysis_jobs j SET attempts = j.attempts + 1, locked_by = :worker, started_at = now(), progress = 0,
        lease_expires_at = now() + make_interval(secs => :lease), updated_at = now()
    FROM (SELECT id FROM analysis_jobs
          WHERE status = 'in_progress' AND lease_expires_at < now() AND type = ANY(:types)
            AND attempts < max_attempts
          ORDER BY lease_expires_at LIMIT :n FOR UPDATE SKIP LOCKED) c
    WHERE j.id = c.id
    RETURNING j.id::text, j.repository_id::text, j.type, j.options, j.attempts, j.max_attempts
""")
_CLAIM_QUEUED = sa.text("""
    UPDATE analysis_jobs j SET status = 'in_progress', attempts = j.attempts + 1, locked_by = :worker,
        started_at = now(), progress = 0, lease_expires_at = now() + make_interval(secs => :lease), updated_at = now()
    FROM (SELECT id FROM analysis_jobs
          WHERE status = 'queued' AND (run_after IS NULL OR run_after <= now()) AND type = ANY(:types)
          ORDER BY created_at LIMIT :n FOR UPDATE SKIP LOCKED) c
    WHERE j.id = c.id
    RETURNING j.id::text, j.repository_id::text, j.type, j.options, j.attempts, j.max_attempts
""")
_EXPIRE_EXHAUSTED = sa.text("""
    UPDATE analysis_jobs SET status = 'failed', completed_at = now(), locked_by = NULL, lease_expires_at = NULL,
        updated_at = now(), error_message = 'worker lost (lease expired) on attempt ' || attempts || ' of '
        || max_attempts
    WHERE id IN (SELECT id FROM analysis_jobs WHERE status = 'in_progress' AND lease_expires_at < now()
                 AND attempts >= max_attempts AND type = ANY(:types) FOR UPDATE SKIP LOCKED)
""")


def claim(engine: Engine, worker: str, types: Sequence[str], *, n: int = 1, lease_seconds: float = 30.0) -> list[Job]:
    """Claim up to ``n`` jobs (expired leases first, then due queued jobs) and commit the claim."""
    params = {"worker": worker, "types": list(types), "n": n, "lease": float(lease_seconds)}
    with engine.begin() as conn:
        conn.execute(_ASYNC_COMMIT)
        conn.execute(_EXPIRE_EXHAUSTED, {"types": list(types)})
        rows = list(conn.execute(_CLAIM_EXPIRED, params).all())
        if len(rows) < n:
            rows += conn.execute(_CLAIM_QUEUED, {**params, "n": n - len(rows)}).all()
    return [Job(r[0], r[1], r[2], r[3] or {}, r[4], r[5]) for r in rows]


_COMPLETE = sa.text("""
    UPDATE analysis_jobs j SET status = 'completed', progress = 100, completed_at = now(), locked_by = NULL,
        lease_expires_at = NULL, error_message = NULL, updated_at = now(),
        options = j.options || jsonb_build_object('result', r.result)
    FROM jsonb_to_recordset(CAST(:results AS jsonb)) AS r(id uuid, result jsonb)
    WHERE j.id = r.id AND j.locked_by = :worker AND j.status = 'in_progress'
    RETURNING j.id::text
""")
_INSERT_INSIGHTS = sa.text("""
    INSERT INTO insights (repository_id, type, title, description, confidence_score, data, model_version, tags,
                          analysis_key)
    SELECT repository_id, type, title, description, confidence_score, data, model_version, tags, analysis_key
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(repository_id uuid, type text, title text, description text,
         confidence_score numeric, data jsonb, model_version text, tags text[], analysis_key text)
    ON CONFLICT (repository_id, analysis_key) DO NOTHING
""")


def complete(engine: Engine, worker: str,
             results: Sequence[tuple[str, dict[str, Any], Sequence[dict[str, Any] | RawJSON]]]) -> int:
    """Complete jobs ``(job_id, result, insight rows)`` in one transaction: only jobs this worker still holds are
    completed and only their insights written (re-runs write no duplicate). Returns how many completed."""
    if not results:
        return 0
    with engine.begin() as conn:
        conn.execute(_ASYNC_COMMIT)
        batch = json.dumps([{"id": job_id, "result": result} for job_id, result, _ in results])
        done = {r[0] for r in conn.execute(_COMPLETE, {"worker": worker, "results": batch})}
        rows = [row if isinstance(row, RawJSON) else json.dumps(row)
                for job_id, _, insights in results if job_id in done for row in insights]
        if rows:  # one statement for the batch: a JSON array of rows, not one round trip per insight
            conn.execute(_INSERT_INSIGHTS, {"rows": "[" + ",".join(rows) + "]"})
    return len(done)


def fail(engine: Engine, worker: str, job: Job, message: str, *, backoff_seconds: float = 5.0,
         final: bool = False) -> str:
    """Record a failure: queued again after ``backoff_seconds * 2^(attempt-1)`` while attempts remain (and the
    error is not ``final``), else ``failed``. Returns the new status ('' when the job is no longer this worker's)."""
    with engine.begin() as conn:
        row = conn.execute(sa.text("""
            UPDATE analysis_jobs SET
                status = CASE WHEN attempts < max_attempts AND NOT :final THEN 'queued' ELSE 'failed' END,
                run_after = now() + make_interval(secs => :backoff * power(2, attempts - 1)),
                completed_at = CASE WHEN attempts < max_attempts AND NOT :final THEN NULL ELSE now() END,
                error_message = :message, locked_by = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE id = CAST(:id AS uuid) AND locked_by = :worker AND status = 'in_progress'
            RETURNING status"""), {"id": job.id, "worker": worker, "message": message[:2000],
                                   "backoff": float(backoff_seconds), "final": final}).first()
    return row[0] if row else ""


def release(engine: Engine, worker: str) -> int:
    """Give back the in-progress jobs of a worker that stops cleanly (queued again, attempt not counted)."""
    with engine.begin() as conn:
        return conn.execute(sa.text("""
            UPDATE analysis_jobs SET status = 'queued', attempts = greatest(attempts - 1, 0), locked_by = NULL,
                lease_expires_at = NULL, updated_at = now()
            WHERE locked_by = :worker AND status = 'in_progress'"""), {"worker": worker}).rowcount


def renew_leases(engine: Engine, worker: str, *, lease_seconds: float) -> int:
    """Extend the lease of every job this worker holds (its heartbeat). Rows being completed right now are
    skipped, not waited for: waiting would deadlock with the completing transaction of the same worker."""
    with engine.begin() as conn:
        return conn.execute(sa.text("""
            UPDATE analysis_jobs SET lease_expires_at = now() + make_interval(secs => :lease)
            WHERE id IN (SELECT id FROM analysis_jobs WHERE locked_by = :worker AND status = 'in_progress'
                         FOR UPDATE SKIP LOCKED)"""),
            {"worker": worker, "lease": float(lease_seconds)}).rowcount


def cancel(bind: Engine | Connection, job_id: str) -> str:
    """Cancel a queued or in-progress job (its worker then writes nothing). Returns the job's previous status."""
    try:
        import uuid

        uuid.UUID(job_id)
    except ValueError:
        raise ValidationError("job_id", f"{job_id!r} is not a UUID",
                              "the id shown by `gitinsight analyze status`") from None
    with _begin(bind) as conn:
        row = conn.execute(sa.text("SELECT status FROM analysis_jobs WHERE id = CAST(:id AS uuid) FOR UPDATE"),
                           {"id": job_id}).first()
        if row is None:
            raise ValidationError("job_id", f"no job {job_id}", "the id of an existing job")
        if row.status not in ("queued", "in_progress"):
            raise ValidationError("job_id", f"job {job_id} is {row.status}", "a queued or in-progress job")
        conn.execute(sa.text("""UPDATE analysis_jobs SET status = 'cancelled', completed_at = now(), locked_by = NULL,
                                lease_expires_at = NULL, updated_at = now() WHERE id = CAST(:id AS uuid)"""),
                     {"id": job_id})
    return str(row.status)


def queue_status(bind: Engine | Connection, *, job_type: str | None = None) -> pd.DataFrame:
    """Per type and status: jobs, oldest creation, expired leases, attempts > 1, latest error."""
    query = sa.text("""
        SELECT type, status, COUNT(*)::bigint AS jobs, MIN(created_at) AS oldest_created_at,
               COUNT(*) FILTER (WHERE status = 'in_progress' AND lease_expires_at < now())::bigint AS expired_leases,
               COUNT(*) FILTER (WHERE attempts > 1)::bigint AS retried,
               (array_agg(error_message ORDER BY updated_at DESC) FILTER (WHERE error_message IS NOT NULL))[1]
                   AS latest_error
        FROM analysis_jobs WHERE (CAST(:type AS text) IS NULL OR type = :type)
        GROUP BY type, status ORDER BY type, status""")
    with _connect(bind) as conn:
        return pd.DataFrame(conn.execute(query, {"type": job_type}).mappings().all(),
                            columns=["type", "status", "jobs", "oldest_created_at", "expired_leases", "retried",
                                     "latest_error"])


class _begin:  # a context manager used like engine.begin()
    """A transaction on an engine, or the caller's connection as it is."""

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind
        self.ctx: contextlib.AbstractContextManager[Connection] | None = None

    def __enter__(self) -> Connection:
        if isinstance(self.bind, Connection):
            return self.bind
        self.ctx = self.bind.begin()
        return self.ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self.ctx is not None:
            self.ctx.__exit__(*exc)


class _connect(_begin):
    def __enter__(self) -> Connection:
        if isinstance(self.bind, Connection):
            return self.bind
        self.ctx = self.bind.connect()
        return self.ctx.__enter__()
