"""Build step (everything else is in pyproject.toml): ship the repository's ``alembic.ini``, ``migrations/``,
``notebooks/`` and ``schedule.yml`` inside the package, as ``gitinsight_analytics/_resources/``, so an installed
wheel needs no checkout. The top-level folders stay the only copy in git; an editable install reads them there
(see gitinsight_analytics/resources.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RESOURCES = ("alembic.ini", "migrations", "notebooks", "schedule.yml")  # = resources.RESOURCE_NAMES
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


class BuildPyWithResources(build_py):
    """``build_py`` that also copies the resources into the build (not in editable mode: there they are read
    in place)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "gitinsight_analytics" / "_resources"
        target.mkdir(parents=True, exist_ok=True)
        for name in RESOURCES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=SKIP, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildPyWithResources})
