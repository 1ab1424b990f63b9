"""Streaming rows into PostgreSQL with COPY: the COPY text format, the sources that generate it block by block,
and a writer thread that sends one block while the caller generates the next (bounded memory: one block queued).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from psycopg import sql
from psycopg.copy import LibpqWriter

from ..exceptions import DataLoadError

__all__ = ["Block", "NULL", "CopySource", "copy_escape", "format_copy_rows", "copy_source", "first_line"]

#: One block of COPY text (rows ending in newlines; str or UTF-8 bytes) and the number of rows in it.
Block = tuple[str | bytes, int]

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"


def copy_escape(value: object) -> str:
    """One value in PostgreSQL's COPY text format (``None`` is ``\\N``; backslash, tab, newline escaped)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value).translate(_ESCAPES)


def format_copy_rows(rows: Iterable[Sequence[object]]) -> Block:
    """Rows of Python values as one COPY text block (the generic, slower path for importers)."""
    lines = ["\t".join(map(copy_escape, row)) for row in rows]
    return ("\n".join(lines) + "\n" if lines else ""), len(lines)


@dataclass(frozen=True)
class CopySource:
    """The rows of one table: ``blocks()`` yields COPY text blocks, generated lazily (never a whole table)."""

    table: str
    columns: tuple[str, ...]
    blocks: Callable[[], Iterator[Block]]
    expected_rows: int | None = None


class _ThreadedWriter(LibpqWriter):
    """COPY writer that sends blocks from a worker thread, so that the caller generates the next block while the
    server parses this one (on two cores: Python on one, the server backend on the other).

    At most ``pending`` blocks wait in the queue (bounded memory); an error in the worker is raised by the next
    ``write`` or by ``finish``.
    """

    def __init__(self, cursor, pending: int = 1) -> None:  # a psycopg Cursor
        super().__init__(cursor)
        self._pending: queue.Queue = queue.Queue(maxsize=pending)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            while (data := self._pending.get()) is not None:
                super().write(data)
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc
            while self._pending.get() is not None:  # keep draining, or write() would block forever
                pass

    def write(self, data) -> None:  # a Buffer
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="copy-writer", daemon=True)
            self._thread.start()
        if self._error is not None:
            raise self._error
        self._pending.put(data)

    def finish(self, exc: BaseException | None = None) -> None:
        if self._thread is not None:
            self._pending.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        super().finish(exc)


def copy_source(raw, source: CopySource, freeze: bool, bar) -> int:
    """COPY one source; a rejected block becomes :class:`DataLoadError` naming the table."""
    import psycopg

    query = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
        sql.Identifier(source.table),
        sql.SQL(", ").join(map(sql.Identifier, source.columns)),
        sql.SQL(" WITH (FREEZE)") if freeze else sql.SQL(""),
    )
    count = 0
    if bar is not None:
        bar.set_description(f"loading {source.table}")
    try:
        with raw.cursor() as cur, cur.copy(query, writer=_ThreadedWriter(cur)) as copy:
            for block, n in source.blocks():
                copy.write(block)
                count += n
                if bar is not None:
                    bar.update(n)
    except psycopg.errors.DataError as exc:
        raise DataLoadError(f"{source.table}: rows rejected by PostgreSQL: {first_line(exc)}") from exc
    except psycopg.errors.IntegrityError as exc:
        raise DataLoadError(f"{source.table}: {first_line(exc)}") from exc
    return count


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (its type name when it has none)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
