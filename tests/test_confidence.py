"""Confidence analyses from the aggregate views, recomputed with pandas/scipy from raw insights."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gitinsight_analytics.exceptions import ValidationError
from gitinsight_analytics.queries import (
    confidence_distribution,
    low_confidence_share,
    model_version_comparison,
    refresh_stats,
    tag_summary,
)
from gitinsight_analytics.queries.confidence import version_key, weighted_quantile

from .query_data import raw


def insights(engine) -> pd.DataFrame:
    ins = raw(engine, "insights")
    ins["confidence_score"] = ins["confidence_score"].astype(float)
    ins["model_version"] = ins["model_version"].fillna("(none)")
    return ins


def check_distribution(engine, **kwargs):
    frame = confidence_distribution(engine, **kwargs)
    ins = insights(engine)
    if kwargs.get("insight_type"):
        ins = ins[ins["type"] == kwargs["insight_type"]]
    groups = ins.groupby(["type", "model_version"])["confidence_score"]
    want = groups.agg(["count", "mean", "std", "min", "max"])
    for name, q in {"p10": 0.1, "p25": 0.25, "median": 0.5, "p75": 0.75, "p90": 0.9}.items():
        want[name] = groups.quantile(q)
    want["share_below_0_5"] = groups.agg(lambda s: (s < 0.5).mean())
    got = frame.set_index(["insight_type", "model_version"])
    assert sorted(got.index) == sorted(want.index)
    got = got.loc[want.index]
    assert got["n"].tolist() == want["count"].tolist()
    for column in ("mean", "std", "min", "max", "p10", "p25", "median", "p75", "p90", "share_below_0_5"):
        np.testing.assert_allclose(got[column], want[column], rtol=1e-9, atol=1e-12, err_msg=column)
    return frame


def test_distribution_matches_pandas(data_engine):
    frame = check_distribution(data_engine)
    assert str(frame["n"].dtype) == "int64" and str(frame["mean"].dtype) == "float64"
    assert frame.attrs["view_refreshed_at"] is not None
    check_distribution(data_engine, insight_type="security")


def test_distribution_on_seeded_data(seeded_engine):
    check_distribution(seeded_engine)


def test_weighted_quantile_matches_numpy():
    rng = np.random.default_rng(1)
    values = np.round(rng.uniform(0, 1, 300), 2)
    grid, counts = np.unique(values, return_counts=True)
    for q in (0, 0.1, 0.25, 0.5, 0.9, 1):
        assert weighted_quantile(grid, counts, q) == pytest.approx(np.quantile(values, q))


def expected_comparison(engine, insight_type=None) -> list[dict]:
    ins = insights(engine)
    rows = []
    for kind, group in sorted(ins.groupby("type")):
        if insight_type and kind != insight_type:
            continue
        versions = sorted(group["model_version"].unique(), key=version_key)
        for a_name, b_name in zip(versions, versions[1:], strict=False):
            a = group.loc[group["model_version"] == a_name, "confidence_score"].to_numpy()
            b = group.loc[group["model_version"] == b_name, "confidence_score"].to_numpy()
            diff = np.sign(b[:, None] - a[None, :])
            var = [x.var(ddof=1) if len(x) > 1 else np.nan for x in (a, b)]
            pooled = np.sqrt(((len(a) - 1) * var[0] + (len(b) - 1) * var[1]) / (len(a) + len(b) - 2)) \
                if len(a) + len(b) > 2 else 0
            test = stats.mannwhitneyu(b, a, alternative="two-sided", method="asymptotic") if len(
                set(a) | set(b)) > 1 else None
            rows.append({"insight_type": kind, "version_a": a_name, "version_b": b_name, "n_a": len(a),
                         "n_b": len(b), "cliffs_delta": diff.mean(),
                         "cohens_d": (b.mean() - a.mean()) / pooled if pooled else np.nan,
                         "p_value": test.pvalue if test else 1.0})
    return rows


def _check_comparison(engine, **kwargs):
    frame = model_version_comparison(engine, **kwargs)
    want = expected_comparison(engine, **kwargs)
    assert frame[["insight_type", "version_a", "version_b"]].values.tolist() == [
        [w["insight_type"], w["version_a"], w["version_b"]] for w in want]
    for column in ("n_a", "n_b", "cliffs_delta", "cohens_d", "p_value"):
        np.testing.assert_allclose(frame[column].astype(float), [w[column] for w in want], rtol=1e-9,
                                   atol=1e-12, err_msg=column)
    return frame


def test_version_comparison_matches_scipy(data_engine):
    frame = _check_comparison(data_engine)
    security = frame[frame["insight_type"] == "security"]
    # natural version order: v1.9 < v1.10 < v2
    assert security[["version_a", "version_b"]].values.tolist() == [["v1.9", "v1.10"], ["v1.10", "v2"]]
    assert set(frame["magnitude"]) <= {"negligible", "small", "medium", "large"}


def test_version_comparison_on_seeded_data(seeded_engine):
    frame = _check_comparison(seeded_engine)
    assert len(frame) > 0


def expected_low_share(engine, threshold, freq, as_of, window_days, insight_type=None) -> pd.DataFrame:
    ins = insights(engine)
    ins = ins[ins["generated_at"].notna()]
    if insight_type:
        ins = ins[ins["type"] == insight_type]
    day = ins["generated_at"].dt.tz_convert("UTC").dt.date
    as_of = as_of or day.max()
    keep = (day >= as_of - dt.timedelta(days=window_days - 1)) & (day <= as_of)
    ins, day = ins[keep], pd.to_datetime(day[keep])
    period = {"day": day, "week": day - pd.to_timedelta(day.dt.day_of_week, unit="D"),
              "month": day.dt.to_period("M").dt.start_time}[freq]
    grouped = ins.assign(period=period, low=ins["confidence_score"] < threshold).groupby("period")
    return pd.DataFrame({"insights": grouped.size(), "low": grouped["low"].sum()})


@pytest.mark.parametrize("kwargs", [
    {}, {"threshold": 0.42}, {"threshold": 0.43}, {"threshold": 0.3}, {"threshold": 1.0}, {"freq": "day"},
    {"freq": "month", "window_days": 90}, {"insight_type": "security", "threshold": 0.51},
    {"as_of": "2026-08-17", "window_days": 10, "freq": "day"}, {"threshold": 0.005},
])
def test_low_confidence_share_matches_pandas(data_engine, kwargs):
    params = {"threshold": 0.5, "freq": "week", "as_of": None, "window_days": 365} | kwargs
    frame = low_confidence_share(data_engine, **params)
    as_of = dt.date.fromisoformat(params["as_of"]) if params["as_of"] else None
    want = expected_low_share(data_engine, params["threshold"], params["freq"], as_of, params["window_days"],
                              params.get("insight_type"))
    assert [p.date() for p in frame["period_start"]] == [p.date() for p in want.index]
    assert frame["insights"].tolist() == want["insights"].tolist()
    assert frame["low"].tolist() == want["low"].tolist()
    np.testing.assert_allclose(frame["share_low"], want["low"] / want["insights"])
    assert str(frame["period_start"].dtype) == "datetime64[us, UTC]"


def test_low_confidence_share_on_seeded_data(seeded_engine):
    frame = low_confidence_share(seeded_engine, threshold=0.6, freq="month")
    want = expected_low_share(seeded_engine, 0.6, "month", None, 365)
    assert frame["low"].tolist() == want["low"].tolist()
    assert frame["insights"].tolist() == want["insights"].tolist()


def expected_tags(engine) -> pd.DataFrame:
    ins = insights(engine)
    ins["tags"] = ins["tags"].map(lambda t: sorted({x for x in (t or []) if x is not None}))
    tagged = ins.explode("tags").dropna(subset=["tags"])
    grouped = tagged.groupby("tags")
    out = pd.DataFrame({"insights": grouped.size(), "repositories": grouped["repository_id"].nunique(),
                        "avg_confidence": grouped["confidence_score"].mean()})
    out["share"] = out["insights"] / len(ins)
    return out.reset_index().sort_values(["insights", "tags"], ascending=[False, True])


@pytest.mark.parametrize("limit", [20, 2])
def test_tags_match_pandas(data_engine, limit):
    frame = tag_summary(data_engine, limit=limit)
    want = expected_tags(data_engine).head(limit)
    assert frame["tag"].tolist() == want["tags"].tolist()
    assert frame["insights"].tolist() == want["insights"].tolist()
    assert frame["repositories"].tolist() == want["repositories"].tolist()
    np.testing.assert_allclose(frame["avg_confidence"], want["avg_confidence"])
    np.testing.assert_allclose(frame["share_of_insights"], want["share"])


def test_tags_on_seeded_data(seeded_engine):
    frame = tag_summary(seeded_engine, limit=1000)
    want = expected_tags(seeded_engine)
    assert frame["tag"].tolist() == want["tags"].tolist()
    assert frame["repositories"].tolist() == want["repositories"].tolist()


def test_views_follow_refresh(data_engine):
    with data_engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM insights WHERE type = 'documentation'")
    assert "documentation" in set(confidence_distribution(data_engine)["insight_type"])  # stale until refresh
    refresh_stats(data_engine)
    assert "documentation" not in set(confidence_distribution(data_engine)["insight_type"])


@pytest.mark.parametrize("fn, kwargs, parameter", [
    (confidence_distribution, {"insight_type": "astrology"}, "insight_type"),
    (confidence_distribution, {"model_version": "v99"}, "model_version"),
    (model_version_comparison, {"insight_type": "x' OR '1'='1"}, "insight_type"),
    (low_confidence_share, {"threshold": 0}, "threshold"), (low_confidence_share, {"threshold": 2}, "threshold"),
    (low_confidence_share, {"freq": "fortnight"}, "freq"), (low_confidence_share, {"window_days": 0}, "window_days"),
    (low_confidence_share, {"window_days": 400}, "window_days"),
    (low_confidence_share, {"as_of": "2026/08/01"}, "as_of"),
    (tag_summary, {"limit": 0}, "limit"), (tag_summary, {"limit": 1001}, "limit"),
])
def test_bad_parameters(data_engine, fn, kwargs, parameter):
    with pytest.raises(ValidationError) as info:
        fn(data_engine, **kwargs)
    assert info.value.parameter == parameter and info.value.allowed
