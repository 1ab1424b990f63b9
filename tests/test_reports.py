"""The report runner end to end: parameters, runs, HTML, index, failures, secrets, schedule, lock, prune, lab."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import nbformat
import papermill as pm
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import ValidationError
from gitinsight_analytics.reports import index as report_index
from gitinsight_analytics.reports import params, runner, schedule
from gitinsight_analytics.reports.lab import lab_command
from gitinsight_analytics.settings import PROJECT_ROOT

from .report_data import expected_star_growth
from .reports_support import (  # noqa: F401
    NOTEBOOKS,
    SECRET,
    Rendered,
    figure_title,
    figures,
    points,
    rendered_reports,
    write_notebook,
)

REPORTS = sorted(params.SPECS)
HOSTILE = "x'; DROP TABLE users; --"
UTC = dt.UTC


# ---------------------------------------------------------------- parameters, checked before any kernel starts


@pytest.mark.parametrize("name", REPORTS)
def test_spec_matches_the_parameters_cell(name: str) -> None:
    """Names agree with the notebook (as papermill reads it too) and every default passes validation."""
    path = NOTEBOOKS / f"{name}.ipynb"
    defaults = params.notebook_defaults(path)
    assert list(defaults) == [p.name for p in params.SPECS[name]]
    assert set(pm.inspect_notebook(str(path))) == set(defaults)
    assert params.validate_parameters(name, defaults) == defaults


def test_values_are_converted_from_cli_strings() -> None:
    got = params.validate_parameters("trending", {"window_days": "30", "language": "none", "as_of": "2026-08-01",
                                                  "min_confidence": "0.5"})
    assert got == {"window_days": 30, "language": None, "as_of": "2026-08-01", "min_confidence": 0.5}


@pytest.mark.parametrize(("name", "key", "value", "message"), [
    ("trending", "window_days", "0", "window_days: 0 is out of range (allowed: int 1..365)"),
    ("trending", "window_days", "7; DROP", "window_days: '7; DROP' is not an integer"),
    ("trending", "as_of", "2026-13-01", "as_of: '2026-13-01' is not a date"),
    ("trending", "windows", "7", "windows: unknown parameter of report 'trending'"),
    ("confidence", "freq", "year", "freq: 'year' is not allowed (allowed: day, week, month)"),
    ("operations", "limit", "1e9", "limit: '1e9' is not an integer"),
    ("getting-started", "search_text", "a\nb", "search_text: too long or contains control characters"),
    ("nope", "x", "1", "report: unknown report 'nope'"),
])
def test_bad_values_raise_one_clear_error(name: str, key: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        params.validate_parameters(name, {key: value})
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_repository_stats_takes_a_repository_or_a_language() -> None:
    with pytest.raises(ValidationError, match="full_name: give full_name or language, not both"):
        params.validate_parameters("repository_stats", {"full_name": "a/b", "language": "Go"})


@pytest.fixture
def report_env(monkeypatch: pytest.MonkeyPatch, seeded_engine: Engine, tmp_path: Path) -> Path:
    """The CLI pointed at a seeded clone, writing reports into a tmp dir (returned)."""
    monkeypatch.setenv("DATABASE_URL", seeded_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GITINSIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GITINSIGHT_REPORTS_DIR", str(tmp_path / "reports"))
    return tmp_path / "reports"


def _runs(reports_dir: Path) -> list[Path]:
    return sorted(reports_dir.glob("*/*/run.json")) if reports_dir.exists() else []


def _string_params() -> list[tuple[str, str]]:
    """Every text parameter checked against the data; the one free-text parameter has its own test below."""
    found = [(name, p) for name in REPORTS for p in params.SPECS[name] if p.kind == "str"]
    assert [(n, p.name) for n, p in found if not p.lookup] == [("getting-started", "search_text")]
    return [(name, p.name) for name, p in found if p.lookup]


@pytest.mark.parametrize(("name", "key"), _string_params())
def test_hostile_values_fail_validation_before_the_kernel(
    name: str, key: str, report_env: Path, seeded_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQL-looking value is looked up as data (bound), rejected with exit 2; no run starts, tables stand."""
    with seeded_engine.connect() as conn:
        users = conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one()
    assert main(["report", "run", name, "-p", key, HOSTILE]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {key}: ") and "\n" not in err
    assert _runs(report_env) == []
    with seeded_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() == users


def test_unknown_parameter_exits_2_before_the_kernel(report_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "run", "trending", "-p", "window", "7"]) == 2
    assert "error: window: unknown parameter of report 'trending' (allowed: window_days, language" in \
        capsys.readouterr().err
    assert main(["report", "run", "trending", "-p", "language", "Klingon"]) == 2
    assert "error: language: unknown language 'Klingon'" in capsys.readouterr().err
    assert _runs(report_env) == []


