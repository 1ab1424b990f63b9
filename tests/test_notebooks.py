"""The notebooks as stored (no outputs, one parameters cell, safe SQL) and executed by nbval on known data.

nbval runs every notebook on the tiny synthetic set plus a slice of real star history (tests/report_data.py), so
both halves of the trending report have data. Each notebook's ``# NBVAL_CHECK_OUTPUT`` cell prints invariants of
its analyses and values of that known data; the expected text is computed here independently (pandas on the CSV
files, plain SQL) and put into the cell's stored output, which nbval compares with what the cell prints.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import sqlalchemy as sa
from nbformat.v4 import new_output
from sqlalchemy.engine import Engine

from gitinsight_analytics.reports.params import SPECS

from .report_data import (  # noqa: F401
    expected_star_growth,
    most_starred,
    scalar,
    seeded_real_engine,
    seeded_real_template,
    spec_score_leader,
)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))

#: The first line of each notebook's ``# NBVAL_CHECK_OUTPUT`` cell: invariants of the analyses, true on any data.
INVARIANTS = {
    "getting-started": "rows matching the hostile value: 0; users table intact: True\n",
    "compare": "gains add up to each repository's change: True; ranks start at 1: True\n",
    "trending": "score = stars + forks + 10 x insights on every row: True; both rankings sorted: True\n",
    "repository_stats": "per-type counts add up to each repository's total: True\n",
    "confidence": "quantiles ordered: True; shares between 0 and 1: True\n",
    "calibration": "scores between 0 and 1: True; reliability bins add up to the resolved predictions: True\n",
    "dashboard": "each followed repository listed once: True\n",
    "operations": "failure rates between 0 and 1: True; finished jobs never exceed jobs: True\n",
}


def expected_outputs(engine: Engine) -> dict[str, str]:
    """What each check cell must print on the known data, computed without the package's query functions."""
    growth = expected_star_growth()
    leader, score = spec_score_leader(engine)
    insights, mean = (scalar(engine, f"SELECT {c} FROM insights") for c in ("count(*)", "avg(confidence_score)"))
    user, follows = _most_followed(engine)
    with engine.connect() as conn:
        matches = conn.execute(sa.text(
            "SELECT full_name FROM repositories WHERE language = 'Python' AND (name ILIKE '%data%' OR description "
            "ILIKE '%data%') ORDER BY stars DESC NULLS LAST, id LIMIT 10")).scalars().all()
        busiest, most = conn.execute(sa.text(
            "SELECT r.full_name, count(i.id) FROM repositories r LEFT JOIN insights i ON i.repository_id = r.id "
            "GROUP BY r.id, r.full_name ORDER BY count(i.id) DESC, r.id LIMIT 1")).one()
    known = {
        "getting-started": f"{len(matches)} Python repositories match 'data'; most starred: {matches[0]}\n",
        "repository_stats": f"most insights: {busiest} {most}\n",
        "trending": f"spec score leader: {leader} {score:,}\n"
                    f"star growth {growth['start']} .. {growth['as_of']}: {growth['ranked']} ranked, "
                    f"{growth['lost']} lost stars, most gained: {growth['top']} {growth['top_delta']:+,}\n",
        "compare": f"compared: {', '.join(most_starred())} to {growth['as_of']}\n",
        "confidence": f"{insights} insights, mean confidence {float(mean):.3f}\n",
        "dashboard": f"{user} follows {follows} repositories\n",
        "operations": f"analysis jobs: {scalar(engine, 'SELECT count(*) FROM analysis_jobs')}\n",
    }
    return {name: line + known.get(name, "") for name, line in INVARIANTS.items()}


def _most_followed(engine: Engine) -> tuple[str, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(
            "SELECT u.username, count(*) FROM user_repository_follows f JOIN users u ON u.id = f.user_id "
            "GROUP BY u.id, u.username ORDER BY count(*) DESC, u.username LIMIT 1")).one())


