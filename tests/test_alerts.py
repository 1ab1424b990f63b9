"""Alerts on the real daily files: hand-checked milestone, rank and growth cases (numbers confirmed in the CSV
files), insights, idempotent re-runs, follow settings, row-level security, SMTP delivery (a real aiosmtpd server
on 127.0.0.1) and retry, the CLI and the schedule."""

from __future__ import annotations

import datetime as dt
import email
import json
import statistics
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gitinsight_analytics.alerts import list_alerts, parse_settings, run_alerts
from gitinsight_analytics.alerts import rules as r
from gitinsight_analytics.cli import main
from gitinsight_analytics.exceptions import ConfigurationError, ValidationError
from gitinsight_analytics.pgproc import free_port
from gitinsight_analytics.security import as_user

from .real_data import read_csv_days, real_engine, real_template  # noqa: F401

AS_OF = dt.date(2026, 8, 22)
ALICE_FOLLOWS = ("JuliusBrussee/caveman", "stablyai/orca", "soimort/you-get", "yjh051108/dsh-routing-suite",
                 "deepseek-ai/deepseek-harness", "react/react")


# --- fixtures ---------------------------------------------------------------------------------------------------

class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, str]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, f"smtp://127.0.0.1:{controller.port}?from=alerts@gitinsight.test"
    controller.stop()


def add_user(engine: Engine, username: str, email_address: str | None, follows: dict[str, dict | None]) -> str:
    with engine.begin() as conn:
        uid = conn.execute(text("INSERT INTO users (github_id, username, email) VALUES (:g, :u, :e) RETURNING id"),
                           {"g": 10_000 + len(username) * 7 + ord(username[0]), "u": username, "e": email_address}
                           ).scalar()
        for name, settings in follows.items():
            conn.execute(text(
                "INSERT INTO user_repository_follows (user_id, repository_id, notification_settings) "
                "SELECT :u, id, COALESCE(CAST(:s AS jsonb), '{\"email\": true, \"push\": false}'::jsonb) "
                "FROM repositories WHERE full_name = :n"), {"u": uid, "n": name,
                                                             "s": json.dumps(settings) if settings else None})
    return str(uid)


@pytest.fixture
def world(real_engine: Engine) -> dict[str, str]:  # noqa: F811
    return {"alice": add_user(real_engine, "alice", "alice@example.com", dict.fromkeys(ALICE_FOLLOWS)),
            "bob": add_user(real_engine, "bob", None, {"JuliusBrussee/caveman": {"notifications": False},
                                                       "stablyai/orca": {"kinds": ["rank_enter"]}})}


def stored(engine: Engine, username: str | None = None) -> set[tuple[str, str, str]]:
    frame = list_alerts(engine, username=username, limit=1000)
    return {(n, k, str(d)) for n, k, d in zip(frame["full_name"], frame["kind"], frame["as_of"], strict=True)}


def run(engine: Engine, tmp_path: Path, **kwargs):
    return run_alerts(engine, reports_dir=tmp_path / "reports", as_of=kwargs.pop("as_of", AS_OF), **kwargs)


# --- hand-checked cases on the real data ------------------------------------------------------------------------

def csv_row(days: pd.DataFrame, key: str, day: dt.date) -> pd.Series | None:
    rows = days[(days["key"] == key.lower()) & (days["date"] == day)]
    return rows.iloc[0] if len(rows) else None


