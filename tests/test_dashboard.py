"""User dashboard against pandas: no row multiplication, ties between jobs, unknown and ambiguous users."""

from __future__ import annotations

import pandas as pd
import pytest

from gitinsight_analytics.exceptions import ValidationError
from gitinsight_analytics.queries import user_dashboard

from .query_data import raw


def expected(engine, username: str) -> pd.DataFrame:
    users, repos = raw(engine, "users"), raw(engine, "repositories")
    fol, ins, jobs = raw(engine, "user_repository_follows"), raw(engine, "insights"), raw(engine, "analysis_jobs")
    uid = users.loc[users["username"] == username, "id"].item()
    mine = fol[fol["user_id"] == uid].merge(repos, left_on="repository_id", right_on="id")
    mine["insight_count"] = mine["repository_id"].map(ins.groupby("repository_id").size()).fillna(0).astype(int)
    mine["latest_insight"] = mine["repository_id"].map(ins.groupby("repository_id")["generated_at"].max())
    latest = jobs.sort_values(["created_at", "id"], ascending=False).groupby("repository_id").head(1)
    mine["latest_job_status"] = mine["repository_id"].map(latest.set_index("repository_id")["status"])
    return mine.sort_values(["followed_at", "full_name"], ascending=[False, True])


@pytest.mark.parametrize("username", ["alice", "bob", "carol", "dave", "eve"])
def test_dashboard_matches_pandas(data_engine, username):
    frame = user_dashboard(data_engine, username=username)
    want = expected(data_engine, username)
    assert frame["full_name"].tolist() == want["full_name"].tolist()
    assert frame["insight_count"].tolist() == want["insight_count"].tolist()
    assert [None if pd.isna(v) else v for v in frame["latest_job_status"]] == [
        None if pd.isna(v) else v for v in want["latest_job_status"]]
    assert frame["latest_insight"].tolist() == want["latest_insight"].tolist()


def test_dashboard_does_not_multiply(data_engine):
    frame = user_dashboard(data_engine, username="alice").set_index("full_name")
    # busy has 6 insights, 3 followers and 4 jobs; the spec's join would not change the count here, but two jobs
    # share the newest created_at: the spec's query then returns busy twice with doubled counts.
    assert frame.loc["alice/busy", "insight_count"] == 6
    assert frame.index.is_unique
    assert frame.loc["alice/busy", "analysis_status"] == "completed"
    assert frame.loc["alice/busy", "latest_job_type"] == "quick_scan"
    assert str(frame["insight_count"].dtype) == "int64"
    assert str(frame["followed_at"].dtype) == "datetime64[us, UTC]"
    assert frame.attrs["username"] == "alice"


def test_spec_query_does_multiply(data_engine):
    """Documents why the spec's dashboard query was changed (docs/seed-deviations.md)."""
    uid = raw(data_engine, "users").set_index("username").loc["alice", "id"]
    with data_engine.connect() as conn:
        rows = conn.exec_driver_sql(
            """SELECT r.full_name, COUNT(i.id) AS insight_count
               FROM user_repository_follows urf JOIN repositories r ON urf.repository_id = r.id
               LEFT JOIN insights i ON r.id = i.repository_id
               LEFT JOIN analysis_jobs aj ON r.id = aj.repository_id AND aj.created_at = (
                   SELECT MAX(created_at) FROM analysis_jobs WHERE repository_id = r.id)
               WHERE urf.user_id = %(u)s GROUP BY r.id, aj.status""", {"u": uid}).fetchall()
    busy = [count for name, count in rows if name == "alice/busy"]
    assert busy == [6, 6]  # the repository twice: once per job status at the newest created_at


def test_user_without_follows(data_engine):
    frame = user_dashboard(data_engine, username="eve")
    assert frame.empty and "full_name" in frame.columns


@pytest.mark.parametrize("username", ["nobody", "", "   ", None, 42, "alice' OR '1'='1", "x" * 300])
def test_bad_usernames(data_engine, username):
    with pytest.raises(ValidationError) as info:
        user_dashboard(data_engine, username=username)
    assert info.value.parameter == "username"


def test_ambiguous_username(data_engine):
    with data_engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO users (github_id, username) VALUES (777, 'alice')")
    with pytest.raises(ValidationError, match="ambiguous"):
        user_dashboard(data_engine, username="alice")


def test_dashboard_on_seeded_data(seeded_engine):
    fol, users = raw(seeded_engine, "user_repository_follows"), raw(seeded_engine, "users")
    counts = fol.groupby("user_id").size().sort_values(ascending=False)
    unique = users[~users["username"].duplicated(keep=False)].set_index("id")
    for uid in [u for u in counts.index if u in unique.index][:3]:
        name = unique.loc[uid, "username"]
        frame = user_dashboard(seeded_engine, username=name)
        want = expected(seeded_engine, name)
        assert frame["full_name"].tolist() == want["full_name"].tolist()
        assert frame["insight_count"].tolist() == want["insight_count"].tolist()
