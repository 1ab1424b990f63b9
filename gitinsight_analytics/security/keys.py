"""The API-key lifecycle: create (the key is returned once), verify, list, revoke.

Only a hash of each key is stored (:mod:`.keytokens`), looked up by indexed equality and then compared with
:func:`hmac.compare_digest`. Where the database has pgcrypto and an encryption key is configured, an encrypted
copy is stored too (``encrypt_api_key`` of the spec, the secret set for that transaction only). Secrets come in
as arguments (the CLI reads them from settings); they and the keys never reach logs, audit rows or messages.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..checkpoints import checkpoint
from ..exceptions import KeyRejected, PgcryptoUnavailable, ValidationError
from .tokens import candidate_hashes, generate_key, hash_key, parse_key

__all__ = [
    "PERMISSIONS",
    "DEFAULT_PERMISSIONS",
    "ACTIVE_NAME_INDEX",
    "KeyInfo",
    "KeyRequest",
    "CreatedKey",
    "check_request",
    "create_key",
    "verify_key",
    "list_keys",
    "revoke_key",
    "decrypt_stored_key",
    "pgcrypto_available",
    "generate_key",
    "parse_key",
    "hash_key",
]

#: The scopes a key may carry (the synthetic seed draws from the same set).
PERMISSIONS = ("read:repositories", "read:insights", "write:analysis", "read:audit", "admin")
DEFAULT_PERMISSIONS = ("read:repositories", "read:insights")
MAX_DAYS = 36_500
_DAYS = re.compile(r"(\d{1,6})d")
#: The partial unique index that admits one active key per user and name (migration 0007).
ACTIVE_NAME_INDEX = "uq_api_keys_user_name_active"

#: A key's row with its owner and status; queries append their WHERE clause.
_SELECT = """
SELECT k.id, k.user_id, u.username, k.name, k.permissions, k.created_at, k.last_used, k.expires_at, k.key_hash,
       k.encrypted_key IS NOT NULL AS encrypted,
       CASE WHEN k.expires_at <= now() THEN 'expired' WHEN k.is_active IS NOT TRUE THEN 'revoked' ELSE 'active' END
           AS status
FROM api_keys k JOIN users u ON u.id = k.user_id
"""


@dataclass(frozen=True)
class KeyInfo:
    """One key as listed: never its hash. ``status`` is active, revoked or expired (by the database clock)."""

    id: uuid.UUID
    user_id: uuid.UUID
    username: str
    name: str
    permissions: tuple[str, ...]
    created_at: dt.datetime | None
    last_used: dt.datetime | None
    expires_at: dt.datetime | None
    encrypted: bool
    status: str


@dataclass(frozen=True)
class KeyRequest:
    """Validated options of a new key. ``expires`` is an absolute time or a number of days from now."""

    name: str
    permissions: tuple[str, ...]
    expires: dt.datetime | int | None


@dataclass(frozen=True)
class CreatedKey:
    """The new key (shown once, hidden from repr), its row, and notes on the encrypted copy."""

    key: str = field(repr=False)
    info: KeyInfo
    notes: tuple[str, ...] = ()


def _info(row: Any) -> KeyInfo:
    m = row._mapping
    return KeyInfo(m["id"], m["user_id"], m["username"], m["name"], tuple(m["permissions"] or ()), m["created_at"],
                   m["last_used"], m["expires_at"], bool(m["encrypted"]), m["status"])


def _parse_expiry(expires: str | dt.datetime | None) -> dt.datetime | int | None:
    if expires is None or isinstance(expires, dt.datetime):
        return expires if expires is None or expires.tzinfo else expires.replace(tzinfo=dt.UTC)
    raw = expires.strip()
    if raw.lower() in {"", "never"}:
        return None
    allowed = "a date or time such as 2027-01-01 or 2027-01-01T12:00+02:00 (UTC without offset), Nd such as 90d, never"
    if match := _DAYS.fullmatch(raw):
        days = int(match.group(1))
        if not 1 <= days <= MAX_DAYS:
            raise ValidationError("expires", f"{days} days is out of range", f"1d..{MAX_DAYS}d")
        return days
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError("expires", f"{raw!r} is not a date, time or number of days", allowed) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def check_request(*, name: str, permissions: Iterable[str] | str = DEFAULT_PERMISSIONS,
                  expires: str | dt.datetime | None = None) -> KeyRequest:
    """Validate a new key's options without a database (the CLI calls this before connecting)."""
    name = name.strip()
    if not name or len(name) > 255:
        raise ValidationError("name", "must not be empty" if not name else "is longer than 255 characters",
                              "1..255 characters")
    wanted = [p.strip() for p in permissions.split(",")] if isinstance(permissions, str) else list(permissions)
    wanted = [p for p in wanted if p]
    unknown = [p for p in wanted if p not in PERMISSIONS]
    if unknown or not wanted:
        problem = f"unknown permission {unknown[0]!r}" if unknown else "at least one permission is needed"
        raise ValidationError("permissions", problem, ", ".join(PERMISSIONS))
    return KeyRequest(name, tuple(p for p in PERMISSIONS if p in wanted), _parse_expiry(expires))