def test_hand_checked_milestones_and_rank_moves(world, real_engine, tmp_path) -> None:  # noqa: F811
    days = read_csv_days()
    # the numbers behind each expected alert, read straight from the CSV files
    assert csv_row(days, "JuliusBrussee/caveman", dt.date(2026, 8, 21))["stars"] == 99_719
    assert csv_row(days, "JuliusBrussee/caveman", dt.date(2026, 8, 22))["stars"] == 100_186
    assert csv_row(days, "stablyai/orca", dt.date(2026, 8, 20))["stars"] < 50_000 <= \
        csv_row(days, "stablyai/orca", dt.date(2026, 8, 21))["stars"]
    assert csv_row(days, "deepseek-ai/deepseek-harness", dt.date(2026, 8, 15))["stars"] < 100_000 <= \
        csv_row(days, "deepseek-ai/deepseek-harness", dt.date(2026, 8, 16))["stars"]
    assert csv_row(days, "yjh051108/dsh-routing-suite", dt.date(2026, 8, 17))["stars"] < 5_000 <= \
        csv_row(days, "yjh051108/dsh-routing-suite", dt.date(2026, 8, 18))["stars"]
    assert csv_row(days, "yjh051108/dsh-routing-suite", dt.date(2026, 8, 15)) is None
    assert "PowerShell" in csv_row(days, "yjh051108/dsh-routing-suite", dt.date(2026, 8, 16))["lists"]
    assert "Python" in csv_row(days, "soimort/you-get", dt.date(2026, 8, 20))["lists"]
    assert csv_row(days, "soimort/you-get", dt.date(2026, 8, 21)) is None

    result = run(real_engine, tmp_path)
    assert result.as_of == AS_OF and result.ok
    alice = {a for a in stored(real_engine, "alice") if a[1] != "growth"}
    assert alice == {
        ("JuliusBrussee/caveman", "milestone", "2026-08-22"),
        ("stablyai/orca", "milestone", "2026-08-21"),
        ("deepseek-ai/deepseek-harness", "milestone", "2026-08-16"),
        ("yjh051108/dsh-routing-suite", "milestone", "2026-08-18"),
        ("yjh051108/dsh-routing-suite", "rank_enter", "2026-08-16"),
        ("soimort/you-get", "rank_leave", "2026-08-21"),
    }
    frame = list_alerts(real_engine, username="alice")
    caveman = frame[frame["full_name"] == "JuliusBrussee/caveman"].iloc[0]
    assert caveman["details"]["milestones"] == [100_000] and caveman["details"]["previous_stars"] == 99_719
    assert caveman["message"] == ("JuliusBrussee/caveman passed 100,000 stars: 100,186 on 2026-08-22 "
                                  "(99,719 on 2026-08-21).")


def test_a_longer_lookback_finds_older_events(world, real_engine, tmp_path) -> None:  # noqa: F811
    run(real_engine, tmp_path, lookback_days=9)  # 2026-08-14 .. 08-22
    kinds = stored(real_engine, "alice")
    assert ("deepseek-ai/deepseek-harness", "rank_enter", "2026-08-14") in kinds
    assert ("stablyai/orca", "rank_enter", "2026-08-14") in kinds


def expected_growth_days(days: pd.DataFrame, key: str) -> list[dt.date]:
    """The growth rule re-implemented on the CSV rows of one repository (docs/analyses.md, "Alerts")."""
    rows = days[days["key"] == key.lower()].sort_values("date")
    dates, stars = list(rows["date"]), list(rows["stars"])
    rates = {dates[k]: ((stars[k] - stars[k - 1]) / (dates[k] - dates[k - 1]).days, (dates[k] - dates[k - 1]).days)
             for k in range(1, len(dates))}
    found, previous_above = [], False
    for day, (rate, gap) in rates.items():
        base = [x for d, (x, g) in rates.items() if day - dt.timedelta(days=28) <= d < day and g <= 7]
        above = gap <= 7 and len(base) >= 7 and rate >= 3 * max(statistics.median(base), 1) and \
            rate - statistics.median(base) >= 20
        if above and not previous_above and AS_OF - dt.timedelta(days=7) < day <= AS_OF:
            found.append(day)
        previous_above = above
    return found


@pytest.mark.parametrize("name", ["openai/codex", "AlexsJones/llmfit", "JuliusBrussee/caveman"])
def test_growth_matches_an_independent_reading(real_engine, tmp_path, name) -> None:  # noqa: F811
    add_user(real_engine, "carol", None, {name: None})
    run(real_engine, tmp_path)
    got = sorted(dt.date.fromisoformat(d) for n, k, d in stored(real_engine, "carol") if k == "growth")
    assert got == expected_growth_days(read_csv_days(), name)


def test_growth_rule_alerts_on_the_first_day_of_a_surge() -> None:
    days = [dt.date(2026, 8, 1) + dt.timedelta(days=k) for k in range(14)]
    gains = [10] * 9 + [100, 120, 10, 10]  # a two-day surge after nine quiet days
    stars = [1000]
    for g in gains:
        stars.append(stars[-1] + g)
    snaps = pd.DataFrame({"snapshot_date": days, "stars": stars})
    events = r.growth_events({"id": "x", "full_name": "o/x"}, snaps, as_of=days[-1], lookback_days=14)
    assert [(e.as_of, e.details["gain"], e.details["usual_per_day"]) for e in events] == [(days[10], 100, 10.0)]
    assert r.growth_events({"id": "x", "full_name": "o/x"}, snaps, as_of=days[-1], lookback_days=14,
                           factor=20) == []


