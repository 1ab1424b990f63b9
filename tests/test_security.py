"""API keys: hashes only, pgcrypto encryption where the server has it, a clear error where it does not."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics.exceptions import PgcryptoUnavailable
from gitinsight_analytics.security import (
    decrypt_api_key,
    encrypt_api_key,
    generate_api_key,
    hash_api_key,
    pgcrypto_available,
)


def test_hash_is_stable_and_not_the_key() -> None:
    key = generate_api_key()
    assert key.startswith("gik_") and len(key) > 40
    assert hash_api_key(key) == hash_api_key(key) and len(hash_api_key(key)) == 64
    assert key not in hash_api_key(key) and generate_api_key() != key


def test_without_pgcrypto_the_feature_says_so(engine: Engine) -> None:
    with engine.begin() as conn:
        if pgcrypto_available(conn):
            pytest.skip("this server has pgcrypto")
        with pytest.raises(PgcryptoUnavailable, match="pgcrypto is not available on this PostgreSQL server"):
            encrypt_api_key(conn, "gik_x", secret="s")
        # the column exists regardless
        assert conn.execute(sa.text("SELECT count(encrypted_key) FROM api_keys")).scalar() == 0
        with pytest.raises(sa.exc.DBAPIError, match="pgcrypto is not available on this PostgreSQL server"):
            conn.execute(sa.text("SELECT encrypt_api_key('gik_x')"))


@pytest.mark.pgcrypto
@pytest.mark.parametrize("key", ["gik_abc", "ключ-🔑", "x' OR '1'='1"])
def test_encrypt_decrypt_round_trip(pgcrypto_engine: Engine, key: str) -> None:
    with pgcrypto_engine.begin() as conn:
        assert pgcrypto_available(conn)
        user = conn.execute(sa.text("INSERT INTO users (github_id, username) VALUES (1, 'u') RETURNING id")).scalar()
        encrypted = encrypt_api_key(conn, key, secret="correct horse")
        assert key.encode() not in encrypted
        conn.execute(sa.text("INSERT INTO api_keys (user_id, name, key_hash, encrypted_key) VALUES (:u, 'k', :h, :e)"),
                     {"u": user, "h": hash_api_key(key), "e": encrypted})
        stored = conn.execute(sa.text("SELECT encrypted_key FROM api_keys")).scalar_one()
        assert decrypt_api_key(conn, stored, secret="correct horse") == key
        with pytest.raises(sa.exc.DBAPIError, match="Wrong key"):
            with conn.begin_nested():
                decrypt_api_key(conn, stored, secret="wrong")


@pytest.mark.pgcrypto
def test_missing_encryption_key_is_a_clear_error(pgcrypto_engine: Engine) -> None:
    with pgcrypto_engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="app.encryption_key is not set"):
        conn.execute(sa.text("SELECT encrypt_api_key('k')"))


@pytest.mark.pgcrypto
def test_pgcrypto_server_migrates_cleanly(pgcrypto_engine: Engine) -> None:
    from gitinsight_analytics import migrate

    assert migrate.drift(pgcrypto_engine) == []
    with pgcrypto_engine.connect() as conn:
        assert conn.execute(sa.text("SHOW server_version_num")).scalar().startswith("15")
