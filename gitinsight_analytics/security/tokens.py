"""The API-key token format and its hash: pure functions, no database.

A key is ``gik_`` + 43 base62 characters (32 random bytes from :mod:`secrets`) + 6 base62 characters of the
CRC32 of those 43, as GitHub's tokens are built. :func:`parse_key` checks prefix, length, alphabet and checksum,
so a mistyped or truncated key is refused before any database lookup.

``api_keys.key_hash`` holds ``hmac-sha256:<hex>`` (HMAC-SHA256 keyed with the pepper, a secret kept outside the
database) when a pepper is configured, else ``sha256:<hex>``. A key carries 256 random bits, so a fast hash is
enough: a slow password KDF (bcrypt, argon2) protects guessable secrets, and these cannot be guessed
(crates.io and GitHub store their tokens the same way).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib

from ..exceptions import ValidationError

__all__ = [
    "PREFIX",
    "KEY_LENGTH",
    "RANDOM_BYTES",
    "SCHEMES",
    "format_key",
    "checksum",
    "generate_key",
    "parse_key",
    "hash_key",
    "candidate_hashes",
]

PREFIX = "gik_"
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_BYTES = 32
BODY_CHARS = 43  # 62**43 > 2**256: every 32-byte value fits
CHECKSUM_CHARS = 6  # 62**6 > 2**32: every CRC32 fits
KEY_LENGTH = len(PREFIX) + BODY_CHARS + CHECKSUM_CHARS
#: Stored-hash schemes, the marker before the colon in ``key_hash``.
SCHEMES = ("hmac-sha256", "sha256")
_ALLOWED = "a key as printed by `gitinsight keys create` (gik_ + 49 letters and digits)"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    """The check characters of a key body (CRC-32 in base 62)."""
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_CHARS)


def format_key(raw: bytes) -> str:
    """The key spelling of 32 random bytes (the seed uses this with bytes from its own generator)."""
    if len(raw) != RANDOM_BYTES:
        raise ValueError(f"an API key is made of {RANDOM_BYTES} random bytes, got {len(raw)}")
    body = _base62(int.from_bytes(raw, "big"), BODY_CHARS)
    return PREFIX + body + checksum(body)


def generate_key() -> str:
    """A new key from the operating system's CSPRNG. Show it once; store only :func:`hash_key` of it."""
    return format_key(secrets.token_bytes(RANDOM_BYTES))


def parse_key(key: str) -> str:
    """``key`` without surrounding whitespace, or ValidationError if it cannot be a key (typo, truncation).

    The message never repeats the key.
    """
    key = key.strip()
    if not key.startswith(PREFIX):
        raise ValidationError("key", f"does not start with {PREFIX}", _ALLOWED)
    if len(key) != KEY_LENGTH:
        raise ValidationError("key", f"has {len(key)} characters instead of {KEY_LENGTH}", _ALLOWED)
    rest = key[len(PREFIX):]
    if any(c not in _INDEX for c in rest):
        raise ValidationError("key", "contains characters other than letters and digits after the prefix", _ALLOWED)
    body, check = rest[:BODY_CHARS], rest[BODY_CHARS:]
    if checksum(body) != check:
        raise ValidationError("key", "checksum does not match: the key is mistyped or incomplete", _ALLOWED)
    return key


def hash_key(key: str, *, pepper: str | None = None) -> str:
    """What ``api_keys.key_hash`` stores: ``hmac-sha256:<hex>`` with a pepper, else ``sha256:<hex>``.

    The digest covers the whole key, so where a wrong key differs from a right one has no effect on anything
    done with the hash.
    """
    data = key.encode("utf-8")
    if pepper:
        return "hmac-sha256:" + hmac.new(pepper.encode("utf-8"), data, hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def candidate_hashes(key: str, *, pepper: str | None = None) -> tuple[str, ...]:
    """Every stored form ``key`` may have: the peppered hash (when a pepper is set) and the plain one.

    The plain form stays valid after a pepper is introduced, so keys made before (and the seed's keys) still
    verify; keys made with a pepper verify only while that pepper is configured.
    """
    plain = hash_key(key)
    return (hash_key(key, pepper=pepper), plain) if pepper else (plain,)
