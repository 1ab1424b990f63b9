"""Confidence analysis: distributions by insight type and model version, version comparisons, low-confidence
share over time, tags. All read small aggregate views (``insight_confidence_hist``, ``insight_confidence_daily``,
``insight_tag_stats``, refreshed with repository_stats) instead of scanning the insights table.

Confidence scores are NUMERIC(3,2): at most 101 distinct values, so counts per value give exact statistics.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..validation import FREQUENCIES, check_choice, check_fraction, check_limit, check_window_days, parse_date
from .frame import Bind, connection, read_frame, to_frame, view_refreshed_at

__all__ = [
    "confidence_distribution",
    "model_version_comparison",
    "low_confidence_share",
    "tag_summary",
    "weighted_quantile",
    "version_key",
]

HIST = "insight_confidence_hist"
DAILY = "insight_confidence_daily"
QUANTILES = {"p10": 0.10, "p25": 0.25, "median": 0.50, "p75": 0.75, "p90": 0.90}


def version_key(version: str) -> tuple:
    """Natural sort key: ``v1.10`` after ``v1.9``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", version))


def weighted_quantile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """The ``q`` quantile of ``values`` repeated ``counts`` times, interpolated linearly as numpy/pandas do."""
    total = int(counts.sum())
    if total == 0:
        return float("nan")
    position = (total - 1) * q
    lower, upper = int(np.floor(position)), int(np.ceil(position))
    cumulative = np.cumsum(counts)
    value_at = lambda k: float(values[np.searchsorted(cumulative, k + 1)])  # noqa: E731 - k-th order statistic
    return value_at(lower) + (value_at(upper) - value_at(lower)) * (position - lower)


def _check_member(conn: Connection, value: Any, name: str, column: str) -> str | None:
    if value is None:
        return None
    known = [r[0] for r in conn.execute(text(f"SELECT DISTINCT {column} FROM {HIST} ORDER BY 1"))]  # noqa: S608
    return check_choice(value, name, known) if known else check_choice(value, name, ["(no insights)"])


