"""The user dashboard (the spec's "User Dashboard Data"), without the spec's row multiplication."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from ..exceptions import ValidationError
from ..validation import check_limit, check_offset
from .frame import Bind, connection, read_frame

__all__ = ["user_dashboard", "most_followed_user", "DASHBOARD_COLUMNS", "DASHBOARD_SQL"]

DASHBOARD_COLUMNS = {
    "full_name": "str", "name": "str", "language": "str", "stars": "int", "forks": "int",
    "followed_at": "ts", "insight_count": "int", "latest_insight": "ts", "analysis_status": "str",
    "latest_job_status": "str", "latest_job_type": "str", "latest_job_created_at": "ts",
}

# Each aggregate comes from its own correlated subquery (index scans per followed repository), so neither
# insights nor jobs can multiply each other's rows; "latest job" is one row even when two jobs share created_at.
#: The query (benchmarks/bench_queries.py measures it as it is).
DASHBOARD_SQL = """
SELECT r.full_name, r.name, r.language, COALESCE(r.stars, 0) AS stars, COALESCE(r.forks, 0) AS forks,
       urf.followed_at,
       ins.insight_count, ins.latest_insight,
       r.analysis_status,
       job.status AS latest_job_status, job.type AS latest_job_type, job.created_at AS latest_job_created_at
FROM user_repository_follows urf
JOIN repositories r ON r.id = urf.repository_id
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS insight_count, MAX(i.generated_at) AS latest_insight
    FROM insights i WHERE i.repository_id = r.id
) ins
LEFT JOIN LATERAL (
    SELECT aj.status, aj.type, aj.created_at
    FROM analysis_jobs aj WHERE aj.repository_id = r.id
    ORDER BY aj.created_at DESC NULLS LAST, aj.id DESC
    LIMIT 1
) job ON TRUE
WHERE urf.user_id = CAST(:user_id AS uuid)
ORDER BY urf.followed_at DESC NULLS LAST, r.full_name
LIMIT :limit OFFSET :offset
"""


_MOST_FOLLOWED_SQL = """
SELECT u.username FROM user_repository_follows urf JOIN users u ON u.id = urf.user_id
GROUP BY u.id, u.username
ORDER BY COUNT(urf.repository_id) DESC, u.username
LIMIT 1
"""


def most_followed_user(bind: Bind) -> str | None:
    """The username following the most repositories (ties: alphabetical): the dashboard report's default user;
    None when nobody follows anything."""
    with connection(bind) as conn:
        return conn.execute(text(_MOST_FOLLOWED_SQL)).scalar()


def user_dashboard(bind: Bind, *, username: str, limit: int = 100, offset: int = 0) -> pd.DataFrame:
    """The repositories ``username`` follows, newest follow first (``limit``/``offset`` pages), each with its
    insight count, latest insight, the repository's analysis status and its latest analysis job (status, type,
    created_at). ``df.attrs["truncated"]`` is True when more follows exist after this page.

    ``analysis_status`` is the repository's own column; the spec's query overwrote it with the latest job's
    status, which is ``latest_job_status`` here.
    """
    if not isinstance(username, str) or not username.strip() or len(username) > 255:
        raise ValidationError("username", f"{username!r} is not a user name", "the username of an existing user")
    username = username.strip()
    limit = check_limit(limit)
    offset = check_offset(offset)
    with connection(bind) as conn:
        # The user first, then the page for that id: on Citus the page is then one statement sent to the shards,
        # with no subquery on users to plan and ship first.
        ids = conn.execute(text("SELECT id FROM users WHERE username = :u LIMIT 2"), {"u": username}).scalars().all()
        frame = read_frame(conn, DASHBOARD_SQL, {"user_id": str(ids[0]) if len(ids) == 1 else None, "limit": limit + 1,
                                        "offset": offset}, DASHBOARD_COLUMNS)
        if frame.empty:  # no follows on this page, or no such user, or several
            users = conn.execute(
                text("SELECT github_id FROM users WHERE username = :u ORDER BY github_id LIMIT 5"), {"u": username}
            ).scalars().all()
            if not users:
                raise ValidationError("username", f"no user named {username!r}", "the username of an existing user")
            if len(users) > 1:
                ids = ", ".join(str(u) for u in users)
                raise ValidationError("username", f"{username!r} is ambiguous (github ids {ids})",
                                      "a unique username")
    truncated = len(frame) > limit
    frame = frame.iloc[:limit].reset_index(drop=True)
    frame.attrs.update({"username": username, "truncated": truncated, "limit": limit, "offset": offset})
    return frame
