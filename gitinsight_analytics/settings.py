"""Settings read from the environment: the only module besides the CLI that looks at ``os.environ``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .exceptions import ConfigurationError, ValidationError
from .validation import check_bool, check_int

__all__ = ["PoolSettings", "Settings", "load_settings", "find_workspace", "PROJECT_ROOT", "POOL_PROFILES",
           "POOLER_PORT_OFFSET", "WORKSPACE_MARKER", "TEST_PAUSE_VARIABLE", "pause_point"]

#: The folder above the package: the repository in a source checkout (its tests and benchmarks use it). Nothing
#: in the package finds files through it: shipped files come from :mod:`.resources`, the rest from the workspace.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The file that makes a folder a workspace (``gitinsight init`` writes it; the repository has one).
WORKSPACE_MARKER = "schedule.yml"

DEFAULT_PORT = 54329
DEFAULT_DB_NAME = "gitinsight"
DEFAULT_CLUSTER_PORT = 54340


@dataclass(frozen=True)
class PoolSettings:
    """The engine's connection pool (psycopg_pool behind SQLAlchemy). Defaults: the spec's 20 + 30, meant for a
    long-running service process; notebook kernels, report runs and the CLI get the ``interactive`` profile."""

    size: int = 20
    max_overflow: int = 30
    pre_ping: bool = True
    recycle: int = 3600
    timeout: float = 30.0
    #: Server-side prepared statements after N executions of a query (psycopg's ``prepare_threshold``); None =
    #: never, which a pooler in transaction mode (PgBouncer < 1.21) needs.
    prepare_threshold: int | None = None
    #: Which profile the sizes came from (``interactive`` or ``service``), for messages.
    profile: str = "service"


#: Pool sizes (size, max_overflow) per ``GITINSIGHT_POOL_PROFILE``: a kernel, report run or CLI command needs a
#: few connections; a long-running service process serving many threads gets the spec's 20 + 30.
POOL_PROFILES = {"interactive": (2, 3), "service": (20, 30)}
#: The embedded server's PgBouncer listens on ``GITINSIGHT_PG_PORT`` + this unless ``GITINSIGHT_POOLER_PORT``.
POOLER_PORT_OFFSET = 10


@dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved once. ``database_url`` None means: use the embedded server."""

    home: Path
    database_url: str | None = None
    pg_bindir: Path | None = None
    pg_port: int = DEFAULT_PORT
    #: Coordinator port of the local Citus cluster (``gitinsight cluster``); worker i listens on this + i.
    cluster_port: int = DEFAULT_CLUSTER_PORT
    db_name: str = DEFAULT_DB_NAME
    pool: PoolSettings = field(default_factory=PoolSettings)
    #: The analyst's workspace (``gitinsight init``): reports, notebooks, schedule and data are found in it.
    workspace: Path = field(default_factory=Path.cwd)
    reports_dir: Path = Path("reports")
    #: The workspace's notebooks/, else the notebooks shipped with the package.
    notebooks_dir: Path = Path("notebooks")
    #: The workspace's schedule.yml, else the one shipped with the package.
    schedule_path: Path = Path("schedule.yml")
    report_retention_days: int = 30
    #: Real data imported by the main job (``gitinsight demo``); missing → the import step is skipped.
    github_ranking_dir: Path = Path("data") / "github-ranking"
    #: API-key secrets, kept outside the database (``GITINSIGHT_API_KEY_PEPPER[_FILE]``,
    #: ``GITINSIGHT_API_KEY_ENCRYPTION_KEY[_FILE]``); None = not configured. Hidden from repr.
    api_key_pepper: str | None = field(default=None, repr=False)
    api_key_encryption_key: str | None = field(default=None, repr=False)

    #: Where alert digests are e-mailed from (``GITINSIGHT_SMTP_URL``, smtp://[user:pass@]host:port?from=...);
    #: None = digests go to files only. Hidden from repr (it may hold a password).
    smtp_url: str | None = field(default=None, repr=False)

    #: WAL archiving of the embedded cluster (``GITINSIGHT_WAL_ARCHIVE``); None = keep the cluster's choice.
    wal_archive: bool | None = None
    #: Where analyses, notebooks and reports read (``GITINSIGHT_READ_URL``, e.g. the streaming replica);
    #: None = they read from the primary. Never a default to a running replica: reading a copy is opted into.
    read_url: str | None = None
    #: Port of the local streaming replica (``GITINSIGHT_REPLICA_PORT``); None = the primary's port + 1.
    replica_port: int | None = None

    # -- connection limits (issue 14): statement timeout and the PgBouncer pooler --
    #: Per-statement timeout, in seconds, of the engines made for analyses (``connect()``); 0 = none.
    statement_timeout: float = 60.0
    #: Port of the embedded server's PgBouncer (``gitinsight db pooler start``); None = GITINSIGHT_PG_PORT + 10.
    pooler_port: int | None = None
    #: Server connections PgBouncer opens per database (all its clients share them): about twice the cores of
    #: the machine the embedded server runs on; more only makes queries share the CPU and the slowest wait longest.
    pooler_pool_size: int = field(default_factory=lambda: max(4, 2 * (os.cpu_count() or 2)))
    #: Whether ``connect()`` goes through the pooler: None = when this home's pooler runs.
    use_pooler: bool | None = None

    @property
    def pooler_listen_port(self) -> int:
        return self.pooler_port if self.pooler_port is not None else self.pg_port + POOLER_PORT_OFFSET

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def wal_archive_dir(self) -> Path:
        return self.home / "wal_archive"

    @property
    def base_backups_dir(self) -> Path:
        return self.home / "base_backups"

    @property
    def replica_dir(self) -> Path:
        return self.home / "replica"


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return check_int(raw, name, low, high, allowed=f"{low}..{high}")
    except ValidationError as exc:
        raise _setting_error(exc) from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return check_bool(raw, name)
    except ValidationError as exc:
        raise _setting_error(exc) from None


