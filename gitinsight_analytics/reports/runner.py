"""Run a report: validate its parameters, execute the notebook with papermill, export HTML without code.

A run writes ``<reports_dir>/<name>/<run-id>/`` holding the executed notebook (``<name>.ipynb``), a
self-contained HTML file (``<name>.html``: no code, plotly.js inlined, no network), ``run.json`` (parameters,
times, duration, status, error) and ``kernel.log`` (the kernel's stderr).
The kernel gets the database URL through its environment only, so it is never a parameter; the executed
notebook, the log and the HTML are scrubbed of the URL and password all the same. The notebooks read through
``GITINSIGHT_READ_URL`` (``connect(read=True)``): the read URL given to the runner (e.g. the streaming replica),
else the database URL.

Crashes and full disks: every file of a run is written whole or not at all (:mod:`..atomic`; papermill writes a
hidden ``.<name>.partial.ipynb`` that becomes ``<name>.ipynb`` only once it reads back as a notebook), and the run
holds a lock on ``<run>/.lock`` while it works, so a run whose process died is told from a live one
(:func:`.index.load_runs` then records it as failed).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets as _secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy.engine import Engine, make_url

from .. import atomic
from ..checkpoints import checkpoint
from ..exceptions import ReportFailed, ReportOutputError, ReportSpecMismatch, ValidationError
from ..settings import Settings
from . import params as _params
from .index import write_index

__all__ = ["RunResult", "ReportFailed", "report_names", "run_report", "run_all", "render_all", "export_html",
           "scrub", "skip_slow_imports", "describe", "kernel_env", "catch_up", "KERNEL_NAME"]

KERNEL_NAME = "python3"
#: Order of ``report all``: the introduction first, operations last.
ORDER = ("getting-started", "trending", "compare", "repository_stats", "confidence", "calibration", "dashboard",
         "operations")
log = logging.getLogger(__name__)
#: jsonschema (imported by nbformat, which plotly and papermill import) loads the optional ``rfc3987_syntax``
#: IRI checker, which compiles a Lark grammar at import: 3+ s of CPU in every kernel. Nothing here validates
#: IRIs, so report kernels (and the ``gitinsight report`` process) skip it.
SKIP_SLOW_IMPORTS = "import sys; sys.modules.setdefault('rfc3987_syntax', None)"


def skip_slow_imports() -> None:
    """Skip jsonschema's optional IRI checker in this process (see :data:`SKIP_SLOW_IMPORTS`)."""
    import sys

    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None: "not importable"


@dataclass(frozen=True)
class RunResult:
    name: str
    run_id: str
    directory: Path
    status: str  # "succeeded" | "failed"
    parameters: dict[str, Any]
    started_at: str
    finished_at: str
    duration_s: float
    error: str | None = None
    trigger: str = "manual"

    @property
    def html(self) -> Path:
        return self.directory / f"{self.name}.html"

    @property
    def notebook(self) -> Path:
        return self.directory / f"{self.name}.ipynb"

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


def report_names(notebooks_dir: Path) -> list[str]:
    """Reports that exist as notebooks, in ``report all`` order."""
    present = {p.stem for p in Path(notebooks_dir).glob("*.ipynb")}
    return [n for n in ORDER if n in present] + sorted(present - set(ORDER) & set(_params.SPECS))


def _new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-{_secrets.token_hex(3)}"


def _utc(now: dt.datetime) -> str:
    return now.isoformat(timespec="seconds").replace("+00:00", "Z")


_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]{0,31}://[^:/@\s\"']+:)[^@\s\"']+@", re.I)


def _secret_strings(database_url: str | None) -> list[str]:
    if not database_url:
        return []
    found = {database_url}
    spelled = _URL_PASSWORD.search(database_url)
    if spelled:  # the password as written in the URL (maybe percent-encoded)
        found.add(spelled.group(0)[len(spelled.group(1)):-1])
    try:
        url = make_url(database_url)
    except Exception:  # an unparsable URL is still scrubbed verbatim
        return sorted(found, key=len, reverse=True)
    for hide in (False, True):
        found.add(url.render_as_string(hide_password=hide))
        found.add(url.set(drivername="postgresql").render_as_string(hide_password=hide))
    if url.password:
        password = str(url.password)
        found |= {password, quote(password, safe=""), quote_plus(password), quote(password)}
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def scrub(text: str, database_url: str | None) -> str:
    """``text`` with the database URL (any spelling), its password, and any URL's password replaced by ``***``."""
    for secret in _secret_strings(database_url):
        text = text.replace(secret, "***")
        escaped = json.dumps(secret)[1:-1]
        if escaped != secret:
            text = text.replace(escaped, "***")
    return _URL_PASSWORD.sub(r"\1***@", text)


