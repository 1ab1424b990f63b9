"""Trending: the spec's score and real star growth, each recomputed with pandas from raw rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from gitinsight_analytics.exceptions import ValidationError
from gitinsight_analytics.objects import STAR_TREND_WINDOWS
from gitinsight_analytics.queries import refresh_stats, trending_by_score, trending_by_stars
from gitinsight_analytics.queries import trending as t

from .query_data import AS_OF, raw


def expected_score(engine, *, window_days=7, as_of=None, language=None, min_confidence=None, limit=50):
    repos, ins = raw(engine, "repositories"), raw(engine, "insights")
    ins = ins[ins["generated_at"].notna()]
    day = as_of or ins["generated_at"].max().tz_convert("UTC").date()
    lo = pd.Timestamp(day - dt.timedelta(days=window_days - 1), tz="UTC")
    hi = pd.Timestamp(day + dt.timedelta(days=1), tz="UTC")
    recent = ins[(ins["generated_at"] >= lo) & (ins["generated_at"] < hi)]
    if min_confidence is not None:
        recent = recent[recent["confidence_score"].astype(float) >= min_confidence]
    counts = recent.groupby("repository_id").size()
    repos = repos[repos["analysis_status"] == "completed"]
    if language:
        repos = repos[repos["language"] == language]
    repos = repos.assign(recent=repos["id"].map(counts).fillna(0).astype(int))
    repos["score"] = repos["stars"].fillna(0) + repos["forks"].fillna(0) + 10 * repos["recent"]
    repos = repos.sort_values(["score", "full_name"], ascending=[False, True]).head(limit)
    return list(zip(repos["full_name"], repos["score"].astype(int), repos["recent"], strict=True))


@pytest.mark.parametrize("kwargs", [
    {}, {"window_days": 1}, {"window_days": 10}, {"window_days": 365}, {"language": "Python"},
    {"min_confidence": 0.6}, {"limit": 2}, {"as_of": dt.date(2026, 8, 18), "window_days": 3},
])
def test_score_matches_pandas(data_engine, kwargs):
    frame = trending_by_score(data_engine, **kwargs)
    got = list(zip(frame["full_name"], frame["trending_score"], frame["recent_insights"], strict=True))
    assert got == expected_score(data_engine, **kwargs)
    assert frame.attrs["as_of"] == kwargs.get("as_of", AS_OF)
    assert frame.attrs["view_refreshed_at"] is not None


def test_score_fan_out_and_dtypes(data_engine):
    frame = trending_by_score(data_engine).set_index("full_name")
    # busy: 4 insights in the 7 days ending 2026-08-20 (one 6 days and 1 hour back is inside the whole-day window)
    assert frame.loc["alice/busy", "recent_insights"] == 4
    assert frame.loc["alice/busy", "trending_score"] == 500 + 40 + 40
    assert frame.loc["alice/busy", "avg_confidence"] == pytest.approx((0.5 + 0.75 + 0.9 + 0.3) / 4)
    assert "bob/private" not in frame.index  # not analysed (status pending)
    assert frame.loc["eve/nullstars", "trending_score"] == 0  # NULL stars count as 0, never sort first
    assert {str(frame[c].dtype) for c in ("stars", "forks", "recent_insights", "trending_score")} == {"int64"}
    assert str(frame["avg_confidence"].dtype) == "float64"


def test_score_uses_the_view(data_engine):
    with data_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE repositories SET stars = 1000000 WHERE name = 'quiet'")
    assert trending_by_score(data_engine).iloc[0]["full_name"] == "carol/big"  # view not refreshed yet
    refresh_stats(data_engine)
    assert trending_by_score(data_engine).iloc[0]["full_name"] == "bob/quiet"


def expected_stars(engine, *, window_days=7, as_of=None, language=None, limit=50) -> pd.DataFrame:
    """Independent implementation of docs/analyses.md's formula, loop by loop."""
    snaps, repos = raw(engine, "repository_snapshots"), raw(engine, "repositories").set_index("id")
    as_of = as_of or snaps["snapshot_date"].max()
    start = as_of - dt.timedelta(days=window_days)
    first_seen = snaps.groupby("repository_id")["snapshot_date"].min()
    rows = []
    for repo_id, group in snaps.groupby("repository_id"):
        if language and repos.loc[repo_id, "language"] != language:
            continue
        g = group[(group["snapshot_date"] >= start) & (group["snapshot_date"] <= as_of)].sort_values("snapshot_date")
        if len(g) < 2:
            continue
        last_commit = g["last_commit"].max()
        if last_commit is not None and not pd.isna(last_commit) and last_commit < pd.Timestamp(
                as_of - dt.timedelta(days=90), tz="UTC"):
            continue
        days = [(d - start).days for d in g["snapshot_date"]]
        stars, forks = g["stars"].tolist(), g["forks"].tolist()
        gains = [(stars[k] - stars[k - 1], days[k] - days[k - 1], days[k]) for k in range(1, len(g))]
        rates = [s / gap for s, gap, _ in gains]
        star_score = spike = 0.0
        for k, (s, gap, day) in enumerate(gains):
            others = rates[:k] + rates[k + 1:]
            cap = max(10 * sum(others) / len(others), 50.0) if len(gains) >= 3 else None
            counted = s if cap is None else min(s, cap * gap)
            spike += s - counted
            star_score += (2 + 3 * day / window_days) * counted
        fork_score = sum((1 + 3 * days[k] / window_days) * (forks[k] - forks[k - 1]) for k in range(1, len(g)))
        bonus = 200 / (1 + (as_of - first_seen[repo_id]).days / 365.25)
        rows.append({"full_name": repos.loc[repo_id, "full_name"], "star_delta": stars[-1] - stars[0],
                     "stars": stars[-1], "spike_stars": round(spike), "young_bonus": bonus,
                     "trending_score": star_score + fork_score + bonus,
                     "coverage": ("entered" if days[0] > 0 else "") + ("+left" if g["snapshot_date"].iloc[-1]
                                                                         < as_of else "")})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["coverage"] = frame["coverage"].replace({"": "full", "+left": "left"})
    return frame.sort_values(["trending_score", "full_name"], ascending=[False, True]).head(limit)


