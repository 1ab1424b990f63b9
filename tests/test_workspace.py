"""``gitinsight init`` and the workspace: where settings find reports, notebooks, the schedule and the data."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitinsight_analytics import resources
from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import ConfigurationError, ValidationError
from gitinsight_analytics.settings import load_settings
from gitinsight_analytics.workspace import init_workspace

NOTEBOOKS = sorted(p.name for p in resources.notebooks_dir().glob("*.ipynb"))


def test_init_creates_a_workspace_and_keeps_edits(tmp_path: Path) -> None:
    ws = tmp_path / "analysis"
    first = init_workspace(ws)
    assert (ws / "schedule.yml").read_text() == resources.default_schedule().read_text()
    assert sorted(p.name for p in (ws / "notebooks").glob("*.ipynb")) == NOTEBOOKS and len(NOTEBOOKS) >= 5
    assert (ws / "reports").is_dir() and (ws / "data" / "github-ranking").is_dir()
    assert set(first.created) == {ws / "schedule.yml", ws / "reports", ws / "data" / "github-ranking",
                                  *(ws / "notebooks" / n for n in NOTEBOOKS)} and first.kept == ()
    edited = ws / "notebooks" / "trending.ipynb"
    edited.write_text("{}")
    (ws / "notebooks" / "compare.ipynb").unlink()
    again = init_workspace(ws)
    assert again.created == (ws / "notebooks" / "compare.ipynb",) and edited.read_text() == "{}"


def test_init_rejects_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").write_text("x")
    with pytest.raises(ValidationError, match="DIR: .* is not a directory"):
        init_workspace(tmp_path / "taken")
    assert main(["init", str(tmp_path / "taken")]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "taken" / "schedule.yml").exists()


def test_init_command_then_settings_point_into_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "ws"]) == 0
    assert f"workspace {tmp_path / 'ws'}" in capsys.readouterr().out
    ws = (tmp_path / "ws").resolve()
    for where in (ws, ws / "notebooks", ws / "data" / "github-ranking"):  # a kernel runs in notebooks/
        monkeypatch.chdir(where)
        cfg = load_settings({})
        assert (cfg.workspace, cfg.home, cfg.reports_dir) == (ws, ws / ".gitinsight", ws / "reports")
        assert (cfg.notebooks_dir, cfg.schedule_path) == (ws / "notebooks", ws / "schedule.yml")
        assert cfg.github_ranking_dir == ws / "data" / "github-ranking"


@pytest.fixture
def outside() -> Iterator[Path]:
    """A folder in the system's temporary directory (a --basetemp may be inside the repository, a workspace)."""
    with tempfile.TemporaryDirectory(prefix="gitinsight-outside-") as folder:
        yield Path(folder).resolve()


def test_outside_a_workspace_the_shipped_files_are_used(outside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(outside)
    cfg = load_settings({})
    assert cfg.workspace == outside and cfg.reports_dir == outside / "reports" and cfg.home == outside / ".gitinsight"
    assert (cfg.notebooks_dir, cfg.schedule_path) == (resources.notebooks_dir(), resources.default_schedule())
    assert "shared" not in cfg.github_ranking_dir.parts  # no default outside the workspace


def test_workspace_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    init_workspace(tmp_path / "ws")
    monkeypatch.chdir(tmp_path)
    cfg = load_settings({"GITINSIGHT_WORKSPACE": str(tmp_path / "ws"), "GITINSIGHT_REPORTS_DIR": str(tmp_path)})
    assert cfg.notebooks_dir == tmp_path / "ws" / "notebooks" and cfg.reports_dir == tmp_path.resolve()
    with pytest.raises(ConfigurationError, match="GITINSIGHT_WORKSPACE='.*missing' is not a directory"):
        load_settings({"GITINSIGHT_WORKSPACE": str(tmp_path / "missing")})


@pytest.mark.parametrize("name", resources.RESOURCE_NAMES)
def test_resources_are_found(name: str) -> None:
    assert resources.resource_path(name).exists()


def test_unknown_resource() -> None:
    with pytest.raises(ValueError, match="unknown resource 'setup.py'"):
        resources.resource_path("setup.py")
