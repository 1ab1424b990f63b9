"""The package's exceptions: one base class, so the CLI can turn any of them into a one-line error."""

from __future__ import annotations

__all__ = [
    "GitInsightError",
    "ConfigurationError",
    "ServerError",
    "DataDirectoryInUse",
    "PortInUse",
    "CitusUnavailable",
    "DatabaseUnreachable",
    "ServerTooOld",
    "PgcryptoUnavailable",
    "ValidationError",
    "ReportOutputError",
    "DataLoadError",
    "DataExistsError",
    "RecoveryError",
    "KeyRejected",
    "LockUnavailable",
    "RestoreNotVerified",
    "RowSecurityError",
    "ReplicaLagging",
    "PoolExhausted",
    "StatementTimeout",
    "QueryFailed",
    "BackupError",
    "RestoreError",
    "PartitionError",
    "ReportSpecMismatch",
    "ReportFailed",
    "ScheduleLocked",
    "WorkerError",
    "DeliveryFailed",
]


class GitInsightError(Exception):
    """Base class: every error the package raises on purpose. Its message is one line for the user."""

    exit_code = 1


class ConfigurationError(GitInsightError):
    """A setting (environment variable or option) has a value that cannot be used."""

    exit_code = 2


class ServerError(GitInsightError):
    """The embedded PostgreSQL server could not be initialised, started or stopped."""


class DataDirectoryInUse(ServerError):
    """The data directory belongs to a server that is running but is not the one we would start."""


class PortInUse(ServerError):
    """The TCP port chosen for the embedded server is taken by another process."""


class CitusUnavailable(ServerError):
    """PostgreSQL with Citus could not be found or built."""


class DatabaseUnreachable(GitInsightError):
    """No connection could be made to the database URL."""


class ServerTooOld(GitInsightError):
    """The server is older than the oldest PostgreSQL release we support (15)."""


class PgcryptoUnavailable(GitInsightError):
    """The server has no pgcrypto extension, so API-key encryption is not available."""


class ValidationError(GitInsightError, ValueError):
    """A parameter value is outside what is allowed. The message names the parameter and the allowed values."""

    exit_code = 2

    def __init__(self, parameter: str, problem: str, allowed: str | None = None) -> None:
        self.parameter = parameter
        self.problem = problem
        self.allowed = allowed
        message = f"{parameter}: {problem}"
        if allowed:
            message += f" (allowed: {allowed})"
        super().__init__(message)


class DataLoadError(GitInsightError):
    """A data file or generated batch could not be loaded; nothing of it was written."""


class DataExistsError(GitInsightError):
    """The target database already holds data and the caller did not ask to replace it."""

    exit_code = 2


class RecoveryError(GitInsightError):
    """A base backup or point-in-time recovery could not be made, or recovery did not reach its target."""


class KeyRejected(GitInsightError):
    """A well-formed API key that does not grant access: unknown, revoked or expired (``reason`` says which)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class LockUnavailable(GitInsightError):
    """A lock the operation needs was not granted in time (``lock_timeout``); nothing was changed."""


class RestoreNotVerified(GitInsightError):
    """A backup was restored (committed) but a check afterwards failed: the data is there, not verified."""


class RowSecurityError(GitInsightError):
    """A block run as an application user could not keep, or would outlive, its role and user id."""


class ReplicaLagging(GitInsightError):
    """The read replica did not replay the primary's latest writes in time (reads would miss them)."""


class PoolExhausted(GitInsightError):
    """No pooled connection became free within the pool timeout (``GITINSIGHT_POOL_TIMEOUT``)."""


class StatementTimeout(GitInsightError):
    """A statement ran longer than the statement timeout and the server cancelled it (nothing was changed)."""


class QueryFailed(GitInsightError):
    """A statement of the quick read path (:mod:`.libpq`) failed on the server (``sqlstate``: its error code) or
    returned a value that cannot be read."""

    def __init__(self, message: str, *, sqlstate: str = "") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class BackupError(GitInsightError):
    """A backup set could not be written (pg_dump or pg_dumpall failed); nothing of it was kept."""


class RestoreError(GitInsightError):
    """A backup set could not be restored; the target database is unchanged."""


class PartitionError(GitInsightError):
    """audit_logs' partitions are not as maintenance expects (a stray table, rows without a partition, a failed
    step); nothing was changed."""


class ReportSpecMismatch(GitInsightError):
    """A report notebook cannot be run as declared (its parameters cell does not match its specification)."""


class ReportFailed(GitInsightError):
    """A report's notebook raised; its executed notebook and the index still show the failure."""


class ReportOutputError(GitInsightError):
    """A report's files could not be written (a full disk, permissions): nothing partial is left in place."""


class ScheduleLocked(GitInsightError):
    """Another ``report due`` holds the lock. Not a failure: exit code 0."""

    exit_code = 0


class WorkerError(GitInsightError):
    """Analysis worker processes ended abnormally; their jobs return to the queue when their leases expire."""


class DeliveryFailed(GitInsightError):
    """A digest could not be delivered (file or e-mail); its alerts stay unsent and are retried next run."""
