"""Backup and restore round trip; a failed restore changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics import backups
from gitinsight_analytics.exceptions import ValidationError

from . import factories as f


def _counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM insights),"
            " (SELECT count(*) FROM user_repository_follows), (SELECT count(*) FROM audit_logs)")).one())


def test_backup_restore_round_trip(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        f.fan_out(conn)
        conn.execute(sa.text("INSERT INTO audit_logs (action, resource_type, created_at) "
                             "VALUES ('login', 'user', '2024-03-05')"))
    before = _counts(engine)
    dump = backups.backup(engine, tmp_path / "b" / "x.dump")
    assert dump.stat().st_size > 0
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM users"))
        conn.execute(sa.text("DELETE FROM audit_logs"))
    assert _counts(engine) == (0, 0, 0, 0)
    backups.restore(engine, dump)
    assert _counts(engine) == before
    from gitinsight_analytics import migrate

    assert migrate.drift(engine) == []


def test_restore_of_a_missing_file_is_refused(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="path: .* is not a file"):
        backups.restore(engine, tmp_path / "nope.dump")


def test_failed_restore_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    from gitinsight_analytics.exceptions import GitInsightError

    with engine.begin() as conn:
        f.fan_out(conn)
    dump = backups.backup(engine, tmp_path / "ok.dump")
    broken = tmp_path / "broken.dump"
    broken.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])  # truncated archive
    before = _counts(engine)
    with pytest.raises(GitInsightError, match="failed"):
        backups.restore(engine, broken)
    assert _counts(engine) == before
