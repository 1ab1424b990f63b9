"""The alert rules: which events of a followed repository are worth telling its follower about.

Pure functions over what :mod:`.run` read as the user (snapshots, insights, follow settings), so each rule is
tested on hand-checked cases. Every event is dated by the day it happened (a snapshot day, or the UTC day an
insight was generated); a run looks at the days ``(as_of - lookback_days, as_of]``. The rules (also in
docs/analyses.md, "Alerts"):

- ``milestone``: the stars passed one of :data:`MILESTONES` between the repository's previous snapshot and
  this one (first snapshot ever: no alert: it may have passed it long before).
- ``growth``: the day's gain per day is at least ``growth_factor`` (default :data:`GROWTH_FACTOR`) times the
  repository's usual pace and at least :data:`GROWTH_MIN_PER_DAY` above it. Usual pace: the median gain per
  day of its intervals of at most :data:`GROWTH_MAX_GAP` days ending in the :data:`GROWTH_BASELINE_DAYS` days
  before (at least :data:`GROWTH_MIN_INTERVALS` of them, else no alert), counted as at least 1 star a day.
  Only the first day of a surge alerts: not when the interval before was already that far above its own pace.
- ``rank_enter`` / ``rank_leave``: the source's top-100 list of the repository's language names it on this
  snapshot day and did not on the previous snapshot day of the data (entering), or the reverse (leaving; also
  when it is missing from this day's file altogether).
- ``insight``: insights generated that day with a confidence of at least ``min_confidence`` (default
  :data:`INSIGHT_MIN_CONFIDENCE`): one alert per repository and day, listing them.

Per-follow ``notification_settings`` (JSON; every key optional): ``notifications`` (false: nothing for that
repository), ``kinds`` (a list of the kinds wanted), ``min_confidence`` (0..1), ``growth_factor`` (> 1),
``milestones`` (a list of star counts). A value of the wrong type is ignored (the default applies) and reported.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import pandas as pd

from ..models import ALERT_KINDS

__all__ = [
    "Event",
    "FollowSettings",
    "parse_settings",
    "milestone_events",
    "growth_events",
    "rank_events",
    "insight_events",
    "find_events",
    "MILESTONES",
    "GROWTH_FACTOR",
    "GROWTH_MIN_PER_DAY",
    "GROWTH_BASELINE_DAYS",
    "GROWTH_MIN_INTERVALS",
    "GROWTH_MAX_GAP",
    "INSIGHT_MIN_CONFIDENCE",
    "ALERT_KINDS",
]

MILESTONES = (1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000)
GROWTH_FACTOR = 3.0
GROWTH_MIN_PER_DAY = 20.0
GROWTH_BASELINE_DAYS = 28
GROWTH_MIN_INTERVALS = 7
GROWTH_MAX_GAP = 7
INSIGHT_MIN_CONFIDENCE = 0.8


@dataclass(frozen=True)
class Event:
    """One alert to store: about ``repository_id`` (called ``full_name`` now), of ``kind``, on day ``as_of``."""

    repository_id: str
    full_name: str
    kind: str
    as_of: dt.date
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, dt.date]:
        return (self.repository_id, self.kind, self.as_of)


@dataclass(frozen=True)
class FollowSettings:
    """A follow's alert settings, from its ``notification_settings`` (see the module docstring)."""

    notifications: bool = True
    kinds: tuple[str, ...] = ALERT_KINDS
    min_confidence: float = INSIGHT_MIN_CONFIDENCE
    growth_factor: float = GROWTH_FACTOR
    milestones: tuple[int, ...] = MILESTONES
    problems: tuple[str, ...] = ()


