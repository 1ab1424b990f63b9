"""Start-up time of the command line: ``gitinsight --help`` and a CSV search, wall time of the whole process.

    .venv/bin/python -m benchmarks.bench_startup                 # own embedded server with the demo data
    .venv/bin/python -m benchmarks.bench_startup --runs 30 --no-real-data

Starts a throwaway embedded server, loads the demo data (the small synthetic set and, when found, the real
github-ranking files, like ``gitinsight demo``), then runs each command ``--runs`` times as a new process of this
environment's ``gitinsight`` (after one warm-up run) and reports min, median and p95 wall time against the
targets: ``--help`` ≤ 0.30 s, ``query search --text react --format csv`` ≤ 0.35 s (the embedded server found
through GITINSIGHT_HOME, as after ``gitinsight demo``; also with DATABASE_URL set). One ``-X importtime`` run per
command lists its heaviest imports; the first row, a bare interpreter, is the floor on the machine at that moment,
and CPU seconds are less sensitive than wall time to other work on the machine. Commands run in a workspace
(``gitinsight init``). Writes ``benchmarks/results/startup.json``.

The package is byte-compiled first, as pip compiles an installed wheel: with ``PYTHONDONTWRITEBYTECODE`` set (as
on the shared test machine) a checkout's modules would otherwise be compiled from source in every run, which the
warm-up run cannot prevent (``--no-compile`` measures that case).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gitinsight_analytics
from benchmarks._support import throwaway_server
from gitinsight_analytics import migrate, server
from gitinsight_analytics.db import make_engine, sqlalchemy_url
from gitinsight_analytics.settings import PROJECT_ROOT, Settings
from gitinsight_analytics.workspace import init_workspace

RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "startup.json"
GITINSIGHT = str(Path(sys.executable).parent / "gitinsight")
SEARCH = ["query", "search", "--text", "react", "--format", "csv"]
#: name, argv (None: bare ``python -c pass``), the database in the environment (GITINSIGHT_HOME, DATABASE_URL or
#: none), target in seconds or None
CASES = [
    ("python, nothing imported", None, None, None),  # the floor: this machine's interpreter start-up right now
    ("help", ["--help"], None, 0.30),
    ("search csv (embedded server)", SEARCH, "home", 0.35),
    ("search csv (DATABASE_URL)", SEARCH, "url", 0.35),
    ("search table (pandas)", ["query", "search", "--text", "react"], "home", None),
]


def _load(settings: Settings, data: Path | None) -> None:
    from gitinsight_analytics.seed import import_github_ranking, load_synthetic

    engine = make_engine(sqlalchemy_url(server.server_url(settings)))
    migrate.upgrade(engine)
    load_synthetic(engine, scale="small", seed=42, progress=False)
    if data is not None:
        import_github_ranking(engine, [data], progress=False)
    engine.dispose()


def _env(settings: Settings, database: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITINSIGHT_") and k != "DATABASE_URL"}
    if database == "home":
        env.update(GITINSIGHT_HOME=str(settings.home), GITINSIGHT_PG_PORT=str(settings.pg_port))
    elif database == "url":
        env["DATABASE_URL"] = server.server_url(settings)
    return env


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _once(argv: list[str] | None, env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the command and what it waited for) of one run."""
    command = [sys.executable, "-c", "pass"] if argv is None else [GITINSIGHT, *argv]
    cpu, started = _cpu(), time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return seconds, _cpu() - cpu


def _heaviest(argv: list[str] | None, env: dict[str, str], cwd: str, top: int = 6) -> list[tuple[str, float]]:
    """The top-level imports that took longest (cumulative ms) in one ``-X importtime`` run."""
    if argv is None:
        return []
    done = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "import sys; from gitinsight_analytics.cli import main; main(sys.argv[1:])", *argv],
                          env=env, cwd=cwd, capture_output=True, text=True)
    found = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and not parts[2].startswith("  "):
            try:
                found.append((parts[2].strip(), int(parts[1]) / 1000))
            except ValueError:
                continue
    return sorted(found, key=lambda item: -item[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    real = os.environ.get("GITINSIGHT_GITHUB_RANKING_DIR") or PROJECT_ROOT.parent / "shared" / "data" / "github-ranking"
    parser.add_argument("--data", type=Path, default=Path(real))
    parser.add_argument("--no-real-data", action="store_true", help="only the small synthetic data set")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not byte-compile the package first (its sources are compiled in every run when "
                             "PYTHONDONTWRITEBYTECODE is set)")
    args = parser.parse_args()
    data = None if args.no_real_data or not args.data.is_dir() else args.data
    if not args.no_compile:
        compileall.compile_dir(str(Path(gitinsight_analytics.__file__).parent), quiet=1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gi-bench-startup-") as home:
        settings = throwaway_server(Path(home) / "home")
        try:
            _load(settings, data)
            cwd = init_workspace(Path(home) / "workspace").workspace  # where an analyst runs commands
            for name, argv, database, target in CASES:
                env = _env(settings, database)
                _once(argv, env, str(cwd))  # warm-up: file cache, .pyc files
                runs = [_once(argv, env, str(cwd)) for _ in range(args.runs)]
                times, cpus = sorted(r[0] for r in runs), sorted(r[1] for r in runs)
                p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
                median = statistics.median(times)
                rows.append({"command": name, "argv": argv, "runs": args.runs, "min_s": round(times[0], 3),
                             "median_s": round(median, 3), "p95_s": round(p95, 3),
                             "cpu_median_s": round(statistics.median(cpus), 3), "target_s": target,
                             "met": None if target is None else median <= target,
                             "heaviest_imports_ms": _heaviest(argv, env, str(cwd))})
        finally:
            server.stop(settings)
    print(f"{'command':<30} {'min s':>6} {'median s':>8} {'p95 s':>6} {'cpu s':>6} {'target':>7}  met")
    for r in rows:
        target = f"{r['target_s']:.2f}" if r["target_s"] else "-"
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        print(f"{r['command']:<30} {r['min_s']:>6.3f} {r['median_s']:>8.3f} {r['p95_s']:>6.3f} "
              f"{r['cpu_median_s']:>6.3f} {target:>7}  {met}")
    for r in rows[1:]:
        print(f"  {r['command']}: " + ", ".join(f"{m} {ms:.0f} ms" for m, ms in r["heaviest_imports_ms"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"real_data": data is not None, "compiled": not args.no_compile, "cases": rows,
                                   "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                               "load_average": os.getloadavg()}}, indent=2) + "\n")
    compiled = "not byte-compiled first" if args.no_compile else "byte-compiled first"
    print(f"written {RESULTS.relative_to(PROJECT_ROOT)} (load average {os.getloadavg()[0]:.1f}; package {compiled}; "
          f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})")


if __name__ == "__main__":
    main()
