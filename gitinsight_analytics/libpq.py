"""The quick read path's client: libpq, the C library psycopg itself wraps, called through ``ctypes``.

``gitinsight query search --format csv`` is run from shells and scripts many times a minute; importing psycopg alone
takes about 0.3 s on the test machine (its package imports asyncio, its type system and the version metadata of
psycopg-binary), three times what the rest of the command costs. This module loads the same libpq (the copy shipped
in the psycopg-binary wheel, else the system's) and offers what a read-only command needs: connect (the same
``DATABASE_URL`` spellings, environment, TLS and authentication, as all of that is libpq's), one transaction set up
like the engines' reads (:func:`read_transaction`), statements with values bound as parameters and rows converted
to the Python types psycopg returns for the common scalar types. Everything else in the package uses psycopg;
:func:`load` returns None where no libpq can be loaded and the caller takes the psycopg path instead.

Statements use psycopg's placeholder syntax (``%(name)s``, ``%%`` for a literal ``%``), so one statement text runs
here, on a psycopg connection and through SQLAlchemy (:mod:`.statements`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from .exceptions import DatabaseUnreachable, QueryFailed, ServerTooOld
from .pgconn import (
    CITUS_READS_SETTING,
    CONNECT_OPTIONS,
    MIN_SERVER_VERSION_NUM,
    connection_lost_error,
    is_statement_timeout,
    statement_timeout_error,
)
from .urls import libpq_url, redact, sqlalchemy_url

try:
    import ctypes
except ImportError:  # a Python built without libffi: load() finds nothing, the caller takes psycopg
    ctypes = None  # type: ignore[assignment]

__all__ = ["Connection", "ConnectionInfo", "load", "connect", "read_transaction", "to_positional"]

_OK, _BAD = 0, 1  # ConnStatusType
_COMMAND_OK, _TUPLES_OK = 1, 2  # ExecStatusType
_SQLSTATE, _PRIMARY = ord("C"), ord("M")  # PQresultErrorField codes

#: The text the server sends -> the Python value psycopg's default loaders return (other types stay ``str``,
#: as psycopg returns them for types it does not know): type oid -> (type name, loader).
_LOADERS: dict[int, tuple[str, Callable[[str], Any]]] = {
    16: ("boolean", lambda text: text == "t"),
    20: ("bigint", int), 21: ("smallint", int), 23: ("integer", int), 26: ("oid", int),
    700: ("real", float), 701: ("double precision", float), 1700: ("numeric", Decimal),
    1082: ("date", dt.date.fromisoformat), 1114: ("timestamp", dt.datetime.fromisoformat),
    1184: ("timestamp with time zone", dt.datetime.fromisoformat),
}
_DATE_TYPES = {1082, 1114, 1184}

_PLACEHOLDER = re.compile(r"%(?:\((\w+)\)s|(%)|(.?))")


def to_positional(query: str, params: Mapping[str, Any] | None = None) -> tuple[str, list[Any]]:
    """``query`` with psycopg's ``%(name)s`` placeholders as libpq's ``$1``, ``$2`` … and the values in order.
    Without ``params`` (None) the text is sent as it is, as psycopg sends it."""
    if params is None:
        return query, []
    order: dict[str, int] = {}

    def replace(match: re.Match[str]) -> str:
        name, percent, other = match.groups()
        if percent:
            return "%"
        if name is None:
            raise ValueError(f"unsupported placeholder %{other} in the statement (allowed: %(name)s or %%)")
        if name not in params:
            raise KeyError(f"the statement's placeholder %({name})s has no value")
        return f"${order.setdefault(name, len(order) + 1)}"

    text = _PLACEHOLDER.sub(replace, query)
    return text, [params[name] for name in order]


def _text(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, str | int | float | Decimal | dt.date):
        return (value.isoformat() if isinstance(value, dt.date) else str(value)).encode()
    raise TypeError(f"cannot send a {type(value).__name__} as a statement parameter")


def _candidates() -> Iterator[str]:
    """Where libpq may be: psycopg-binary's own copy (a wheel's ``psycopg_binary.libs`` or ``.dylibs``), then the
    system's."""
    from importlib.util import find_spec

    with contextlib.suppress(ImportError, ValueError):
        spec = find_spec("psycopg_binary")  # finds the package without importing it
        if spec is not None and spec.origin:
            package = Path(spec.origin).parent
            for folder in (package.parent / "psycopg_binary.libs", package / ".dylibs"):
                if folder.is_dir():
                    yield from sorted(str(p) for p in folder.glob("libpq*") if ".so" in p.name or p.suffix in
                                      {".dylib", ".dll"})
    from ctypes.util import find_library

    for name in ("pq", "libpq"):
        found = find_library(name)
        if found:
            yield found


