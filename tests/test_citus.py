"""The workbench on Citus (issue 10): the layout, the same numbers as one node, routing, keys, RLS, downgrade.

A real 2-worker cluster (tests/conftest.py ``citus_cluster``) built from ../shared/citus; the single node is the
session's embedded server with the same synthetic seed.
"""

from __future__ import annotations

import os
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gitinsight_analytics import citus, cluster, migrate, queries
from gitinsight_analytics.cli import main
from gitinsight_analytics.db import make_engine, sqlalchemy_url
from gitinsight_analytics.security import as_user

from .conftest import REAL_DATA as REAL
from .conftest import SMALL_POOL, counter
from .faults_support import failing_source, schema_snapshot

pytestmark = pytest.mark.slow


def _pick(engine: Engine, query: str) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text(query)).scalar_one()


def _arguments(engine: Engine, name: str) -> dict[str, object]:
    """Arguments for each query function: the data's own busiest user and most followed repository."""
    if name == "user_dashboard":
        return {"username": _pick(engine, "SELECT u.username FROM users u JOIN user_repository_follows f "
                                          "ON f.user_id = u.id GROUP BY u.id, u.username "
                                          "ORDER BY count(*) DESC, u.username LIMIT 1")}
    if name in {"compare_repositories", "latest_insights"}:
        with engine.connect() as conn:
            names = conn.execute(sa.text("SELECT r.full_name FROM repositories r JOIN insights i ON i.repository_id "
                                         "= r.id GROUP BY r.full_name ORDER BY count(*) DESC, r.full_name LIMIT 2"))
            return {"full_names": list(names.scalars())}
    if name == "calibration_comparison":
        return {"n_bootstrap": 100}
    if name == "get_repository_stats":
        return {"full_name": _pick(engine, "SELECT r.full_name FROM repositories r JOIN insights i "
                                           "ON i.repository_id = r.id GROUP BY r.full_name "
                                           "ORDER BY count(*) DESC, r.full_name LIMIT 1")}
    return {}


COMPARED = [n for n in queries.__all__ if callable(getattr(queries, n)) and n not in {"refresh_stats",
                                                                                         "command_history"}]


def test_layout_is_distributed_and_idempotent(citus_seeded: Engine) -> None:
    with citus_seeded.connect() as conn:
        tables = citus.distributed_tables(conn)
        groups = dict(conn.execute(sa.text(
            "SELECT logicalrelid::regclass::text, colocationid FROM pg_dist_partition")).all())
    assert {t: tables[t] for t in ("users", "api_keys", "repository_keys", "github_ranking_files")} == dict.fromkeys(
        ("users", "api_keys", "repository_keys", "github_ranking_files"), "n")
    colocated = ("repositories", "insights", "analysis_jobs", "repository_snapshots", "user_repository_follows",
                 "repository_stats", "repository_snapshot_deltas", "repository_star_trends")
    assert {tables[t] for t in colocated} == {"h"} and len({groups[t] for t in colocated}) == 1
    assert tables["audit_logs"] == "h"
    assert migrate.upgrade(citus_seeded) == ["the schema is already laid out for Citus: nothing to do"]


@pytest.mark.parametrize("table", ["repositories", "insights", "analysis_jobs", "user_repository_follows", "users"])
def test_the_load_vacuums_and_analyzes_every_shard(citus_seeded: Engine, table: str) -> None:
    """The seed's VACUUM (ANALYZE) reaches the shards: the workers plan with statistics, not guesses, right after a
    load, and every page is marked all-visible (what COPY FREEZE does on one node), not left to autovacuum."""
    with citus_seeded.connect() as conn:
        shards = conn.execute(sa.text(
            "SELECT result FROM run_command_on_placements(CAST(:t AS regclass), "
            "'SELECT reltuples || ''/'' || relpages || ''/'' || relallvisible FROM pg_class "
            "WHERE oid = ''%s''::regclass')"), {"t": table}).scalars().all()
    figures = [tuple(float(v) for v in shard.split("/")) for shard in shards]
    assert figures and all(tuples >= 0 and visible == pages for tuples, pages, visible in figures)


