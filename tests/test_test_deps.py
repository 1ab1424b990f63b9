"""What the tests need from the machine: scripts/test-deps.sh fails loudly when it cannot install, and a missing
component skips a test, or under CI=true fails it (conftest.unavailable)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gitinsight_analytics.settings import PROJECT_ROOT

from .conftest import unavailable

SCRIPT = PROJECT_ROOT / "scripts" / "test-deps.sh"
#: What the script itself runs besides the commands it looks for.
TOOLS = ("bash", "mktemp", "tail", "rm", "cat")


def _fake_bin(tmp_path: Path, **scripts: str) -> Path:
    """A PATH holding only the basic tools and the given fake commands: no pg_config, so PostgreSQL is missing."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        (bindir / tool).symlink_to(shutil.which(tool))
    for name, body in scripts.items():
        path = bindir / name.replace("_", "-")
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return bindir


def _run(bindir: Path, ci: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bindir), "CI": ci, "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([str(bindir / "bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("ci", "code", "says"), [
    ("true", 1, "CI=true: the tests need them, stopping here"),
    ("", 0, "WARNING: the tests that need them will skip"),
])
def test_cannot_install_without_apt(tmp_path: Path, ci: str, code: int, says: str) -> None:
    done = _run(_fake_bin(tmp_path, id="echo 1000"), ci)
    assert done.returncode == code, done.stderr
    assert "cannot install postgresql postgresql-contrib" in done.stderr and says in done.stderr


def test_a_failing_apt_get_fails_the_script_with_its_output(tmp_path: Path) -> None:
    bindir = _fake_bin(tmp_path, id="echo 0", apt_get="echo 'E: Unable to locate package chromium' >&2; exit 100")
    done = _run(bindir, "")
    assert done.returncode == 1
    assert "ERROR: apt-get failed to install postgresql postgresql-contrib" in done.stderr
    assert "E: Unable to locate package chromium" in done.stderr


def test_an_install_that_leaves_a_component_missing_fails(tmp_path: Path) -> None:
    done = _run(_fake_bin(tmp_path, id="echo 0", apt_get="exit 0"), "")
    assert done.returncode == 1 and "still missing after apt-get install: postgresql" in done.stderr


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception),
                                             ("false", pytest.skip.Exception)])
def test_a_missing_component_fails_only_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="chromium is not installed"):
        unavailable("chromium is not installed")
