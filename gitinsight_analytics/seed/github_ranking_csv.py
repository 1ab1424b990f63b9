"""Reading and validating the GitHub ranking CSV files (EvanLi/Github-Ranking daily snapshots).

A file is checked completely before any of it counts: the header, the number of columns, the numbers, the URL,
the ``last_commit`` timestamp and the date in the file name. The first problem raises :class:`DataLoadError`
naming the file, the line and the reason, so the caller's transaction rolls back and nothing of it is written.
The data's date is the one in the file name, never the clock.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import DataLoadError, ValidationError

__all__ = [
    "COLUMNS",
    "FILE_PATTERN",
    "RankingFile",
    "RankingRow",
    "discover_files",
    "file_date",
    "read_file",
    "parse_rows",
    "body",
]

COLUMNS = ("rank", "item", "repo_name", "stars", "forks", "language", "repo_url", "username", "issues",
           "last_commit", "description")
FILE_PATTERN = "github-ranking-*.csv"
_NAME = re.compile(r"^github-ranking-(\d{4}-\d{2}-\d{2})\.csv$")
_URL = re.compile(r"^https://github\.com/([A-Za-z0-9](?:[A-Za-z0-9-]*)?)/([A-Za-z0-9._-]+)$")
_INT_MAX = 999_999_999  # nine digits: fits PostgreSQL integer
_FREE = r'(?:"(?:[^"]|"")*"|[^,"\r\n]*)'
#: A well-formed row, stricter than :func:`parse_rows` (the fast path of :func:`body`).
_ROW_FAST = (
    r'[0-9]{1,9},(?:"(?:[^"]|"")+"|[^,"\r\n]+),(?P<n>[A-Za-z0-9._-]+),[0-9]{1,9},[0-9]{1,9},'
    r'[^,"\r\n]{0,50},'
    r'https://github\.com/(?P<o>[A-Za-z0-9][A-Za-z0-9-]*)/(?i:(?P=n)),(?i:(?P=o)),[0-9]{0,9},'
    r'(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2}))?,'
    + _FREE + r'\r?\n'
)
_FILE_FAST = re.compile(f"(?:{_ROW_FAST})+", re.ASCII)
_LANGUAGE_MAX = 50
_FULL_NAME_MAX = 255


@dataclass(frozen=True)
class RankingFile:
    """One CSV file: its path, the date in its name, and the SHA-256 of its bytes."""

    path: Path
    snapshot_date: dt.date
    sha256: str
    data: bytes


@dataclass(frozen=True)
class RankingRow:
    """One validated CSV row, in the staging table's column order (see :meth:`as_copy`)."""

    line: int
    rank: int
    item: str
    owner: str
    name: str
    url: str
    stars: int
    forks: int
    language: str | None
    issues: int | None
    last_commit: dt.datetime | None
    description: str | None

    def as_copy(self, snapshot_date: dt.date) -> tuple[object, ...]:
        return (snapshot_date, self.line, self.rank, self.item, self.owner, self.name, self.url, self.stars,
                self.forks, self.language, self.issues, self.last_commit, self.description)


def file_date(path: Path) -> dt.date:
    """The snapshot date in ``github-ranking-YYYY-MM-DD.csv``; DataLoadError if the name has no valid date."""
    match = _NAME.match(path.name)
    if not match:
        raise DataLoadError(f"{path}: file name: bad date in file name (expected github-ranking-YYYY-MM-DD.csv)")
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError as exc:
        raise DataLoadError(f"{path}: file name: bad date {match.group(1)!r} in file name ({exc})") from None


def discover_files(paths: Sequence[str | Path]) -> list[Path]:
    """The CSV files named by ``paths`` (files, or folders searched for github-ranking-*.csv), each once."""
    if not paths:
        raise ValidationError("paths", "no file or folder given", "CSV files or folders holding them")
    found: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            matches = sorted(path.glob(FILE_PATTERN))
            if not matches:
                raise ValidationError("paths", f"folder {path} holds no {FILE_PATTERN} file", "a folder of the CSVs")
            for match in matches:
                found.setdefault(match.resolve(), match)
        elif path.is_file():
            found.setdefault(path.resolve(), path)
        else:
            raise ValidationError("paths", f"{path} does not exist", "existing CSV files or folders")
    return list(found.values())


