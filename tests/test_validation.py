"""Parameter validation helpers: one ValidationError naming the parameter and what is allowed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from gitinsight_analytics.exceptions import ValidationError
from gitinsight_analytics.queries import _params as p


@pytest.mark.parametrize("value, expected", [(1, 1), ("5", 5), (3.0, 3), (np.int64(7), 7), (1000, 1000)])
def test_limit_accepts(value, expected):
    assert p.check_limit(value) == expected


@pytest.mark.parametrize("value", [0, 1001, -1, "x", 2.5, True, None, "1; DROP TABLE users"])
def test_limit_rejects(value):
    with pytest.raises(ValidationError) as info:
        p.check_limit(value)
    assert info.value.parameter == "limit" and info.value.allowed == "an integer 1..1000"


@pytest.mark.parametrize("value", [0, -5, 366, 10_000])
def test_window_days(value):
    with pytest.raises(ValidationError, match=r"window_days: .* \(allowed: an integer 1\.\.365\)"):
        p.check_window_days(value)


@pytest.mark.parametrize("value, expected", [
    ("2026-08-20", dt.date(2026, 8, 20)), (dt.date(2026, 1, 2), dt.date(2026, 1, 2)),
    (dt.datetime(2026, 8, 20, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))), dt.date(2026, 8, 21)),
    (None, None),
])
def test_parse_date(value, expected):
    assert p.parse_date(value) == expected


@pytest.mark.parametrize("value", ["2026-02-30", "20260820", "2026-8-2", "today", "", 20260820,
                                   "2026-08-20' OR '1'='1"])
def test_parse_date_rejects(value):
    with pytest.raises(ValidationError, match="as YYYY-MM-DD"):
        p.parse_date(value)


def test_escape_like():
    assert p.escape_like(r"50%_off\now") == r"50\%\_off\\now"


def test_choice_is_case_insensitive_and_lists_allowed():
    assert p.check_choice("WEEK", "freq", p.FREQUENCIES) == "week"
    with pytest.raises(ValidationError, match=r"freq: unknown value 'hour' \(allowed: day, week, month\)"):
        p.check_choice("hour", "freq", p.FREQUENCIES)


@pytest.mark.parametrize("value", [-0.01, 1.01, float("nan"), "abc", None, True])
def test_fraction(value):
    with pytest.raises(ValidationError, match="between 0 and 1"):
        p.check_fraction(value, "threshold")


def test_text():
    assert p.check_text("  x ", "text") == "x" and p.check_text("   ", "text") is None
    with pytest.raises(ValidationError, match="NUL"):
        p.check_text("a\x00b", "text")
