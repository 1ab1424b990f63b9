"""The notebook workbench: papermill report runs, HTML export, the index, scheduling and retention.

Importing this package starts nothing; :func:`render_all` renders every report and returns ``index.html``.
"""

from __future__ import annotations

from .index import write_index
from .params import SPECS, validate_parameters
from .runner import ReportFailed, RunResult, render_all, report_names, run_all, run_report
from .schedule import load_schedule, prune, run_due

__all__ = ["render_all", "run_report", "run_all", "report_names", "RunResult", "ReportFailed", "write_index",
           "SPECS", "validate_parameters", "load_schedule", "run_due", "prune"]
