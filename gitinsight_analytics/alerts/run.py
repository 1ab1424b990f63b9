"""``gitinsight alerts run``: for every user with follows, find the events (as that user), store them once,
deliver the user's undelivered alerts as one digest.

Per user, in order: (1) read the follows, the followed repositories, their snapshots and recent insights inside
``as_user`` (row-level security: a repository the user cannot see is never read, so no alert can mention it);
(2) store the events found on the admin connection (``ON CONFLICT DO NOTHING``: a re-run adds nothing);
(3) read the user's undelivered alerts back inside ``as_user`` and deliver them (files, then e-mail when
configured); (4) mark them sent, or, when delivery failed, count the attempt and keep the error (they stay
unsent and are retried by the next run). One user's failure does not stop the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ..exceptions import ValidationError
from ..queries.frame import read_frame
from ..security.rls import as_user
from ..validation import check_int, parse_date
from . import delivery, rules, store

__all__ = ["run_alerts", "AlertsRun", "UserOutcome", "DEFAULT_LOOKBACK_DAYS"]

#: A run looks at the events of this many days up to its as-of date (overlapping runs store nothing twice).
DEFAULT_LOOKBACK_DAYS = 7


@dataclass
class UserOutcome:
    username: str
    new: int = 0
    delivered: int = 0
    files: tuple[Path, ...] = ()
    emailed: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.error:
            return f"{self.username}: {self.new} new, delivery failed ({self.error}); retried next run"
        where = f" to {self.files[0].parent}" + (" and by e-mail" if self.emailed else "") if self.files else ""
        return f"{self.username}: {self.new} new, {self.delivered} delivered{where}"


@dataclass
class AlertsRun:
    as_of: dt.date | None
    lookback_days: int
    users: list[UserOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(u.error is None for u in self.users)

    def describe(self) -> str:
        new = sum(u.new for u in self.users)
        sent = sum(u.delivered for u in self.users)
        failed = sum(u.error is not None for u in self.users)
        return (f"alerts as of {self.as_of} ({self.lookback_days} days): {len(self.users)} users, {new} new, "
                f"{sent} delivered, {failed} deliveries failed")


_REPOS_SQL = """
SELECT r.id::text AS id, r.full_name, r.language, f.notification_settings
FROM user_repository_follows f JOIN repositories r ON r.id = f.repository_id
WHERE f.user_id = app_current_user_id()
ORDER BY r.full_name
"""
_SNAPSHOTS_SQL = """
SELECT s.repository_id::text AS repository_id, s.snapshot_date, s.stars, s.lists
FROM repository_snapshots s
WHERE s.repository_id = ANY (CAST(:ids AS uuid[])) AND s.snapshot_date <= :as_of
ORDER BY s.repository_id, s.snapshot_date
"""
_INSIGHTS_SQL = """
SELECT i.id::text AS id, i.repository_id::text AS repository_id, i.type, i.title,
       i.confidence_score::float8 AS confidence_score, i.generated_at
FROM insights i
WHERE i.repository_id = ANY (CAST(:ids AS uuid[])) AND i.generated_at >= :lo AND i.generated_at < :hi
  AND i.confidence_score >= :min_confidence
"""
_USERS_SQL = """
SELECT u.id::text, u.username, u.email FROM users u
WHERE EXISTS (SELECT 1 FROM user_repository_follows f WHERE f.user_id = u.id)
  AND (CAST(:usernames AS text[]) IS NULL OR u.username = ANY (CAST(:usernames AS text[])))
ORDER BY u.username, u.id
"""


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _read_as_user(engine: Engine, user_id: str, *, as_of: dt.date, lookback_days: int,
                  dates: Sequence[dt.date]) -> tuple[list[dict[str, Any]], list[rules.Event]]:
    """The user's follows (with parsed settings) and the events found in them, all read under RLS."""
    with as_user(engine, user_id) as conn:
        repos = [dict(r) for r in conn.execute(text(_REPOS_SQL)).mappings()]
        for repo in repos:
            repo["settings"] = rules.parse_settings(repo.pop("notification_settings"))
        wanted = [r["id"] for r in repos if r["settings"].notifications]
        snapshots = read_frame(conn, _SNAPSHOTS_SQL, {"ids": wanted, "as_of": as_of},
                               {"repository_id": "str", "snapshot_date": "date", "stars": "int", "lists": "obj"})
        lowest = min((r["settings"].min_confidence for r in repos), default=1.0)
        insights = read_frame(conn, _INSIGHTS_SQL, {
            "ids": wanted, "lo": _midnight(as_of - dt.timedelta(days=lookback_days - 1)),
            "hi": _midnight(as_of + dt.timedelta(days=1)), "min_confidence": lowest},
            {"id": "str", "repository_id": "str", "type": "str", "title": "str", "confidence_score": "float",
             "generated_at": "ts"})
    events = rules.find_events(repos, snapshots, insights, dates=dates, as_of=as_of, lookback_days=lookback_days)
    return repos, events


