"""Row-level security in practice: security.as_user, the policies of migration 0004, FORCE, the view of
repository_stats, and every query of the package run as one user.

The data (factories.fan_out): alice owns ``busy``; bob owns ``quiet`` (alice follows it) and ``private`` (nobody
follows it). So alice sees busy and quiet; bob sees all three (he follows busy); ``private`` is bob's alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gitinsight_analytics import migrate, objects, queries
from gitinsight_analytics.db import make_engine
from gitinsight_analytics.exceptions import ConfigurationError, RowSecurityError, ValidationError
from gitinsight_analytics.maintenance.refresh import refresh_repository_stats
from gitinsight_analytics.security.rls import USER_ID_SETTING, as_user, check_rls_bypass
from gitinsight_analytics.settings import PoolSettings, Settings

from . import factories as f
from .conftest import SMALL_POOL, create_database, drop_database

UTC = dt.UTC
BASE = dt.datetime(2026, 8, 1, tzinfo=UTC)
#: What only bob's private repository carries: none of it may reach alice.
MARKERS = ("bob/private", "secret", "Rust")


@dataclass
class World(f.FanOut):
    names: dict[uuid.UUID, str] | None = None


def build_world(conn: Connection) -> World:
    """fan_out plus jobs, snapshots, API keys and audit rows on every repository/user; ``private`` carries the
    markers (its newest insight is the newest of all, so the global recent_as_of of repository_stats is its day)."""
    data = f.fan_out(conn)
    world = World(**vars(data))
    world.names = {data.busy: "busy", data.quiet: "quiet", data.private: "private"}
    f.insight(conn, data.private, type="secret_type", confidence=0.05, model_version="secret-model",
              tags=["secret-tag"], generated_at=BASE + dt.timedelta(days=10))
    for repo, kind, error in ((data.busy, "full_analysis", "timeout after 30 s"),
                              (data.quiet, "full_analysis", "clone failed 2 times"),
                              (data.private, "secret_scan", "secret failure 7")):
        for status, hours in (("completed", 1), ("failed", 2), ("queued", 3), ("in_progress", 4)):
            created = BASE + dt.timedelta(hours=hours)
            conn.execute(sa.text(
                "INSERT INTO analysis_jobs (repository_id, status, type, created_at, started_at, completed_at, "
                "error_message) VALUES (:r, :s, :t, :c, :st, :done, :e)"),
                {"r": repo, "s": status, "t": kind, "c": created,
                 "st": None if status == "queued" else created + dt.timedelta(minutes=5),
                 "done": created + dt.timedelta(minutes=20) if status in ("completed", "failed") else None,
                 "e": error if status == "failed" else None})
        for day in range(3):
            conn.execute(sa.text(
                "INSERT INTO repository_snapshots (repository_id, snapshot_date, full_name, stars, forks, last_commit) "
                "SELECT id, :d, full_name, 100 + 10 * :n, 5, :lc FROM repositories WHERE id = :r"),
                {"r": repo, "d": BASE.date() + dt.timedelta(days=day), "n": day, "lc": BASE})
    for user in (data.alice, data.bob):
        conn.execute(sa.text("INSERT INTO api_keys (user_id, name, key_hash) VALUES (:u, 'k', md5(CAST(:u AS text)))"),
                     {"u": user})
        conn.execute(sa.text("INSERT INTO audit_logs (user_id, action, resource_type, details) "
                             "VALUES (:u, 'test', 'user', CAST(:d AS jsonb))"), {"u": user, "d": json.dumps({})})
    return world


@pytest.fixture
def world(engine: Engine) -> World:
    """build_world in the test's own database (for tests that change it)."""
    with engine.begin() as conn:
        return build_world(conn)


