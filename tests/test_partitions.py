"""Monthly audit_logs partitions: creation from the library and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from gitinsight_analytics import maintenance
from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import ValidationError


def test_cli_partitions(cli_env: Engine, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["partitions", "--months", "6"]) == 0
    out = capsys.readouterr().out
    assert out.count("audit_logs_y") >= 7 and "audit_logs_default" in out
    assert main(["partitions", "--months", "-1"]) == 2


def test_partition_range_is_validated(engine: Engine) -> None:
    import datetime as dt

    with engine.begin() as conn, pytest.raises(ValidationError, match="end: .* is before start"):
        maintenance.ensure_audit_partitions(conn, dt.date(2026, 5, 1), dt.date(2026, 1, 1))
