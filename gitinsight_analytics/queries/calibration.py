"""Calibration: does a confidence of 0.8 come true 80% of the time, and is one model version better than another?

Only insights with a recorded outcome (``insight_outcomes``, written by ``gitinsight analyze resolve``) are
scored; insights without one (the synthetic insights, predictions whose horizon has not ended) are counted and
reported as unresolved, never mixed in. Per insight type and model version:

- Brier score ``mean((p - y)^2)``; Brier skill score ``1 - Brier / Brier_ref`` with the base rate as reference
  (``Brier_ref = ȳ(1 - ȳ)``: always predicting the observed frequency); > 0 beats the base rate.
- Expected calibration error: 10 equal-width bins of confidence ([0, 0.1), ..., [0.9, 1.0]),
  ``Σ n_b/N · |mean confidence_b − observed rate_b|``.
- Log loss ``−mean(y log p + (1 − y) log(1 − p))`` (p clipped to [1e-6, 1 − 1e-6]).
- Version comparison on the same (repository, as-of, horizon) predictions: Brier difference with a percentile
  bootstrap interval that resamples repositories (a repository's predictions on consecutive days are not
  independent, so they are resampled together).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text

from ..validation import check_int
from .confidence import version_key
from .frame import Bind, connection

__all__ = ["calibration_summary", "reliability_diagram", "calibration_comparison", "calibration_findings",
           "expected_calibration_error", "BINS"]

BINS = 10
_EPS = 1e-6

_COUNTS = text("""
    SELECT i.type, COALESCE(i.model_version, '(none)') AS model_version, COUNT(*)::bigint AS insights,
           COUNT(o.analysis_key)::bigint AS resolved
    FROM insights i
    LEFT JOIN insight_outcomes o ON o.repository_id = i.repository_id AND o.analysis_key = i.analysis_key
    WHERE (CAST(:type AS text) IS NULL OR i.type = :type)
    GROUP BY 1, 2 ORDER BY 1, 2
""")
_RESOLVED = text("""
    SELECT i.type, COALESCE(i.model_version, '(none)') AS model_version, i.repository_id::text AS repository_id,
           i.data->>'as_of' AS as_of, (i.data->>'horizon_days')::int AS horizon_days,
           i.confidence_score::float8 AS p, o.outcome AS y
    FROM insights i
    JOIN insight_outcomes o ON o.repository_id = i.repository_id AND o.analysis_key = i.analysis_key
    WHERE (CAST(:type AS text) IS NULL OR i.type = :type)
""")
#: The rows' fixed order (what makes the seeded bootstrap reproducible), applied by pandas: a server-side ORDER BY on
#: these text keys cost more than the join itself (collation-aware comparisons of ~10^5 rows).
_ORDER = ["type", "model_version", "repository_id", "as_of", "horizon_days"]


def _resolved(bind: Bind, insight_type: str | None) -> pd.DataFrame:
    with connection(bind) as conn:
        # plain tuples: pandas probes each Row object for attributes, which costs seconds on 10^5 rows
        rows = [tuple(r) for r in conn.execute(_RESOLVED, {"type": insight_type})]
    frame = pd.DataFrame(rows, columns=[*_ORDER, "p", "y"])
    frame = frame.sort_values(_ORDER, kind="stable", ignore_index=True)
    frame["p"] = frame["p"].astype("float64")
    frame["y"] = frame["y"].astype("float64")
    return frame


def _bin_of(p: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Bin index; rounding first so that 0.30 lands in [0.3, 0.4) (0.3 * 10 is 2.9999999999999996 in floats)."""
    return np.minimum(np.floor(np.round(p * bins, 9)).astype(int), bins - 1)


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> float:
    """ECE with ``bins`` equal-width bins (1.0 falls in the last bin)."""
    if len(p) == 0:
        return float("nan")
    b = _bin_of(p, bins)
    total = 0.0
    for k in np.unique(b):
        m = b == k
        total += m.sum() / len(p) * abs(p[m].mean() - y[m].mean())
    return float(total)