def test_hostile_free_text_is_data(seeded_engine: Engine, tmp_path: Path) -> None:
    """The free-text parameter runs through jupysql as a bound parameter: nothing matches, nothing breaks."""
    url = seeded_engine.url.render_as_string(hide_password=False)
    result = runner.run_report("getting-started", {"search_text": HOSTILE}, database_url=url,
                               reports_dir=tmp_path, notebooks_dir=NOTEBOOKS, engine=seeded_engine)
    assert result.ok, result.error
    assert result.parameters["search_text"] == HOSTILE
    text = result.notebook.read_text()
    assert "rows matching the hostile value: 0; users table intact: True" in text
    with seeded_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar_one() > 0


# ---------------------------------------------------------------- the shared `gitinsight demo` run


@pytest.mark.slow  # the shared `gitinsight demo` run renders every report
def test_demo_runs_the_main_job_end_to_end(rendered_reports: Rendered) -> None:  # noqa: F811
    """`make demo`'s path on an empty database: every step ran, every report file written, the index printed."""
    assert rendered_reports.error is None, rendered_reports.error
    out = rendered_reports.output
    for step in ("schema at revision", "loading the tiny synthetic data set (seed 42)", "importing real data from",
                 "backtest", f"reports: {rendered_reports.index}"):
        assert step in out, f"{step!r} not in the demo's output:\n{out[-3000:]}"
    assert [line.split()[0] for line in out.splitlines() if line.split()[1:2] and line.split()[1] in REPORTS] == \
        ["succeeded"] * len(REPORTS)
    for name in REPORTS:
        (directory,) = rendered_reports.reports_dir.joinpath(name).iterdir()
        for suffix in (".html", ".ipynb"):
            assert (directory / f"{name}{suffix}").stat().st_size > 10_000, f"{name}{suffix} is (nearly) empty"
        drawn = figures((directory / f"{name}.html").read_text())
        assert drawn, f"{name} has no chart"
        assert all(any(points(t.get("x")) + points(t.get("y")) for t in f["data"]) for f in drawn), \
            f"{name} has a chart without data: {[figure_title(f) for f in drawn]}"


@pytest.mark.slow  # the shared `gitinsight demo` run renders every report
def test_star_growth_is_charted_from_the_snapshots(rendered_reports: Rendered) -> None:  # noqa: F811
    """The trending report's star-growth chart holds one bar per ranked repository of the imported slice."""
    growth = expected_star_growth()
    page = next(rendered_reports.reports_dir.glob("trending/*/trending.html")).read_text()
    (chart,) = [f for f in figures(page) if "-day star growth" in figure_title(f)]
    assert sum(points(trace.get("x")) for trace in chart["data"]) == growth["ranked"]
    assert f"window {growth['start']} .. {growth['as_of']}" in figure_title(chart)
    names = {name for trace in chart["data"] for name in trace["y"]}
    assert growth["top"] in names and not names & set(growth["inactive"])


@pytest.mark.slow  # the shared `gitinsight demo` run renders every report
def test_report_all_renders_every_report(rendered_reports: Rendered) -> None:  # noqa: F811
    assert rendered_reports.error is None, rendered_reports.error
    runs = report_index.load_runs(rendered_reports.reports_dir)
    assert sorted(r["name"] for r in runs) == REPORTS
    for run in runs:
        assert run["status"] == "succeeded" and run["duration_s"] > 0
        directory = run["_dir"]
        assert {p.name for p in directory.iterdir()} >= {f"{run['name']}.html", f"{run['name']}.ipynb", "run.json"}
        assert run["parameters"] == params.notebook_defaults(NOTEBOOKS / f"{run['name']}.ipynb")
        nb = nbformat.read(directory / f"{run['name']}.ipynb", as_version=4)
        assert nb.metadata.papermill["parameters"] == run["parameters"]


