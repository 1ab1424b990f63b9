"""Job analytics against pandas on raw analysis_jobs rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from gitinsight_analytics.exceptions import ValidationError
from gitinsight_analytics.queries import job_durations, job_failure_rates, job_failures, job_throughput, queue_backlog

from .query_data import raw


def expected_throughput(engine, freq, as_of, window_days, job_type=None) -> pd.DataFrame:
    jobs = raw(engine, "analysis_jobs")
    if job_type:
        jobs = jobs[jobs["type"] == job_type]
    as_of = as_of or jobs["created_at"].max().tz_convert("UTC").date()
    lo = pd.Timestamp(as_of - dt.timedelta(days=window_days - 1), tz="UTC")
    hi = pd.Timestamp(as_of + dt.timedelta(days=1), tz="UTC")
    finished = jobs[jobs["status"].isin(["completed", "failed", "cancelled"])]
    events = pd.concat([
        pd.DataFrame({"at": jobs["created_at"], "event": "created"}),
        pd.DataFrame({"at": jobs["started_at"].dropna(), "event": "started"}),
        pd.DataFrame({"at": finished["completed_at"].fillna(finished["updated_at"]), "event": finished["status"]}),
    ])
    events = events[(events["at"] >= lo) & (events["at"] < hi)]
    floor = {"day": "D", "week": "W-SUN", "month": "M"}[freq]
    naive = events["at"].dt.tz_convert("UTC").dt.tz_localize(None)
    events["period"] = naive.dt.to_period(floor).dt.start_time.dt.tz_localize("UTC")
    counts = events.groupby(["period", "event"]).size().unstack(fill_value=0)
    start = pd.Timestamp(lo.tz_localize(None)).to_period(floor).start_time.tz_localize("UTC")
    periods = pd.period_range(start.tz_localize(None), hi.tz_localize(None) - pd.Timedelta(microseconds=1),
                              freq=floor).start_time.tz_localize("UTC")
    counts = counts.reindex(periods, fill_value=0)
    for event in ("created", "started", "completed", "failed", "cancelled"):
        if event not in counts:
            counts[event] = 0
    return counts


@pytest.mark.parametrize("kwargs", [
    {}, {"freq": "week", "window_days": 60}, {"freq": "month", "window_days": 365}, {"window_days": 1},
    {"job_type": "quick_scan", "window_days": 10}, {"as_of": "2026-08-15", "window_days": 7},
])
def test_throughput_matches_pandas(data_engine, kwargs):
    params = {"freq": "day", "as_of": None, "window_days": 30} | kwargs
    frame = job_throughput(data_engine, **params)
    as_of = dt.date.fromisoformat(params["as_of"]) if params["as_of"] else None
    want = expected_throughput(data_engine, params["freq"], as_of, params["window_days"], params.get("job_type"))
    assert frame["period_start"].tolist() == list(want.index)
    for column in ("created", "started", "completed", "failed", "cancelled"):
        assert frame[column].tolist() == want[column].tolist(), column
    assert str(frame["period_start"].dtype) == "datetime64[us, UTC]" and str(frame["created"].dtype) == "int64"


def test_failure_rates_and_messages(data_engine):
    jobs = raw(data_engine, "analysis_jobs")
    rates = job_failure_rates(data_engine).set_index("job_type")
    for kind, group in jobs.groupby("type"):
        failed, completed = (group["status"] == "failed").sum(), (group["status"] == "completed").sum()
        assert rates.loc[kind, "jobs"] == len(group)
        assert rates.loc[kind, "failure_rate"] == pytest.approx(failed / (failed + completed))
    frame = job_failures(data_engine)
    failed = jobs[jobs["status"] == "failed"]
    patterns = failed["error_message"].str.replace(r"[0-9]+", "N", regex=True).fillna("(no message)")
    want = patterns.value_counts()
    got = frame.set_index("error_pattern")
    assert got["failures"].to_dict() == want.to_dict()
    assert frame.loc[0, "error_pattern"] == "timeout after N s" and frame.loc[0, "failures"] == 2
    assert sorted(frame.loc[0, "job_types"]) == ["full_analysis", "quick_scan"]
    np.testing.assert_allclose(got["share_of_failures"], (want / want.sum()).loc[got.index])
    finished = jobs["status"].isin(["failed", "completed"]).sum()
    assert frame.attrs["failure_rate"] == pytest.approx(len(failed) / finished)
    assert job_failures(data_engine, limit=1).shape[0] == 1


def test_backlog(data_engine):
    jobs = raw(data_engine, "analysis_jobs")
    frame = queue_backlog(data_engine).set_index("job_type")
    now = max(jobs["created_at"].max(), jobs["started_at"].max(), jobs["completed_at"].max())
    assert frame.attrs["as_of"] == now
    queued = jobs[jobs["status"] == "queued"]
    for kind, group in queued.groupby("type"):
        assert frame.loc[kind, "queued"] == len(group)
        ages = (now - group["created_at"]).dt.total_seconds() / 3600
        assert frame.loc[kind, "oldest_queued_age_hours"] == pytest.approx(ages.max())
        assert frame.loc[kind, "median_queued_age_hours"] == pytest.approx(ages.median())
    running = jobs[jobs["status"] == "in_progress"]
    assert frame["in_progress"].sum() == len(running)
    stuck = running[running["started_at"] < now - pd.Timedelta(hours=24)]
    assert frame["stuck_in_progress"].sum() == len(stuck)


def test_durations(data_engine):
    jobs = raw(data_engine, "analysis_jobs")
    done = jobs[(jobs["status"] == "completed") & jobs["started_at"].notna() & jobs["completed_at"].notna()]
    run = (done["completed_at"] - done["started_at"]).dt.total_seconds()
    wait = (done["started_at"] - done["created_at"]).dt.total_seconds()
    frame = job_durations(data_engine).set_index("job_type")
    for kind in done["type"].unique():
        mask = done["type"] == kind
        assert frame.loc[kind, "jobs"] == mask.sum()
        assert frame.loc[kind, "run_p50_s"] == pytest.approx(run[mask].quantile(0.5))
        assert frame.loc[kind, "run_p90_s"] == pytest.approx(run[mask].quantile(0.9))
        assert frame.loc[kind, "run_max_s"] == pytest.approx(run[mask].max())
        assert frame.loc[kind, "wait_p90_s"] == pytest.approx(wait[mask].quantile(0.9))


def test_jobs_on_seeded_data(seeded_engine):
    jobs = raw(seeded_engine, "analysis_jobs")
    rates = job_failure_rates(seeded_engine)
    assert rates["jobs"].sum() == len(jobs)
    frame = job_throughput(seeded_engine, freq="week", window_days=365)
    want = expected_throughput(seeded_engine, "week", None, 365)
    assert frame["created"].tolist() == want["created"].tolist()
    assert frame["failed"].tolist() == want["failed"].tolist()
    failures = job_failures(seeded_engine, limit=1000)
    assert failures["failures"].sum() == (jobs["status"] == "failed").sum()


@pytest.mark.parametrize("fn, kwargs, parameter", [
    (job_throughput, {"freq": "hourly"}, "freq"), (job_throughput, {"window_days": 0}, "window_days"),
    (job_throughput, {"as_of": "08/20/2026"}, "as_of"), (job_throughput, {"job_type": "x' OR 1=1"}, "job_type"),
    (job_failures, {"limit": -1}, "limit"), (job_durations, {"job_type": "nope"}, "job_type"),
    (queue_backlog, {"stuck_hours": 0}, "stuck_hours"),
])
def test_bad_parameters(data_engine, fn, kwargs, parameter):
    with pytest.raises(ValidationError) as info:
        fn(data_engine, **kwargs)
    assert info.value.parameter == parameter
