"""Report parameters: declared per notebook, validated before any kernel starts.

Each notebook has one cell tagged ``parameters`` holding the defaults (the single source of default values);
:data:`SPECS` declares, for each notebook, every parameter's type and allowed values. ``-p KEY VALUE`` values
arrive as strings and are converted here; an unknown name or a bad value raises
:class:`~gitinsight_analytics.exceptions.ValidationError` (exit code 2) naming the parameter and what is allowed.
Values that must exist in the data (a language, a repository, a user, an insight type, a model version) are
looked up with bound parameters, so a hostile string is only ever compared, never executed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..exceptions import ValidationError
from ..models import Insight, User
from ..queries.compare import ALIGNS, METRICS, resolve_repositories
from ..queries.dashboard import most_followed_user
from ..queries.stats import resolve_repository
from ..validation import check_int, check_number, parse_date, resolve_language

__all__ = ["Param", "SPECS", "notebook_defaults", "validate_parameters", "check_in_data", "most_followed_user",
           "NONE_WORDS"]

Kind = Literal["int", "float", "str", "date", "choice"]
Lookup = Literal["language", "repository", "repositories", "user", "insight_type", "model_version"]

#: Strings that mean "not set" for an optional parameter on the command line.
NONE_WORDS = frozenset({"", "none", "null"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Param:
    """One notebook parameter: its type, bounds or choices, and whether it must exist in the data."""

    name: str
    kind: Kind
    help: str
    optional: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    lookup: Lookup | None = None
    max_length: int = 255

    def allowed(self) -> str:
        if self.kind == "choice":
            text = ", ".join(self.choices)
        elif self.kind in {"int", "float"}:
            text = f"{self.kind} {_num(self.low)}..{_num(self.high)}"
        elif self.kind == "date":
            text = "a date YYYY-MM-DD"
        elif self.lookup:
            text = f"{_LOOKUP_WORDS[self.lookup]} in the data"
        else:
            text = f"text up to {self.max_length} characters"
        return text + (", or none" if self.optional else "")

    def convert(self, raw: Any) -> Any:
        """``raw`` (a CLI string or a Python/YAML value) as this parameter's type, or ValidationError."""
        if raw is None or (self.optional and isinstance(raw, str) and raw.strip().lower() in NONE_WORDS):
            return self._none()
        if self.kind == "int":
            return self._bounded(_to_int(raw, self))
        if self.kind == "float":
            return self._bounded(_to_float(raw, self))
        if self.kind == "date":
            return _to_date(raw, self)
        text = str(raw)
        if self.kind == "choice":
            if text not in self.choices:
                raise ValidationError(self.name, f"{text!r} is not allowed", self.allowed())
            return text
        if text.strip() == "":
            return self._none()
        if len(text) > self.max_length or _CONTROL.search(text):
            raise ValidationError(self.name, "too long or contains control characters", self.allowed())
        return text

    def _none(self) -> None:
        if not self.optional:
            raise ValidationError(self.name, "a value is required", self.allowed())
        return None

    def _bounded(self, value: float) -> Any:
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValidationError(self.name, f"{value} is out of range", self.allowed())
        return value


_LOOKUP_WORDS = {
    "language": "a repository language",
    "repository": "a repository full_name (owner/name)",
    "repositories": "2 to 10 repositories owner/name, comma-separated,",
    "user": "a username",
    "insight_type": "an insight type",
    "model_version": "a model version",
}


def _num(value: float | None) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else str(value))


def _to_int(raw: Any, param: Param) -> int:
    return check_int(raw, param.name, allowed=param.allowed())


def _to_float(raw: Any, param: Param) -> float:
    return check_number(raw, param.name, allowed=param.allowed())


def _to_date(raw: Any, param: Param) -> str:
    """Dates travel to the kernel as ISO strings (papermill parameters are JSON)."""
    day = parse_date(raw.strip() if isinstance(raw, str) else raw, param.name, allowed=param.allowed())
    assert day is not None  # None was handled by Param.convert
    return day.isoformat()


_LANGUAGE = Param("language", "str", "only repositories in this language; none = all", optional=True,
                  lookup="language", max_length=50)
_LIMIT = Param("limit", "int", "how many rows to show", low=1, high=200)

