"""Compare repositories side by side from the imported star history (``repository_snapshots``).

One row per repository and snapshot day: the metric's value, its gains (since the previous snapshot, per day,
over 7 days), its 7-day growth rate, and the repository's rank by stars among the repositories of its language
that day. Renamed repositories are followed: the import keeps one repository id across renames, and an old
name given here finds the repository through the names its snapshots carry. The sentences the compare report
shows (:func:`compare_findings`) and its weekly gains (:func:`weekly_gains`) are computed here too, so they are
tested like the rest. Definitions: docs/analyses.md ("Compare").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..exceptions import ValidationError
from ._frame import Bind, connection, read_frame
from ._params import check_choice, parse_date

__all__ = [
    "compare_repositories",
    "resolve_repositories",
    "weekly_gains",
    "latest_by_repository",
    "compare_findings",
    "COMPARE_COLUMNS",
    "METRICS",
    "ALIGNS",
    "MIN_REPOSITORIES",
    "MAX_REPOSITORIES",
    "RECENT_DAYS",
]

#: ``metric`` -> the snapshot column it reads.
METRICS = {"stars": "stars", "forks": "forks", "issues": "open_issues"}
ALIGNS = ("calendar", "age")
MIN_REPOSITORIES = 2
MAX_REPOSITORIES = 10
#: "Grows fastest now": the mean daily gain over the last this-many days of each series (see compare_findings).
RECENT_DAYS = 7
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


_RESOLVE_SQL = """
SELECT n.name, COALESCE(
    (SELECT r.id FROM repositories r WHERE r.full_name = n.name),
    (SELECT r.id FROM repositories r WHERE lower(r.full_name) = lower(n.name) ORDER BY r.full_name LIMIT 1),
    (SELECT s.repository_id FROM repository_snapshots s WHERE lower(s.full_name) = lower(n.name)
     ORDER BY s.snapshot_date DESC LIMIT 1)) AS id