def parse_settings(raw: Mapping[str, Any] | None) -> FollowSettings:
    """:class:`FollowSettings` from a follow's JSON; wrong values fall back to the default and are listed in
    ``problems`` (one bad follow must not stop everybody's alerts)."""
    raw = raw if isinstance(raw, Mapping) else {}
    values: dict[str, Any] = {}
    problems = []
    if "notifications" in raw:
        if isinstance(raw["notifications"], bool):
            values["notifications"] = raw["notifications"]
        else:
            problems.append(f"notifications: {raw['notifications']!r} is not true/false")
    if "kinds" in raw:
        kinds = raw["kinds"]
        if isinstance(kinds, list) and all(k in ALERT_KINDS for k in kinds):
            values["kinds"] = tuple(kinds)
        else:
            problems.append(f"kinds: {kinds!r} is not a list of {', '.join(ALERT_KINDS)}")
    checks = (("min_confidence", lambda v: 0 <= v <= 1, "a number 0..1"),
              ("growth_factor", lambda v: v > 1, "a number above 1"))
    for key, ok, allowed in checks:
        if key in raw:
            value = raw[key]
            if isinstance(value, int | float) and not isinstance(value, bool) and ok(value):
                values[key] = float(value)
            else:
                problems.append(f"{key}: {value!r} is not {allowed}")
    if "milestones" in raw:
        ms = raw["milestones"]
        if isinstance(ms, list) and ms and all(isinstance(m, int) and not isinstance(m, bool) and m > 0
                                                 for m in ms):
            values["milestones"] = tuple(sorted(set(ms)))
        else:
            problems.append(f"milestones: {ms!r} is not a list of positive integers")
    return FollowSettings(**values, problems=tuple(problems))


Snapshots: TypeAlias = "pd.DataFrame | Sequence[Mapping[str, Any]]"


def _rows(snapshots: Snapshots) -> list[Mapping[str, Any]]:
    """One repository's snapshots (a frame or records with snapshot_date, stars, lists) in date order."""
    records = snapshots.to_dict("records") if isinstance(snapshots, pd.DataFrame) else list(snapshots)
    return sorted(records, key=lambda row: row["snapshot_date"])


def _in_window(day: dt.date, as_of: dt.date, lookback_days: int) -> bool:
    return as_of - dt.timedelta(days=lookback_days) < day <= as_of


def milestone_events(repo: Mapping[str, Any], snapshots: Snapshots, *, as_of: dt.date, lookback_days: int,
                     milestones: Sequence[int] = MILESTONES) -> list[Event]:
    """Stars passing a milestone between consecutive snapshots of one repository (see the module docstring)."""
    rows, events = _rows(snapshots), []
    for prev, cur in zip(rows, rows[1:], strict=False):
        day = cur["snapshot_date"]
        if not _in_window(day, as_of, lookback_days):
            continue
        crossed = [m for m in milestones if prev["stars"] < m <= cur["stars"]]
        if crossed:
            events.append(Event(str(repo["id"]), repo["full_name"], "milestone", day,
                                f"{repo['full_name']} passed {crossed[-1]:,} stars: {cur['stars']:,} on {day} "
                                f"({prev['stars']:,} on {prev['snapshot_date']}).",
                                {"milestones": crossed, "stars": int(cur["stars"]),
                                 "previous_stars": int(prev["stars"]), "previous_date": str(prev["snapshot_date"])}))
    return events


def growth_events(repo: Mapping[str, Any], snapshots: Snapshots, *, as_of: dt.date, lookback_days: int,
                  factor: float = GROWTH_FACTOR) -> list[Event]:
    """Days whose gain per day is far above the repository's own usual pace (see the module docstring)."""
    rows = _rows(snapshots)
    intervals = [(cur["snapshot_date"], (cur["snapshot_date"] - prev["snapshot_date"]).days,
                  cur["stars"] - prev["stars"]) for prev, cur in zip(rows, rows[1:], strict=False)]
    events, above_before = [], False
    for day, gap, gain in intervals:
        if gap > GROWTH_MAX_GAP:
            above_before = False
            continue
        since = day - dt.timedelta(days=GROWTH_BASELINE_DAYS)
        before = [g / p for d, p, g in intervals if since <= d < day and p <= GROWTH_MAX_GAP]
        if len(before) < GROWTH_MIN_INTERVALS:
            above_before = False
            continue
        usual = statistics.median(before)
        rate = gain / gap
        above = rate >= factor * max(usual, 1.0) and rate - usual >= GROWTH_MIN_PER_DAY
        if above and not above_before and _in_window(day, as_of, lookback_days):
            events.append(Event(str(repo["id"]), repo["full_name"], "growth", day,
                                f"{repo['full_name']} gained {gain:,} stars in {gap} day{'s' * (gap > 1)} to {day} "
                                f"({rate:,.0f} a day, usually {usual:,.1f}).",
                                {"gain": int(gain), "days": gap, "per_day": rate, "usual_per_day": usual,
                                 "factor": factor, "baseline_intervals": len(before)}))
        above_before = above
    return events


