"""The spec's encrypt_api_key/decrypt_api_key SQL functions: pgcrypto where the server has it, a clear error where
it does not. (The key lifecycle built on them is tested in test_keys.py.)"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gitinsight_analytics.security.keys import pgcrypto_available

from .conftest import bindir_major, debian_bindir


def _secret(conn: Connection, secret: str) -> None:
    conn.execute(sa.text("SELECT set_config('app.encryption_key', :s, true)"), {"s": secret})


def test_without_pgcrypto_the_functions_say_so(engine: Engine) -> None:
    with engine.begin() as conn:
        if pgcrypto_available(conn):
            pytest.skip("this server has pgcrypto")
        assert conn.execute(sa.text("SELECT count(encrypted_key) FROM api_keys")).scalar() == 0  # column exists
        _secret(conn, "s")
        with pytest.raises(sa.exc.DBAPIError, match="pgcrypto is not available on this PostgreSQL server"):
            conn.execute(sa.text("SELECT encrypt_api_key('gik_x')"))


@pytest.mark.pgcrypto
@pytest.mark.parametrize("key", ["gik_abc", "ключ-🔑", "x' OR '1'='1"])
def test_encrypt_decrypt_round_trip(pgcrypto_engine: Engine, key: str) -> None:
    with pgcrypto_engine.begin() as conn:
        assert pgcrypto_available(conn)
        _secret(conn, "correct horse")
        encrypted = bytes(conn.execute(sa.text("SELECT encrypt_api_key(:k)"), {"k": key}).scalar_one())
        assert key.encode() not in encrypted
        assert conn.execute(sa.text("SELECT decrypt_api_key(:e)"), {"e": encrypted}).scalar_one() == key
        with pytest.raises(sa.exc.DBAPIError, match="Wrong key"), conn.begin_nested():
            _secret(conn, "wrong")
            conn.execute(sa.text("SELECT decrypt_api_key(:e)"), {"e": encrypted})


@pytest.mark.pgcrypto
def test_missing_encryption_key_is_a_clear_error(pgcrypto_engine: Engine) -> None:
    with pgcrypto_engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="app.encryption_key is not set"):
        conn.execute(sa.text("SELECT encrypt_api_key('k')"))


@pytest.mark.pgcrypto
def test_pgcrypto_server_migrates_cleanly(pgcrypto_engine: Engine) -> None:
    from gitinsight_analytics import migrate

    assert migrate.drift(pgcrypto_engine) == []
    with pgcrypto_engine.connect() as conn:
        version = int(conn.execute(sa.text("SHOW server_version_num")).scalar())
    assert version // 10000 == bindir_major(debian_bindir())