def _counts(conn: Connection, insight_type: str | None, model_version: str | None) -> pd.DataFrame:
    return read_frame(
        conn,
        f"""
        SELECT type AS insight_type, model_version, confidence_score::float8 AS confidence_score, SUM(n) AS n
        FROM {HIST}
        WHERE (CAST(:t AS text) IS NULL OR type = CAST(:t AS text))
          AND (CAST(:m AS text) IS NULL OR model_version = CAST(:m AS text))
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,  # noqa: S608 - constant view name
        {"t": insight_type, "m": model_version},
        {"insight_type": "str", "model_version": "str", "confidence_score": "float", "n": "int"},
    )


def _describe(values: np.ndarray, counts: np.ndarray) -> dict[str, float]:
    n = int(counts.sum())
    mean = float((values * counts).sum() / n)
    var = float((counts * (values - mean) ** 2).sum() / (n - 1)) if n > 1 else float("nan")
    row = {"n": n, "mean": mean, "std": var ** 0.5, "min": float(values[counts > 0].min())}
    row.update({name: weighted_quantile(values, counts, q) for name, q in QUANTILES.items()})
    row["max"] = float(values[counts > 0].max())
    row["share_below_0_5"] = float(counts[values < 0.5].sum() / n)
    return row


def confidence_distribution(
    bind: Bind, *, insight_type: str | None = None, model_version: str | None = None
) -> pd.DataFrame:
    """Per insight type and model version: n, mean, std (ddof 1), min, p10, p25, median, p75, p90, max and the
    share below 0.5. Model versions missing in the data are labelled '(none)'."""
    with connection(bind) as conn:
        insight_type = _check_member(conn, insight_type, "insight_type", "type")
        model_version = _check_member(conn, model_version, "model_version", "model_version")
        counts = _counts(conn, insight_type, model_version)
        refreshed = view_refreshed_at(conn)
    rows = []
    for (kind, version), group in counts.groupby(["insight_type", "model_version"], sort=False):
        rows.append({"insight_type": kind, "model_version": version,
                     **_describe(group["confidence_score"].to_numpy(), group["n"].to_numpy())})
    columns = ["insight_type", "model_version", "n", "mean", "std", "min", *QUANTILES, "max", "share_below_0_5"]
    kinds = {c: "float" for c in columns} | {"insight_type": "str", "model_version": "str", "n": "int"}
    frame = to_frame([[r[c] for c in columns] for r in rows], columns, kinds)
    frame = frame.sort_values(["insight_type", "model_version"], key=lambda s: s.map(version_key)
                              if s.name == "model_version" else s, ignore_index=True)
    frame.attrs["view_refreshed_at"] = refreshed
    return frame


def _magnitude(delta: float) -> str:
    size = abs(delta)  # Romano et al. (2006) thresholds for Cliff's delta
    return "negligible" if size < 0.147 else "small" if size < 0.33 else "medium" if size < 0.474 else "large"


def _compare(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, float | str]:
    na, nb = int(a.sum()), int(b.sum())
    da, db = _describe(values, a), _describe(values, b)
    pooled = (((na - 1) * da["std"] ** 2 + (nb - 1) * db["std"] ** 2) / (na + nb - 2)) ** 0.5 if na + nb > 2 else 0
    below = np.cumsum(a) - a  # count of A strictly below each value
    above = na - np.cumsum(a)  # count of A strictly above each value
    cliffs = float(((b * below).sum() - (b * above).sum()) / (na * nb))
    if na > 0 and nb > 0 and (da["std"] > 0 or db["std"] > 0 or da["mean"] != db["mean"]):
        from scipy import stats as sps  # imported when needed: it costs a second at CLI start

        test = sps.mannwhitneyu(np.repeat(values, b), np.repeat(values, a), alternative="two-sided",
                                method="asymptotic")
        u, p = float(test.statistic), float(test.pvalue)
    else:
        u, p = float(na * nb) / 2, 1.0
    return {"n_a": na, "n_b": nb, "mean_a": da["mean"], "mean_b": db["mean"],
            "mean_diff": db["mean"] - da["mean"],
            "cohens_d": (db["mean"] - da["mean"]) / pooled if pooled else float("nan"),
            "cliffs_delta": cliffs, "magnitude": _magnitude(cliffs), "u_statistic": u, "p_value": p}


def model_version_comparison(bind: Bind, *, insight_type: str | None = None) -> pd.DataFrame:
    """For each insight type, each model version against the one before it (natural version order):
    sizes, means, mean difference (b - a), Cohen's d (pooled sd), Cliff's delta (P(b > a) - P(b < a)) with its
    magnitude, and the two-sided Mann-Whitney U test (normal approximation, tie-corrected)."""
    with connection(bind) as conn:
        insight_type = _check_member(conn, insight_type, "insight_type", "type")
        counts = _counts(conn, insight_type, None)
        refreshed = view_refreshed_at(conn)
    grid = np.round(np.arange(0, 101) / 100, 2)
    rows = []
    for kind, group in counts.groupby("insight_type", sort=True):
        table = group.pivot_table(index="confidence_score", columns="model_version", values="n", aggfunc="sum")
        table = table.reindex(grid, fill_value=0).fillna(0).astype("int64")
        versions = sorted(table.columns, key=version_key)
        for older, newer in zip(versions, versions[1:], strict=False):
            result = _compare(grid, table[older].to_numpy(), table[newer].to_numpy())
            rows.append({"insight_type": kind, "version_a": older, "version_b": newer, **result})
    columns = ["insight_type", "version_a", "version_b", "n_a", "n_b", "mean_a", "mean_b", "mean_diff",
               "cohens_d", "cliffs_delta", "magnitude", "u_statistic", "p_value"]
    kinds = {c: "float" for c in columns} | {c: "str" for c in ("insight_type", "version_a", "version_b",
                                                                 "magnitude")} | {"n_a": "int", "n_b": "int"}
    frame = to_frame([[r[c] for c in columns] for r in rows], columns, kinds)
    frame.attrs["view_refreshed_at"] = refreshed
    return frame


def low_confidence_share(
    bind: Bind,
    *,
    threshold: float = 0.5,
    freq: str = "week",
    as_of: str | dt.date | None = None,
    window_days: int = 365,
    insight_type: str | None = None,
) -> pd.DataFrame:
    """Per period (``freq``: day, week (Monday) or month, UTC) of the ``window_days`` days ending on ``as_of``
    (default: the day of the newest insight): insights, those with confidence < ``threshold``, their share.
    The first period may be cut by the window start (its ``days_in_window`` says so)."""
    threshold = check_fraction(threshold, "threshold", inclusive_low=False)
    freq = check_choice(freq, "freq", FREQUENCIES)
    window_days = check_window_days(window_days)
    as_of_date = parse_date(as_of)
    with connection(bind) as conn:
        insight_type = _check_member(conn, insight_type, "insight_type", "type")
        if as_of_date is None:
            as_of_date = conn.execute(text(f"SELECT max(day) FROM {DAILY}")).scalar()  # noqa: S608
        day = as_of_date or dt.date(1970, 1, 1)
        start = day - dt.timedelta(days=window_days - 1)
        # scores are confidence x 100 (integers): confidence < t  <=>  score < ceil(100 t)
        below = math.ceil(round(threshold * 100, 9))
        frame = read_frame(
            conn,
            f"""
            SELECT date_trunc(:freq, d.day::timestamp)::date AS period, COUNT(DISTINCT d.day) AS days_with_data,
                   SUM(d.n) AS insights, COALESCE(SUM(low.n), 0) AS low
            FROM {DAILY} d
            CROSS JOIN LATERAL (
                SELECT SUM(u.n) AS n FROM unnest(d.scores, d.counts) AS u(score, n) WHERE u.score < :below
            ) low
            WHERE d.day >= :start AND d.day <= :as_of
              AND (CAST(:t AS text) IS NULL OR d.type = CAST(:t AS text))
            GROUP BY 1 ORDER BY 1
            """,  # noqa: S608 - constant view name
            {"freq": freq, "below": below, "start": start, "as_of": day, "t": insight_type},
            {"period": "date", "days_with_data": "int", "insights": "int", "low": "int"},
        )
        refreshed = view_refreshed_at(conn)
    periods = [dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC) for d in frame.pop("period")]
    frame.insert(0, "period_start", pd.Series(periods, dtype="datetime64[us, UTC]"))
    frame["share_low"] = (frame["low"] / frame["insights"]).astype("float64")
    frame.attrs.update({"as_of": as_of_date, "window_start": start, "threshold": threshold,
                        "view_refreshed_at": refreshed})
    return frame


def tag_summary(bind: Bind, *, limit: int = 20) -> pd.DataFrame:
    """The ``limit`` most used tags: insights carrying the tag (a tag repeated within one insight counts once),
    distinct repositories, average confidence, share of all insights, first and last use."""
    limit = check_limit(limit)
    with connection(bind) as conn:
        frame = read_frame(
            conn,
            """
            SELECT t.tag, t.insights, t.repositories, t.avg_confidence,
                   t.insights::float8 / NULLIF((SELECT SUM(n) FROM insight_confidence_hist), 0) AS share_of_insights,
                   t.first_seen, t.last_seen
            FROM insight_tag_stats t ORDER BY t.insights DESC, t.tag LIMIT :limit
            """,
            {"limit": limit},
            {"tag": "str", "insights": "int", "repositories": "int", "avg_confidence": "float",
             "share_of_insights": "float", "first_seen": "ts", "last_seen": "ts"},
        )
        refreshed = view_refreshed_at(conn)
    frame.attrs["view_refreshed_at"] = refreshed
    return frame

