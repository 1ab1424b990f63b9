"""What the operators did and how the audit log is stored: the package's commands on the audit trail, and the
rows in each monthly partition of audit_logs (for the operations report)."""

from __future__ import annotations

import pandas as pd

from ..audit import recent
from ..validation import check_limit, check_text
from .frame import Bind, connection, read_frame, to_frame

__all__ = ["command_history", "audit_partition_rows"]

_HISTORY_COLUMNS = {"created_at": "ts", "action": "str", "outcome": "str", "resource_type": "str",
                    "resource_id": "str", "command": "str", "error": "str", "user_agent": "str"}


def command_history(bind: Bind, *, limit: int = 20, action: str | None = None) -> pd.DataFrame:
    """The newest ``limit`` audit rows written by gitinsight's own state-changing commands (migrations, loads,
    refreshes, backups, keys...), newest first, optionally of one ``action``: when, what, ``ok``/``failed`` and the
    error line. The application's own events (logins, views...) are not included."""
    limit = check_limit(limit)
    action = check_text(action, "action")
    with connection(bind) as conn:
        found = recent(conn, limit=limit, action=action, commands_only=True)
    rows = []
    for r in found:
        details = r["details"] or {}
        rows.append((r["created_at"], r["action"], details.get("outcome", ""), r["resource_type"],
                     str(r["resource_id"] or ""), details.get("command", ""), details.get("error", ""),
                     r["user_agent"]))
    return to_frame(rows, list(_HISTORY_COLUMNS), _HISTORY_COLUMNS)


def audit_partition_rows(bind: Bind) -> pd.DataFrame:
    """Every partition of audit_logs with its range (``range_start`` NULL for the default partition) and its
    exact row count, oldest month first and the default partition last: rows left in the default partition mean
    ``gitinsight maintain partitions`` is due."""
    sql = """
        WITH parts AS (
            SELECT c.relname::text AS partition,
                   substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \\(''([^'']+)''\\)')::timestamptz
                       AS range_start,
                   substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \\(''([^'']+)''\\)')::timestamptz
                       AS range_end
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass('audit_logs')
        ), counted AS (
            -- per month, not per tableoid: on Citus the rows come from the shards, whose tableoids are not the
            -- partitions'. Partitions are whole months, so a month lies in one partition or in the default one.
            SELECT date_trunc('month', created_at) AS month, count(*) AS n FROM audit_logs GROUP BY 1
        )
        SELECT p.partition, p.range_start, p.range_end,
               COALESCE((SELECT sum(c.n) FROM counted c
                         WHERE CASE WHEN p.range_start IS NULL
                                    THEN NOT EXISTS (SELECT 1 FROM parts q WHERE c.month >= q.range_start
                                                                             AND c.month < q.range_end)
                                    ELSE c.month >= p.range_start AND c.month < p.range_end END), 0)::bigint AS rows
        FROM parts p
        ORDER BY p.range_start NULLS LAST, p.partition
    """
    with connection(bind) as conn:
        return read_frame(conn, sql, {}, {"partition": "str", "range_start": "ts", "range_end": "ts", "rows": "int"})
