"""The reports' key findings (gitinsight_analytics.reports.findings / findings_ops) on known data: hand-built
frames with the columns the query functions return, and the trending findings on the real snapshot slice."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from gitinsight_analytics.queries import trending_by_score, trending_by_stars
from gitinsight_analytics.reports.findings import (
    confidence_findings,
    insights_by_type,
    search_findings,
    stats_findings,
    trending_findings,
)
from gitinsight_analytics.reports.findings_ops import (
    dashboard_findings,
    freshness_findings,
    jobs_findings,
    maintenance_findings,
)

from .report_data import expected_star_growth, seeded_real_engine, seeded_real_template  # noqa: F401

UTC = dt.UTC
AS_OF = dt.date(2026, 8, 22)


def frame(rows: list[dict], **attrs: object) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    out.attrs.update(attrs)
    return out


SCORE = frame([{"full_name": "a/big", "stars": 900, "forks": 50, "recent_insights": 5, "trending_score": 1000},
               {"full_name": "b/small", "stars": 80, "forks": 10, "recent_insights": 1, "trending_score": 100}],
              as_of=AS_OF)
STARS = frame([
    {"full_name": "c/rocket", "stars": 1500, "star_delta": 500, "growth_pct": 50.0, "coverage": "full",
     "spike_stars": 0},
    {"full_name": "a/big", "stars": 1000, "star_delta": 100, "growth_pct": 11.1, "coverage": "entered",
     "spike_stars": 1200},
    {"full_name": "d/tiny", "stars": 20, "star_delta": 15, "growth_pct": 300.0, "coverage": "full", "spike_stars": 0},
    {"full_name": "e/down", "stars": 90, "star_delta": -3, "growth_pct": -3.2, "coverage": "left", "spike_stars": 0},
], as_of=AS_OF)


def test_trending_findings_from_both_rankings() -> None:
    assert trending_findings(SCORE, STARS, window_days=7, limit=20) == [
        "By the spec's score, a/big leads with 1,000 (900 stars + 50 forks + 10 × 5 insights in the 7 days to "
        "2026-08-22).",
        "Stars and forks make up 95% of the score of these 2 repositories; recent insights the rest.",
        "The top repository by 7-day star growth is c/rocket with +500 stars (1,500 now) up to 2026-08-22.",
        "Relative to its size, d/tiny grew fastest: +300.0%.",
        "1 of them lost stars in the window.",
        "2 entered or left the star history inside the window; they are measured between the snapshots they have.",
        "1,200 stars gained in single-day spikes were capped.",
        "1 repositories appear in both top-20 lists.",
    ]


def test_trending_findings_without_data_say_what_is_missing() -> None:
    empty = frame([], as_of=None)
    got = trending_findings(empty, empty, window_days=30, limit=5, language="Go")
    assert got == ["No analysed Go repositories to rank by the spec's score.",
                   "There is no star history for Go repositories in the 30 days to the end of the data, so star "
                   "growth cannot be ranked: import the daily snapshots with `gitinsight import github-ranking`."]


def test_trending_findings_on_the_real_snapshots(seeded_real_engine: Engine) -> None:  # noqa: F811
    """On the imported slice: the growth leader, the losers and the window end are the CSV files' own."""
    growth = expected_star_growth()
    score = trending_by_score(seeded_real_engine, window_days=7, limit=20)
    stars = trending_by_stars(seeded_real_engine, window_days=7, limit=20)
    sentences = trending_findings(score, stars, window_days=7, limit=20)
    assert len(stars) == growth["ranked"]
    best = stars.iloc[0]
    assert (f"The top repository by 7-day star growth is {best['full_name']} with {best['star_delta']:+,} stars "
            f"({best['stars']:,} now) up to {growth['as_of']}.") in sentences
    assert f"{growth['lost']} of them lost stars in the window." in sentences
    assert stars.loc[stars["star_delta"].idxmax(), "full_name"] == growth["top"]


STATS = frame([
    {"full_name": "a/x", "language": "Go", "stars": 10, "forks": 1, "total_insights": 7, "avg_confidence": 0.7,
     "follower_count": 1, "failed_jobs": 0, "insights_by_type": {"security": 5, "trend": 2}},
    {"full_name": "b/y", "language": "Go", "stars": 20, "forks": 2, "total_insights": 3, "avg_confidence": 0.5,
     "follower_count": 4, "failed_jobs": 2, "insights_by_type": {"trend": 3}},
    {"full_name": "c/z", "language": "Go", "stars": 5, "forks": 0, "total_insights": 0, "avg_confidence": None,
     "follower_count": 0, "failed_jobs": 1, "insights_by_type": None},
])


