"""The synthetic data set: determinism, every table filled, the consistency rules, replace, rollback, CLI."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gitinsight_analytics import migrate
from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import DataExistsError, DataLoadError, ValidationError
from gitinsight_analytics.seed.loader import bulk_load
from gitinsight_analytics.seed.synthetic import AS_OF_DATE, SCALES, load_synthetic, synthetic_sources

from .faults_support import failing_source, schema_snapshot

TABLES = ("users", "repositories", "insights", "analysis_jobs", "user_repository_follows", "api_keys", "audit_logs")
AS_OF = dt.datetime.combine(AS_OF_DATE, dt.time(18), dt.UTC)


def scalar(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def fingerprints(engine: Engine) -> dict[str, str]:
    """md5 of each table's rows in a fixed order: equal fingerprints mean identical rows, ids included."""
    return {t: scalar(engine, f"SELECT md5(string_agg(x::text, E'\\n' ORDER BY x::text)) FROM {t} x") for t in TABLES}


def counts(engine: Engine) -> dict[str, int]:
    return {t: scalar(engine, f"SELECT count(*) FROM {t}") for t in TABLES}


# --- what is loaded -------------------------------------------------------------------------------------------

def test_every_table_is_filled_at_the_scale_sizes(seeded_engine: Engine) -> None:
    sizes = SCALES["tiny"]
    found = counts(seeded_engine)
    assert found["users"] == sizes.users and found["repositories"] == sizes.repositories
    assert found["insights"] == sizes.insights and found["analysis_jobs"] == sizes.jobs
    assert found["audit_logs"] == sizes.audit_logs
    assert 0.8 * sizes.follows <= found["user_repository_follows"] <= sizes.follows
    assert found["api_keys"] > 0
    assert scalar(seeded_engine, "SELECT count(*) FROM repository_stats") == sizes.repositories


@pytest.mark.parametrize("table", TABLES)
def test_every_loaded_table_has_planner_statistics(seeded_engine: Engine, table: str) -> None:
    """The load ANALYZEs what it wrote, plain tables as well as partitions: without statistics the planner guesses
    until autovacuum comes (a dashboard page on Citus ran 3x slower than after ANALYZE)."""
    assert scalar(seeded_engine, "SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = :t",
                  t=table) > 0
    # -1: never analyzed (nor vacuumed) since the rows arrived
    assert scalar(seeded_engine, "SELECT min(c.reltuples) FROM pg_class c WHERE c.oid = to_regclass(:t) "
                  "OR c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass(:t)) WHERE isleaf)", t=table) >= 0


def test_api_keys_are_stored_only_as_hashes(seeded_engine: Engine) -> None:
    assert scalar(seeded_engine, "SELECT count(*) FROM api_keys WHERE key_hash !~ '^sha256:[0-9a-f]{64}$' "
                                 "OR encrypted_key IS NOT NULL") == 0
    assert scalar(seeded_engine, "SELECT count(DISTINCT key_hash) = count(*) FROM api_keys")


def test_audit_logs_span_several_monthly_partitions(seeded_engine: Engine) -> None:
    partitions = scalar(seeded_engine, "SELECT count(DISTINCT tableoid) FROM audit_logs")
    assert partitions >= 3
    assert scalar(seeded_engine, "SELECT count(*) FROM audit_logs_default") == 0


def test_time_is_anchored_at_the_as_of_date_not_the_clock(seeded_engine: Engine) -> None:
    for table, column in (("insights", "generated_at"), ("analysis_jobs", "updated_at"), ("audit_logs", "created_at"),
                          ("user_repository_follows", "followed_at"), ("users", "last_login")):
        assert scalar(seeded_engine, f"SELECT max({column}) FROM {table}") <= AS_OF
    recent = scalar(seeded_engine, "SELECT count(*) FROM insights WHERE generated_at >= :t", t=AS_OF - dt.timedelta(7))
    assert recent > 0


@pytest.mark.parametrize("seed", [42, 7])
def test_same_seed_gives_identical_rows_and_another_seed_differs(engine: Engine, seeded_engine: Engine,
                                                                  seed: int) -> None:
    load_synthetic(engine, scale="tiny", seed=seed, progress=False)
    mine, reference = fingerprints(engine), fingerprints(seeded_engine)
    if seed == 42:
        assert mine == reference
    else:
        assert all(mine[t] != reference[t] for t in TABLES)
        first_id = "SELECT min(id::text) FROM users"
        assert scalar(engine, first_id) != scalar(seeded_engine, first_id)


# --- consistency rules ----------------------------------------------------------------------------------------

JOB_RULES = {
    "queued": "progress = 0 AND started_at IS NULL AND completed_at IS NULL AND error_message IS NULL",
    "in_progress": "progress BETWEEN 1 AND 99 AND started_at >= created_at AND completed_at IS NULL "
                   "AND error_message IS NULL",
    "completed": "progress = 100 AND started_at >= created_at AND completed_at >= started_at AND error_message IS NULL",
    "failed": "progress < 100 AND error_message IS NOT NULL AND started_at IS NOT NULL AND completed_at >= started_at",
    "cancelled": "progress < 100 AND error_message IS NULL AND completed_at >= created_at "
                 "AND (started_at IS NULL OR completed_at >= started_at) AND (started_at IS NOT NULL OR progress = 0)",
}