@pytest.fixture(scope="module")
def two_worlds(pg: Settings, migrated_template: str) -> Iterator[tuple[Engine, Engine, World]]:
    """Database ``full`` (build_world, views refreshed) and ``without``: the same minus bob's private repository."""
    suffix = uuid.uuid4().hex[:8]
    full_name, without_name = f"gi_rls_full_{suffix}", f"gi_rls_without_{suffix}"
    full = make_engine(create_database(pg, full_name, template=migrated_template), pool=SMALL_POOL)
    with full.begin() as conn:
        w = build_world(conn)
    refresh_repository_stats(full)
    full.dispose()
    without = make_engine(create_database(pg, without_name, template=full_name), pool=SMALL_POOL)
    with without.begin() as conn:
        conn.execute(sa.text("DELETE FROM repositories WHERE id = :r"), {"r": w.private})
    refresh_repository_stats(without)
    try:
        yield full, without, w
    finally:
        full.dispose()
        without.dispose()
        drop_database(pg, full_name)
        drop_database(pg, without_name)


@pytest.fixture
def shared(two_worlds: tuple[Engine, Engine, World]) -> tuple[Engine, World]:
    """The ``full`` database of two_worlds, for tests that read it (or roll back what they change)."""
    return two_worlds[0], two_worlds[2]


def _ids(conn: Connection, sql: str) -> set:
    return set(conn.execute(sa.text(sql)).scalars())


def _visible(conn: Connection, w: World) -> dict[str, set]:
    names = w.names or {}
    return {
        "repositories": {names[i] for i in _ids(conn, "SELECT id FROM repositories")},
        "insights": {names[i] for i in _ids(conn, "SELECT repository_id FROM insights")},
        "analysis_jobs": {names[i] for i in _ids(conn, "SELECT repository_id FROM analysis_jobs")},
        "repository_snapshots": {names[i] for i in _ids(conn, "SELECT repository_id FROM repository_snapshots")},
        "visible_repository_stats": {names[i] for i in _ids(conn, "SELECT id FROM visible_repository_stats")},
    }


# --- what each user sees --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "repos"), [("alice", {"busy", "quiet"}), ("bob", {"busy", "quiet", "private"}),
                                            ("stranger", set())])
def test_each_user_sees_the_repositories_it_owns_or_follows(shared: tuple[Engine, World], who: str,
                                                            repos: set[str]) -> None:
    engine, world = shared
    user = {"alice": world.alice, "bob": world.bob, "stranger": uuid.uuid4()}[who]
    with as_user(engine, user) as conn:
        seen = _visible(conn, world)
        follows = _ids(conn, "SELECT user_id FROM user_repository_follows")
        users = _ids(conn, "SELECT id FROM users")
        keys = _ids(conn, "SELECT user_id FROM api_keys")
        audit = _ids(conn, "SELECT user_id FROM audit_logs")
        insights = conn.execute(sa.text("SELECT count(*) FROM insights")).scalar()
    assert seen == dict.fromkeys(seen, repos)
    assert follows <= {user} and keys <= {user} and audit <= {user}
    assert users == ({world.alice, world.bob} if repos else set())  # itself, and the owners of what it sees
    with engine.connect() as conn:
        expected = conn.execute(sa.text("SELECT count(*) FROM insights WHERE repository_id = ANY(:r)"),
                                {"r": [i for i, n in (world.names or {}).items() if n in repos]}).scalar()
    assert insights == expected


@pytest.mark.parametrize("setting", [None, ""])
def test_a_missing_user_id_shows_nothing_and_is_no_error(shared: tuple[Engine, World], setting: str | None) -> None:
    engine, world = shared
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL ROLE application_role"))
        if setting is not None:
            conn.execute(sa.text("SELECT set_config(:s, :v, true)"), {"s": USER_ID_SETTING, "v": setting})
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()  # constant names
                  for t in (*objects.RLS_TABLES, *objects.ALERTS_RLS_TABLES, "visible_repository_stats")}
    assert counts == dict.fromkeys(counts, 0)


@pytest.mark.parametrize("bad", [None, "", "alice", 42, "1234", "6f1c-not-a-uuid", b"\x00" * 16])
def test_as_user_needs_a_uuid(shared: tuple[Engine, World], bad: object) -> None:
    engine = shared[0]
    with pytest.raises(ValidationError, match=r"^user_id: .* is not a UUID"), as_user(engine, bad):  # type: ignore[arg-type]
        pytest.fail("the block must not run")


