"""Compare repositories side by side from the imported star history (``repository_snapshots``).

One row per repository and snapshot day: the metric's value, its gains (since the previous snapshot, per day,
over 7 days), its 7-day growth rate, and the repository's rank by stars among the repositories of its language
that day. Renamed repositories are followed: the import keeps one repository id across renames, and an old
name given here finds the repository through the names its snapshots carry. The sentences the compare report
shows and its weekly gains are computed in the package too, so they are
tested like the rest (module ``compare_findings``). Definitions: docs/analyses.md ("Compare").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..exceptions import ValidationError
from ..validation import check_choice, parse_date
from .frame import Bind, connection, read_frame
from .options import ALIGNS, METRICS

__all__ = [
    "compare_repositories",
    "resolve_repositories",
    "default_repositories",
    "latest_insights",
    "COMPARE_COLUMNS",
    "METRICS",
    "ALIGNS",
    "MIN_REPOSITORIES",
    "MAX_REPOSITORIES",
]

MIN_REPOSITORIES = 2
MAX_REPOSITORIES = 10
_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")

COMPARE_COLUMNS = {
    "full_name": "str", "requested": "str", "name_that_day": "str", "language": "str", "snapshot_date": "date",
    "age_days": "int", "value": "int", "gain": "float", "gap_days": "float", "gain_per_day": "float",
    "gain_7d": "float", "growth_pct_7d": "float", "stars": "int", "rank_in_language": "float",
    "in_language_top100": "bool",
}

# Ranks are taken among every repository of the same language on the same day (the window function sees them
# all, then the chosen ones are kept), so a rank does not depend on which repositories are compared. Under
# row-level security "every repository" means every repository the user can see.
_SQL = """
WITH chosen AS (
    SELECT c.repository_id, c.ord
    FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS c(repository_id, ord)
), first_seen AS (
    SELECT s.repository_id, MIN(s.snapshot_date) AS first_date
    FROM repository_snapshots s WHERE s.repository_id IN (SELECT repository_id FROM chosen)
    GROUP BY s.repository_id
), days AS (
    SELECT s.repository_id, s.snapshot_date, s.full_name AS name_that_day, s.stars, s.forks,
           COALESCE(s.open_issues, 0) AS open_issues, s.lists,
           LAG(s.snapshot_date) OVER w AS prev_date,
           LAG(s.{metric}) OVER w AS prev_value,
           s.{metric} AS value
    FROM repository_snapshots s
    WHERE s.repository_id IN (SELECT repository_id FROM chosen) AND s.snapshot_date <= :end
    WINDOW w AS (PARTITION BY s.repository_id ORDER BY s.snapshot_date)
), ranked AS (
    SELECT s.repository_id, s.snapshot_date,
           RANK() OVER (PARTITION BY r.language, s.snapshot_date ORDER BY s.stars DESC) AS rank_in_language
    FROM repository_snapshots s JOIN repositories r ON r.id = s.repository_id
    WHERE r.language IN (SELECT r2.language FROM repositories r2 JOIN chosen c ON c.repository_id = r2.id)
      AND s.snapshot_date >= :start AND s.snapshot_date <= :end
)
SELECT r.full_name, d.name_that_day, r.language, d.snapshot_date,
       d.snapshot_date - f.first_date AS age_days,
       d.value, (d.value - d.prev_value)::float8 AS gain, (d.snapshot_date - d.prev_date)::float8 AS gap_days,
       (d.value - d.prev_value)::float8 / NULLIF(d.snapshot_date - d.prev_date, 0) AS gain_per_day,
       (d.value - w.value)::float8 AS gain_7d,
       100.0 * (d.value - w.value) / NULLIF(w.value, 0) AS growth_pct_7d,
       d.stars, k.rank_in_language::float8 AS rank_in_language,
       EXISTS (SELECT 1 FROM unnest(d.lists) l WHERE l NOT LIKE 'top-100-%') AS in_language_top100,
       c.ord
