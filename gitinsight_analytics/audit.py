"""The audit trail: one ``audit_logs`` row for each state-changing command, success or failure.

Rows are written in their own transaction after the command, so a failed (rolled-back) load is still on
record. The database may not hold ``audit_logs`` (migrated down to base, a fresh server): then nothing is
written and the caller is told so.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from .db import redact

__all__ = ["record", "json_safe", "recent", "SECRET_WORDS", "USER_AGENT_PREFIX"]

#: How the rows of the package's own commands start their user_agent (other rows: the application's users).
USER_AGENT_PREFIX = "gitinsight/"
#: Option names whose values never reach the audit log.
SECRET_WORDS = ("secret", "password", "token", "pepper", "encryption_key")


def json_safe(value: Any) -> Any:
    """``value`` as JSON (paths and dates as strings, URLs with their password hidden)."""
    if isinstance(value, Mapping):
        return {str(k): ("***" if any(w in str(k).lower() for w in SECRET_WORDS) else json_safe(v))
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Path | uuid.UUID | dt.date | dt.datetime):
        return str(value)
    return repr(value)


def _user_agent() -> str:
    from . import __version__

    return f"{USER_AGENT_PREFIX}{__version__} ({getpass.getuser()}@{socket.gethostname()})"


def _write(conn: Connection, action: str, resource_type: str, resource_id: uuid.UUID | str | None,
           user_id: uuid.UUID | str | None, details: Mapping[str, Any]) -> bool:
    if not conn.execute(text("SELECT to_regclass('audit_logs') IS NOT NULL")).scalar():
        return False
    conn.execute(
        text(
            "INSERT INTO audit_logs (user_id, action, resource_type, resource_id, details, user_agent) "
            "VALUES (:user_id, :action, :resource_type, :resource_id, CAST(:details AS jsonb), :agent)"
        ),
        {"user_id": str(user_id) if user_id else None, "action": action[:100], "resource_type": resource_type[:50],
         "resource_id": str(resource_id) if resource_id else None, "details": json.dumps(json_safe(details)),
         "agent": _user_agent()},
    )
    return True


def record(target: Engine | Connection, action: str, resource_type: str, *,
           resource_id: uuid.UUID | str | None = None, user_id: uuid.UUID | str | None = None,
           details: Mapping[str, Any] | None = None) -> bool:
    """Append one audit row (``action`` such as ``seed`` or ``keys.create``); False when there is no audit_logs.

    Given a Connection the row joins its transaction; given an Engine it is committed on its own.
    """
    details = dict(details or {})
    if isinstance(target, Connection):
        return _write(target, action, resource_type, resource_id, user_id, details)
    with target.begin() as conn:
        return _write(conn, action, resource_type, resource_id, user_id, details)


def recent(conn: Connection, *, limit: int = 20, action: str | None = None,
           commands_only: bool = False) -> list[dict[str, Any]]:
    """The newest audit rows (optionally of one action; with ``commands_only`` only the rows of gitinsight's own
    commands, not the application's events), newest first."""
    rows = conn.execute(
        text(
            "SELECT created_at, action, resource_type, resource_id, user_id, details, user_agent FROM audit_logs "
            "WHERE (CAST(:action AS text) IS NULL OR action = :action) "
            "AND (NOT :commands_only OR starts_with(user_agent, :prefix)) ORDER BY created_at DESC LIMIT :limit"
        ),
        {"action": action, "limit": limit, "commands_only": commands_only, "prefix": USER_AGENT_PREFIX},
    )
    return [dict(r._mapping) for r in rows]