# --- insights, settings, idempotency ----------------------------------------------------------------------------

def test_insights_above_the_threshold(world, real_engine, tmp_path) -> None:  # noqa: F811
    with real_engine.begin() as conn:
        for when, confidence, title in (("2026-08-20 10:00+00", 0.9, "Critical CVE"), ("2026-08-20 11:00+00", 0.5,
                                        "Maybe slow"), ("2026-08-10 09:00+00", 0.95, "Too old")):
            conn.execute(text(
                "INSERT INTO insights (repository_id, type, title, confidence_score, data, generated_at) "
                "SELECT id, 'security_vulnerability', :t, :c, '{}'::jsonb, :w FROM repositories "
                "WHERE full_name = 'react/react'"), {"t": title, "c": confidence, "w": when})
    add_user(real_engine, "dave", None, {"react/react": {"min_confidence": 0.4}})
    run(real_engine, tmp_path)
    alice = list_alerts(real_engine, username="alice")
    insight = alice[alice["kind"] == "insight"]
    assert len(insight) == 1 and insight.iloc[0]["as_of"] == dt.date(2026, 8, 20)
    assert [i["title"] for i in insight.iloc[0]["details"]["insights"]] == ["Critical CVE"]
    dave = list_alerts(real_engine, username="dave")
    assert [i["title"] for i in dave[dave["kind"] == "insight"].iloc[0]["details"]["insights"]] == [
        "Critical CVE", "Maybe slow"]


def test_rerun_stores_and_sends_nothing_new(world, real_engine, tmp_path, smtp) -> None:  # noqa: F811
    inbox, url = smtp
    first = run(real_engine, tmp_path, smtp_url=url)
    alice = next(u for u in first.users if u.username == "alice")
    assert alice.new == alice.delivered > 0 and alice.emailed and len(inbox.messages) == 1
    files = sorted((tmp_path / "reports" / "alerts").rglob("*"))
    second = run(real_engine, tmp_path, smtp_url=url)
    assert all(u.new == 0 and u.delivered == 0 for u in second.users)
    assert len(inbox.messages) == 1 and sorted((tmp_path / "reports" / "alerts").rglob("*")) == files
    with real_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alerts WHERE sent_at IS NULL")).scalar() == 0


def test_follow_settings_are_honoured(world, real_engine, tmp_path) -> None:  # noqa: F811
    run(real_engine, tmp_path, lookback_days=9)
    bob = stored(real_engine, "bob")
    assert bob == {("stablyai/orca", "rank_enter", "2026-08-14")}  # caveman: notifications false; orca: one kind
    assert ("JuliusBrussee/caveman", "milestone", "2026-08-22") in stored(real_engine, "alice")


@pytest.mark.parametrize(("raw", "problem"), [
    ({"notifications": "no"}, "notifications"), ({"kinds": ["stars"]}, "kinds"),
    ({"min_confidence": 2}, "min_confidence"), ({"growth_factor": 1}, "growth_factor"),
    ({"milestones": [0]}, "milestones"), ({"milestones": "1k"}, "milestones"),
])
def test_bad_settings_fall_back_and_are_reported(raw, problem) -> None:
    settings = parse_settings(raw)
    assert settings.problems and settings.problems[0].startswith(problem)
    assert settings.notifications is True and settings.kinds == r.ALERT_KINDS


def test_good_settings() -> None:
    settings = parse_settings({"notifications": True, "kinds": ["milestone"], "min_confidence": 0.6,
                               "growth_factor": 5, "milestones": [2000, 500], "email": True})
    assert (settings.kinds, settings.min_confidence, settings.growth_factor, settings.milestones) == (
        ("milestone",), 0.6, 5.0, (500, 2000))
    assert settings.problems == ()


# --- row-level security -----------------------------------------------------------------------------------------

