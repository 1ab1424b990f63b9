"""Keys and access: row-level security sessions (``rls``), API keys (``keys``) and their token format (``tokens``).

The names a service needs are re-exported here: ``as_user`` runs a block as one user under row-level security.
"""

from __future__ import annotations

from .rls import USER_ID_SETTING, as_user, check_rls_bypass

__all__ = ["as_user", "check_rls_bypass", "USER_ID_SETTING"]