def test_as_user_accepts_uuid_text(shared: tuple[Engine, World]) -> None:
    engine, world = shared
    with as_user(engine, f"  {str(world.alice).upper()} ") as conn:
        assert conn.execute(sa.text("SELECT app_current_user_id()")).scalar() == world.alice


# --- writes -----------------------------------------------------------------------------------------------------

# Run as alice: each touches only rows she may not change (bob's, including ``quiet``, which she follows).
OTHERS_ROWS = {
    "update bob's private repository": "UPDATE repositories SET stars = 0 WHERE id = :private",
    "delete bob's private repository": "DELETE FROM repositories WHERE id = :private",
    "update a followed repository": "UPDATE repositories SET stars = 0 WHERE id = :quiet",
    "delete a followed repository": "DELETE FROM repositories WHERE id = :quiet",
    "update bob's insights": "UPDATE insights SET confidence_score = 0 WHERE repository_id IN (:private, :quiet)",
    "delete bob's insights": "DELETE FROM insights WHERE repository_id IN (:private, :quiet)",
    "delete bob's jobs": "DELETE FROM analysis_jobs WHERE repository_id IN (:private, :quiet)",
    "delete bob's snapshots": "DELETE FROM repository_snapshots WHERE repository_id IN (:private, :quiet)",
    "delete bob (cascading to his repositories)": "DELETE FROM users WHERE id = :bob",
    "update bob": "UPDATE users SET email = 'x@example.com' WHERE id = :bob",
    "delete bob's follows": "DELETE FROM user_repository_follows WHERE user_id = :bob",
    "delete bob's API keys": "DELETE FROM api_keys WHERE user_id = :bob",
    "update bob's API keys": "UPDATE api_keys SET is_active = false WHERE user_id = :bob",
}


class _Undo(Exception):
    """Raised at the end of a block to roll back what it did (the shared database stays as built)."""


