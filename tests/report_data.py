"""The known data the notebooks and reports are checked on, and what they must say about it.

Data: the tiny synthetic set (seed 42) plus a slice of real star history (tests/data/github_ranking/real, 20
repositories over 2026-08-15 .. 2026-08-22; see its SOURCE.md) imported through the package's importer, so the
star-growth half of the trending report has data. Expected values are computed here independently of the
package: pandas on the CSV files, plain SQL on the tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics.db import make_engine
from gitinsight_analytics.settings import Settings

from .conftest import SMALL_POOL, create_database, scratch_engine

SNAPSHOTS = Path(__file__).parent / "data" / "github_ranking" / "real"
#: The trending report's defaults (its parameters cell): a 7-day window, top 20.
WINDOW_DAYS, LIMIT = 7, 20
#: trending_by_stars leaves out repositories without a commit in this many days before as_of.
INACTIVE_DAYS = 90
_made: set[str] = set()


@pytest.fixture(scope="session")
def seeded_real_template(pg: Settings, seeded_template: str) -> str:
    """A clone of the seeded template with the real snapshot slice imported (``gitinsight import``'s path)."""
    from gitinsight_analytics.seed import import_github_ranking

    name = "gi_template_seeded_real"
    if name not in _made:
        engine = make_engine(create_database(pg, name, template=seeded_template), pool=SMALL_POOL)
        try:
            import_github_ranking(engine, [SNAPSHOTS], progress=False)
        finally:
            engine.dispose()
        _made.add(name)
    return name


@pytest.fixture
def seeded_real_engine(pg: Settings, seeded_real_template: str) -> Iterator[Engine]:
    """A fresh database holding the tiny synthetic set and the real snapshot slice."""
    yield from scratch_engine(pg, seeded_real_template)


def snapshot_rows() -> pd.DataFrame:
    """One row per (day, lower-cased owner/name): the largest star count over the lists it is in, its newest
    last commit, and the name as the URL spells it."""
    frames = []
    for path in sorted(SNAPSHOTS.glob("github-ranking-*.csv")):
        frame = pd.read_csv(path, keep_default_na=False, dtype={"language": "string", "description": "string"})
        frame["date"] = dt.date.fromisoformat(path.stem.removeprefix("github-ranking-"))
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    rows["name"] = rows["repo_url"].str.removeprefix("https://github.com/")
    rows["key"] = rows["name"].str.lower()
    rows["last_commit"] = pd.to_datetime(rows["last_commit"], utc=True)
    return rows.groupby(["date", "key"], as_index=False).agg(
        stars=("stars", "max"), last_commit=("last_commit", "max"), name=("name", "last"))


def expected_star_growth(window_days: int = WINDOW_DAYS) -> dict[str, object]:
    """What ``trending_by_stars`` must find in the slice with the report's defaults: each active repository
    with two or more snapshots in [as_of - window, as_of] gains its last minus its first star count there."""
    rows = snapshot_rows()
    as_of = rows["date"].max()
    start = as_of - dt.timedelta(days=window_days)
    window = rows[(rows["date"] >= start) & (rows["date"] <= as_of)].sort_values("date")
    since = pd.Timestamp(as_of - dt.timedelta(days=INACTIVE_DAYS), tz="UTC")
    per_repo = window.groupby("key").agg(n=("date", "size"), first=("stars", "first"), last=("stars", "last"),
                                         commit=("last_commit", "max"), name=("name", "last"))
    ranked = per_repo[(per_repo["n"] >= 2) & (per_repo["commit"] >= since)].copy()
    ranked["delta"] = ranked["last"] - ranked["first"]
    assert 0 < len(ranked) <= LIMIT, "the slice must fit in one top-20 list"
    top = ranked.sort_values(["delta", "name"], ascending=[False, True]).iloc[0]
    return {"as_of": as_of, "start": start, "ranked": len(ranked), "lost": int((ranked["delta"] < 0).sum()),
            "top": top["name"], "top_delta": int(top["delta"]), "inactive": sorted(
                per_repo.loc[per_repo["commit"] < since, "name"])}


def most_starred(count: int = 3) -> list[str]:
    """The ``count`` most starred repositories on the slice's last day (the compare report's default)."""
    rows = snapshot_rows()
    last = rows[rows["date"] == rows["date"].max()]
    return list(last.sort_values(["stars", "name"], ascending=[False, True])["name"][:count])


def spec_score_leader(engine: Engine, window_days: int = WINDOW_DAYS) -> tuple[str, int]:
    """The spec's trending score leader, in plain SQL: stars + forks + 10 x insights generated in the
    ``window_days`` UTC days ending on the newest insight's day, among analysed repositories."""
    sql = """
        WITH d AS (SELECT (max(generated_at) AT TIME ZONE 'UTC')::date AS day FROM insights)
        SELECT r.full_name, COALESCE(r.stars, 0) + COALESCE(r.forks, 0) + 10 * (
                   SELECT count(*) FROM insights i WHERE i.repository_id = r.id
                     AND (i.generated_at AT TIME ZONE 'UTC')::date BETWEEN d.day - (:w - 1) AND d.day) AS score
        FROM repositories r CROSS JOIN d
        WHERE r.analysis_status = 'completed'
        ORDER BY score DESC, r.full_name LIMIT 1
    """
    with engine.connect() as conn:
        name, score = conn.execute(sa.text(sql), {"w": window_days}).one()
    return name, int(score)


def scalar(engine: Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


__all__ = ["SNAPSHOTS", "WINDOW_DAYS", "LIMIT", "seeded_real_template", "seeded_real_engine", "snapshot_rows",
           "expected_star_growth", "most_starred", "spec_score_leader", "scalar"]