@pytest.mark.parametrize("status", list(JOB_RULES))
def test_job_status_progress_timestamps_and_errors_agree(seeded_engine: Engine, status: str) -> None:
    total = scalar(seeded_engine, "SELECT count(*) FROM analysis_jobs WHERE status = :s", s=status)
    assert total > 0
    assert scalar(seeded_engine, f"SELECT count(*) FROM analysis_jobs WHERE status = :s AND NOT ({JOB_RULES[status]})",
                  s=status) == 0
    assert scalar(seeded_engine, "SELECT count(*) FROM analysis_jobs WHERE updated_at < created_at") == 0


def test_stars_follow_a_power_law_and_forks_correlate(seeded_engine: Engine) -> None:
    with seeded_engine.connect() as conn:
        median, top, corr = conn.execute(text(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY stars), max(stars), "
            "corr(ln(stars + 1), ln(forks + 1)) FROM repositories")).one()
    assert top > 50 * max(median, 1)
    assert corr > 0.6


def test_language_mix_is_realistic(seeded_engine: Engine) -> None:
    with seeded_engine.connect() as conn:
        top = conn.execute(text("SELECT language FROM repositories WHERE language IS NOT NULL GROUP BY language "
                                "ORDER BY count(*) DESC LIMIT 4")).scalars().all()
    assert {"JavaScript", "Python"} <= set(top)
    assert scalar(seeded_engine, "SELECT count(DISTINCT language) FROM repositories") >= 10


@pytest.mark.parametrize("table, column", [("insights", "generated_at"), ("audit_logs", "created_at")])
def test_activity_dips_at_weekends(seeded_engine: Engine, table: str, column: str) -> None:
    weekend_share = scalar(seeded_engine,
                           f"SELECT avg((extract(isodow FROM {column} AT TIME ZONE 'UTC') >= 6)::int) FROM {table}")
    assert weekend_share < 0.8 * 2 / 7


def test_confidence_distribution_differs_by_model_version(seeded_engine: Engine) -> None:
    with seeded_engine.connect() as conn:
        rows = conn.execute(text("SELECT model_version, avg(confidence_score), stddev(confidence_score), count(*) "
                                 "FROM insights GROUP BY 1 ORDER BY 1")).all()
        by_type = dict(conn.execute(text("SELECT type, avg(confidence_score) FROM insights GROUP BY 1")).all())
    assert [r[0] for r in rows] == ["gi-1.0", "gi-1.1", "gi-2.0"] and all(r[3] >= 30 for r in rows)
    means, spreads = [r[1] for r in rows], [r[2] for r in rows]
    assert means == sorted(means) and spreads == sorted(spreads, reverse=True)
    assert by_type["security_vulnerability"] - by_type["trend_prediction"] > 0.15


INSIGHT_KEYS = {
    "security_vulnerability": ["cve", "severity", "cvss", "package"],
    "code_quality": ["metric", "score", "hotspots"],
    "dependency_risk": ["dependency", "current_version", "latest_version", "versions_behind"],
    "documentation": ["coverage_pct", "missing_files"],
    "community_health": ["contributors_90d", "bus_factor"],
    "performance": ["benchmark", "baseline_ms", "current_ms"],
    "trend_prediction": ["metric", "horizon_days", "predicted_growth_pct", "interval"],
}


@pytest.mark.parametrize("kind", list(INSIGHT_KEYS))
def test_each_insight_type_has_its_own_data_shape(seeded_engine: Engine, kind: str) -> None:
    assert scalar(seeded_engine, "SELECT count(*) FROM insights WHERE type = :k", k=kind) > 0
    assert scalar(seeded_engine, "SELECT count(*) FROM insights WHERE type = :k AND NOT data ?& :keys",
                  k=kind, keys=INSIGHT_KEYS[kind]) == 0
    others = [k for other, keys in INSIGHT_KEYS.items() if other != kind for k in keys if k not in INSIGHT_KEYS[kind]]
    assert scalar(seeded_engine, "SELECT count(*) FROM insights WHERE type = :k AND data ?| :keys",
                  k=kind, keys=others) == 0


def test_follows_concentrate_on_popular_repositories(seeded_engine: Engine) -> None:
    share = scalar(seeded_engine, """
        WITH ranked AS (SELECT id, ntile(10) OVER (ORDER BY stars DESC, id) AS decile FROM repositories)
        SELECT avg((r.decile = 1)::int) FROM user_repository_follows f JOIN ranked r ON r.id = f.repository_id""")
    assert share > 0.3