def test_a_repository_the_user_cannot_see_is_never_mentioned(world, real_engine, tmp_path, smtp) -> None:  # noqa: F811
    inbox, url = smtp
    with real_engine.begin() as conn:  # a stricter visibility rule than owned-or-followed (e.g. a private repo)
        conn.execute(text("CREATE POLICY hide_orca ON repositories AS RESTRICTIVE FOR SELECT TO application_role "
                          "USING (full_name <> 'stablyai/orca')"))
    run(real_engine, tmp_path, smtp_url=url)
    assert not any(name == "stablyai/orca" for name, _, _ in stored(real_engine))
    assert "stablyai/orca" not in inbox.messages[0].get_body().get_content()
    assert ("JuliusBrussee/caveman", "milestone", "2026-08-22") in stored(real_engine, "alice")


def test_an_alert_about_a_repository_gone_invisible_is_not_sent(world, real_engine, tmp_path, smtp) -> None:  # noqa: F811
    inbox, url = smtp
    dead = f"smtp://127.0.0.1:{free_port()}"
    result = run(real_engine, tmp_path, smtp_url=dead)  # stored, not delivered
    assert not result.ok
    assert ("stablyai/orca", "milestone", "2026-08-21") in stored(real_engine, "alice")
    with real_engine.begin() as conn:  # alice stops following orca: it is no longer visible to her
        conn.execute(text("DELETE FROM user_repository_follows WHERE user_id = :u AND repository_id = "
                          "(SELECT id FROM repositories WHERE full_name = 'stablyai/orca')"), {"u": world["alice"]})
    with as_user(real_engine, world["alice"]) as conn:
        assert "stablyai/orca" not in set(list_alerts(conn)["full_name"])
        assert "JuliusBrussee/caveman" in set(list_alerts(conn)["full_name"])
        assert set(list_alerts(conn)["username"]) == {"alice"}  # never another user's alerts
    run(real_engine, tmp_path, smtp_url=url)
    body = inbox.messages[0].get_body().get_content()
    assert "JuliusBrussee/caveman passed 100,000 stars" in body and "stablyai/orca" not in body


# --- delivery: SMTP and retry -----------------------------------------------------------------------------------

def test_smtp_delivery(world, real_engine, tmp_path, smtp) -> None:  # noqa: F811
    inbox, url = smtp
    result = run(real_engine, tmp_path, smtp_url=url, lookback_days=9)
    (message,), (recipients,) = inbox.messages, inbox.recipients
    assert recipients == ["alice@example.com"] and message["From"] == "alerts@gitinsight.test"
    count = len(list_alerts(real_engine, username="alice"))
    assert message["Subject"] == f"GitInsight: {count} alerts for alice (data up to 2026-08-22)"
    body = message.get_body(("plain",)).get_content()
    assert "## Star milestones" in body and "soimort/you-get left the top 100 Python repositories" in body
    attachment = next(message.iter_attachments())
    assert json.loads(attachment.get_content())["user"] == "alice"
    bob = next(u for u in result.users if u.username == "bob")
    assert bob.files and not bob.emailed and bob.warnings == ["no e-mail address: digest written to a file only"]
    json_path, md_path = alice_files = sorted((tmp_path / "reports" / "alerts" / "alice").iterdir())
    assert [p.suffix for p in alice_files] == [".json", ".md"]
    assert json.loads(json_path.read_text())["as_of"] == "2026-08-22"
    assert md_path.read_text().startswith("# GitInsight alerts for alice")


def test_a_failed_delivery_is_retried_and_never_marked_sent(world, real_engine, tmp_path, smtp) -> None:  # noqa: F811
    inbox, url = smtp
    dead = f"smtp://127.0.0.1:{free_port()}"
    first = run(real_engine, tmp_path, smtp_url=dead)
    alice = next(u for u in first.users if u.username == "alice")
    assert alice.new > 0 and alice.delivered == 0 and "failed" in alice.error
    frame = list_alerts(real_engine, username="alice")
    assert frame["sent_at"].isna().all() and (frame["attempts"] == 1).all() and frame["last_error"].notna().all()
    second = run(real_engine, tmp_path, smtp_url=url)
    alice = next(u for u in second.users if u.username == "alice")
    assert alice.new == 0 and alice.delivered == len(frame) and len(inbox.messages) == 1
    frame = list_alerts(real_engine, username="alice")
    assert frame["sent_at"].notna().all() and (frame["attempts"] == 2).all() and frame["last_error"].isna().all()


