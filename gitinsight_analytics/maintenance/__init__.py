"""Routine upkeep: refreshing the materialized views (``refresh``) and the audit_logs partitions
(``partitions``)."""
