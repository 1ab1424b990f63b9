"""GitInsight Analytics: GitHub repository analytics on PostgreSQL, with a notebook workbench.

Importing the package has no side effects; :func:`connect` resolves settings, starts the embedded server if
no ``DATABASE_URL`` is set, and returns a pooled engine.
"""

from __future__ import annotations

from .db import connect, make_engine
from .exceptions import GitInsightError, ValidationError
from .settings import Settings, load_settings

__all__ = ["connect", "make_engine", "load_settings", "Settings", "GitInsightError", "ValidationError", "__version__"]

__version__ = "0.1.0"