def test_html_has_no_code_and_loads_nothing(rendered_reports: Rendered) -> None:  # noqa: F811
    for html_path in rendered_reports.reports_dir.glob("*/*/*.html"):
        page = html_path.read_text()
        assert "engine = connect()" not in page and "charts.setup()" not in page, f"{html_path.name} shows code"
        assert "hl-ipython3" not in page and "# NBVAL" not in page
        assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=[\"']?(https?:)?//", page, re.I), html_path
        assert "Key findings" in page
        assert page.count("Plotly.newPlot") >= 1, f"{html_path.name} has no chart"
        assert "plotly.js v" in page or "plotly.min.js" in page or "window.Plotly" in page


def test_findings_are_sentences_from_the_data(rendered_reports: Rendered) -> None:  # noqa: F811
    page = next(rendered_reports.reports_dir.glob("trending/*/trending.html")).read_text()
    assert re.search(r"By the spec's score, \S+/\S+ leads with [\d,]+", page)
    growth = expected_star_growth()
    assert re.search(r"The top repository by 7-day star growth is \S+/\S+ with \+[\d,]+ stars \([\d,]+ now\) up to "
                     + str(growth["as_of"]), page)
    assert f"{growth['lost']} of them lost stars in the window." in page
    compare = next(rendered_reports.reports_dir.glob("compare/*/compare.html")).read_text()
    assert "There is no star history" not in compare and "leads with" in compare


def test_no_secret_in_any_report_file(rendered_reports: Rendered) -> None:  # noqa: F811
    assert SECRET in rendered_reports.url
    files = [p for p in rendered_reports.reports_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files)
    for path in files:
        data = path.read_text(errors="replace")
        assert SECRET not in data and rendered_reports.url not in data, path


def test_index_lists_runs_newest_first(rendered_reports: Rendered) -> None:  # noqa: F811
    page = rendered_reports.index.read_text()
    runs = report_index.load_runs(rendered_reports.reports_dir)
    positions = [page.index(r["run_id"], page.index('id="runs"')) for r in runs]
    assert positions == sorted(positions)
    for run in runs:
        assert f'href="{run["name"]}/{run["run_id"]}/{run["name"]}.html"' in page
    assert page.count('class="status succeeded"') == 2 * len(REPORTS)  # latest table + all runs
    assert "window_days=7" in page


def test_index_escapes_parameters(tmp_path: Path) -> None:
    run_dir = tmp_path / "trending" / "20260101T000000000Z-abcdef"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({
        "name": "trending", "run_id": run_dir.name, "status": "failed", "started_at": "2026-01-01T00:00:00Z",
        "duration_s": 1.0, "parameters": {"language": "<script>alert(1)</script>"}, "error": "<b>boom</b>"}))
    page = report_index.write_index(tmp_path).read_text()
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "&lt;b&gt;boom" in page


# ---------------------------------------------------------------- failures, scrubbing


