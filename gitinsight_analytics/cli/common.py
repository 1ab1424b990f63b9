"""What the command modules share: settings, engine or plain read connection from the environment, and the audit
decorator. SQLAlchemy is imported only by the commands that make an engine (``read_connection`` needs libpq only)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..exceptions import GitInsightError
from ..settings import Settings, load_settings

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import Engine

    from ..libpq import Connection as LibpqConnection

__all__ = ["settings", "engine", "read_engine", "read_connection", "notebook_url", "audited", "audit_note"]

F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    return load_settings()


def engine(*, start: bool = True, analyses: bool = False) -> Engine:
    """The command's engine. ``analyses`` (``gitinsight query``): through the pooler when it runs, with the
    statement timeout; otherwise (loads, migrations, maintenance) directly to the server, without it."""
    from ..db import connect

    if analyses:
        made = connect(load_settings(), start=start)
    else:
        made = connect(load_settings(), start=start, pooled=False, interactive=False)
    context = click.get_current_context(silent=True)
    if context is not None:  # its pool (and the pool's threads) closed when the command ends, not left to the GC
        context.call_on_close(made.dispose)
    return made


def notebook_url() -> str:
    """The URL handed to notebook kernels: ``DATABASE_URL``, else the pooler when it runs, else the server."""
    from ..urls import resolve_url

    return resolve_url(load_settings(), start=False, pooled=None)


def read_engine() -> Engine:
    """Where analyses (``gitinsight query``) read: GITINSIGHT_READ_URL (e.g. the replica) if set, else the primary
    (through the pooler when it runs), with the statement timeout."""
    from ..db import connect

    made = connect(load_settings(), read=True)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(made.dispose)
    return made


@contextlib.contextmanager
def read_connection() -> Iterator[LibpqConnection | psycopg.Connection[Any]]:
    """What :func:`read_engine` reads from (the same URL, statement timeout and Citus setting), as one plain
    connection in one transaction, rolled back: for the quick commands that need neither SQLAlchemy nor pandas.
    libpq's (:mod:`..libpq`, which starts in a fraction of psycopg's import time) where it can be loaded, else
    psycopg's."""
    from .. import libpq
    from ..urls import resolve_read_url

    cfg = load_settings()
    url = resolve_read_url(cfg, pooled=None)
    lib = libpq.load()
    if lib is not None:
        with libpq.read_transaction(url, statement_timeout=cfg.statement_timeout, lib=lib) as conn:
            yield conn
        return
    from ..pgconn import read_transaction

    with read_transaction(url, statement_timeout=cfg.statement_timeout,
                          prepare_threshold=cfg.pool.prepare_threshold) as pg_conn:
        yield pg_conn


def audit_note(**values: Any) -> None:
    """Add to the audit row of the running command: ``resource_id=``, ``user_id=`` or any detail."""
    click.get_current_context().find_root().meta.setdefault("gitinsight.audit", {}).update(values)


def _write_audit(action: str, resource_type: str, params: dict[str, Any], outcome: str,
                 error: str | None) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from .. import audit

    notes = dict(click.get_current_context().find_root().meta.get("gitinsight.audit", {}))
    details: dict[str, Any] = {"outcome": outcome, "command": click.get_current_context().command_path,
                               "options": params}
    if error:
        details["error"] = error
    resource_id, user_id = notes.pop("resource_id", None), notes.pop("user_id", None)
    details.update(notes)
    target = None
    try:
        target = engine(start=False)
        written = audit.record(target, action, resource_type, resource_id=resource_id, user_id=user_id,
                               details=details)
    except (GitInsightError, SQLAlchemyError) as exc:
        if outcome == "ok":  # a failed command already said why; the database is often the reason
            click.echo(f"warning: audit log not written: {str(exc).splitlines()[0]}", err=True)
        return
    finally:
        if target is not None:  # its own pool: closed, not left to the end of the process
            target.dispose()
    if not written and outcome == "ok":
        click.echo("note: the database has no audit_logs table, so this command is not on record", err=True)


def audited(action: str, resource_type: str) -> Callable[[F], F]:
    """Decorate a state-changing click command (below ``@click.command``): write an audit row when it ends.

    The row records the options (secrets masked), the outcome (``ok`` or ``failed`` with the error) and what
    the command added with :func:`audit_note`. A failed command's row is written after its rollback.
    """

    def wrap(callback: F) -> F:
        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                result = callback(*args, **kwargs)
            except (GitInsightError, click.ClickException) as exc:
                _write_audit(action, resource_type, kwargs, "failed", str(exc).splitlines()[0] if str(exc) else
                             type(exc).__name__)
                raise
            _write_audit(action, resource_type, kwargs, "ok", None)
            return result

        return run  # type: ignore[return-value]

    return wrap
