"""The ``gitinsight`` command. Thin: each command parses options and calls one library function.

Command modules are imported only when their command runs (or shows its help), so ``gitinsight --help`` and a
quick ``gitinsight query ...`` do not import pandas, plotly, papermill and the rest of what other commands use.
"""

from __future__ import annotations

import sys
from importlib import import_module

import click

from ..exceptions import GitInsightError

__all__ = ["main", "cli", "COMMAND_HELP"]

#: The modules of cli/, each with ``register(cli)`` adding its commands.
_COMMAND_MODULES = ("db", "seed", "importer", "query", "report", "maintenance", "backup", "pitr", "keys", "audit",
                    "alerts", "analyze", "demo", "cluster", "workspace")

#: The top-level commands each module registers (pitr adds its commands to ``backup``), so that a command imports
#: only its own modules. A module missing here is imported when the CLI starts: slower, still correct.
_MODULE_COMMANDS: dict[str, tuple[str, ...]] = {
    "db": ("db",), "seed": ("seed",), "importer": ("import",), "query": ("query", "refresh"),
    "report": ("report", "lab"), "maintenance": ("maintain",), "backup": ("backup",), "pitr": ("backup",),
    "keys": ("keys",), "audit": ("audit",), "alerts": ("alerts",), "analyze": ("analyze",), "demo": ("demo",),
    "cluster": ("cluster",), "workspace": ("init",),
}

#: ``gitinsight --help``'s one line per command without importing it (tests/test_packaging.py checks each equals
#: the command's own help).
COMMAND_HELP: dict[str, str] = {
    "alerts": "Alerts for followed repositories: milestones, unusual growth, top-100 moves, confident insights.",
    "analyze": "The analysis engine: queue jobs, run workers, resolve outcomes, check calibration.",
    "audit": "Show the newest audit_logs rows: when, action, outcome, resource and details.",
    "backup": "Backup sets of the database: full dump, schema, roles and a manifest of row counts and checksums.",
    "cluster": "Run a local Citus cluster (needs GITINSIGHT_PG_BINDIR with Citus).",
    "db": "Run the embedded PostgreSQL server and migrate the schema.",
    "demo": "Start the database, migrate, load data, render every report, print the index path.",
    "import": "Import real data (GitHub ranking snapshots).",
    "init": "Create a workspace: schedule.yml, editable notebooks, reports/ and the data folder.",
    "keys": "API keys: shown once when created, stored only as a hash (plus an encrypted copy where pgcrypto is).",
    "lab": "Open JupyterLab on notebooks/ with the database started and DATABASE_URL set for the kernels.",
    "maintain": "Database maintenance (for cron): audit_logs partitions, materialized views.",
    "query": "Run an analysis and print its result (reads GITINSIGHT_READ_URL when set; bad options: exit code 2).",
    "refresh": "Refresh the materialized views (repository_stats and the insight aggregates).",
    "report": "Render notebook reports into reports/ (HTML without code, plus the executed notebook).",
    "seed": "Generate synthetic users, repositories, insights, jobs, follows, API keys and audit logs, and load them.",
}


class LazyGroup(click.Group):
    """A group whose commands' modules are imported on first use (see :data:`_MODULE_COMMANDS`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: set[str] = set()

    def _load(self, module_name: str) -> None:
        if module_name in self._loaded:
            return
        self._loaded.add(module_name)
        try:
            module = import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name != f"{__name__}.{module_name}":
                raise
            return
        module.register(self)

    def load_unlisted(self) -> None:
        for module_name in _COMMAND_MODULES:
            if module_name not in _MODULE_COMMANDS:
                self._load(module_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = {name for m in _COMMAND_MODULES for name in _MODULE_COMMANDS.get(m, ())}
        return sorted(lazy | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module_name in _COMMAND_MODULES:
            if cmd_name in _MODULE_COMMANDS.get(module_name, ()):
                self._load(module_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            known = COMMAND_HELP.get(name) if name not in self.commands else None
            if known is not None:
                rows.append((name, click.Command(name, help=known).get_short_help_str(limit)))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """GitInsight Analytics: database, data, analyses and reports."""


cli.load_unlisted()


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
    except Exception as exc:
        if not _connection_lost(exc):
            raise
        # The server went away mid-command (stopped, restarted, network): its transaction was rolled back.
        orig = getattr(exc, "orig", None) or exc
        reason = next((line.strip() for line in str(orig).splitlines() if line.strip()), type(orig).__name__)
        from ..pgconn import connection_lost_error

        lost = connection_lost_error(reason)
        click.echo(f"error: {lost}", err=True)
        return lost.exit_code
    return code if isinstance(code, int) else 0


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a lost connection. Only a driver or SQLAlchemy that the command loaded can have raised
    it: neither is imported here (``--help`` loads neither, the quick read commands no SQLAlchemy)."""
    lost: tuple[type[BaseException], ...] = ()
    if "psycopg" in sys.modules:
        import psycopg

        lost += (psycopg.OperationalError, psycopg.InterfaceError)
    if "sqlalchemy" in sys.modules:
        from sqlalchemy import exc as sa_exc

        lost += (sa_exc.OperationalError, sa_exc.InterfaceError)
    return isinstance(exc, lost)


if __name__ == "__main__":
    sys.exit(main())
