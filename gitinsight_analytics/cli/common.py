"""What the command modules share: settings and engine from the environment."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ..db import connect
from ..settings import Settings, load_settings

__all__ = ["settings", "engine"]


def settings() -> Settings:
    return load_settings()


def engine(*, start: bool = True) -> Engine:
    return connect(load_settings(), start=start)
