"""The engine's connection pool and per-statement limit.

Pool: psycopg_pool's ``ConnectionPool`` behind SQLAlchemy. SQLAlchemy's QueuePool does not hand a returned
connection to the caller that has waited longest, so under load some callers wait for seconds while others are
served at once; psycopg_pool queues its waiters and serves them in arrival order. SQLAlchemy sees a ``NullPool``
whose connect takes a connection from the psycopg pool and whose close gives it back (``close_returns=True``),
the integration psycopg documents; this subclass also closes the psycopg pool on ``engine.dispose()``.

Statement timeout: ``SET LOCAL statement_timeout`` at the start of each transaction (a setting local to the
transaction also works through PgBouncer in transaction mode, where session settings would leak to other
clients); a statement it cancels raises :class:`StatementTimeout`.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from .exceptions import DatabaseUnreachable, PoolExhausted
from .pgconn import STATEMENT_TIMEOUT_SETTING, is_statement_timeout, set_statement_timeout, statement_timeout_error
from .settings import PoolSettings

__all__ = ["FairPool", "limit_statements", "statement_timeout", "STATEMENT_TIMEOUT_SETTING"]


def _forget_notice_handler(conn: psycopg.Connection) -> None:
    """psycopg_pool ``reset``: undo what SQLAlchemy's per-checkout connect hook adds, so nothing accumulates."""
    from sqlalchemy.dialects.postgresql.psycopg import _log_notices

    with contextlib.suppress(ValueError):
        conn.remove_notice_handler(_log_notices)
    if conn.autocommit:  # an AUTOCOMMIT execution option is not carried to the connection's next user
        conn.autocommit = False


class FairPool(sa.NullPool):
    """A SQLAlchemy pool over a psycopg ``ConnectionPool``: at most ``size + max_overflow`` connections,
    ``size`` kept open, waiters served first come first served, :class:`PoolExhausted` after ``timeout``."""

    def __init__(self, conninfo: str, settings: PoolSettings, connect_kwargs: dict[str, Any], **kw: Any) -> None:
        self._conninfo, self._settings, self._connect_kwargs = conninfo, settings, dict(connect_kwargs)
        self._backing: ConnectionPool | None = None
        self._lock = threading.Lock()
        super().__init__(self._checkout, **kw)  # type: ignore[arg-type]  # psycopg's Connection is a DB-API one

    @property
    def settings(self) -> PoolSettings:
        return self._settings

    @property
    def max_size(self) -> int:
        return self._settings.size + self._settings.max_overflow

    def backing(self) -> ConnectionPool:
        """The psycopg pool, opened on first use (making an engine connects to nothing)."""
        with self._lock:
            if self._backing is None:
                s = self._settings
                self._backing = ConnectionPool(
                    self._conninfo,
                    kwargs={**self._connect_kwargs, "prepare_threshold": s.prepare_threshold},
                    min_size=s.size,
                    max_size=self.max_size,
                    timeout=s.timeout,
                    max_lifetime=s.recycle if s.recycle > 0 else math.inf,
                    check=ConnectionPool.check_connection if s.pre_ping else None,
                    reset=_forget_notice_handler,
                    close_returns=True,
                    name="gitinsight",
                    open=False,
                )
                self._backing.open(wait=False)
            return self._backing

    def _checkout(self) -> psycopg.Connection:
        backing = self.backing()
        try:
            return backing.getconn()
        except PoolTimeout:
            if backing.pop_stats().get("connections_errors", 0):  # opening connections failed: say why
                self._probe()
            raise PoolExhausted(
                f"no database connection became free within {self._settings.timeout:g} s: all {self.max_size} "
                f"connections of this process's pool ({self._settings.profile} profile) are in use (allowed: raise "
                "GITINSIGHT_POOL_TIMEOUT to wait longer, or GITINSIGHT_POOL_SIZE / GITINSIGHT_MAX_OVERFLOW for more "
                "connections)"
            ) from None

    def _probe(self) -> None:
        """Raise :class:`DatabaseUnreachable` with the server's reason if a new connection fails now."""
        try:
            psycopg.connect(self._conninfo, **{**self._connect_kwargs, "connect_timeout": 5}).close()
        except psycopg.OperationalError as exc:
            where = sa.make_url(self._conninfo).render_as_string(hide_password=True)
            reason = (str(exc).strip().splitlines() or ["connection failed"])[0]
            raise DatabaseUnreachable(f"cannot connect to {where}: {reason}") from None

    def dispose(self) -> None:
        with self._lock:
            backing, self._backing = self._backing, None
        if backing is not None:
            backing.close()

    def recreate(self) -> FairPool:
        return self.__class__(self._conninfo, self._settings, self._connect_kwargs, recycle=self._recycle,
                              echo=self.echo, logging_name=self._orig_logging_name,
                              reset_on_return=self._reset_on_return, pre_ping=self._pre_ping,
                              _dispatch=self.dispatch, dialect=self._dialect)

    def status(self) -> str:
        stats = self._backing.get_stats() if self._backing is not None else {}
        return (f"FairPool max={self.max_size} open={stats.get('pool_size', 0)} "
                f"idle={stats.get('pool_available', 0)} waiting={stats.get('requests_waiting', 0)}")


def limit_statements(engine: Engine, seconds: float) -> Engine:
    """Cancel any statement of ``engine`` that runs longer than ``seconds`` (0: no limit), with
    :class:`StatementTimeout`. Applies to transactions; autocommit maintenance statements are not limited."""
    milliseconds = int(round(seconds * 1000))
    if milliseconds <= 0:
        return engine

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        dbapi_connection: Any = conn.connection.dbapi_connection  # psycopg's, under the pool
        if not dbapi_connection.autocommit:  # outside a transaction block SET LOCAL would do nothing
            set_statement_timeout(dbapi_connection, seconds)

    @event.listens_for(engine, "handle_error")
    def _translate(context: sa.engine.ExceptionContext) -> BaseException | None:
        if is_statement_timeout(context.original_exception):
            return statement_timeout_error(seconds)
        return None

    return engine


@contextlib.contextmanager
def statement_timeout(conn: Connection, *, seconds: float) -> Iterator[Connection]:
    """A transaction on ``conn`` whose statements may each run ``seconds`` (0: no limit), overriding the engine's
    timeout for this block only (the setting is local to the transaction)."""
    if seconds < 0:
        from .exceptions import ValidationError

        raise ValidationError("seconds", f"{seconds} is negative", "0 (no limit) or more")
    with conn.begin():
        dbapi_connection: Any = conn.connection.dbapi_connection  # psycopg's; the engine's own timeout ran in "begin"
        set_statement_timeout(dbapi_connection, seconds)
        yield conn
