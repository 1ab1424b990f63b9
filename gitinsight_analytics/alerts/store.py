"""The alerts table: store each alert once, read a user's undelivered ones, record deliveries, list them.

Writes run on the admin connection; what a user is told is read back as that user (``security.as_user``), so the
alerts table's policy (own alerts, about repositories the user can still see) decides what a digest contains.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..exceptions import ValidationError
from ..queries.frame import Bind, connection, read_frame
from ..validation import check_limit
from .rules import Event

__all__ = ["store_events", "pending_alerts", "mark_sent", "mark_failed", "list_alerts", "AlertKey",
           "ALERT_COLUMNS"]

AlertKey = tuple[str, str, str, dt.date]  # repository_id, user_id, kind, as_of

ALERT_COLUMNS = {
    "username": "str", "full_name": "str", "kind": "str", "as_of": "date", "message": "str", "details": "obj",
    "created_at": "ts", "sent_at": "ts", "attempts": "int", "last_error": "str", "repository_id": "str",
    "user_id": "str",
}


def store_events(conn: Connection, user_id: str, events: Iterable[Event]) -> int:
    """Insert the events as alerts of ``user_id``; an alert already stored (same repository, user, kind and
    day) is left as it is. Returns how many are new."""
    rows = [{"repository_id": e.repository_id, "user_id": str(user_id), "kind": e.kind, "as_of": str(e.as_of),
             "full_name": e.full_name, "message": e.message, "details": e.details} for e in events]
    if not rows:
        return 0
    result = conn.execute(text(
        "INSERT INTO alerts (repository_id, user_id, kind, as_of, full_name, message, details) "
        "SELECT x.repository_id, x.user_id, x.kind, x.as_of, x.full_name, x.message, x.details "
        "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(repository_id uuid, user_id uuid, kind text, as_of date, "
        "full_name text, message text, details jsonb) "
        "ON CONFLICT (repository_id, user_id, kind, as_of) DO NOTHING RETURNING 1"),
        {"rows": json.dumps(rows, default=str)})
    return len(result.fetchall())


def pending_alerts(conn: Connection, repository_ids: Sequence[str]) -> pd.DataFrame:
    """The current user's undelivered alerts about ``repository_ids`` (the follows that still want them), oldest
    first. Run it inside ``as_user``: the table's policy keeps other users' alerts and repositories the user
    cannot see out."""
    sql = """
        SELECT NULL::text AS username, a.full_name, a.kind, a.as_of, a.message, a.details, a.created_at, a.sent_at,
               a.attempts, a.last_error, a.repository_id::text, a.user_id::text
        FROM alerts a
        WHERE a.sent_at IS NULL AND a.user_id = app_current_user_id()
          AND a.repository_id = ANY (CAST(:ids AS uuid[]))
        ORDER BY a.as_of, a.full_name, a.kind
    """
    return read_frame(conn, sql, {"ids": list(repository_ids)}, ALERT_COLUMNS)


def _keys(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{"r": r, "u": u, "k": k, "d": d} for r, u, k, d in
            zip(frame["repository_id"], frame["user_id"], frame["kind"], frame["as_of"], strict=True)]


_WHERE_KEY = "repository_id = CAST(:r AS uuid) AND user_id = CAST(:u AS uuid) AND kind = :k AND as_of = :d"


def mark_sent(conn: Connection, alerts: pd.DataFrame, sent_at: dt.datetime) -> None:
    """Record the delivery of ``alerts`` (rows of :func:`pending_alerts`)."""
    if len(alerts):
        conn.execute(text(f"UPDATE alerts SET sent_at = :t, attempts = attempts + 1, last_error = NULL "  # noqa: S608
                          f"WHERE {_WHERE_KEY} AND sent_at IS NULL"),
                     [{**k, "t": sent_at} for k in _keys(alerts)])


def mark_failed(conn: Connection, alerts: pd.DataFrame, error: str) -> None:
    """Record a failed delivery: ``sent_at`` stays NULL, so the next run tries again."""
    if len(alerts):
        conn.execute(text(f"UPDATE alerts SET attempts = attempts + 1, last_error = :e "  # noqa: S608
                          f"WHERE {_WHERE_KEY} AND sent_at IS NULL"),
                     [{**k, "e": error[:1000]} for k in _keys(alerts)])


_LIST_SQL = """
SELECT u.username, a.full_name, a.kind, a.as_of, a.message, a.details, a.created_at, a.sent_at, a.attempts,
       a.last_error, a.repository_id::text, a.user_id::text
FROM alerts a JOIN users u ON u.id = a.user_id
WHERE (CAST(:username AS text) IS NULL OR u.username = CAST(:username AS text))
ORDER BY a.as_of DESC, a.created_at DESC, u.username, a.full_name, a.kind
LIMIT :limit
"""


def list_alerts(bind: Bind, *, username: str | None = None, limit: int = 100) -> pd.DataFrame:
    """Stored alerts, newest day first (``sent_at`` NULL: not delivered yet; ``last_error``: why). Under
    ``as_user`` only that user's alerts about repositories it can see. An unknown ``username`` raises
    :class:`ValidationError`."""
    limit = check_limit(limit)
    if username is not None and (not isinstance(username, str) or not username.strip()):
        raise ValidationError("username", f"{username!r} is not a user name", "the username of an existing user")
    with connection(bind) as conn:
        if username is not None:
            username = username.strip()
            if conn.execute(text("SELECT 1 FROM users WHERE username = :u"), {"u": username}).first() is None:
                raise ValidationError("username", f"no user named {username!r}", "the username of an existing user")
        frame = read_frame(conn, _LIST_SQL, {"username": username, "limit": limit}, ALERT_COLUMNS)
    frame.attrs.update({"username": username, "limit": limit})
    return frame
