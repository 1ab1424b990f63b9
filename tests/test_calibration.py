"""Calibration analysis: the numbers match an independent numpy computation; unresolved insights are reported
apart; the version comparison's bootstrap interval is reproducible and covers the difference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa

from gitinsight_analytics import queries
from gitinsight_analytics.queries.calibration import calibration_findings

from . import factories

N = 400


def _write(engine: sa.engine.Engine, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two versions predicting the same (repository, as-of) events: v2 informative, v1 noisy; plus synthetic
    insights without outcomes. Returns the (p, y) arrays per version as written (p rounded like NUMERIC(3,2))."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.05, 0.95, N)
    y = (rng.random(N) < truth).astype(float)
    p2 = np.round(np.clip(truth + rng.normal(0, 0.05, N), 0.01, 0.99), 2)
    p1 = np.round(rng.uniform(0.01, 0.99, N), 2)
    with engine.begin() as conn:
        owner = factories.user(conn)
        repos = [factories.repository(conn, owner) for _ in range(40)]
        for _ in range(7):
            factories.insight(conn, repos[0], type="code_quality", confidence=0.7)
        rows, outcomes = [], []
        for k in range(N):
            repo, day = repos[k % 40], f"2026-08-{1 + k // 40:02d}"
            for version, p in (("baseline-1", p1[k]), ("logistic-1", p2[k])):
                key = f"trend_prediction:{version}:{day}:h7"
                rows.append({"r": repo, "c": float(p), "v": version, "k": key,
                             "d": json.dumps({"as_of": day, "horizon_days": 7})})
                outcomes.append({"r": repo, "k": key, "o": bool(y[k]), "day": "2026-08-20"})
        conn.execute(sa.text("""INSERT INTO insights (repository_id, type, title, confidence_score, data,
                                model_version, analysis_key) VALUES (:r, 'trend_prediction', 't', :c,
                                CAST(:d AS jsonb), :v, :k)"""), rows)
        conn.execute(sa.text("INSERT INTO insight_outcomes (repository_id, analysis_key, outcome, observed_on) "
                             "VALUES (:r, :k, :o, CAST(:day AS date))"), outcomes)
        # a prediction whose horizon has not ended: counted, not scored
        conn.execute(sa.text("""INSERT INTO insights (repository_id, type, title, confidence_score, data,
                                model_version, analysis_key) VALUES (:r, 'trend_prediction', 't', 0.9,
                                '{"as_of": "2026-09-01", "horizon_days": 7}', 'logistic-1', 'pending')"""),
                     {"r": repos[1]})
    return {"baseline-1": (p1, y), "logistic-1": (p2, y)}


def _ece(p: np.ndarray, y: np.ndarray) -> float:
    """Independent ECE: scores have two decimals, so bins are exact in integer hundredths."""
    cents = np.rint(p * 100).astype(int)
    total = 0.0
    for k in range(10):
        m = (cents >= 10 * k) & ((cents < 10 * (k + 1)) if k < 9 else (cents <= 100))
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return total


@pytest.mark.parametrize("seed", [1, 2])
def test_summary_matches_numpy(engine: sa.engine.Engine, seed: int) -> None:
    written = _write(engine, seed)
    summary = queries.calibration_summary(engine).set_index(["insight_type", "model_version"])
    for version, (p, y) in written.items():
        row = summary.loc[("trend_prediction", version)]
        base = y.mean()
        brier = np.mean((p - y) ** 2)
        assert row["resolved"] == N
        assert row["brier"] == pytest.approx(brier, abs=1e-12)
        assert row["brier_skill"] == pytest.approx(1 - brier / (base * (1 - base)), abs=1e-12)
        assert row["ece"] == pytest.approx(_ece(p, y), abs=1e-12)
        assert row["log_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), abs=1e-12)
        assert row["base_rate"] == pytest.approx(base)
    assert summary.loc[("trend_prediction", "logistic-1"), "unresolved"] == 1
    synthetic = summary.loc[("code_quality", "gi-1.0")]
    assert (synthetic["status"], synthetic["insights"], synthetic["resolved"]) == ("no outcomes", 7, 0)
    assert np.isnan(synthetic["brier"])


def test_reliability_diagram_matches_numpy(engine: sa.engine.Engine) -> None:
    p, y = _write(engine, 3)["logistic-1"]
    diagram = queries.reliability_diagram(engine, insight_type="trend_prediction")
    rows = diagram[diagram["model_version"] == "logistic-1"]
    bins = np.minimum(np.rint(p * 100).astype(int) // 10, 9)
    assert rows["n"].sum() == N
    for row in rows.itertuples():
        m = bins == row.bin
        assert row.n == m.sum()
        assert row.mean_confidence == pytest.approx(p[m].mean())
        assert row.observed_rate == pytest.approx(y[m].mean())
        assert row.rate_low <= row.observed_rate <= row.rate_high


def test_version_comparison_bootstrap(engine: sa.engine.Engine) -> None:
    written = _write(engine, 4)
    comparison = queries.calibration_comparison(engine, n_bootstrap=500, seed=3)
    row = comparison.iloc[0]
    (p1, y), (p2, _) = written["baseline-1"], written["logistic-1"]
    diff = np.mean((p2 - y) ** 2) - np.mean((p1 - y) ** 2)
    assert (row.version_a, row.version_b, row.n_pairs, row.repositories) == ("baseline-1", "logistic-1", N, 40)
    assert row.brier_diff == pytest.approx(diff)
    assert row.diff_low <= diff <= row.diff_high < 0  # the informative version is clearly better
    again = queries.calibration_comparison(engine, n_bootstrap=500, seed=3)
    assert again.equals(comparison)
    findings = calibration_findings(queries.calibration_summary(engine), comparison)
    assert any("logistic-1 is better than baseline-1" in s for s in findings)
    assert any("none with a recorded outcome" in s for s in findings)


def test_empty_database_gives_empty_frames(engine: sa.engine.Engine) -> None:
    assert queries.calibration_summary(engine).empty
    assert queries.reliability_diagram(engine).empty
    assert queries.calibration_comparison(engine).empty
