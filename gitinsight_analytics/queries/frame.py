"""Turning SQL results into DataFrames with proper dtypes, and running queries on an engine or connection."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ..pgconn import READS_WITHOUT_WORKER_TRANSACTIONS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Bind", "connection", "read_frame", "to_frame", "view_refreshed_at", "stats_relation", "STATS_RELATIONS"]

Bind = Engine | Connection

#: Column kinds: int (int64; never NULL: COALESCE in SQL), float (float64, NaN for NULL), ts (datetime64[us, UTC]),
#: str, bool, and anything else kept as Python objects (dates, lists, dicts).


#: Reads open no transactions on Citus workers (see :data:`..pgconn.READS_WITHOUT_WORKER_TRANSACTIONS`).
_READS_WITHOUT_WORKER_TRANSACTIONS = text(READS_WITHOUT_WORKER_TRANSACTIONS)


@contextlib.contextmanager
def connection(bind: Bind) -> Iterator[Connection]:
    """A connection: the given one (used as it is), or a new one from the engine (closed afterwards) whose reads
    open no transactions on Citus workers."""
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.connect() as conn:
        conn.execute(_READS_WITHOUT_WORKER_TRANSACTIONS)
        yield conn


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
_NAT = -(2**63)  # numpy's NaT as int64


def _column(values: list[Any], kind: str) -> Any:
    import numpy as np
    import pandas as pd

    if kind == "int":
        return np.array(values, dtype="int64")
    if kind == "float":
        return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")
    if kind == "ts":  # tz-aware datetimes -> microseconds since the epoch -> datetime64[us, UTC]
        micros = np.array([_NAT if v is None else (v - _EPOCH) // _MICRO for v in values], dtype="int64")
        return pd.array(micros.view("datetime64[us]")).tz_localize("UTC")
    if kind == "bool":
        return np.array([bool(v) for v in values], dtype="bool")
    if kind == "str":
        return pd.array(values, dtype="str")
    column = np.empty(len(values), dtype="object")  # dates, lists, dicts
    column[:] = values
    return column


def to_frame(rows: Sequence[Any], columns: list[str], kinds: Mapping[str, str]) -> pd.DataFrame:
    """A DataFrame of ``rows`` whose columns get the dtype of their kind (int, float, ts, str, bool, date, obj)."""
    import pandas as pd

    data = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pd.DataFrame(
        {name: _column(list(values), kinds.get(name, "obj")) for name, values in zip(columns, data, strict=True)},
        columns=columns, copy=False,
    )


def read_frame(conn: Connection, sql: str, params: Mapping[str, Any], kinds: Mapping[str, str]) -> pd.DataFrame:
    """Run ``sql`` with bound ``params``; the result as :func:`to_frame`."""
    result = conn.execute(text(sql), dict(params))
    columns = list(result.keys())
    return to_frame(result.fetchall(), columns, kinds)


def view_refreshed_at(conn: Connection) -> dt.datetime | None:
    """When the analysis views (repository_stats and the insight aggregates) were last refreshed."""
    from ..maintenance.refresh import view_refreshed_at as refreshed_at

    return refreshed_at(conn)


#: The relations :func:`stats_relation` chooses from (the only names formatted into the statistics queries).
STATS_RELATIONS = ("repository_stats", "visible_repository_stats")


def stats_relation(conn: Connection) -> str:
    """``repository_stats``, or ``visible_repository_stats`` when row-level security applies to ``conn``.

    The materialized view holds every user's repositories and is not granted to ``application_role``; the view
    returns only the repositories the querying role can see (see objects.VISIBLE_REPOSITORY_STATS). The admin
    reads the materialized view itself: the view's security barrier would keep ORDER BY ... LIMIT off its indexes.
    """
    rls = conn.execute(text("SELECT row_security_active('repositories')")).scalar()
    return STATS_RELATIONS[1] if rls else STATS_RELATIONS[0]
