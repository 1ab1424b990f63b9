"""Progress of long work when stderr is not a terminal (cron, CI logs): a few plain lines, no bar redraws."""

from __future__ import annotations

import io

import pytest
from sqlalchemy.engine import Engine

from gitinsight_analytics.cli import main
from gitinsight_analytics.progress import LineProgress, progress_bar


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("seconds", "lines"), [(5, 2), (95, 5)])
def test_lines_every_interval_plus_start_and_end(seconds: int, lines: int) -> None:
    out, clock = io.StringIO(), Clock()
    with LineProgress(total=1000, desc="load", unit="rows", stream=out, interval=30, clock=clock) as bar:
        for i in range(1000):
            clock.now = seconds * i / 1000
            bar.update()
            if i == 500:
                bar.set_description("load: index idx_x")
        clock.now = seconds
    text = out.getvalue().splitlines()
    assert len(text) == lines and "\r" not in out.getvalue()
    assert text[0] == "load: at 1/1,000 rows (0%) in 0 s" and text[-1] == f"load: done 1,000/1,000 rows in {seconds} s"


def test_work_that_failed_does_not_end_with_done() -> None:
    out, clock = io.StringIO(), Clock()
    bar = LineProgress(total=1000, desc="load", unit="rows", stream=out, interval=30, clock=clock)
    bar.update(400)
    bar.stop()
    bar.close()  # the loader's finally: nothing more
    assert out.getvalue().splitlines()[-1] == "load: stopped at 400/1,000 rows in 0 s"


def test_a_terminal_gets_the_bar() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not isinstance(progress_bar(total=3, desc="x", unit="file", stream=Tty()), LineProgress)
    assert isinstance(progress_bar(total=3, desc="x", unit="file", stream=io.StringIO()), LineProgress)
    quiet = io.StringIO()
    with progress_bar(total=3, desc="x", unit="file", enabled=False, stream=quiet) as bar:
        bar.update()
    assert quiet.getvalue() == ""


def test_seed_in_a_log_is_a_few_lines(cli_env: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "--scale", "tiny"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and 1 <= len(err.splitlines()) <= 10, err
    assert err.splitlines()[-1].startswith("seed tiny: done ") and " rows in " in err.splitlines()[-1]
