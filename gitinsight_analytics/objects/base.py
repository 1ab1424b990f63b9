"""The shape of every object here: a name with the SQL that creates it and the SQL that removes it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SqlObject"]


@dataclass(frozen=True)
class SqlObject:
    """A named database object with the SQL that creates it and the SQL that removes it."""

    name: str
    create: str
    drop: str