@pytest.mark.parametrize("name", COMPARED)
def test_same_frames_as_a_single_node(citus_seeded: Engine, seeded_engine: Engine, name: str) -> None:
    function = getattr(queries, name)
    single = function(seeded_engine, **_arguments(seeded_engine, name))
    distributed = function(citus_seeded, **_arguments(citus_seeded, name))
    if isinstance(single, pd.DataFrame):
        # no star history or outcomes in the synthetic data: those are compared on the imported real data below
        assert len(single) > 0 or name in {"job_failures", "queue_backlog", "trending_by_stars", "compare_repositories",
                                           "calibration_summary", "reliability_diagram", "calibration_comparison"}
        pd.testing.assert_frame_equal(distributed, single)
    elif isinstance(single, dict):  # data_as_of: the same dates; when each side's views were refreshed differs
        assert {k: v for k, v in distributed.items() if k != "view_refreshed_at"} == {
            k: v for k, v in single.items() if k != "view_refreshed_at"}
    else:
        assert distributed == single


def _explain(engine: Engine, query: str, params: dict[str, object]) -> str:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # Citus delegates outside BEGIN
        return "\n".join(conn.execute(sa.text("EXPLAIN " + query), params).scalars())


def test_one_repository_and_a_dashboard_page_stay_on_one_shard(citus_seeded: Engine) -> None:
    repo = _pick(citus_seeded, "SELECT id::text FROM repositories ORDER BY full_name LIMIT 1")
    # the call is delegated to the worker holding the repository's shard ...
    stats = _explain(citus_seeded, f"SELECT get_repository_stats('{uuid.UUID(repo)}'::uuid)", {})
    assert "Task Count: 1" in stats, stats
    # ... and the query it runs (queries.get_repository_stats calls it in FROM, on the coordinator) is routed there
    one = _explain(citus_seeded, "SELECT type, count(*) FROM insights WHERE repository_id = CAST(:r AS uuid) "
                                 "GROUP BY type", {"r": repo})
    assert "Task Count: 1" in one, one
    user = _pick(citus_seeded, "SELECT user_id::text FROM user_repository_follows LIMIT 1")
    page = _explain(citus_seeded, """
        SELECT r.full_name, count(i.id) FROM user_repository_follows f
        JOIN repositories r ON r.id = f.repository_id LEFT JOIN insights i ON i.repository_id = r.id
        WHERE f.user_id = CAST(:u AS uuid) GROUP BY r.full_name ORDER BY r.full_name LIMIT 20""", {"u": user})
    # co-located: one distributed scan whose tasks do the joins themselves (the planner's join method is its own
    # choice), no repartitioning, no subplan pulling rows to the coordinator
    assert page.count("Custom Scan (Citus Adaptive)") == 1, page
    assert "Repartition" not in page and "Subplan" not in page, page
    task = page.split("->  Task", 1)[1]
    assert "Join" in task or "Nested Loop" in task, page


def test_search_and_trending_run_on_every_shard_with_the_limit_pushed_down(citus_seeded: Engine) -> None:
    with citus_seeded.connect() as conn:
        shards = conn.execute(sa.text("SELECT shard_count FROM citus_tables WHERE table_name = "
                                      "'repositories'::regclass")).scalar_one()
    search = _explain(citus_seeded, "SELECT full_name FROM repositories WHERE name ILIKE :t "
                                    "ORDER BY stars DESC NULLS LAST, id LIMIT 20", {"t": "%a%"})
    assert f"Task Count: {shards}" in search and search.count("Limit") >= 2, search
    trending = _explain(citus_seeded, "SELECT repository_id, sum(d_stars) FROM repository_snapshot_deltas "
                                      "GROUP BY repository_id ORDER BY 2 DESC LIMIT 10", {})
    assert f"Task Count: {shards}" in trending and trending.count("Limit") >= 2, trending


def _remote_commands(engine: Engine, call) -> list[str]:
    """The commands the coordinator sent to workers while ``call(engine)`` ran, from Citus' own log."""
    logged: list[str] = []
    watched = make_engine(engine.url, pool=SMALL_POOL)

    @sa.event.listens_for(watched, "connect")
    def _log(dbapi_connection, _record) -> None:
        dbapi_connection.add_notice_handler(lambda d: logged.append(d.message_primary or ""))
        dbapi_connection.autocommit = True
        dbapi_connection.execute("SET citus.log_remote_commands = on")
        dbapi_connection.execute("SET client_min_messages = log")
        dbapi_connection.autocommit = False

    try:
        call(watched)
    finally:
        watched.dispose()
    return [m.removeprefix("issuing ") for m in logged if m.startswith("issuing ")]


@pytest.mark.parametrize("name", ["search_repositories", "trending_by_score", "user_dashboard"])
def test_analyses_open_no_worker_transactions(citus_seeded: Engine, name: str) -> None:
    kwargs = _arguments(citus_seeded, name)
    sent = _remote_commands(citus_seeded, lambda engine: getattr(queries, name)(engine, **kwargs))
    assert any(c.startswith("SELECT") for c in sent), sent  # it did reach the shards ...
    # ... with no BEGIN / distributed transaction id / COMMIT round trips around the reads
    assert not [c for c in sent if c.startswith(("BEGIN", "COMMIT", "ROLLBACK"))], sent


