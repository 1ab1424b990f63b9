"""The package outside this checkout: the wheel installed into a scratch virtualenv runs ``init``, migrations, a
tiny seed and one report; the lock agrees with pyproject.toml and environment.yml; the CLI's help needs no import
of its commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
import venv
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from packaging.requirements import Requirement
from sqlalchemy.engine import Engine

from gitinsight_analytics.cli import COMMAND_HELP, cli
from gitinsight_analytics.settings import PROJECT_ROOT

#: What building the wheel reads from the repository (nothing else is copied: the build must not need more).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "alembic.ini", "schedule.yml",
                "gitinsight_analytics", "migrations", "notebooks")
LOCK = PROJECT_ROOT / "requirements.lock"


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A folder outside the repository (pytest's --basetemp may be inside it)."""
    folder = Path(tempfile.mkdtemp(prefix="gitinsight-wheel-")).resolve()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(scratch: Path) -> Path:
    """The wheel built from a copy of the build inputs and installed into a scratch virtualenv whose other
    packages come from this environment (a .pth file: offline and fast); returns the virtualenv's bin/."""
    source = scratch / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        origin = PROJECT_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        else:
            shutil.copy2(origin, source / name)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir",
          str(scratch / "dist"), str(source)], cwd=scratch, env=env)
    wheel = next((scratch / "dist").glob("gitinsight_analytics-*.whl"))
    target = scratch / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=scratch,
                   env=env).strip()
    Path(purelib, "gitinsight-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    templates = Path(sys.prefix, "share", "jupyter", "nbconvert")  # nbconvert's data files, as pip would place them
    (target / "share" / "jupyter").mkdir(parents=True)
    (target / "share" / "jupyter" / "nbconvert").symlink_to(templates, target_is_directory=True)
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
          str(wheel)], cwd=scratch, env=env)
    _run([str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"], cwd=scratch, env=env)
    return target / "bin"


def _clean_env(bindir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GITINSIGHT_") and k not in {"PYTHONPATH", "VIRTUAL_ENV", "DATABASE_URL"}}
    return {**env, "PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}", "DATABASE_URL": database_url,
            "JUPYTER_PREFER_ENV_PATH": "1"}


@pytest.mark.slow
def test_wheel_runs_init_migrations_seed_and_a_report(installed: Path, scratch: Path, empty_engine: Engine) -> None:
    env = _clean_env(installed, empty_engine.url.render_as_string(hide_password=False))
    probe = ("import gitinsight_analytics as g, gitinsight_analytics.resources as r; print(g.__file__); "
             "print(r.alembic_ini(), r.migrations_dir(), r.notebooks_dir(), r.default_schedule())")
    where = _run([str(installed / "python"), "-c", probe], cwd=scratch, env=env).split()
    assert len(where) == 5 and all(Path(p).is_relative_to(scratch / "venv") for p in where), where
    assert str(PROJECT_ROOT) not in " ".join(where)

    gitinsight = str(installed / "gitinsight")
    _run([gitinsight, "init", "ws"], cwd=scratch, env=env)
    ws = scratch / "ws"
    assert (ws / "schedule.yml").is_file() and (ws / "notebooks" / "trending.ipynb").is_file()
    assert "database at revision" in _run([gitinsight, "db", "upgrade"], cwd=ws, env=env)
    _run([gitinsight, "seed", "--scale", "tiny"], cwd=ws, env=env)
    # the quick CSV search on the libpq of the installed psycopg-binary, the same rows as the DataFrame path
    csv_text = _run([gitinsight, "query", "search", "--limit", "5", "--format", "csv"], cwd=ws, env=env)
    json_text = _run([gitinsight, "query", "search", "--limit", "5", "--format", "json"], cwd=ws, env=env)
    assert [line.split(",")[0] for line in csv_text.splitlines()[1:]] == [r["full_name"] for r in json.loads(json_text)]
    assert "psycopg_binary" in _run([str(installed / "python"), "-c", "from gitinsight_analytics import libpq; "
                                     "print(libpq.load()._name)"], cwd=scratch, env=env)
    _run([gitinsight, "report", "run", "repository_stats"], cwd=ws / "notebooks", env=env, timeout=600)
    html = list((ws / "reports" / "repository_stats").glob("*/repository_stats.html"))
    assert len(html) == 1 and (ws / "reports" / "index.html").is_file()
    listed = _run([gitinsight, "report", "list"], cwd=ws, env=env)
    assert f"schedule ({ws / 'schedule.yml'})" in listed
    assert not list(scratch.glob("venv/lib/*/site-packages/gitinsight_analytics/_resources/**/.gitinsight"))


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line):
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def test_lock_pins_every_dependency_within_pyproject_ranges() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]]
    pins = _pins()
    for requirement in wanted:
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{requirement.name} is not in requirements.lock (run `make lock`)"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock pins {name}=={pins[name]} outside {requirement} (run `make lock`)"


def test_environment_yml_installs_the_lock() -> None:
    text = (PROJECT_ROOT / "environment.yml").read_text()
    header = re.search(r"autogenerated by pip-compile with Python (\d+\.\d+)", LOCK.read_text())
    assert header is not None and f"- python={header[1]}\n" in text
    assert "- -r requirements.lock\n" in text and "- -e .\n" in text


@pytest.mark.parametrize("name", sorted(COMMAND_HELP))
def test_help_lines_match_the_commands(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    assert click.Command(name, help=COMMAND_HELP[name]).get_short_help_str(200) == command.get_short_help_str(200)


def test_listed_commands_are_the_registered_ones() -> None:
    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert names == sorted(COMMAND_HELP) and all(cli.get_command(ctx, n) is not None for n in names)
