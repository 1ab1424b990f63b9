"""``gitinsight query ...`` and ``gitinsight refresh`` through cli.main (the same functions as the library)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from gitinsight_analytics.cli import main

from .query_data import build


@pytest.fixture
def cli_data(cli_env):
    build(cli_env)
    return cli_env


@pytest.fixture(params=["libpq", "psycopg"])
def quick_client(request, monkeypatch):
    """The quick read path's client: libpq (found here), or psycopg as where no libpq can be loaded."""
    from gitinsight_analytics import libpq

    if request.param == "psycopg":
        monkeypatch.setattr(libpq, "load", lambda: None)
    return request.param


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_search_table_csv_json(cli_data, capsys):
    code, out, _ = run(capsys, "query", "search", "--text", "busy")
    assert code == 0 and "alice/busy" in out and "dave/oldie" in out and "full_name" in out
    code, out, _ = run(capsys, "query", "search", "--text", "busy", "--format", "csv")
    frame = pd.read_csv(io.StringIO(out))
    assert frame["full_name"].tolist() == ["alice/busy", "dave/oldie"]
    code, out, _ = run(capsys, "query", "search", "--language", "Python", "--min-stars", "10", "--limit", "1",
                       "--offset", "1", "--format", "json")
    rows = json.loads(out)
    assert [r["full_name"] for r in rows] == ["alice/busy"] and isinstance(rows[0]["stars"], int)


