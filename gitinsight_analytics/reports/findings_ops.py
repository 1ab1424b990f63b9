"""The key findings of the dashboard and operations reports as sentences (tested in tests/test_findings.py).

"Now" is always the newest timestamp in the data (the frames' ``attrs["as_of"]``), never the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from .charts import fmt_int, fmt_time

__all__ = ["dashboard_findings", "freshness_findings", "jobs_findings", "maintenance_findings", "FRESHNESS_LABELS"]

#: How the operations report names the keys of ``queries.data_as_of``.
FRESHNESS_LABELS = {"insights": "Newest insight", "snapshots": "Newest star-history snapshot",
                    "jobs": "Newest analysis job", "view_refreshed_at": "Statistics views refreshed"}


def dashboard_findings(who: str | None, board: pd.DataFrame | None) -> list[str]:
    """A user's dashboard (``queries.user_dashboard``, newest follow first): what is followed, which has the
    most insights, whose latest job failed, what is still waiting, the newest follow."""
    if who is None:
        return ["Nobody follows any repository yet, so there is no dashboard to show."]
    if board is None or board.empty:
        return [f"{who} follows no repositories."]
    with_insights = board[board["insight_count"] > 0]
    out = [f"{who} follows {len(board)} repositories; {len(with_insights)} of them have insights, "
           f"{fmt_int(board['insight_count'].sum())} in all."]
    if not with_insights.empty:
        busiest = board.loc[board["insight_count"].idxmax()]
        out.append(f"The one with the most insights is {busiest['full_name']} ({busiest['insight_count']}, "
                   f"latest {fmt_time(busiest['latest_insight'])}).")
    failed = board[board["latest_job_status"] == "failed"]
    if not failed.empty:
        out.append(f"The latest analysis job failed for {len(failed)}: {', '.join(failed['full_name'][:5])}"
                   + ("…" if len(failed) > 5 else "") + ".")
    waiting = int(board["analysis_status"].isin(["pending", "in_progress"]).sum())
    out.append(f"{waiting} are still pending or being analysed.")
    newest = board.iloc[0]
    out.append(f"The most recent follow is {newest['full_name']}, {fmt_time(newest['followed_at'])}.")
    return out


def freshness_findings(fresh: Mapping[str, Any]) -> list[str]:
    """``queries.data_as_of`` as sentences, plus why star growth is missing when no snapshot is imported."""
    out = [f"{FRESHNESS_LABELS.get(k, k)}: {fmt_time(v) if v is not None else 'none'}." for k, v in fresh.items()]
    if fresh.get("snapshots") is None:
        out.append("No star history is imported, so star growth cannot be ranked (`gitinsight import github-ranking`).")
    return out


def jobs_findings(rates: pd.DataFrame, failures: pd.DataFrame, throughput: pd.DataFrame, backlog: pd.DataFrame,
                  durations: pd.DataFrame, *, freq: str) -> list[str]:
    """The analysis jobs: how many and how many of the finished failed, the job type failing most, the most
    frequent error, the last week (or period) of throughput, the queue and the slowest job type."""
    out = []
    if rates.empty:
        out.append("No analysis jobs yet.")
    else:
        overall = failures.attrs.get("failure_rate")
        out.append(f"{fmt_int(rates['jobs'].sum())} analysis jobs are recorded; "
                   + (f"{overall:.1%} of finished ones failed." if overall is not None else "none has finished."))
        worst = rates.dropna(subset=["failure_rate"]).sort_values("failure_rate", ascending=False, kind="stable")
        if not worst.empty:
            w = worst.iloc[0]
            out.append(f"{w['job_type']} jobs fail most often ({w['failure_rate']:.1%} of "
                       f"{w['completed'] + w['failed']} finished).")
        if not failures.empty:
            f = failures.iloc[0]
            out.append(f"The most frequent error is “{f['example_message']}” ({f['failures']} times, "
                       f"{f['share_of_failures']:.0%} of failures).")
        week = throughput.tail(7 if freq == "day" else 1)
        out.append(f"In the last {len(week)} {freq}s to {throughput.attrs.get('as_of')}: {week['created'].sum()} jobs "
                   f"created, {week['completed'].sum()} completed, {week['failed'].sum()} failed.")
    if not backlog.empty:
        queued = int(backlog["queued"].sum())
        oldest = backlog["oldest_queued_age_hours"].max()
        out.append(f"{queued} jobs are queued and {int(backlog['in_progress'].sum())} in progress"
                   + (f"; the oldest has waited {oldest:.0f} hours." if queued else "."))
        stuck = int(backlog["stuck_in_progress"].sum())
        if stuck:
            out.append(f"{stuck} jobs have been in progress for over a day: look at them.")
    if not durations.empty:
        slow = durations.sort_values("run_p90_s", ascending=False, kind="stable").iloc[0]
        out.append(f"The slowest job type is {slow['job_type']}: 90% finish within {slow['run_p90_s'] / 60:.1f} "
                   f"minutes (median {slow['run_p50_s'] / 60:.1f}).")
    return out


def maintenance_findings(history: pd.DataFrame, backups: pd.DataFrame, partitions: pd.DataFrame) -> list[str]:
    """The operators' side: the newest command on the audit trail and recent failures, the newest backup set,
    audit rows stranded in the default partition."""
    out = []
    if history.empty:
        out.append("No gitinsight command is on the audit trail yet.")
    else:
        last = history.iloc[0]
        out.append(f"The newest command: `{last['command'] or last['action']}` ({last['outcome'] or 'no outcome'}) "
                   f"at {fmt_time(last['created_at'])}.")
        failed = history[history["outcome"] == "failed"]
        if not failed.empty:
            out.append(f"{len(failed)} of the last {len(history)} commands failed; the newest failure: "
                       f"{failed.iloc[0]['error']}")
    if backups.empty:
        out.append("No backup set yet: `gitinsight backup create` (daily from cron, see docs/operations.md).")
    else:
        newest = backups.iloc[0]
        out.append(f"Newest backup set: {newest['name']}, {fmt_int(newest['rows'])} rows, {newest['size_mb']:.1f} MB, "
                   f"revision {newest['revision']} ({len(backups)} sets kept).")
    stray = int(partitions.loc[partitions["range_start"].isna(), "rows"].sum()) if not partitions.empty else 0
    if stray:
        out.append(f"{fmt_int(stray)} audit rows sit in the default partition: `gitinsight maintain partitions` "
                   "moves them into their months.")
    return out
