"""Repository search: filters, sorting and pagination against pandas; literal text; safe parameters."""

from __future__ import annotations

import pandas as pd
import pytest

from gitinsight_analytics.exceptions import ValidationError
from gitinsight_analytics.queries import search_repositories
from gitinsight_analytics.queries.search import SORT_COLUMNS

from .query_data import raw


def expected(engine, *, text=None, language=None, min_stars=None, sort="stars", limit=20, offset=0) -> list[str]:
    repos = raw(engine, "repositories")
    if text is not None:
        t = text.lower()
        match = repos["name"].str.lower().str.contains(t, regex=False) | repos["description"].fillna("").str.lower(
        ).str.contains(t, regex=False)
        repos = repos[match]
    if language is not None:
        repos = repos[repos["language"] == language]
    if min_stars is not None:
        repos = repos[repos["stars"].notna() & (repos["stars"] >= min_stars)]
    column, direction = SORT_COLUMNS[sort]
    repos = repos.assign(_id=repos["id"].map(lambda u: u.bytes))
    keys, asc = [column], [direction == "ASC"]
    if column != "updated_at":
        keys, asc = keys + ["updated_at"], asc + [False]
    rows = []
    for _, row in repos.iterrows():
        rows.append(row)
    ordered = sorted(rows, key=lambda r: r["_id"])
    for key, ascending in reversed(list(zip(keys, asc, strict=True))):
        present = [r for r in ordered if not pd.isna(r[key])]
        missing = [r for r in ordered if pd.isna(r[key])]
        ordered = sorted(present, key=lambda r, k=key: r[k], reverse=not ascending) + missing
    return [r["full_name"] for r in ordered][offset:offset + limit]


@pytest.mark.parametrize("kwargs", [
    {}, {"text": "busy"}, {"text": "BUSY"}, {"language": "Python"}, {"min_stars": 10}, {"min_stars": 0},
    {"sort": "name"}, {"sort": "forks", "limit": 2}, {"sort": "full_name", "limit": 2, "offset": 2},
    {"text": "o", "language": "Python", "min_stars": 5, "sort": "stars"}, {"limit": 3, "offset": 3},
    {"sort": "updated"}, {"sort": "last_analyzed"},
])
def test_search_matches_pandas(data_engine, kwargs):
    frame = search_repositories(data_engine, **kwargs)
    assert frame["full_name"].tolist() == expected(data_engine, **kwargs)


def test_search_columns_and_dtypes(data_engine):
    frame = search_repositories(data_engine, text="busy")
    assert frame["full_name"].tolist() == ["alice/busy", "dave/oldie"]
    assert str(frame["stars"].dtype) == "int64" and str(frame["forks"].dtype) == "int64"
    assert str(frame["updated_at"].dtype) == "datetime64[us, UTC]"
    assert frame.loc[0, "owner_username"] == "alice"
    empty = search_repositories(data_engine, text="no such thing")
    assert empty.empty and list(empty.columns) == list(frame.columns)
    assert str(empty["stars"].dtype) == "int64"


def test_sql_looking_text_is_data(data_engine):
    # The description of bob/quiet literally contains this text: it is found, and nothing else is.
    assert search_repositories(data_engine, text="x' OR '1'='1")["full_name"].tolist() == ["bob/quiet"]
    assert search_repositories(data_engine, text="' OR 1=1 --").empty
    assert search_repositories(data_engine, text="'; DROP TABLE repositories; --").empty
    assert len(raw(data_engine, "repositories")) == 7


def test_like_wildcards_are_literal(data_engine):
    assert search_repositories(data_engine, text="%")["full_name"].tolist() == ["alice/busy", "dave/100%_done"]
    assert search_repositories(data_engine, text="0%_")["full_name"].tolist() == ["dave/100%_done"]
    assert search_repositories(data_engine, text="t_r")["full_name"].tolist() == ["alice/busy"]
    assert search_repositories(data_engine, text="\\").empty
    assert search_repositories(data_engine, text="_")["full_name"].tolist() == ["alice/busy", "dave/100%_done"]


def test_language_is_case_insensitive(data_engine):
    assert search_repositories(data_engine, language="python")["full_name"].tolist() == expected(
        data_engine, language="Python")


@pytest.mark.parametrize("kwargs, parameter", [
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "ten"}, "limit"), ({"limit": True}, "limit"),
    ({"offset": -1}, "offset"), ({"min_stars": -1}, "min_stars"), ({"min_stars": 1.5}, "min_stars"),
    ({"sort": "stars; DROP TABLE users"}, "sort"), ({"sort": "owner_id"}, "sort"),
    ({"language": "Klingon"}, "language"), ({"language": "Python' OR '1'='1"}, "language"),
    ({"text": "x" * 201}, "text"), ({"text": 5}, "text"),
])
def test_bad_parameters(data_engine, kwargs, parameter):
    with pytest.raises(ValidationError) as info:
        search_repositories(data_engine, **kwargs)
    assert info.value.parameter == parameter
    assert info.value.allowed
    assert str(info.value).startswith(f"{parameter}: ")


def test_unknown_language_lists_the_known_ones(data_engine):
    with pytest.raises(ValidationError, match=r"allowed: Go, JavaScript, Python, Rust"):
        search_repositories(data_engine, language="Cobol")


def test_search_on_seeded_data(seeded_engine):
    repos = raw(seeded_engine, "repositories")
    language = repos["language"].dropna().mode().iloc[0]
    word = repos["name"].iloc[0][:3]
    for kwargs in ({"text": word}, {"language": language, "min_stars": 10, "limit": 50},
                   {"sort": "name", "limit": 7, "offset": 5}):
        assert search_repositories(seeded_engine, **kwargs)["full_name"].tolist() == expected(seeded_engine, **kwargs)
