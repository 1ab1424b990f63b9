"""Shared by the report tests: one ``render_all`` run per session, and tiny fast notebooks for runner tests.

``rendered_reports`` renders every report once (against a clone of the seeded template, through a database URL
that carries a password) and caches the result, so test_reports.py and test_report_browser.py share one run even
though each module imports the fixture.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from sqlalchemy.engine import make_url

from gitinsight_analytics.db import make_engine
from gitinsight_analytics.settings import PROJECT_ROOT, Settings

from .conftest import SMALL_POOL, create_database, drop_database

NOTEBOOKS = PROJECT_ROOT / "notebooks"
SECRET = "Sup3r-Secret-Pw-4-reports"


@dataclass(frozen=True)
class Rendered:
    index: Path
    reports_dir: Path
    url: str
    error: str | None = None


_cache: dict[str, Rendered] = {}


def url_with_password(url: str) -> str:
    """The URL with :data:`SECRET` as password (the embedded server trusts local connections, so it still works)."""
    return make_url(url).set(password=SECRET).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def rendered_reports(pg: Settings, seeded_template: str, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """Every report rendered once into a session tmp dir (see module docstring)."""
    if "run" not in _cache:
        from gitinsight_analytics.reports.runner import ReportFailed, render_all

        name = f"gi_reports_{os.getpid()}"
        url = url_with_password(create_database(pg, name, template=seeded_template))
        engine = make_engine(url, pool=SMALL_POOL)
        reports_dir = tmp_path_factory.mktemp("reports")
        error = None
        try:
            index = render_all(engine, reports_dir=reports_dir, notebooks_dir=NOTEBOOKS, echo=None)
        except ReportFailed as exc:
            index, error = reports_dir / "index.html", str(exc)
        finally:
            engine.dispose()
            drop_database(pg, name)
        _cache["run"] = Rendered(index=index, reports_dir=reports_dir, url=url, error=error)
    return _cache["run"]


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


__all__ = ["NOTEBOOKS", "SECRET", "Rendered", "rendered_reports", "url_with_password", "write_notebook"]