def _deliver(engine: Engine, user: dict[str, Any], repos: list[dict[str, Any]], outcome: UserOutcome, *,
             as_of: dt.date, reports_dir: Path, smtp_url: str | None, now: dt.datetime) -> None:
    wanted = [r["id"] for r in repos if r["settings"].notifications]
    with as_user(engine, user["id"]) as conn:
        pending = store.pending_alerts(conn, wanted)
    if pending.empty:
        return
    try:
        outcome.files = delivery.write_digest(reports_dir, user["username"], pending, as_of=as_of, now=now)
        if smtp_url:
            if user.get("email"):
                delivery.send_digest(delivery.parse_smtp_url(smtp_url), user["email"], user["username"], pending,
                                     as_of=as_of)
                outcome.emailed = True
            else:
                outcome.warnings.append("no e-mail address: digest written to a file only")
    except delivery.DeliveryFailed as exc:
        outcome.error = str(exc)
        with engine.begin() as conn:
            store.mark_failed(conn, pending, str(exc))
        return
    with engine.begin() as conn:
        store.mark_sent(conn, pending, now)
    outcome.delivered = len(pending)


def run_alerts(
    engine: Engine,
    *,
    reports_dir: Path,
    as_of: str | dt.date | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    usernames: Sequence[str] | None = None,
    smtp_url: str | None = None,
    now: dt.datetime | None = None,
) -> AlertsRun:
    """Find, store and deliver the alerts of every user with follows (or of ``usernames``); see the module
    docstring. ``as_of`` defaults to the newest day of the data (snapshots or insights, never the clock); the
    events of the ``lookback_days`` days up to it are considered. ``now`` stamps deliveries (default: the clock).
    """
    as_of_date = parse_date(as_of)
    lookback_days = check_int(lookback_days, "lookback_days", 1, 366)
    if smtp_url:
        delivery.parse_smtp_url(smtp_url)  # a bad URL is a configuration error before anything happens
    now = now or dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        if as_of_date is None:
            as_of_date = conn.execute(text(
                "SELECT GREATEST((SELECT max(snapshot_date) FROM repository_snapshots), "
                "(SELECT (max(generated_at) AT TIME ZONE 'UTC')::date FROM insights))")).scalar()
        dates = list(conn.execute(text(
            "SELECT DISTINCT snapshot_date FROM repository_snapshots WHERE snapshot_date <= :d ORDER BY 1"),
            {"d": as_of_date or dt.date(1, 1, 1)}).scalars())
        users = [dict(r) for r in conn.execute(text(_USERS_SQL), {
            "usernames": list(usernames) if usernames else None}).mappings()]
    if usernames:
        missing = sorted(set(usernames) - {u["username"] for u in users})
        if missing:
            raise ValidationError("user", f"no user named {', '.join(missing)} follows any repository",
                                  "the username of a user with follows")
    result = AlertsRun(as_of_date, lookback_days)
    if as_of_date is None:
        return result
    for user in users:
        outcome = UserOutcome(user["username"])
        repos, events = _read_as_user(engine, user["id"], as_of=as_of_date, lookback_days=lookback_days,
                                      dates=dates)
        outcome.warnings += [f"{r['full_name']}: {p}" for r in repos for p in r["settings"].problems]
        with engine.begin() as conn:
            outcome.new = store.store_events(conn, user["id"], events)
        _deliver(engine, user, repos, outcome, as_of=as_of_date, reports_dir=reports_dir, smtp_url=smtp_url,
                 now=now)
        result.users.append(outcome)
    return result