def _declare(lib: ctypes.CDLL) -> None:
    p, i, s, u = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint
    for name, restype, argtypes in [
        ("PQconnectdbParams", p, [ctypes.POINTER(s), ctypes.POINTER(s), i]),
        ("PQstatus", i, [p]), ("PQerrorMessage", s, [p]), ("PQserverVersion", i, [p]), ("PQfinish", None, [p]),
        ("PQparameterStatus", s, [p, s]), ("PQhost", s, [p]), ("PQport", s, [p]), ("PQdb", s, [p]),
        ("PQuser", s, [p]),
        ("PQsendQueryParams", i, [p, s, i, p, ctypes.POINTER(s), p, p, i]), ("PQsocket", i, [p]),
        ("PQisBusy", i, [p]), ("PQconsumeInput", i, [p]), ("PQgetResult", p, [p]),
        ("PQgetCancel", p, [p]), ("PQcancel", i, [p, s, i]), ("PQfreeCancel", None, [p]),
        ("PQescapeIdentifier", p, [p, s, ctypes.c_size_t]), ("PQfreemem", None, [p]),
        ("PQresultStatus", i, [p]), ("PQresultErrorField", s, [p, i]),
        ("PQntuples", i, [p]), ("PQnfields", i, [p]), ("PQfname", s, [p, i]), ("PQftype", u, [p, i]),
        ("PQgetvalue", s, [p, i, i]), ("PQgetisnull", i, [p, i, i]), ("PQclear", None, [p]),
    ]:
        function = getattr(lib, name)
        function.restype, function.argtypes = restype, argtypes


@functools.cache
def load() -> ctypes.CDLL | None:
    """libpq with the functions this module calls declared, or None where none can be loaded."""
    if ctypes is None:
        return None
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            _declare(lib)
        except (OSError, AttributeError):  # not loadable here, or too old to have a function
            continue
        return lib
    return None


def _strings(values: list[bytes | None]) -> ctypes.Array[ctypes.c_char_p]:
    return (ctypes.c_char_p * (len(values) + 1))(*values, None)


def _decode(value: bytes | None) -> str:
    return (value or b"").decode()


def _first_line(message: bytes | None, default: str) -> str:
    text = (message or b"").decode(errors="replace").strip()
    return (text.splitlines() or [default])[0]


@dataclass(frozen=True)
class ConnectionInfo:
    """Where a connection went (the names of psycopg's ``conn.info``)."""

    host: str
    port: int
    dbname: str
    user: str
    server_version: int