def _resolve_user(conn: Connection, user: str) -> tuple[uuid.UUID, str]:
    """The one user whose username or id is ``user``; ValidationError when none or several match."""
    try:
        as_id: uuid.UUID | None = uuid.UUID(user)
    except ValueError:
        as_id = None
    rows = conn.execute(text("SELECT id, username FROM users WHERE username = :u OR id = CAST(:i AS uuid) "
                             "ORDER BY created_at LIMIT 5"), {"u": user, "i": as_id}).all()
    if not rows:
        raise ValidationError("user", f"no user with username or id {user!r}", "an existing username or user id")
    if len(rows) > 1:
        ids = ", ".join(str(r.id) for r in rows)
        raise ValidationError("user", f"{user!r} names several users ({ids})", "one of their ids")
    return rows[0].id, rows[0].username


def pgcrypto_available(conn: Connection) -> bool:
    """Whether pgcrypto is installed in this database (the migration installs it where the server has it)."""
    return bool(conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pgcrypto'")).scalar())


def _encrypt(conn: Connection, key: str, encryption_key: str | None) -> tuple[bytes | None, str | None]:
    """The encrypted copy where possible, else None and a note saying why."""
    if not pgcrypto_available(conn):
        return None, "no encrypted copy stored: this PostgreSQL server has no pgcrypto (only the hash is kept)"
    if not encryption_key:
        return None, ("no encrypted copy stored: GITINSIGHT_API_KEY_ENCRYPTION_KEY is not set "
                      "(only the hash is kept)")
    conn.execute(text("SELECT set_config('app.encryption_key', :s, true)"), {"s": encryption_key})
    encrypted = bytes(conn.execute(text("SELECT encrypt_api_key(:k)"), {"k": key}).scalar_one())
    conn.execute(text("SELECT set_config('app.encryption_key', '', true)"))
    return encrypted, None


def create_key(engine: Engine, user: str, *, name: str, permissions: Iterable[str] | str = DEFAULT_PERMISSIONS,
               expires: str | dt.datetime | None = None, pepper: str | None = None,
               encryption_key: str | None = None) -> CreatedKey:
    """Make a key for ``user`` (username or id) in one transaction; the returned key is the only copy in clear.

    ``expires`` must lie in the future by the database clock. Where pgcrypto is missing or no
    ``encryption_key`` is given, no encrypted copy is stored and a note says so.
    """
    request = check_request(name=name, permissions=permissions, expires=expires)
    key = generate_key()
    with engine.begin() as conn:
        user_id, _ = _resolve_user(conn, user)
        days, at = (request.expires, None) if isinstance(request.expires, int) else (None, request.expires)
        expires_at, future = conn.execute(text(
            "SELECT e, e > now() FROM (SELECT CASE WHEN CAST(:d AS integer) IS NULL THEN CAST(:a AS timestamptz) "
            "ELSE now() + make_interval(days => CAST(:d AS integer)) END AS e) s"), {"d": days, "a": at}).one()
        if expires_at is not None and not future:
            raise ValidationError("expires", f"{expires_at:%Y-%m-%d %H:%M%z} is not in the future", "a later time")
        # An expired key gives up its name (it stays expired); the unique index uq_api_keys_user_name_active then
        # admits one active key per user and name, even when two creates run at once.
        conn.execute(text("UPDATE api_keys SET is_active = false WHERE user_id = :u AND name = :n AND is_active "
                          "AND expires_at <= now()"), {"u": user_id, "n": request.name})
        clash = conn.execute(text("SELECT id FROM api_keys WHERE user_id = :u AND name = :n AND is_active LIMIT 1"),
                             {"u": user_id, "n": request.name}).scalar()
        if clash:
            raise _name_taken(request.name, clash)
        checkpoint("keys.checked")
        encrypted, note = _encrypt(conn, key, encryption_key)
        try:
            with conn.begin_nested():
                key_id = conn.execute(text(
                    "INSERT INTO api_keys (user_id, name, key_hash, permissions, expires_at, encrypted_key) "
                    "VALUES (:u, :n, :h, :p, :e, :x) RETURNING id"),
                    {"u": user_id, "n": request.name, "h": hash_key(key, pepper=pepper),
                     "p": list(request.permissions), "e": expires_at, "x": encrypted}).scalar_one()
        except IntegrityError as exc:  # another create of the same name committed first
            if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) != ACTIVE_NAME_INDEX:
                raise
            raise _name_taken(request.name, None) from None
        info = _info(conn.execute(text(_SELECT + "WHERE k.id = :i"), {"i": key_id}).one())
    return CreatedKey(key, info, (note,) if note else ())


def _name_taken(name: str, clash: uuid.UUID | None) -> ValidationError:
    return ValidationError("name", f"user already has an active key named {name!r}"
                           + (f" ({clash})" if clash else " (made just now by another command)"),
                           "a name not used by their active keys")


