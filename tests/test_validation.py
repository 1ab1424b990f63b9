"""Parameter validation helpers: one ValidationError naming the parameter and what is allowed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from gitinsight_analytics import validation as p
from gitinsight_analytics.exceptions import ValidationError


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
    with pytest.raises(ValidationError, match="is not a date .allowed: YYYY-MM-DD.$"):
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


@pytest.mark.parametrize(("value", "expected"), [("2.5", 2.5), (0, 0.0), (1, 1.0)])
def test_check_number_accepts_finite_numbers(value: object, expected: float) -> None:
    assert p.check_number(value, "x", 0, 3) == expected


@pytest.mark.parametrize(("value", "problem"), [
    ("nan", "'nan' is not a finite number"), ("inf", "'inf' is not a finite number"), (True, "True is not a number"),
    ("1e400", "'1e400' is not a finite number"), (4, "4 is out of range"), ("x", "'x' is not a number"),
])
def test_check_number_rejects_with_one_line(value: object, problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        p.check_number(value, "x", 0, 3)
    assert str(info.value) == f"x: {problem} (allowed: a number 0..3)"


@pytest.mark.parametrize(("value", "expected"), [("Yes", True), ("0", False), (" off ", False), (True, True)])
def test_check_bool(value: object, expected: bool) -> None:
    assert p.check_bool(value, "flag") is expected


def test_check_bool_rejects() -> None:
    with pytest.raises(ValidationError, match=r"^flag: 'maybe' is not a boolean \(allowed: true/false"):
        p.check_bool("maybe", "flag")


@pytest.mark.parametrize(("env", "message"), [
    ({"GITINSIGHT_POOL_PRE_PING": "maybe"},
     "GITINSIGHT_POOL_PRE_PING='maybe' is not a boolean (allowed: true/false, 1/0, yes/no, on/off)"),
    ({"GITINSIGHT_POOL_SIZE": "2.5"}, "GITINSIGHT_POOL_SIZE='2.5' is not an integer (allowed: 1..1000)"),
])
def test_settings_use_the_same_checks(env: dict[str, str], message: str) -> None:
    from gitinsight_analytics.exceptions import ConfigurationError
    from gitinsight_analytics.settings import load_settings

    with pytest.raises(ConfigurationError) as info:
        load_settings(env)
    assert str(info.value) == message


@pytest.mark.parametrize(("key", "raw", "problem"), [
    ("window_days", "7.5", "'7.5' is not an integer"), ("min_confidence", "nan", "'nan' is not a finite number"),
    ("as_of", "2026-02-30", "'2026-02-30' is not a date"),
])
def test_report_parameters_use_the_same_checks(key: str, raw: str, problem: str) -> None:
    from gitinsight_analytics.reports.params import SPECS, validate_parameters

    allowed = next(param for param in SPECS["trending"] if param.name == key).allowed()
    with pytest.raises(ValidationError) as info:
        validate_parameters("trending", {key: raw})
    assert str(info.value) == f"{key}: {problem} (allowed: {allowed})"
