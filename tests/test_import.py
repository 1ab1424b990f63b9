"""The GitHub ranking import: real files checked against an independent pandas reading, hand-made fixtures for
renames, case-differing URLs, unstars and malformed files, idempotency, rollback and the CLI."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import DataLoadError, ValidationError
from gitinsight_analytics.seed import import_github_ranking
from gitinsight_analytics.seed.github_ranking_identity import (
    DERIVED_GITHUB_ID_FUNCTION,
    KeySummary,
    derived_github_id,
    find_renames,
)

from .conftest import REAL_DATA as REAL
from .conftest import needs_real, unavailable

DATA = Path(__file__).parent / "data" / "github_ranking"
MINI = sorted((DATA / "mini").glob("*.csv"))


def real(*dates: str) -> list[Path]:
    if not REAL.is_dir():
        unavailable(f"the real data {REAL} is missing")
    return [REAL / f"github-ranking-{d}.csv" for d in dates]


def run(engine: Engine, paths: list[Path]):
    return import_github_ranking(engine, paths, progress=False)


def dump(engine: Engine) -> dict[str, list[tuple]]:
    """Every row (every column, updated_at included) of the tables the import writes."""
    queries = {
        "users": "SELECT * FROM users ORDER BY github_id",
        "repositories": "SELECT * FROM repositories ORDER BY github_id",
        "snapshots": "SELECT * FROM repository_snapshots ORDER BY repository_id, snapshot_date",
        "files": "SELECT snapshot_date, file_name, sha256, rows FROM github_ranking_files ORDER BY 1",
    }
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(text(q))] for name, q in queries.items()}


def history(engine: Engine, full_name: str) -> list[tuple]:
    """(snapshot full_name, date, stars, forks, open_issues, best_rank, lists) of the repository now called so."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT s.full_name, s.snapshot_date, s.stars, s.forks, s.open_issues, s.best_rank, s.lists "
            "FROM repository_snapshots s JOIN repositories r ON r.id = s.repository_id "
            "WHERE r.full_name = :n ORDER BY s.snapshot_date"), {"n": full_name})]


def repo(engine: Engine, full_name: str) -> dict:
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT r.*, u.username AS owner FROM repositories r JOIN users u ON u.id = r.owner_id "
            "WHERE r.full_name = :n"), {"n": full_name}).mappings().one()
    return dict(row)


def scalar(engine: Engine, query: str):
    with engine.connect() as conn:
        return conn.execute(text(query)).scalar()


# --- real files against an independent pandas reading -------------------------------------------------------

def pandas_days(paths: list[Path]) -> pd.DataFrame:
    frames = []
    for path in paths:
        frame = pd.read_csv(path, dtype={"language": "string", "description": "string"}, keep_default_na=False)
        frame["date"] = dt.date.fromisoformat(path.stem.removeprefix("github-ranking-"))
        frames.append(frame)
    rows = pd.concat(frames)
    rows["key"] = rows["repo_url"].str.lower()
    return rows.groupby(["date", "key"]).agg(
        stars=("stars", "max"), forks=("forks", "max"), issues=("issues", "max"), rank=("rank", "min"),
        lists=("item", lambda s: sorted(set(s))), language=("language", "max"), description=("description", "max"),
    ).reset_index()


