"""COPY-text blocks of the synthetic insights and analysis jobs (the analysis activity), chunk by chunk.

Insights belong to repositories that have been analysed, weighted by popularity; a third of them come from
the repository's latest analysis, the rest from earlier runs. Each type has its own JSONB shape and its own
confidence distribution; newer model versions are more confident and less spread out. Jobs keep status,
progress, timestamps and error message consistent with each other.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator

import numpy as np

from ..models import JOB_STATUSES
from . import synthetic_vocab as v
from .synthetic_rows import NULL, block, choose, chunks
from .synthetic_world import AS_OF, DAY, HOUR, INSIGHTS, JOBS, REPOS, World, pick_cdf, rng_for, ts_text, uuid_hex

__all__ = ["insights", "analysis_jobs", "model_version_index"]

_TYPES = v.INSIGHT_TYPES
_RELEASES = np.array([int(dt.datetime.fromisoformat(r + "T00:00:00+00:00").timestamp()) for _, r, _, _ in
                      v.MODEL_VERSIONS])
_SEVERITIES = ("critical", "high", "medium", "low")
_CVSS_RANGE = {"critical": (9.0, 10.0), "high": (7.0, 8.9), "medium": (4.0, 6.9), "low": (0.1, 3.9)}
_LICENSES = ("MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0", "LGPL-2.1", "MPL-2.0", "ISC", "unknown")
_RISKS = ("low", "medium", "high")
_TRENDS = ("improving", "stable", "declining")


def model_version_index(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Which model produced an insight at time ``t``: each release takes over within ~two months."""
    version = np.zeros(len(t), dtype=np.int64)
    for k in range(1, len(_RELEASES)):
        share = np.clip((t - _RELEASES[k]) / (60 * DAY), 0.0, 1.0)
        version = np.where(rng.random(len(t)) < share, k, version)
    return version


@functools.cache
def _versions() -> np.ndarray:
    """Every "a.b.c" that :func:`_version_text` draws, indexed by ``a * 600 + b * 20 + c`` (a table lookup)."""
    return np.array([f"{a}.{b}.{c}" for a in range(9) for b in range(30) for c in range(20)], dtype=object)


def _version_text(rng: np.random.Generator, n: int) -> list[str]:
    major, minor, patch = rng.integers(0, 9, n), rng.integers(0, 30, n), rng.integers(0, 20, n)
    return _versions()[major * 600 + minor * 20 + patch].tolist()


