"""The files that ship with the package: Alembic's ``alembic.ini`` and ``migrations/``, the notebooks and the
default ``schedule.yml``, found next to this module (what :mod:`importlib.resources` returns for a package installed as
files, as wheels are, without its import time: every command reads the notebook and schedule paths).

An installed wheel carries them in ``gitinsight_analytics/_resources/`` (the build copies them there from the
repository's top level, see ``setup.py``); a source checkout (editable install) has no such copy and reads the
top-level originals, which stay the only version in git.
"""

from __future__ import annotations

from pathlib import Path

from .exceptions import ConfigurationError

__all__ = ["RESOURCE_NAMES", "resource_path", "alembic_ini", "migrations_dir", "notebooks_dir", "default_schedule"]

#: What the build ships (top-level names in the repository, the same names under ``_resources/``).
RESOURCE_NAMES = ("alembic.ini", "migrations", "notebooks", "schedule.yml")


def _source_tree() -> Path | None:
    """The checkout this package is imported from (editable install), or None for an installed wheel."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "migrations").is_dir() else None


def resource_path(name: str) -> Path:
    """The filesystem path of the shipped resource ``name`` (one of :data:`RESOURCE_NAMES`)."""
    if name not in RESOURCE_NAMES:
        raise ValueError(f"unknown resource {name!r} (allowed: {', '.join(RESOURCE_NAMES)})")
    packaged = Path(__file__).resolve().parent / "_resources" / name
    if packaged.exists():
        return packaged
    source = _source_tree()
    if source is not None and (source / name).exists():
        return source / name
    raise ConfigurationError(f"the package has no {name} (a broken install: reinstall gitinsight-analytics)")


def alembic_ini() -> Path:
    return resource_path("alembic.ini")


def migrations_dir() -> Path:
    return resource_path("migrations")


def notebooks_dir() -> Path:
    """The notebooks as shipped (``gitinsight init`` copies them into a workspace, where analysts edit them)."""
    return resource_path("notebooks")


def default_schedule() -> Path:
    return resource_path("schedule.yml")
