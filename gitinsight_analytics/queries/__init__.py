"""The analyses: functions taking an engine or connection plus keyword-only, validated parameters and
returning pandas DataFrames (int64/float64 numbers, tz-aware UTC timestamps, ``full_name`` on every row about
a repository). Results read from a materialized view carry ``df.attrs["view_refreshed_at"]``; results with an
as-of date carry ``df.attrs["as_of"]``. Bad parameters raise :class:`~gitinsight_analytics.exceptions.ValidationError`.
What the compare report says about a compare frame (weekly gains, findings) is in :mod:`.compare_findings`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .calibration import calibration_comparison, calibration_summary, reliability_diagram
    from .compare import compare_repositories, default_repositories, latest_insights
    from .confidence import confidence_distribution, low_confidence_share, model_version_comparison, tag_summary
    from .dashboard import most_followed_user, user_dashboard
    from .jobs import job_durations, job_failure_rates, job_failures, job_throughput, queue_backlog
    from .operations import audit_partition_rows, command_history
    from .search import search_repositories
    from .stats import data_as_of, get_repository_stats, refresh_stats, repository_stats
    from .trending import trending_by_score, trending_by_stars

#: Each function's module, imported on first use (``queries.search_repositories`` does not load scipy).
_MODULES = {
    "calibration": ("calibration_comparison", "calibration_summary", "reliability_diagram"),
    "compare": ("compare_repositories", "default_repositories", "latest_insights"),
    "confidence": ("confidence_distribution", "low_confidence_share", "model_version_comparison", "tag_summary"),
    "dashboard": ("most_followed_user", "user_dashboard"),
    "jobs": ("job_durations", "job_failure_rates", "job_failures", "job_throughput", "queue_backlog"),
    "operations": ("audit_partition_rows", "command_history"),
    "search": ("search_repositories",),
    "stats": ("data_as_of", "get_repository_stats", "refresh_stats", "repository_stats"),
    "trending": ("trending_by_score", "trending_by_stars"),
}
_FUNCTIONS = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONS:
        value = getattr(import_module(f".{_FUNCTIONS[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):  # a submodule (``queries.search.SORT_COLUMNS``) not imported yet
        try:
            return import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_FUNCTIONS])


__all__ = [
    "search_repositories",
    "compare_repositories",
    "default_repositories",
    "latest_insights",
    "user_dashboard",
    "most_followed_user",
    "trending_by_score",
    "trending_by_stars",
    "data_as_of",
    "repository_stats",
    "get_repository_stats",
    "refresh_stats",
    "confidence_distribution",
    "model_version_comparison",
    "low_confidence_share",
    "tag_summary",
    "calibration_summary",
    "reliability_diagram",
    "calibration_comparison",
    "job_throughput",
    "job_failures",
    "job_failure_rates",
    "queue_backlog",
    "job_durations",
    "command_history",
    "audit_partition_rows",
]
