"""Repository statistics: the view, get_repository_stats(), refresh and data dates, against pandas."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from gitinsight_analytics.exceptions import ValidationError
from gitinsight_analytics.queries import data_as_of, get_repository_stats, refresh_stats, repository_stats

from .query_data import AS_OF, raw


def expected_stats(engine) -> pd.DataFrame:
    repos, ins = raw(engine, "repositories"), raw(engine, "insights")
    fol, jobs = raw(engine, "user_repository_follows"), raw(engine, "analysis_jobs")
    ins["confidence_score"] = ins["confidence_score"].astype(float)
    out = repos.set_index("id")[["full_name"]].copy()
    out["total_insights"] = ins.groupby("repository_id").size()
    out["avg_confidence"] = ins.groupby("repository_id")["confidence_score"].mean()
    out["latest_insight"] = ins.groupby("repository_id")["generated_at"].max()
    out["follower_count"] = fol.groupby("repository_id").size()
    out["total_jobs"] = jobs.groupby("repository_id").size()
    out["failed_jobs"] = jobs[jobs["status"] == "failed"].groupby("repository_id").size()
    latest = jobs.sort_values(["created_at", "id"], ascending=False).groupby("repository_id").head(1)
    out["latest_job_status"] = latest.set_index("repository_id")["status"]
    out["insights_by_type"] = ins.groupby("repository_id")["type"].agg(lambda s: s.value_counts().to_dict())
    for column in ("total_insights", "follower_count", "total_jobs", "failed_jobs"):
        out[column] = out[column].fillna(0).astype("int64")
    out["insights_by_type"] = out["insights_by_type"].map(lambda v: v if isinstance(v, dict) else {})
    return out.set_index("full_name").sort_index()


def _compare(frame: pd.DataFrame, want: pd.DataFrame) -> None:
    got = frame.set_index("full_name").sort_index()
    assert list(got.index) == list(want.index)
    for column in ("total_insights", "follower_count", "total_jobs", "failed_jobs"):
        assert got[column].tolist() == want[column].tolist(), column
    pd.testing.assert_series_equal(got["avg_confidence"], want["avg_confidence"], check_names=False, atol=1e-12)
    assert [None if pd.isna(v) else v for v in got["latest_insight"]] == [
        None if pd.isna(v) else v for v in want["latest_insight"]]
    assert got["insights_by_type"].tolist() == want["insights_by_type"].tolist()
    assert [None if pd.isna(v) else v for v in got["latest_job_status"]] == [
        None if pd.isna(v) else v for v in want["latest_job_status"]]


def test_view_matches_pandas_with_fan_out(data_engine):
    frame = repository_stats(data_engine, limit=1000)
    _compare(frame, expected_stats(data_engine))
    busy = frame.set_index("full_name").loc["alice/busy"]
    assert (busy["total_insights"], busy["follower_count"], busy["total_jobs"]) == (6, 3, 4)  # not 6 x 3 x 4
    assert busy["insights_by_type"] == {"documentation": 1, "performance": 1, "security": 4}
    assert isinstance(frame.attrs["view_refreshed_at"], dt.datetime)
    assert {str(frame[c].dtype) for c in ("total_insights", "follower_count", "stars")} == {"int64"}
    assert str(frame["avg_confidence"].dtype) == "float64"
    assert str(frame["latest_insight"].dtype) == "datetime64[us, UTC]"


def test_view_matches_pandas_on_seeded_data(seeded_engine):
    refresh_stats(seeded_engine)
    assert len(raw(seeded_engine, "repositories")) <= 1000
    _compare(repository_stats(seeded_engine, limit=1000), expected_stats(seeded_engine))


def test_filters_and_sorting(data_engine):
    one = repository_stats(data_engine, full_name="ALICE/busy")  # GitHub names are case-insensitive
    assert one["full_name"].tolist() == ["alice/busy"]
    python = repository_stats(data_engine, language="python")
    assert set(python["full_name"]) == {"alice/busy", "carol/big", "dave/100%_done"}
    by_insights = repository_stats(data_engine, sort="insights", limit=2)
    assert by_insights["full_name"].tolist() == ["alice/busy", "dave/oldie"]
    assert repository_stats(data_engine, sort="followers", limit=1)["full_name"].tolist() == ["alice/busy"]


def test_view_staleness_is_visible(data_engine):
    before = repository_stats(data_engine).attrs["view_refreshed_at"]
    with data_engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO users (github_id, username) VALUES (999, 'zed')")
        conn.exec_driver_sql("INSERT INTO repositories (github_id, name, full_name, url, clone_url, owner_id) "
                             "SELECT 999, 'new', 'zed/new', 'u', 'c', id FROM users WHERE username = 'zed'")
    with pytest.raises(ValidationError, match="not in repository_stats yet"):
        repository_stats(data_engine, full_name="zed/new")
    result = refresh_stats(data_engine)
    assert result.concurrently and result.refreshed_at > before
    assert [name for name, _ in result.views][0] == "repository_stats"
    assert repository_stats(data_engine, full_name="zed/new")["total_insights"].tolist() == [0]


def test_get_repository_stats_is_live_and_matches_pandas(data_engine):
    ins = raw(data_engine, "insights")
    repos = raw(data_engine, "repositories").set_index("full_name")
    for name in ("alice/busy", "bob/quiet", "eve/nullstars", "carol/big"):
        frame = get_repository_stats(data_engine, full_name=name)
        rows = ins[ins["repository_id"] == repos.loc[name, "id"]]
        assert frame["full_name"].tolist() == [name]
        assert frame.loc[0, "total_insights"] == len(rows)
        assert frame.loc[0, "insight_types"] == sorted(rows["type"].unique())
        if len(rows):
            assert frame.loc[0, "avg_confidence"] == pytest.approx(rows["confidence_score"].astype(float).mean())
        else:
            assert pd.isna(frame.loc[0, "avg_confidence"]) and pd.isna(frame.loc[0, "latest_analysis"])
    assert str(frame["total_insights"].dtype) == "int64" and str(frame["avg_confidence"].dtype) == "float64"


@pytest.mark.parametrize("kwargs, parameter", [
    ({"full_name": "nobody/nothing"}, "full_name"), ({"full_name": ""}, "full_name"),
    ({"full_name": "x' OR '1'='1"}, "full_name"),
])
def test_get_repository_stats_bad_names(data_engine, kwargs, parameter):
    with pytest.raises(ValidationError) as info:
        get_repository_stats(data_engine, **kwargs)
    assert info.value.parameter == parameter


@pytest.mark.parametrize("kwargs, parameter", [
    ({"limit": 0}, "limit"), ({"sort": "id; --"}, "sort"), ({"language": "Klingon"}, "language"),
    ({"full_name": "no/such"}, "full_name"),
])
def test_repository_stats_bad_parameters(data_engine, kwargs, parameter):
    with pytest.raises(ValidationError) as info:
        repository_stats(data_engine, **kwargs)
    assert info.value.parameter == parameter


def test_refresh_rejects_non_boolean(data_engine):
    with pytest.raises(ValidationError, match="concurrently"):
        refresh_stats(data_engine, concurrently="yes")


def test_data_as_of(data_engine):
    dates = data_as_of(data_engine)
    assert dates["insights"] == AS_OF and dates["snapshots"] == AS_OF
    assert dates["jobs"] == AS_OF - dt.timedelta(days=1)
    assert dates["view_refreshed_at"] is not None