def _snapshot(conn: Connection) -> dict[str, Any]:
    """A digest of every row of the RLS tables, as the connection's role sees them."""
    return {t: conn.execute(sa.text(f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {t} t"))
            .scalar() for t in objects.RLS_TABLES}


def _params(w: World) -> dict[str, uuid.UUID]:
    return {"alice": w.alice, "bob": w.bob, "busy": w.busy, "quiet": w.quiet, "private": w.private}


@pytest.mark.parametrize("statement", OTHERS_ROWS.values(), ids=OTHERS_ROWS.keys())
def test_updates_and_deletes_of_other_users_rows_affect_nothing(shared: tuple[Engine, World], statement: str) -> None:
    engine, world = shared
    with engine.connect() as conn:
        before = _snapshot(conn)
    with pytest.raises(_Undo), as_user(engine, world.alice) as conn:
        changed = conn.execute(sa.text(statement), _params(world)).rowcount
        conn.exec_driver_sql("RESET ROLE")  # the admin looks, in the same transaction (cascades included)
        after = _snapshot(conn)
        raise _Undo
    assert changed == 0
    assert after == before


REFUSED = {
    "insight into bob's private repository": "INSERT INTO insights (repository_id, type, title, confidence_score, "
                                             "data) VALUES (:private, 't', 't', 0.5, '{}')",
    "insight into a followed repository": "INSERT INTO insights (repository_id, type, title, confidence_score, "
                                          "data) VALUES (:quiet, 't', 't', 0.5, '{}')",
    "move an own insight to bob's repository": "UPDATE insights SET repository_id = :private "
                                               "WHERE repository_id = :busy",
    "a repository owned by bob": "INSERT INTO repositories (github_id, name, full_name, url, clone_url, owner_id) "
                                 "VALUES (1, 'x', 'bob/x', 'u', 'c', :bob)",
    "give an own repository to bob": "UPDATE repositories SET owner_id = :bob WHERE id = :busy",
    "follow bob's private repository": "INSERT INTO user_repository_follows (user_id, repository_id) "
                                       "VALUES (:alice, :private)",
    "job on bob's repository": "INSERT INTO analysis_jobs (repository_id, type) VALUES (:private, 'x')",
    "snapshot of bob's repository": "INSERT INTO repository_snapshots (repository_id, snapshot_date, full_name, "
                                    "stars, forks) VALUES (:private, '2030-01-01', 'bob/private', 1, 1)",
    "an API key for bob": "INSERT INTO api_keys (user_id, name, key_hash) VALUES (:bob, 'k', 'h')",
    "an audit row in bob's name": "INSERT INTO audit_logs (user_id, action, resource_type) VALUES (:bob, 'a', 'r')",
    "repoint an own follow": "UPDATE user_repository_follows SET repository_id = :private WHERE user_id = :alice",
    "rewrite the audit log": "UPDATE audit_logs SET action = 'x' WHERE user_id = :alice",
    "delete from the audit log": "DELETE FROM audit_logs WHERE user_id = :alice",
}


@pytest.mark.parametrize("statement", REFUSED.values(), ids=REFUSED.keys())
def test_writes_into_other_users_rows_are_refused(shared: tuple[Engine, World], statement: str) -> None:
    engine, world = shared
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security policy|permission denied"):
        with as_user(engine, world.alice) as conn:
            conn.execute(sa.text(statement), _params(world))


def test_owners_write_their_own_rows(engine: Engine, world: World) -> None:
    """The other side of the two tests above: what alice may change, she can."""
    with engine.begin() as conn:
        carol = f.user(conn, "carol")
    with as_user(engine, world.alice) as conn:
        p = _params(world)
        assert conn.execute(sa.text("UPDATE repositories SET stars = 7 WHERE id IN (:busy, :quiet)"), p).rowcount == 1
        conn.execute(sa.text("INSERT INTO insights (repository_id, type, title, confidence_score, data) "
                             "VALUES (:busy, 't', 't', 0.5, '{}')"), p)
        conn.execute(sa.text("INSERT INTO user_repository_follows (user_id, repository_id) VALUES (:c, :busy)"),
                     p | {"c": carol})  # sharing her repository with carol
        assert conn.execute(sa.text("UPDATE user_repository_follows SET notification_settings = '{}' "
                                    "WHERE repository_id = :quiet"), p).rowcount == 1
        unfollowed = conn.execute(sa.text("DELETE FROM user_repository_follows WHERE repository_id = :quiet"), p)
        assert unfollowed.rowcount == 1
        conn.execute(sa.text("INSERT INTO audit_logs (user_id, action, resource_type) VALUES (:alice, 'a', 'r')"), p)
        assert conn.execute(sa.text("SELECT count(*) FROM repositories")).scalar() == 1  # quiet unfollowed
    with as_user(engine, carol) as conn:
        assert _ids(conn, "SELECT id FROM repositories") == {world.busy}


# --- materialized views -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("view", objects.ADMIN_ONLY_VIEWS)
def test_the_role_cannot_read_materialized_views_over_all_users(shared: tuple[Engine, World], view: str) -> None:
    engine, world = shared
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), as_user(engine, world.alice) as conn:
        conn.execute(sa.text(f"SELECT * FROM {view}"))  # constant names


def test_visible_repository_stats_and_get_repository_stats(shared: tuple[Engine, World]) -> None:
    engine, world = shared
    with as_user(engine, world.alice) as conn:
        ids = _ids(conn, "SELECT id FROM visible_repository_stats")
        mine = conn.execute(sa.text("SELECT total_insights FROM visible_repository_stats WHERE id = :r"),
                            {"r": world.busy}).scalar()
        hidden = conn.execute(sa.text("SELECT * FROM get_repository_stats(:r)"), {"r": world.private}).one()
        shown = conn.execute(sa.text("SELECT total_insights FROM get_repository_stats(:r)"), {"r": world.busy}).scalar()
        refreshed = conn.execute(sa.text("SELECT refreshed_at FROM analysis_views_refreshed")).scalar()
    assert ids == {world.busy, world.quiet} and mine == shown == 3
    assert tuple(hidden) == (0, None, None, [])  # bob's private repository: nothing, not even its count
    assert refreshed is not None
    with engine.connect() as conn:  # the admin sees every row through the view too
        assert _ids(conn, "SELECT id FROM visible_repository_stats") == {world.busy, world.quiet, world.private}


def test_a_leaky_function_of_the_user_sees_only_visible_rows(shared: tuple[Engine, World]) -> None:
    """visible_repository_stats is a security barrier: a user's own cheap function in WHERE is evaluated only on
    rows that passed the view's filter, so it cannot copy out the rows it hides."""
    engine, world = shared
    with pytest.raises(_Undo), as_user(engine, world.alice) as conn:
        conn.exec_driver_sql("CREATE TEMP TABLE leaked (name text)")
        conn.exec_driver_sql("""
            CREATE FUNCTION pg_temp.leak(name text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
            BEGIN INSERT INTO leaked VALUES (name); RETURN true; END $$""")
        conn.exec_driver_sql("SELECT count(*) FROM visible_repository_stats WHERE pg_temp.leak(full_name::text)")
        leaked = set(conn.exec_driver_sql("SELECT name FROM leaked").scalars())
        raise _Undo
    assert leaked == {"alice/busy", "bob/quiet"}


# --- every query of the package ---------------------------------------------------------------------------------

#: queries.__all__ -> calls as alice (kwargs). Each runs in two databases: with bob's private repository and
#: without it. What alice gets must be the same in both (a row, count, language or error message influenced by
#: the private repository would differ) and must not carry any of MARKERS.
CASES: dict[str, list[dict[str, Any]]] = {
    "search_repositories": [{"limit": 1000}, {"text": "private"}, {"language": "Rust"}, {"sort": "name"}],
    "user_dashboard": [{"username": "alice"}, {"username": "bob"}],
    "most_followed_user": [{}],
    "trending_by_score": [{}, {"window_days": 30, "min_confidence": 0.01}],
    "trending_by_stars": [{}],
    "data_as_of": [{}],
    "repository_stats": [{}, {"full_name": "bob/private"}, {"sort": "insights"}],
    "get_repository_stats": [{"full_name": "alice/busy"}, {"full_name": "bob/private"}],
    "refresh_stats": [{}],
    "confidence_distribution": [{}],
    "model_version_comparison": [{}],
    "low_confidence_share": [{}],
    "tag_summary": [{}],
    "job_throughput": [{"window_days": 365}],
    "job_failures": [{"limit": 100}],
    "job_failure_rates": [{}],
    "queue_backlog": [{}],
    "job_durations": [{}],
    "command_history": [{}, {"action": "seed"}],
    "audit_partition_rows": [{}],
    "compare_repositories": [{"full_names": ["alice/busy", "bob/quiet"]}, {"full_names": ["alice/busy", "bob/private"]},
                             {"full_names": ["bob/quiet", "alice/busy"], "metric": "forks", "align": "age"}],
    "default_repositories": [{}, {"count": 10}],
    "latest_insights": [{"full_names": ["alice/busy", "bob/quiet"]}, {"full_names": ["alice/busy", "bob/private"]}],
    "calibration_summary": [{}],
    "reliability_diagram": [{}],
    "calibration_comparison": [{"n_bootstrap": 100}],
}
#: They read materialized views over every user's rows, which the role may not: a permission error.
NEEDS_ADMIN = {"trending_by_stars", "confidence_distribution", "model_version_comparison", "low_confidence_share",
               "tag_summary", "calibration_summary", "reliability_diagram", "calibration_comparison"}
#: (insight_outcomes, read by the calibration analyses, is not granted to the role: docs/seed-deviations.md.)
_VOLATILE_ATTRS = {"view_refreshed_at", "precomputed"}


def _outcome(engine: Engine, user: uuid.UUID, name: str, kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        with as_user(engine, user) as conn:
            result = getattr(queries, name)(conn, **kwargs)
    except sa.exc.DBAPIError as exc:
        return "db-error", getattr(exc.orig, "sqlstate", None)
    except ValidationError as exc:
        return "invalid", str(exc)
    if isinstance(result, pd.DataFrame):
        attrs = {k: v for k, v in result.attrs.items() if k not in _VOLATILE_ATTRS}
        return "frame", (result.reset_index(drop=True), attrs)
    if isinstance(result, dict):
        return "dict", {k: v for k, v in result.items() if k not in _VOLATILE_ATTRS}
    return "other", type(result).__name__


def _text(outcome: tuple[str, Any]) -> str:
    kind, value = outcome
    if kind == "frame":
        frame, attrs = value
        return frame.astype(str).to_csv() + repr(attrs)
    return repr(value)


@pytest.mark.parametrize(("name", "kwargs"), [(n, k) for n, ks in CASES.items() for k in ks],
                         ids=[f"{n}-{i}" for n, ks in CASES.items() for i in range(len(ks))])
def test_no_query_of_the_package_shows_a_user_other_users_data(
    two_worlds: tuple[Engine, Engine, World], name: str, kwargs: dict[str, Any]
) -> None:
    full, without, w = two_worlds
    seen, reference = _outcome(full, w.alice, name, kwargs), _outcome(without, w.alice, name, kwargs)
    if name in NEEDS_ADMIN:
        assert seen == reference == ("db-error", "42501")  # insufficient_privilege
        return
    assert seen[0] == reference[0] and seen[0] != "db-error", (seen, reference)
    if seen[0] == "frame":
        pd.testing.assert_frame_equal(seen[1][0], reference[1][0])
        assert seen[1][1] == reference[1][1]
    else:
        assert seen == reference
    if seen[0] != "invalid":  # an error message may repeat the name alice asked for
        assert not [m for m in MARKERS if m in _text(seen)]


def test_every_query_function_is_checked() -> None:
    assert set(CASES) == set(queries.__all__)


def test_the_markers_are_there_for_the_admin(two_worlds: tuple[Engine, Engine, World]) -> None:
    """Control: the same calls on the admin connection do show bob's private repository."""
    full, _, _ = two_worlds
    shown = [queries.search_repositories(full, limit=1000)["full_name"].tolist(),
             queries.repository_stats(full)["full_name"].tolist(), queries.tag_summary(full)["tag"].tolist(),
             queries.job_failure_rates(full)["job_type"].tolist()]
    assert "bob/private" in shown[0] and "bob/private" in shown[1]
    assert "secret-tag" in shown[2] and "secret_scan" in shown[3]


# --- pooled connections -----------------------------------------------------------------------------------------

def _session_state(conn: Connection) -> tuple[int, str, str | None, int]:
    row = conn.execute(sa.text("SELECT pg_backend_pid(), current_user::text, current_setting(:s, true), "
                               "(SELECT count(*) FROM repositories)"), {"s": USER_ID_SETTING}).one()
    return row[0], row[1], row[2] or None, row[3]


def test_a_pooled_connection_keeps_neither_role_nor_user_id(shared: tuple[Engine, World]) -> None:
    engine, world = shared
    single = make_engine(engine.url.render_as_string(hide_password=False), pool=PoolSettings(size=1, max_overflow=0))
    try:
        with single.connect() as conn:
            pid, login, _, everything = _session_state(conn)
        with as_user(single, world.alice) as conn:
            assert _session_state(conn) == (pid, "application_role", str(world.alice), 2)
        with as_user(single, world.bob) as conn:
            assert _session_state(conn) == (pid, "application_role", str(world.bob), 3)
        with single.connect() as conn:
            assert _session_state(conn) == (pid, login, None, everything) and everything == 3
        with pytest.raises(ZeroDivisionError), as_user(single, world.alice) as conn:
            conn.execute(sa.text("UPDATE repositories SET stars = 1 WHERE id = :r"), {"r": world.busy})
            _ = 1 / 0
        with pytest.raises(sa.exc.DataError), as_user(single, world.bob) as conn:
            conn.execute(sa.text("SELECT 1 / 0"))
        with single.connect() as conn:
            assert _session_state(conn) == (pid, login, None, everything)
            stars = conn.execute(sa.text("SELECT stars FROM repositories WHERE id = :r"), {"r": world.busy}).scalar()
            assert stars == 500
    finally:
        single.dispose()


def test_as_user_on_a_connection(shared: tuple[Engine, World]) -> None:
    engine, world = shared
    with engine.connect() as conn:
        login = conn.execute(sa.text("SELECT current_user::text")).scalar()
        with pytest.raises(RowSecurityError, match="transaction in progress"), as_user(conn, world.alice):
            pytest.fail("the block must not run")
        conn.rollback()
        with as_user(conn, world.alice) as inner:
            assert inner is conn and len(_ids(conn, "SELECT id FROM repositories")) == 2
        assert not conn.in_transaction()
        assert _session_state(conn)[1:] == (login, None, 3)
        conn.rollback()
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        with pytest.raises(RowSecurityError, match="autocommit"), as_user(auto, world.alice):
            pytest.fail("the block must not run")


@pytest.mark.parametrize("end", ["COMMIT", "ROLLBACK", "api commit"])
def test_ending_the_transaction_inside_the_block_is_refused(shared: tuple[Engine, World], end: str) -> None:
    """Whatever ran after the end of the block's transaction would run as the login role, unfiltered."""
    engine, world = shared
    ran = []
    # SQLAlchemy refuses to go on after Connection.commit() in a begin() block; as_user refuses after SQL COMMIT.
    error = sa.exc.InvalidRequestError if end == "api commit" else RowSecurityError
    with pytest.raises(error, match="transaction ended inside the block|closed transaction"):
        with as_user(engine, world.alice) as conn:
            if end == "api commit":
                conn.commit()
            else:
                conn.exec_driver_sql(end)
            ran.append(conn.execute(sa.text("SELECT count(*) FROM repositories")).scalar())
    assert ran == []


# --- FORCE and the admin role -----------------------------------------------------------------------------------

@contextlib.contextmanager
def _temporary_role(conn: Connection, *attributes: str) -> Iterator[str]:
    """A NOLOGIN role created inside ``conn``'s transaction (roles are cluster-wide: unique name; the caller rolls
    back, which removes it)."""
    name = f"gi_test_role_{uuid.uuid4().hex[:12]}"
    conn.exec_driver_sql(f'CREATE ROLE "{name}" NOLOGIN {" ".join(attributes)}')
    yield name


def test_force_holds_a_table_owner_that_is_not_a_superuser(shared: tuple[Engine, World]) -> None:
    engine, world = shared
    with engine.connect() as conn, _temporary_role(conn) as owner:
        conn.exec_driver_sql(f'ALTER TABLE repositories OWNER TO "{owner}"')
        conn.exec_driver_sql(f'SET ROLE "{owner}"')
        forced = conn.execute(sa.text("SELECT count(*) FROM repositories")).scalar()
        conn.exec_driver_sql("RESET ROLE")
        conn.exec_driver_sql("ALTER TABLE repositories NO FORCE ROW LEVEL SECURITY")
        conn.exec_driver_sql(f'SET ROLE "{owner}"')
        not_forced = conn.execute(sa.text("SELECT count(*) FROM repositories")).scalar()
        conn.exec_driver_sql("RESET ROLE")
        conn.exec_driver_sql("ALTER TABLE repositories FORCE ROW LEVEL SECURITY")
        conn.exec_driver_sql(f'GRANT application_role TO "{owner}"')  # the policies are written for that role
        conn.exec_driver_sql(f'SET ROLE "{owner}"')
        conn.execute(sa.text("SELECT set_config(:s, :u, false)"), {"s": USER_ID_SETTING, "u": str(world.alice)})
        as_member = _ids(conn, "SELECT id FROM repositories")
        conn.exec_driver_sql("RESET ROLE")
        conn.rollback()
    assert (forced, not_forced) == (0, 3)  # FORCE: the owner is held to the policies (none for it: nothing)
    assert as_member == {world.busy, world.quiet}


@pytest.mark.parametrize(("attributes", "allowed"), [((), False), (("BYPASSRLS",), True), (("SUPERUSER",), True)])
def test_the_admin_role_must_bypass_rls(shared: tuple[Engine, World], attributes: tuple[str, ...],
                                        allowed: bool) -> None:
    engine = shared[0]
    with engine.connect() as conn, _temporary_role(conn, *attributes) as role:
        conn.exec_driver_sql(f'SET ROLE "{role}"')
        if allowed:
            check_rls_bypass(conn)
        else:
            with pytest.raises(ConfigurationError, match=f"'{role}' is neither a superuser nor BYPASSRLS"):
                check_rls_bypass(conn)
        conn.exec_driver_sql("RESET ROLE")
        conn.rollback()
    with engine.connect() as conn:
        check_rls_bypass(conn)  # the embedded server's postgres


def test_migration_0004_refuses_an_admin_that_does_not_bypass_rls(engine: Engine) -> None:
    migrate.downgrade(engine, "0003")
    role = f"gi_test_role_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" NOLOGIN')
        conn.exec_driver_sql(f'GRANT SELECT ON alembic_version TO "{role}"')
    url = engine.url.render_as_string(hide_password=False)
    as_role = sa.create_engine(url, connect_args={"options": f"-c role={role}"}, poolclass=sa.NullPool)
    try:
        with pytest.raises(ConfigurationError, match="neither a superuser nor BYPASSRLS"):
            migrate.upgrade(as_role, "head")
        assert migrate.current_revision(engine) == "0003"
    finally:
        as_role.dispose()
        with engine.begin() as conn:
            conn.exec_driver_sql(f'REVOKE ALL ON alembic_version FROM "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')


# --- the catalog ------------------------------------------------------------------------------------------------

RLS_STATE = """
SELECT 'table ' || c.relname || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity
       || ' acl=' || COALESCE(c.relacl::text, '') AS item
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || a.attacl::text
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE a.attacl IS NOT NULL
UNION ALL
SELECT 'policy ' || tablename || '.' || policyname || ' ' || cmd || ' ' || array_to_string(roles, ',')
       || ' using ' || COALESCE(qual, '') || ' check ' || COALESCE(with_check, '')
FROM pg_policies
UNION ALL
SELECT 'function ' || proname || ' ' || pg_get_functiondef(p.oid)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.prokind = 'f'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')  -- not pg_trgm's
ORDER BY 1
"""


def _rls_state(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(RLS_STATE)).scalars())


def test_0004_downgrades_to_exactly_0003(engine: Engine) -> None:
    head = _rls_state(engine)
    migrate.downgrade(engine, "0003")
    before = _rls_state(engine)
    assert not [s for s in before if "force=true" in s]
    migrate.upgrade(engine)
    assert _rls_state(engine) == head
    migrate.downgrade(engine, "0003")
    assert _rls_state(engine) == before
    migrate.upgrade(engine)
    assert migrate.drift(engine) == []


def test_every_table_the_role_can_reach_has_forced_rls(shared: tuple[Engine, World]) -> None:
    engine = shared[0]
    with engine.connect() as conn:
        reachable = conn.execute(sa.text("""
            SELECT c.relname::text, c.relkind::text, c.relrowsecurity AND c.relforcerowsecurity
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
              AND (has_table_privilege('application_role', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
                   OR has_any_column_privilege('application_role', c.oid, 'SELECT, INSERT, UPDATE'))
        """)).fetchall()
    tables = {name for name, kind, forced in reachable if kind in "rp" and forced}
    assert tables == set(objects.RLS_TABLES) | set(objects.ALERTS_RLS_TABLES)
    others = {name for name, kind, _ in reachable if kind not in "rp"}
    assert others == {"visible_repository_stats", "analysis_views_refreshed"}