@pytest.mark.parametrize("url", ["http://example.com", "smtp://", "smtp://host:99999"])
def test_a_bad_smtp_url_is_refused_before_anything(world, real_engine, tmp_path, url) -> None:  # noqa: F811
    with pytest.raises(ConfigurationError, match="GITINSIGHT_SMTP_URL"):
        run(real_engine, tmp_path, smtp_url=url)
    assert stored(real_engine) == set()


# --- CLI and schedule ---------------------------------------------------------------------------------------------

@pytest.fixture
def cli_real(world, real_engine, monkeypatch, tmp_path) -> Engine:  # noqa: F811
    monkeypatch.setenv("DATABASE_URL", real_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GITINSIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GITINSIGHT_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("GITINSIGHT_SMTP_URL", raising=False)
    return real_engine


def test_cli_run_and_list(cli_real, capsys, tmp_path, smtp, monkeypatch) -> None:
    inbox, url = smtp
    monkeypatch.setenv("GITINSIGHT_SMTP_URL", url)
    assert main(["alerts", "run", "--as-of", "2026-08-22"]) == 0
    out = capsys.readouterr().out
    assert "alice:" in out and "alerts as of 2026-08-22 (7 days): 2 users" in out and len(inbox.messages) == 1
    assert main(["alerts", "list", "--user", "alice", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["username"] for row in rows} == {"alice"} and all(row["sent_at"] for row in rows)
    assert main(["alerts", "list", "--user", "nobody"]) == 2
    assert capsys.readouterr().err.strip() == ("error: username: no user named 'nobody' (allowed: the username of "
                                               "an existing user)")
    assert main(["alerts", "run", "--as-of", "22/08/2026"]) == 2
    assert "as_of" in capsys.readouterr().err
    with cli_real.connect() as conn:
        audit = conn.execute(text("SELECT details FROM audit_logs WHERE action = 'alerts.run' "
                                  "ORDER BY created_at")).scalars().all()
    assert audit[0]["outcome"] == "ok" and audit[0]["new"] > 0


def test_cli_delivery_failure_exits_non_zero(cli_real, capsys, monkeypatch) -> None:
    monkeypatch.setenv("GITINSIGHT_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    assert main(["alerts", "run"]) == 1
    err = capsys.readouterr().err
    assert "delivery failed for 1 users (alice)" in err and "retried by the next run" in err


def test_unknown_user_is_refused(world, real_engine, tmp_path) -> None:  # noqa: F811
    with pytest.raises(ValidationError, match="no user named ghost"):
        run(real_engine, tmp_path, usernames=["ghost"])


def test_schedule_runs_alerts(world, real_engine, tmp_path) -> None:  # noqa: F811
    from gitinsight_analytics.reports.schedule import read_schedule, run_due
    from gitinsight_analytics.settings import PROJECT_ROOT

    assert [e.id for e in read_schedule(PROJECT_ROOT / "schedule.yml").alerts] == ["alerts-daily"]
    path = tmp_path / "schedule.yml"
    path.write_text("alerts:\n  - id: alerts-often\n    days: 9\n    every: 1h\n")
    outcome = run_due(path, database_url=real_engine.url.render_as_string(hide_password=False),
                      reports_dir=tmp_path / "reports", notebooks_dir=tmp_path, retention_days=30,
                      engine=real_engine, now=dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC))
    assert outcome.ok and outcome.alerts == {"alerts-often": None}
    assert ("stablyai/orca", "rank_enter", "2026-08-14") in stored(real_engine, "alice")
    again = run_due(path, database_url=real_engine.url.render_as_string(hide_password=False),
                    reports_dir=tmp_path / "reports", notebooks_dir=tmp_path, retention_days=30,
                    engine=real_engine, now=dt.datetime(2026, 12, 1, 12, 30, tzinfo=dt.UTC))
    assert again.alerts == {}  # not due yet


@pytest.mark.parametrize(("body", "message"), [
    ("alerts:\n  - id: a\n    days: 0\n    every: 1h\n", "alerts\\[1\\].days"),
    ("alerts:\n  - id: a\n    every: 1h\n    user: x\n", "unknown keys"),
    ("alerts:\n  - id: a\n", "needs exactly one of"),
])
def test_schedule_alert_entries_are_validated(tmp_path, body, message) -> None:
    from gitinsight_analytics.reports.schedule import read_schedule

    path = tmp_path / "schedule.yml"
    path.write_text(body)
    with pytest.raises(ValidationError, match=message):
        read_schedule(path)
