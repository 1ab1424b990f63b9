"""Progress of long work: a tqdm bar on a terminal; where stderr is not one (cron, CI logs, a pipe) a few plain
lines instead of hundreds of bar redraws.

:func:`progress_bar` returns either; both offer what the loaders call: ``update``, ``set_description``,
``set_postfix_str``, ``close`` and use as a context manager.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["progress_bar", "LineProgress", "LINE_INTERVAL_S"]

#: Seconds between two lines of :class:`LineProgress` (besides its first and last line).
LINE_INTERVAL_S = 30.0


class LineProgress:
    """Progress as lines: one when work starts, then at most one every ``interval`` seconds, one at the end."""

    def __init__(self, *, total: int | None, desc: str, unit: str, stream: TextIO, interval: float = LINE_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.postfix = ""
        self._stream, self._interval, self._clock = stream, interval, clock
        self._started = clock()
        self._last: float | None = None
        self._closed = False

    def _line(self, final: bool = False, word: str | None = None) -> None:
        elapsed = self._clock() - self._started
        done = f"{self.n:,}" + (f"/{self.total:,}" if self.total else "") + f" {self.unit}"
        if self.total and not final:
            done += f" ({100 * self.n / self.total:.0f}%)"
        tail = f"; {self.postfix}" if self.postfix and not final else ""
        word = word or ("done" if final else "at")
        self._stream.write(f"{self.desc}: {word} {done} in {elapsed:.0f} s{tail}\n")
        self._stream.flush()
        self._last = self._clock()

    def _maybe(self) -> None:
        if self._last is None or self._clock() - self._last >= self._interval:
            self._line()

    def update(self, n: int = 1) -> None:
        self.n += n
        self._maybe()

    def set_description(self, desc: str) -> None:
        self.postfix = desc  # the phase; the line keeps the bar's name
        self._maybe()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text
        self._maybe()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._line(final=True)

    def stop(self) -> None:
        """The last line of work that failed: where it stopped, not "done"."""
        if not self._closed:
            self._closed = True
            self._line(final=True, word="stopped at")

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(*, total: int | None, desc: str, unit: str, enabled: bool = True, stream: TextIO | None = None,
                 **tqdm_options: Any) -> Any:
    """A tqdm bar when ``stream`` (default stderr) is a terminal, a :class:`LineProgress` when it is not, a
    disabled tqdm (does nothing) when not ``enabled``."""
    stream = stream or sys.stderr
    if enabled and not stream.isatty():
        return LineProgress(total=total, desc=desc, unit=unit, stream=stream)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=stream, disable=not enabled, **tqdm_options)
