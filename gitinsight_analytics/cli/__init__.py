"""The ``gitinsight`` command. Thin: each command parses options and calls one library function."""

from __future__ import annotations

import sys

import click
import psycopg
from sqlalchemy import exc as sa_exc

from ..exceptions import DatabaseUnreachable, GitInsightError
from . import db as db_commands

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """GitInsight Analytics: database, data, analyses and reports."""


cli.add_command(db_commands.db)

_COMMAND_MODULES = ("seed", "importer", "query", "report", "maintenance", "backup", "pitr", "keys", "audit", "alerts",
                    "analyze", "demo", "cluster")
for _module_name in _COMMAND_MODULES:
    try:
        _module = __import__(f"{__name__}.{_module_name}", fromlist=["register"])
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"{__name__}.{_module_name}":
            raise
        continue
    _module.register(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point: package errors become one line on stderr and a non-zero exit code."""
    try:
        code = cli.main(args=argv, prog_name="gitinsight", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.UsageError as exc:  # one line, like every other error; --help has the usage
        hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except GitInsightError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except (sa_exc.OperationalError, sa_exc.InterfaceError, psycopg.OperationalError, psycopg.InterfaceError) as exc:
        # The server went away mid-command (stopped, restarted, network): its transaction was rolled back.
        orig = getattr(exc, "orig", None) or exc
        reason = next((line.strip() for line in str(orig).splitlines() if line.strip()), type(orig).__name__)
        click.echo(f"error: lost the database connection, the command's open transaction was rolled back: {reason}",
                   err=True)
        return DatabaseUnreachable.exit_code
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