def rank_events(repo: Mapping[str, Any], snapshots: Snapshots, *, dates: Sequence[dt.date], as_of: dt.date,
                lookback_days: int) -> list[Event]:
    """Entering or leaving the top 100 of its language between consecutive snapshot days of the data
    (``dates``: every snapshot day of the data, the repository's or not)."""
    listed = {r["snapshot_date"]: any(not str(x).startswith("top-100-") for x in (r["lists"] or []))
              for r in _rows(snapshots)}
    language = repo.get("language") or "its language"
    ordered = sorted(set(dates))
    events = []
    for prev, day in zip(ordered, ordered[1:], strict=False):
        if not _in_window(day, as_of, lookback_days):
            continue
        before, now = listed.get(prev, False), listed.get(day, False)
        if now and not before:
            events.append(Event(str(repo["id"]), repo["full_name"], "rank_enter", day,
                                f"{repo['full_name']} entered the top 100 {language} repositories on {day}.",
                                {"language": repo.get("language"), "previous_date": str(prev)}))
        elif before and not now:
            events.append(Event(str(repo["id"]), repo["full_name"], "rank_leave", day,
                                f"{repo['full_name']} left the top 100 {language} repositories on {day}"
                                + ("." if day in listed else " (not in that day's ranking at all)."),
                                {"language": repo.get("language"), "previous_date": str(prev),
                                 "in_data": day in listed}))
    return events


def insight_events(repo: Mapping[str, Any], insights: pd.DataFrame, *, as_of: dt.date, lookback_days: int,
                   min_confidence: float = INSIGHT_MIN_CONFIDENCE) -> list[Event]:
    """One alert per day with new insights at least ``min_confidence`` confident about the repository."""
    if insights.empty:
        return []
    chosen = insights[insights["confidence_score"] >= min_confidence].copy()
    chosen["day"] = [t.tz_convert("UTC").date() for t in chosen["generated_at"]]
    events = []
    for day, group in chosen.groupby("day"):
        if not _in_window(day, as_of, lookback_days):
            continue
        group = group.sort_values(["confidence_score", "generated_at"], ascending=[False, True])
        best = group.iloc[0]
        items = [{"id": str(r["id"]), "type": r["type"], "title": r["title"],
                  "confidence": round(float(r["confidence_score"]), 2)} for _, r in group.iterrows()]
        count = len(items)
        events.append(Event(str(repo["id"]), repo["full_name"], "insight", day,
                            f"{count} new insight{'s' * (count > 1)} on {repo['full_name']} on {day} "
                            f"(best: {best['title']!r}, {best['type']}, "
                            f"confidence {float(best['confidence_score']):.2f}).",
                            {"insights": items, "min_confidence": min_confidence}))
    return events


def find_events(repos: Iterable[Mapping[str, Any]], snapshots: pd.DataFrame, insights: pd.DataFrame, *,
                dates: Sequence[dt.date], as_of: dt.date, lookback_days: int) -> list[Event]:
    """Every event of the followed ``repos`` (each with ``id``, ``full_name``, ``language`` and its parsed
    ``settings``) in the days ``(as_of - lookback_days, as_of]``, honouring each follow's settings."""
    events: list[Event] = []
    by_repo: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in snapshots.to_dict("records"):  # once: pandas row access per repository is slow
        by_repo[str(row["repository_id"])].append(row)
    for repo in repos:
        settings: FollowSettings = repo["settings"]
        if not settings.notifications:
            continue
        rid = str(repo["id"])
        snaps = by_repo.get(rid, [])
        found: list[Event] = []
        if snaps:
            found += milestone_events(repo, snaps, as_of=as_of, lookback_days=lookback_days,
                                      milestones=settings.milestones)
            found += growth_events(repo, snaps, as_of=as_of, lookback_days=lookback_days,
                                   factor=settings.growth_factor)
            found += rank_events(repo, snaps, dates=dates, as_of=as_of, lookback_days=lookback_days)
        if len(insights):
            found += insight_events(repo, insights[insights["repository_id"].astype(str) == rid], as_of=as_of,
                                    lookback_days=lookback_days, min_confidence=settings.min_confidence)
        events += [e for e in found if e.kind in settings.kinds]
    return sorted(events, key=lambda e: (e.as_of, e.full_name, e.kind))
