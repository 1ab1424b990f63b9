"""Plain psycopg connections, without SQLAlchemy: the server check and the analyses' read transaction.

The engines (:mod:`.db`, :mod:`.pool`) and the quick read path of the CLI (``gitinsight query search --format
csv``, which starts in a fraction of the time an engine takes) share what is defined here: how a connection is
opened and checked, the one-line "cannot connect" error, the statement timeout (``set_config(..., true)``, local
to the transaction, so it also works through PgBouncer) and its :class:`StatementTimeout` error, and the Citus
setting that keeps reads from opening transactions on the workers. psycopg is imported by the functions that use
it, so the libpq client of the quickest commands (:mod:`.libpq`) shares these definitions without loading it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .exceptions import DatabaseUnreachable, ServerTooOld, StatementTimeout
from .urls import libpq_url, redact, sqlalchemy_url

if TYPE_CHECKING:
    import psycopg

__all__ = ["connect", "read_transaction", "set_statement_timeout", "statement_timeout_error", "is_statement_timeout",
           "MIN_SERVER_VERSION_NUM", "STATEMENT_TIMEOUT_SETTING", "READS_WITHOUT_WORKER_TRANSACTIONS",
           "CONNECT_OPTIONS", "CITUS_READS_SETTING", "connection_lost_error"]

MIN_SERVER_VERSION_NUM = 150000
#: Named in the error when a statement is cancelled by the analyses' timeout.
STATEMENT_TIMEOUT_SETTING = "GITINSIGHT_STATEMENT_TIMEOUT"
#: What every connection of the package is opened with (besides ``prepare_threshold``).
CONNECT_OPTIONS: dict[str, Any] = {"connect_timeout": 10, "application_name": "gitinsight"}

#: Analyses only read: on Citus a SELECT inside a transaction block otherwise opens a transaction on each worker
#: connection it uses (BEGIN with a distributed transaction id, then COMMIT: two more round trips per connection);
#: a write still opens them. Transaction-local, so it works through PgBouncer; a placeholder without Citus.
CITUS_READS_SETTING = "citus.select_opens_transaction_block"
READS_WITHOUT_WORKER_TRANSACTIONS = f"SELECT set_config('{CITUS_READS_SETTING}', 'off', true)"


def connect(url: str, *, prepare_threshold: int | None = None) -> psycopg.Connection[Any]:
    """A psycopg connection to ``url`` (any accepted spelling) on a server of a supported version.

    Raises :class:`DatabaseUnreachable` (``cannot connect to <url without password>: <reason>``) or
    :class:`ServerTooOld`. The connection is not in autocommit mode: its first statement opens a transaction.
    """
    import psycopg

    target = sqlalchemy_url(url)
    try:
        conn = psycopg.connect(libpq_url(target), **CONNECT_OPTIONS, prepare_threshold=prepare_threshold)
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or ["connection failed"])[0]
        raise DatabaseUnreachable(f"cannot connect to {redact(target)}: {reason}") from None
    version = conn.info.server_version  # from the server's greeting (PgBouncer passes it on): no round trip
    if version < MIN_SERVER_VERSION_NUM:
        conn.close()
        raise ServerTooOld(f"the server runs PostgreSQL {version // 10000}.{version % 10000} "
                           "(allowed: PostgreSQL 15 or newer)")
    return conn


def set_statement_timeout(conn: psycopg.Connection[Any], seconds: float) -> None:
    """Limit each statement of the open (or next) transaction of ``conn`` to ``seconds`` (0: no limit)."""
    conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{int(round(seconds * 1000))}ms",))


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (psycopg's, or :mod:`.libpq`'s :class:`QueryFailed`) is a statement cancelled by
    ``statement_timeout``: SQLSTATE 57014 (query_canceled), which a cancel request also raises, and the server's
    reason."""
    return getattr(exc, "sqlstate", None) == "57014" and "statement timeout" in str(exc)


def connection_lost_error(reason: str) -> DatabaseUnreachable:
    """The one-line error for a connection lost in the middle of a command (server stopped, restarted, network)."""
    return DatabaseUnreachable(f"lost the database connection, the command's open transaction was rolled back: "
                               f"{reason}")


def statement_timeout_error(seconds: float) -> StatementTimeout:
    """The error for a statement the analyses' timeout of ``seconds`` cancelled."""
    return StatementTimeout(
        f"the statement was cancelled by the statement timeout ({seconds:g} s for analyses; allowed: raise "
        f"{STATEMENT_TIMEOUT_SETTING} (seconds, 0 = no limit) or run the block in "
        "statement_timeout(conn, seconds=...)); nothing was changed"
    )


@contextlib.contextmanager
def read_transaction(url: str, *, statement_timeout: float = 0,
                     prepare_threshold: int | None = None) -> Iterator[psycopg.Connection[Any]]:
    """One connection (:func:`connect`) in one transaction for an analysis that only reads, as an engine's
    analyses run: each statement limited to ``statement_timeout`` seconds (0: none; a cancelled one raises
    :class:`StatementTimeout`), no transactions opened on Citus workers. Rolled back and closed afterwards."""
    import psycopg

    conn = connect(url, prepare_threshold=prepare_threshold)
    try:
        if statement_timeout > 0:
            set_statement_timeout(conn, statement_timeout)
        conn.execute(READS_WITHOUT_WORKER_TRANSACTIONS)
        yield conn
    except psycopg.errors.QueryCanceled as exc:
        if statement_timeout > 0 and is_statement_timeout(exc):  # not a limit of ours: the server's error as it is
            raise statement_timeout_error(statement_timeout) from None
        raise
    finally:
        if not conn.closed and not conn.broken:
            with contextlib.suppress(psycopg.Error):  # nothing to keep; the server connection goes back clean
                conn.rollback()
        conn.close()