def test_every_report_has_a_notebook() -> None:
    assert sorted(p.stem for p in PATHS) == sorted(SPECS) == sorted(INVARIANTS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert "papermill" not in nb.metadata and "widgets" not in nb.metadata
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs (nbstripout)"
        assert "papermill" not in cell.metadata and "execution" not in cell.metadata


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_conventions(path: Path) -> None:
    """One parameters cell; presentation set up by the package; connect(read=True) with no URL; bound SQL only."""
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    source = "\n".join(code)
    assert "charts.setup()" in source and "engine = connect(read=True)" in source
    assert not re.search(r"postgres(ql)?(\+\w+)?://", source), "no database URL in a notebook"
    assert "renderers.default" not in source, "the renderer is chosen by charts.setup()"
    assert "{{" not in source, "jupysql {{var}} is text substitution: bind :params instead"
    assert sum("# NBVAL_CHECK_OUTPUT" in c for c in code) == 1
    figure_cells = [c for c in code if ".show()" in c]
    assert all(c.startswith("# NBVAL_IGNORE_OUTPUT") for c in figure_cells)
    assert any(c.cell_type == "markdown" and c.source.startswith("# ") for c in nb.cells)


def test_getting_started_configures_jupysql_safely() -> None:
    nb = nbformat.read(NOTEBOOKS / "getting-started.ipynb", as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    named = source.index('%config SqlMagic.named_parameters = "enabled"')
    assert named < source.index("%sql engine")
    assert "%config SqlMagic.displaycon = False" in source
    assert ":language" in source and ":pattern" in source and ":hostile" in source


def _with_expected_outputs(src: Path, dest: Path, expected: str) -> None:
    """A copy of ``src`` whose check cell holds the expected output, so nbval compares against it."""
    nb = nbformat.read(src, as_version=4)
    _store_expected(nb, expected)
    nbformat.write(nb, dest)


def _store_expected(nb: nbformat.NotebookNode, expected: str) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
            cell.outputs = [new_output("stream", name="stdout", text=expected)]
            cell.execution_count = 1


def test_the_known_data_has_star_growth() -> None:
    """The slice is what its SOURCE.md says: a full 7-day window, gains and losses, two inactive repositories."""
    growth = expected_star_growth()
    assert (growth["start"], growth["as_of"]) == (dt.date(2026, 8, 15), dt.date(2026, 8, 22))
    assert growth["ranked"] == 18 and growth["lost"] == 1
    assert growth["top"] == "deepseek-ai/deepseek-harness" and growth["top_delta"] > 50_000
    assert growth["inactive"] == ["airbnb/javascript", "donnemartin/system-design-primer"]


@pytest.mark.slow
def test_nbval_executes_every_notebook(seeded_real_engine: Engine, tmp_path: Path) -> None:  # noqa: F811
    """CI runs every notebook with nbval (--nbval-lax: errors fail; check cells must print what is expected)."""
    expected = expected_outputs(seeded_real_engine)
    for path in PATHS:
        _with_expected_outputs(path, tmp_path / path.name, expected[path.stem])
    env = {**os.environ, "DATABASE_URL": seeded_real_engine.url.render_as_string(hide_password=False),
           "PLOOMBER_STATS_ENABLED": "false", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-kernel-name", "python3", "-p", "no:cacheprovider",
         "-q", "--rootdir", str(tmp_path), *(p.name for p in PATHS)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    cells = sum(c.cell_type == "code" for p in PATHS for c in nbformat.read(p, as_version=4).cells)
    assert f"{cells} passed" in done.stdout, done.stdout[-2000:]


def _nbval(directory: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-kernel-name", "python3", "-p", "no:cacheprovider",
         "-q", "--rootdir", str(directory), *names],
        cwd=directory, env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}, capture_output=True, text=True,
        timeout=300)


def test_nbval_compares_the_check_cell(tmp_path: Path) -> None:
    """Control: the check cell's printed value is compared, so a wrong known value fails the run."""
    for name, stored in (("right", "star growth: 18 ranked\n"), ("wrong", "star growth: 19 ranked\n")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            "# NBVAL_CHECK_OUTPUT\nprint(f'star growth: {6 * 3} ranked')")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        _store_expected(nb, stored)
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    done = _nbval(tmp_path, "right.ipynb", "wrong.ipynb")
    assert done.returncode == 1 and "1 failed, 1 passed" in done.stdout, done.stdout[-2000:]
    assert "FAILED wrong.ipynb::Cell 0" in done.stdout and "19 ranked" in done.stdout and "18 ranked" in done.stdout
