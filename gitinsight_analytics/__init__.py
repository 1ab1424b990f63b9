"""GitInsight Analytics: GitHub repository analytics on PostgreSQL, with a notebook workbench.

Importing the package has no side effects; :func:`connect` resolves settings, starts the embedded server if
no ``DATABASE_URL`` is set, and returns a pooled engine. The names below are loaded on first use, so a command
that needs no database (``gitinsight --help``) does not pay for SQLAlchemy and psycopg.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .db import connect, make_engine
    from .exceptions import GitInsightError, ValidationError
    from .settings import Settings, load_settings

__all__ = ["connect", "make_engine", "load_settings", "Settings", "GitInsightError", "ValidationError", "__version__"]

__version__ = "0.1.0"

_LAZY = {"connect": "db", "make_engine": "db", "GitInsightError": "exceptions", "ValidationError": "exceptions",
         "Settings": "settings", "load_settings": "settings"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
