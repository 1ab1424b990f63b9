"""Base backups of the embedded cluster (pg_basebackup), the starting points of point-in-time recovery.

Each backup is a plain-format copy of the data directory with the WAL it needs (``--wal-method=stream``) and a
manifest, checked with pg_verifybackup, in ``<folder>/<UTC stamp>/``; ``<folder>/<UTC stamp>.json`` next to it
records when it started and ended (the server's clock) and its WAL range. The JSON is written last: a folder
without one is not a backup.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import server
from ..exceptions import ConfigurationError, RecoveryError
from ..pgproc import bindir, hand_to_server_user, run
from ..settings import Settings

__all__ = ["BaseBackup", "take_base_backup", "base_backups", "server_query"]


@dataclass(frozen=True)
class BaseBackup:
    """One verified base backup; recovery can reach any time after ``finished_at`` that the WAL archive covers."""

    name: str
    path: Path
    started_at: dt.datetime
    finished_at: dt.datetime
    start_lsn: str
    stop_lsn: str
    timeline: int
    system_identifier: str
    pg_version: str

    def to_json(self) -> str:
        data = asdict(self) | {"path": str(self.path), "started_at": self.started_at.isoformat(),
                               "finished_at": self.finished_at.isoformat()}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, path: Path) -> BaseBackup:
        data = json.loads(path.read_text())
        return cls(**data | {"path": path.with_suffix(""), "started_at": dt.datetime.fromisoformat(data["started_at"]),
                             "finished_at": dt.datetime.fromisoformat(data["finished_at"])})


def server_query(url: str, query: str) -> tuple:
    """One row of ``query`` on the server at ``url`` (autocommit)."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return tuple(row)


def base_backups(folder: Path) -> list[BaseBackup]:
    """The complete backups in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [BaseBackup.from_json(p) for p in folder.glob("*.json") if p.with_suffix("").is_dir()]
    return sorted(found, key=lambda b: b.finished_at)


def _wal_range(backup_dir: Path) -> tuple[str, str, int]:
    manifest = json.loads((backup_dir / "backup_manifest").read_text())
    ranges = manifest["WAL-Ranges"]
    return ranges[0]["Start-LSN"], ranges[-1]["End-LSN"], int(ranges[-1]["Timeline"])


def take_base_backup(settings: Settings, *, folder: Path | None = None, timeout: float = 3600) -> BaseBackup:
    """Back up the running embedded cluster into ``folder`` (default ``$GITINSIGHT_HOME/base_backups``).

    Refused when ``DATABASE_URL`` is set or WAL archiving is off: without archived WAL after it, a base backup
    can only be restored to its own end. A failed backup leaves nothing behind.
    """
    if settings.database_url:
        raise ConfigurationError("DATABASE_URL is set: `gitinsight backup base` backs up the embedded server only "
                                 "(external servers: docs/operations.md, Point-in-time recovery)")
    folder = Path(folder or settings.base_backups_dir).expanduser().resolve()
    state = server.start(settings)
    url = server.server_url(settings, state.port, "postgres")
    mode, = server_query(url, "SELECT current_setting('archive_mode')")
    if mode == "off":
        raise ConfigurationError("WAL archiving is off, so a base backup could not be recovered to any later "
                                 "time: switch it on first with `gitinsight db start --archive`")
    binaries = bindir(settings)
    name = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    final, record = folder / name, folder / f"{name}.json"
    if final.exists() or record.exists():
        raise RecoveryError(f"base backup {final} already exists: try again in a second")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    hand_to_server_user(folder)
    partial = folder / f".{name}.partial"
    try:
        started, = server_query(url, "SELECT clock_timestamp()")
        run([str(binaries / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(state.port), "-U", "postgres",
             "--no-password", "-D", str(partial), "--format=plain", "--wal-method=stream",
             "--checkpoint=fast", "--manifest-checksums=CRC32C", "--label", f"gitinsight {name}"],
            "pg_basebackup", timeout=timeout)
        finished, system_id = server_query(url, "SELECT clock_timestamp(), system_identifier::text "
                                "FROM pg_control_system()")
        run([str(binaries / "pg_verifybackup"), "--quiet", str(partial)], "pg_verifybackup",
            timeout=timeout)
        start_lsn, stop_lsn, timeline = _wal_range(partial)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    backup = BaseBackup(name=name, path=final, started_at=started, finished_at=finished, start_lsn=start_lsn,
                        stop_lsn=stop_lsn, timeline=timeline, system_identifier=system_id,
                        pg_version=(final / "PG_VERSION").read_text().strip())
    partial_record = folder / f".{name}.json.partial"
    partial_record.write_text(backup.to_json())
    partial_record.replace(record)
    return backup
