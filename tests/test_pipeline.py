"""The main job (`gitinsight demo`) end to end on a fresh database, and its re-run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics.cli import main

from .conftest import REAL_DATA as REAL
from .conftest import unavailable


@pytest.fixture
def demo_env(empty_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    if not REAL.is_dir():
        unavailable(f"no real data at {REAL}")
    data = tmp_path / "ranking"
    data.mkdir()
    for day in ("2026-08-20", "2026-08-21", "2026-08-22"):
        shutil.copy(REAL / f"github-ranking-{day}.csv", data)
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GITINSIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GITINSIGHT_GITHUB_RANKING_DIR", str(data))
    monkeypatch.setenv("GITINSIGHT_REPORTS_DIR", str(tmp_path / "reports"))
    return empty_engine


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM repositories), (SELECT count(*) FROM repository_snapshots),"
            " (SELECT count(*) FROM repository_stats)")).one())


def test_main_job_builds_everything_and_reruns_cleanly(demo_env: Engine, capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--scale", "tiny", "--no-reports"]) == 0
    out = capsys.readouterr().out
    assert "schema at revision" in out and "loading the tiny synthetic data set" in out
    first = _counts(demo_env)
    synthetic_and_real = first[0]
    assert synthetic_and_real > 200 and first[1] > 0 and first[2] == first[0]
    assert main(["demo", "--scale", "tiny", "--no-reports"]) == 0
    assert "synthetic load skipped" in capsys.readouterr().out
    assert _counts(demo_env) == first


def test_main_job_rejects_a_bad_scale(demo_env: Engine, capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--scale", "huge"]) == 2
    assert "'huge' is not one of" in capsys.readouterr().err
    with demo_env.connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('public.users')")).scalar() is None
