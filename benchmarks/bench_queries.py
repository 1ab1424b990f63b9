"""Query benchmark: p95 latency of the analyses against the spec's queries as written, at medium scale.

    .venv/bin/python -m benchmarks.bench_queries --scale medium [--runs 200] [--database-url URL --reuse]

Starts its own embedded PostgreSQL in a temporary GITINSIGHT_HOME on a free port (or uses the server of
DATABASE_URL / --database-url, in a scratch database), migrates, loads ``load_synthetic(scale)`` and the real
github-ranking import (for trending by stars), then measures, on one warm connection, many runs with varied
parameters of each case: the SQL of our query (execute + fetch), the library function (SQL + DataFrame), and the
spec's query as written (``$n`` placeholders bound, ``'%search_term%'`` bound to the same term). With ``--reuse``
an already loaded database is used as it is. Prints a table and writes ``benchmarks/results/queries.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from benchmarks._support import recreate_database, throwaway_server
from gitinsight_analytics import migrate, queries, server
from gitinsight_analytics.db import make_engine
from gitinsight_analytics.queries import dashboard, search, trending
from gitinsight_analytics.settings import PROJECT_ROOT, PoolSettings
from gitinsight_analytics.statements import fetch

__all__ = ["main", "SPEC_SEARCH", "SPEC_DASHBOARD", "SPEC_TRENDING", "SPEC_STATS_FUNCTION"]

RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "queries.json"
GITHUB_RANKING = PROJECT_ROOT.parent / "shared" / "data" / "github-ranking"
TARGETS_MS = {"search": 10.0, "dashboard": 10.0, "trending": 25.0, "get_repository_stats": 2.0}

# The spec's "Data Access Patterns", as written; $1.. become bound parameters, '%search_term%' the bound term.
# The dashboard query fails as written (urf.followed_at is not grouped); urf.followed_at is added to GROUP BY.
SPEC_SEARCH = """
SELECT r.*, u.username as owner_username
FROM repositories r
JOIN users u ON r.owner_id = u.id
WHERE
    (r.name ILIKE :search_term OR r.description ILIKE :search_term)
    AND (CAST(:p1 AS VARCHAR) IS NULL OR r.language = :p1)
    AND (CAST(:p2 AS INTEGER) IS NULL OR r.stars >= :p2)
ORDER BY r.stars DESC, r.updated_at DESC
LIMIT :p3 OFFSET :p4
"""
SPEC_DASHBOARD = """
SELECT
    r.*,
    COUNT(i.id) as insight_count,
    MAX(i.generated_at) as latest_insight,
    aj.status as analysis_status
FROM user_repository_follows urf
JOIN repositories r ON urf.repository_id = r.id
LEFT JOIN insights i ON r.id = i.repository_id
LEFT JOIN analysis_jobs aj ON r.id = aj.repository_id
    AND aj.created_at = (
        SELECT MAX(created_at)
        FROM analysis_jobs
        WHERE repository_id = r.id
    )
WHERE urf.user_id = :p1
GROUP BY r.id, aj.status, urf.followed_at
ORDER BY urf.followed_at DESC
"""
# NOW() is the data's as-of instant here (the data ends before the clock): the same window as ours.
SPEC_TRENDING = """
WITH recent_insights AS (
    SELECT
        repository_id,
        COUNT(*) as recent_insight_count,
        AVG(confidence_score) as avg_confidence
    FROM insights
    WHERE generated_at >= CAST(:now AS timestamptz) - INTERVAL '7 days'
    GROUP BY repository_id
)
SELECT
    r.*,
    ri.recent_insight_count,
    ri.avg_confidence,
    (r.stars + r.forks + COALESCE(ri.recent_insight_count, 0) * 10) as trending_score
FROM repositories r
LEFT JOIN recent_insights ri ON r.id = ri.repository_id
WHERE r.analysis_status = 'completed'
ORDER BY trending_score DESC
LIMIT 50
"""
# The spec's PL/pgSQL function, as written except the ::TEXT without which it fails at run time
# ("structure of query does not match function result type"); in pg_temp so nothing is left behind.
SPEC_STATS_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.spec_get_repository_stats(repo_id UUID)
RETURNS TABLE (
    total_insights INTEGER,
    avg_confidence DECIMAL,
    latest_analysis TIMESTAMP WITH TIME ZONE,
    insight_types TEXT[]
) AS $$
BEGIN
    RETURN QUERY
    SELECT
        COUNT(*)::INTEGER as total_insights,
        AVG(confidence_score)::DECIMAL as avg_confidence,
        MAX(generated_at) as latest_analysis,
        ARRAY_AGG(DISTINCT type)::TEXT[] as insight_types
    FROM insights
    WHERE repository_id = repo_id;
END;
$$ LANGUAGE plpgsql
"""