def test_a_repository_has_several_insights_followers_and_jobs(seeded_engine: Engine) -> None:
    assert scalar(seeded_engine, """
        SELECT count(*) FROM repositories r
        WHERE (SELECT count(*) FROM insights WHERE repository_id = r.id) >= 3
          AND (SELECT count(*) FROM user_repository_follows WHERE repository_id = r.id) >= 3
          AND (SELECT count(*) FROM analysis_jobs WHERE repository_id = r.id) >= 3""") >= 1
    completed = scalar(seeded_engine, "SELECT avg((analysis_status = 'completed')::int) FROM repositories")
    assert 0.2 < completed < 0.8


def test_events_happen_after_what_they_depend_on(seeded_engine: Engine) -> None:
    checks = [
        "SELECT count(*) FROM repositories r JOIN users u ON u.id = r.owner_id WHERE r.created_at < u.created_at",
        "SELECT count(*) FROM insights i JOIN repositories r ON r.id = i.repository_id "
        "WHERE i.generated_at < r.created_at OR i.generated_at > r.last_analyzed + interval '1 day'",
        "SELECT count(*) FROM insights i JOIN repositories r ON r.id = i.repository_id "
        "WHERE r.analysis_status = 'pending'",
        "SELECT count(*) FROM user_repository_follows f JOIN users u ON u.id = f.user_id "
        "JOIN repositories r ON r.id = f.repository_id WHERE f.followed_at < greatest(u.created_at, r.created_at)",
        "SELECT count(*) FROM api_keys WHERE is_active AND expires_at < :asof",
        "SELECT count(*) FROM repositories WHERE (analysis_status = 'pending') <> (last_analyzed IS NULL) "
        "AND analysis_status <> 'in_progress'",
    ]
    for check in checks:
        assert scalar(seeded_engine, check, asof=AS_OF) == 0, check


# --- loading behaviour --------------------------------------------------------------------------------------

def test_loading_into_data_needs_replace_and_never_duplicates(seeded_engine: Engine) -> None:
    before = fingerprints(seeded_engine)
    with pytest.raises(DataExistsError, match="replace"):
        load_synthetic(seeded_engine, scale="tiny", seed=42, progress=False)
    assert fingerprints(seeded_engine) == before
    result = load_synthetic(seeded_engine, scale="tiny", seed=42, replace=True, progress=False)
    assert fingerprints(seeded_engine) == before
    assert result.rows == counts(seeded_engine) and result.rows_per_second > 0


@pytest.mark.parametrize("defer", [True, False])
@pytest.mark.parametrize("how", ["python", "postgres"])
def test_a_failure_mid_load_leaves_the_database_as_it_was(engine: Engine, defer: bool, how: str) -> None:
    before = schema_snapshot(engine)
    sources = [failing_source(s, how) if s.table == "insights" else s for s in synthetic_sources("tiny", 42)]
    with pytest.raises(RuntimeError if how == "python" else DataLoadError):
        bulk_load(engine, sources, progress=False, defer_indexes=defer)
    assert counts(engine) == dict.fromkeys(TABLES, 0)
    assert schema_snapshot(engine) == before


def test_deferred_indexes_come_back_exactly_as_migrated(engine: Engine) -> None:
    before = schema_snapshot(engine)
    from gitinsight_analytics.seed.synthetic import prepare_load

    result = bulk_load(engine, synthetic_sources("tiny", 42), progress=False, defer_indexes=True, prepare=prepare_load)
    assert result.rows["insights"] == SCALES["tiny"].insights
    after = schema_snapshot(engine)
    new_partitions = {r[0] for r in after if r[0].startswith("audit_logs_y")} - {r[0] for r in before}
    assert new_partitions  # the months of the data
    assert [r for r in after if r[0] not in new_partitions] == before
    assert migrate.drift(engine) == []
    assert scalar(engine, "SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0


def test_drift_is_empty_after_a_load(seeded_engine: Engine) -> None:
    assert migrate.drift(seeded_engine) == []


@pytest.mark.parametrize("kwargs, parameter", [({"scale": "huge"}, "scale"), ({"scale": "tiny", "seed": -1}, "seed")])
def test_bad_arguments_name_the_parameter(engine: Engine, kwargs: dict, parameter: str) -> None:
    with pytest.raises(ValidationError, match=parameter):
        load_synthetic(engine, progress=False, **kwargs)


# --- command line ---------------------------------------------------------------------------------------------

def test_cli_seed_loads_and_asks_for_replace(cli_env: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "--scale", "tiny", "--seed", "3"]) == 0
    assert "loaded" in capsys.readouterr().out
    assert counts(cli_env)["insights"] == SCALES["tiny"].insights
    assert main(["seed", "--scale", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--replace" in err
    assert main(["seed", "--scale", "tiny", "--seed", "3", "--replace"]) == 0


def test_cli_rejects_an_unknown_scale_in_one_line(cli_env: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "--scale", "huge"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "scale" in err and "tiny, small, medium, large" in err
    assert counts(cli_env)["users"] == 0
