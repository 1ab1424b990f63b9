"""Point-in-time recovery of the embedded cluster: base backups (``base``) and recovery to a timestamp
(``recover``), from the WAL that the server's archiving switch (:mod:`gitinsight_analytics.archiving`) collects."""
