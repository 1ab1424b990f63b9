"""Shared by the report tests: one ``gitinsight demo`` run per session, and tiny fast notebooks for runner tests.

``rendered_reports`` runs the main job the way ``make demo`` does (``gitinsight demo --scale tiny``: migrate an
empty database, load the tiny synthetic set, import the real snapshot slice of tests/report_data.py, backtest,
refresh, render every report), through a database URL that carries a password, and caches the result, so
test_reports.py and test_report_browser.py share one run even though each module imports the fixture.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sqlalchemy.engine import make_url

from gitinsight_analytics.settings import PROJECT_ROOT, Settings

from .conftest import create_database, drop_database
from .report_data import SNAPSHOTS

NOTEBOOKS = PROJECT_ROOT / "notebooks"
SECRET = "Sup3r-Secret-Pw-4-reports"


@dataclass(frozen=True)
class Rendered:
    index: Path
    reports_dir: Path
    url: str
    error: str | None = None
    output: str = ""  # what `gitinsight demo` printed


_cache: dict[str, Rendered] = {}


def url_with_password(url: str) -> str:
    """The URL with :data:`SECRET` as password (the embedded server trusts local connections, so it still works)."""
    return make_url(url).set(password=SECRET).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def rendered_reports(pg: Settings, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """Every report rendered once by ``gitinsight demo`` into a session tmp dir (see module docstring)."""
    if "run" not in _cache:
        from gitinsight_analytics.cli import main

        name = f"gi_reports_{os.getpid()}"
        url = url_with_password(create_database(pg, name))
        base = tmp_path_factory.mktemp("demo")
        reports_dir = base / "reports"
        env = {"DATABASE_URL": url, "GITINSIGHT_HOME": str(base / "home"), "GITINSIGHT_REPORTS_DIR": str(reports_dir),
               "GITINSIGHT_GITHUB_RANKING_DIR": str(SNAPSHOTS)}
        out = io.StringIO()
        try:
            with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), \
                    contextlib.redirect_stderr(out):
                for key, value in env.items():
                    patch.setenv(key, value)
                code = main(["demo", "--scale", "tiny"])
        finally:
            drop_database(pg, name)
        error = None if code == 0 else f"gitinsight demo exited {code}: {out.getvalue()[-3000:]}"
        _cache["run"] = Rendered(index=reports_dir / "index.html", reports_dir=reports_dir, url=url, error=error,
                                 output=out.getvalue())
    return _cache["run"]


def figures(page: str) -> list[dict[str, Any]]:
    """The plotly figures of a rendered page: ``{"data": [...], "layout": {...}}`` from each Plotly.newPlot call."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*", page):
        data, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, re.compile(r",\s*").match(page, end).end())
        found.append({"data": data, "layout": layout})
    return found


_ITEM_SIZES = {"i1": 1, "u1": 1, "i2": 2, "u2": 2, "i4": 4, "u4": 4, "f4": 4, "i8": 8, "u8": 8, "f8": 8}


def points(values: Any) -> int:
    """How many values a trace's ``x``/``y`` holds: a list, or plotly's typed array {dtype, bdata (base64)}."""
    if values is None:
        return 0
    if isinstance(values, dict) and "bdata" in values:
        return len(base64.b64decode(values["bdata"])) // _ITEM_SIZES[values["dtype"]]
    return len(values)


def figure_title(figure: dict[str, Any]) -> str:
    title = figure["layout"].get("title") or {}
    return title.get("text", "") if isinstance(title, dict) else str(title)


def write_notebook(path: Path, parameters: str, *body: str) -> Path:
    """A small notebook: a ``parameters`` cell, then ``body`` cells (no heavy imports: kernels start fast)."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, *(new_code_cell(src) for src in body)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


__all__ = ["NOTEBOOKS", "SECRET", "Rendered", "rendered_reports", "url_with_password", "write_notebook", "figures",
           "points", "figure_title"]
