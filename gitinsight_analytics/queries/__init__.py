"""The analyses: functions taking an engine or connection plus keyword-only, validated parameters and
returning pandas DataFrames (int64/float64 numbers, tz-aware UTC timestamps, ``full_name`` on every row about
a repository). Results read from a materialized view carry ``df.attrs["view_refreshed_at"]``; results with an
as-of date carry ``df.attrs["as_of"]``. Bad parameters raise :class:`~gitinsight_analytics.exceptions.ValidationError`.
What the compare report says about a compare frame (weekly gains, findings) is in :mod:`.compare_findings`.
"""

from __future__ import annotations

from .calibration import calibration_comparison, calibration_summary, reliability_diagram
from .compare import compare_repositories, default_repositories, latest_insights
from .confidence import confidence_distribution, low_confidence_share, model_version_comparison, tag_summary
from .dashboard import most_followed_user, user_dashboard
from .jobs import job_durations, job_failure_rates, job_failures, job_throughput, queue_backlog
from .operations import audit_partition_rows, command_history
from .search import search_repositories
from .stats import data_as_of, get_repository_stats, refresh_stats, repository_stats
from .trending import trending_by_score, trending_by_stars

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
