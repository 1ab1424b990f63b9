"""The analysis_jobs queue on a real PostgreSQL: concurrent worker processes, SIGKILL takeover after the lease,
cancel, failure and retry with backoff, idempotent enqueueing."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import threading
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from gitinsight_analytics.analysis import WorkerOptions, enqueue, queue, work
from gitinsight_analytics.analysis.worker import run_worker, worker_process
from gitinsight_analytics.cli import cli
from gitinsight_analytics.exceptions import ValidationError

from . import analysis_data as data

H = "tests.analysis_data:"


def _insights(engine: sa.engine.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT data->>'job' AS job, data->>'pid' AS pid FROM insights")).all()


def test_two_worker_processes_never_run_a_job_twice(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        ids = data.queued_jobs(conn, "test_log", 300)
    stats = work(engine, workers=2, handlers={"test_log": H + "log_handler"},
                 options=WorkerOptions(until_empty=True, batch=5, poll_seconds=0.05))
    rows = _insights(engine)
    assert stats.completed == 300
    assert sorted(r.job for r in rows) == sorted(ids)  # every job ran exactly once
    assert len({r.pid for r in rows}) == 2  # and both processes took part
    assert {(r.status, r.attempts, r.progress) for r in data.job_rows(engine)} == {("completed", 1, 100)}


def test_concurrent_claims_are_disjoint(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        data.queued_jobs(conn, "test_log", 200)
    claimed: dict[str, list[str]] = {"a": [], "b": []}

    def claimer(name: str) -> None:
        while jobs := queue.claim(engine, name, ["test_log"], n=3):
            claimed[name] += [j.id for j in jobs]

    threads = [threading.Thread(target=claimer, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(claimed["a"]) & set(claimed["b"])
    assert len(claimed["a"]) + len(claimed["b"]) == 200


def test_sigkilled_worker_job_is_taken_over_after_the_lease(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = data.queued_jobs(conn, "test_slow", 1)
    ctx = multiprocessing.get_context("spawn")
    options = WorkerOptions(lease_seconds=2.0, poll_seconds=0.1, until_empty=True)
    results = ctx.Queue()  # kept referenced until the child has started
    process = ctx.Process(target=worker_process, args=(engine.url.render_as_string(hide_password=False), options,
                                               {"test_slow": H + "slow_first_attempt"}, results))
    process.start()
    deadline = time.monotonic() + 60
    while data.job_rows(engine)[0].status != "in_progress":
        assert time.monotonic() < deadline, "the worker never claimed the job"
        time.sleep(0.1)
    first_owner = data.job_rows(engine)[0].locked_by
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    killed_at = time.monotonic()
    stats = run_worker(engine, options=options, handlers={"test_slow": H + "slow_first_attempt"})
    row = data.job_rows(engine)[0]
    assert (row.id, row.status, row.attempts, stats.completed) == (job_id, "completed", 2, 1)
    assert first_owner is not None and str(process.pid) in first_owner
    assert time.monotonic() - killed_at >= 1.0  # waited for the lease, did not steal a live job
    assert [r.job for r in _insights(engine)] == [job_id]


def test_cancel_queued_job_is_never_run(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        ids = data.queued_jobs(conn, "test_log", 3)
    assert queue.cancel(engine, ids[1]) == "queued"
    run_worker(engine, options=WorkerOptions(until_empty=True), handlers={"test_log": H + "log_handler"})
    statuses = {r.id: r.status for r in data.job_rows(engine)}
    assert statuses == {ids[0]: "completed", ids[1]: "cancelled", ids[2]: "completed"}
    assert ids[1] not in {r.job for r in _insights(engine)}


def test_cancel_while_running_writes_nothing(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = data.queued_jobs(conn, "test_cancel", 1)
    stats = run_worker(engine, options=WorkerOptions(until_empty=True), handlers={"test_cancel": H + "cancels_itself"})
    row = data.job_rows(engine)[0]
    assert (row.status, stats.completed, _insights(engine)) == ("cancelled", 0, [])


@pytest.mark.parametrize("bad", ["completed", "unknown", "not-a-uuid"])
def test_cancel_refuses_what_cannot_be_cancelled(engine: sa.engine.Engine, bad: str) -> None:
    with engine.begin() as conn:
        (job_id,) = data.queued_jobs(conn, "test_log", 1)
        conn.execute(sa.text("UPDATE analysis_jobs SET status = 'completed'"))
    target = {"completed": job_id, "unknown": "00000000-0000-0000-0000-000000000000", "not-a-uuid": "x"}[bad]
    with pytest.raises(ValidationError, match="job_id"):
        queue.cancel(engine, target)


def test_failures_are_retried_with_backoff_then_succeed(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        (job_id,) = data.queued_jobs(conn, "test_flaky", 1, max_attempts=3)
    jobs = queue.claim(engine, "w", ["test_flaky"])
    assert queue.fail(engine, "w", jobs[0], "boom", backoff_seconds=30) == "queued"
    row = data.job_rows(engine)[0]
    with engine.connect() as conn:
        wait = conn.execute(sa.text("SELECT extract(epoch FROM run_after - now()) FROM analysis_jobs")).scalar()
    assert (row.status, row.error_message, row.attempts) == ("queued", "boom", 1) and 25 < wait <= 30
    assert queue.claim(engine, "w", ["test_flaky"]) == []  # not before run_after
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE analysis_jobs SET run_after = now()"))
    stats = run_worker(engine, options=WorkerOptions(until_empty=True, backoff_seconds=0.05, poll_seconds=0.02),
                       handlers={"test_flaky": H + "flaky"})
    row = data.job_rows(engine)[0]
    assert (row.id, row.status, row.attempts, stats.retried, stats.completed) == (job_id, "completed", 3, 1, 1)


def test_failure_after_the_last_attempt_is_final(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        data.queued_jobs(conn, "test_fail", 1, max_attempts=2)
    stats = run_worker(engine, options=WorkerOptions(until_empty=True, backoff_seconds=0.05, poll_seconds=0.02),
                       handlers={"test_fail": H + "always_fails"})
    row = data.job_rows(engine)[0]
    assert (row.status, row.attempts, stats.failed, stats.retried) == ("failed", 2, 1, 1)
    assert row.error_message == "RuntimeError: the analysis cannot run" and row.completed_at is not None
    status = queue.queue_status(engine)
    assert status[["type", "status", "jobs", "retried"]].values.tolist() == [["test_fail", "failed", 1, 1]]


def test_enqueue_is_idempotent_and_requeues_only_failed(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        data.star_history(conn, repos=5, days=10)
    as_of = data.START + dt.timedelta(days=9)
    assert enqueue(engine, "trend_prediction", as_of=as_of) == {"queued": 5, "requeued": 0, "existing": 0}
    assert enqueue(engine, "trend_prediction", as_of=as_of) == {"queued": 0, "requeued": 0, "existing": 5}
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE analysis_jobs SET status = 'failed' WHERE ctid IN "
                             "(SELECT ctid FROM analysis_jobs LIMIT 2)"))
    assert enqueue(engine, "trend_prediction", as_of=as_of) == {"queued": 0, "requeued": 2, "existing": 3}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM analysis_jobs")).scalar() == 5


def test_schedule_queues_what_is_due(engine: sa.engine.Engine) -> None:
    with engine.begin() as conn:
        ids = data.star_history(conn, repos=3, days=10)
        for repo, freq in zip(ids, ("daily", "weekly", "on_push"), strict=True):
            conn.execute(sa.text("UPDATE repositories SET settings = jsonb_build_object('analysis_frequency', "
                                 "CAST(:f AS text)) WHERE id = :r"), {"f": freq, "r": repo})
    day = data.START + dt.timedelta(days=8)
    assert queue.schedule(engine, as_of=day)["queued"] == 2  # on_push is not time-based
    assert queue.schedule(engine, as_of=day + dt.timedelta(days=1))["queued"] == 1  # weekly not due again yet


def test_cli_enqueue_status_and_bad_input(cli_env: sa.engine.Engine) -> None:
    with cli_env.begin() as conn:
        data.star_history(conn, repos=4, days=10)
    runner = CliRunner()
    ok = runner.invoke(cli, ["analyze", "enqueue", "--type", "trend_prediction", "--as-of", "2026-07-10"])
    assert ok.exit_code == 0 and "queued 4" in ok.output
    assert "queued" in runner.invoke(cli, ["analyze", "status"]).output
    bad = runner.invoke(cli, ["analyze", "enqueue", "--type", "trend_prediction", "--as-of", "2026-07-10",
                              "--repos", "nobody/nothing"])
    assert bad.exit_code != 0
    with cli_env.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM analysis_jobs")).scalar() == 4