FROM unnest(CAST(:names AS text[])) AS n(name)
"""


def resolve_repositories(conn: Connection, full_names: Any) -> list[tuple[str, Any]]:
    """(name as given, repository id) for each of 2..10 names: the current name (exact, else case-insensitive),
    else an earlier name of a renamed or transferred repository (the newest day a snapshot carried it).

    Raises :class:`ValidationError` naming every unknown name, or two names of one repository."""
    names = _names(full_names)
    found = dict(conn.execute(text(_RESOLVE_SQL), {"names": names}).tuples().all())
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


def weekly_gains(frame: pd.DataFrame) -> pd.DataFrame:
    """Gains per ISO week (Monday start) of each repository: the value at its last snapshot of the week minus
    the value at its last snapshot of the week before (weeks without a snapshot in both are left out)."""
    columns = ["full_name", "week", "value", "gain"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    data = frame[["full_name", "snapshot_date", "value"]].copy()
    data["week"] = [d - dt.timedelta(days=d.weekday()) for d in data["snapshot_date"]]
    last = data.sort_values("snapshot_date").groupby(["full_name", "week"], sort=False).tail(1)
    last = last.sort_values(["full_name", "week"]).reset_index(drop=True)
    previous_week = last.groupby("full_name")["week"].shift()
    consecutive = [p is not None and not pd.isna(p) and (w - p).days == 7
                   for w, p in zip(last["week"], previous_week, strict=True)]
    last["gain"] = np.where(consecutive, last["value"] - last.groupby("full_name")["value"].shift(), np.nan)
    order = {name: k for k, name in enumerate(dict.fromkeys(frame["full_name"]))}
    out = last[pd.notna(last["gain"])][columns].copy()
    out["gain"] = out["gain"].astype("int64")
    return out.sort_values(["full_name", "week"], key=lambda s: s.map(order) if s.name == "full_name" else s
                           ).reset_index(drop=True)


def latest_by_repository(frame: pd.DataFrame) -> pd.DataFrame:
    """Each repository's last row in ``frame``, plus ``recent_gain_per_day``: the mean daily gain over its last
    :data:`RECENT_DAYS` days (value now minus its value at the newest snapshot at least that old, over the days
    between; NaN with no such snapshot)."""
    rows = []
    for name, group in frame.groupby("full_name", sort=False):
        group = group.sort_values("snapshot_date")
        last = group.iloc[-1]
        older = group[group["snapshot_date"] <= last["snapshot_date"] - dt.timedelta(days=RECENT_DAYS)]
        rate = np.nan
        if not older.empty:
            base = older.iloc[-1]
            rate = (last["value"] - base["value"]) / (last["snapshot_date"] - base["snapshot_date"]).days
        rows.append({**last.to_dict(), "full_name": name, "recent_gain_per_day": rate})
    return pd.DataFrame(rows)


def _overtakes(frame: pd.DataFrame) -> list[tuple[dt.date, str, str]]:
    """(day, overtaker, overtaken): days on which one repository's value passed another's, both measured on
    that day and on their previous common day."""
    wide = frame.pivot_table(index="snapshot_date", columns="full_name", values="value", aggfunc="last")
    found = []
    names = list(wide.columns)
    for a in names:
        for b in names:
            if a == b:
                continue
            both = wide[[a, b]].dropna()
            ahead = (both[a] > both[b]).tolist()
            behind = (both[a] < both[b]).tolist()
            for k in range(1, len(both)):
                if ahead[k] and behind[k - 1]:
                    found.append((both.index[k], a, b))
    return sorted(found)


def compare_findings(frame: pd.DataFrame) -> list[str]:
    """The compare report's key findings as sentences: who leads, who grows fastest now (mean daily gain over
    the last :data:`RECENT_DAYS` days), who overtook whom and when (the latest overtakes first, at most five),
    and the best rank in language. Empty frame: one sentence saying there is no history."""
    metric = frame.attrs.get("metric", "stars")
    if frame.empty:
        return [f"None of these repositories has {metric} history in the chosen dates: import the snapshots "
                "with `gitinsight import github-ranking`."]
    latest = latest_by_repository(frame).sort_values("value", ascending=False)
    sentences = []
    lead = latest.iloc[0]
    sentences.append(f"{lead['full_name']} leads with {int(lead['value']):,} {metric} on {lead['snapshot_date']}"
                     + (f", ahead of {latest.iloc[1]['full_name']} ({int(latest.iloc[1]['value']):,})."
                        if len(latest) > 1 else "."))
    rates = latest.dropna(subset=["recent_gain_per_day"]).sort_values("recent_gain_per_day", ascending=False)
    if not rates.empty:
        top = rates.iloc[0]
        sentence = (f"{top['full_name']} grows fastest now: {top['recent_gain_per_day']:+,.1f} {metric} a day over "
                    f"its last {RECENT_DAYS} days")
        if len(rates) > 1:
            second = rates.iloc[1]
            sentence += f", against {second['recent_gain_per_day']:+,.1f} for {second['full_name']}"
        sentences.append(sentence + ".")
    missing = sorted(set(latest["full_name"]) - set(rates["full_name"]))
    if missing:
        sentences.append(f"No {RECENT_DAYS}-day history to measure recent growth for {', '.join(missing)}.")
    overtakes = _overtakes(frame)
    for day, a, b in sorted(overtakes, reverse=True)[:5]:
        sentences.append(f"{a} overtook {b} on {day}.")
    if not overtakes and len(latest) > 1:
        sentences.append(f"No repository overtook another in {metric} in these dates.")
    ranked = latest.dropna(subset=["rank_in_language"])
    if not ranked.empty:
        best = ranked.sort_values("rank_in_language").iloc[0]
        sentences.append(f"Best rank in its language on its last day: {best['full_name']}, "
                         f"#{int(best['rank_in_language'])} of {best['language']} repositories by stars.")
    renamed = frame[frame["name_that_day"].str.lower() != frame["full_name"].str.lower()]
    for name, group in renamed.groupby("full_name", sort=False):
        old = ", ".join(dict.fromkeys(group["name_that_day"]))
        sentences.append(f"{name} was called {old} earlier in this history (renamed or transferred).")
    return sentences