def _setting_error(exc: ValidationError) -> ConfigurationError:
    """A bad environment variable as ``NAME=value is ... (allowed: ...)``."""
    return ConfigurationError(f"{exc.parameter}={exc.problem} (allowed: {exc.allowed})")


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


def find_workspace(start: Path) -> Path:
    """The workspace ``start`` is in: the nearest of it and its parents holding :data:`WORKSPACE_MARKER`, else
    ``start`` itself (a notebook kernel running in ``notebooks/`` finds the workspace above it)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / WORKSPACE_MARKER).is_file():
            return folder
    return start


def _workspace(env: Mapping[str, str]) -> Path:
    raw = env.get("GITINSIGHT_WORKSPACE")
    if not raw:
        return find_workspace(Path.cwd())
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise ConfigurationError(f"GITINSIGHT_WORKSPACE={raw!r} is not a directory "
                                 "(allowed: a folder made by `gitinsight init`)")
    return path


def _workspace_files(workspace: Path, notebooks_dir: str | None) -> dict[str, Path]:
    """Notebooks (``GITINSIGHT_NOTEBOOKS_DIR``, else the workspace's own when it has them, else the ones shipped
    with the package) and the schedule (the workspace's, else the shipped one)."""
    from . import resources

    if notebooks_dir:
        return {"notebooks_dir": Path(notebooks_dir).expanduser().resolve(),
                "schedule_path": _workspace_files(workspace, None)["schedule_path"]}
    notebooks, schedule = workspace / "notebooks", workspace / WORKSPACE_MARKER
    return {"notebooks_dir": notebooks if notebooks.is_dir() else resources.notebooks_dir(),
            "schedule_path": schedule if schedule.is_file() else resources.default_schedule()}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``env`` (default: ``os.environ``), validating every value. Paths not set
    by a variable are in the workspace (``GITINSIGHT_WORKSPACE``, else found from the current directory)."""
    env = os.environ if env is None else env
    workspace = _workspace(env)
    home = Path(env.get("GITINSIGHT_HOME") or workspace / ".gitinsight").expanduser().resolve()
    bindir_raw = env.get("GITINSIGHT_PG_BINDIR")
    bindir = Path(bindir_raw).expanduser() if bindir_raw else None
    if bindir is not None and not (bindir / "postgres").exists():
        raise ConfigurationError(
            f"GITINSIGHT_PG_BINDIR={bindir_raw!r} has no 'postgres' executable "
            "(allowed: a PostgreSQL >= 15 bin directory, e.g. the output of `pg_config --bindir`)"
        )
    pool = _pool_settings(env)
    reports = env.get("GITINSIGHT_REPORTS_DIR")
    notebooks = env.get("GITINSIGHT_NOTEBOOKS_DIR")
    ranking = env.get("GITINSIGHT_GITHUB_RANKING_DIR")
    files = _workspace_files(workspace, notebooks)
    return Settings(
        home=home,
        database_url=env.get("DATABASE_URL") or None,
        pg_bindir=bindir,
        pg_port=_int(env, "GITINSIGHT_PG_PORT", DEFAULT_PORT, 1024, 65535),
        cluster_port=_int(env, "GITINSIGHT_CLUSTER_PORT", DEFAULT_CLUSTER_PORT, 1024, 65500),
        db_name=env.get("GITINSIGHT_DB_NAME") or DEFAULT_DB_NAME,
        pool=pool,
        workspace=workspace,
        reports_dir=Path(reports).expanduser().resolve() if reports else workspace / "reports",
        notebooks_dir=files["notebooks_dir"],
        schedule_path=files["schedule_path"],
        report_retention_days=_int(env, "GITINSIGHT_REPORT_RETENTION_DAYS", 30, 1, 3650),
        github_ranking_dir=(Path(ranking).expanduser().resolve() if ranking
                            else workspace / "data" / "github-ranking"),
        wal_archive=_bool(env, "GITINSIGHT_WAL_ARCHIVE", False) if env.get("GITINSIGHT_WAL_ARCHIVE") else None,
        read_url=env.get("GITINSIGHT_READ_URL") or None,
        replica_port=_int(env, "GITINSIGHT_REPLICA_PORT", 0, 1024, 65535) or None,
        smtp_url=env.get("GITINSIGHT_SMTP_URL") or None,
        api_key_pepper=_secret(env, "GITINSIGHT_API_KEY_PEPPER"),
        api_key_encryption_key=_secret(env, "GITINSIGHT_API_KEY_ENCRYPTION_KEY"),
        **_connection_limits(env),
    )


def _pool_settings(env: Mapping[str, str]) -> PoolSettings:
    """The pool: sizes from ``GITINSIGHT_POOL_PROFILE`` (interactive by default), each overridable."""
    profile = (env.get("GITINSIGHT_POOL_PROFILE") or "interactive").strip().lower()
    if profile not in POOL_PROFILES:
        raise ConfigurationError(f"GITINSIGHT_POOL_PROFILE={profile!r} is not a profile "
                                 f"(allowed: {', '.join(POOL_PROFILES)})")
    size, overflow = POOL_PROFILES[profile]
    threshold = env.get("GITINSIGHT_PREPARE_THRESHOLD")
    return PoolSettings(
        size=_int(env, "GITINSIGHT_POOL_SIZE", size, 1, 1000),
        max_overflow=_int(env, "GITINSIGHT_MAX_OVERFLOW", overflow, 0, 1000),
        pre_ping=_bool(env, "GITINSIGHT_POOL_PRE_PING", True),
        recycle=_int(env, "GITINSIGHT_POOL_RECYCLE", 3600, -1, 86400),
        timeout=_int(env, "GITINSIGHT_POOL_TIMEOUT", 30, 1, 3600),
        prepare_threshold=(None if not threshold or threshold.strip().lower() in {"off", "none"}
                           else _int(env, "GITINSIGHT_PREPARE_THRESHOLD", 0, 0, 1000)),
        profile=profile,
    )


def _connection_limits(env: Mapping[str, str]) -> dict[str, Any]:
    """Statement timeout and pooler settings (``GITINSIGHT_STATEMENT_TIMEOUT``, ``GITINSIGHT_POOLER_*``)."""
    use = env.get("GITINSIGHT_USE_POOLER")
    port = env.get("GITINSIGHT_POOLER_PORT")
    return {
        "statement_timeout": float(_int(env, "GITINSIGHT_STATEMENT_TIMEOUT", 60, 0, 86400)),
        "pooler_port": _int(env, "GITINSIGHT_POOLER_PORT", 0, 1024, 65535) if port else None,
        "pooler_pool_size": _int(env, "GITINSIGHT_POOLER_POOL_SIZE", max(4, 2 * (os.cpu_count() or 2)), 1, 1000),
        "use_pooler": None if not use or use.strip().lower() == "auto" else _bool(env, "GITINSIGHT_USE_POOLER", False),
    }


#: Test-only: ``<checkpoint>:<folder>`` makes the process pause at that checkpoint (see :mod:`.checkpoints`).
TEST_PAUSE_VARIABLE = "GITINSIGHT_TEST_PAUSE"


def pause_point(env: Mapping[str, str] | None = None) -> tuple[str, Path] | None:
    """The checkpoint named by ``GITINSIGHT_TEST_PAUSE`` and its marker folder, or None (the normal case).

    Read on its own, not in :class:`Settings`: checkpoints sit deep in library code that is not handed settings.
    """
    raw = (os.environ if env is None else env).get(TEST_PAUSE_VARIABLE) or ""
    name, sep, folder = raw.partition(":")
    if not sep or not name or not folder:
        if raw:
            raise ConfigurationError(f"{TEST_PAUSE_VARIABLE}={raw!r} is not <checkpoint>:<folder> (test-only setting)")
        return None
    return name, Path(folder)
