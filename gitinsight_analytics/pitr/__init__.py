"""Point-in-time recovery of the embedded cluster: WAL archiving (``archiving``), base backups (``base``) and
recovery to a timestamp (``recover``)."""
