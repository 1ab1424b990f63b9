"""Allowed option values shared by the analyses and the CLI's option parsing, importable without pandas (so a
``gitinsight query`` command imports only the analysis it runs)."""

from __future__ import annotations

__all__ = ["STATS_SORT", "METRICS", "ALIGNS"]

#: ``repository_stats(sort=...)`` -> the column it orders by.
STATS_SORT = {
    "stars": "stars", "insights": "total_insights", "followers": "follower_count", "full_name": "full_name",
}
#: ``compare_repositories(metric=...)`` -> the snapshot column it reads.
METRICS = {"stars": "stars", "forks": "forks", "issues": "open_issues"}
#: ``compare_repositories(align=...)``: calendar dates, or days since each repository was first seen.
ALIGNS = ("calendar", "age")
