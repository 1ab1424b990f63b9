"""Report run times: each report alone (``report run``) and all of them (``report all``), at a given scale.

    .venv/bin/python -m benchmarks.bench_reports --scale small      # fresh database, synthetic small data
    .venv/bin/python -m benchmarks.bench_reports                    # the configured database as it is

With ``--scale``, a database ``gi_bench_reports_<scale>`` is (re)created on the embedded server of
``$GITINSIGHT_HOME``, migrated and loaded with the synthetic data (seed 42). Reports are written to a temporary
directory. Prints a table and writes ``benchmarks/results/reports.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from benchmarks._support import recreate_database
from gitinsight_analytics import load_settings, make_engine, server
from gitinsight_analytics.reports.runner import render_all, report_names, run_report, skip_slow_imports
from gitinsight_analytics.settings import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "reports.json"


def _fresh_database(scale: str) -> str:
    from gitinsight_analytics.seed import load_synthetic

    settings = load_settings()
    if settings.database_url:
        sys.exit("--scale creates a database on the embedded server: unset DATABASE_URL")
    server.start(settings)
    url = recreate_database(server.server_url(settings), f"gi_bench_reports_{scale}")
    engine = make_engine(url)
    started = time.perf_counter()
    load_synthetic(engine, scale=scale, seed=42, progress=False)
    print(f"loaded scale {scale} in {time.perf_counter() - started:.1f} s")
    engine.dispose()
    return url


def _execution_seconds(notebook: Path) -> float:
    return float(nbformat.read(notebook, as_version=4).metadata.get("papermill", {}).get("duration") or 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["tiny", "small", "medium"], help="load a fresh synthetic database")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each report (median is reported)")
    args = parser.parse_args()
    skip_slow_imports()
    settings = load_settings()
    url = _fresh_database(args.scale) if args.scale else None
    engine = make_engine(url) if url else __import__("gitinsight_analytics").connect(settings)
    database_url = engine.url.render_as_string(hide_password=False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gi-bench-reports-") as tmp:
        reports_dir = Path(tmp)
        for name in report_names(settings.notebooks_dir):
            walls, execs = [], []
            for _ in range(args.repeat):
                started = time.perf_counter()
                result = run_report(name, {}, database_url=database_url, reports_dir=reports_dir,
                                    notebooks_dir=settings.notebooks_dir, engine=engine, update_index=False)
                walls.append(time.perf_counter() - started)
                execs.append(_execution_seconds(result.notebook))
                if not result.ok:
                    sys.exit(f"{name} failed: {result.error}")
            html_mb = result.html.stat().st_size / 1e6
            rows.append({"report": name, "wall_s": round(statistics.median(walls), 2),
                         "notebook_s": round(statistics.median(execs), 2), "html_mb": round(html_mb, 1)})
        started = time.perf_counter()
        render_all(engine, reports_dir=reports_dir, notebooks_dir=settings.notebooks_dir, echo=None)
        total = time.perf_counter() - started
    print(f"{'report':<18} {'wall s':>7} {'notebook s':>10} {'HTML MB':>8}")
    for row in rows:
        print(f"{row['report']:<18} {row['wall_s']:>7.1f} {row['notebook_s']:>10.1f} {row['html_mb']:>8.1f}")
    print(f"{'report all':<18} {total:>7.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "scale": args.scale or "configured database", "repeat": args.repeat, "reports": rows,
        "report_all_s": round(total, 2), "python": platform.python_version(), "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    engine.dispose()


if __name__ == "__main__":
    main()
