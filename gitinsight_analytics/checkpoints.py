"""Test-only pause points, so that fault tests kill a process at a known moment instead of sleeping and hoping.

``checkpoint("load.copied")`` does nothing unless ``GITINSIGHT_TEST_PAUSE=load.copied:<folder>`` is set (read
through :func:`..settings.pause_point`). Then it writes ``<folder>/load.copied.reached`` (holding the pid) and waits
until ``<folder>/load.copied.release`` appears (at most :data:`MAX_PAUSE` seconds): the test kills the process, stops
the server or starts a rival meanwhile, or releases it. The checkpoints (docs/operations.md, "What a crash leaves"):

==================  ===========================================================================
``load.copied``     seed and loaders: every row COPYed, indexes and COMMIT still to come
``import.written``  github-ranking import: users, repositories, snapshots written, not committed
``backup.dumped``   backup create: dumps in the staging folder, manifest and rename still to come
``restore.sent``    backup restore: psql's transaction has dropped and made the schema, the dump follows
``report.started``  report run: run.json says ``running``, the kernel is about to start
``due.locked``      report due: the schedule lock is held, nothing run yet
``keys.checked``    keys create: the name is free as far as this transaction sees, the INSERT follows
==================  ===========================================================================
"""

from __future__ import annotations

import os
import time

from .settings import pause_point

__all__ = ["checkpoint", "MAX_PAUSE"]

#: A forgotten pause ends by itself.
MAX_PAUSE = 300.0


def checkpoint(name: str) -> None:
    """Pause here if ``GITINSIGHT_TEST_PAUSE`` names this checkpoint (tests only); otherwise return at once."""
    found = pause_point()
    if found is None or found[0] != name:
        return
    folder = found[1]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.reached").write_text(str(os.getpid()))
    deadline = time.monotonic() + MAX_PAUSE
    while not (folder / f"{name}.release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