@needs_real
def test_real_files_match_pandas(engine: Engine) -> None:
    paths = real("2018-12-18", "2019-01-02", "2026-08-20", "2026-08-21", "2026-08-22")  # two CRLF files
    result = run(engine, paths)
    expected = pandas_days(paths)
    assert result.files_read == 5 and result.files_skipped == 0
    assert result.snapshots_added == len(expected)
    assert result.latest_date == dt.date(2026, 8, 22)
    # Renames in this window (files more than 400 days apart are never compared): three between the two 2018/19
    # files (caffe2, iina, lua-resty-http were transferred), one in August 2026 (avante.nvim).
    assert result.renames == 4
    assert result.repositories_created == expected["key"].nunique() - 4
    for old, new in [("caffe2/caffe2", "facebookarchive/caffe2"), ("lhc70000/iina", "iina/iina"),
                     ("pintsized/lua-resty-http", "ledgetech/lua-resty-http"),
                     ("yetone/avante.nvim", "avante-corp/avante.nvim")]:
        assert [r[0] for r in history(engine, new)][::len(history(engine, new)) - 1] == [old, new]
    assert result.users_created == scalar(engine, "SELECT count(*) FROM users")

    with engine.connect() as conn:
        got = pd.read_sql(text(
            "SELECT snapshot_date AS date, 'https://github.com/' || lower(full_name) AS key, stars, forks, "
            "open_issues AS issues, best_rank AS rank, lists FROM repository_snapshots"), conn)
    merged = expected.merge(got, on=["date", "key"], suffixes=("", "_db"), how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()
    for column in ("stars", "forks", "issues", "rank"):
        assert (merged[column] == merged[f"{column}_db"]).all(), column
    assert (merged["lists"].map(tuple) == merged["lists_db"].map(tuple)).all()

    # Latest figures: the newest day of each repository; '' became NULL.
    newest = expected.sort_values("date").groupby("key").tail(1).set_index("key")
    with engine.connect() as conn:
        repos = pd.read_sql(text("SELECT lower(url) AS key, url, clone_url, name, full_name, stars, forks, language, "
                                 "description, watchers, analysis_status, github_id FROM repositories"), conn)
    repos = repos.merge(newest, left_on="key", right_index=True, suffixes=("", "_csv"))
    assert len(repos) == len(newest) - 4  # the four old names live on under their new names
    assert (repos["stars"] == repos["stars_csv"]).all() and (repos["forks"] == repos["forks_csv"]).all()
    assert (repos["language"].isna() == (repos["language_csv"] == "")).all()
    assert (repos["description"].isna() == (repos["description_csv"] == "")).all()
    assert repos["language"].isna().sum() > 0 and repos["description"].isna().sum() > 0
    assert (repos["clone_url"] == repos["url"] + ".git").all()
    assert (repos["full_name"] == repos["url"].str.removeprefix("https://github.com/")).all()
    assert (repos["name"] == repos["full_name"].str.split("/").str[1]).all()
    assert (repos["watchers"] == 0).all() and (repos["analysis_status"] == "pending").all()
    assert (repos["github_id"] < 0).all()
    assert scalar(engine, "SELECT count(*) FROM repositories WHERE language = '' OR description = ''") == 0
    # Emoji and CJK text arrive intact.
    assert scalar(engine, "SELECT count(*) FROM repositories WHERE description ~ '[\\u4e00-\\u9fff]'") > 0
    assert scalar(engine, "SELECT count(*) FROM repositories WHERE description ~ '[\\U0001F300-\\U0001FAFF]'") > 0


@needs_real
def test_real_rename_keeps_one_repository(engine: Engine) -> None:
    run(engine, real("2026-07-27", "2026-07-28", "2026-07-29", "2026-07-30"))
    rows = history(engine, "thaw-app/Thaw")
    assert [r[0] for r in rows] == ["stonerl/Thaw", "stonerl/Thaw", "thaw-app/Thaw", "thaw-app/Thaw"]
    assert scalar(engine, "SELECT count(*) FROM repositories WHERE full_name ILIKE '%/thaw'") == 1
    thaw = repo(engine, "thaw-app/Thaw")
    assert thaw["owner"] == "thaw-app" and thaw["stars"] == rows[-1][2]
    assert thaw["github_id"] == derived_github_id("stonerl/thaw")  # the id stays the first name's


@needs_real
def test_real_case_differing_urls_are_one_repository(engine: Engine) -> None:
    run(engine, real("2019-01-02", "2020-01-01"))
    rows = history(engine, "microsoft/TypeScript")
    assert [r[0] for r in rows] == ["Microsoft/TypeScript", "microsoft/TypeScript"]
    assert scalar(engine, "SELECT count(*) FROM users WHERE lower(username) = 'microsoft'") == 1
    assert scalar(engine, "SELECT username FROM users WHERE lower(username) = 'microsoft'") == "microsoft"


# --- hand-made fixtures ------------------------------------------------------------------------------------

def test_mini_rename_case_duplicates_unstars_nulls(engine: Engine) -> None:
    result = run(engine, MINI)
    assert (result.files_read, result.renames, result.snapshots_added) == (3, 1, 20)

    widget = history(engine, "widget-org/Widget")  # transferred from alice, stars 1001 -> 1003
    assert [(r[0], r[2]) for r in widget] == [("alice/Widget", 1001), ("widget-org/Widget", 1003),
                                              ("widget-org/Widget", 1007)]
    assert repo(engine, "widget-org/Widget")["description"] == "A widget library 🧩 — now an org"
    assert repo(engine, "widget-org/Widget")["owner"] == "widget-org"

    # Far-apart star counts with the same name are two repositories.
    assert [r[0] for r in history(engine, "old/thing")] == ["old/thing"]
    assert [r[0] for r in history(engine, "new/thing")] == ["new/thing", "new/thing"]

    # Case-differing URLs: one repository named as on the newest day; one user, newest spelling.
    assert [r[0] for r in history(engine, "bob/Tool")] == ["Bob/Tool", "bob/tool", "bob/Tool"]
    assert scalar(engine, "SELECT count(*) FROM repositories WHERE lower(full_name) = 'bob/tool'") == 1
    assert scalar(engine, "SELECT string_agg(username, ',') FROM users WHERE lower(username) = 'bob'") == "bob"

    # Two lists the same day, counts 1-2 apart: max of each count, both lists, best rank.
    first = history(engine, "carol/lib")[0]
    assert first[2:] == (502, 50, 6, 1, ["Python", "top-100-stars"])

    # Unstars are kept as they are.
    assert [r[2] for r in history(engine, "dave/app")] == [300, 295, 290]
    # Missing language and description are NULL; entering and leaving the lists leaves a gap.
    notes = repo(engine, "erin/notes")
    assert notes["language"] is None and notes["description"] == "中文描述 ✨"
    assert [r[1].day for r in history(engine, "frank/x")] == [1, 3]
    assert scalar(engine, "SELECT count(*) FROM repository_snapshots s JOIN repositories r ON r.id = s.repository_id "
                          "WHERE r.full_name = 'erin/notes' AND s.snapshot_date < '2030-01-03'") == 2


def test_derived_github_id_is_negative_stable_and_matches_sql(engine: Engine) -> None:
    logins = ["microsoft", "Microsoft", "thaw-app", "a", "中文"]
    ids = [derived_github_id(login) for login in logins]
    assert ids[0] == ids[1] and all(i < 0 for i in ids) and len(set(ids)) == 4
    with engine.begin() as conn:
        conn.execute(text(DERIVED_GITHUB_ID_FUNCTION))
        assert [conn.execute(text("SELECT pg_temp.gr_github_id(:k)"), {"k": k}).scalar() for k in logins] == ids


def _summary(key: str, first: str, last: str, stars: tuple[int, int], forks: tuple[int, int],
             desc: str | None = None) -> KeySummary:
    return KeySummary(key, dt.date.fromisoformat(first), dt.date.fromisoformat(last), stars[0], forks[0],
                      stars[1], forks[1], desc, desc, None)


@pytest.mark.parametrize(
    ("old", "new", "linked"),
    [
        (("a/x", (100, 10)), ("b/x", (101, 10)), True),  # transfer, close counts
        (("a/x", (100, 10)), ("b/x", (300, 10)), False),  # transfer, counts too far apart for one day
        (("a/x", (100, 10)), ("a/y", (100, 10)), True),  # rename within an owner, one day apart
        (("a/x", (100, 10)), ("b/y", (100, 10)), False),  # owner and name both changed
    ],
)
def test_rename_rule(old: tuple, new: tuple, linked: bool) -> None:
    summaries = [_summary(old[0], "2030-01-01", "2030-01-01", (old[1][0],) * 2, (old[1][1],) * 2),
                 _summary(new[0], "2030-01-02", "2030-01-02", (new[1][0],) * 2, (new[1][1],) * 2)]
    renames = find_renames(summaries, [dt.date(2030, 1, 1), dt.date(2030, 1, 2)])
    assert bool(renames) == linked


def test_rename_rule_refuses_ambiguous_pairs() -> None:
    summaries = [_summary("a/x", "2030-01-01", "2030-01-01", (100, 100), (10, 10)),
                 _summary("b/x", "2030-01-02", "2030-01-02", (100, 100), (10, 10)),
                 _summary("c/x", "2030-01-02", "2030-01-02", (101, 101), (10, 10))]
    assert find_renames(summaries, [dt.date(2030, 1, 1), dt.date(2030, 1, 2)]) == []


# --- idempotency and incremental imports -------------------------------------------------------------------

@pytest.mark.parametrize("source", ["mini", "real"])
def test_importing_twice_changes_nothing(engine: Engine, source: str) -> None:
    paths = MINI if source == "mini" else real("2026-08-20", "2026-08-21", "2026-08-22")
    run(engine, paths)
    before = dump(engine)
    again = run(engine, paths)
    assert (again.files_read, again.files_skipped, again.snapshots_added) == (0, len(paths), 0)
    assert dump(engine) == before  # row counts and values, updated_at included


def test_newer_files_add_history_older_files_do_not_change_latest_figures(engine: Engine) -> None:
    run(engine, MINI[1:2])
    first = dump(engine)
    newer = run(engine, MINI[2:])
    assert newer.files_read == 1 and newer.snapshots_added == 7
    assert repo(engine, "bob/Tool")["stars"] == 253  # the newest file's figures and spelling
    after_newer = dump(engine)
    assert len(after_newer["snapshots"]) == len(first["snapshots"]) + 7

    older = run(engine, MINI[:1])  # an older file: adds history, latest figures stay the newest
    assert older.files_read == 1
    assert repo(engine, "bob/Tool")["stars"] == 253 and repo(engine, "dave/app")["stars"] == 290
    assert [r[0] for r in history(engine, "bob/Tool")] == ["Bob/Tool", "bob/tool", "bob/Tool"]
    assert scalar(engine, "SELECT username FROM users WHERE lower(username) = 'bob'") == "bob"
    assert [r[2] for r in history(engine, "dave/app")] == [300, 295, 290]
    unchanged = {r[3]: r for r in after_newer["repositories"]}  # by full_name
    for row in dump(engine)["repositories"]:
        if row[3] in unchanged and row[3] != "widget-org/Widget":
            assert row == unchanged[row[3]]


def test_files_whose_snapshots_were_truncated_import_again(engine: Engine) -> None:
    run(engine, MINI)
    with engine.begin() as conn:  # e.g. a synthetic load with --replace truncated the data, not the file log
        conn.execute(text("TRUNCATE users, repositories, repository_snapshots CASCADE"))
    again = run(engine, MINI)
    assert (again.files_read, again.files_skipped, again.snapshots_added) == (3, 0, 20)


def test_same_date_with_different_content_is_refused(engine: Engine, tmp_path: Path) -> None:
    run(engine, MINI[:1])
    before = dump(engine)
    changed = tmp_path / MINI[0].name
    changed.write_text(MINI[0].read_text(encoding="utf-8").replace("1000,100", "1000,101"), encoding="utf-8")
    with pytest.raises(DataLoadError, match="already imported from github-ranking-2030-01-01.csv"):
        run(engine, [changed])
    assert dump(engine) == before


# --- malformed files, rollback -----------------------------------------------------------------------------

MALFORMED = {
    "bad_header": ("line 1", "bad header"),
    "wrong_column_count": ("line 3", "10 columns (expected 11)"),
    "non_numeric_stars": ("line 3", "stars '12k' is not a non-negative integer"),
    "negative_stars": ("line 4", "stars '-5' is not a non-negative integer"),
    "bad_date_in_name": ("file name", "bad date '2030-02-30'"),
    "bad_last_commit": ("line 4", "last_commit 'yesterday' is not an ISO 8601 timestamp"),
    "impossible_last_commit": ("line 4", "last_commit '2030-02-30T08:00:00Z' is not an ISO 8601 timestamp"),
    "bad_url": ("line 3", "repo_url 'https://gitlab.com/dave/app' is not https://github.com/OWNER/NAME"),
    "not_utf8": ("line 3", "not UTF-8"),
    "header_only": ("line 2", "no data rows"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_file_is_rejected_and_nothing_written(engine: Engine, kind: str) -> None:
    run(engine, MINI[:2])
    before = dump(engine)
    (bad,) = (DATA / "malformed" / kind).glob("*.csv")
    with pytest.raises(DataLoadError) as caught:
        run(engine, [MINI[2], bad])  # a good new file first: it must not be written either
    message = str(caught.value)
    where, reason = MALFORMED[kind]
    assert message.startswith(f"{bad}: {where}: ") and reason in message and "\n" not in message
    assert dump(engine) == before


def test_failure_mid_import_rolls_everything_back(engine: Engine) -> None:
    with engine.begin() as conn:  # a repository the import did not create holds a name the import needs
        conn.execute(text("INSERT INTO users (github_id, username) VALUES (42, 'carol')"))
        conn.execute(text("INSERT INTO repositories (github_id, name, full_name, url, clone_url, owner_id) "
                          "SELECT 4242, 'lib', 'carol/lib', 'u', 'u.git', id FROM users"))
    before = dump(engine)
    with pytest.raises(DataLoadError, match="carol/lib is already in the database"):
        run(engine, MINI)  # fails after users were written in the same transaction
    assert dump(engine) == before


def test_missing_path_is_a_validation_error(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        run(engine, [tmp_path / "nope.csv"])
    with pytest.raises(ValidationError, match="holds no github-ranking"):
        run(engine, [tmp_path])


# --- CLI ---------------------------------------------------------------------------------------------------

def test_cli_imports_folder_and_reports(cli_env: Engine, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "csv"
    shutil.copytree(DATA / "mini", folder)
    assert main(["import", "github-ranking", "--no-progress", str(folder)]) == 0
    assert "3 files imported" in capsys.readouterr().out
    # Again, plus a copy of one file from another folder: same date and content, so skipped as well.
    assert main(["import", "github-ranking", "--no-progress", str(folder), str(MINI[0])]) == 0
    assert "0 files imported, 4 skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        (["import", "github-ranking", str(DATA / "malformed" / "non_numeric_stars")], 1, "line 3: stars '12k'"),
        (["import", "github-ranking", "/nonexistent/folder"], 2, "does not exist"),
        (["import", "github-ranking"], 2, "Missing argument"),
    ],
)
def test_cli_errors_are_one_line_with_exit_code(cli_env: Engine, capsys: pytest.CaptureFixture, argv: list[str],
                                                code: int, expected: str) -> None:
    assert main([*argv[:2], "--no-progress", *argv[2:]]) == code
    err = capsys.readouterr().err.strip()
    assert expected in err
    if code == 1:
        assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert scalar(cli_env, "SELECT count(*) FROM repositories") == 0