def test_a_write_still_opens_worker_transactions(citus_seeded: Engine) -> None:
    repo = _pick(citus_seeded, "SELECT id::text FROM repositories ORDER BY full_name LIMIT 1")

    def write(engine: Engine) -> None:
        with engine.connect() as conn:  # rolled back: the module's data stays as seeded
            conn.execute(sa.text("SELECT set_config('citus.select_opens_transaction_block', 'off', true)"))
            conn.execute(sa.text("UPDATE repositories SET stars = stars WHERE id = CAST(:r AS uuid)"), {"r": repo})
            conn.rollback()

    sent = _remote_commands(citus_seeded, write)
    assert any(c.startswith("BEGIN") for c in sent) and any(c.startswith("ROLLBACK") for c in sent), sent


def test_full_name_and_github_id_stay_unique(citus_seeded: Engine) -> None:
    with citus_seeded.connect() as conn:
        existing = conn.execute(sa.text("SELECT full_name, github_id, owner_id FROM repositories LIMIT 1")).one()
    insert = sa.text("INSERT INTO repositories (github_id, name, full_name, url, clone_url, owner_id) "
                     "VALUES (:g, 'x', :f, 'u', 'c', :o)")
    sequential = sa.text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")  # writers of repositories do
    for github_id, full_name in ((existing.github_id, "someone/else"), (10**12, existing.full_name)):
        with pytest.raises(sa.exc.IntegrityError), citus_seeded.begin() as conn:
            conn.execute(sequential)
            conn.execute(insert, {"g": github_id, "f": full_name, "o": existing.owner_id})
            citus.sync_repository_keys(conn)
    # A writer that does not record the keys is refused at commit by the deferred foreign key (Citus reports the
    # worker's refusal to commit as an internal error), and nothing is written.
    with pytest.raises((sa.exc.IntegrityError, sa.exc.InternalError)), citus_seeded.begin() as conn:
        conn.execute(insert, {"g": 10**12, "f": "someone/new", "o": existing.owner_id})
    with citus_seeded.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM repositories WHERE github_id = 10^12")).scalar() == 0


def test_row_level_security_matches_the_single_node(citus_seeded: Engine, seeded_engine: Engine) -> None:
    user = uuid.UUID(_pick(seeded_engine, "SELECT user_id::text FROM user_repository_follows "
                                          "GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1"))
    counts = []
    for engine in (seeded_engine, citus_seeded):
        with as_user(engine, user) as conn:
            counts.append([conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                           for t in ("repositories", "insights", "users", "user_repository_follows", "api_keys")])
    assert counts[0] == counts[1] and counts[0][0] > 0


def _shard_layout(engine: Engine) -> dict[str, list[tuple[int, str]]]:
    """Per shard placement of the main tables: its count of indexes and of constraints."""
    with engine.connect() as conn:
        return {table: sorted(tuple(r) for r in conn.execute(sa.text(
            "SELECT shardid, result FROM run_command_on_placements(CAST(:t AS regclass), "
            "'SELECT (SELECT count(*) FROM pg_index WHERE indrelid = c.oid) || ''/'' || "
            "(SELECT count(*) FROM pg_constraint WHERE conrelid = c.oid) "
            "FROM (SELECT ''%s''::regclass AS oid) c')"), {"t": table}))
            for table in ("repositories", "insights", "analysis_jobs", "user_repository_follows", "users")}


@pytest.mark.parametrize("fails", [False, True], ids=["loaded", "failed mid-load"])
def test_a_deferred_load_rebuilds_every_index_and_key_on_every_shard(citus_cluster, fails: bool) -> None:
    """Large loads drop the indexes and keys and rebuild them after the COPY, on Citus too: the same layout on the
    coordinator and on every shard placement afterwards (or, when the load fails, after the rollback)."""
    from gitinsight_analytics.seed.loader import bulk_load
    from gitinsight_analytics.seed.synthetic import SCALES, prepare_load, synthetic_sources

    name = f"gi_citus_{os.getpid()}_{next(counter)}"
    engine = make_engine(sqlalchemy_url(cluster.create_database(citus_cluster, name)), pool=SMALL_POOL)
    try:
        migrate.upgrade(engine)
        before, shards_before = schema_snapshot(engine), _shard_layout(engine)
        sources = [failing_source(s, "python") if fails and s.table == "insights" else s
                   for s in synthetic_sources("tiny", 42)]
        if fails:
            with pytest.raises(RuntimeError, match="mid-load"):
                bulk_load(engine, sources, progress=False, defer_indexes=True, prepare=prepare_load)
        else:
            result = bulk_load(engine, sources, progress=False, defer_indexes=True, prepare=prepare_load)
            assert any(step.startswith("index ") for step in result.step_seconds)  # it did defer
        after = schema_snapshot(engine)
        partitions = {r[0] for r in after} - {r[0] for r in before}
        assert [r for r in after if r[0] not in partitions] == before
        assert _shard_layout(engine) == shards_before
        assert migrate.drift(engine) == []
        assert migrate.upgrade(engine) == ["the schema is already laid out for Citus: nothing to do"]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM insights")).scalar_one() == (
                0 if fails else SCALES["tiny"].insights)
    finally:
        engine.dispose()
        cluster.drop_database(citus_cluster, name)


