"""COPY-text blocks of the synthetic users, repositories, follows, API keys and audit logs, chunk by chunk.

Each generator yields ``(block, rows)`` for chunks of :data:`CHUNK` rows; chunk ``k`` of a table draws from
its own generator seeded ``[seed, table, k]``, so the output does not depend on anything but the seed.
Insights and analysis jobs are in :mod:`.synthetic_activity`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..models import ANALYSIS_STATUSES, SUBSCRIPTION_TIERS
from ..security.tokens import format_key, hash_key
from . import synthetic_vocab as v
from .synthetic_world import (
    API_KEYS,
    AS_OF,
    AUDIT,
    DAY,
    FOLLOWS,
    INSIGHTS,
    JOBS,
    REPOS,
    USERS,
    World,
    pick_cdf,
    rng_for,
    ts_text,
    uuid_hex,
)

__all__ = ["CHUNK", "block", "users", "repositories", "follows", "api_keys", "audit_logs", "AUDIT_DAYS", "COLUMNS"]

#: Rows per generated chunk. Part of the definition of the data set: changing it changes the rows.
CHUNK = 50_000
#: Audit logs cover this many days before the as-of date (several monthly partitions).
AUDIT_DAYS = 180
NULL = "\\N"

COLUMNS = {
    "users": ("id", "github_id", "username", "email", "avatar_url", "name", "bio", "location", "company",
              "subscription_tier", "created_at", "updated_at", "last_login"),
    "repositories": ("id", "github_id", "name", "full_name", "description", "url", "clone_url", "language", "stars",
                     "forks", "watchers", "size", "owner_id", "last_analyzed", "analysis_status", "settings",
                     "created_at", "updated_at"),
    # In generation order (COPY names its columns): the per-type payload comes last, as one pre-joined field run.
    "insights": ("id", "repository_id", "type", "confidence_score", "model_version", "generated_at", "created_at",
                 "updated_at", "title", "description", "data", "tags"),
    "analysis_jobs": ("id", "repository_id", "status", "type", "options", "progress", "error_message", "started_at",
                      "completed_at", "created_at", "updated_at"),
    "user_repository_follows": ("user_id", "repository_id", "followed_at", "notification_settings"),
    "api_keys": ("id", "user_id", "name", "key_hash", "permissions", "rate_limit", "last_used", "expires_at",
                 "is_active", "created_at"),
    "audit_logs": ("id", "user_id", "action", "resource_type", "resource_id", "details", "ip_address", "user_agent",
                   "created_at"),
}


def block(columns: list[list[str]]) -> tuple[bytes, int]:
    """Column lists (already COPY-safe strings) as one COPY text block in UTF-8.

    Rows are encoded one by one: a single emoji would make a joined ``str`` four bytes per character.
    """
    rows = [row.encode() for row in map("\t".join, zip(*columns, strict=True))]
    rows.append(b"")
    return b"\n".join(rows), len(rows) - 1


def choose(options: tuple, index: np.ndarray) -> list:
    return np.array(options, dtype=object)[index].tolist()


def nullable(values: list[str], null: np.ndarray) -> list[str]:
    return [NULL if n else x for x, n in zip(values, null.tolist(), strict=True)]


def chunks(total: int) -> Iterator[tuple[int, np.ndarray]]:
    for number, start in enumerate(range(0, total, CHUNK)):
        yield number, np.arange(start, min(start + CHUNK, total))


def _weighted(rng: np.random.Generator, pairs: tuple[tuple[str, float], ...], n: int) -> list[str]:
    p = np.array([w for _, w in pairs])
    return choose(tuple(x for x, _ in pairs), rng.choice(len(pairs), n, p=p / p.sum()))


def users(world: World) -> Iterator[tuple[bytes, int]]:
    seed = world.seed
    for number, idx in chunks(world.sizes.users):
        rng = rng_for(seed, USERS, number)
        n = len(idx)
        names = world.usernames[idx].tolist()
        gid = world.user_github_id[idx]
        created = world.user_created[idx]
        first = world.user_first[idx].tolist()
        last = rng.integers(len(v.LAST_NAMES), size=n).tolist()
        email = nullable([f"{u}@{d}" for u, d in zip(names, _weighted(rng, v.EMAIL_DOMAINS, n), strict=True)],
                         rng.random(n) > 0.55)
        full = nullable([f"{v.FIRST_NAMES[f].title()} {v.LAST_NAMES[la].title()}" for f, la in zip(first, last,
                         strict=True)], rng.random(n) > 0.7)
        bio = nullable(choose(v.BIOS, rng.integers(len(v.BIOS), size=n)), rng.random(n) > 0.35)
        location = nullable(_weighted(rng, v.LOCATIONS, n), rng.random(n) > 0.5)
        company = nullable(choose(v.COMPANIES, rng.integers(len(v.COMPANIES), size=n)), rng.random(n) > 0.28)
        updated = created + (rng.random(n) * (AS_OF - created)).astype(np.int64)
        login = AS_OF - (rng.exponential(20 * DAY, n)).astype(np.int64)
        login = np.maximum(login, created + 60)
        yield block([
            uuid_hex(seed, USERS, idx), gid.astype(str).tolist(), names, email,
            [f"https://avatars.githubusercontent.com/u/{g}?v=4" for g in gid.tolist()], full, bio, location, company,
            choose(SUBSCRIPTION_TIERS, world.user_tier[idx]), ts_text(created), ts_text(updated),
            ts_text(login, rng.random(n) > 0.8),
        ])


def _description(rng: np.random.Generator, n: int, lang: list[str | None]) -> list[str]:
    out = []
    template = rng.integers(len(v.DESCRIPTIONS), size=n).tolist()
    adj = rng.integers(len(v.ADJECTIVES), size=n).tolist()
    noun = rng.integers(len(v.NOUNS), size=n).tolist()
    purpose = rng.integers(len(v.PURPOSES), size=n).tolist()
    for t, a, no, p, la in zip(template, adj, noun, purpose, lang, strict=True):
        out.append(v.DESCRIPTIONS[t].format(adj=v.ADJECTIVES[a], Adj=v.ADJECTIVES[a].title(), noun=v.NOUNS[no],
                                            Noun=v.NOUNS[no].title(), purpose=v.PURPOSES[p], language=la or "C"))
    return out


_SETTINGS = (
    "{}", '{"analysis_frequency": "weekly", "notifications": true}',
    '{"analysis_frequency": "daily", "notifications": true, "excluded_paths": ["vendor/", "dist/"]}',
    '{"analysis_frequency": "monthly", "notifications": false}',
    '{"analysis_frequency": "weekly", "notifications": true, "branch": "main", '
    '"insight_types": ["security_vulnerability", "dependency_risk"]}',
    '{"analysis_frequency": "on_push", "notifications": true, "branch": "develop"}',
)


def repositories(world: World) -> Iterator[tuple[bytes, int]]:
    seed = world.seed
    for number, idx in chunks(world.sizes.repositories):
        rng = rng_for(seed, REPOS, number)
        n = len(idx)
        owner = world.repo_owner[idx]
        suffix = world.repo_suffix[idx].tolist()
        names = [f"{name}-{s + 1}" if s else name for name, s in zip(world.repo_names(idx), suffix, strict=True)]
        full = [f"{u}/{r}" for u, r in zip(world.usernames[owner].tolist(), names, strict=True)]
        url = [f"https://github.com/{f}" for f in full]
        lang = choose(tuple(x[0] for x in v.LANGUAGES), world.repo_language[idx])
        stars = world.repo_stars[idx]
        watchers = 1 + (stars * rng.lognormal(np.log(0.03), 0.5, n)).astype(np.int64)
        size = np.minimum(rng.lognormal(np.log(1800), 1.6, n), 4_000_000).astype(np.int64)
        created = world.repo_created[idx]
        last = world.repo_last_analyzed[idx]
        touched = np.maximum(created, last)
        updated = touched + (rng.random(n) ** 3 * (AS_OF - touched)).astype(np.int64)
        settings = choose(_SETTINGS, rng.choice(len(_SETTINGS), n, p=[0.4, 0.25, 0.1, 0.1, 0.1, 0.05]))
        yield block([
            uuid_hex(seed, REPOS, idx), world.repo_github_id[idx].astype(str).tolist(), names, full,
            nullable(_description(rng, n, lang), rng.random(n) > 0.82), url, [u + ".git" for u in url],
            [NULL if x is None else x for x in lang], stars.astype(str).tolist(),
            world.repo_forks[idx].astype(str).tolist(), watchers.astype(str).tolist(), size.astype(str).tolist(),
            uuid_hex(seed, USERS, owner), ts_text(last, last < 0),
            choose(ANALYSIS_STATUSES, world.repo_status[idx]), settings, ts_text(created), ts_text(updated),
        ])


_NOTIFY = ('{"email": true, "push": false}', '{"email": true, "push": true}', '{"email": false, "push": false}',
           '{"email": false, "push": true}', '{"email": true, "push": false, "digest": "weekly"}')


def _follow_targets(rng: np.random.Generator, world: World, n: int) -> np.ndarray:
    """Mostly by popularity, a quarter uniformly (people also follow their colleagues' small repositories)."""
    popular = pick_cdf(rng, world.follow_cdf, n)
    return np.where(rng.random(n) < 0.75, popular, rng.integers(world.sizes.repositories, size=n))


def follows(world: World) -> Iterator[tuple[bytes, int]]:
    """Users in blocks; each user's follows drawn by repository popularity (duplicates redrawn, then dropped)."""
    seed, n_repos, n_users = world.seed, world.sizes.repositories, world.sizes.users
    cum = np.cumsum(world.follow_counts)
    bounds = np.unique(np.r_[np.minimum(np.searchsorted(cum, np.arange(CHUNK, cum[-1], CHUNK)) + 1, n_users), n_users])
    start = 0
    for number, end in enumerate(bounds.tolist()):
        rng = rng_for(seed, FOLLOWS, number)
        user = np.repeat(np.arange(start, end), world.follow_counts[start:end])
        start = end
        repo = _follow_targets(rng, world, len(user))
        for _ in range(4):  # redraw a user's duplicate picks a few times, then drop what still collides
            _, first = np.unique(user * n_repos + repo, return_index=True)
            dup = np.setdiff1d(np.arange(len(repo)), first)
            if not len(dup):
                break
            repo[dup] = _follow_targets(rng, world, len(dup))
        key = np.unique(user * n_repos + repo)
        if not len(key):
            continue
        user, repo = key // n_repos, key % n_repos
        n = len(key)
        lo = np.maximum(world.user_created[user], world.repo_created[repo])
        followed = world.activity.sample(rng, lo, AS_OF)
        notify = choose(_NOTIFY, rng.choice(len(_NOTIFY), n, p=[0.7, 0.12, 0.1, 0.03, 0.05]))
        yield block([uuid_hex(seed, USERS, user), uuid_hex(seed, REPOS, repo), ts_text(followed), notify])


_RATE_LIMITS = ("1000", "5000", "20000")


def _key_names(world: World, idx: np.ndarray, drawn: np.ndarray) -> list[str]:
    """The drawn names, the owner's 2nd, 3rd... key suffixed `` (2)``, `` (3)``: a user's keys never share a name
    (api_keys has one active key per user and name, a unique index)."""
    first = np.searchsorted(world.key_owner, world.key_owner[idx], side="left")
    rank = idx - first
    return [name if r == 0 else f"{name} ({r + 1})" for name, r in zip(choose(v.KEY_NAMES, drawn), rank.tolist(),
                                                                        strict=True)]


def api_keys(world: World) -> Iterator[tuple[bytes, int]]:
    """Keys made from the seeded generator, hashed with :func:`..keytokens.hash_key`; the plain key is never stored."""
    seed = world.seed
    for number, idx in chunks(world.api_keys):
        rng = rng_for(seed, API_KEYS, number)
        n = len(idx)
        owner = world.key_owner[idx]
        secret = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
        hashes = [hash_key(format_key(row.tobytes())) for row in secret]
        created = world.activity.sample(rng, np.maximum(world.user_created[owner], AS_OF - 700 * DAY), AS_OF - DAY)
        lifetime = np.array([90, 180, 365], dtype=np.int64)[rng.integers(3, size=n)] * DAY
        no_expiry = rng.random(n) < 0.4
        expires = created + lifetime
        revoked = rng.random(n) < 0.08
        active = ~revoked & (no_expiry | (expires > AS_OF))
        end = np.where(no_expiry, AS_OF, np.minimum(expires, AS_OF))
        used = created + (rng.random(n) ** 0.3 * (end - created)).astype(np.int64)
        perms = []
        for k, a in zip(rng.integers(1, 4, size=n).tolist(), (rng.random(n) < 0.05).tolist(), strict=True):
            perms.append("{" + ",".join(v.PERMISSIONS[:k] + (("admin",) if a else ())) + "}")
        yield block([
            uuid_hex(seed, API_KEYS, idx), uuid_hex(seed, USERS, owner),
            _key_names(world, idx, rng.integers(len(v.KEY_NAMES), size=n)), hashes, perms,
            choose(_RATE_LIMITS, world.user_tier[owner]), ts_text(used, rng.random(n) < 0.15),
            ts_text(expires, no_expiry), ["t" if a else "f" for a in active.tolist()], ts_text(created),
        ])


_DETAILS = {
    "user": ('{"method": "oauth", "provider": "github", "success": true}', '{"method": "api_key", "success": true}',
             '{"method": "oauth", "provider": "github", "success": false, "reason": "mfa_timeout"}',
             '{"changed": ["notifications"]}', '{"changed": ["subscription_tier"]}'),
    "insight": ('{"source": "dashboard"}', '{"source": "email_digest"}', '{"source": "api"}'),
    "repository": ('{"source": "search"}', '{"source": "trending"}', '{"source": "dashboard"}',
                   '{"format": "csv"}', '{"format": "pdf"}'),
    "analysis_job": ('{"job_type": "full_analysis", "trigger": "manual"}', '{"job_type": "security_scan", '
                     '"trigger": "schedule"}', '{"job_type": "dependency_audit", "trigger": "webhook"}'),
    "api_key": ('{"key_name": "CI pipeline"}', '{"key_name": "Jupyter"}', '{"key_name": "Slack bot"}'),
}
_FIRST_OCTETS = np.array([3, 5, 13, 18, 23, 31, 34, 35, 37, 46, 52, 54, 62, 77, 78, 80, 81, 82, 84, 85, 87, 88, 89,
                          91, 92, 93, 94, 95, 104, 109, 110, 111, 112, 116, 121, 124, 125, 136, 138, 140, 141, 142,
                          151, 152, 157, 159, 162, 165, 176, 178, 185, 188, 193, 194, 195, 212, 213, 217])


def audit_logs(world: World) -> Iterator[tuple[bytes, int]]:
    seed, s = world.seed, world.sizes
    actions = v.AUDIT_ACTIONS
    p = np.array([a[1] for a in actions])
    for number, idx in chunks(s.audit_logs):
        rng = rng_for(seed, AUDIT, number)
        n = len(idx)
        user = pick_cdf(rng, world.user_cdf, n)
        system = rng.random(n) < 0.03
        created = world.activity.sample(rng, np.maximum(np.where(system, 0, world.user_created[user]),
                                                        AS_OF - AUDIT_DAYS * DAY), AS_OF)
        action = rng.choice(len(actions), n, p=p / p.sum())
        target = np.array([a[3] for a in actions], dtype=object)[action]
        resource = np.empty(n, dtype=object)
        for kind, table, size, cdf in (("user", USERS, s.users, None), ("repository", REPOS, s.repositories,
                                       world.follow_cdf), ("insight", INSIGHTS, s.insights, None),
                                       ("job", JOBS, s.jobs, None), ("api_key", API_KEYS, world.api_keys, None)):
            rows = np.flatnonzero(target == kind)
            if not len(rows) or not size:
                resource[rows] = NULL
                continue
            which = user[rows] if kind == "user" else (pick_cdf(rng, cdf, len(rows)) if cdf is not None
                                                         else rng.integers(size, size=len(rows)))
            resource[rows] = uuid_hex(seed, table, which)
        rtype = [actions[a][2] for a in action.tolist()]
        details = [(_DETAILS[t][k % len(_DETAILS[t])]) for t, k in zip(rtype, rng.integers(99, size=n).tolist(),
                                                                          strict=True)]
        octets = rng.integers(1, 255, size=(n, 3)).tolist()
        first = _FIRST_OCTETS[rng.integers(len(_FIRST_OCTETS), size=n)].tolist()
        ip = [f"{f}.{a}.{b}.{c}" for f, (a, b, c) in zip(first, octets, strict=True)]
        yield block([
            uuid_hex(seed, AUDIT, idx), nullable(uuid_hex(seed, USERS, user), system),
            choose(tuple(a[0] for a in actions), action), rtype, resource.tolist(), details,
            nullable(ip, rng.random(n) < 0.02), choose(v.USER_AGENTS, rng.integers(len(v.USER_AGENTS), size=n)),
            ts_text(created),
        ])
