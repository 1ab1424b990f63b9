"""Running on Citus (distributed PostgreSQL): the schema's layout and what writers must do there.

The local cluster for development and tests is :mod:`gitinsight_analytics.cluster`.
"""

from __future__ import annotations

from .layout import distribute, distributed_tables, has_citus_policies, is_citus, sync_repository_keys, undistribute

__all__ = ["distribute", "distributed_tables", "has_citus_policies", "is_citus", "sync_repository_keys", "undistribute"]
