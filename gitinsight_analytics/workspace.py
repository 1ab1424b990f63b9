"""An analyst's workspace (``gitinsight init``): the folder every command then works in.

It holds the schedule (``schedule.yml``, which also marks the folder as a workspace), editable copies of the
shipped notebooks, ``reports/``, the data folder (``data/github-ranking/``: the real data ``gitinsight demo``
imports) and, once the server has started, the embedded database (``.gitinsight/``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from . import resources
from .exceptions import ValidationError
from .settings import WORKSPACE_MARKER

__all__ = ["InitResult", "init_workspace", "WORKSPACE_FOLDERS"]

#: Folders of a workspace besides notebooks/ (made empty).
WORKSPACE_FOLDERS = ("reports", "data/github-ranking")


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_workspace` did: the workspace, the paths it created, the ones it left as they were."""

    workspace: Path
    created: tuple[Path, ...]
    kept: tuple[Path, ...]


def init_workspace(directory: Path) -> InitResult:
    """Make ``directory`` (created if missing) a workspace: copy the default schedule and the notebooks, make
    ``reports/`` and ``data/github-ranking/``. Files already there are kept (an analyst's edits are never
    overwritten), so running it again only adds what is missing."""
    directory = Path(directory).expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise ValidationError("DIR", f"{directory} exists and is not a directory", "a new or existing folder")
    planned: list[tuple[Path, Path | None]] = [(directory / WORKSPACE_MARKER, resources.default_schedule())]
    planned += [(directory / "notebooks" / source.name, source)
                for source in sorted(resources.notebooks_dir().glob("*.ipynb"))]
    planned += [(directory / folder, None) for folder in WORKSPACE_FOLDERS]
    created: list[Path] = []
    kept: list[Path] = []
    for target, source in planned:
        if target.exists():
            kept.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source is None:
            target.mkdir(parents=True)
        else:
            shutil.copyfile(source, target)
        created.append(target)
    return InitResult(workspace=directory, created=tuple(created), kept=tuple(kept))