def test_failed_run_keeps_its_notebook_and_exits_1(
    report_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    notebooks = tmp_path / "nb"
    write_notebook(notebooks / "dashboard.ipynb", "username = None", "raise RuntimeError('the report broke')")
    from gitinsight_analytics.cli import common

    real = common.settings
    monkeypatch.setattr(common, "settings", lambda: replace(real(), notebooks_dir=notebooks))
    assert main(["report", "run", "dashboard"]) == 1
    out = capsys.readouterr()
    assert "RuntimeError: the report broke" in out.out and "error: report dashboard failed" in out.err
    (run_json,) = _runs(report_env)
    meta = json.loads(run_json.read_text())
    assert meta["status"] == "failed" and meta["error"] == "RuntimeError: the report broke"
    assert "the report broke" in (run_json.parent / "dashboard.ipynb").read_text()
    assert (run_json.parent / "dashboard.html").exists()
    assert 'class="status failed"' in (report_env / "index.html").read_text()


def test_scrub_removes_url_and_password() -> None:
    url = "postgresql+psycopg://bob:p%40ss-w0rd!@db:5432/gi"
    text = "a postgresql://bob:p%40ss-w0rd!@db:5432/gi b p@ss-w0rd! c p%40ss-w0rd! d https://x:y@z/"
    assert runner.scrub(text, url) == "a postgresql://bob:***@db:5432/gi b *** c *** d https://x:***@z/"
    assert runner.scrub(url, url) == "***"


# ---------------------------------------------------------------- scheduling, lock, retention


def test_checked_in_schedule_is_valid() -> None:
    entries = schedule.load_schedule(PROJECT_ROOT / "schedule.yml")
    assert entries and {e.report for e in entries} <= set(REPORTS)


@pytest.mark.parametrize(("body", "message"), [
    ("reports:\n  - report: nope\n    every: 1h\n", "reports[1].report: unknown report 'nope'"),
    ("reports:\n  - report: trending\n    every: 0h\n", "reports[1].every: '0h' is not an interval"),
    ("reports:\n  - report: trending\n", "reports[1]: needs exactly one of 'every' and 'at'"),
    ("reports:\n  - report: trending\n    at: '25:00'\n", "reports[1].at: '25:00' is not a time of day"),
    ("reports:\n  - report: trending\n    every: 1h\n    parameters: {limit: 0}\n", "limit: 0 is out of range"),
    ("reports:\n  - report: trending\n    every: 1h\n  - report: trending\n    at: '06:00'\n", "duplicate id"),
])
def test_bad_schedules_are_rejected(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "schedule.yml"
    path.write_text(body)
    with pytest.raises(ValidationError, match=re.escape(message)):
        schedule.load_schedule(path)


def test_due_rules() -> None:
    hourly = schedule.Entry("h", "operations", every=dt.timedelta(hours=1))
    daily = schedule.Entry("d", "trending", at=dt.time(6, 0))
    now = dt.datetime(2026, 8, 22, 7, 0, tzinfo=UTC)
    assert hourly.is_due(None, now) and daily.is_due(None, now)
    assert not hourly.is_due(now - dt.timedelta(minutes=59), now)
    assert hourly.is_due(now - dt.timedelta(minutes=60), now)
    assert not daily.is_due(dt.datetime(2026, 8, 22, 6, 1, tzinfo=UTC), now)
    assert daily.is_due(dt.datetime(2026, 8, 21, 6, 1, tzinfo=UTC), now)
    assert not daily.is_due(dt.datetime(2026, 8, 21, 6, 1, tzinfo=UTC), now.replace(hour=5))


def test_report_due_runs_what_is_due_once(seeded_engine: Engine, tmp_path: Path) -> None:
    notebooks = tmp_path / "nb"
    write_notebook(notebooks / "operations.ipynb", "freq = 'day'\nwindow_days = 30\nlimit = 10", "print(freq)")
    write_notebook(notebooks / "dashboard.ipynb", "username = None", "print(username)")
    path = tmp_path / "schedule.yml"
    path.write_text("reports:\n  - id: ops\n    report: operations\n    parameters: {freq: week}\n    every: 1h\n"
                    "  - id: bad\n    report: dashboard\n    parameters: {username: nobody-here}\n    every: 1h\n")
    url = seeded_engine.url.render_as_string(hide_password=False)
    reports = tmp_path / "reports"
    now = dt.datetime(2026, 8, 22, 7, 0, tzinfo=UTC)
    kwargs = {"database_url": url, "reports_dir": reports, "notebooks_dir": notebooks, "retention_days": 30,
              "engine": seeded_engine}
    first = schedule.run_due(path, now=now, **kwargs)
    assert [r.name for r in first.results] == ["operations"] and first.results[0].ok
    assert first.results[0].parameters == {"freq": "week", "window_days": 30, "limit": 10}
    assert len(first.invalid) == 1 and not first.ok
    assert first.invalid[0].startswith("bad: username: 'nobody-here' is not in the data (allowed: a username")
    state = schedule.read_state(reports)
    assert state["ops"]["status"] == "succeeded" and state["bad"]["status"] == "invalid"
    again = schedule.run_due(path, now=now + dt.timedelta(minutes=30), **kwargs)
    assert again.results == [] and again.invalid == []
    later = schedule.run_due(path, now=now + dt.timedelta(hours=1), **kwargs)
    assert len(later.results) == 1


def test_overlapping_due_exits_cleanly(report_env: Path) -> None:
    """While one `report due` holds the lock, a second (another process) says so and exits 0 at once."""
    with schedule.schedule_lock(report_env):
        done = subprocess.run([sys.executable, "-m", "gitinsight_analytics.cli", "report", "due"],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "another `gitinsight report due` run holds the lock" in done.stdout
    assert _runs(report_env) == []


def _fake_run(reports: Path, name: str, started: dt.datetime, status: str = "succeeded") -> Path:
    run_dir = reports / name / (started.strftime("%Y%m%dT%H%M%S") + "000Z-aaaaaa")
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"name": name, "run_id": run_dir.name, "status": status,
                                                  "parameters": {}, "started_at": started.isoformat()}))
    return run_dir


