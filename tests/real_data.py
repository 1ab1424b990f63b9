"""Shared by the compare and alert tests: a template database holding the 35 consecutive daily files of the real
GitHub ranking data (2026-07-19 .. 2026-08-22), imported once per session and cloned per test."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from gitinsight_analytics.db import make_engine
from gitinsight_analytics.settings import Settings

from .conftest import REAL_DATA as REAL
from .conftest import SMALL_POOL, create_database, needs_real, scratch_engine, unavailable

FIRST, LAST = dt.date(2026, 7, 19), dt.date(2026, 8, 22)
DAYS = [FIRST + dt.timedelta(days=k) for k in range((LAST - FIRST).days + 1)]
_made: set[str] = set()  # the template, once per session even though two modules import the fixture


def daily_files() -> list[Path]:
    return [REAL / f"github-ranking-{day}.csv" for day in DAYS]


@pytest.fixture(scope="session")
def real_template(pg: Settings, migrated_template: str) -> str:
    """A clone of the migrated template with the daily real files imported (skips without the data)."""
    if not REAL.is_dir():
        unavailable(f"the real data {REAL} is missing")
    from gitinsight_analytics.seed import import_github_ranking

    name = "gi_template_real_daily"
    if name in _made:
        return name
    engine = make_engine(create_database(pg, name, template=migrated_template), pool=SMALL_POOL)
    try:
        import_github_ranking(engine, daily_files(), progress=False)
    finally:
        engine.dispose()
    _made.add(name)
    return name


@pytest.fixture
def real_engine(pg: Settings, real_template: str) -> Iterator[Engine]:
    """A fresh database holding the daily real files."""
    yield from scratch_engine(pg, real_template)


def read_csv_days() -> pd.DataFrame:
    """Independent reading of the daily CSV files: one row per (day, lower-cased owner/name) with the maximum of
    stars, forks and issues over the lists it is in, the language of that row, and the list names.

    Read once per session (5 s of pandas; the files do not change during a run); each caller gets a copy of its
    own, so a test that changes its frame cannot change another test's expected values."""
    return _csv_days().copy(deep=True)


@functools.cache
def _csv_days() -> pd.DataFrame:
    frames = []
    for day, path in zip(DAYS, daily_files(), strict=True):
        frame = pd.read_csv(path, keep_default_na=False, dtype={"language": "string", "description": "string"})
        frame["date"] = day
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    rows["key"] = rows["repo_url"].str.removeprefix("https://github.com/").str.lower()
    rows["language"] = rows["language"].replace("", pd.NA)
    return rows.groupby(["date", "key"], as_index=False).agg(
        stars=("stars", "max"), forks=("forks", "max"), issues=("issues", "max"), language=("language", "last"),
        lists=("item", lambda s: sorted(set(s))), name=("repo_url", "last"))


__all__ = ["REAL", "DAYS", "FIRST", "LAST", "needs_real", "daily_files", "real_template", "real_engine",
           "read_csv_days"]
