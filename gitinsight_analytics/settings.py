"""Settings read from the environment: the only module besides the CLI that looks at ``os.environ``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .exceptions import ConfigurationError

__all__ = ["PoolSettings", "Settings", "load_settings", "PROJECT_ROOT"]

#: The checkout this package lives in (editable install): migrations/, notebooks/ and reports/ are found from it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_PORT = 54329
DEFAULT_DB_NAME = "gitinsight"


@dataclass(frozen=True)
class PoolSettings:
    """SQLAlchemy connection pool, defaults as in the spec's engine configuration."""

    size: int = 20
    max_overflow: int = 30
    pre_ping: bool = True
    recycle: int = 3600
    timeout: float = 30.0


@dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved once. ``database_url`` None means: use the embedded server."""

    home: Path
    database_url: str | None = None
    pg_bindir: Path | None = None
    pg_port: int = DEFAULT_PORT
    db_name: str = DEFAULT_DB_NAME
    pool: PoolSettings = field(default_factory=PoolSettings)
    reports_dir: Path = PROJECT_ROOT / "reports"
    notebooks_dir: Path = PROJECT_ROOT / "notebooks"
    report_retention_days: int = 30
    #: Real data imported by the main job (``gitinsight demo``); missing → the import step is skipped.
    github_ranking_dir: Path = PROJECT_ROOT.parent / "shared" / "data" / "github-ranking"
    #: API-key secrets, kept outside the database (``GITINSIGHT_API_KEY_PEPPER[_FILE]``,
    #: ``GITINSIGHT_API_KEY_ENCRYPTION_KEY[_FILE]``); None = not configured. Hidden from repr.
    api_key_pepper: str | None = field(default=None, repr=False)
    api_key_encryption_key: str | None = field(default=None, repr=False)

    #: Where alert digests are e-mailed from (``GITINSIGHT_SMTP_URL``, smtp://[user:pass@]host:port?from=...);
    #: None = digests go to files only. Hidden from repr (it may hold a password).
    smtp_url: str | None = field(default=None, repr=False)

    #: WAL archiving of the embedded cluster (``GITINSIGHT_WAL_ARCHIVE``); None = keep the cluster's choice.
    wal_archive: bool | None = None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def wal_archive_dir(self) -> Path:
        return self.home / "wal_archive"

    @property
    def base_backups_dir(self) -> Path:
        return self.home / "base_backups"


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an integer (allowed: {low}..{high})") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name}={value} is out of range (allowed: {low}..{high})")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean (allowed: true/false, 1/0, yes/no, on/off)")


MIN_SECRET_LENGTH = 16


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """``name``, or the contents of the file ``name_FILE`` without surrounding whitespace; at least 16 characters."""
    raw, path = env.get(name) or None, env.get(f"{name}_FILE") or None
    if raw and path:
        raise ConfigurationError(f"{name} and {name}_FILE are both set (allowed: one of them)")
    if path:
        try:
            raw = Path(path).expanduser().read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"{name}_FILE={path!r} cannot be read ({exc.strerror})") from None
    if raw is not None and len(raw) < MIN_SECRET_LENGTH:
        raise ConfigurationError(f"{name} is too short (allowed: at least {MIN_SECRET_LENGTH} characters, e.g. "
                                 "python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return raw


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``env`` (default: ``os.environ``), validating every value."""
    env = os.environ if env is None else env
    home = Path(env.get("GITINSIGHT_HOME") or PROJECT_ROOT / ".gitinsight").expanduser().resolve()
    bindir_raw = env.get("GITINSIGHT_PG_BINDIR")
    bindir = Path(bindir_raw).expanduser() if bindir_raw else None
    if bindir is not None and not (bindir / "postgres").exists():
        raise ConfigurationError(
            f"GITINSIGHT_PG_BINDIR={bindir_raw!r} has no 'postgres' executable "
            "(allowed: a PostgreSQL >= 15 bin directory, e.g. the output of `pg_config --bindir`)"
        )
    pool = PoolSettings(
        size=_int(env, "GITINSIGHT_POOL_SIZE", 20, 1, 1000),
        max_overflow=_int(env, "GITINSIGHT_MAX_OVERFLOW", 30, 0, 1000),
        pre_ping=_bool(env, "GITINSIGHT_POOL_PRE_PING", True),
        recycle=_int(env, "GITINSIGHT_POOL_RECYCLE", 3600, -1, 86400),
        timeout=_int(env, "GITINSIGHT_POOL_TIMEOUT", 30, 1, 3600),
    )
    reports = env.get("GITINSIGHT_REPORTS_DIR")
    ranking = env.get("GITINSIGHT_GITHUB_RANKING_DIR")
    return Settings(
        home=home,
        database_url=env.get("DATABASE_URL") or None,
        pg_bindir=bindir,
        pg_port=_int(env, "GITINSIGHT_PG_PORT", DEFAULT_PORT, 1024, 65535),
        db_name=env.get("GITINSIGHT_DB_NAME") or DEFAULT_DB_NAME,
        pool=pool,
        reports_dir=Path(reports).expanduser().resolve() if reports else PROJECT_ROOT / "reports",
        report_retention_days=_int(env, "GITINSIGHT_REPORT_RETENTION_DAYS", 30, 1, 3650),
        github_ranking_dir=Path(ranking).expanduser().resolve() if ranking else Settings.github_ranking_dir,
        wal_archive=_bool(env, "GITINSIGHT_WAL_ARCHIVE", False) if env.get("GITINSIGHT_WAL_ARCHIVE") else None,
        smtp_url=env.get("GITINSIGHT_SMTP_URL") or None,
        api_key_pepper=_secret(env, "GITINSIGHT_API_KEY_PEPPER"),
        api_key_encryption_key=_secret(env, "GITINSIGHT_API_KEY_ENCRYPTION_KEY"),
    )
