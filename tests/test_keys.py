"""API keys: the token format, hashing, the create/verify/list/revoke lifecycle, pgcrypto copies, the CLI."""

from __future__ import annotations

import hmac
import io
import json

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import KeyRejected, ValidationError
from gitinsight_analytics.security import keys
from gitinsight_analytics.security import tokens as keytokens

from . import factories

PEPPER = "pepper-0123456789abcdef"
SECRET = "encryption-key-0123456789"


def scalar(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def make_user(engine: Engine, username: str = "alice") -> str:
    with engine.begin() as conn:
        return str(factories.user(conn, username))


class Statements:
    """Records every statement an engine sends (the keys module must send none for a mistyped key)."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[tuple[str, object]] = []
        sa.event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.seen.append((statement, parameters))

    def lookups(self) -> list[tuple[str, object]]:
        return [s for s in self.seen if "FROM api_keys" in s[0]]


def with_body(body: str) -> str:
    return keytokens.PREFIX + body + keytokens.checksum(body)


# --- the token format ----------------------------------------------------------------------------------------

def test_generated_keys_parse_and_differ() -> None:
    key = keys.generate_key()
    assert key.startswith("gik_") and len(key) == keytokens.KEY_LENGTH == 53
    assert keys.parse_key(f"  {key}\n") == key and keys.generate_key() != key
    assert keytokens.format_key(bytes(32)) == with_body("0" * 43)
    assert keytokens.format_key(b"\xff" * 32)[4:47] != "z" * 43  # 2**256 - 1 fits in 43 base62 digits


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda k: "ghp_" + k[4:], "does not start with gik_"),
        (lambda k: k[:-1], "has 52 characters instead of 53"),
        (lambda k: k + "0", "has 54 characters instead of 53"),
        (lambda k: k[:10] + "-" + k[11:], "characters other than letters and digits"),
        (lambda k: k[:10] + ("A" if k[10] != "A" else "B") + k[11:], "checksum does not match"),
        (lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"), "checksum does not match"),
    ],
)
def test_malformed_keys_are_refused_in_one_line_without_the_key(mangle, problem: str) -> None:
    bad = mangle(keys.generate_key())
    with pytest.raises(ValidationError, match=problem) as info:
        keys.parse_key(bad)
    message = str(info.value)
    assert "\n" not in message and bad[4:20] not in message


def test_every_single_character_typo_is_caught() -> None:
    key = keys.generate_key()
    for i in range(4, len(key)):
        replacement = keytokens.ALPHABET[(keytokens.ALPHABET.index(key[i]) + 1) % 62]
        with pytest.raises(ValidationError):
            keys.parse_key(key[:i] + replacement + key[i + 1:])


def test_stored_hash_names_its_scheme_and_is_not_the_key() -> None:
    key = keys.generate_key()
    plain, peppered = keys.hash_key(key), keys.hash_key(key, pepper=PEPPER)
    assert plain.startswith("sha256:") and peppered.startswith("hmac-sha256:")
    assert len(plain) == 7 + 64 and len(peppered) == 12 + 64 and key[4:] not in plain + peppered
    assert keys.hash_key(key, pepper=PEPPER + "x") != peppered
    assert keytokens.candidate_hashes(key) == (plain,)
    assert keytokens.candidate_hashes(key, pepper=PEPPER) == (peppered, plain)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"name": " "}, "name: must not be empty"),
        ({"name": "x" * 256}, "name: is longer than 255"),
        ({"permissions": "read,write"}, "unknown permission 'read'"),
        ({"permissions": ","}, "at least one permission"),
        ({"expires": "soon"}, "'soon' is not a date"),
        ({"expires": "0d"}, "0 days is out of range"),
        ({"expires": "2027-02-30"}, "is not a date"),
    ],
)
def test_bad_options_are_refused_before_any_connection(options: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        keys.check_request(**({"name": "ci"} | options))


def test_options_are_normalised() -> None:
    request = keys.check_request(name=" ci ", permissions="admin, read:insights,admin", expires="90d")
    assert request == keys.KeyRequest("ci", ("read:insights", "admin"), 90)
    assert keys.check_request(name="x", expires="2030-01-01").expires.isoformat() == "2030-01-01T00:00:00+00:00"
    assert keys.check_request(name="x", expires="never").expires is None


# --- the lifecycle on a real server --------------------------------------------------------------------------

def test_create_then_verify_and_nothing_stored_is_the_key(engine: Engine) -> None:
    user = make_user(engine)
    created = keys.create_key(engine, "alice", name="ci", permissions="read:insights,write:analysis", expires="30d")
    assert created.key not in repr(created)
    assert str(created.info.user_id) == user and created.info.status == "active" and not created.info.encrypted
    assert created.notes and "pgcrypto" in created.notes[0]
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT row_to_json(k)::text, key_hash FROM api_keys k")).one()
    assert created.key[4:] not in row[0] and created.key[4:20] not in row[0]
    assert row[1] == keys.hash_key(created.key) != created.key
    info = keys.verify_key(engine, created.key)
    assert (info.id, info.name, info.permissions, info.username) == (created.info.id, "ci",
                                                                       ("read:insights", "write:analysis"), "alice")
    assert info.last_used is not None
    assert scalar(engine, "SELECT last_used IS NOT NULL AND expires_at > now() + interval '29 days' FROM api_keys")


def test_expired_revoked_and_wrong_keys_fail(engine: Engine) -> None:
    make_user(engine)
    old = keys.create_key(engine, "alice", name="old", expires="1d")
    gone = keys.create_key(engine, "alice", name="gone")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :i"),
                     {"i": old.info.id})
    info, was_active = keys.revoke_key(engine, str(gone.info.id))
    assert was_active and info.status == "revoked"
    assert keys.revoke_key(engine, user="alice", name="gone")[1] is False  # twice is harmless
    for key, reason in ((old.key, "expired"), (gone.key, "revoked"), (keys.generate_key(), "unknown")):
        with pytest.raises(KeyRejected, match="key rejected") as rejected:
            keys.verify_key(engine, key)
        assert rejected.value.reason == reason and rejected.value.exit_code == 1
    assert scalar(engine, "SELECT count(last_used) FROM api_keys") == 0
    assert [(k.name, k.status) for k in keys.list_keys(engine, "alice")] == [("old", "expired"), ("gone", "revoked")]


def test_a_mistyped_key_is_refused_without_any_statement(engine: Engine) -> None:
    make_user(engine)
    key = keys.create_key(engine, "alice", name="ci").key
    statements = Statements(engine)
    with pytest.raises(ValidationError, match="checksum"):
        keys.verify_key(engine, key[:-1] + ("0" if key[-1] != "0" else "1"))
    assert statements.seen == []
    unreachable = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(ValidationError, match="has 52 characters"):
        keys.verify_key(unreachable, key[:-1])


def test_where_a_wrong_key_differs_does_not_change_the_work(engine: Engine, monkeypatch) -> None:
    """Both wrong keys: the whole key hashed, one lookup of the same shape, compare_digest on equal lengths."""
    make_user(engine)
    real = keys.create_key(engine, "alice", name="ci").key
    body = real[4:47]
    first = with_body(("1" if body[0] != "1" else "2") + body[1:])
    last = with_body(body[:-1] + ("1" if body[-1] != "1" else "2"))
    compared: list[tuple[int, int]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return compare(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", spy)
    shapes = []
    for wrong in (first, last):
        statements = Statements(engine)
        compared.clear()
        with pytest.raises(KeyRejected):
            keys.verify_key(engine, wrong)
        [(sql, params)] = statements.lookups()
        assert len(statements.seen) == 1 and not any(wrong in str(p) or body in str(p) for p in params.values())
        shapes.append((sql, [len(h) for h in next(iter(params.values()))], tuple(compared)))
    assert shapes[0] == shapes[1] and shapes[0][2] == ((71, 71),)
    keys.verify_key(engine, real)  # and the spy does not break the right key


def test_bad_input_changes_nothing(engine: Engine) -> None:
    make_user(engine)
    make_user(engine, "twin")
    make_user(engine, "twin")
    for user, kwargs, problem in (
        ("nobody", {}, "user: no user with username or id 'nobody'"),
        ("00000000-0000-0000-0000-000000000000", {}, "no user with username or id"),
        ("twin", {}, "'twin' names several users"),
        ("alice", {"expires": "2001-01-01"}, "expires: 2001-01-01 00:00\\+0000 is not in the future"),
    ):
        with pytest.raises(ValidationError, match=problem):
            keys.create_key(engine, user, name="ci", **kwargs)
    keys.create_key(engine, "alice", name="ci")
    with pytest.raises(ValidationError, match="already has an active key named 'ci'"):
        keys.create_key(engine, "alice", name="ci")
    with pytest.raises(ValidationError, match="no API key with id"):
        keys.revoke_key(engine, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(ValidationError, match="either a key id or both"):
        keys.revoke_key(engine, user="alice")
    with pytest.raises(ValidationError, match="alice has no key named 'nope'"):
        keys.revoke_key(engine, user="alice", name="nope")
    with pytest.raises(ValidationError, match="no user"):
        keys.list_keys(engine, "nobody")
    assert scalar(engine, "SELECT count(*) FROM api_keys WHERE is_active") == 1


def test_pepper_scheme_and_keys_made_before_it(engine: Engine) -> None:
    make_user(engine)
    before = keys.create_key(engine, "alice", name="before").key
    peppered = keys.create_key(engine, "alice", name="peppered", pepper=PEPPER).key
    assert scalar(engine, "SELECT key_hash FROM api_keys WHERE name = 'peppered'").startswith("hmac-sha256:")
    assert keys.verify_key(engine, peppered, pepper=PEPPER).name == "peppered"
    assert keys.verify_key(engine, before, pepper=PEPPER).name == "before"
    for pepper in (None, PEPPER + "x"):
        with pytest.raises(KeyRejected, match="not a known API key"):
            keys.verify_key(engine, peppered, pepper=pepper)


@pytest.mark.pgcrypto
def test_encrypted_copy_where_pgcrypto_is(pgcrypto_engine: Engine) -> None:
    make_user(pgcrypto_engine)
    created = keys.create_key(pgcrypto_engine, "alice", name="ci", encryption_key=SECRET)
    assert created.info.encrypted and created.notes == ()
    stored = scalar(pgcrypto_engine, "SELECT encrypted_key FROM api_keys")
    assert created.key.encode() not in bytes(stored) and created.key[4:].encode() not in bytes(stored)
    assert keys.decrypt_stored_key(pgcrypto_engine, created.info.id, encryption_key=SECRET) == created.key
    with pytest.raises(ValidationError, match="does not decrypt this key"):
        keys.decrypt_stored_key(pgcrypto_engine, created.info.id, encryption_key=SECRET + "x")
    assert keys.verify_key(pgcrypto_engine, created.key).id == created.info.id
    plain = keys.create_key(pgcrypto_engine, "alice", name="plain")
    assert not plain.info.encrypted and "GITINSIGHT_API_KEY_ENCRYPTION_KEY is not set" in plain.notes[0]
    assert scalar(pgcrypto_engine, "SELECT current_setting('app.encryption_key', true)") in (None, "")


def test_seeded_keys_use_the_same_scheme(seeded_engine: Engine) -> None:
    from gitinsight_analytics.seed.synthetic_world import API_KEYS, rng_for

    assert scalar(seeded_engine, "SELECT count(*) FROM api_keys WHERE key_hash !~ '^sha256:[0-9a-f]{64}$' "
                                 "OR NOT permissions <@ CAST(:p AS text[])", p=list(keys.PERMISSIONS)) == 0
    raw = rng_for(42, API_KEYS, 0).integers(0, 256, size=(1, 32), dtype=np.uint8)[0].tobytes()
    try:
        found = keys.verify_key(seeded_engine, keytokens.format_key(raw)).status
    except KeyRejected as exc:
        found = exc.reason
    assert found in {"active", "expired", "revoked"}  # the seed's first key is known, whatever its state


# --- the CLI ---------------------------------------------------------------------------------------------------

def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_round_trip(cli_env: Engine, capsys, monkeypatch) -> None:
    make_user(cli_env)
    monkeypatch.setenv("GITINSIGHT_API_KEY_PEPPER", PEPPER)
    code, out, err = run(capsys, "keys", "create", "alice", "--name", "ci", "--permissions", "read:audit",
                         "--expires", "90d")
    key = out.strip()
    assert code == 0 and out.count("\n") == 1 and keys.parse_key(key) == key
    assert "only time the key is shown" in err and "no pgcrypto" in err and key not in err
    code, out, _ = run(capsys, "keys", "verify", key)
    assert code == 0 and out.startswith("valid: key ") and "'ci' of alice" in out and "read:audit" in out
    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    assert run(capsys, "keys", "verify", "-")[0] == 0
    code, out, _ = run(capsys, "keys", "list", "alice")
    hashed = keys.hash_key(key, pepper=PEPPER)
    assert code == 0 and "ci" in out and "active" in out and hashed[12:] not in out and key not in out
    code, out, _ = run(capsys, "keys", "revoke", "--user", "alice", "--name", "ci")
    assert code == 0 and out.startswith("revoked key ")
    code, out, err = run(capsys, "keys", "verify", key)
    assert code == 1 and out == "" and err.count("\n") == 1 and "has been revoked" in err
    with cli_env.connect() as conn:
        audit = conn.execute(sa.text("SELECT action, resource_id, user_id, details::text FROM audit_logs "
                                     "WHERE action LIKE 'keys.%' ORDER BY created_at")).all()
    assert [a.action for a in audit] == ["keys.create", "keys.revoke"]  # verify is not audited
    key_id = scalar(cli_env, "SELECT id FROM api_keys")
    assert all(a.resource_id == key_id and a.user_id is not None for a in audit)
    assert not any(key[4:] in a.details or hashed[12:] in a.details or PEPPER in a.details for a in audit)
    assert json.loads(audit[0].details)["options"]["permissions"] == "read:audit"


@pytest.mark.pgcrypto
def test_cli_stores_the_encrypted_copy_with_the_configured_key(pgcrypto_engine: Engine, capsys, monkeypatch,
                                                                tmp_path) -> None:
    make_user(pgcrypto_engine)
    secret_file = tmp_path / "encryption-key"
    secret_file.write_text(SECRET + "\n")
    monkeypatch.setenv("DATABASE_URL", pgcrypto_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GITINSIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GITINSIGHT_API_KEY_ENCRYPTION_KEY_FILE", str(secret_file))
    code, out, err = run(capsys, "keys", "create", "alice", "--name", "ci")
    assert code == 0 and "note:" not in err
    key_id = scalar(pgcrypto_engine, "SELECT id FROM api_keys")
    assert keys.decrypt_stored_key(pgcrypto_engine, key_id, encryption_key=SECRET) == out.strip()
    assert " yes " in run(capsys, "keys", "list", "alice")[1]
    details = scalar(pgcrypto_engine, "SELECT details::text FROM audit_logs WHERE action = 'keys.create'")
    assert '"encrypted_copy": true' in details and SECRET not in details and out.strip()[4:] not in details


@pytest.mark.parametrize(
    ("argv", "code", "problem"),
    [
        (["keys", "create", "nobody", "--name", "ci"], 2, "error: user: no user with username or id 'nobody'"),
        (["keys", "create", "alice", "--name", "ci", "--expires", "2001-01-01"], 2, "is not in the future"),
        (["keys", "create", "alice", "--name", "ci", "--permissions", "root"], 2, "unknown permission 'root'"),
        (["keys", "verify", "gik_123"], 2, "error: key: has 7 characters instead of 53"),
        (["keys", "verify", keys.generate_key()], 1, "error: key rejected: not a known API key"),
        (["keys", "revoke", "not-a-uuid"], 2, "'not-a-uuid' is not a key id"),
        (["keys", "list", "nobody"], 2, "no user with username or id 'nobody'"),
    ],
)
def test_cli_bad_input_is_one_line_and_changes_nothing(cli_env: Engine, capsys, argv: list[str], code: int,
                                                       problem: str) -> None:
    make_user(cli_env)
    got, out, err = run(capsys, *argv)
    assert (got, out) == (code, "") and err.count("\n") == 1 and err.startswith("error: ") and problem in err
    assert scalar(cli_env, "SELECT count(*) FROM api_keys") == 0
