"""Insight models: no look-ahead, training only on outcomes known at as_of, the insight's content, idempotent
re-runs, outcomes (resolve) and the logistic fit."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import sqlalchemy as sa

from gitinsight_analytics.analysis import WorkerOptions, backtest_days, enqueue, resolve_outcomes, work
from gitinsight_analytics.analysis.features import HISTORY_DAYS, load_history, threshold_stars
from gitinsight_analytics.analysis.logistic import fit_logistic, sigmoid
from gitinsight_analytics.analysis.models_base import training_days
from gitinsight_analytics.analysis.registry import models_of
from gitinsight_analytics.analysis.worker import run_worker

from . import analysis_data as data

AS_OF = data.START + dt.timedelta(days=20)
TYPES = ("trend_prediction", "list_retention")


def _run(engine: sa.engine.Engine, insight_type: str = "trend_prediction", as_of: dt.date = AS_OF) -> None:
    enqueue(engine, insight_type, as_of=as_of)
    run_worker(engine, options=WorkerOptions(until_empty=True, batch=50))


def _insights(engine: sa.engine.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT repository_id::text, type, model_version, confidence_score, data, title, "
                                    "description, tags, analysis_key FROM insights ORDER BY analysis_key, "
                                    "repository_id")).all()


@pytest.fixture
def history_engine(engine: sa.engine.Engine) -> sa.engine.Engine:
    with engine.begin() as conn:
        data.star_history(conn, repos=40, days=30)
        # a quarter of the repositories drop out of the lists now and then (list_retention needs both outcomes)
        conn.execute(sa.text("DELETE FROM repository_snapshots WHERE best_rank % 4 = 3 "
                             "AND (extract(day FROM snapshot_date)::int + best_rank) % 9 = 0"))
    return engine


@pytest.mark.parametrize("insight_type", TYPES)
def test_no_look_ahead(history_engine: sa.engine.Engine, insight_type: str) -> None:
    """Changing or adding data after as_of changes no prediction."""
    _run(history_engine, insight_type)
    before = _insights(history_engine)
    assert {r.model_version for r in before} == {"baseline-1", "logistic-1"} and len(before) >= 60
    with history_engine.begin() as conn:
        conn.execute(sa.text("UPDATE repository_snapshots SET stars = stars * 3 + 7, best_rank = 100 "
                             "WHERE snapshot_date > :d"), {"d": AS_OF})
        conn.execute(sa.text("DELETE FROM repository_snapshots WHERE snapshot_date > :d AND best_rank % 2 = 0"),
                     {"d": AS_OF})
        conn.execute(sa.text("DELETE FROM insights"))
        conn.execute(sa.text("DELETE FROM analysis_jobs"))
    _run(history_engine, insight_type)
    assert _insights(history_engine) == before


def test_training_uses_only_outcomes_known_at_as_of(history_engine: sa.engine.Engine) -> None:
    history = load_history(history_engine, AS_OF)
    assert max(history.days) == AS_OF
    days = training_days(history, AS_OF, 7)
    assert days and all(d + dt.timedelta(days=7) <= AS_OF for d in days)
    with pytest.raises(ValueError, match="look ahead"):
        history.features(AS_OF + dt.timedelta(days=1), 7)


@pytest.mark.parametrize(("days_back", "history_days"), [(0, HISTORY_DAYS), (6, HISTORY_DAYS), (3, 5), (9, 2)])
def test_window_is_what_load_history_reads(history_engine: sa.engine.Engine, days_back: int,
                                           history_days: int) -> None:
    """A window cut from a longer history (what prewarmed workers use) equals reading that as-of day alone."""
    with history_engine.begin() as conn:  # one repository disappears early: it must leave the later windows
        conn.execute(sa.text("DELETE FROM repository_snapshots WHERE best_rank = 2 AND snapshot_date > :d"),
                     {"d": data.START + dt.timedelta(days=5)})
    day = AS_OF - dt.timedelta(days=days_back)
    direct = load_history(history_engine, day, history_days=history_days)
    cut = load_history(history_engine, AS_OF, history_days=history_days + days_back).window(
        day, history_days=history_days)
    assert (cut.as_of, cut.days, cut.repository_ids, cut.full_names) == (
        direct.as_of, direct.days, direct.repository_ids, direct.full_names)
    for name, matrix in direct.values.items():
        np.testing.assert_array_equal(cut.values[name], matrix)
    with pytest.raises(ValueError, match="look ahead"):
        direct.window(day + dt.timedelta(days=1))


@pytest.mark.parametrize("insight_type", TYPES)
def test_prewarmed_worker_processes_write_what_one_worker_writes(history_engine: sa.engine.Engine,
                                                                 insight_type: str) -> None:
    """Two forked workers (predictions computed once before the fork, several as-of days from one history read)
    write exactly the insights a single worker computing everything itself writes."""
    days = backtest_days(history_engine)[-3:]
    queued = sum(enqueue(history_engine, insight_type, as_of=day)["queued"] for day in days)
    stats = work(history_engine, workers=2, options=WorkerOptions(until_empty=True, batch=25),
                 handlers={insight_type: "gitinsight_analytics.analysis.registry:run_insight_job"})
    forked = _insights(history_engine)
    assert stats.completed == queued > 100 and len(forked) >= queued
    with history_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM insights"))
        conn.execute(sa.text("DELETE FROM analysis_jobs"))
    for day in days:
        enqueue(history_engine, insight_type, as_of=day)
    run_worker(history_engine, options=WorkerOptions(until_empty=True, batch=25))
    assert _insights(history_engine) == forked


def test_fitted_model_needs_known_outcomes(history_engine: sa.engine.Engine) -> None:
    early = data.START + dt.timedelta(days=9)  # lookback available, no outcome known yet
    _run(history_engine, as_of=early)
    versions = {r.model_version for r in _insights(history_engine)}
    with history_engine.connect() as conn:
        result = conn.execute(sa.text("SELECT options->'result' FROM analysis_jobs LIMIT 1")).scalar()
    assert versions == {"baseline-1"}
    assert "no outcomes known" in result["skipped"]["logistic-1"]


def test_insight_content_and_threshold(history_engine: sa.engine.Engine) -> None:
    _run(history_engine)
    rows = _insights(history_engine)
    for row in rows:
        d = row.data
        assert {"as_of", "horizon_days", "threshold_stars", "stars_at_as_of", "features"} <= set(d)
        assert d["as_of"] == AS_OF.isoformat() and d["horizon_days"] == 7
        assert float(row.confidence_score) == round(d["probability"], 2) and 0.01 <= d["probability"] <= 0.99
        assert d["threshold_stars"] == threshold_stars(d["features"]["stars_gained_7d"], 7)
        assert f"{d['threshold_stars']}+ stars" in row.title and row.model_version in row.description
        assert "horizon-7d" in row.tags and row.analysis_key.endswith(f"{AS_OF}:h7")
    logistic = [r for r in rows if r.model_version == "logistic-1"]
    assert set(logistic[0].data["model"]["coefficients"]) >= {"intercept", "platt_a", "log_pace_7d"}


def test_rerun_writes_no_duplicate(history_engine: sa.engine.Engine) -> None:
    _run(history_engine)
    first = _insights(history_engine)
    with history_engine.begin() as conn:
        jobs = conn.execute(sa.text("UPDATE analysis_jobs SET status = 'failed'")).rowcount
    assert enqueue(history_engine, "trend_prediction", as_of=AS_OF)["requeued"] == jobs > 0
    run_worker(history_engine, options=WorkerOptions(until_empty=True))
    assert _insights(history_engine) == first


def test_resolve_records_outcomes_and_fills_in_with_newer_data(engine: sa.engine.Engine) -> None:
    cut = AS_OF + dt.timedelta(days=3)  # the data ends before the horizon of AS_OF
    with engine.begin() as conn:
        ids = data.star_history(conn, repos=30, days=30, until=cut)
    _run(engine)
    _run(engine, as_of=AS_OF - dt.timedelta(days=4))
    coverage = resolve_outcomes(engine).set_index("type")
    assert coverage.loc["trend_prediction", "resolved"] == 60  # the older as-of day: 30 repos x 2 versions
    assert coverage.loc["trend_prediction", "pending"] == 60
    with engine.begin() as conn:  # newer data arrives
        data.extend_history(conn, ids, days=30, after=cut)
    coverage = resolve_outcomes(engine).set_index("type")
    assert coverage.loc["trend_prediction", "resolved"] == 120 and coverage.loc["trend_prediction", "pending"] == 0
    assert coverage.loc["trend_prediction", "resolved_now"] == 60
    assert resolve_outcomes(engine).set_index("type").loc["trend_prediction", "resolved_now"] == 0  # idempotent
    with engine.connect() as conn:
        checked = conn.execute(sa.text("""
            SELECT bool_and(o.outcome = (s.stars - (i.data->>'stars_at_as_of')::int
                                         >= (i.data->>'threshold_stars')::int)), COUNT(*)
            FROM insight_outcomes o JOIN insights i USING (repository_id, analysis_key)
            JOIN repository_snapshots s ON s.repository_id = i.repository_id AND s.snapshot_date = o.observed_on
            """)).one()
    assert tuple(checked) == (True, 120)


def test_event_rate_is_informative(history_engine: sa.engine.Engine) -> None:
    for day in backtest_days(history_engine):
        enqueue(history_engine, "trend_prediction", as_of=day)
    run_worker(history_engine, options=WorkerOptions(until_empty=True, batch=100))
    resolve_outcomes(history_engine)
    with history_engine.connect() as conn:
        rate = conn.execute(sa.text("SELECT avg(outcome::int) FROM insight_outcomes")).scalar()
    assert 0.1 <= float(rate) <= 0.9


def test_logistic_fit_recovers_coefficients() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20_000, 2))
    y = (rng.random(20_000) < sigmoid(0.5 + 1.5 * X[:, 0] - 1.0 * X[:, 1])).astype(float)
    model = fit_logistic(X, y, ("a", "b"), l2=0.0)
    coef = model.describe()
    slope_a = coef["a"] / model.scale[0]
    assert abs(slope_a - 1.5) < 0.1 and abs(coef["b"] / model.scale[1] + 1.0) < 0.1


def test_every_type_has_two_versions() -> None:
    assert all(len(models_of(t)) >= 2 for t in TYPES)