def test_stats_findings_leaderboard() -> None:
    assert stats_findings(STATS, language="Go") == [
        "Among Go repositories, a/x has the most insights: 7 (average confidence 0.70).",
        "The most followed of these 3 is b/y with 4 followers.",
        "2 of them had at least one failed analysis job.",
        "The most common insight type among them is security (5 insights, 50%).",
    ]
    assert insights_by_type(STATS).to_dict("records") == [
        {"full_name": "a/x", "insight_type": "security", "insights": 5},
        {"full_name": "a/x", "insight_type": "trend", "insights": 2},
        {"full_name": "b/y", "insight_type": "trend", "insights": 3},
    ]


def test_stats_findings_profile_notes_a_stale_view() -> None:
    one = STATS.iloc[[0]].assign(latest_insight=pd.Timestamp("2026-08-20 10:00", tz=UTC), total_jobs=4,
                                  latest_job_status="completed", analysis_status="completed").reset_index(drop=True)
    live = pd.DataFrame([{"total_insights": 9}])
    got = stats_findings(one, live, full_name="a/x")
    assert got == [
        "a/x (Go) has 10 stars, 1 forks and 1 followers on GitInsight.",
        "It has 7 insights with an average confidence of 0.70; the latest was generated 2026-08-20 10:00 UTC.",
        "4 analysis jobs ran for it, 0 failed; the latest is completed and the repository's analysis status is "
        "completed.",
        "Live count now: 9 insights (the view is older than the data; `gitinsight refresh` updates it).",
    ]
    assert stats_findings(STATS.iloc[:0]) == [
        "No repositories in the statistics yet (run `gitinsight refresh` after loading data)."]


def test_confidence_findings() -> None:
    dist = pd.DataFrame([{"insight_type": "security", "n": 30, "mean": 0.8},
                         {"insight_type": "trend", "n": 10, "mean": 0.4},
                         {"insight_type": "trend", "n": 10, "mean": 0.6}])
    versions = pd.DataFrame([
        {"insight_type": "trend", "version_a": "v1", "version_b": "v2", "mean_diff": 0.2, "cliffs_delta": 0.5,
         "magnitude": "large", "p_value": 0.001},
        {"insight_type": "security", "version_a": "v1", "version_b": "v2", "mean_diff": -0.01, "cliffs_delta": -0.1,
         "magnitude": "negligible", "p_value": 0.4}])
    drift = pd.DataFrame([{"period_start": pd.Timestamp("2026-08-10", tz=UTC), "insights": 30, "low": 3,
                           "share_low": 0.1},
                          {"period_start": pd.Timestamp("2026-08-17", tz=UTC), "insights": 20, "low": 5,
                           "share_low": 0.25}])
    tags = pd.DataFrame([{"tag": "deps", "insights": 1234, "share_of_insights": 0.42}])
    assert confidence_findings(dist, versions, drift, tags, threshold=0.5, freq="week") == [
        "50 insights have an average confidence of 0.68.",
        "The least confident type is trend (0.50), the most confident security (0.80).",
        "The largest change between consecutive model versions is in trend: v2 against v1 moves the mean by +0.20 "
        "(Cliff's δ +0.50, large, p = 0.001).",
        "1 of 2 version changes have a non-negligible effect.",
        "Over the last year 16.0% of insights scored below 0.5; in the latest week (from 2026-08-17) it was 25.0% "
        "of 20.",
        "The most used tag is “deps”, on 1,234 insights (42%).",
    ]
    empty = pd.DataFrame()
    assert confidence_findings(dist.iloc[:0], empty, empty, empty, threshold=0.5, freq="day",
                               insight_type="security") == ["There are no security insights yet."]


@pytest.mark.parametrize(("language", "expected"), [
    ("Python", ["2 Python repositories match “data” (showing at most 10).",
                "The most starred of them is b/data with 2,000 stars."]),
    (None, ["2 repositories match “data” (showing at most 10).",
            "The most starred of them is b/data with 2,000 stars."]),
])
def test_search_findings(language: str | None, expected: list[str]) -> None:
    found = pd.DataFrame([{"full_name": "a/data", "stars": 10}, {"full_name": "b/data", "stars": 2000}])
    assert search_findings(found, language=language, search_text="data", limit=10) == expected
    assert search_findings(found.iloc[:0], language=language, search_text="x", limit=10) == [
        f"No {language + ' ' if language else ''}repository matches “x”."]


BOARD = pd.DataFrame([
    {"full_name": "n/new", "insight_count": 0, "latest_insight": None, "latest_job_status": "failed",
     "analysis_status": "pending", "followed_at": pd.Timestamp("2026-08-21 09:30", tz=UTC)},
    {"full_name": "o/old", "insight_count": 12, "latest_insight": pd.Timestamp("2026-08-19 08:00", tz=UTC),
     "latest_job_status": "completed", "analysis_status": "completed",
     "followed_at": pd.Timestamp("2026-07-01 00:00", tz=UTC)},
])