def test_dashboard_stats_trending(cli_data, capsys):
    code, out, _ = run(capsys, "query", "dashboard", "--user", "alice", "--format", "json")
    assert code == 0 and [r["full_name"] for r in json.loads(out)] == ["carol/big", "alice/busy", "bob/quiet"]
    code, out, _ = run(capsys, "query", "stats", "--repo", "alice/busy", "--format", "json")
    assert json.loads(out)[0]["total_insights"] == 6
    code, out, _ = run(capsys, "query", "stats", "--repo", "alice/busy", "--view", "--format", "json")
    assert json.loads(out)[0]["follower_count"] == 3
    code, out, _ = run(capsys, "query", "stats", "--limit", "2")
    assert code == 0 and "view_refreshed_at:" in out
    code, out, _ = run(capsys, "query", "trending", "--format", "csv")
    assert code == 0 and pd.read_csv(io.StringIO(out))["full_name"].iloc[0] == "carol/big"
    code, out, _ = run(capsys, "query", "trending", "--by", "stars", "--window-days", "7", "--as-of", "2026-08-20",
                       "--language", "Python", "--limit", "5", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["full_name"] == "alice/busy" and rows[0]["first_snapshot"] == "2026-08-13"
    code, out, _ = run(capsys, "query", "trending", "--by", "stars")
    assert "as_of: 2026-08-20" in out


@pytest.mark.parametrize("argv", [
    ["query", "confidence"], ["query", "confidence", "--report", "versions"],
    ["query", "confidence", "--report", "low-share", "--freq", "month"], ["query", "confidence", "--report", "tags"],
    ["query", "jobs"], ["query", "jobs", "--report", "failures"], ["query", "jobs", "--report", "failure-rates"],
    ["query", "jobs", "--report", "backlog"], ["query", "jobs", "--report", "durations"],
])
def test_other_reports(cli_data, capsys, argv):
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 0, err
    assert isinstance(json.loads(out), list) and json.loads(out)


@pytest.mark.parametrize("argv, parameter", [
    (["query", "trending", "--window-days", "0"], "window_days"),
    (["query", "trending", "--window-days", "400"], "window_days"),
    (["query", "trending", "--as-of", "2026-02-30"], "as_of"),
    (["query", "trending", "--language", "Klingon"], "language"),
    (["query", "search", "--limit", "0"], "limit"), (["query", "search", "--min-stars", "-1"], "min_stars"),
    (["query", "search", "--sort", "password"], "sort"), (["query", "dashboard", "--user", "nobody"], "username"),
    (["query", "stats", "--repo", "no/such"], "full_name"),
    (["query", "confidence", "--report", "low-share", "--threshold", "3"], "threshold"),
    (["query", "jobs", "--freq", "year"], "freq"),
])
def test_bad_input_is_one_line_and_exit_2(cli_data, capsys, argv, parameter):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {parameter}: ") and "allowed:" in err


def test_sql_text_from_the_shell(cli_data, capsys):
    code, out, _ = run(capsys, "query", "search", "--text", "' OR '1'='1", "--format", "json")
    assert code == 0 and [r["full_name"] for r in json.loads(out)] == ["bob/quiet"]  # its description has it
    code, out, _ = run(capsys, "query", "search", "--text", "' OR 1=1 --", "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_refresh(cli_data, capsys):
    code, out, _ = run(capsys, "refresh")
    assert code == 0 and out.startswith("refreshed (concurrently)") and "repository_stats" in out
    code, out, _ = run(capsys, "refresh", "--blocking")
    assert code == 0 and out.startswith("refreshed (blocking)")


def test_empty_result_table(cli_env, capsys):
    code, out, _ = run(capsys, "query", "search", "--text", "anything")
    assert code == 0 and out.startswith("(no rows)")


@pytest.mark.parametrize("argv", [
    [], ["--text", "busy"], ["--sort", "updated", "--limit", "50"],
    ["--language", "Python", "--min-stars", "5", "--sort", "name"],
    ["--language", "pYTHON", "--sort", "forks"],  # the language as the data spells it
    ["--text", "100%"], ["--text", "0%_d"], ["--text", "t_r", "--sort", "full_name"],  # % and _ taken literally
    ["--text", "BUSY", "--sort", "watchers", "--min-stars", "0"],
    ["--sort", "created", "--limit", "2", "--offset", "1"], ["--sort", "last_analyzed", "--offset", "3"],
    ["--sort", "Stars", "--language", "go"],
])
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_search_csv_is_the_frame_as_csv(cli_data, capsys, argv, quick_client, fmt):
    """``query search --format csv|json`` runs on libpq (or psycopg) alone; its text is what the DataFrame's would
    be."""
    import sqlalchemy as sa

    from gitinsight_analytics import queries
    from gitinsight_analytics.cli.query import render

    with cli_data.begin() as conn:  # quotes, a comma, a newline and a NULL description
        conn.execute(sa.text("UPDATE repositories SET description = :d WHERE name = 'big'"),
                     {"d": 'say "hi", then\nleave'})
        conn.execute(sa.text("UPDATE repositories SET description = NULL WHERE name = 'oldie'"))
    options = dict(zip([a.lstrip("-").replace("-", "_") for a in argv[::2]], argv[1::2], strict=True))
    options = {k: (int(v) if k in {"min_stars", "limit", "offset"} else v) for k, v in options.items()}
    frame = queries.search_repositories(cli_data, **options)
    code, out, _ = run(capsys, "query", "search", *argv, "--format", fmt)
    assert code == 0 and len(frame) > 0
    assert out == render(frame, fmt) + "\n"


@pytest.mark.parametrize(("argv", "message"), [
    (["--language", "Klingon"], "language: unknown language 'Klingon' (allowed: Go, JavaScript, Python, Rust)"),
    (["--limit", "0"], "limit: 0 is out of range (allowed: an integer 1..1000)"),
    (["--offset", "-1"], "offset: -1 is out of range"), (["--min-stars", "-1"], "min_stars: -1 is out of range"),
    (["--sort", "password"], "sort: unknown value 'password' (allowed: stars, forks"),
    (["--text", "x" * 201], "text: 201 characters long (allowed: text of at most 200 characters)"),
])
def test_search_csv_rejects_what_the_frame_rejects(cli_data, capsys, argv, message):
    """The quick path validates with the same functions: the same one line, exit code 2, nothing on stdout."""
    errors = []
    for fmt in ("csv", "table"):
        code, out, err = run(capsys, "query", "search", *argv, "--format", fmt)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        errors.append(err)
    assert errors[0] == errors[1] and errors[0].startswith(f"error: {message}")


def test_search_csv_cannot_connect_is_one_line(cli_env, capsys, monkeypatch, quick_client):
    """An unreachable database: the engine's one-line error (URL without its password), from either path."""
    from gitinsight_analytics.pgproc import free_port

    port = free_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody:secret@127.0.0.1:{port}/nowhere")
    errors = []
    for fmt in ("csv", "table"):
        code, out, err = run(capsys, "query", "search", "--format", fmt)
        assert code == 1 and out == "" and err.count("\n") == 1, err
        errors.append(err)
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"error: cannot connect to postgresql+psycopg://nobody:***@127.0.0.1:{port}/nowhere: ")


def test_search_csv_reads_the_read_url(cli_data, capsys, monkeypatch):
    """GITINSIGHT_READ_URL is where reads go, whatever DATABASE_URL says (here: nothing listens there)."""
    from gitinsight_analytics.pgproc import free_port

    monkeypatch.setenv("GITINSIGHT_READ_URL", cli_data.url.render_as_string(hide_password=False))
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/nowhere")
    code, out, err = run(capsys, "query", "search", "--text", "busy", "--format", "csv")
    assert code == 0 and pd.read_csv(io.StringIO(out))["full_name"].tolist() == ["alice/busy", "dave/oldie"], err


@pytest.mark.parametrize(("timeout", "expected"), [("7", "7s"), ("0", "0")])
def test_read_connection_is_set_up_like_the_engine(cli_env, monkeypatch, timeout, expected, quick_client):
    """The quick path's connection: the analyses' statement timeout and no transactions on Citus workers, local to
    its one transaction, which is rolled back; the connection is closed afterwards."""
    from gitinsight_analytics import libpq
    from gitinsight_analytics.cli import common
    from gitinsight_analytics.statements import fetch

    monkeypatch.setenv("GITINSIGHT_STATEMENT_TIMEOUT", timeout)
    with common.read_connection() as conn:
        assert isinstance(conn, libpq.Connection) == (quick_client == "libpq")
        _, rows = fetch(conn, "SELECT current_setting('statement_timeout'), "
                              "current_setting('citus.select_opens_transaction_block')")
        assert rows == [(expected, "off")]
        assert conn.info.dbname == cli_env.url.database
    assert conn.closed


@pytest.mark.parametrize(("argv", "absent"), [
    (["--help"], ["pandas", "sqlalchemy", "psycopg", "plotly"]),
    (["query", "search", "--text", "busy", "--format", "csv"],
     ["psycopg", "sqlalchemy", "psycopg_pool", "pandas", "numpy", "scipy", "plotly", "alembic", "asyncio"]),
    (["query", "search", "--language", "python", "--format", "json"], ["psycopg", "sqlalchemy", "pandas", "numpy"]),
])
def test_quick_commands_import_little(cli_data, argv, absent):
    """What makes ``gitinsight --help`` and a CSV search start fast (timed in benchmarks/bench_startup.py)."""
    import os
    import subprocess
    import sys

    probe = ("import sys; from gitinsight_analytics.cli import main; code = main(sys.argv[1:]); "
             f"print(code, sorted(m for m in {absent!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=dict(os.environ),
                          timeout=120)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr
