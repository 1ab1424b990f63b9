"""Files that are either whole or absent, and folders whose owner may have died: what a crash or a full disk
leaves must never look like a finished result.

* :func:`write_text` writes a temporary file next to the target and renames it over the target: readers see the
  old file or the new one, never half of one; on any error (``ENOSPC``, ``EFBIG``) the temporary file is removed.
* :func:`remove_tree` renames a folder to a hidden name before deleting it, so that a reader (or a crash) never
  meets a half-deleted folder under its real name.
* :func:`hold` / :func:`abandoned`: a process holds an ``fcntl`` lock on a file for as long as it works on
  something (a run, a staging folder); the kernel drops the lock when the process dies, however it dies, so
  ``abandoned`` tells a crashed owner from a live one without trusting pids.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["write_text", "replace_file", "remove_tree", "hold", "abandoned", "LOCK_FILE"]

#: The lock file a live owner holds inside its folder.
LOCK_FILE = ".lock"


@contextlib.contextmanager
def _replacing(path: Path, mode: str, encoding: str | None = None) -> Iterator[IO]:
    """A temporary sibling of ``path`` to write, renamed over ``path`` when the block ends and removed on error."""
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, mode, encoding=encoding) as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically: a temporary sibling renamed over it, removed on error."""
    path = Path(path)
    with _replacing(path, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def replace_file(source: Path, path: Path) -> Path:
    """Copy ``source`` to ``path`` atomically (see :func:`write_text`)."""
    path = Path(path)
    with _replacing(path, "wb") as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    return path


def remove_tree(path: Path) -> None:
    """Delete the folder ``path``: first renamed to a hidden sibling (atomic), then removed."""
    path = Path(path)
    doomed = path.with_name(f".deleting.{path.name}.{secrets.token_hex(3)}")
    try:
        path.rename(doomed)
    except FileNotFoundError:  # another process removed it first
        return
    shutil.rmtree(doomed, ignore_errors=True)


def hold(path: Path) -> IO[str]:
    """Open ``path`` and take an exclusive lock on it; the lock lasts until the returned file is closed or the
    process ends. Raises :class:`BlockingIOError` if another open file holds it."""
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        handle.close()
        raise
    return handle


def abandoned(path: Path) -> bool:
    """Whether nobody holds the lock file ``path`` (its owner ended, or there is none)."""
    try:
        handle = open(path)
    except FileNotFoundError:
        return True
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True