def _kernel_manager_class(env: Mapping[str, str], log_path: Path) -> type:
    """An AsyncKernelManager whose kernels start with ``env`` added, their stderr going to ``log_path``."""
    from jupyter_client.manager import AsyncKernelManager

    extra = dict(env)

    class EnvKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            kw["env"] = {**os.environ, **kw.get("env", {}), **extra}
            with open(log_path, "ab") as log_file:  # the kernel keeps its own descriptor
                kw["stderr"] = log_file
                await super().start_kernel(**kw)

    return EnvKernelManager


def kernel_env(database_url: str, read_url: str | None = None) -> dict[str, str]:
    """What the kernel needs: the database and where to read (environment, never a parameter), quiet telemetry,
    and this process's workspace (the kernel runs in the notebooks' folder, which may be the package's own)."""
    from ..settings import find_workspace

    return {
        "DATABASE_URL": database_url,
        "GITINSIGHT_READ_URL": read_url or database_url,
        "GITINSIGHT_WORKSPACE": os.environ.get("GITINSIGHT_WORKSPACE") or str(find_workspace(Path.cwd())),
        "PLOOMBER_STATS_ENABLED": "false",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


def export_html(notebook_path: Path, html_path: Path, *, meta: Mapping[str, Any]) -> Path:
    """Write the notebook as self-contained HTML without code cells (see :mod:`.html`)."""
    from .html import notebook_to_html

    return atomic.write_text(html_path, notebook_to_html(notebook_path, meta=meta))


def _one_line(exc: BaseException) -> str:
    ename = getattr(exc, "ename", None) or type(exc).__name__
    evalue = getattr(exc, "evalue", None) or str(exc)
    line = next((s for s in str(evalue).splitlines() if s.strip()), "")
    return f"{ename}: {line}"[:500]


def run_report(
    name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    database_url: str,
    reports_dir: Path,
    notebooks_dir: Path,
    engine: Engine | None = None,
    trigger: str = "manual",
    timeout: int = 900,
    update_index: bool = True,
    read_url: str | None = None,
) -> RunResult:
    """Validate ``parameters`` (before any kernel starts), execute notebook ``name``, export HTML, index it.

    The notebook reads through ``read_url`` (default ``database_url``); :func:`catch_up` is the caller's choice.

    Raises :class:`ValidationError` for bad parameters; a notebook that fails returns a result with status
    ``failed`` (its executed notebook and HTML are kept).
    """
    notebooks_dir, reports_dir = Path(notebooks_dir), Path(reports_dir)
    source = notebooks_dir / f"{name}.ipynb"
    if name not in _params.SPECS or not source.is_file():
        raise ValidationError("report", f"unknown report {name!r}", ", ".join(report_names(notebooks_dir)))
    given = _params.validate_parameters(name, parameters or {}, engine=engine)
    defaults = _params.notebook_defaults(source)
    declared = {p.name for p in _params.SPECS[name]}
    if set(defaults) != declared:
        raise ReportSpecMismatch(f"notebook {source.name} declares parameters {sorted(defaults)}, "
                             f"the report spec {sorted(declared)}: make them agree")
    effective = {**defaults, **given}

    started = dt.datetime.now(dt.UTC)
    run_id = _new_run_id(started)
    directory = reports_dir / name / run_id
    # Made under a hidden name, locked and described, then renamed: a run is never seen without its lock held.
    hidden = directory.with_name(f".{run_id}")
    hidden.mkdir(parents=True)
    lock = atomic.hold(hidden / atomic.LOCK_FILE)  # released when the run ends, or its process dies
    try:
        record: dict[str, Any] = {"name": name, "run_id": run_id, "status": "running", "parameters": effective,
                                  "started_at": _utc(started), "trigger": trigger, "pid": os.getpid()}
        try:
            _write_run_json(hidden, record)
            hidden.rename(directory)
        except BaseException:
            shutil.rmtree(hidden, ignore_errors=True)
            raise
        record = _execute(source, directory, record, timeout=timeout, database_url=database_url, read_url=read_url)
        (directory / atomic.LOCK_FILE).unlink(missing_ok=True)  # finished: run.json says so, the lock is not needed
    finally:
        lock.close()
    if update_index:
        write_index(reports_dir)
    return RunResult(name=name, run_id=run_id, directory=directory, status=record["status"], parameters=effective,
                     started_at=record["started_at"], finished_at=record["finished_at"],
                     duration_s=record["duration_s"], error=record["error"], trigger=trigger)


def _execute(source: Path, directory: Path, record: dict[str, Any], *, timeout: int, database_url: str,
             read_url: str | None) -> dict[str, Any]:
    """Run the notebook into ``directory`` (notebook, HTML, kernel.log, run.json); returns the final run.json.

    Raises :class:`GitInsightError` only when run.json itself cannot be written (a full disk): the run then stays
    ``running`` on disk until :func:`.index.load_runs` finds its lock free and records it as failed.
    """
    import papermill as pm

    name, effective = record["name"], record["parameters"]
    output = directory / f"{name}.ipynb"
    partial = directory / f".{name}.partial.ipynb"
    checkpoint("report.started")
    clock = time.perf_counter()
    error = None
    logging.getLogger("papermill").setLevel(logging.WARNING)
    try:
        pm.execute_notebook(
            str(source), str(partial), parameters=effective, kernel_name=KERNEL_NAME, cwd=str(source.parent),
            progress_bar=False, log_output=False, request_save_on_cell_execute=False,
            execution_timeout=timeout, extra_arguments=[f"--IPKernelApp.exec_lines={[SKIP_SLOW_IMPORTS]!r}"],
            kernel_manager_class=_kernel_manager_class(kernel_env(database_url, read_url), directory / "kernel.log"),
        )
    except Exception as exc:  # any failure of the run is recorded, not raised
        error = _scrub(_one_line(exc), database_url, read_url)
        log.info("report %s failed: %s", name, error)  # the caller reports it (one line in the CLI)
    duration = round(time.perf_counter() - clock, 2)
    record.update(status="failed" if error else "succeeded", finished_at=_utc(dt.datetime.now(dt.UTC)),
                  duration_s=duration, error=error)
    record.pop("pid", None)
    try:
        _finish_files(name, directory, partial, output, record, database_url, read_url)
    except OSError as exc:  # a full disk: no half-written notebook or HTML is left, the run says why
        for path in (partial, output, directory / f"{name}.html"):
            path.unlink(missing_ok=True)
        record.update(status="failed", error=_scrub(f"writing the report failed: {_one_line(exc)}", database_url,
                                                    read_url))
    _write_run_json(directory, record)
    return record


def _finish_files(name: str, directory: Path, partial: Path, output: Path, record: dict[str, Any],
                  database_url: str, read_url: str | None) -> None:
    """Scrub the executed notebook and the kernel log, move the notebook into place (only if papermill wrote it
    whole) and export the HTML; a failed export is recorded in ``record``."""
    import nbformat

    log_path = directory / "kernel.log"
    if log_path.exists():
        text = log_path.read_text(encoding="utf-8", errors="replace")
        atomic.write_text(log_path, _scrub(text, database_url, read_url))
    if partial.exists():
        text = _scrub(partial.read_text(encoding="utf-8", errors="replace"), database_url, read_url)
        partial.unlink()
        try:
            nbformat.reads(text, as_version=4)
        except Exception as exc:
            record.update(status="failed", error=record["error"] or f"the executed notebook is incomplete: "
                                                                     f"{_one_line(exc)}")
            return
        atomic.write_text(output, text)
    if output.exists():
        try:
            export_html(output, directory / f"{name}.html", meta=record)
        except Exception as exc:  # a broken export must still leave run.json behind
            failure = _scrub(f"HTML export failed: {_one_line(exc)}", database_url, read_url)
            record.update(status="failed", error=failure)


def _write_run_json(directory: Path, record: Mapping[str, Any]) -> None:
    try:
        atomic.write_text(directory / "run.json", json.dumps(record, indent=2, default=str) + "\n")
    except OSError as exc:
        raise ReportOutputError(f"report {record['name']}: cannot write {directory / 'run.json'} "
                                f"({exc.strerror or exc}); the run is recorded as failed next time") from None


def _scrub(text: str, database_url: str, read_url: str | None) -> str:
    text = scrub(text, database_url)
    return scrub(text, read_url) if read_url and read_url != database_url else text


def catch_up(database_url: str, read_url: str | None, *, timeout: float = 60) -> None:
    """When reads go elsewhere than ``database_url`` (a replica), wait until it has replayed the primary's writes
    so far: a report started after a load or refresh shows them. Raises :class:`ReplicaLagging` on timeout."""
    if not read_url or read_url == database_url:
        return
    from ..db import libpq_url
    from ..replica import wait_for_replay

    wait_for_replay(libpq_url(database_url), libpq_url(read_url), timeout=timeout)


def run_all(
    *,
    database_url: str,
    reports_dir: Path,
    notebooks_dir: Path,
    engine: Engine | None = None,
    names: Sequence[str] | None = None,
    trigger: str = "all",
    echo: Callable[[str], None] | None = None,
    read_url: str | None = None,
) -> list[RunResult]:
    """Run every report (or ``names``) with its default parameters; the index is rebuilt once at the end.

    With a ``read_url`` (a replica), first wait until it has replayed the primary's writes (:func:`catch_up`)."""
    catch_up(database_url, read_url)
    results = []
    for name in names or report_names(notebooks_dir):
        result = run_report(name, {}, database_url=database_url, reports_dir=reports_dir,
                            notebooks_dir=notebooks_dir, engine=engine, trigger=trigger, update_index=False,
                            read_url=read_url)
        results.append(result)
        if echo:
            echo(describe(result))
    write_index(reports_dir)
    return results


def describe(result: RunResult) -> str:
    """One line for the terminal: status, name, duration, HTML path (or the error)."""
    tail = str(result.html) if result.ok else f"{result.error} (notebook: {result.notebook})"
    return f"{result.status:<9} {result.name:<17} {result.duration_s:6.1f}s  {tail}"


def render_all(
    source: Engine | Settings,
    *,
    reports_dir: Path | None = None,
    notebooks_dir: Path | None = None,
    names: Sequence[str] | None = None,
    echo: Callable[[str], None] | None = print,
    read_url: str | None = None,
) -> Path:
    """Render every report into ``reports_dir`` and return the path of ``index.html``.

    ``source`` is an engine (its URL is handed to the kernels) or settings (``DATABASE_URL`` or the embedded
    server, started if needed; reads through ``GITINSIGHT_READ_URL`` when set). ``read_url``: where the notebooks
    read (default: the engine's URL). Raises :class:`ReportFailed` after rendering everything if any report failed.
    """
    from .. import resources
    from ..db import connect, resolve_read_url
    from ..settings import find_workspace

    owned = isinstance(source, Settings)
    if isinstance(source, Settings):
        engine = connect(source)
        read_url = read_url or (resolve_read_url(source) if source.read_url else None)
        reports_dir = reports_dir or source.reports_dir
        notebooks_dir = notebooks_dir or source.notebooks_dir
    else:
        engine = source
    reports_dir = reports_dir or find_workspace(Path.cwd()) / "reports"
    notebooks_dir = notebooks_dir or resources.notebooks_dir()
    url = engine.url.render_as_string(hide_password=False)
    try:
        results = run_all(database_url=url, reports_dir=reports_dir, notebooks_dir=notebooks_dir, engine=engine,
                          names=names, echo=echo, read_url=read_url)
    finally:
        if owned:
            engine.dispose()
    index = Path(reports_dir) / "index.html"
    failed = [r.name for r in results if not r.ok]
    if failed:
        raise ReportFailed(f"{len(failed)} of {len(results)} reports failed ({', '.join(failed)}); see {index}")
    if echo:
        echo(f"reports: {index}")
    return index

