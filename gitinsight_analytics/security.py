"""API keys (stored only as hashes), pgcrypto encryption, and row-level-security sessions."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import uuid
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .exceptions import PgcryptoUnavailable

__all__ = [
    "generate_api_key",
    "hash_api_key",
    "pgcrypto_available",
    "encrypt_api_key",
    "decrypt_api_key",
    "as_application_user",
]

KEY_PREFIX = "gik_"


def generate_api_key(rng: secrets.SystemRandom | None = None) -> str:
    """A new random API key; show it once, store only :func:`hash_api_key` of it."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of the key: what ``api_keys.key_hash`` holds (64 characters)."""
    return hashlib.sha256(key.encode()).hexdigest()


def pgcrypto_available(conn: Connection) -> bool:
    """Whether pgcrypto is installed in this database (the migration installs it where the server has it)."""
    return bool(conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto'")).scalar())


def _require_pgcrypto(conn: Connection) -> None:
    if not pgcrypto_available(conn):
        raise PgcryptoUnavailable(
            "pgcrypto is not available on this PostgreSQL server, so API keys cannot be encrypted "
            "(use a server with pgcrypto, e.g. GITINSIGHT_PG_BINDIR=$(pg_config --bindir))"
        )


def _with_secret(conn: Connection, secret: str) -> None:
    conn.execute(text("SELECT set_config('app.encryption_key', :s, true)"), {"s": secret})


def encrypt_api_key(conn: Connection, key: str, *, secret: str) -> bytes:
    """``encrypt_api_key(key)`` of the spec, with the secret set for this transaction only."""
    _require_pgcrypto(conn)
    _with_secret(conn, secret)
    return bytes(conn.execute(text("SELECT encrypt_api_key(:k)"), {"k": key}).scalar_one())


def decrypt_api_key(conn: Connection, encrypted: bytes, *, secret: str) -> str:
    _require_pgcrypto(conn)
    _with_secret(conn, secret)
    return conn.execute(text("SELECT decrypt_api_key(:e)"), {"e": encrypted}).scalar_one()


@contextlib.contextmanager
def as_application_user(conn: Connection, user_id: uuid.UUID | str) -> Iterator[Connection]:
    """Run as ``application_role`` for ``user_id`` within the current transaction (RLS applies)."""
    conn.execute(text("SET LOCAL ROLE application_role"))
    conn.execute(text("SELECT set_config('app.current_user_id', :u, true)"), {"u": str(user_id)})
    try:
        yield conn
    finally:
        conn.execute(text("RESET ROLE"))
