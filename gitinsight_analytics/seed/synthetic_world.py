"""The skeleton of a synthetic data set: per-user and per-repository numbers every table's rows derive from.

Only compact numeric arrays (and the unique names) are held for the whole data set; the rows themselves are
generated chunk by chunk in :mod:`.synthetic_rows`. Everything comes from numpy generators seeded with
``[seed, purpose, chunk]``: the same seed gives the same data set, ids included (ids come from a counter-based
hash of (seed, table, row number), so any row's id can be computed without storing it).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np

from . import synthetic_vocab as v

__all__ = ["Sizes", "World", "Timeline", "uuid_hex", "ts_text", "rng_for", "pick_cdf", "AS_OF", "DAY", "HOUR"]

DAY = 86_400
HOUR = 3_600
#: The data's "today": the last day of the real GitHub ranking files. Never the wall clock.
AS_OF = int(dt.datetime(2026, 8, 22, 18, 0, tzinfo=dt.UTC).timestamp())
_USERS_START = int(dt.datetime(2008, 2, 1, tzinfo=dt.UTC).timestamp())
_ACTIVITY_START = int(dt.datetime(2024, 6, 1, tzinfo=dt.UTC).timestamp())

# Table codes: the "purpose" part of every generator seed and id hash. Never renumber (determinism).
USERS, REPOS, INSIGHTS, JOBS, FOLLOWS, API_KEYS, AUDIT, WORLD = 1, 2, 3, 4, 5, 6, 7, 8

_U64 = np.uint64
_MASK_V4 = _U64(0xFFFF_FFFF_FFFF_0FFF)
_VERSION4 = _U64(0x4000)
_MASK_VARIANT = _U64(0x3FFF_FFFF_FFFF_FFFF)
_VARIANT = _U64(0x8000_0000_0000_0000)


@dataclass(frozen=True)
class Sizes:
    """Row counts of one scale (api keys follow from the users; follows may come out a little lower)."""

    users: int
    repositories: int
    insights: int
    follows: int
    jobs: int
    audit_logs: int


def rng_for(seed: int, *purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, *purpose])


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E37_79B9_7F4A_7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58_476D_1CE4_E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D0_49BB_1331_11EB)
        return z ^ (z >> _U64(31))


def uuid_hex(seed: int, table: int, index: np.ndarray) -> list[str]:
    """Version-4-shaped UUIDs (32 hex digits) of rows ``index`` of ``table``: a seeded bijective hash."""
    base = _splitmix(np.array([seed * 1_000_003 + table], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        a = _splitmix(np.asarray(index, dtype=np.uint64) + base)
    b = _splitmix(a ^ _U64(0x5851_F42D_4C95_7F2D))
    out = np.empty((len(a), 2), dtype=">u8")
    out[:, 0] = (a & _MASK_V4) | _VERSION4
    out[:, 1] = (b & _MASK_VARIANT) | _VARIANT
    if not len(out):
        return []
    # One str of 32 hex digits per row, cut by viewing the whole hex string as a 'U32' array (2x a slicing loop).
    return np.array([out.tobytes().hex()]).view("U32").tolist()


@functools.cache
def _ts_parts() -> tuple[np.ndarray, np.ndarray]:
    """'YYYY-MM-DDT' for every day 1970..2069 and 'HH:MM:SSZ' for every second of a day (built on first use).

    Fixed-width unicode arrays: ``np.char.add`` joins them in C, twice as fast as adding object arrays.
    """
    days = np.array([d + "T" for d in np.datetime_as_string(np.arange(36_525).astype("datetime64[D]")).tolist()])
    two = [f"{i:02d}" for i in range(60)]
    minutes = [f"{a}:{b}:" for a in two[:24] for b in two]
    seconds = np.array([m + s + "Z" for m in minutes for s in two])
    return days, seconds


def ts_text(seconds: np.ndarray, null: np.ndarray | None = None) -> list[str]:
    """Unix seconds as ISO timestamps in UTC (COPY text); ``null`` marks NULLs. Table lookups: 8x numpy's own."""
    days, tod = _ts_parts()
    seconds = np.asarray(seconds, dtype=np.int64)
    text = np.char.add(days[np.clip(seconds // DAY, 0, len(days) - 1)], tod[seconds % DAY])
    if null is not None:
        text[null] = "\\N"
    return text.tolist()


def pick_cdf(rng: np.random.Generator, cdf: np.ndarray, n: int, upto: np.ndarray | None = None) -> np.ndarray:
    """Weighted draws of indices (weights given as their cumulative sum); ``upto`` limits each draw to [0, upto)."""
    top = cdf[-1] if upto is None else cdf[np.maximum(upto, 1) - 1]
    return np.minimum(np.searchsorted(cdf, rng.random(n) * top, side="right"), len(cdf) - 1)


class Timeline:
    """Activity over time by hour: growth, a weekly rhythm (quiet weekends) and a daily one (UTC afternoon peak).

    :meth:`sample` draws times from that intensity restricted to per-row windows [lo, hi] (inverse CDF).
    """

    def __init__(self, start: int, end: int, *, growth_days: float = 400.0, half_life_days: float | None = None,
                 weekend: float = 0.42) -> None:
        self.start, self.end = start, end
        edges = np.arange(start - start % HOUR, end + HOUR, HOUR, dtype=np.int64)
        t = edges[:-1]
        weekday = (t // DAY + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        hour = (t // HOUR) % 24
        w = np.where(weekday >= 5, weekend, 1.0) * (0.3 + 0.7 * np.exp(-(((hour - 14) / 4.5) ** 2)))
        w = w * np.exp((t - end) / (growth_days * DAY))
        if half_life_days:
            w = w * 0.5 ** ((end - t) / (half_life_days * DAY))
        self._edges = edges.astype(np.float64)
        self._cum = np.concatenate([[0.0], np.cumsum(w)])

    def sample(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray | int) -> np.ndarray:
        lo = np.clip(np.asarray(lo, dtype=np.float64), self.start, self.end)
        hi = np.clip(np.broadcast_to(np.asarray(hi, dtype=np.float64), lo.shape), lo, self.end)
        clo, chi = np.interp(lo, self._edges, self._cum), np.interp(hi, self._edges, self._cum)
        u = clo + rng.random(lo.shape) * (chi - clo)
        return np.clip(np.interp(u, self._cum, self._edges), lo, hi).astype(np.int64)


def _dedupe_suffix(keys: np.ndarray) -> np.ndarray:
    """For each key, how many earlier rows share it (0 for the first): used to make names unique."""
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    starts = np.r_[True, ranked[1:] != ranked[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(len(keys)), 0))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys)) - group_start
    return rank


def _probabilities(weights: tuple[float, ...]) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return p / p.sum()


class World:
    """Users and repositories as numbers, plus the weights other tables draw from."""

    def __init__(self, sizes: Sizes, seed: int) -> None:
        self.sizes, self.seed = sizes, seed
        self.activity = Timeline(_ACTIVITY_START, AS_OF)
        self.recent = Timeline(_ACTIVITY_START, AS_OF, half_life_days=40.0)
        self._users(rng_for(seed, WORLD, USERS))
        self._repositories(rng_for(seed, WORLD, REPOS))
        self._derived(rng_for(seed, WORLD, INSIGHTS))

    # users -----------------------------------------------------------------------------------------------
    def _users(self, rng: np.random.Generator) -> None:
        n = self.sizes.users
        frac = np.sort(rng.beta(1.7, 1.0, n))
        self.user_created = (_USERS_START + frac * (AS_OF - 2 * DAY - _USERS_START)).astype(np.int64)
        self.user_github_id = (230_000_000 * frac**1.6).astype(np.int64) + np.arange(n) + 1_000
        self.user_cdf = np.cumsum(rng.pareto(1.3, n) + 1.0)
        self.user_tier = rng.choice(3, n, p=[0.86, 0.11, 0.03]).astype(np.int8)
        pattern = rng.choice(6, n, p=[0.25, 0.2, 0.15, 0.15, 0.15, 0.1])
        first, last = rng.integers(len(v.FIRST_NAMES), size=n), rng.integers(len(v.LAST_NAMES), size=n)
        adj, noun = rng.integers(len(v.ADJECTIVES), size=n), rng.integers(len(v.NOUNS), size=n)
        num = rng.integers(10, 100, size=n)
        names: list[str] = []
        seen: dict[str, int] = {}
        for p, f, la, a, no, k in zip(pattern.tolist(), first.tolist(), last.tolist(), adj.tolist(), noun.tolist(),
                                      num.tolist(), strict=True):
            fn, ln = v.FIRST_NAMES[f], v.LAST_NAMES[la]
            name = (fn + ln, f"{fn}-{ln}", fn[0] + ln, f"{fn}{k}", f"{v.ADJECTIVES[a]}-{v.NOUNS[no]}",
                    f"{fn}{ln}{k}")[p]
            dup = seen.get(name, 0)
            seen[name] = dup + 1
            names.append(f"{name}-{dup + 1}" if dup else name)  # no base name ends in "-<digits>"
        self.usernames = np.array(names, dtype=object)
        self.user_first = first.astype(np.int16)

    # repositories ----------------------------------------------------------------------------------------
    def _repositories(self, rng: np.random.Generator) -> None:
        n = self.sizes.repositories
        lo = self.user_created[0] + DAY
        frac = np.sort(rng.beta(2.2, 1.0, n))
        created = (lo + frac * (AS_OF - DAY - lo)).astype(np.int64)
        self.repo_created = created
        self.repo_github_id = (1_050_000_000 * frac**1.8).astype(np.int64) + np.arange(n) + 10_000
        # Owners exist before their repositories; active users own many.
        self.repo_owner = pick_cdf(rng, self.user_cdf, n, upto=np.searchsorted(self.user_created, created)).astype(
            np.int32)
        self.repo_language = rng.choice(len(v.LANGUAGES), n, p=_probabilities(tuple(x[1] for x in v.LANGUAGES))).astype(
            np.int8)
        # Power law: most repositories have a handful of stars, a few have hundreds of thousands.
        stars = 2.5 * ((1.0 - rng.random(n)) ** (-1 / 0.95) - 1.0)
        self.repo_stars = np.minimum(stars, 450_000).astype(np.int32)
        fork_factor = np.array([x[2] for x in v.LANGUAGES])[self.repo_language]
        ratio = 0.11 * fork_factor * rng.lognormal(0.0, 0.6, n)
        self.repo_forks = np.minimum(self.repo_stars * ratio + rng.poisson(0.3, n), 250_000).astype(np.int32)
        # Names: unique per owner (suffix "-2", "-3" ... on the rare collision).
        self.repo_pattern = rng.integers(len(v.REPO_PATTERNS), size=n, dtype=np.int16)
        self.repo_adj = rng.integers(len(v.ADJECTIVES), size=n, dtype=np.int16)
        self.repo_noun = rng.integers(len(v.NOUNS), size=n, dtype=np.int16)
        self.repo_noun2 = rng.integers(len(v.NOUNS), size=n, dtype=np.int16)
        hashes = np.empty(n, dtype=np.int64)
        for lo in range(0, n, 100_000):  # in slices: a million names at once would be ~100 MB
            part = np.arange(lo, min(lo + 100_000, n))
            hashes[part] = [hash(pair) for pair in zip(self.repo_owner[part].tolist(), self.repo_names(part),
                                                         strict=True)]
        self.repo_suffix = _dedupe_suffix(hashes).astype(np.int32)
        # Analysis state: popular repositories are analysed more often.
        popularity = np.minimum(np.log10(self.repo_stars + 1) / 3.0, 1.0)
        ever = rng.random(n) < 0.3 + 0.6 * popularity
        state = rng.random(n)
        status = np.where(ever, np.where(state < 0.9, 2, np.where(state < 0.93, 1, 3)),
                          np.where(state < 0.93, 0, np.where(state < 0.96, 1, 3)))
        self.repo_status = status.astype(np.int8)  # index into models.ANALYSIS_STATUSES
        floor = np.maximum(created, AS_OF - 365 * DAY)
        attempt = self.recent.sample(rng, floor, AS_OF)
        self.repo_last_analyzed = np.where((status == 2) | (status == 3) | (ever & (status == 1)), attempt, -1).astype(
            np.int32)
        earlier = self.activity.sample(rng, floor, attempt)
        self.repo_success = np.where(ever, np.where(status == 3, earlier, attempt), -1).astype(np.int32)

    def repo_names(self, index: np.ndarray) -> list[str]:
        """Repository names (without the de-duplicating suffix) of rows ``index``."""
        out = []
        owners_first = self.user_first[self.repo_owner[index]].tolist()
        for p, a, no, n2, f in zip(self.repo_pattern[index].tolist(), self.repo_adj[index].tolist(),
                                   self.repo_noun[index].tolist(), self.repo_noun2[index].tolist(), owners_first,
                                   strict=True):
            out.append(v.REPO_PATTERNS[p].format(adj=v.ADJECTIVES[a], noun=v.NOUNS[no], noun2=v.NOUNS[n2],
                                                 first=v.FIRST_NAMES[f]))
        return out

    # weights the other tables draw from ------------------------------------------------------------------------
    def _derived(self, rng: np.random.Generator) -> None:
        stars = self.repo_stars.astype(np.float64)
        self.insight_repos = np.flatnonzero(self.repo_success >= 0)
        self.insight_cdf = np.cumsum((stars[self.insight_repos] + 5.0) ** 0.6)
        self.job_cdf = np.cumsum((stars + 3.0) ** 0.5)
        self.follow_cdf = np.cumsum((stars + 2.0) ** 0.6)
        self.in_progress_repos = np.flatnonzero(self.repo_status == 1)
        n_users = self.sizes.users
        p = np.diff(np.r_[0.0, self.user_cdf]) / self.user_cdf[-1]
        cap = max(5, self.sizes.repositories // 10)  # nobody follows a tenth of everything
        counts = rng.multinomial(self.sizes.follows, p)
        for _ in range(3):  # hand what the busiest users cannot take to the others
            excess = int(np.maximum(counts - cap, 0).sum())
            counts = np.minimum(counts, cap)
            room = np.where(counts < cap, p, 0.0)
            if not excess or not room.sum():
                break
            counts = counts + rng.multinomial(excess, room / room.sum())
        self.follow_counts = np.minimum(counts, cap)
        has_key = rng.random(n_users) < np.array([0.2, 0.6, 0.9])[self.user_tier]
        counts = np.where(has_key, 1 + rng.poisson(0.5, n_users), 0)
        self.key_owner = np.repeat(np.arange(n_users), counts)

    @property
    def api_keys(self) -> int:
        return len(self.key_owner)
