"""PostgreSQL objects the models cannot express, each defined once as (create, drop) SQL.

Migrations apply these definitions; a later migration that changes an object adds a new versioned constant
(``..._V2``) and keeps the old one so that downgrades can restore it. Where an object differs from the
spec's SQL, ``docs/seed-deviations.md`` says why. By kind: ``functions`` (extensions, functions, triggers,
partitions, encryption), ``views`` (materialized views), ``access`` (role, row-level security).
"""

from __future__ import annotations

from .access import *  # noqa: F403
from .access import __all__ as _access
from .base import SqlObject
from .functions import *  # noqa: F403
from .functions import __all__ as _functions
from .views import *  # noqa: F403
from .views import __all__ as _views

__all__ = ["SqlObject", *_functions, *_views, *_access]
