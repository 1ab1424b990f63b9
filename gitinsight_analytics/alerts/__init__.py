"""Alerts for followed repositories (issue 13): ``rules`` (which events), ``store`` (the alerts table, each alert
once), ``delivery`` (digest files and e-mail), ``run`` (per user, read under row-level security)."""

from __future__ import annotations

from .delivery import DeliveryFailed, parse_smtp_url
from .rules import Event, FollowSettings, find_events, parse_settings
from .run import DEFAULT_LOOKBACK_DAYS, AlertsRun, UserOutcome, run_alerts
from .store import list_alerts

__all__ = ["run_alerts", "list_alerts", "AlertsRun", "UserOutcome", "Event", "FollowSettings", "find_events",
           "parse_settings", "parse_smtp_url", "DeliveryFailed", "DEFAULT_LOOKBACK_DAYS"]