def test_downgrade_and_upgrade_again(citus_cluster) -> None:
    name = f"gi_citus_{os.getpid()}_{next(counter)}"
    engine = make_engine(sqlalchemy_url(cluster.create_database(citus_cluster, name)), pool=SMALL_POOL)
    try:
        assert any("distributed on id" in a for a in migrate.upgrade(engine))
        undone = migrate.downgrade(engine, "base")
        assert "repositories: local table again" in undone
        with engine.connect() as conn:
            assert citus.distributed_tables(conn) == {}
        assert migrate.upgrade(engine)[0] != "the schema is already laid out for Citus: nothing to do"
        assert migrate.drift(engine) == []
    finally:
        engine.dispose()
        cluster.drop_database(citus_cluster, name)


def test_cluster_cli_needs_a_citus_bindir(tmp_path, monkeypatch, capsys) -> None:
    from gitinsight_analytics.server import bindir
    from gitinsight_analytics.settings import load_settings

    monkeypatch.setenv("GITINSIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("GITINSIGHT_PG_BINDIR", str(bindir(load_settings({}))))  # the wheel's: no Citus
    assert main(["cluster", "start", "--workers", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has no Citus extension" in err and "build.sh" in err


def test_cluster_cli_status_and_url(citus_cluster, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GITINSIGHT_HOME", str(citus_cluster.home))
    monkeypatch.setenv("GITINSIGHT_CLUSTER_PORT", str(citus_cluster.cluster_port))
    assert main(["cluster", "status"]) == 0
    out = capsys.readouterr().out
    assert "worker2: running" in out and "Citus 14" in out and out.count("127.0.0.1:") >= 5
    assert main(["cluster", "url"]) == 0
    assert capsys.readouterr().out.strip() == f"postgresql://postgres@127.0.0.1:{citus_cluster.cluster_port}/gitinsight"


@pytest.fixture(scope="module")
def imported_pair(citus_cluster, pg, migrated_template):
    """The same real github-ranking files (the last 8 daily files, renames included) imported into a single-node
    database and into a cluster database."""
    from gitinsight_analytics.seed import import_github_ranking

    from .conftest import create_database, drop_database, unavailable

    files = sorted(REAL.glob("github-ranking-*.csv"))[-8:]
    if len(files) < 8:
        unavailable(f"the real data is missing at {REAL}")
    single_name, citus_name = (f"gi_citus_{os.getpid()}_{next(counter)}" for _ in range(2))
    single = make_engine(create_database(pg, single_name, template=migrated_template), pool=SMALL_POOL)
    distributed = make_engine(sqlalchemy_url(cluster.create_database(citus_cluster, citus_name)), pool=SMALL_POOL)
    migrate.upgrade(distributed)
    results = [import_github_ranking(engine, files, progress=False) for engine in (single, distributed)]
    yield single, distributed, results
    for engine in (single, distributed):
        engine.dispose()
    drop_database(pg, single_name)
    cluster.drop_database(citus_cluster, citus_name)


def test_import_counts_match(imported_pair) -> None:
    _, _, (single, distributed) = imported_pair
    fields = ("files_read", "users_created", "repositories_created", "repositories_updated", "snapshots_added",
              "renames", "latest_date")
    assert {f: getattr(distributed, f) for f in fields} == {f: getattr(single, f) for f in fields}
    assert single.snapshots_added > 1000


@pytest.mark.parametrize(("name", "kwargs"), [
    ("trending_by_stars", {"window_days": 7}),
    ("trending_by_stars", {"window_days": 3, "language": "Python"}),
    ("trending_by_stars", {"window_days": 30, "language": "Python"}),
    ("search_repositories", {"text": "react", "limit": 50}),
    ("repository_stats", {"limit": 100}),
    ("data_as_of", {}),
    ("default_repositories", {"count": 4}),
    ("compare_repositories", {"full_names": ["react/react", "vuejs/vue", "torvalds/linux"]}),
    ("compare_repositories", {"full_names": ["react/react", "vuejs/vue"], "metric": "forks", "align": "age"}),
])
def test_star_history_queries_match(imported_pair, name: str, kwargs: dict) -> None:
    single, distributed, _ = imported_pair
    left, right = (getattr(queries, name)(engine, **kwargs) for engine in (distributed, single))
    if name == "trending_by_stars":  # 7 and 30 days: from repository_star_trends on both sides; 3: live
        assert left.attrs["precomputed"] is right.attrs["precomputed"] is (kwargs["window_days"] != 3)
    if isinstance(right, pd.DataFrame):
        assert len(right) > 0
        clock = [c for c in ("created_at", "updated_at") if c in right]  # when each import ran, not data
        pd.testing.assert_frame_equal(left.drop(columns=clock), right.drop(columns=clock))
    elif isinstance(right, list):
        assert left == right and right
    else:
        assert {k: v for k, v in left.items() if k != "view_refreshed_at"} == {
            k: v for k, v in right.items() if k != "view_refreshed_at"}


def test_import_again_is_a_no_op_and_keys_are_recorded(imported_pair) -> None:
    from gitinsight_analytics.seed import import_github_ranking

    _, distributed, _ = imported_pair
    again = import_github_ranking(distributed, sorted(REAL.glob("github-ranking-*.csv"))[-8:], progress=False)
    assert again.files_read == 0 and again.files_skipped == 8
    with distributed.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM repositories r JOIN repository_keys k ON "
                                    "k.repository_id = r.id AND k.full_name = r.full_name")).scalar() == conn.execute(
            sa.text("SELECT count(*) FROM repository_keys")).scalar() > 0


def test_backup_of_a_cluster_restores_every_row_into_a_single_node_and_a_cluster(
        citus_seeded: Engine, citus_cluster, pg, tmp_path) -> None:
    from gitinsight_analytics.backup.restore import restore_backup
    from gitinsight_analytics.backup.sets import create_backup

    from .conftest import create_database, drop_database

    backup = create_backup(citus_seeded, tmp_path / "backups")
    with citus_seeded.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("users", "repositories", "insights", "audit_logs", "user_repository_follows")}
    assert backup.rows >= sum(counts.values()) > 0
    single_name, citus_name = (f"gi_citus_{os.getpid()}_{next(counter)}" for _ in range(2))
    single_url = create_database(pg, single_name)
    citus_url = cluster.create_database(citus_cluster, citus_name)
    try:
        for url in (single_url, citus_url):
            report = restore_backup(url, backup.path)
            assert not report.verification.problems
            engine = make_engine(sqlalchemy_url(url), pool=SMALL_POOL)
            with engine.connect() as conn:
                assert {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                        for t in counts} == counts
                assert bool(citus.distributed_tables(conn)) is (url == citus_url)
            engine.dispose()
    finally:
        drop_database(pg, single_name)
        cluster.drop_database(citus_cluster, citus_name)


def test_every_report_renders_from_the_cluster(citus_seeded: Engine, tmp_path) -> None:
    from gitinsight_analytics.reports.runner import render_all

    from .reports_support import NOTEBOOKS

    index = render_all(citus_seeded, reports_dir=tmp_path, notebooks_dir=NOTEBOOKS, echo=None)
    pages = sorted(tmp_path.glob("*/*/*.html"))
    assert index.exists() and len(pages) == len(list(NOTEBOOKS.glob("*.ipynb")))
    assert all("Traceback" not in page.read_text() for page in pages)


@pytest.mark.parametrize("argv", [
    ["refresh"],
    ["query", "search", "--text", "data", "--format", "csv"],
    ["query", "trending", "--by", "score", "--window-days", "30"],
    ["maintain", "partitions", "--months-ahead", "2"],
    ["audit"],
    ["keys", "list", "{user}"],
    ["keys", "create", "{user}", "--name", "citus-{n}"],
])
def test_commands_work_unchanged_against_the_cluster(citus_seeded: Engine, monkeypatch, capsys, tmp_path,
                                                     argv: list[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", citus_seeded.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GITINSIGHT_HOME", str(tmp_path / "home"))
    user = _pick(citus_seeded, "SELECT username FROM users ORDER BY username LIMIT 1")
    args = [a.format(user=user, n=next(counter)) for a in argv]
    assert main(args) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip()
