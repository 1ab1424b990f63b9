"""``gitinsight keys``: create, verify, list and revoke API keys (thin: options in, one library call)."""

from __future__ import annotations

import sys

import click

from ..security import keys as api_keys
from ..security.keys import KeyInfo
from . import common

__all__ = ["register", "keys"]


def _when(value: object) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M%z}"


def _describe(info: KeyInfo) -> str:
    return (f"key {info.id} {info.name!r} of {info.username} ({info.user_id}); "
            f"permissions {','.join(info.permissions) or '-'}; expires {_when(info.expires_at)}")


@click.group()
def keys() -> None:
    """API keys: shown once when created, stored only as a hash (plus an encrypted copy where pgcrypto is)."""


@keys.command("create")
@common.audited("keys.create", "api_key")
@click.argument("user")
@click.option("--name", required=True, help="What the key is for (1..255 characters, unique among the user's "
                                              "active keys).")
@click.option("--permissions", default=",".join(api_keys.DEFAULT_PERMISSIONS), show_default=True,
              help=f"Comma-separated, from: {', '.join(api_keys.PERMISSIONS)}.")
@click.option("--expires", default=None, help="2027-01-01, 2027-01-01T12:00+02:00 (UTC without offset), a number "
                                              "of days such as 90d, or never (the default).")
def create(user: str, name: str, permissions: str, expires: str | None) -> None:
    """Make a key for USER (username or user id) and print it once, on stdout."""
    api_keys.check_request(name=name, permissions=permissions, expires=expires)  # a typo should not start a server
    settings = common.settings()
    created = api_keys.create_key(common.engine(), user, name=name, permissions=permissions, expires=expires,
                                  pepper=settings.api_key_pepper, encryption_key=settings.api_key_encryption_key)
    common.audit_note(resource_id=created.info.id, user_id=created.info.user_id, key_name=created.info.name,
                      encrypted_copy=created.info.encrypted)
    for note in created.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"created {_describe(created.info)}", err=True)
    click.echo(created.key)
    click.echo("warning: this is the only time the key is shown; store it now (only its hash is kept)", err=True)


@keys.command("verify")
@click.argument("key")
def verify(key: str) -> None:
    """Check KEY ('-' reads it from stdin): exit 0 and describe it if it grants access now, else exit 1.

    Sets the key's last_used. Not audited: last_used records use, and an audit row per check would flood the log.
    """
    if key == "-":
        key = sys.stdin.readline()
    api_keys.parse_key(key)  # a mistyped key is refused before any connection
    info = api_keys.verify_key(common.engine(), key, pepper=common.settings().api_key_pepper)
    click.echo(f"valid: {_describe(info)}")


@keys.command("list")
@click.argument("user")
def list_(user: str) -> None:
    """The keys of USER (username or user id) with their status; never the keys or their hashes."""
    rows = api_keys.list_keys(common.engine(), user)
    click.echo(f"{'id':<36}  {'name':<24} {'status':<7}  {'created':<21} {'last used':<21} {'expires':<21} "
               f"{'enc':<3}  permissions")
    for r in rows:
        click.echo(f"{r.id!s:<36}  {r.name[:24]:<24} {r.status:<7}  {_when(r.created_at):<21} "
                   f"{_when(r.last_used):<21} {_when(r.expires_at):<21} {'yes' if r.encrypted else 'no':<3}  "
                   f"{','.join(r.permissions)}")
    click.echo(f"({len(rows)} key{'s' if len(rows) != 1 else ''})", err=True)


@keys.command("revoke")
@common.audited("keys.revoke", "api_key")
@click.argument("key_id", required=False)
@click.option("--user", default=None, help="With --name: the key's owner (username or user id).")
@click.option("--name", default=None, help="With --user: the key's name.")
def revoke(key_id: str | None, user: str | None, name: str | None) -> None:
    """Deactivate a key, by KEY_ID (see `keys list`) or by --user and --name. Revoking twice is harmless."""
    info, was_active = api_keys.revoke_key(common.engine(), key_id, user=user, name=name)
    common.audit_note(resource_id=info.id, user_id=info.user_id, key_name=info.name, was_active=was_active)
    click.echo(f"{'revoked' if was_active else 'already revoked:'} {_describe(info)}")


def register(cli: click.Group) -> None:
    cli.add_command(keys)
