"""``reports/index.html``: every run with its parameters, time, duration and status, newest first.

Built from the ``run.json`` each run writes (see :mod:`.runner`). A run marked ``running`` whose lock is free
(its process was killed or crashed) is recorded as ``failed`` with the reason, so nothing stays ``running``
forever; a run directory without run.json is listed as ``unknown``. The page is written under a lock and renamed
into place, so concurrent commands (``report due`` next to ``report run`` or ``prune``) never interleave it. The
page is self-contained (inline CSS, no scripts) and every value is HTML-escaped: parameters are user input.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import html
import json
import os
from pathlib import Path
from typing import Any

from .. import atomic

__all__ = ["load_runs", "write_index", "render_index", "INTERRUPTED", "INDEX_LOCK"]

#: The error of a run whose process ended while it was ``running``.
INTERRUPTED = "interrupted: the process running this report ended before it finished (killed or crashed)"
INDEX_LOCK = ".index.lock"


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _recover(directory: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` of a ``running`` run: unchanged while its process works on it, else recorded as failed (run.json
    rewritten, leftovers of unfinished writes removed)."""
    lock = directory / atomic.LOCK_FILE
    if lock.exists():
        if not atomic.abandoned(lock):
            return meta
    elif _alive(meta.get("pid")):  # a run started before runs held a lock
        return meta
    meta = {**meta, "status": "failed", "error": INTERRUPTED}
    meta.pop("pid", None)
    for leftover in directory.glob(".*"):
        if leftover.name != atomic.LOCK_FILE and leftover.is_file():
            leftover.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # a read-only or full disk: shown as failed all the same
        atomic.write_text(directory / "run.json", json.dumps(meta, indent=2, default=str) + "\n")
    return meta


def load_runs(reports_dir: Path) -> list[dict[str, Any]]:
    """Metadata of every run under ``reports_dir``, newest first; interrupted runs are recorded as failed."""
    runs = []
    for directory in Path(reports_dir).glob("*/*/"):
        if not directory.is_dir() or directory.name.startswith("."):
            continue
        meta_path = directory / "run.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {"name": directory.parent.name, "run_id": directory.name, "status": "unknown",
                    "parameters": {}, "started_at": ""}
        if meta.get("status") == "running":
            meta = _recover(directory, meta)
        meta["_dir"] = directory
        runs.append(meta)
    runs.sort(key=lambda m: (str(m.get("started_at", "")), str(m.get("run_id", ""))), reverse=True)
    return runs


_CSS = """
body { font-family: system-ui, -apple-system, sans-serif; margin: 24px; color: #0f172a; }
h1 { margin-bottom: 4px; } .sub { color: #475569; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: 12px 0 28px; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
th { background: #f1f5f9; } tr:hover td { background: #f8fafc; }
code { background: #f1f5f9; padding: 1px 4px; border-radius: 3px; font-size: 12px; }
.status { font-weight: 600; } .succeeded { color: #15803d; } .failed { color: #b91c1c; }
.running, .unknown { color: #a16207; } .error { color: #b91c1c; font-size: 12px; }
"""


def _link(run: dict[str, Any], suffix: str, label: str) -> str:
    path = run["_dir"] / f"{run.get('name')}{suffix}"
    if not path.exists():
        return ""
    rel = f"{run['_dir'].parent.name}/{run['_dir'].name}/{path.name}"
    return f'<a href="{html.escape(rel)}">{label}</a>'


def _params(values: dict[str, Any]) -> str:
    return " ".join(f"<code>{html.escape(str(k))}={html.escape(repr(v))}</code>" for k, v in values.items())


def _row(run: dict[str, Any]) -> str:
    esc = html.escape
    status = str(run.get("status", "unknown"))
    duration = run.get("duration_s")
    error = f'<div class="error">{esc(str(run["error"]))}</div>' if run.get("error") else ""
    links = " · ".join(x for x in (_link(run, ".html", "report"), _link(run, ".ipynb", "notebook")) if x)
    return (
        f'<tr class="run {esc(status)}"><td>{esc(str(run.get("name", "")))}</td>'
        f"<td>{esc(str(run.get('started_at', '')))}</td>"
        f"<td>{'' if duration is None else f'{float(duration):.1f} s'}</td>"
        f'<td class="status {esc(status)}">{esc(status)}{error}</td>'
        f"<td>{_params(run.get('parameters') or {})}</td><td>{links}</td>"
        f"<td><code>{esc(str(run.get('run_id', '')))}</code></td></tr>"
    )


def render_index(runs: list[dict[str, Any]], *, now: dt.datetime | None = None) -> str:
    """The index page for ``runs`` (already sorted newest first)."""
    now = now or dt.datetime.now(dt.UTC)
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:
        latest.setdefault(str(run.get("name")), run)
    head = "<tr><th>Report</th><th>Started (UTC)</th><th>Duration</th><th>Status</th><th>Parameters</th>" \
           "<th>Open</th><th>Run id</th></tr>"
    latest_rows = "\n".join(_row(r) for _, r in sorted(latest.items()))
    all_rows = "\n".join(_row(r) for r in runs)
    empty = "<p>No runs yet: <code>gitinsight report all</code> renders every report.</p>" if not runs else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>GitInsight reports</title><style>{_CSS}</style></head>
<body>
<h1>GitInsight reports</h1>
<p class="sub">{len(runs)} runs of {len(latest)} reports; page written {now.strftime('%Y-%m-%d %H:%M UTC')}.</p>
{empty}
<h2>Latest run of each report</h2>
<table id="latest">{head}
{latest_rows}
</table>
<h2>All runs, newest first</h2>
<table id="runs">{head}
{all_rows}
</table>
</body></html>
"""


def write_index(reports_dir: Path) -> Path:
    """Rebuild ``reports_dir/index.html`` from the runs on disk and return its path: read and written under an
    exclusive lock (the last writer has seen every run finished before it), renamed into place."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / "index.html"
    with open(reports_dir / INDEX_LOCK, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        atomic.write_text(path, render_index(load_runs(reports_dir)))
    return path
