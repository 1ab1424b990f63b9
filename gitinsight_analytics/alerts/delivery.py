"""Delivering a user's digest: Markdown and JSON files under the reports folder, and an e-mail over SMTP.

``GITINSIGHT_SMTP_URL`` (read by settings) is ``smtp://[user:password@]host[:port][?from=address]``
(``smtps://`` for TLS from the start, ``smtp://...?starttls=true`` to upgrade). Any failure raises
:class:`DeliveryFailed`; the caller then leaves the alerts unsent, so the next run tries again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd

from ..exceptions import ConfigurationError, DeliveryFailed

__all__ = ["DeliveryFailed", "SmtpTarget", "parse_smtp_url", "digest_markdown", "digest_json", "write_digest",
           "send_digest", "DIGEST_DIR", "KIND_TITLES"]

DIGEST_DIR = "alerts"
KIND_TITLES = {"milestone": "Star milestones", "growth": "Unusual growth", "rank_enter": "Entered a top 100",
               "rank_leave": "Left a top 100", "insight": "New insights"}
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    sender: str
    tls: bool
    starttls: bool

    def __repr__(self) -> str:  # never show the password
        return f"SmtpTarget({self.host}:{self.port}, sender={self.sender!r})"


def parse_smtp_url(url: str) -> SmtpTarget:
    """An :class:`SmtpTarget` from ``smtp://`` / ``smtps://`` URL, or ConfigurationError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ConfigurationError("GITINSIGHT_SMTP_URL is not an SMTP URL (allowed: "
                                 "smtp://[user:password@]host[:port][?from=address&starttls=true] or smtps://...)")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError:
        raise ConfigurationError("GITINSIGHT_SMTP_URL has an invalid port (allowed: 1..65535)") from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return SmtpTarget(host=parts.hostname, port=port, username=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None,
                      sender=query.get("from", "gitinsight@localhost"), tls=parts.scheme == "smtps",
                      starttls=query.get("starttls", "").lower() in {"1", "true", "yes"})


def digest_markdown(username: str, alerts: pd.DataFrame, *, as_of: dt.date) -> str:
    """The digest for people: one section per kind, one line per alert (oldest day first)."""
    lines = [f"# GitInsight alerts for {username}", "",
             f"{len(alerts)} new alert{'s' * (len(alerts) != 1)} about the repositories you follow, "
             f"data up to {as_of}.", ""]
    for kind, title in KIND_TITLES.items():
        chosen = alerts[alerts["kind"] == kind]
        if len(chosen):
            lines += [f"## {title}", ""]
            lines += [f"- {row.as_of}: {row.message}" for row in chosen.itertuples()]
            lines.append("")
    return "\n".join(lines)


def digest_json(username: str, alerts: pd.DataFrame, *, as_of: dt.date) -> str:
    """The digest for programs: the user, the as-of date and each alert's fields."""
    items = [{"repository": r.full_name, "kind": r.kind, "as_of": str(r.as_of), "message": r.message,
              "details": r.details} for r in alerts.itertuples()]
    return json.dumps({"user": username, "as_of": str(as_of), "alerts": items}, ensure_ascii=False, indent=2,
                      default=str) + "\n"


def write_digest(reports_dir: Path, username: str, alerts: pd.DataFrame, *, as_of: dt.date,
                 now: dt.datetime) -> tuple[Path, Path]:
    """Write ``<reports_dir>/alerts/<user>/digest-<as_of>-<time>.md`` and ``.json`` (atomically); their paths."""
    folder = Path(reports_dir) / DIGEST_DIR / (_SAFE.sub("_", username) or "_")
    stem = f"digest-{as_of}-{now:%Y%m%dT%H%M%S%f}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for suffix, body in ((".md", digest_markdown(username, alerts, as_of=as_of)),
                             (".json", digest_json(username, alerts, as_of=as_of))):
            path = folder / f"{stem}{suffix}"
            tmp = path.with_suffix(suffix + ".tmp")
            tmp.write_text(body, encoding="utf-8")
            os.replace(tmp, path)
            paths.append(path)
    except OSError as exc:
        raise DeliveryFailed(f"digest file not written: {exc}") from None
    return paths[0], paths[1]


def send_digest(target: SmtpTarget, recipient: str, username: str, alerts: pd.DataFrame, *, as_of: dt.date,
                timeout: float = 30) -> None:
    """Send the digest as a plain-text e-mail (Markdown body, JSON attached); DeliveryFailed on any error."""
    message = EmailMessage()
    message["From"] = target.sender
    message["To"] = recipient
    count = len(alerts)
    message["Subject"] = f"GitInsight: {count} alert{'s' * (count != 1)} for {username} (data up to {as_of})"
    message.set_content(digest_markdown(username, alerts, as_of=as_of))
    message.add_attachment(digest_json(username, alerts, as_of=as_of).encode("utf-8"), maintype="application",
                           subtype="json", filename=f"alerts-{as_of}.json")
    try:
        smtp_class = smtplib.SMTP_SSL if target.tls else smtplib.SMTP
        with smtp_class(target.host, target.port, timeout=timeout) as smtp:
            if target.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if target.username:
                smtp.login(target.username, target.password or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"e-mail to {recipient} via {target.host}:{target.port} failed: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
