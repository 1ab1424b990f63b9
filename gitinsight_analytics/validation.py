"""Validation of input values, shared by the analyses (``queries``), the report parameters (``reports.params``),
the settings and the CLI: every bad value raises one :class:`ValidationError` naming the argument, what was wrong
and what is allowed (``allowed`` overrides the wording of what is allowed where a caller describes it itself).

Values always reach SQL as bound parameters; the only identifiers built into SQL text come from the
whitelists of the callers and are quoted with :func:`quote_ident` (or ``psycopg.sql.Identifier``). The lookups take
any connection of :mod:`.statements` (SQLAlchemy, psycopg or libpq); none is imported until one runs.
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .exceptions import ValidationError

if TYPE_CHECKING:  # the drivers are imported where a lookup needs them: settings use this module too
    from .statements import AnyConnection

__all__ = [
    "MAX_LIMIT",
    "MAX_WINDOW_DAYS",
    "FREQUENCIES",
    "check_int",
    "check_number",
    "check_bool",
    "check_limit",
    "check_offset",
    "check_window_days",
    "check_fraction",
    "check_choice",
    "check_text",
    "parse_date",
    "escape_like",
    "resolve_language",
    "quote_ident",
]

MAX_LIMIT = 1000
MAX_WINDOW_DAYS = 365
MAX_TEXT = 200
#: Period lengths accepted by the time-series analyses (PostgreSQL ``date_trunc`` fields).
FREQUENCIES = ("day", "week", "month")


def check_int(value: Any, name: str, low: int | None = None, high: int | None = None, *,
              allowed: str | None = None) -> int:
    """``value`` (an int, an integral float or a string of one) as an int within ``low..high``; bools and floats
    with a fraction are rejected."""
    allowed = allowed or f"an integer {low if low is not None else '-∞'}..{high if high is not None else '∞'}"
    if isinstance(value, bool):
        raise ValidationError(name, f"{value!r} is not an integer", allowed)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValidationError(name, f"{value!r} is not an integer", allowed) from None
    if isinstance(value, float):
        if not value.is_integer():
            raise ValidationError(name, f"{value!r} is not an integer", allowed)
        value = int(value)
    if isinstance(value, numbers.Integral):
        value = int(value)
    else:
        raise ValidationError(name, f"{value!r} is not an integer", allowed)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValidationError(name, f"{value} is out of range", allowed)
    return value


def check_number(value: Any, name: str, low: float | None = None, high: float | None = None, *,
                 allowed: str | None = None) -> float:
    """``value`` (a number or a string of one) as a finite float within ``low..high``; bools are rejected."""
    allowed = allowed or f"a number {low if low is not None else '-∞'}..{high if high is not None else '∞'}"
    if isinstance(value, bool) or value is None:
        raise ValidationError(name, f"{value!r} is not a number", allowed)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(name, f"{value!r} is not a number", allowed) from None
    if number != number or number in {float("inf"), float("-inf")}:
        raise ValidationError(name, f"{value!r} is not a finite number", allowed)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValidationError(name, f"{value!r} is out of range", allowed)
    return number


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool: a bool, or true/false, 1/0, yes/no, on/off (any case)."""
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in _TRUE or lowered in _FALSE:
        return lowered in _TRUE
    raise ValidationError(name, f"{value!r} is not a boolean", "true/false, 1/0, yes/no, on/off")


def check_limit(limit: Any, name: str = "limit") -> int:
    return check_int(limit, name, 1, MAX_LIMIT)


def check_offset(offset: Any) -> int:
    return check_int(offset, "offset", 0, 10_000_000)


def check_window_days(window_days: Any, name: str = "window_days") -> int:
    return check_int(window_days, name, 1, MAX_WINDOW_DAYS)


def check_fraction(value: Any, name: str, *, inclusive_low: bool = True) -> float:
    """A number within 0..1 (confidence scores and thresholds)."""
    allowed = "a number between 0 and 1"
    number = check_number(value, name, 0.0, 1.0, allowed=allowed)
    if not inclusive_low and number == 0.0:
        raise ValidationError(name, f"{value!r} is out of range", allowed)
    return number


def check_choice(value: Any, name: str, allowed: Iterable[str] | Mapping[str, Any]) -> str:
    """``value`` if it is one of ``allowed`` (compared case-insensitively, returned as spelled there)."""
    options = list(allowed)
    if isinstance(value, str):
        for option in options:
            if value.strip().lower() == option.lower():
                return option
    raise ValidationError(name, f"unknown value {value!r}", ", ".join(options))


def check_text(value: Any, name: str) -> str | None:
    """Free text (stripped; empty means no filter), at most 200 characters, no NUL bytes."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(name, f"{value!r} is not a string", f"text of at most {MAX_TEXT} characters")
    value = value.strip()
    if "\x00" in value:
        raise ValidationError(name, "contains a NUL character", f"text of at most {MAX_TEXT} characters")
    if len(value) > MAX_TEXT:
        raise ValidationError(name, f"{len(value)} characters long", f"text of at most {MAX_TEXT} characters")
    return value or None


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(value: Any, name: str = "as_of", *, allowed: str = "YYYY-MM-DD") -> dt.date | None:
    """A date from ``YYYY-MM-DD``, a ``date`` or a ``datetime`` (its UTC date); None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError(name, f"{value!r} is not a date", allowed)


def escape_like(value: str) -> str:
    r"""``value`` with LIKE wildcards escaped (``\``, ``%``, ``_``), for ``ILIKE ... ESCAPE '\'``."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


#: Loose index scan over idx_repositories_language: one probe per distinct language.
_LANGUAGES = """
    WITH RECURSIVE l(language) AS (
        (SELECT language FROM repositories WHERE language IS NOT NULL ORDER BY language LIMIT 1)
        UNION ALL
        SELECT (SELECT r.language FROM repositories r WHERE r.language > l.language
                ORDER BY r.language LIMIT 1)
        FROM l WHERE l.language IS NOT NULL
    )
    SELECT language FROM l WHERE language IS NOT NULL
"""


def resolve_language(conn: AnyConnection, language: Any, name: str = "language") -> str | None:
    """The language as spelled in the database (case-insensitive match), or ValidationError listing them."""
    if language is None:
        return None
    if not isinstance(language, str) or not language.strip():
        raise ValidationError(name, f"{language!r} is not a language name", "a language present in the data")
    from .statements import fetch

    language = language.strip()
    _, found = fetch(conn, "SELECT 1 FROM repositories WHERE language = %(language)s LIMIT 1", {"language": language})
    if found:
        return language
    known = [row[0] for row in fetch(conn, _LANGUAGES)[1]]
    for option in known:
        if option.lower() == language.lower():
            return option
    shown = ", ".join(known[:60]) + (f", … ({len(known)} in all)" if len(known) > 60 else "")
    raise ValidationError(name, f"unknown language {language!r}", shown or "none: no repository has a language")


def quote_ident(conn: AnyConnection, identifier: str) -> str:
    """``identifier`` quoted for ``conn``'s server (only ever called with whitelisted names)."""
    from .libpq import Connection as LibpqConnection

    if isinstance(conn, LibpqConnection):
        return conn.quote_ident(identifier)
    from psycopg import sql

    from .statements import render

    return render(conn, sql.Identifier(identifier))