#: Every report's parameters. Names must match the notebook's ``parameters`` cell (a test checks it).
SPECS: dict[str, tuple[Param, ...]] = {
    "trending": (
        Param("window_days", "int", "length of the window in days", low=1, high=365),
        _LANGUAGE,
        Param("as_of", "date", "last day of the window; none = the latest day in the data", optional=True),
        _LIMIT,
        Param("min_confidence", "float", "count only insights at least this confident", optional=True,
              low=0, high=1),
    ),
    "repository_stats": (
        Param("full_name", "str", "one repository (owner/name); none = a leaderboard", optional=True,
              lookup="repository"),
        _LANGUAGE,
        _LIMIT,
    ),
    "confidence": (
        Param("insight_type", "str", "only this insight type; none = all", optional=True, lookup="insight_type",
              max_length=50),
        Param("model_version", "str", "only this model version; none = all", optional=True,
              lookup="model_version", max_length=50),
        Param("threshold", "float", "confidence below this counts as low", low=0.01, high=1),
        Param("freq", "choice", "bucket size of the drift chart", choices=("day", "week", "month")),
    ),
    "calibration": (
        Param("insight_type", "str", "only this insight type; none = all", optional=True, lookup="insight_type",
              max_length=50),
        Param("n_bootstrap", "int", "bootstrap resamples of the version comparison", low=100, high=100_000),
    ),
    "dashboard": (
        Param("username", "str", "whose followed repositories; none = the user following the most",
              optional=True, lookup="user"),
    ),
    "operations": (
        Param("freq", "choice", "bucket size of the throughput chart", choices=("day", "week", "month")),
        Param("window_days", "int", "days of job history in the throughput chart", low=1, high=365),
        Param("limit", "int", "how many recent failures to list", low=1, high=200),
    ),
    "compare": (
        Param("repos", "str", "2 to 10 repositories owner/name, comma-separated; none = the 3 most starred",
              optional=True, lookup="repositories", max_length=1000),
        Param("metric", "choice", "what to compare", choices=tuple(METRICS)),
        Param("align", "choice", "x axis: calendar dates, or days since first seen", choices=ALIGNS),
        Param("start", "date", "first snapshot day; none = the start of the history", optional=True),
        Param("end", "date", "last snapshot day; none = the end of the history", optional=True),
    ),
    "getting-started": (
        _LANGUAGE,
        Param("search_text", "str", "free text matched against repository names (a bound parameter)",
              max_length=100),
        Param("limit", "int", "how many rows the examples return", low=1, high=100),
    ),
}


def notebook_defaults(path: Path) -> dict[str, Any]:
    """Names and default values of the notebook's ``parameters`` cell (parsed, never executed)."""
    import ast

    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValidationError("notebook", f"{path.name} has {len(cells)} cells tagged 'parameters'", "exactly one")
    defaults: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            defaults[node.targets[0].id] = ast.literal_eval(node.value)
    return defaults


def validate_parameters(name: str, raw: Mapping[str, Any], *, engine: Engine | None = None) -> dict[str, Any]:
    """Converted, checked values of ``raw`` for report ``name`` (only those given; defaults stay in the notebook).

    With ``engine``, values that must exist in the data are looked up too (see :func:`check_in_data`).
    """
    if name not in SPECS:
        raise ValidationError("report", f"unknown report {name!r}", ", ".join(sorted(SPECS)))
    spec = {p.name: p for p in SPECS[name]}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in spec:
            raise ValidationError(key, f"unknown parameter of report {name!r}", ", ".join(spec))
        values[key] = spec[key].convert(value)
    if name == "repository_stats" and values.get("full_name") and values.get("language"):
        raise ValidationError("full_name", "give full_name or language, not both", "one of them")
    if engine is not None:
        check_in_data(name, values, engine)
    return values


def _lookup(conn: Connection, param: Param, value: str) -> str:
    """The value as spelled in the database, or ValidationError (the query layer's rules where it has them)."""
    if param.lookup == "language":
        return resolve_language(conn, value, param.name) or value
    if param.lookup == "repository":
        return resolve_repository(conn, value, param.name)[1]
    if param.lookup == "repositories":
        try:
            resolve_repositories(conn, value)
        except ValidationError as exc:
            raise ValidationError(param.name, exc.problem, exc.allowed) from None
        return value
    column = {"user": User.username, "insight_type": Insight.type, "model_version": Insight.model_version}[
        param.lookup or "user"]
    if conn.execute(sa.select(sa.literal(1)).where(column == value).limit(1)).first() is not None:
        return value
    known = conn.execute(sa.select(column).where(column.is_not(None)).distinct().order_by(column).limit(12))
    examples = ", ".join(str(v) for v in known.scalars()) or "none in the database yet"
    raise ValidationError(param.name, f"{value!r} is not in the data",
                          f"{_LOOKUP_WORDS[param.lookup or 'user']}, e.g. {examples}")


def check_in_data(name: str, values: dict[str, Any], engine: Engine) -> None:
    """Check lookup parameters against the database (bound parameters only); fix their spelling in ``values``."""
    lookups = [p for p in SPECS[name] if p.lookup is not None and values.get(p.name) is not None]
    if not lookups:
        return
    with engine.connect() as conn:
        for param in lookups:
            values[param.name] = _lookup(conn, param, values[param.name])


