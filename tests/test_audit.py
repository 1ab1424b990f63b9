"""The audit trail: state-changing CLI commands leave one audit_logs row each, also when they fail."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics import audit
from gitinsight_analytics.cli import main

DATA = Path(__file__).parent / "data" / "github_ranking"


def rows(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT action, resource_type, resource_id, user_id, details, user_agent FROM audit_logs "
            "WHERE user_agent LIKE 'gitinsight/%' ORDER BY created_at"))]


@pytest.mark.parametrize(
    ("argv", "action", "code", "outcome"),
    [
        (["db", "upgrade"], "migrate.upgrade", 0, "ok"),
        (["refresh"], "refresh", 0, "ok"),
        (["import", "github-ranking", "--no-progress", str(DATA / "mini")], "import.github-ranking", 0, "ok"),
        (["import", "github-ranking", "--no-progress", str(DATA / "malformed" / "non_numeric_stars")],
         "import.github-ranking", 1, "failed"),
        (["seed", "--scale", "tiny", "--seed", "7"], "seed", 0, "ok"),
    ],
)
def test_each_state_changing_command_writes_one_row(cli_env: Engine, capsys: pytest.CaptureFixture,
                                                    argv: list[str], action: str, code: int, outcome: str) -> None:
    seeded_before = {r["action"] for r in rows(cli_env)}
    assert main(argv) == code
    written = [r for r in rows(cli_env) if r["action"] == action]
    assert len(written) == 1 and action not in seeded_before
    details = written[0]["details"]
    assert details["outcome"] == outcome and details["command"].startswith("gitinsight")
    assert written[0]["user_agent"].startswith("gitinsight/")
    if outcome == "failed":
        assert "stars '12k'" in details["error"]
        assert capsys.readouterr().err.count("\n") == 1  # still one line for the user


def test_failed_load_is_on_record_while_its_rows_are_rolled_back(cli_env: Engine) -> None:
    assert main(["db", "upgrade"]) == 0  # the trail is not data: the seed still sees an empty database
    assert main(["seed", "--scale", "tiny"]) == 0
    assert [r["action"] for r in rows(cli_env)] == ["migrate.upgrade", "seed"]  # kept by the load
    with cli_env.connect() as conn:
        users = conn.execute(sa.text("SELECT count(*) FROM users")).scalar()
    assert main(["seed", "--scale", "tiny", "--seed", "3"]) == 2  # database not empty, no --replace
    seeds = [r["details"] for r in rows(cli_env) if r["action"] == "seed"]
    assert [d["outcome"] for d in seeds] == ["ok", "failed"]
    assert seeds[0]["rows"]["users"] == users and seeds[1]["options"] == {"scale": "tiny", "seed_value": 3,
                                                                            "replace": False}
    with cli_env.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar() == users


def test_seed_replace_keeps_the_trail_of_earlier_commands(cli_env: Engine) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["seed", "--scale", "tiny"]) == 0
    audit.record(cli_env, "keys.create", "api_key", user_id=_a_user(cli_env), details={"outcome": "ok"})
    assert main(["seed", "--scale", "tiny", "--seed", "5", "--replace"]) == 0  # other users: user_id is detached
    trail = rows(cli_env)
    assert [r["action"] for r in trail] == ["migrate.upgrade", "seed", "keys.create", "seed"]
    assert trail[2]["user_id"] is None and trail[3]["details"]["options"]["replace"] is True
    with cli_env.connect() as conn:  # and the synthetic rows were replaced, not added
        synthetic = conn.execute(sa.text("SELECT count(*) FROM audit_logs WHERE user_agent IS NULL "
                                         "OR user_agent NOT LIKE 'gitinsight/%'")).scalar()
    from gitinsight_analytics.seed.synthetic import SCALES

    assert synthetic == SCALES["tiny"].audit_logs


def _a_user(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT id FROM users ORDER BY id LIMIT 1")).scalar_one())


def test_without_audit_table_the_command_still_succeeds(cli_env: Engine, capsys: pytest.CaptureFixture) -> None:
    assert main(["db", "downgrade", "base"]) == 0
    assert "not on record" in capsys.readouterr().err
    assert main(["db", "upgrade"]) == 0
    assert [r["action"] for r in rows(cli_env)] == ["migrate.upgrade"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"pepper": "p", "name": "n"}, {"pepper": "***", "name": "n"}),
        ({"url": "postgresql://u:hunter2@h/db"}, {"url": "postgresql://u:***@h/db"}),
        ({"nested": {"encryption_key": "k", "path": Path("/x")}}, {"nested": {"encryption_key": "***", "path": "/x"}}),
        ({"when": dt.date(2026, 1, 2), "ids": (uuid.UUID(int=1),)},
         {"when": "2026-01-02", "ids": ["00000000-0000-0000-0000-000000000001"]}),
    ],
)
def test_details_are_json_without_secrets(value: dict, expected: dict) -> None:
    assert audit.json_safe(value) == expected


def test_record_joins_the_callers_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        assert audit.record(conn, "keys.create", "api_key", details={"name": "ci"})
        raise RuntimeError("rolled back")
    assert rows(engine) == []
    assert audit.record(engine, "keys.create", "api_key", details={"name": "ci"})
    assert [r["details"] for r in rows(engine)] == [{"name": "ci"}]


def test_audit_command_lists_newest_first(cli_env: Engine, capsys: pytest.CaptureFixture) -> None:
    audit.record(cli_env, "seed", "database", details={"outcome": "ok"})
    audit.record(cli_env, "backup.create", "backup", details={"outcome": "ok", "set": "b1"})
    capsys.readouterr()
    assert main(["audit", "--limit", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "backup.create" in out[0] and '"set": "b1"' in out[0] and "seed" in out[1]
    assert main(["audit", "--action", "seed"]) == 0
    assert capsys.readouterr().out.count("\n") == 1


def test_command_history_shows_the_commands_not_the_applications_events(seeded_engine: Engine) -> None:
    from gitinsight_analytics import queries

    assert queries.command_history(seeded_engine).empty  # the seed's synthetic logins, views... are not commands
    audit.record(seeded_engine, "seed", "database", details={"outcome": "ok", "command": "gitinsight seed"})
    audit.record(seeded_engine, "backup.create", "backup",
                 details={"outcome": "failed", "command": "gitinsight backup create", "error": "disk full"})
    history = queries.command_history(seeded_engine)
    assert history[["action", "outcome", "error"]].values.tolist() == [["backup.create", "failed", "disk full"],
                                                                       ["seed", "ok", ""]]
    assert queries.command_history(seeded_engine, action="seed")["action"].tolist() == ["seed"]
    assert len(queries.command_history(seeded_engine, limit=1)) == 1


def test_audit_partition_rows_counts_every_partition_exactly(seeded_engine: Engine) -> None:
    from gitinsight_analytics import queries

    with seeded_engine.begin() as conn:  # one row for the default partition
        conn.execute(sa.text("INSERT INTO audit_logs (action, resource_type, created_at) "
                             "VALUES ('login', 'user', '2041-05-05')"))
        by_partition = dict(conn.execute(sa.text(
            "SELECT tableoid::regclass::text, count(*) FROM audit_logs GROUP BY 1")).all())
    frame = queries.audit_partition_rows(seeded_engine)
    assert frame.iloc[-1]["partition"] == "audit_logs_default" and pd.isna(frame.iloc[-1]["range_start"])
    assert frame.iloc[-1]["rows"] == 1
    assert {p: n for p, n in zip(frame["partition"], frame["rows"], strict=True) if n} == by_partition
    months = frame.dropna(subset=["range_start"])
    assert months["range_start"].is_monotonic_increasing
    assert (months["range_end"] > months["range_start"]).all() and frame["rows"].sum() == sum(by_partition.values())