class Connection:
    """One libpq connection (from :func:`connect`). Statements run in the open transaction, if any: libpq, unlike
    psycopg, does not begin one by itself (:func:`read_transaction` does)."""

    def __init__(self, lib: ctypes.CDLL, handle: int) -> None:
        self._lib = lib
        self._handle: int | None = handle
        self.info = ConnectionInfo(host=_decode(lib.PQhost(handle)), port=int(_decode(lib.PQport(handle)) or 0),
                                   dbname=_decode(lib.PQdb(handle)), user=_decode(lib.PQuser(handle)),
                                   server_version=lib.PQserverVersion(handle))

    @property
    def closed(self) -> bool:
        return self._handle is None

    @property
    def broken(self) -> bool:
        """Whether the connection to the server was lost (psycopg's name)."""
        return self._handle is not None and self._lib.PQstatus(self._handle) == _BAD

    def close(self) -> None:
        """Close the connection; an open transaction is rolled back by the server."""
        if self._handle is not None:
            self._lib.PQfinish(self._handle)
            self._handle = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, query: str, params: Mapping[str, Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run ``query`` (``%(name)s`` placeholders) with ``params`` bound; its column names and rows.

        Raises :class:`QueryFailed` with the server's SQLSTATE and message (one line), or
        :class:`DatabaseUnreachable` when the connection was lost.
        """
        if self._handle is None:
            raise DatabaseUnreachable("the connection is closed")
        lib = self._lib
        text, values = to_positional(query, params)
        result = self._run(text.encode(), _strings([_text(v) for v in values]), len(values))
        if not result:
            self._raise(None)
        try:
            status = lib.PQresultStatus(result)
            if status == _COMMAND_OK:
                return [], []
            if status != _TUPLES_OK:
                self._raise(result)
            ncols, nrows = lib.PQnfields(result), lib.PQntuples(result)
            columns = [lib.PQfname(result, c).decode() for c in range(ncols)]
            types = [lib.PQftype(result, c) for c in range(ncols)]
            if _DATE_TYPES.intersection(types) and not self._parameter("DateStyle").startswith("ISO"):
                raise QueryFailed(f"dates are read as ISO text, the session's DateStyle is "
                                  f"{self._parameter('DateStyle')!r} (allowed: ISO; read_transaction sets it)")
            loaders = [_LOADERS.get(t, ("text", str)) for t in types]
            value, isnull = lib.PQgetvalue, lib.PQgetisnull
            try:
                rows = [tuple(None if isnull(result, r, c) else loaders[c][1](value(result, r, c).decode())
                              for c in range(ncols)) for r in range(nrows)]
            except ValueError:
                raise self._unreadable(result, columns, loaders) from None
            return columns, rows
        finally:
            if result:
                lib.PQclear(result)

    def quote_ident(self, name: str) -> str:
        """``name`` quoted as an identifier by libpq (``PQescapeIdentifier``, what ``psycopg.sql.Identifier``
        uses)."""
        if self._handle is None:
            raise DatabaseUnreachable("the connection is closed")
        raw = name.encode()
        quoted = self._lib.PQescapeIdentifier(self._handle, raw, len(raw))
        if not quoted:
            raise QueryFailed(f"cannot quote the identifier {name!r}: "
                              f"{_first_line(self._lib.PQerrorMessage(self._handle), 'invalid')}")
        try:
            return ctypes.string_at(quoted).decode()
        finally:
            self._lib.PQfreemem(quoted)

    def _run(self, text: bytes, values: ctypes.Array[ctypes.c_char_p], count: int) -> int | None:
        """Send the statement and wait for its result without blocking signals: Ctrl-C cancels it on the server
        (as psycopg does) instead of waiting for the statement to end."""
        import select

        lib, handle = self._lib, self._handle
        if not lib.PQsendQueryParams(handle, text, count, None, values, None, None, 0):
            self._raise(None)
        results: list[int] = []
        try:
            while True:
                while lib.PQisBusy(handle):
                    select.select([lib.PQsocket(handle)], [], [])
                    if not lib.PQconsumeInput(handle):
                        self._raise(None)
                result = lib.PQgetResult(handle)
                if not result:
                    break
                results.append(result)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                self._cancel()
            for result in results:
                lib.PQclear(result)
            raise
        for extra in results[1:]:  # one statement: one result
            lib.PQclear(extra)
        return results[0] if results else None

    def _cancel(self) -> None:
        lib = self._lib
        cancel = lib.PQgetCancel(self._handle)
        if cancel:
            error = ctypes.create_string_buffer(256)
            lib.PQcancel(cancel, error, len(error))
            lib.PQfreeCancel(cancel)

    def _parameter(self, name: str) -> str:
        return _decode(self._lib.PQparameterStatus(self._handle, name.encode()))

    def _unreadable(self, result: int, columns: list[str], loaders: list[tuple[str, Callable[[str], Any]]],
                    ) -> QueryFailed:
        """The error for the first value that has no Python equivalent (e.g. an infinite timestamp)."""
        lib = self._lib
        for r in range(lib.PQntuples(result)):
            for c, (type_name, load) in enumerate(loaders):
                if lib.PQgetisnull(result, r, c):
                    continue
                text = lib.PQgetvalue(result, r, c).decode()
                try:
                    load(text)
                except ValueError:
                    return QueryFailed(f"column {columns[c]}: {text!r} cannot be read as a Python {type_name} value "
                                       "(allowed: the values psycopg reads, e.g. finite dates in years 1..9999)")
        return QueryFailed("a value of the result cannot be read")

    def _raise(self, result: int | None) -> NoReturn:
        lib = self._lib
        if lib.PQstatus(self._handle) == _BAD:
            raise connection_lost_error(_first_line(lib.PQerrorMessage(self._handle), "connection lost"))
        sqlstate = (lib.PQresultErrorField(result, _SQLSTATE) or b"").decode() if result else ""
        message = _first_line(lib.PQresultErrorField(result, _PRIMARY) if result else
                              lib.PQerrorMessage(self._handle), "statement failed")
        raise QueryFailed(f"the database rejected the statement ({sqlstate or 'no SQLSTATE'}): {message}",
                          sqlstate=sqlstate)


def connect(url: str, *, lib: ctypes.CDLL | None = None) -> Connection:
    """A connection to ``url`` (any spelling :mod:`.urls` accepts) on a server of a supported version, with the
    options of every connection of the package and UTF-8 text. ``lib``: :func:`load`'s (it must not be None).

    Raises :class:`DatabaseUnreachable` (``cannot connect to <url without password>: <reason>``, as
    :func:`.pgconn.connect` words it) or :class:`ServerTooOld`.
    """
    lib = lib if lib is not None else load()
    if lib is None:
        raise DatabaseUnreachable("libpq cannot be loaded on this machine")
    target = sqlalchemy_url(url)
    options = {"dbname": libpq_url(target), **{k: str(v) for k, v in CONNECT_OPTIONS.items()},
               "client_encoding": "UTF8"}
    keys = _strings([k.encode() for k in options])
    values = _strings([v.encode() for v in options.values()])
    handle = lib.PQconnectdbParams(keys, values, 1)
    if not handle:
        raise MemoryError("libpq could not allocate a connection")
    if lib.PQstatus(handle) != _OK:
        reason = _first_line(lib.PQerrorMessage(handle), "connection failed")
        lib.PQfinish(handle)
        raise DatabaseUnreachable(f"cannot connect to {redact(target)}: connection failed: {reason}")
    conn = Connection(lib, handle)
    version = conn.info.server_version
    if version < MIN_SERVER_VERSION_NUM:
        conn.close()
        raise ServerTooOld(f"the server runs PostgreSQL {version // 10000}.{version % 10000} "
                           "(allowed: PostgreSQL 15 or newer)")
    return conn


#: The engines' read setup (:func:`.pgconn.read_transaction`) in one statement, local to the transaction (so it
#: also works through PgBouncer), plus the date format the loaders read (ISO).
_SETUP = ("SELECT set_config('statement_timeout', COALESCE(%(timeout)s, current_setting('statement_timeout')), true),"
          f" set_config('{CITUS_READS_SETTING}', 'off', true), set_config('DateStyle', 'ISO', true)")


@contextlib.contextmanager
def read_transaction(url: str, *, statement_timeout: float = 0, lib: ctypes.CDLL | None = None,
                     ) -> Iterator[Connection]:
    """One connection in one transaction for an analysis that only reads, set up as :func:`.pgconn.read_transaction`
    sets up psycopg's: each statement limited to ``statement_timeout`` seconds (0: the server's setting; a
    cancelled one raises :class:`StatementTimeout`), no transactions opened on Citus workers. Rolled back and
    closed afterwards."""
    conn = connect(url, lib=lib)
    try:
        conn.execute("BEGIN")
        timeout = f"{int(round(statement_timeout * 1000))}ms" if statement_timeout > 0 else None
        conn.execute(_SETUP, {"timeout": timeout})
        yield conn
        if not conn.closed and not conn.broken:  # rolled back before closing: a pooler (PgBouncer) keeps its
            conn.execute("ROLLBACK")               # server connection instead of discarding one left in a transaction
    except QueryFailed as exc:
        if statement_timeout > 0 and is_statement_timeout(exc):
            raise statement_timeout_error(statement_timeout) from None
        raise
    finally:
        conn.close()  # after an error: the server rolls the transaction back