def read_file(path: Path) -> RankingFile:
    """Read the file's bytes once (hashing them) and take its date from its name."""
    snapshot_date = file_date(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataLoadError(f"{path}: cannot read ({exc.strerror})") from None
    return RankingFile(path, snapshot_date, hashlib.sha256(data).hexdigest(), data)


def _int(value: str, column: str, *, nullable: bool = False) -> int | None:
    if value == "" and nullable:
        return None
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"{column} {value!r} is not a non-negative integer")
    number = int(value)
    if number > _INT_MAX:
        raise ValueError(f"{column} {value} is too large (at most {_INT_MAX})")
    return number


def _timestamp(value: str) -> dt.datetime | None:
    if value == "":
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"last_commit {value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"last_commit {value!r} has no time zone")
    return parsed


def _row(fields: list[str], line: int) -> RankingRow:
    rank, item, repo_name, stars, forks, language, url, username, issues, last_commit, description = fields
    match = _URL.match(url)
    if not match:
        raise ValueError(f"repo_url {url!r} is not https://github.com/OWNER/NAME")
    owner, name = match.groups()
    if owner.lower() != username.lower():
        raise ValueError(f"username {username!r} is not the owner in repo_url {url!r}")
    if name.lower() != repo_name.lower():
        raise ValueError(f"repo_name {repo_name!r} is not the name in repo_url {url!r}")
    if len(owner) + 1 + len(name) > _FULL_NAME_MAX:
        raise ValueError(f"repository name {owner}/{name} is longer than {_FULL_NAME_MAX} characters")
    if not item:
        raise ValueError("item (the list name) is empty")
    if len(language) > _LANGUAGE_MAX:
        raise ValueError(f"language {language!r} is longer than {_LANGUAGE_MAX} characters")
    return RankingRow(
        line=line,
        rank=_int(rank, "rank"),  # type: ignore[arg-type]
        item=item,
        owner=owner,
        name=name,
        url=url,
        stars=_int(stars, "stars"),  # type: ignore[arg-type]
        forks=_int(forks, "forks"),  # type: ignore[arg-type]
        language=language or None,
        issues=_int(issues, "issues", nullable=True),
        last_commit=_timestamp(last_commit),
        description=description or None,
    )


def _decode(file: RankingFile) -> str:
    try:
        return file.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = file.data[: exc.start].count(b"\n") + 1
        raise DataLoadError(f"{file.path}: line {line}: not UTF-8 ({exc.reason})") from None


def body(file: RankingFile) -> bytes:
    """The file's rows (after its checked header) as UTF-8 bytes for COPY ... (FORMAT csv), all rows checked.

    Fast path: one regular expression over the whole file accepts the usual file in milliseconds; a file it
    does not accept goes through :func:`parse_rows`, which names the first bad line (or accepts the file: the
    expression is stricter than the rules, never looser). PostgreSQL's casts check the values once more.
    """
    text_ = _decode(file)
    first, _, rest = text_.partition("\n")
    header = first.rstrip("\r")
    if header != ",".join(COLUMNS):
        if not header and not rest:
            raise DataLoadError(f"{file.path}: line 1: empty file (expected the header {','.join(COLUMNS)})")
        raise DataLoadError(f"{file.path}: line 1: bad header {header!r} (expected {','.join(COLUMNS)})")
    if not rest.strip():
        raise DataLoadError(f"{file.path}: line 2: no data rows after the header")
    if not rest.endswith("\n"):
        rest += "\n"
    if not _FILE_FAST.fullmatch(rest):
        for _ in parse_rows(file):
            pass
    return rest.encode("utf-8")


def parse_rows(file: RankingFile) -> Iterator[RankingRow]:
    """Yield the file's validated rows; DataLoadError ``<file>: line <n>: <reason>`` at the first bad one."""
    reader = csv.reader(io.StringIO(_decode(file), newline=""), strict=True)
    line = 1
    try:
        header = next(reader, None)
        if header is None:
            raise DataLoadError(f"{file.path}: line 1: empty file (expected the header {','.join(COLUMNS)})")
        if tuple(header) != COLUMNS:
            raise DataLoadError(f"{file.path}: line 1: bad header {','.join(header)!r} "
                                f"(expected {','.join(COLUMNS)})")
        rows = 0
        while True:
            line = reader.line_num + 1
            fields = next(reader, None)
            if fields is None:
                break
            if len(fields) != len(COLUMNS):
                raise DataLoadError(f"{file.path}: line {line}: {len(fields)} columns (expected {len(COLUMNS)})")
            try:
                yield _row(fields, line)
            except ValueError as exc:
                raise DataLoadError(f"{file.path}: line {line}: {exc}") from None
            rows += 1
    except csv.Error as exc:
        raise DataLoadError(f"{file.path}: line {line}: {exc}") from None
    if rows == 0:
        raise DataLoadError(f"{file.path}: line 2: no data rows after the header")