def load(engine: Engine, scale: str) -> dict[str, float]:
    """Migrate, load the synthetic scale and the real import; seconds of each step."""
    from gitinsight_analytics.seed import import_github_ranking, load_synthetic

    seconds = {}
    started = time.perf_counter()
    migrate.upgrade(engine)
    seconds["migrate"] = time.perf_counter() - started
    started = time.perf_counter()
    load_synthetic(engine, scale=scale, seed=42, progress=False)
    seconds["load_synthetic"] = time.perf_counter() - started
    if GITHUB_RANKING.is_dir():
        started = time.perf_counter()
        import_github_ranking(engine, [GITHUB_RANKING], progress=False)
        seconds["import_github_ranking"] = time.perf_counter() - started
    with engine.connect() as conn:  # a settled database, as after autovacuum
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    return seconds


def _summary(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {"runs": len(ordered), "p50_ms": statistics.median(ordered),
            "p95_ms": ordered[max(0, int(round(0.95 * len(ordered))) - 1)], "max_ms": ordered[-1]}


def measure(conn: Connection, fn: Callable[[int], Any], runs: int, warmup: int = 10) -> dict[str, float]:
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(runs):
        started = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - started) * 1000)
    return _summary(times)


def _sql(conn: Connection, statement: str, params_for: Callable[[int], dict]) -> Callable[[int], Any]:
    compiled = text(statement)
    return lambda i: conn.execute(compiled, params_for(i)).fetchall()