def test_dashboard_findings() -> None:
    assert dashboard_findings("alice", BOARD) == [
        "alice follows 2 repositories; 1 of them have insights, 12 in all.",
        "The one with the most insights is o/old (12, latest 2026-08-19 08:00 UTC).",
        "The latest analysis job failed for 1: n/new.",
        "1 are still pending or being analysed.",
        "The most recent follow is n/new, 2026-08-21 09:30 UTC.",
    ]
    assert dashboard_findings("bob", BOARD.iloc[:0]) == ["bob follows no repositories."]
    assert dashboard_findings(None, None) == ["Nobody follows any repository yet, so there is no dashboard to show."]


def test_freshness_findings() -> None:
    fresh = {"insights": pd.Timestamp("2026-08-22 12:00", tz=UTC), "snapshots": None}
    assert freshness_findings(fresh) == [
        "Newest insight: 2026-08-22 12:00 UTC.", "Newest star-history snapshot: none.",
        "No star history is imported, so star growth cannot be ranked (`gitinsight import github-ranking`)."]
    assert len(freshness_findings({"snapshots": AS_OF})) == 1


def test_jobs_findings() -> None:
    rates = pd.DataFrame([{"job_type": "scan", "jobs": 10, "completed": 6, "failed": 2, "failure_rate": 0.25},
                          {"job_type": "trend", "jobs": 5, "completed": 5, "failed": 0, "failure_rate": 0.0}])
    failures = frame([{"example_message": "timeout after 30 s", "failures": 2, "share_of_failures": 1.0}],
                     failure_rate=2 / 13)
    throughput = frame([{"created": 1, "completed": 1, "failed": 0}] * 9, as_of=AS_OF)
    backlog = pd.DataFrame([{"queued": 3, "in_progress": 1, "oldest_queued_age_hours": 26.4,
                             "stuck_in_progress": 1}])
    durations = pd.DataFrame([{"job_type": "scan", "run_p90_s": 300.0, "run_p50_s": 60.0},
                              {"job_type": "trend", "run_p90_s": 30.0, "run_p50_s": 6.0}])
    assert jobs_findings(rates, failures, throughput, backlog, durations, freq="day") == [
        "15 analysis jobs are recorded; 15.4% of finished ones failed.",
        "scan jobs fail most often (25.0% of 8 finished).",
        "The most frequent error is “timeout after 30 s” (2 times, 100% of failures).",
        "In the last 7 days to 2026-08-22: 7 jobs created, 7 completed, 0 failed.",
        "3 jobs are queued and 1 in progress; the oldest has waited 26 hours.",
        "1 jobs have been in progress for over a day: look at them.",
        "The slowest job type is scan: 90% finish within 5.0 minutes (median 1.0).",
    ]
    empty = pd.DataFrame()
    assert jobs_findings(empty, frame([]), frame([]), empty, empty, freq="week") == ["No analysis jobs yet."]


def test_maintenance_findings() -> None:
    history = pd.DataFrame([
        {"command": "gitinsight backup create", "action": "backup.create", "outcome": "failed",
         "created_at": pd.Timestamp("2026-08-22 03:00", tz=UTC), "error": "disk full"},
        {"command": None, "action": "db.upgrade", "outcome": "succeeded",
         "created_at": pd.Timestamp("2026-08-21 03:00", tz=UTC), "error": None}])
    backups = pd.DataFrame([{"name": "gitinsight_20260821T030000Z", "rows": 12345, "size_mb": 1.25,
                             "revision": "abc123"}])
    partitions = pd.DataFrame([{"range_start": pd.Timestamp("2026-08-01", tz=UTC), "rows": 10},
                               {"range_start": pd.NaT, "rows": 4}])
    assert maintenance_findings(history, backups, partitions) == [
        "The newest command: `gitinsight backup create` (failed) at 2026-08-22 03:00 UTC.",
        "1 of the last 2 commands failed; the newest failure: disk full",
        "Newest backup set: gitinsight_20260821T030000Z, 12,345 rows, 1.2 MB, revision abc123 (1 sets kept).",
        "4 audit rows sit in the default partition: `gitinsight maintain partitions` moves them into their months.",
    ]
    empty = pd.DataFrame(columns=["range_start", "rows"])
    assert maintenance_findings(history.iloc[:0], backups.iloc[:0], empty) == [
        "No gitinsight command is on the audit trail yet.",
        "No backup set yet: `gitinsight backup create` (daily from cron, see docs/operations.md).",
    ]
