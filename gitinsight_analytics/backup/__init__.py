"""Logical backups: backup sets (pg_dump + manifest of counts and checksums), their restore and its verification.

``sets`` writes, lists and prunes sets; ``facts`` reads counts, checksums, policies and roles from a database;
``restore`` loads a set in one transaction; ``verify`` checks the result against the manifest. The client
programs come from :func:`gitinsight_analytics.pgproc.pg_tool`.
"""
