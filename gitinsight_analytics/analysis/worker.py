"""Workers: processes that claim jobs from ``analysis_jobs``, run their handler and complete them.

Each worker claims a small batch (``FOR UPDATE SKIP LOCKED``, so two workers never get the same job), runs the
handler of each job (computation only), then writes the insights and completes the batch in one transaction
guarded by its lease. A heartbeat thread renews the leases; a worker killed with SIGKILL stops renewing and its
jobs are taken over by another worker once the lease expires. A handler that raises fails its job, which is
retried with exponential backoff up to ``max_attempts``.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..db import make_engine
from ..exceptions import ValidationError, WorkerError
from ..settings import PoolSettings
from . import queue
from .registry import Context, Handler, default_handlers

__all__ = ["WorkerOptions", "WorkStats", "run_worker", "work", "worker_process", "resolve_handlers"]

HandlerSpec = Handler | str  # a callable, or "module:function" (what a spawned process can import)


@dataclass(frozen=True)
class WorkerOptions:
    batch: int = 100
    lease_seconds: float = 30.0
    poll_seconds: float = 0.5
    backoff_seconds: float = 5.0
    until_empty: bool = False
    max_seconds: float | None = None


@dataclass
class WorkStats:
    worker: str
    completed: int = 0
    failed: int = 0
    retried: int = 0
    claims: int = 0
    claim_seconds: float = 0.0
    seconds: float = 0.0

    def add(self, other: WorkStats) -> None:
        for name in ("completed", "failed", "retried", "claims", "claim_seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds = max(self.seconds, other.seconds)


def resolve_handlers(handlers: Mapping[str, HandlerSpec] | None) -> dict[str, Handler]:
    """Handlers by job type; strings ``module:function`` are imported."""
    resolved: dict[str, Handler] = {}
    for job_type, spec in (handlers or default_handlers()).items():
        if isinstance(spec, str):
            module, _, name = spec.partition(":")
            spec = getattr(importlib.import_module(module), name)
        resolved[job_type] = spec
    return resolved


def _pending(engine: Engine, types: list[str]) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM analysis_jobs WHERE type = ANY(:t) "
                                         "AND status IN ('queued', 'in_progress'))"), {"t": types}).scalar())


class _Heartbeat(threading.Thread):
    def __init__(self, engine: Engine, worker: str, lease_seconds: float) -> None:
        super().__init__(daemon=True)
        self.engine, self.worker, self.lease = engine, worker, lease_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.lease / 3):
            try:
                queue.renew_leases(self.engine, self.worker, lease_seconds=self.lease)
            except Exception:  # a missed beat only shortens the lease; the loop goes on
                pass


def _complete(engine: Engine, worker: str, results: list[tuple[str, dict[str, Any], list[Any]]]) -> int:
    """Complete a batch; a transient database error (deadlock, lost connection) is retried a few times, after
    which the jobs are left to expire and be taken over."""
    for attempt in range(3):
        try:
            return queue.complete(engine, worker, results)
        except sa.exc.OperationalError:
            if attempt == 2:
                return 0
            time.sleep(0.1 * (attempt + 1))
    return 0


def run_worker(engine: Engine, *, options: WorkerOptions = WorkerOptions(),
               handlers: Mapping[str, HandlerSpec] | None = None, worker: str | None = None,
               stop: threading.Event | None = None, context: Context | None = None) -> WorkStats:
    """Run one worker in this process until ``stop`` is set, ``max_seconds`` pass, or (``until_empty``) no job
    of its types is queued or in progress."""
    resolved = resolve_handlers(handlers)
    types = sorted(resolved)
    worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    stats, stop = WorkStats(worker), stop or threading.Event()
    if context is None:
        context = Context(engine)
    context.engine = engine
    heartbeat = _Heartbeat(engine, worker, options.lease_seconds)
    heartbeat.start()
    started = time.perf_counter()
    try:
        while not stop.is_set():
            if options.max_seconds is not None and time.perf_counter() - started > options.max_seconds:
                break
            t0 = time.perf_counter()
            jobs = queue.claim(engine, worker, types, n=options.batch, lease_seconds=options.lease_seconds)
            stats.claim_seconds += time.perf_counter() - t0
            stats.claims += 1
            if not jobs:
                if options.until_empty and not _pending(engine, types):
                    break
                stop.wait(options.poll_seconds)
                continue
            results = []
            for job in jobs:
                try:
                    outcome = resolved[job.type](context, job)
                except Exception as exc:  # any handler error fails the job, the worker goes on
                    final = isinstance(exc, (ValidationError, KeyError, ValueError, TypeError))
                    message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                    status = queue.fail(engine, worker, job, message, backoff_seconds=options.backoff_seconds,
                                        final=final)
                    stats.retried += status == "queued"
                    stats.failed += status == "failed"
                    continue
                results.append((job.id, outcome.result, outcome.insights))
            stats.completed += _complete(engine, worker, results)
    finally:
        heartbeat.stopped.set()
        if stop.is_set():
            queue.release(engine, worker)
        stats.seconds = time.perf_counter() - started
    return stats


def worker_process(url: str, options: WorkerOptions, handlers: Mapping[str, str] | None, results: Any,
                   context: Context | None = None) -> None:
    """The body of one worker process (:func:`run_worker` starts them): :func:`work` until SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine = make_engine(url, pool=PoolSettings(size=2, max_overflow=1))
    try:
        stats = run_worker(engine, options=options, handlers=handlers, stop=stop, context=context)
        results.put(asdict(stats))
    finally:
        engine.dispose()


def work(engine: Engine, *, workers: int = 1, options: WorkerOptions = WorkerOptions(),
         handlers: Mapping[str, str] | None = None,
         on_start: Callable[[list[int]], None] | None = None) -> WorkStats:
    """Run ``workers`` worker processes (each with its own connections) and sum their statistics.

    ``workers=1`` runs in this process. ``handlers`` for spawned workers must be ``module:function`` strings.
    """
    if not 1 <= workers <= 64:
        raise ValidationError("workers", f"{workers} is out of range", "1..64")
    if workers == 1:
        return run_worker(engine, options=options, handlers=handlers)
    # fork where available: the children start with the package already imported (seconds saved per worker);
    # each makes its own engine from the URL and never touches the parent's connections.
    fork = "fork" in multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork") if fork else multiprocessing.get_context("spawn")
    context = None
    if fork:  # the predictions of the first as-of days, computed once here instead of once per worker
        context = Context(engine)
        context.prewarm(sorted(resolve_handlers(handlers)))
    results = ctx.Queue()
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()  # no pooled connection is inherited by a forked child (the parent reconnects when needed)
    processes = [ctx.Process(target=worker_process, args=(url, options, handlers, results, context), daemon=True)
                 for _ in range(workers)]
    for process in processes:
        process.start()
    if on_start is not None:
        on_start([p.pid for p in processes if p.pid is not None])
    total = WorkStats(worker=f"{workers} workers")
    try:
        collected = 0
        while collected < workers:
            if not any(p.is_alive() for p in processes) and results.empty():
                break
            try:
                total.add(WorkStats(**results.get(timeout=0.5)))
                collected += 1
            except Exception:  # queue.Empty: poll the processes again
                continue
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()
        raise
    finally:
        for process in processes:
            process.join(timeout=10)
    lost = [p.exitcode for p in processes if p.exitcode not in (0, None)]
    if lost:
        raise WorkerError(f"{len(lost)} worker process(es) ended abnormally (exit codes {lost}); their jobs "
                          "are taken over after the lease")
    return total
