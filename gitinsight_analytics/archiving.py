"""WAL archiving of the embedded cluster: the switch, persisted in a file that postgresql.conf includes.

On, ``$PGDATA/gitinsight-archive.conf`` sets ``wal_level = replica``, ``archive_mode = on`` and PostgreSQL's
``basic_archive`` module, which copies each finished WAL segment into ``$GITINSIGHT_HOME/wal_archive``, fsyncs
it, and refuses to overwrite an archived file that has different contents. Off (the default), the file is absent
and the cluster keeps ``wal_level = minimal`` for fast bulk loads. Point-in-time recovery (:mod:`.pitr`) needs it on.
The server module applies the switch; ``pitr`` reads the archive.
"""

from __future__ import annotations

from pathlib import Path

from .exceptions import ServerError

__all__ = ["ARCHIVE_CONF", "INCLUDE_LINE", "archive_settings", "conf_quote", "configured", "write_config",
           "claim", "live_state"]

ARCHIVE_CONF = "gitinsight-archive.conf"
INCLUDE_LINE = f"include_if_exists = '{ARCHIVE_CONF}'  # WAL archiving: gitinsight db start --archive"
#: Written into the archive folder: the cluster whose WAL it holds (a re-initialised cluster reuses WAL names).
SYSTEM_ID_FILE = "system_identifier"


def conf_quote(value: str) -> str:
    """``value`` as a postgresql.conf string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def archive_settings(archive_dir: Path) -> dict[str, str]:
    """The server settings of archiving into ``archive_dir``."""
    return {
        "wal_level": "replica",
        "max_wal_senders": "4",  # pg_basebackup --wal-method=stream uses two
        "archive_mode": "on",
        "archive_library": "'basic_archive'",
        "basic_archive.archive_directory": conf_quote(str(archive_dir)),
        # An idle-but-not-quite server still archives its last changes within 5 minutes (16 MB per segment).
        "archive_timeout": "'5min'",
    }


def configured(pgdata: Path) -> bool:
    """Whether the cluster is set to archive (from its next start on)."""
    return (pgdata / ARCHIVE_CONF).exists()


def write_config(pgdata: Path, archive_dir: Path, *, enabled: bool) -> Path:
    """Write (or remove) ``gitinsight-archive.conf`` and make sure postgresql.conf includes it; returns its path."""
    path = pgdata / ARCHIVE_CONF
    main_conf = pgdata / "postgresql.conf"
    if enabled and INCLUDE_LINE not in main_conf.read_text():  # clusters made before the switch existed
        with open(main_conf, "a") as handle:
            handle.write(f"\n{INCLUDE_LINE}\n")
    if not enabled:
        path.unlink(missing_ok=True)
        return path
    body = "\n".join(f"{key} = {value}" for key, value in archive_settings(archive_dir).items())
    text = f"# written by `gitinsight db start --archive`; `--no-archive` removes this file\n{body}\n"
    if not path.exists() or path.read_text() != text:
        partial = path.with_suffix(".partial")
        partial.write_text(text)
        partial.replace(path)
    return path


def claim(archive_dir: Path, system_id: str) -> None:
    """Mark ``archive_dir`` as the archive of cluster ``system_id``; refuse an archive of another cluster."""
    marker = archive_dir / SYSTEM_ID_FILE
    if marker.exists():
        owner = marker.read_text().strip()
        if owner != system_id:
            raise ServerError(
                f"{archive_dir} holds the WAL of another cluster (system identifier {owner}, this one is "
                f"{system_id}): move that folder away (with its base backups) before switching archiving on"
            )
        return
    marker.write_text(f"{system_id}\n")


def live_state(url: str) -> bool | None:
    """Whether the running server at ``url`` archives WAL; None when it cannot be asked."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT current_setting('archive_mode')").fetchone()
    except psycopg.Error:
        return None
    return row is not None and row[0] != "off"
