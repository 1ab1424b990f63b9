"""Settings from the environment: every variable validated, one-line errors naming it and what is allowed."""

from __future__ import annotations

import re

import pytest

from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import ConfigurationError
from gitinsight_analytics.settings import PoolSettings, load_settings

PEPPER = "pepper-0123456789abcdef"
SECRET = "encryption-key-0123456789"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITINSIGHT_PG_BINDIR": "/nonexistent"}, "GITINSIGHT_PG_BINDIR='/nonexistent' has no 'postgres'"),
        ({"GITINSIGHT_PG_PORT": "80"}, r"GITINSIGHT_PG_PORT=80 is out of range \(allowed: 1024..65535\)"),
        ({"GITINSIGHT_PG_PORT": "abc"}, "GITINSIGHT_PG_PORT='abc' is not an integer"),
        ({"DATABASE_URL": "mysql://x@y/z"}, r"DATABASE_URL uses 'mysql' \(allowed: postgresql://"),
    ],
)
def test_bad_settings_give_one_line_errors(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["db", "url"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(message, err), err


def test_bad_bindir_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        load_settings({"GITINSIGHT_PG_BINDIR": "/nonexistent"})


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("GITINSIGHT_POOL_SIZE", "5", "size", 5),
        ("GITINSIGHT_MAX_OVERFLOW", "0", "max_overflow", 0),
        ("GITINSIGHT_POOL_PRE_PING", "false", "pre_ping", False),
        ("GITINSIGHT_POOL_RECYCLE", "600", "recycle", 600),
        ("GITINSIGHT_POOL_TIMEOUT", "7", "timeout", 7),
        ("GITINSIGHT_PREPARE_THRESHOLD", "5", "prepare_threshold", 5),
    ],
)
def test_each_setting_is_overridable(variable: str, value: str, field: str, expected: object) -> None:
    pool = load_settings({variable: value}).pool
    assert getattr(pool, field) == expected
    assert getattr(PoolSettings(), field) != expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [("GITINSIGHT_POOL_SIZE", "0"), ("GITINSIGHT_POOL_SIZE", "many"), ("GITINSIGHT_POOL_PRE_PING", "perhaps"),
     ("GITINSIGHT_POOL_PROFILE", "huge"), ("GITINSIGHT_STATEMENT_TIMEOUT", "-1"),
     ("GITINSIGHT_POOLER_PORT", "80"), ("GITINSIGHT_USE_POOLER", "maybe")],
)
def test_bad_pool_settings_are_refused(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_settings({variable: value})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (None, None)),
        ({"GITINSIGHT_API_KEY_PEPPER": PEPPER, "GITINSIGHT_API_KEY_ENCRYPTION_KEY": SECRET}, (PEPPER, SECRET)),
        ({"GITINSIGHT_API_KEY_PEPPER": "short"}, "too short"),
        ({"GITINSIGHT_API_KEY_PEPPER": PEPPER, "GITINSIGHT_API_KEY_PEPPER_FILE": "/x"}, "both set"),
        ({"GITINSIGHT_API_KEY_ENCRYPTION_KEY_FILE": "/nonexistent/key"}, "cannot be read"),
    ],
)
def test_secret_settings(tmp_path, env: dict, expected) -> None:
    env = {"GITINSIGHT_HOME": str(tmp_path)} | env
    if isinstance(expected, str):
        with pytest.raises(ConfigurationError, match=expected):
            load_settings(env)
        return
    settings = load_settings(env)
    assert (settings.api_key_pepper, settings.api_key_encryption_key) == expected
    assert PEPPER not in repr(settings) and SECRET not in repr(settings)
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    from_file = load_settings({"GITINSIGHT_API_KEY_ENCRYPTION_KEY_FILE": str(secret_file)})
    assert from_file.api_key_encryption_key == SECRET
