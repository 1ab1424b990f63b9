"""A local Citus cluster for development and tests: a coordinator and N workers under ``$GITINSIGHT_HOME/cluster``.

Each node is an embedded-style PostgreSQL server (see :mod:`gitinsight_analytics.server`) started from
``GITINSIGHT_PG_BINDIR`` with ``shared_preload_libraries = 'citus'``; the coordinator listens on
``GITINSIGHT_CLUSTER_PORT`` and worker *i* on that port + *i*. Like ``db start``, the nodes outlive the process
that started them. Production users point ``DATABASE_URL`` at a Citus coordinator they already run instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from . import server
from .db import one_row
from .exceptions import CitusUnavailable, ConfigurationError, ServerError
from .pgproc import postmaster
from .settings import Settings

__all__ = ["NodeStatus", "ClusterStatus", "start", "stop", "status", "coordinator_url", "create_database",
           "drop_database", "citus_bindir_problem", "build_citus", "NODE_CONF", "default_shard_count"]

#: Written into every node's postgresql.conf at initdb. wal_level logical: the shard rebalancer moves shards with
#: logical replication (with 'minimal' it can only block writes while copying).
NODE_CONF = {
    "shared_preload_libraries": "'citus'",
    "wal_level": "'logical'",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "shared_buffers": "'256MB'",
    # A query that runs a while on a worker opens more connections to it (slow start); with the default of one
    # cached connection per worker each such query paid new connections (~10-30 ms each). Keep a few.
    "citus.max_cached_conns_per_worker": "4",
}


def default_shard_count() -> int:
    """Shards per distributed table on a local cluster: two per core of this machine (each shard of a whole-table
    query then gets a core; more shards only add per-task overhead on one machine). Production: docs/scale-out.md."""
    return 2 * (os.cpu_count() or 2)

STATE_FILE = "cluster.json"


@dataclass(frozen=True)
class NodeStatus:
    name: str
    port: int
    running: bool
    pid: int | None = None


@dataclass(frozen=True)
class ClusterStatus:
    home: Path
    nodes: tuple[NodeStatus, ...]
    registered_workers: tuple[str, ...] = ()
    citus_version: str | None = None

    @property
    def running(self) -> bool:
        return bool(self.nodes) and all(n.running for n in self.nodes)

    def describe(self) -> str:
        if not self.nodes:
            return f"no cluster under {self.home} (start one with: gitinsight cluster start --workers 2)"
        lines = [f"{n.name}: {'running' if n.running else 'stopped'} on 127.0.0.1:{n.port}"
                 + (f" (pid {n.pid})" if n.pid else "") for n in self.nodes]
        if self.citus_version:
            lines.append(f"{self.citus_version}; workers registered: {', '.join(self.registered_workers) or 'none'}")
        return "\n".join(lines)


def citus_bindir_problem(bindir: Path) -> str | None:
    """Why the PostgreSQL in ``bindir`` cannot run a Citus node, or None when it can."""
    try:
        out = subprocess.run([str(bindir / "pg_config"), "--pkglibdir", "--sharedir"], capture_output=True,
                             text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return f"{bindir} has no working pg_config"
    libdir, sharedir = Path(out[0]), Path(out[1])
    if not (libdir / "citus.so").exists() or not (sharedir / "extension" / "citus.control").exists():
        return f"the PostgreSQL in {bindir} has no Citus extension"
    return None


def build_citus(script: Path, out: Path) -> Path:
    """Build PostgreSQL with Citus with ``script`` (``<shared>/citus/build.sh``) into ``out`` and return the bindir
    it prints; instant when ``out`` holds a build already. Tests and benchmarks share this (one build per machine).
    """
    if not script.exists():
        raise CitusUnavailable(f"no Citus build script at {script}")
    done = subprocess.run(["bash", str(script), str(out), sys.executable], capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise CitusUnavailable(f"building Citus failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return Path(lines[-1])


def _bindir(settings: Settings) -> Path:
    if settings.pg_bindir is None:
        raise ConfigurationError(
            "GITINSIGHT_PG_BINDIR is not set (allowed: the bindir of a PostgreSQL with Citus: build one with "
            "`<shared>/citus/build.sh OUT .venv/bin/python`, or install the Citus packages)"
        )
    problem = citus_bindir_problem(settings.pg_bindir)
    if problem:
        raise ConfigurationError(
            f"GITINSIGHT_PG_BINDIR: {problem} (allowed: a PostgreSQL with citus.so: build it with "
            "`<shared>/citus/build.sh OUT .venv/bin/python` and use the bindir it prints, or install Citus)"
        )
    return settings.pg_bindir


def _dir(settings: Settings) -> Path:
    return settings.home / "cluster"


def _node_names(workers: int) -> list[str]:
    return ["coordinator", *(f"worker{i}" for i in range(1, workers + 1))]


def _node_settings(settings: Settings, name: str, port: int, bindir: Path | None) -> Settings:
    return dataclasses.replace(settings, home=_dir(settings) / name, pg_port=port, pg_bindir=bindir,
                               database_url=None, wal_archive=None)


def _read_state(settings: Settings) -> dict | None:
    path = _dir(settings) / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _url(port: int, database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def coordinator_url(settings: Settings, database: str | None = None) -> str:
    """The coordinator's URL (for ``DATABASE_URL``); raises when no cluster was started under this home."""
    state = _read_state(settings)
    if state is None:
        raise ServerError(f"no cluster under {_dir(settings)} (start one with: gitinsight cluster start)")
    return _url(state["port"], database or settings.db_name)