def verify_key(engine: Engine, key: str, *, pepper: str | None = None) -> KeyInfo:
    """The key's row if ``key`` grants access now, and ``last_used`` set; else KeyRejected (or ValidationError
    for a malformed key, raised before any database access).

    Every well-formed key takes the same path: hash the whole key, one indexed lookup, compare_digest.
    """
    key = parse_key(key)
    candidates = candidate_hashes(key, pepper=pepper)
    with engine.begin() as conn:
        row = conn.execute(text(_SELECT + "WHERE k.key_hash = ANY(:h)"), {"h": list(candidates)}).first()
        # no row: compare a stand-in of the same form, so that both outcomes do the same work
        stored = row.key_hash if row is not None else candidates[0].split(":")[0] + ":" + "0" * 64
        matches = [hmac.compare_digest(stored.encode(), c.encode()) for c in candidates]
        if row is None or not any(matches):
            raise KeyRejected("unknown", "key rejected: not a known API key")
        info = _info(row)
        if info.status == "revoked":
            raise KeyRejected("revoked", f"key rejected: key {info.id} has been revoked")
        if info.status == "expired":
            raise KeyRejected("expired", f"key rejected: key {info.id} expired at {info.expires_at:%Y-%m-%d %H:%M%z}")
        used = conn.execute(text("UPDATE api_keys SET last_used = now() WHERE id = :i AND is_active "
                                 "AND (expires_at IS NULL OR expires_at > now()) RETURNING last_used"),
                            {"i": info.id}).scalar()
        if used is None:  # revoked between the lookup and now
            raise KeyRejected("revoked", f"key rejected: key {info.id} has been revoked")
    return replace(info, last_used=used)


def list_keys(engine: Engine, user: str) -> list[KeyInfo]:
    """The keys of ``user`` (username or id), oldest first, with their status; never the hashes."""
    with engine.connect() as conn:
        user_id, _ = _resolve_user(conn, user)
        rows = conn.execute(text(_SELECT + "WHERE k.user_id = :u ORDER BY k.created_at, k.name"),
                            {"u": user_id}).all()
    return [_info(r) for r in rows]


def _key_id(key_id: str | uuid.UUID) -> uuid.UUID:
    try:
        return uuid.UUID(str(key_id))
    except ValueError:
        raise ValidationError("key_id", f"{key_id!r} is not a key id", "an id shown by `gitinsight keys list`") \
            from None


def revoke_key(engine: Engine, key_id: str | uuid.UUID | None = None, *, user: str | None = None,
               name: str | None = None) -> tuple[KeyInfo, bool]:
    """Deactivate one key, by id or by ``user`` + ``name``; returns its row and whether it was active before."""
    by_name = user is not None or name is not None
    if (key_id is not None) == by_name or (by_name and (user is None or name is None)):
        raise ValidationError("key", "give either a key id or both --user and --name", "KEY_ID | --user U --name N")
    key_id = _key_id(key_id) if key_id is not None else None
    with engine.begin() as conn:
        if key_id is not None:
            rows = conn.execute(text(_SELECT + "WHERE k.id = :i FOR UPDATE OF k"), {"i": key_id}).all()
            if not rows:
                raise ValidationError("key_id", f"no API key with id {key_id}", "an id shown by `gitinsight keys list`")
        else:
            user_id, username = _resolve_user(conn, str(user))
            rows = conn.execute(text(_SELECT + "WHERE k.user_id = :u AND k.name = :n FOR UPDATE OF k"),
                                {"u": user_id, "n": name}).all()
            rows = ([r for r in rows if r.status == "active"] or [r for r in rows if r.status != "revoked"]
                    or rows)
            if len(rows) != 1:
                found = f"{len(rows)} keys ({', '.join(str(r.id) for r in rows)})" if rows else "no key"
                raise ValidationError("name", f"{username} has {found} named {name!r}", "a key id")
        info = _info(rows[0])
        conn.execute(text("UPDATE api_keys SET is_active = false WHERE id = :i"), {"i": info.id})
    return replace(info, status="revoked"), info.status != "revoked"


def decrypt_stored_key(engine: Engine, key_id: str | uuid.UUID, *, encryption_key: str) -> str:
    """The clear key from its encrypted copy (recovery; needs pgcrypto and the key that encrypted it)."""
    key_id = _key_id(key_id)
    with engine.begin() as conn:
        if not pgcrypto_available(conn):
            raise PgcryptoUnavailable("pgcrypto is not available on this PostgreSQL server: no encrypted copies")
        stored = conn.execute(text("SELECT encrypted_key FROM api_keys WHERE id = :i"), {"i": key_id}).scalar()
        if stored is None:
            raise ValidationError("key_id", f"key {key_id} has no encrypted copy", "a key made with an encryption key")
        conn.execute(text("SELECT set_config('app.encryption_key', :s, true)"), {"s": encryption_key})
        try:
            with conn.begin_nested():
                return str(conn.execute(text("SELECT decrypt_api_key(:e)"), {"e": stored}).scalar_one())
        except DBAPIError:
            raise ValidationError("encryption_key", "does not decrypt this key (wrong key or corrupt data)",
                                  "the GITINSIGHT_API_KEY_ENCRYPTION_KEY the key was created with") from None
