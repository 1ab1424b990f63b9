"""Compare: series, gains and ranks on the real daily files against an independent pandas reading of the CSV
files; renames followed; errors; weekly gains and findings; the compare report rendered and drawn in Chromium."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import ValidationError
from gitinsight_analytics.queries import compare_repositories, default_repositories, latest_insights
from gitinsight_analytics.queries.compare_findings import compare_findings, weekly_gains

from .real_data import read_csv_days, real_engine, real_template  # noqa: F401

#: Renames inside the daily window, checked by hand (docs/data.md): old key -> the repository's key now.
RENAMED = {"stonerl/thaw": "thaw-app/thaw"}
METRIC_COLUMN = {"stars": "stars", "forks": "forks", "issues": "issues"}


@pytest.fixture(scope="module")
def csv_days() -> pd.DataFrame:
    days = read_csv_days()
    days["repo"] = days["key"].replace(RENAMED)
    # the repository's language is the one of its newest day (as the import keeps it)
    newest = days.sort_values("date").groupby("repo")["language"].last()
    days["repo_language"] = days["repo"].map(newest)
    days["rank"] = days.groupby(["date", "repo_language"])["stars"].rank(method="min", ascending=False)
    return days


def expected(csv_days: pd.DataFrame, name: str, metric: str, start: dt.date | None,
             end: dt.date | None) -> pd.DataFrame:
    rows = csv_days[csv_days["repo"] == RENAMED.get(name.lower(), name.lower())].sort_values("date").copy()
    rows = rows[rows["date"] <= (end or dt.date.max)]
    value = rows[METRIC_COLUMN[metric]]
    by_date = dict(zip(rows["date"], value, strict=True))
    rows["value"] = value
    rows["gain"] = value.diff()
    rows["gap"] = [(b - a).days if a is not None else np.nan
                   for a, b in zip([None, *rows["date"].iloc[:-1]], rows["date"], strict=True)]
    week_ago = [by_date.get(d - dt.timedelta(days=7)) for d in rows["date"]]
    rows["gain_7d"] = [v - w if w is not None else np.nan for v, w in zip(value, week_ago, strict=True)]
    rows["growth_7d"] = [100 * (v - w) / w if w else np.nan for v, w in zip(value, week_ago, strict=True)]
    rows["top100"] = [any(not item.startswith("top-100-") for item in lists) for lists in rows["lists"]]
    return rows[rows["date"] >= (start or dt.date.min)]


CASES = [
    (["react/react", "vuejs/vue", "torvalds/linux"], "stars", None, None),
    (["openai/codex", "anthropics/claude-code"], "forks", dt.date(2026, 8, 1), dt.date(2026, 8, 15)),
    (["soimort/you-get", "JuliusBrussee/caveman", "stablyai/orca"], "issues", None, None),
    (["stonerl/Thaw", "deepseek-ai/deepseek-harness"], "stars", dt.date(2026, 7, 25), None),
]


@pytest.mark.parametrize(("names", "metric", "start", "end"), CASES)
def test_series_and_ranks_match_pandas(real_engine, csv_days, names, metric, start, end) -> None:  # noqa: F811
    frame = compare_repositories(real_engine, names, metric=metric, start=start, end=end)
    assert list(dict.fromkeys(frame["requested"])) == names
    for name in names:
        got = frame[frame["requested"] == name].reset_index(drop=True)
        want = expected(csv_days, name, metric, start, end).reset_index(drop=True)
        assert len(got) == len(want) > 0
        assert got["snapshot_date"].tolist() == want["date"].tolist()
        assert got["value"].tolist() == want["value"].tolist()
        np.testing.assert_array_equal(got["gain"].to_numpy(), want["gain"].to_numpy(dtype=float))
        np.testing.assert_array_equal(got["gap_days"].to_numpy(), want["gap"].to_numpy(dtype=float))
        np.testing.assert_array_equal(got["gain_7d"].to_numpy(), want["gain_7d"].to_numpy(dtype=float))
        np.testing.assert_allclose(got["growth_pct_7d"].to_numpy(), want["growth_7d"].to_numpy(dtype=float))
        assert got["rank_in_language"].astype(int).tolist() == want["rank"].astype(int).tolist()
        assert got["in_language_top100"].tolist() == want["top100"].tolist()
        assert got["stars"].tolist() == want["stars"].tolist()
    assert frame.attrs["metric"] == metric and frame.attrs["x"] == "snapshot_date"


def test_ranks_do_not_depend_on_the_company(real_engine) -> None:  # noqa: F811
    alone = compare_repositories(real_engine, ["react/react", "vuejs/vue"])
    together = compare_repositories(real_engine, ["react/react", "trekhleb/javascript-algorithms", "torvalds/linux"])
    a = alone[alone["full_name"] == "react/react"]["rank_in_language"].tolist()
    b = together[together["full_name"] == "react/react"]["rank_in_language"].tolist()
    assert a == b and set(a) == {1}


def test_a_renamed_repository_is_followed_by_its_old_name(real_engine) -> None:  # noqa: F811
    frame = compare_repositories(real_engine, ["stonerl/Thaw", "react/react"])
    thaw = frame[frame["requested"] == "stonerl/Thaw"]
    assert set(thaw["full_name"]) == {"thaw-app/Thaw"}
    assert len(thaw) == 35  # one unbroken series across the rename on 2026-07-29
    names = dict(zip(thaw["snapshot_date"], thaw["name_that_day"], strict=True))
    assert names[dt.date(2026, 7, 28)] == "stonerl/Thaw" and names[dt.date(2026, 7, 29)] == "thaw-app/Thaw"
    assert any("thaw-app/Thaw was called stonerl/Thaw" in s for s in compare_findings(frame))


def test_align_by_age(real_engine) -> None:  # noqa: F811
    frame = compare_repositories(real_engine, ["stablyai/orca", "react/react"], align="age")
    assert frame.attrs["x"] == "age_days"
    orca = frame[frame["full_name"] == "stablyai/orca"]
    assert orca["age_days"].tolist() == list(range(9))  # first seen 2026-08-14
    assert frame[frame["full_name"] == "react/react"]["age_days"].iloc[0] == 0


@pytest.mark.parametrize(("names", "kwargs", "message"), [
    (["react/react"], {}, "full_names: 1 given"),
    ([f"o/r{k}" for k in range(11)], {}, "full_names: 11 given"),
    (["react/react", "nope/missing", "also/missing"], {}, "not in the data: nope/missing, also/missing"),
    (["react/react", "React/React"], {}, "are the same repository"),
    (["react/react", "not a name"], {}, "is not owner/name"),
    (["react/react", "vuejs/vue"], {"metric": "watchers"}, "metric: unknown value"),
    (["react/react", "vuejs/vue"], {"align": "weekly"}, "align: unknown value"),
    (["react/react", "vuejs/vue"], {"start": "2026-08-10", "end": "2026-08-01"}, "is after end"),
    (["react/react", "vuejs/vue"], {"start": "yesterday"}, "start: 'yesterday' is not a date"),
])
def test_bad_input_is_refused(real_engine, names, kwargs, message) -> None:  # noqa: F811
    with pytest.raises(ValidationError, match=message):
        compare_repositories(real_engine, names, **kwargs)


def test_cli_unknown_names_one_line(real_engine, monkeypatch, capsys) -> None:  # noqa: F811
    monkeypatch.setenv("DATABASE_URL", real_engine.url.render_as_string(hide_password=False))
    code = main(["query", "compare", "react/react", "ghost/one", "ghost/two"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "ghost/one, ghost/two" in err and "react/react" not in err.split(":", 2)[2]


def test_cli_json(real_engine, monkeypatch, capsys) -> None:  # noqa: F811
    monkeypatch.setenv("DATABASE_URL", real_engine.url.render_as_string(hide_password=False))
    code = main(["query", "compare", "react/react", "vuejs/vue", "--from", "2026-08-20", "--format", "json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and len(rows) == 6
    assert rows[0]["full_name"] == "react/react" and rows[0]["snapshot_date"] == "2026-08-20"


def test_weekly_gains_match_pandas(real_engine, csv_days) -> None:  # noqa: F811
    frame = compare_repositories(real_engine, ["openai/codex", "react/react"])
    weeks = weekly_gains(frame)
    for name in ("openai/codex", "react/react"):
        rows = csv_days[csv_days["repo"] == name.lower()].copy()
        rows["week"] = [d - dt.timedelta(days=d.weekday()) for d in rows["date"]]
        last = rows.sort_values("date").groupby("week")["stars"].last()
        want = last.diff().dropna().astype(int)
        got = weeks[weeks["full_name"] == name].set_index("week")["gain"]
        assert got.to_dict() == want.to_dict()


def _hand_frame() -> pd.DataFrame:
    days = [dt.date(2026, 8, 1) + dt.timedelta(days=k) for k in range(10)]
    a = [1000 + 10 * k for k in range(10)]  # +10 a day
    b = [900 + 30 * k for k in range(10)]  # +30 a day: passes a between day 5 (1050 vs 1050) and day 6
    rows = [{"full_name": n, "snapshot_date": d, "value": v, "name_that_day": n, "language": "Go",
             "rank_in_language": r} for n, values, r in (("o/a", a, 3), ("o/b", b, 2))
            for d, v in zip(days, values, strict=True)]
    frame = pd.DataFrame(rows)
    frame["rank_in_language"] = frame["rank_in_language"].astype("Int64")
    frame.attrs["metric"] = "stars"
    return frame


def test_findings_on_a_hand_checked_case() -> None:
    sentences = compare_findings(_hand_frame())
    assert sentences == [
        "o/b leads with 1,170 stars on 2026-08-10, ahead of o/a (1,090).",
        "o/b grows fastest now: +30.0 stars a day over its last 7 days, against +10.0 for o/a.",
        "o/b overtook o/a between 2026-08-05 and 2026-08-07.",
        "Best rank in its language on its last day: o/b, #2 of Go repositories by stars.",
    ]


def test_findings_without_history() -> None:
    empty = _hand_frame().iloc[0:0]
    assert compare_findings(empty)[0].startswith("None of these repositories has stars history")


def test_defaults_and_insights(real_engine) -> None:  # noqa: F811
    names = default_repositories(real_engine)
    assert len(names) == 3
    assert latest_insights(real_engine, names).empty  # the ranking files carry no insights


# --- the report: rendered offline, charts drawn in headless Chromium -----------------------------------------

@pytest.mark.slow
def test_compare_report_renders_offline_and_draws(real_engine, tmp_path: Path) -> None:  # noqa: F811
    from gitinsight_analytics.reports.runner import run_report

    from .conftest import unavailable
    from .reports_support import NOTEBOOKS
    from .test_report_browser import CHROMIUM, LOCAL, Browser

    result = run_report("compare", {"repos": "react/react,vuejs/vue,stonerl/Thaw", "start": "2026-07-20"},
                        database_url=real_engine.url.render_as_string(hide_password=False),
                        reports_dir=tmp_path / "reports", notebooks_dir=NOTEBOOKS, engine=real_engine)
    assert result.ok, result.error
    page = result.html.read_text(encoding="utf-8")
    assert page.count("Plotly.newPlot(") == 4  # linear, log, weekly gains, rank
    assert "thaw-app/Thaw was called stonerl/Thaw" in page and "react/react leads with" in page
    assert "gains add up to each repository&#x27;s change: True; ranks start at 1: True" in page or \
        "gains add up to each repository's change: True; ranks start at 1: True" in page
    if CHROMIUM is None:
        unavailable("Debian's chromium is not installed (scripts/test-deps.sh installs it)")
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(result.html, until="document.querySelectorAll('.js-plotly-plot .main-svg').length >= 8")
        assert browser.evaluate("document.querySelectorAll('.js-plotly-plot').length") == 4
        assert browser.evaluate("document.querySelectorAll('.js-plotly-plot g.trace').length") >= 4 * 3
        lines = browser.evaluate("Array.from(document.querySelectorAll('g.trace path.js-line'))"
                                 ".filter(p => (p.getAttribute('d') || '').length > 20).length")
        assert lines >= 9, "the history and rank lines were not drawn"
        bars = browser.evaluate("Array.from(document.querySelectorAll('g.point path'))"
                                ".filter(p => (p.getAttribute('d') || '').startsWith('M')).length")
        assert bars > 0, "no weekly-gain bar was drawn"
        assert "Key findings" in browser.evaluate("document.body.innerText")
        foreign = [url for url in browser.requests() if not url.startswith(LOCAL)]
        assert foreign == [], f"the report requested {foreign}"
    finally:
        browser.close()
