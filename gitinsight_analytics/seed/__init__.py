"""Seed data: the synthetic generator at any scale, and the import of real GitHub ranking data."""

from __future__ import annotations

from .github_ranking import import_github_ranking
from .synthetic import load_synthetic

__all__ = ["load_synthetic", "import_github_ranking"]
