"""``gitinsight lab``: JupyterLab on ``notebooks/`` with the environment the notebooks need.

The database URL reaches the kernels through the ``DATABASE_URL`` environment variable (the environment, not
a notebook), so :func:`gitinsight_analytics.connect` in any notebook works with no editing.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from ..exceptions import ValidationError

__all__ = ["lab_command", "DEFAULT_PORT"]

DEFAULT_PORT = 8888


def lab_command(
    database_url: str,
    notebooks_dir: Path,
    *,
    port: int = DEFAULT_PORT,
    open_browser: bool = True,
    base_env: Mapping[str, str],
    python: str | None = None,
    as_root: bool = False,
    read_url: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment (``base_env`` plus the database and the read URL, default the database) that
    start JupyterLab; launches nothing."""
    if not 1024 <= port <= 65535:
        raise ValidationError("port", f"{port} is out of range", "1024..65535")
    notebooks_dir = Path(notebooks_dir).resolve()
    if not notebooks_dir.is_dir():
        raise ValidationError("notebooks_dir", f"{notebooks_dir} is not a directory", "the project's notebooks/")
    argv = [
        python or sys.executable, "-m", "jupyterlab",
        f"--ServerApp.root_dir={notebooks_dir}",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
    ]
    if not open_browser:
        argv.append("--no-browser")
    if as_root:  # containers often run as root; jupyter refuses without this
        argv.append("--allow-root")
    env = dict(base_env)
    env.update({
        "DATABASE_URL": database_url,
        "GITINSIGHT_READ_URL": read_url or database_url,
        "PLOOMBER_STATS_ENABLED": "false",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    })
    return argv, env