@pytest.mark.parametrize("kwargs", [
    {}, {"window_days": 3}, {"window_days": 30}, {"language": "Python"}, {"limit": 1},
    {"as_of": "2026-08-17", "window_days": 5},
])
def test_stars_matches_pandas(data_engine, kwargs):
    frame = trending_by_stars(data_engine, **kwargs)
    as_of = dt.date.fromisoformat(kwargs["as_of"]) if "as_of" in kwargs else None
    want = expected_stars(data_engine, **{**kwargs, "as_of": as_of})
    assert frame["full_name"].tolist() == want["full_name"].tolist()
    for column in ("star_delta", "stars", "spike_stars", "coverage"):
        assert frame[column].tolist() == want[column].tolist(), column
    np.testing.assert_allclose(frame["trending_score"], want["trending_score"], rtol=1e-9)
    np.testing.assert_allclose(frame["young_bonus"], want["young_bonus"], rtol=1e-9)


def test_stars_edge_cases(data_engine):
    frame = trending_by_stars(data_engine).set_index("full_name")
    assert frame.attrs["as_of"] == AS_OF  # from the data, not the clock
    assert "dave/oldie" not in frame.index  # last commit 200 days before as_of
    assert "bob/private" not in frame.index  # one snapshot: no trend
    busy, quiet, big = frame.loc["alice/busy"], frame.loc["bob/quiet"], frame.loc["carol/big"]
    assert busy["coverage"] == "full" and busy["star_delta"] == 1490 - 430 and busy["spike_stars"] > 0
    assert quiet["coverage"] == "entered" and quiet["stars_start"] == 5 and quiet["first_snapshot"] == dt.date(
        2026, 8, 16)
    assert big["coverage"] == "left" and big["star_delta"] == 10140 - 10120  # 08-13 -> its last, 08-18
    assert big["last_snapshot"] == dt.date(2026, 8, 18)
    assert frame.loc["dave/100%_done", "first_seen"] == dt.date(2024, 1, 1)
    assert str(frame["trending_score"].dtype) == "float64" and str(frame["star_delta"].dtype) == "int64"
    assert str(frame["last_commit"].dtype) == "datetime64[us, UTC]"


def test_stars_negative_delta(data_engine):
    frame = trending_by_stars(data_engine, as_of="2026-08-18", window_days=4).set_index("full_name")
    assert frame.loc["carol/big", "star_delta"] == 10140 - 10180  # unstars: 08-14 -> 08-18
    assert frame.loc["carol/big", "stars"] == 10140


def test_empty_history(engine):
    frame = trending_by_stars(engine)
    assert frame.empty and frame.attrs["as_of"] is None
    assert list(frame.columns) == list(t.STARS_COLUMNS)


@pytest.mark.parametrize("kwargs, parameter", [
    ({"window_days": 0}, "window_days"), ({"window_days": 366}, "window_days"), ({"window_days": -7}, "window_days"),
    ({"limit": 0}, "limit"), ({"limit": 5000}, "limit"), ({"as_of": "2026-13-01"}, "as_of"),
    ({"as_of": "yesterday"}, "as_of"), ({"as_of": "2026-08-20'; DROP TABLE x; --"}, "as_of"),
    ({"language": "Klingon"}, "language"),
])
@pytest.mark.parametrize("fn", [trending_by_score, trending_by_stars])
def test_bad_parameters(data_engine, fn, kwargs, parameter):
    with pytest.raises(ValidationError) as info:
        fn(data_engine, **kwargs)
    assert info.value.parameter == parameter


@pytest.mark.parametrize("value", [-0.1, 1.5, "high", float("nan")])
def test_bad_min_confidence(data_engine, value):
    with pytest.raises(ValidationError, match="min_confidence"):
        trending_by_score(data_engine, min_confidence=value)


