"""The libpq client of the quick read path (gitinsight_analytics.libpq): values read as psycopg reads them, values
bound as parameters, its transaction set up like the engines' reads, and one-line errors."""

from __future__ import annotations

import datetime as dt
import math
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics import libpq, pgconn
from gitinsight_analytics.exceptions import DatabaseUnreachable, QueryFailed, StatementTimeout
from gitinsight_analytics.pgproc import free_port
from gitinsight_analytics.statements import fetch


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_the_libpq_of_psycopg_binary_is_loaded() -> None:
    """The copy shipped in the psycopg-binary wheel (the one psycopg itself uses here), not another one."""
    import psycopg

    lib = libpq.load()
    assert lib is not None
    assert "psycopg_binary" in str(lib._name) and Path(lib._name).name.startswith("libpq")
    assert psycopg.pq.__impl__ == "binary"


def test_no_loadable_libpq_is_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A library that is missing or not loadable is skipped; none at all: None (the caller takes psycopg)."""
    bogus = tmp_path / "libpq.so.5"
    bogus.write_text("not a shared library")
    monkeypatch.setattr(libpq, "_candidates", lambda: iter([str(tmp_path / "missing.so"), str(bogus)]))
    libpq.load.cache_clear()
    try:
        assert libpq.load() is None
        with pytest.raises(DatabaseUnreachable, match="libpq cannot be loaded"):
            libpq.connect("postgresql://u@127.0.0.1:5/d")
    finally:
        libpq.load.cache_clear()  # found again by the next caller, unpatched


def test_a_python_without_ctypes_has_no_libpq() -> None:
    """A Python built without libffi has no ctypes: the module still imports and load() says None."""
    probe = ("import sys; sys.modules['ctypes'] = None; from gitinsight_analytics import libpq, statements; "
             "print(libpq.load())")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "None", done.stderr


@pytest.mark.parametrize("expression", [
    "1::smallint", "(-2147483648)::integer", "9223372036854775807::bigint", "42::oid", "true", "false",
    "1.5::real", "0.1::double precision", "'-Infinity'::double precision", "12.340::numeric", "'NaN'::numeric",
    "'2026-08-01'::date", "'0001-01-01'::date", "'2026-08-01 12:00:00.5'::timestamp",
    "'2026-08-01 12:00:00.123456+05:30'::timestamptz",
    "'1890-06-01 00:00:00+00'::timestamptz",
    "'héllo, \"wörld\"'::text", "'x'::varchar(3)", "'a  '::char(3)", "'a'::\"char\"", "'tok'::name",
    "NULL::integer", "NULL::text", "''::text",
])
def test_values_are_read_as_psycopg_reads_them(engine: Engine, expression: str) -> None:
    """The same Python value (and type) from both clients, in a session whose time zone is not UTC (the same instant;
    the same offset but where the server's and Python's time zone databases differ, as for local mean time)."""
    query = f"SELECT set_config('TimeZone', 'Asia/Kathmandu', true) AS tz, {expression} AS v"
    with libpq.read_transaction(url_of(engine)) as quick, pgconn.read_transaction(url_of(engine)) as slow:
        ours = fetch(quick, query, {})[1][0][1]
        theirs = fetch(slow, query, {})[1][0][1]
    assert type(ours) is type(theirs)
    if isinstance(theirs, float | Decimal) and math.isnan(theirs):
        assert math.isnan(ours)
    else:
        assert ours == theirs
    if isinstance(theirs, dt.datetime) and theirs.tzinfo is not None and theirs.year > 1990:
        assert ours.utcoffset() == theirs.utcoffset()


@pytest.mark.parametrize(("value", "cast", "expected"), [
    ("it's; DROP TABLE users --", "text", "it's; DROP TABLE users --"), (None, "integer", None),
    (True, "boolean", True), (7, "bigint", 7), (2.5, "double precision", 2.5), (Decimal("1.10"), "numeric",
                                                                                 Decimal("1.10")),
    (dt.date(2026, 8, 1), "date", dt.date(2026, 8, 1)),
    (dt.datetime(2026, 8, 1, 12, 0, tzinfo=dt.UTC), "timestamptz", dt.datetime(2026, 8, 1, 12, 0, tzinfo=dt.UTC)),
    ("50%", "text", "50%"),
])
def test_values_are_bound_as_parameters(engine: Engine, value: object, cast: str, expected: object) -> None:
    with libpq.read_transaction(url_of(engine)) as conn:
        columns, rows = fetch(conn, f"SELECT %(v)s::{cast} AS v, '100%%' AS literal, %(v)s::{cast} AS again",
                              {"v": value})
    assert columns == ["v", "literal", "again"] and rows == [(expected, "100%", expected)]


@pytest.mark.parametrize(("query", "params", "expected"), [
    ("SELECT %(a)s, %(b)s, %(a)s", {"a": 1, "b": 2}, ("SELECT $1, $2, $1", [1, 2])),
    ("SELECT '%%' || %(a)s", {"a": "x"}, ("SELECT '%' || $1", ["x"])),
    ("SELECT '50%'", None, ("SELECT '50%'", [])),  # no parameters: the text as it is, as psycopg sends it
    ("SELECT 1", {"unused": 1}, ("SELECT 1", [])),
])
def test_placeholders_become_positional(query: str, params: dict | None, expected: tuple) -> None:
    assert libpq.to_positional(query, params) == expected


@pytest.mark.parametrize(("query", "params", "error"), [
    ("SELECT %s", {}, ValueError), ("SELECT '50%'", {}, ValueError), ("SELECT %(a)s", {"b": 1}, KeyError),
])
def test_bad_placeholders_are_refused(query: str, params: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        libpq.to_positional(query, params)


def test_unsupported_parameter_type_is_refused(engine: Engine) -> None:
    with libpq.read_transaction(url_of(engine)) as conn, pytest.raises(TypeError, match="cannot send a list"):
        fetch(conn, "SELECT %(v)s", {"v": [1, 2]})


def test_a_rejected_statement_is_one_line_with_its_sqlstate(engine: Engine) -> None:
    with libpq.read_transaction(url_of(engine)) as conn, pytest.raises(QueryFailed) as caught:
        fetch(conn, "SELECT * FROM no_such_table")
    assert caught.value.sqlstate == "42P01" and "\n" not in str(caught.value)
    assert str(caught.value) == 'the database rejected the statement (42P01): relation "no_such_table" does not exist'


def test_a_value_without_a_python_equivalent_is_named(engine: Engine) -> None:
    with libpq.read_transaction(url_of(engine)) as conn, pytest.raises(QueryFailed, match="column t: 'infinity'"):
        fetch(conn, "SELECT now() AS n, 'infinity'::timestamptz AS t")


def test_dates_need_iso_datestyle(engine: Engine) -> None:
    """Outside read_transaction, a session in another DateStyle gets an error instead of misread dates."""
    with libpq.connect(url_of(engine)) as conn:
        fetch(conn, "SET DateStyle = 'SQL, DMY'")
        assert fetch(conn, "SELECT 1 AS one")[1] == [(1,)]
        with pytest.raises(QueryFailed, match="DateStyle is 'SQL, DMY' .allowed: ISO"):
            fetch(conn, "SELECT DATE '2026-02-01'")


def test_unreachable_is_worded_as_with_psycopg() -> None:
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/nowhere"
    errors = []
    for connect in (libpq.connect, pgconn.connect):
        with pytest.raises(DatabaseUnreachable) as caught:
            connect(url)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "secret" not in errors[0] and "\n" not in errors[0]


def test_the_read_transaction_is_set_up_like_the_engines_and_rolled_back(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE scratch (n integer)"))
    with libpq.read_transaction(url_of(engine), statement_timeout=7) as quick:
        settings = fetch(quick, "SELECT current_setting('statement_timeout') AS t, "
                                "current_setting('citus.select_opens_transaction_block') AS c, "
                                "now() = statement_timestamp() AS in_block")
        fetch(quick, "INSERT INTO scratch VALUES (%(n)s)", {"n": 1})
        assert quick.info.dbname == engine.url.database and quick.info.port == engine.url.port
    assert settings == (["t", "c", "in_block"], [("7s", "off", False)])
    assert quick.closed
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM scratch")).scalar() == 0

        # set_config(..., true): nothing is left on the server's other sessions
        assert conn.execute(sa.text("SELECT current_setting('statement_timeout')")).scalar() == "0"


def test_the_transaction_is_rolled_back_before_the_close(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """So that PgBouncer can hand the server connection to the next client instead of discarding it."""
    close = libpq.Connection.close
    monkeypatch.setattr(libpq.Connection, "close", lambda self: None)  # the session stays to be looked at
    with libpq.read_transaction(url_of(engine)) as conn:
        pid = fetch(conn, "SELECT pg_backend_pid()")[1][0][0]
    try:
        with engine.connect() as other:
            state = other.execute(sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
            assert state.scalar_one() == "idle"  # not "idle in transaction"
    finally:
        close(conn)


def test_the_statement_timeout_has_the_engines_error(engine: Engine) -> None:
    with pytest.raises(StatementTimeout, match="0.2 s for analyses; allowed: raise GITINSIGHT_STATEMENT_TIMEOUT"):
        with libpq.read_transaction(url_of(engine), statement_timeout=0.2) as conn:
            fetch(conn, "SELECT pg_sleep(5)")
    assert conn.closed
    with libpq.read_transaction(url_of(engine)) as conn:  # 0: the server's setting
        assert fetch(conn, "SELECT current_setting('statement_timeout') AS t")[1] == [("0",)]


def test_a_lost_connection_is_one_line(engine: Engine) -> None:
    with libpq.read_transaction(url_of(engine)) as conn:
        pid = fetch(conn, "SELECT pg_backend_pid() AS pid")[1][0][0]
        with engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DatabaseUnreachable, match="^lost the database connection, the command's open "
                                                      "transaction was rolled back: ") as caught:
            fetch(conn, "SELECT 1")
        assert "\n" not in str(caught.value) and conn.broken
    assert conn.closed


def test_ctrl_c_cancels_the_statement_on_the_server(engine: Engine) -> None:
    """SIGINT while a statement runs: the process stops at once and the server stops the statement (as with
    psycopg), instead of the command waiting for it to end."""
    probe = ("import sys; from gitinsight_analytics import libpq; from gitinsight_analytics.statements import fetch\n"
             "with libpq.read_transaction(sys.argv[1]) as conn:\n"
             "    print('running', flush=True); fetch(conn, \"SELECT pg_sleep(60) AS marker_of_this_test\")\n")
    process = subprocess.Popen([sys.executable, "-c", probe, url_of(engine)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "running"
    def running() -> int:  # a new transaction each time: pg_stat_activity is a snapshot per transaction
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query "
                                        "LIKE '%marker_of_this_test%' AND pid <> pg_backend_pid()")).scalar_one()

    for _ in range(100):  # the statement reached the server
        if running():
            break
        time.sleep(0.05)
    assert running() == 1
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert time.monotonic() - started < 10 and process.returncode != 0 and "KeyboardInterrupt" in err
    for _ in range(100):  # cancelled (within moments), not left sleeping its 60 s after the client went away
        if not running():
            break
        time.sleep(0.05)
    assert running() == 0