def _scores(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    base = float(y.mean())
    brier = float(np.mean((p - y) ** 2))
    ref = base * (1 - base)
    q = np.clip(p, _EPS, 1 - _EPS)
    return {"base_rate": base, "mean_confidence": float(p.mean()), "brier": brier, "brier_ref": ref,
            "brier_skill": 1 - brier / ref if ref > 0 else float("nan"),
            "ece": expected_calibration_error(p, y), "log_loss": float(-np.mean(y * np.log(q) + (1 - y) *
                                                                                np.log(1 - q)))}


_SUMMARY_COLUMNS = ["insight_type", "model_version", "insights", "resolved", "unresolved", "base_rate",
                    "mean_confidence", "brier", "brier_ref", "brier_skill", "ece", "log_loss", "status"]


def calibration_summary(bind: Bind, *, insight_type: str | None = None) -> pd.DataFrame:
    """Per type and model version: insights, resolved, unresolved, and the scores of the resolved ones.

    ``status`` is ``evaluated`` or ``no outcomes`` (scores NaN: nothing to check them against).
    """
    with connection(bind) as conn:
        counts = conn.execute(_COUNTS, {"type": insight_type}).all()
    resolved = _resolved(bind, insight_type)
    rows: list[dict[str, Any]] = []
    for t, v, n, r in counts:
        row: dict[str, Any] = {"insight_type": t, "model_version": v, "insights": int(n), "resolved": int(r),
                               "unresolved": int(n - r)}
        group = resolved[(resolved["type"] == t) & (resolved["model_version"] == v)]
        if len(group):
            row.update(_scores(group["p"].to_numpy(), group["y"].to_numpy()), status="evaluated")
        else:
            row["status"] = "no outcomes"
        rows.append(row)
    frame = pd.DataFrame(rows, columns=_SUMMARY_COLUMNS)
    for column in ("insights", "resolved", "unresolved"):
        frame[column] = frame[column].astype("int64")
    for column in _SUMMARY_COLUMNS[5:12]:
        frame[column] = frame[column].astype("float64")
    return frame


def reliability_diagram(bind: Bind, *, insight_type: str | None = None) -> pd.DataFrame:
    """Per type, version and confidence bin: n, mean confidence, observed rate and its 95% Wilson interval."""
    resolved = _resolved(bind, insight_type)
    rows = []
    for (t, v), group in resolved.groupby(["type", "model_version"], sort=True):
        b = _bin_of(group["p"].to_numpy())
        for k in range(BINS):
            m = b == k
            n = int(m.sum())
            if n == 0:
                continue
            rate = float(group["y"].to_numpy()[m].mean())
            z = 1.959964
            centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
            half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
            rows.append({"insight_type": t, "model_version": v, "bin": k, "bin_lower": k / BINS,
                         "bin_upper": (k + 1) / BINS, "n": n,
                         "mean_confidence": float(group["p"].to_numpy()[m].mean()), "observed_rate": rate,
                         "rate_low": max(0.0, min(rate, centre - half)),
                         "rate_high": min(1.0, max(rate, centre + half))})
    columns = ["insight_type", "model_version", "bin", "bin_lower", "bin_upper", "n", "mean_confidence",
               "observed_rate", "rate_low", "rate_high"]
    return pd.DataFrame(rows, columns=columns)


def calibration_comparison(bind: Bind, *, insight_type: str | None = None, n_bootstrap: int = 1000,
                           seed: int = 0) -> pd.DataFrame:
    """Each version against the previous one (natural order) on the predictions both made and that resolved:
    Brier of each, difference ``b − a`` (negative: b is better) with a 95% repository-bootstrap interval."""
    n_bootstrap = check_int(n_bootstrap, "n_bootstrap", 100, 100_000)
    resolved = _resolved(bind, insight_type)
    rng = np.random.default_rng(seed)
    rows = []
    for t, group in resolved.groupby("type", sort=True):
        versions = sorted(group["model_version"].unique(), key=version_key)
        for a, b in zip(versions, versions[1:], strict=False):
            key = ["repository_id", "as_of", "horizon_days"]
            pair = group[group["model_version"] == a].merge(group[group["model_version"] == b], on=key,
                                                              suffixes=("_a", "_b"))
            if pair.empty:
                continue
            loss_a = (pair["p_a"] - pair["y_a"]).to_numpy() ** 2
            loss_b = (pair["p_b"] - pair["y_b"]).to_numpy() ** 2
            codes, _ = pd.factorize(pair["repository_id"])
            k = codes.max() + 1
            sum_diff = np.bincount(codes, weights=loss_b - loss_a, minlength=k)
            count = np.bincount(codes, minlength=k).astype(float)
            draws = rng.integers(0, k, size=(n_bootstrap, k))
            boot = sum_diff[draws].sum(axis=1) / count[draws].sum(axis=1)
            low, high = np.percentile(boot, [2.5, 97.5])
            rows.append({"insight_type": t, "version_a": a, "version_b": b, "n_pairs": len(pair),
                         "repositories": int(k), "brier_a": float(loss_a.mean()), "brier_b": float(loss_b.mean()),
                         "brier_diff": float((loss_b - loss_a).mean()), "diff_low": float(low),
                         "diff_high": float(high), "ece_a": expected_calibration_error(pair["p_a"].to_numpy(),
                                                                                       pair["y_a"].to_numpy()),
                         "ece_b": expected_calibration_error(pair["p_b"].to_numpy(), pair["y_b"].to_numpy())})
    columns = ["insight_type", "version_a", "version_b", "n_pairs", "repositories", "brier_a", "brier_b",
               "brier_diff", "diff_low", "diff_high", "ece_a", "ece_b"]
    return pd.DataFrame(rows, columns=columns)


def calibration_findings(summary: pd.DataFrame, comparison: pd.DataFrame) -> list[str]:
    """The key findings as sentences, from :func:`calibration_summary` and :func:`calibration_comparison`."""
    out = []
    for row in summary.itertuples():
        if row.status != "evaluated":
            out.append(f"{row.insight_type} {row.model_version}: {row.insights:,} insights, none with a recorded "
                       "outcome, so their confidence cannot be checked.")
            continue
        quality = "well calibrated" if row.ece <= 0.05 else "not well calibrated"
        skill = "beats" if row.brier_skill > 0 else "does not beat"
        out.append(f"{row.insight_type} {row.model_version}: over {row.resolved:,} resolved predictions the event "
                   f"happened {row.base_rate:.1%} of the time against a mean confidence of "
                   f"{row.mean_confidence:.1%}; ECE {row.ece:.3f} ({quality}), Brier {row.brier:.4f}, skill "
                   f"{row.brier_skill:+.3f} ({skill} the base rate).")
    for row in comparison.itertuples():
        if row.diff_high < 0:
            verdict = f"{row.version_b} is better than {row.version_a}"
        elif row.diff_low > 0:
            verdict = f"{row.version_b} is worse than {row.version_a}"
        else:
            verdict = f"no clear difference between {row.version_a} and {row.version_b}"
        out.append(f"{row.insight_type}: {verdict} (Brier {row.brier_a:.4f} → {row.brier_b:.4f}, difference "
                   f"{row.brier_diff:+.4f}, 95% interval {row.diff_low:+.4f} .. {row.diff_high:+.4f} over "
                   f"{row.repositories:,} repositories, {row.n_pairs:,} paired predictions).")
    return out
