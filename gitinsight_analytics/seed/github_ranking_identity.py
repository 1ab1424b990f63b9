"""Which URLs are the same repository: case-insensitive URLs, and renames/transfers between snapshot files.

The data has no repository id, so identity is the lower-cased URL (``key``: ``owner/name`` lower-cased) and
renames are inferred. Rule (tuned on the real files, see docs/data.md "Real data"): a key ``A`` last seen in the
snapshot file just before ``D`` and a key ``B`` first seen on ``D`` (no file date in between, counting the files
already imported and the ones being imported) are one repository when

1. they share the repository name with a different owner (a transfer), or the owner with a different name (a
   rename; then the gap must be at most :data:`RENAME_MAX_GAP_DAYS` or the descriptions identical);
2. stars and forks are close: within ``abs_floor`` of each other or a ratio within ``1 ± tol`` where
   ``tol = 5 % + 0.3 % per day of gap``; or, for a transfer, the descriptions are identical (non-empty) and
   both ratios lie in [0.9, 3] (fast-growing repositories over a month or a year);
3. the files are at most :data:`MAX_GAP_DAYS` apart;
4. the pairing is unambiguous: ``A`` has exactly one such ``B`` and ``B`` exactly one such ``A``.

A false merge would corrupt two histories; a missed one only splits one, so the rule errs on missing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "KeySummary",
    "Rename",
    "derived_github_id",
    "DERIVED_GITHUB_ID_FUNCTION",
    "find_renames",
    "group_keys",
    "RENAME_MAX_GAP_DAYS",
    "MAX_GAP_DAYS",
]

RENAME_MAX_GAP_DAYS = 7
#: Files further apart than this are not compared at all (the real files are at most 373 days apart).
MAX_GAP_DAYS = 400
ABS_FLOOR = 5
TOL_BASE = 0.05
TOL_PER_DAY = 0.003
DESC_RATIO = (0.9, 3.0)
_MASK = 2**63 - 1


def derived_github_id(key: str) -> int:
    """A stable BIGINT for a login or repository key with no numeric id: ``-(first 63 bits of sha256) - 1``.

    Always negative, so it can never collide with a real (positive) GitHub id. Lower-cased first, so
    ``Microsoft`` and ``microsoft`` are one user. Equal to :func:`derived_github_id_sql` in PostgreSQL.
    """
    digest = hashlib.sha256(key.lower().encode("utf-8")).digest()
    return -(int.from_bytes(digest[:8], "big") & _MASK) - 1


#: :func:`derived_github_id` as a session-local SQL function ``pg_temp.gr_github_id(text)`` (inlined by the
#: planner, so set-based statements stay fast).
DERIVED_GITHUB_ID_FUNCTION = f"""
CREATE OR REPLACE FUNCTION pg_temp.gr_github_id(key text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT -((('x' || left(encode(sha256(convert_to(lower(key), 'UTF8')), 'hex'), 16))::bit(64)::bigint)
             & {_MASK}) - 1
$$
"""


@dataclass(frozen=True)
class KeySummary:
    """What the rule needs to know about one key over all snapshot dates (imported and being imported)."""

    key: str
    first_date: dt.date
    last_date: dt.date
    first_stars: int
    first_forks: int
    last_stars: int
    last_forks: int
    first_description: str | None
    last_description: str | None
    repository_id: str | None  # the repository it already belongs to, if imported before

    @property
    def owner(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]


@dataclass(frozen=True)
class Rename:
    """``old`` (last seen ``old_date``) became ``new`` (first seen ``new_date``); ``reason``: close|description."""

    old: str
    new: str
    old_date: dt.date
    new_date: dt.date
    reason: str


def _close(a: int, b: int, tol: float) -> bool:
    if abs(a - b) <= ABS_FLOOR:
        return True
    ratio = b / max(a, 1)
    return 1 / (1 + tol) <= ratio <= 1 + tol


def _match(old: KeySummary, new: KeySummary) -> str | None:
    transfer = old.name == new.name and old.owner != new.owner
    rename = old.owner == new.owner and old.name != new.name
    if not (transfer or rename):
        return None
    days = (new.first_date - old.last_date).days
    if days > MAX_GAP_DAYS:
        return None
    same_description = bool(old.last_description) and old.last_description == new.first_description
    if rename and days > RENAME_MAX_GAP_DAYS and not same_description:
        return None
    tol = TOL_BASE + TOL_PER_DAY * days
    if _close(old.last_stars, new.first_stars, tol) and _close(old.last_forks, new.first_forks, tol):
        return "close"
    lo, hi = DESC_RATIO
    if transfer and same_description and all(
        lo <= b / max(a, 1) <= hi for a, b in ((old.last_stars, new.first_stars), (old.last_forks, new.first_forks))
    ):
        return "description"
    return None


def find_renames(summaries: Iterable[KeySummary], dates: Sequence[dt.date]) -> list[Rename]:
    """The unambiguous renames between consecutive snapshot ``dates`` (see the module docstring)."""
    following = dict(zip(sorted(dates), sorted(dates)[1:], strict=False))
    ending: dict[dt.date, list[KeySummary]] = defaultdict(list)
    starting: dict[dt.date, list[KeySummary]] = defaultdict(list)
    for summary in summaries:
        ending[summary.last_date].append(summary)
        starting[summary.first_date].append(summary)
    found: list[Rename] = []
    for old_date, new_date in following.items():
        olds, news = ending.get(old_date, []), starting.get(new_date, [])
        if not olds or not news:
            continue
        by_name: dict[str, list[KeySummary]] = defaultdict(list)
        by_owner: dict[str, list[KeySummary]] = defaultdict(list)
        for new in news:
            by_name[new.name].append(new)
            by_owner[new.owner].append(new)
        pairs: list[tuple[KeySummary, KeySummary, str]] = []
        for old in olds:
            for new in {n.key: n for n in by_name[old.name] + by_owner[old.owner]}.values():
                reason = _match(old, new)
                if reason:
                    pairs.append((old, new, reason))
        old_count: dict[str, int] = defaultdict(int)
        new_count: dict[str, int] = defaultdict(int)
        for old, new, _ in pairs:
            old_count[old.key] += 1
            new_count[new.key] += 1
        found += [Rename(old.key, new.key, old_date, new_date, reason) for old, new, reason in pairs
                  if old_count[old.key] == 1 and new_count[new.key] == 1]
    return found


def group_keys(keys: Iterable[str], renames: Iterable[Rename]) -> dict[str, str]:
    """Union-find: each key mapped to its group's root, the group's oldest key (first in rename order)."""
    parent: dict[str, str] = {key: key for key in keys}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for rename in sorted(renames, key=lambda r: r.new_date):
        old_root, new_root = root(rename.old), root(rename.new)
        if old_root != new_root:
            parent[new_root] = old_root
    return {key: root(key) for key in parent}