def _payload(kind: str, rng: np.random.Generator, n: int, stars: np.ndarray, eco: list[str],
             year: np.ndarray) -> list[str]:
    """``title<TAB>description<TAB>data<TAB>tags`` (COPY text) of ``n`` insights of one type."""
    if kind == "security_vulnerability":
        sev = choose(_SEVERITIES, rng.choice(4, n, p=[0.1, 0.3, 0.4, 0.2]))
        u = rng.random(n).tolist()
        cvss = [round(_CVSS_RANGE[s][0] + x * (_CVSS_RANGE[s][1] - _CVSS_RANGE[s][0]), 1) for s, x in zip(sev, u,
                                                                                                         strict=True)]
        pkg = [v.PACKAGES[e][k % len(v.PACKAGES[e])] for e, k in zip(eco, rng.integers(99, size=n).tolist(),
                                                                     strict=True)]
        cve = [f"CVE-{y - k}-{c}" for y, k, c in zip(year.tolist(), rng.integers(0, 2, n).tolist(),
                                                      rng.integers(1000, 49999, n).tolist(), strict=True)]
        have, fixed = _version_text(rng, n), _version_text(rng, n)
        exploit = np.where(rng.random(n) < 0.15, "true", "false").tolist()
        rows = zip(sev, cvss, pkg, cve, have, fixed, exploit, eco, strict=True)
        out = [(f"{s.title()} severity vulnerability in {p} ({c})",
                f"{p} {h} is affected by {c} (CVSS {x}). Upgrade to {f} or later.",
                f'{{"cve": "{c}", "severity": "{s}", "cvss": {x}, "package": "{p}", "ecosystem": "{e}", '
                f'"installed_version": "{h}", "fixed_version": "{f}", "exploit_available": {ex}}}',
                f"{{security,{s},{e}}}") for s, x, p, c, h, f, ex, e in rows]
    elif kind == "code_quality":
        metric = choose(v.METRICS, rng.integers(len(v.METRICS), size=n))
        score = np.round(rng.beta(4, 2, n) * 100, 1).tolist()
        files = (rng.lognormal(4.5, 1.0, n) + 1).astype(int).tolist()
        trend = choose(_TRENDS, rng.choice(3, n, p=[0.3, 0.45, 0.25]))
        hot = rng.integers(len(v.HOTSPOT_FILES), size=(n, 2)).tolist()
        out = [(f"{m.replace('_', ' ').capitalize()} score {s} ({t})",
                f"Analysed {f} files; the {m.replace('_', ' ')} trend is {t}.",
                f'{{"metric": "{m}", "score": {s}, "files_analyzed": {f}, "hotspots": ["{v.HOTSPOT_FILES[a]}", '
                f'"{v.HOTSPOT_FILES[b]}"], "trend": "{t}"}}', f"{{quality,{m}}}")
               for m, s, f, t, (a, b) in zip(metric, score, files, trend, hot, strict=True)]
    elif kind == "dependency_risk":
        pkg = [v.PACKAGES[e][k % len(v.PACKAGES[e])] for e, k in zip(eco, rng.integers(99, size=n).tolist(),
                                                                     strict=True)]
        behind = rng.geometric(0.25, n).tolist()
        risk = [_RISKS[min(b // 4, 2)] for b in behind]
        lic = choose(_LICENSES, rng.choice(len(_LICENSES), n, p=[0.4, 0.25, 0.1, 0.08, 0.04, 0.04, 0.05, 0.04]))
        have, latest = _version_text(rng, n), _version_text(rng, n)
        dep = np.where(rng.random(n) < 0.06, "true", "false").tolist()
        out = [(f"{p} is {b} releases behind ({r} risk)", f"{p} {h} is in use; the latest release is {la}.",
                f'{{"dependency": "{p}", "ecosystem": "{e}", "current_version": "{h}", "latest_version": "{la}", '
                f'"versions_behind": {b}, "risk": "{r}", "license": "{li}", "deprecated": {d}}}',
                f"{{dependencies,{e},{r}}}") for p, e, b, r, li, h, la, d in zip(pkg, eco, behind, risk, lic, have,
                                                                                 latest, dep, strict=True)]
    elif kind == "documentation":
        cov = np.round(rng.beta(2, 2.5, n) * 100, 1).tolist()
        readme = np.round(rng.beta(5, 2, n), 2).tolist()
        links = rng.poisson(1.5, n).tolist()
        miss = rng.integers(len(v.DOC_FILES), size=(n, 2)).tolist()
        out = [(f"Documentation coverage {c}%", f"Public API documentation coverage is {c}%; {k} broken links.",
                f'{{"coverage_pct": {c}, "readme_score": {r}, "broken_links": {k}, "missing_files": '
                f'["{v.DOC_FILES[a]}", "{v.DOC_FILES[b]}"]}}', "{docs}")
               for c, r, k, (a, b) in zip(cov, readme, links, miss, strict=True)]
    elif kind == "community_health":
        contributors = (1 + rng.poisson(np.log1p(stars) * 2.5)).tolist()
        response = np.round(rng.lognormal(3.2, 1.0, n), 1).tolist()
        bus = np.minimum(rng.geometric(0.45, n), contributors).tolist()
        coc = np.where(rng.random(n) < 0.35, "true", "false").tolist()
        out = [(f"Bus factor {b} with {c} active contributors", f"Median first response to issues: {r} hours.",
                f'{{"contributors_90d": {c}, "median_issue_response_hours": {r}, "bus_factor": {b}, '
                f'"has_code_of_conduct": {k}}}', "{community}" if b > 1 else "{community,bus_factor}")
               for c, r, b, k in zip(contributors, response, bus, coc, strict=True)]
    elif kind == "performance":
        bench = choose(v.BENCHMARKS, rng.integers(len(v.BENCHMARKS), size=n))
        base = np.round(rng.lognormal(6.0, 1.2, n), 1)
        change = np.round(rng.normal(4.0, 18.0, n), 1)
        current = np.round(base * (1 + change / 100), 1).tolist()
        commit = [f"{x:07x}" for x in rng.integers(0, 16**7, n).tolist()]
        out = [(f"{b.replace('_', ' ').capitalize()} {'regressed' if c > 0 else 'improved'} by {abs(c)}%",
                f"Measured at commit {k}: {cu} ms against a baseline of {ba} ms.",
                f'{{"benchmark": "{b}", "baseline_ms": {ba}, "current_ms": {cu}, "change_pct": {c}, '
                f'"commit": "{k}", "regression": {"true" if c > 5 else "false"}}}',
                "{performance,regression}" if c > 5 else "{performance}")
               for b, ba, cu, c, k in zip(bench, base.tolist(), current, change.tolist(), commit, strict=True)]
    else:  # trend_prediction
        horizon = choose((30, 90), rng.integers(2, size=n))
        growth = np.round(rng.normal(3.0, 6.0, n) * np.sqrt(np.array(horizon) / 30), 1)
        spread = np.round(np.abs(growth) * 0.5 + rng.uniform(1, 5, n), 1)
        out = [(f"Stars forecast {g:+}% in {h} days", f"From {s} stars today, expect {int(s * (1 + g / 100))}.",
                f'{{"metric": "stars", "horizon_days": {h}, "current": {s}, "predicted_growth_pct": {g}, '
                f'"interval": [{round(g - w, 1)}, {round(g + w, 1)}], "method": "gi-forecast"}}',
                "{trends,stars}") for h, g, w, s in zip(horizon, growth.tolist(), spread.tolist(), stars.tolist(),
                                                         strict=True)]
    return list(map("\t".join, out))


def insights(world: World) -> Iterator[tuple[bytes, int]]:
    seed = world.seed
    ecosystems = np.array([v.LANGUAGE_ECOSYSTEM.get(str(x[0]), "other") for x in v.LANGUAGES])
    shares = np.array([t[1] for t in _TYPES])
    for number, idx in chunks(world.sizes.insights):
        rng = rng_for(seed, INSIGHTS, number)
        n = len(idx)
        repo = world.insight_repos[pick_cdf(rng, world.insight_cdf, n)]
        success = world.repo_success[repo]
        latest = rng.random(n) < 0.35
        earlier = world.activity.sample(rng, world.repo_created[repo], success)
        generated = np.where(latest, success - rng.integers(0, 900, n), earlier)
        kind = rng.choice(len(_TYPES), n, p=shares / shares.sum())
        version = model_version_index(rng, generated)
        mean = np.array([t[2] for t in _TYPES])[kind] + np.array([m[2] for m in v.MODEL_VERSIONS])[version]
        conc = np.array([m[3] for m in v.MODEL_VERSIONS])[version]
        confidence = np.clip(rng.beta(mean * conc, (1 - mean) * conc), 0, 1)
        eco = ecosystems[world.repo_language[repo]]
        payload = np.empty(n, dtype=object)
        year = generated.astype("datetime64[s]").astype("datetime64[Y]").astype(int) + 1970
        for k, (name, *_rest) in enumerate(_TYPES):
            rows = np.flatnonzero(kind == k)
            payload[rows] = _payload(name, rng, len(rows), world.repo_stars[repo[rows]],
                                     eco[rows].tolist(), year[rows])
        created = generated + rng.integers(1, 30, n)
        updated = np.where(rng.random(n) < 0.1, np.minimum(created + rng.integers(HOUR, 20 * DAY, n), AS_OF), created)
        yield block([
            uuid_hex(seed, INSIGHTS, idx), uuid_hex(seed, REPOS, repo), choose(tuple(t[0] for t in _TYPES), kind),
            [f"{c:.2f}" for c in confidence.tolist()], choose(tuple(m[0] for m in v.MODEL_VERSIONS), version),
            ts_text(generated), ts_text(created), ts_text(updated), payload.tolist(),
        ])


_OPTIONS = {
    "full_analysis": '{"depth": "full", "branch": "main", "include_forks": false}',
    "security_scan": '{"severity_threshold": "medium", "include_dev_dependencies": true}',
    "dependency_audit": '{"check_licenses": true, "max_versions_behind": 5}',
    "code_quality": '{"metrics": ["cyclomatic_complexity", "duplication"], "exclude": ["vendor/", "tests/"]}',
    "trend_refresh": '{"horizon_days": 30}',
    "documentation_review": '{"check_links": true}',
}
_STATUS_P = np.array([0.04, 0.04, 0.75, 0.10, 0.07])  # queued, in_progress, completed, failed, cancelled


def analysis_jobs(world: World) -> Iterator[tuple[bytes, int]]:
    seed = world.seed
    types = v.JOB_TYPES
    type_p = np.array([t[1] for t in types])
    median_run = np.array([t[2] for t in types])
    for number, idx in chunks(world.sizes.jobs):
        rng = rng_for(seed, JOBS, number)
        n = len(idx)
        status = rng.choice(5, n, p=_STATUS_P)
        repo = pick_cdf(rng, world.job_cdf, n)
        running = np.flatnonzero(status == 1)
        if len(world.in_progress_repos) and len(running):  # repositories under analysis have the running jobs
            repo[running] = world.in_progress_repos[rng.integers(len(world.in_progress_repos), size=len(running))]
        kind = rng.choice(len(types), n, p=type_p / type_p.sum())
        floor = np.maximum(world.repo_created[repo], AS_OF - 365 * DAY)
        created = world.activity.sample(rng, floor, AS_OF - DAY)
        created = np.where(status == 0, AS_OF - rng.integers(60, 6 * HOUR, n), created)
        created = np.where(status == 1, AS_OF - rng.integers(10 * 60, 12 * HOUR, n), created)
        wait = rng.lognormal(np.log(40), 1.0, n).astype(np.int64) + 1
        run = np.minimum(rng.lognormal(np.log(median_run[kind]), 0.8, n), 6 * HOUR).astype(np.int64) + 5
        started = np.minimum(created + wait, AS_OF - 60)
        progress = rng.integers(1, 100, n)
        cancelled_queued = (status == 4) & (rng.random(n) < 0.5)
        completed = np.select([status == 2, status == 3, cancelled_queued, status == 4],
                              [started + run, started + run * progress // 100, created + wait // 2,
                               started + run * progress // 100], -1)
        progress = np.select([status == 0, status == 2, cancelled_queued, status == 3],
                             [0, 100, 0, np.minimum(progress, 95)], progress)
        has_started = (status != 0) & ~cancelled_queued
        updated = np.where(completed >= 0, completed, np.where(has_started, started, created))
        error = choose(v.JOB_ERRORS, rng.integers(len(v.JOB_ERRORS), size=n))
        error = [e if s == 3 else NULL for e, s in zip(error, status.tolist(), strict=True)]
        yield block([
            uuid_hex(seed, JOBS, idx), uuid_hex(seed, REPOS, repo), choose(JOB_STATUSES, status),
            choose(tuple(t[0] for t in types), kind), [_OPTIONS[types[k][0]] for k in kind.tolist()],
            progress.astype(str).tolist(), error, ts_text(started, ~has_started), ts_text(completed, completed < 0),
            ts_text(created), ts_text(updated),
        ])
