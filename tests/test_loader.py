"""The generic COPY loader with hand-made rows: escaping, NULLs, replace semantics across dependent tables."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gitinsight_analytics.exceptions import DataExistsError
from gitinsight_analytics.seed.copy_stream import CopySource, copy_escape, format_copy_rows
from gitinsight_analytics.seed.loader import bulk_load

COLUMNS = ("id", "github_id", "username", "bio", "created_at")
AWKWARD = ["tab\there", "new\nline", "back\\slash", "carriage\rreturn", "\\N", "emoji 🦀 and 数据", None, ""]


def users_source(values: list[str | None]) -> CopySource:
    rows = [(uuid.UUID(int=i + 1), 1000 + i, f"user{i}", bio, "2026-01-01T00:00:00Z") for i, bio in enumerate(values)]
    return CopySource("users", COLUMNS, lambda: iter([format_copy_rows(rows)]), len(rows))


@pytest.mark.parametrize("value, expected",
                         [(None, "\\N"), (True, "t"), ("a\tb", "a\\tb"), ("x\\y", "x\\\\y"), (3, "3")])
def test_copy_escape(value: object, expected: str) -> None:
    assert copy_escape(value) == expected


@pytest.mark.parametrize("defer", [True, False])
def test_awkward_text_survives_the_round_trip(engine: Engine, defer: bool) -> None:
    result = bulk_load(engine, [users_source(AWKWARD)], progress=False, defer_indexes=defer)
    assert result.rows == {"users": len(AWKWARD)}
    with engine.connect() as conn:
        bios = conn.execute(text("SELECT bio FROM users ORDER BY github_id")).scalars().all()
    assert bios == AWKWARD


def test_replace_truncates_tables_that_reference_the_targets(engine: Engine) -> None:
    bulk_load(engine, [users_source(["a", "b"])], progress=False)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO repositories (github_id, name, full_name, url, clone_url, owner_id) "
                          "SELECT 1, 'r', 'user0/r', 'u', 'c', id FROM users WHERE username = 'user0'"))
    with pytest.raises(DataExistsError, match="repositories"):
        bulk_load(engine, [users_source(["c"])], progress=False)
    bulk_load(engine, [users_source(["c"])], progress=False, replace=True)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM repositories")).scalar() == 0
        assert conn.execute(text("SELECT array_agg(bio) FROM users")).scalar() == ["c"]
