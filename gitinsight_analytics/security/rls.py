"""Row-level security in practice: a block of work run as one user under ``application_role``.

API keys live in :mod:`gitinsight_analytics.security.keys`."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from psycopg import sql
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine

from ..citus import has_citus_policies
from ..db import driver_connection
from ..exceptions import ConfigurationError, RowSecurityError, ValidationError
from ..objects import APPLICATION_ROLE_NAME, CITUS_USER_LISTS_SQL

__all__ = [
    "as_user",
    "check_rls_bypass",
    "USER_ID_SETTING",
]

#: The setting the row-level security policies read (through ``app_current_user_id()``).
USER_ID_SETTING = "app.current_user_id"


def _user_id(user_id: object) -> str:
    if isinstance(user_id, uuid.UUID):
        return str(user_id)
    if isinstance(user_id, str):
        try:
            return str(uuid.UUID(user_id.strip()))
        except ValueError:
            pass
    raise ValidationError("user_id", f"{user_id!r} is not a UUID", "the id (a UUID) of a user")


def _in_transaction(dbapi_connection: object) -> bool:
    """Whether the driver's connection is inside a transaction (psycopg; True when the driver cannot tell)."""
    status = getattr(getattr(dbapi_connection, "info", None), "transaction_status", None)
    return status is None or status != 0  # psycopg.pq.TransactionStatus.IDLE


def _citus_session(conn: Connection, user_id: str) -> str:
    """On Citus: compute the user's lists as the admin, hand them and the user id to every node as transaction
    settings (``SET LOCAL``, propagated by citus.propagate_set_commands; ``set_config`` is not), then take the role.
    SET takes no bound parameters: the values, a UUID and arrays of UUIDs read from the database, are quoted by
    the driver (``sql.Literal``)."""
    visible, owners, owned = conn.execute(text(CITUS_USER_LISTS_SQL), {"u": user_id}).one()
    raw = driver_connection(conn)
    raw.execute("SET LOCAL citus.propagate_set_commands = 'local'")
    for name, value in ((USER_ID_SETTING, user_id), ("app.visible_repository_ids", visible),
                        ("app.visible_owner_ids", owners), ("app.owned_repository_ids", owned)):
        raw.execute(sql.SQL("SET LOCAL {} = {}").format(sql.SQL(name), sql.Literal(value)))
    conn.execute(text("SET LOCAL ROLE application_role"))
    return conn.execute(text("SELECT current_user::text")).scalar_one()


@contextlib.contextmanager
def _session(conn: Connection, user_id: str) -> Iterator[Connection]:
    with conn.begin() as transaction:
        if has_citus_policies(conn):
            role = _citus_session(conn, user_id)
        else:
            conn.execute(text("SET LOCAL ROLE application_role"))
            role = conn.execute(text("SELECT current_user::text, set_config(:s, :u, true)"),
                                {"s": USER_ID_SETTING, "u": user_id}).scalar_one()
        if role != APPLICATION_ROLE_NAME:  # SET LOCAL outside a transaction block (autocommit) does nothing
            raise RowSecurityError("as_user: the role was not set (is the connection in autocommit mode?); "
                                   "nothing was run")

        def guard(c: Connection, cursor: object, *_: object) -> None:
            # A commit or rollback inside the block would end the role and the user id with the transaction:
            # whatever ran next would run as the login role, unfiltered. Refuse it.
            if c.get_transaction() is not transaction or not _in_transaction(c.connection.dbapi_connection):
                raise RowSecurityError("as_user: the transaction ended inside the block, so its role and user id "
                                       "ended too; nothing more is run (do not commit or roll back inside it)")

        event.listen(conn, "before_cursor_execute", guard)
        try:
            yield conn
        finally:
            event.remove(conn, "before_cursor_execute", guard)


@contextlib.contextmanager
def as_user(target: Engine | Connection, user_id: uuid.UUID | str) -> Iterator[Connection]:
    """Run a block as ``application_role`` for one user: row-level security shows and lets it change only what
    that user may. Yields a connection in a transaction that the block's end commits (rolls back on an error).

    The role (``SET LOCAL ROLE``) and ``app.current_user_id`` (``set_config(..., true)``) are local to that
    transaction, so they end with it and a pooled connection never carries them to its next user. ``target`` is
    an Engine (a connection is checked out for the block) or a Connection with no transaction in progress.
    Raises :class:`ValidationError` for a ``user_id`` that is not a UUID and :class:`RowSecurityError` when the
    block could not run under the role only (a transaction already open, autocommit, a commit inside the block).
    """
    uid = _user_id(user_id)
    if isinstance(target, Engine):
        with target.connect() as conn, _session(conn, uid) as session:
            yield session
        return
    if not isinstance(target, Connection):
        raise ValidationError("target", f"{type(target).__name__} is not an Engine or a Connection",
                              "an Engine, or a Connection with no transaction in progress")
    if target.in_transaction():
        raise RowSecurityError("as_user: the connection has a transaction in progress; the role and user id would "
                               "last until that transaction ends, not the block (commit or roll back first, or pass "
                               "the Engine)")
    with _session(target, uid) as session:
        yield session


def check_rls_bypass(conn: Connection) -> None:
    """Raise :class:`ConfigurationError` unless the connection's role bypasses row-level security.

    The tables FORCE row-level security, and its policies are written for ``application_role``: any other role
    that does not bypass RLS (a non-superuser table owner without BYPASSRLS, say) sees no rows at all, so the
    loaders, ``gitinsight refresh`` and the analyses on the admin connection would find nothing.
    """
    name, bypasses = conn.execute(
        text("SELECT rolname::text, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    ).one()
    if not bypasses:
        raise ConfigurationError(
            f"the database role {name!r} is neither a superuser nor BYPASSRLS, and the tables force row-level "
            "security: it would see no rows (allowed: a superuser, or a role with BYPASSRLS: run "
            f"ALTER ROLE \"{name}\" BYPASSRLS as a superuser)"
        )