FROM days d
JOIN chosen c USING (repository_id)
JOIN repositories r ON r.id = d.repository_id
JOIN first_seen f USING (repository_id)
LEFT JOIN days w ON w.repository_id = d.repository_id AND w.snapshot_date = d.snapshot_date - 7
LEFT JOIN ranked k ON k.repository_id = d.repository_id AND k.snapshot_date = d.snapshot_date
                  AND r.language IS NOT NULL
WHERE d.snapshot_date >= :start
ORDER BY c.ord, d.snapshot_date
"""
_SQLS = {metric: _SQL.format(metric=column) for metric, column in METRICS.items()}


def _names(full_names: Any) -> list[str]:
    allowed = f"{MIN_REPOSITORIES} to {MAX_REPOSITORIES} names owner/name"
    if isinstance(full_names, str):
        full_names = [n for n in full_names.replace(",", " ").split() if n]
    if not isinstance(full_names, Iterable):
        raise ValidationError("full_names", f"{full_names!r} is not a list of names", allowed)
    names = [n.strip() if isinstance(n, str) else n for n in full_names]
    bad = [n for n in names if not isinstance(n, str) or not _NAME.match(n)]
    if bad:
        raise ValidationError("full_names", f"{bad[0]!r} is not owner/name", allowed)
    if not MIN_REPOSITORIES <= len(names) <= MAX_REPOSITORIES:
        raise ValidationError("full_names", f"{len(names)} given", allowed)
    return names


#: How a name is found, in order: the current name exactly, case-insensitively, then an earlier name (the newest
#: snapshot that carried it).
_RESOLVE_STEPS = (
    "SELECT r.id FROM repositories r WHERE r.full_name = :name",
    "SELECT r.id FROM repositories r WHERE lower(r.full_name) = lower(:name) ORDER BY r.full_name LIMIT 1",
    "SELECT s.repository_id FROM repository_snapshots s WHERE lower(s.full_name) = lower(:name) "
    "ORDER BY s.snapshot_date DESC, s.repository_id LIMIT 1",
)


def resolve_repositories(conn: Connection, full_names: Any) -> list[tuple[str, Any]]:
    """(name as given, repository id) for each of 2..10 names: the current name (exact, else case-insensitive),
    else an earlier name of a renamed or transferred repository (the newest day a snapshot carried it).

    Raises :class:`ValidationError` naming every unknown name, or two names of one repository."""
    names = _names(full_names)
    # One name at a time (2..10 of them): on Citus a subquery per row of unnest() over the sharded tables cannot
    # be planned, three plain lookups per name can.
    found = {name: next((id_ for step in _RESOLVE_STEPS
                         if (id_ := conn.execute(text(step), {"name": name}).scalar()) is not None), None)
             for name in names}
    missing = [n for n in names if found.get(n) is None]
    if missing:
        raise ValidationError("full_names", "not in the data: " + ", ".join(missing),
                              "owner/name of imported repositories (earlier names of renamed ones work too)")
    seen: dict[Any, str] = {}
    for name in names:
        if found[name] in seen:
            raise ValidationError("full_names", f"{seen[found[name]]} and {name} are the same repository",
                                  "each repository once")
        seen[found[name]] = name
    return [(n, found[n]) for n in names]


def compare_repositories(
    bind: Bind,
    full_names: Sequence[str] | str,
    *,
    metric: str = "stars",
    align: str = "calendar",
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
) -> pd.DataFrame:
    """The history of 2..10 repositories side by side, one row per repository and snapshot day between ``start``
    and ``end`` (default: all of it), in the order given.

    ``value`` is the metric (stars, forks or open issues) that day; ``gain`` the change since the repository's
    previous snapshot (``gap_days`` before, so ``gain_per_day`` = gain / gap_days), ``gain_7d`` the change since
    the snapshot exactly 7 days before (NaN without one) and ``growth_pct_7d`` that change in percent;
    ``age_days`` counts days since the repository's first snapshot (``align="age"`` puts the series side by side
    on it: ``df.attrs["x"]`` names the column to plot against). ``rank_in_language`` ranks by stars among all
    repositories of its (current) language in that day's snapshot (ties share the best rank; NaN without a
    language); ``in_language_top100`` says whether the source listed it in its language's top-100 list.
    ``name_that_day`` is the name the data carried that day (renames show there). Unknown names raise
    :class:`ValidationError` listing them.
    """
    metric = check_choice(metric, "metric", METRICS)
    align = check_choice(align, "align", ALIGNS)
    start_date, end_date = parse_date(start, "start"), parse_date(end, "end")
    if start_date and end_date and start_date > end_date:
        raise ValidationError("start", f"{start_date} is after end {end_date}", "start <= end")
    with connection(bind) as conn:
        resolved = resolve_repositories(conn, full_names)
        params = {"ids": [str(i) for _, i in resolved], "start": start_date or dt.date(1, 1, 1),
                  "end": end_date or dt.date(9999, 12, 31)}
        frame = read_frame(conn, _SQLS[metric], params, {**COMPARE_COLUMNS, "ord": "int"})
    requested = {i + 1: name for i, (name, _) in enumerate(resolved)}
    frame.insert(1, "requested", pd.array(frame.pop("ord").map(requested).tolist(), dtype="str"))
    frame = frame[list(COMPARE_COLUMNS)]
    frame["rank_in_language"] = frame["rank_in_language"].astype("Int64")  # NA without a language
    frame.attrs.update({"metric": metric, "align": align, "x": "snapshot_date" if align == "calendar" else "age_days",
                        "start": start_date, "end": end_date, "repositories": [n for n, _ in resolved],
                        "as_of": frame["snapshot_date"].max() if len(frame) else None})
    return frame




def default_repositories(bind: Bind, *, count: int = 3) -> list[str]:
    """The ``count`` most starred repositories on the newest snapshot day (the compare report's default);
    empty when there is no star history."""
    sql = """
        SELECT r.full_name FROM repository_snapshots s JOIN repositories r ON r.id = s.repository_id
        WHERE s.snapshot_date = (SELECT max(snapshot_date) FROM repository_snapshots)
        ORDER BY s.stars DESC, r.full_name LIMIT :n
    """
    with connection(bind) as conn:
        return list(conn.execute(text(sql), {"n": count}).scalars())


_INSIGHTS_SQL = """
SELECT r.full_name, i.generated_at, i.type, i.title, i.confidence_score::float8 AS confidence_score
FROM (
    -- numbered per repository (the distribution column on Citus: computed on each shard)
    SELECT i.repository_id, i.generated_at, i.type, i.title, i.confidence_score,
           row_number() OVER (PARTITION BY i.repository_id ORDER BY i.generated_at DESC NULLS LAST, i.id) AS n
    FROM insights i WHERE i.repository_id = ANY (CAST(:ids AS uuid[]))
) i
JOIN repositories r ON r.id = i.repository_id
WHERE i.n <= :per_repo
ORDER BY array_position(CAST(:ids AS uuid[]), i.repository_id), i.generated_at DESC NULLS LAST, i.n
"""


def latest_insights(bind: Bind, full_names: Sequence[str] | str, *, per_repository: int = 5) -> pd.DataFrame:
    """The newest ``per_repository`` insights of each repository (names resolved as in
    :func:`compare_repositories`), in the order given."""
    with connection(bind) as conn:
        resolved = resolve_repositories(conn, full_names)
        return read_frame(conn, _INSIGHTS_SQL, {"ids": [str(i) for _, i in resolved], "per_repo": per_repository},
                          {"full_name": "str", "generated_at": "ts", "type": "str", "title": "str",
                           "confidence_score": "float"})