def test_trending_on_seeded_data(seeded_engine):
    frame = trending_by_score(seeded_engine, limit=20)
    want = expected_score(seeded_engine, limit=20)
    assert list(zip(frame["full_name"], frame["trending_score"], frame["recent_insights"], strict=True)) == want


def test_default_report_is_precomputed_and_falls_back_when_stale(data_engine):
    assert trending_by_score(data_engine).attrs["precomputed"] is True
    assert trending_by_score(data_engine, window_days=6).attrs["precomputed"] is False
    assert trending_by_score(data_engine, min_confidence=0.1).attrs["precomputed"] is False
    with data_engine.begin() as conn:  # a newer insight: the view's window no longer ends on the newest day
        conn.exec_driver_sql(
            "INSERT INTO insights (repository_id, type, title, confidence_score, data, generated_at) "
            "SELECT id, 'security', 't', 0.9, '{}', '2026-08-21 10:00+00' FROM repositories WHERE name = 'quiet'")
    frame = trending_by_score(data_engine)
    assert frame.attrs["precomputed"] is False and frame.attrs["as_of"] == dt.date(2026, 8, 21)
    got = list(zip(frame["full_name"], frame["trending_score"], frame["recent_insights"], strict=True))
    assert got == expected_score(data_engine)
    refresh_stats(data_engine)
    again = trending_by_score(data_engine)
    assert again.attrs["precomputed"] is True
    assert list(zip(again["full_name"], again["trending_score"], again["recent_insights"], strict=True)) == got


def _live_stars(engine, *, window_days, language=None, limit=50) -> pd.DataFrame:
    """The live statement of trending_by_stars for the newest snapshot day, bypassing the precomputed rows."""
    from gitinsight_analytics.queries.frame import read_frame

    with engine.connect() as conn:
        day = conn.exec_driver_sql("SELECT max(snapshot_date) FROM repository_snapshot_deltas").scalar()
        params = {"start": day - dt.timedelta(days=window_days), "as_of": day, "window": float(window_days),
                  "language": language, "limit": limit, "window_days": window_days,
                  "sw0": t.STAR_WEIGHTS[0], "sw1": t.STAR_WEIGHTS[1], "fw0": t.FORK_WEIGHTS[0],
                  "fw1": t.FORK_WEIGHTS[1], "spike_factor": t.SPIKE_FACTOR, "spike_floor": t.SPIKE_FLOOR,
                  "young": t.YOUNG_BONUS,
                  "active_since": dt.datetime.combine(day - dt.timedelta(days=t.INACTIVE_DAYS), dt.time(),
                                                      tzinfo=dt.UTC)}
        return read_frame(conn, t.STARS_SQL, params, t.STARS_COLUMNS)


@pytest.mark.parametrize("language", [None, "Python"])
@pytest.mark.parametrize("limit", [50, 2])
@pytest.mark.parametrize("window_days", STAR_TREND_WINDOWS)
def test_precomputed_stars_are_the_live_rows(data_engine, window_days, language, limit):
    frame = trending_by_stars(data_engine, window_days=window_days, language=language, limit=limit)
    assert frame.attrs["precomputed"] is True
    pd.testing.assert_frame_equal(frame, _live_stars(data_engine, window_days=window_days, language=language,
                                                     limit=limit), check_exact=False, rtol=1e-12)


def test_stars_precomputed_only_for_the_newest_day_and_its_windows(data_engine):
    assert trending_by_stars(data_engine, as_of=AS_OF).attrs["precomputed"] is True
    assert trending_by_stars(data_engine, window_days=3).attrs["precomputed"] is False
    assert trending_by_stars(data_engine, as_of="2026-08-19").attrs["precomputed"] is False


def test_stars_precomputed_rows_follow_the_refresh(data_engine):
    new_day = AS_OF + dt.timedelta(days=1)
    with data_engine.begin() as conn:  # a new day of star history for one repository
        conn.exec_driver_sql(
            "INSERT INTO repository_snapshots (repository_id, snapshot_date, full_name, stars, forks, last_commit) "
            "SELECT repository_id, %(day)s, full_name, stars + 5000, forks, last_commit FROM repository_snapshots "
            "WHERE full_name = 'bob/quiet-old-name' AND snapshot_date = %(as_of)s", {"day": new_day, "as_of": AS_OF})
    before = trending_by_stars(data_engine)  # the views are not refreshed yet: the old day, still precomputed
    assert before.attrs["as_of"] == AS_OF and before.attrs["precomputed"] is True
    refresh_stats(data_engine)
    frame = trending_by_stars(data_engine)
    assert frame.attrs["as_of"] == new_day and frame.attrs["precomputed"] is True
    want = expected_stars(data_engine, as_of=new_day)
    assert frame["full_name"].tolist() == want["full_name"].tolist() and "bob/quiet" in set(frame["full_name"])
    np.testing.assert_allclose(frame["trending_score"], want["trending_score"], rtol=1e-9)