def _register(coordinator_port: int, worker_ports: list[int], database: str) -> None:
    """Create the citus extension on every node's ``database`` and add the workers to the coordinator's."""
    for port in [coordinator_port, *worker_ports]:
        with psycopg.connect(_url(port, database), autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
    with psycopg.connect(_url(coordinator_port, database), autocommit=True, connect_timeout=10) as conn:
        known = {row[0] for row in conn.execute("SELECT nodeport FROM pg_dist_node WHERE noderole = 'primary'")}
        if coordinator_port not in known:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (coordinator_port,))
        for port in worker_ports:
            if port not in known:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (port,))


def create_database(settings: Settings, name: str) -> str:
    """Create ``name`` on every node of the local cluster with Citus set up in it; returns its coordinator URL."""
    state = _read_state(settings)
    if state is None:
        raise ServerError(f"no cluster under {_dir(settings)} (start one with: gitinsight cluster start)")
    ports = [state["port"] + i for i in range(state["workers"] + 1)]
    for port in ports:
        with psycopg.connect(_url(port, "postgres"), autocommit=True, connect_timeout=10) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    _register(ports[0], ports[1:], name)
    return _url(ports[0], name)


def drop_database(settings: Settings, name: str) -> None:
    """Drop ``name`` on every node of the local cluster (workers first)."""
    state = _read_state(settings)
    if state is None:
        return
    for i in reversed(range(state["workers"] + 1)):
        with psycopg.connect(_url(state["port"] + i, "postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def start(settings: Settings, *, workers: int = 2, shard_count: int | None = None) -> ClusterStatus:
    """Start (initialising the first time) a coordinator and ``workers`` workers, and register the workers.

    ``shard_count`` (default :func:`default_shard_count`) is written into new nodes' configuration: the number of
    shards of each table ``db upgrade`` distributes later."""
    if not 1 <= workers <= 16:
        raise ConfigurationError(f"--workers {workers} is out of range (allowed: 1..16)")
    if shard_count is not None and not 1 <= shard_count <= 256:
        raise ConfigurationError(f"--shard-count {shard_count} is out of range (allowed: 1..256)")
    bindir = _bindir(settings)
    folder = _dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    state = _read_state(settings) or {"port": settings.cluster_port, "workers": workers}
    if workers < state["workers"]:
        raise ConfigurationError(
            f"--workers {workers}: the cluster under {folder} has {state['workers']} workers (allowed: "
            f"{state['workers']} or more; removing a worker means draining its shards first, see docs/scale-out.md)"
        )
    state["workers"] = workers
    ports = [state["port"] + i for i in range(workers + 1)]
    for name, port in zip(_node_names(workers), ports, strict=True):
        conf = {**NODE_CONF, "citus.shard_count": str(shard_count or default_shard_count())}
        server.start(_node_settings(settings, name, port, bindir), extra_conf=conf)
    (folder / STATE_FILE).write_text(json.dumps(state))
    _register(ports[0], ports[1:], settings.db_name)
    return status(settings)


def stop(settings: Settings) -> ClusterStatus:
    """Stop every node (workers first); the data stays for the next start."""
    state = _read_state(settings)
    if state is None:
        return status(settings)
    names = _node_names(state["workers"])
    for i in reversed(range(len(names))):
        server.stop(_node_settings(settings, names[i], state["port"] + i, settings.pg_bindir))
    return status(settings)


def status(settings: Settings) -> ClusterStatus:
    """Each node's state and, when the coordinator runs, the Citus version and the registered workers."""
    state = _read_state(settings)
    if state is None:
        return ClusterStatus(_dir(settings), ())
    nodes = []
    for i, name in enumerate(_node_names(state["workers"])):
        found = postmaster(_dir(settings) / name / "pgdata")
        nodes.append(NodeStatus(name, state["port"] + i, found is not None, found[0] if found else None))
    version: str | None = None
    workers: tuple[str, ...] = ()
    if nodes[0].running:
        try:
            with psycopg.connect(_url(state["port"], settings.db_name), connect_timeout=5) as conn:
                version = one_row(conn, "SELECT citus_version()")[0].split(" on ")[0]
                workers = tuple(f"{h}:{p}" for h, p in conn.execute(
                    "SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' AND groupid > 0 "
                    "ORDER BY nodeport"))
        except psycopg.Error:
            pass
    return ClusterStatus(_dir(settings), tuple(nodes), workers, version)