def cases(conn: Connection, runs: int, seed: int = 7) -> dict[str, dict[str, dict[str, float]]]:
    rng = random.Random(seed)
    words = [r[0] for r in conn.execute(text(
        "SELECT w FROM (SELECT DISTINCT lower(substring(name from '[A-Za-z]{4,}')) AS w FROM repositories "
        "WHERE name ~ '[A-Za-z]{4,}') t WHERE w IS NOT NULL ORDER BY w"))]
    words = rng.sample(words, min(50, len(words)))
    languages = [r[0] for r in conn.execute(text(
        "SELECT language FROM repositories WHERE language IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 8"))]
    top_user = conn.execute(text(
        "SELECT u.id, u.username FROM user_repository_follows f JOIN users u ON u.id = f.user_id "
        "GROUP BY u.id, u.username HAVING (SELECT count(*) FROM users x WHERE x.username = u.username) = 1 "
        "ORDER BY count(*) DESC LIMIT 1")).one()
    repos = [tuple(r) for r in conn.execute(text("SELECT id, full_name FROM repositories ORDER BY random() LIMIT 500"))]
    now = conn.execute(text("SELECT max(generated_at) FROM insights")).scalar()
    out: dict[str, dict[str, dict[str, float]]] = {}

    def search_params(i: int) -> dict:
        language = languages[i % len(languages)] if i % 3 == 0 else None
        return {"text": words[i % len(words)], "language": language, "min_stars": (0, 10, None)[i % 3],
                "limit": 20, "offset": (0, 20)[i % 2]}

    def ours_search_sql(i: int) -> Any:
        return fetch(conn, *search.search_statement(conn, **search_params(i)))[1]

    out["search"] = {
        "ours_sql": measure(conn, ours_search_sql, runs),
        "ours_api": measure(conn, lambda i: queries.search_repositories(conn, **search_params(i)), runs),
        "spec": measure(conn, _sql(conn, SPEC_SEARCH, lambda i: {
            "search_term": f"%{search_params(i)['text']}%", "p1": search_params(i)["language"],
            "p2": search_params(i)["min_stars"], "p3": 20, "p4": search_params(i)["offset"]}), runs),
    }
    out["dashboard"] = {
        "ours_sql": measure(conn, _sql(conn, dashboard.DASHBOARD_SQL, lambda i: {"username": top_user.username,
                                                                         "limit": 101, "offset": 0}), runs),
        "ours_api": measure(conn, lambda i: queries.user_dashboard(conn, username=top_user.username), runs),
        "spec": measure(conn, _sql(conn, SPEC_DASHBOARD, lambda i: {"p1": top_user.id}), max(5, runs // 20), 1),
    }
    out["dashboard"]["ours_sql"]["follows"] = conn.execute(text(
        "SELECT count(*) FROM user_repository_follows WHERE user_id = :u"), {"u": top_user.id}).scalar()
    day = (now.astimezone(dt.UTC)).date()
    midnight = dt.time(tzinfo=dt.UTC)
    params = {"lo": dt.datetime.combine(day - dt.timedelta(days=6), midnight),
              "hi": dt.datetime.combine(day + dt.timedelta(days=1), midnight), "min_confidence": None, "limit": 50,
              "weight": trending.INSIGHT_WEIGHT}
    out["trending"] = {
        "ours_sql": measure(conn, _sql(conn, trending.SCORE_FROM_VIEW_SQL, lambda i: {
            "language": (None, *languages)[i % (len(languages) + 1)], "limit": 50}), runs),
        "ours_sql_live": measure(conn, _sql(conn, trending.SCORE_SQL, lambda i: {
            **params, "language": (None, *languages)[i % (len(languages) + 1)]}), max(20, runs // 5)),
        "ours_api": measure(conn, lambda i: queries.trending_by_score(conn), runs),
        "spec": measure(conn, _sql(conn, SPEC_TRENDING, lambda i: {"now": now}), max(10, runs // 10), 2),
    }
    if conn.execute(text("SELECT EXISTS (SELECT 1 FROM repository_snapshots)")).scalar():
        out["trending_by_stars"] = {
            "ours_api": measure(conn, lambda i: queries.trending_by_stars(conn), max(20, runs // 5)),
            "ours_api_30d": measure(conn, lambda i: queries.trending_by_stars(conn, window_days=30),
                                    max(10, runs // 10)),
        }
    conn.execute(text(SPEC_STATS_FUNCTION))
    out["get_repository_stats"] = {
        "ours_sql": measure(conn, _sql(conn, "SELECT * FROM get_repository_stats(CAST(:id AS uuid))",
                                       lambda i: {"id": repos[i % len(repos)][0]}), runs),
        "ours_api": measure(conn, lambda i: queries.get_repository_stats(conn, full_name=repos[i % len(repos)][1]),
                            runs),
        "spec": measure(conn, _sql(conn, "SELECT * FROM pg_temp.spec_get_repository_stats(CAST(:id AS uuid))",
                                   lambda i: {"id": repos[i % len(repos)][0]}), runs),
    }
    conn.commit()
    return out


def refresh_times(engine: Engine, rounds: int = 3, *, touch: bool = True) -> dict[str, Any]:
    """REFRESH ... CONCURRENTLY repository_stats (after 500 changed rows when ``touch``), `gitinsight refresh`."""
    concurrent = []
    with engine.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        auto.exec_driver_sql("SET work_mem = '256MB'")
        for _ in range(rounds):
            if touch:
                auto.exec_driver_sql("UPDATE repositories SET stars = stars + 1 WHERE id IN "
                                     "(SELECT id FROM repositories ORDER BY random() LIMIT 500)")
            started = time.perf_counter()
            auto.exec_driver_sql("REFRESH MATERIALIZED VIEW CONCURRENTLY repository_stats")
            concurrent.append(time.perf_counter() - started)
        auto.exec_driver_sql("RESET work_mem")
    result = queries.refresh_stats(engine)
    return {"repository_stats_concurrently_s": concurrent,
            "gitinsight_refresh_s": result.seconds, "views_s": dict(result.views)}


def _print(results: dict[str, Any]) -> None:
    print(f"{'case':22s} {'variant':14s} {'runs':>5s} {'p50 ms':>9s} {'p95 ms':>9s} {'max ms':>9s}")
    for case, variants in results["latency"].items():
        for variant, figures in variants.items():
            print(f"{case:22s} {variant:14s} {figures['runs']:5d} {figures['p50_ms']:9.2f} "
                  f"{figures['p95_ms']:9.2f} {figures['max_ms']:9.2f}")
        if case in TARGETS_MS:
            ours = variants["ours_sql"]["p95_ms"]
            speedup = variants["spec"]["p95_ms"] / ours
            print(f"{'':22s} target p95 ≤ {TARGETS_MS[case]:g} ms: {'met' if ours <= TARGETS_MS[case] else 'MISSED'}"
                  f" (SQL); spec / ours at p95 = {speedup:.1f}×")
    refresh = results["refresh"]
    print("REFRESH MATERIALIZED VIEW CONCURRENTLY repository_stats: "
          + ", ".join(f"{s:.2f} s" for s in refresh["repository_stats_concurrently_s"]) + " (target ≤ 5 s)")
    print(f"gitinsight refresh (all analysis views): {refresh['gitinsight_refresh_s']:.2f} s "
          + ", ".join(f"{k} {v:.2f}" for k, v in refresh["views_s"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--reuse", action="store_true", help="use --database-url as it is (already loaded)")
    args = parser.parse_args(argv)

    home = None
    settings = None
    if args.database_url:
        url = (args.database_url if args.reuse
               else recreate_database(args.database_url, f"gi_bench_queries_{args.scale}", migrated=False))
    else:
        home = tempfile.TemporaryDirectory(prefix="gi-bench-queries-")
        settings = throwaway_server(Path(home.name))
        url = recreate_database(server.server_url(settings), f"gi_bench_queries_{args.scale}", migrated=False)
    engine = make_engine(url, pool=PoolSettings(size=2, max_overflow=2))
    try:
        loading = {} if args.reuse else load(engine, args.scale)
        with engine.connect() as conn:
            sizes = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()  # noqa: S608 - constant names
                     for t in ("repositories", "insights", "user_repository_follows", "analysis_jobs",
                               "repository_snapshots")}
            latency = cases(conn, args.runs)
        results = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "scale": args.scale,
            "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version()},
            "rows": sizes, "loading_s": loading, "latency": latency,
            "refresh": refresh_times(engine, touch=not args.reuse),
            "targets_ms": TARGETS_MS,
        }
    finally:
        engine.dispose()
        if settings is not None:
            server.stop(settings)
        if home is not None:
            home.cleanup()
    _print(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"written {Path(RESULTS).relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