def test_prune_keeps_recent_runs_and_each_reports_newest(tmp_path: Path) -> None:
    now = dt.datetime(2026, 8, 22, tzinfo=UTC)
    old = _fake_run(tmp_path, "trending", now - dt.timedelta(days=40))
    newer = _fake_run(tmp_path, "trending", now - dt.timedelta(days=2))
    only = _fake_run(tmp_path, "operations", now - dt.timedelta(days=400))
    assert schedule.prune(tmp_path, retention_days=30, now=now, dry_run=True) == [old]
    assert old.exists()
    assert schedule.prune(tmp_path, retention_days=30, now=now) == [old]
    assert not old.exists() and newer.exists() and only.exists()


def test_prune_command(report_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = dt.datetime.now(UTC)
    old = _fake_run(report_env, "trending", now - dt.timedelta(days=10))
    _fake_run(report_env, "trending", now)
    assert main(["report", "prune", "--days", "5"]) == 0
    assert not old.exists() and "1 runs older than 5 days pruned" in capsys.readouterr().out
    assert (report_env / "index.html").exists()


def test_report_list(report_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "list"]) == 0
    out = capsys.readouterr().out
    assert "trending  (never run)" in out and "window_days = 7  [int 1..365]" in out
    assert "operations-hourly: operations" in out


# ---------------------------------------------------------------- JupyterLab


def test_lab_command_and_environment(tmp_path: Path) -> None:
    argv, env = lab_command("postgresql+psycopg://u:pw@h:5/db", NOTEBOOKS, port=8899, open_browser=False,
                            base_env={"PATH": "/bin", "DATABASE_URL": "old"}, python="/venv/bin/python")
    assert argv[:3] == ["/venv/bin/python", "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={NOTEBOOKS.resolve()}" in argv and "--ServerApp.port=8899" in argv
    assert "--no-browser" in argv and "--ServerApp.ip=127.0.0.1" in argv
    assert env["DATABASE_URL"] == "postgresql+psycopg://u:pw@h:5/db" and env["PATH"] == "/bin"
    assert env["PLOOMBER_STATS_ENABLED"] == "false"
    assert "pw" not in " ".join(argv)
    argv, _ = lab_command("postgresql://x@h/db", NOTEBOOKS, base_env={})
    assert "--no-browser" not in argv and "--ServerApp.port=8888" in argv and "--allow-root" not in argv
    assert "--allow-root" in lab_command("postgresql://x@h/db", NOTEBOOKS, base_env={}, as_root=True)[0]
    with pytest.raises(ValidationError, match="port"):
        lab_command("postgresql://x@h/db", NOTEBOOKS, port=80, base_env={})
    with pytest.raises(ValidationError, match="notebooks_dir"):
        lab_command("postgresql://x@h/db", tmp_path / "missing", base_env={})


def test_lab_cli_starts_jupyterlab_with_the_database(report_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    launched: dict[str, object] = {}
    monkeypatch.setattr("os.execvpe", lambda file, argv, env: launched.update(argv=argv, env=env))
    assert main(["lab", "--no-browser", "--port", "8901"]) == 0
    assert "--no-browser" in launched["argv"] and "--ServerApp.port=8901" in launched["argv"]
    assert launched["env"]["DATABASE_URL"].startswith("postgresql+psycopg://")
