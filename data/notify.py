"""Alert notifications: a Slack-compatible webhook and SMTP e-mail, retried with backoff and recorded.

Channels come from settings (the Flask config, else the environment):

``GLASSBOX_ALERT_WEBHOOK_URL``
    POSTed ``{"text": ..., "blocks": [...]}`` (Slack incoming-webhook format;
    Mattermost and Teams' Slack-compatible endpoints accept it too).
``GLASSBOX_SMTP_HOST`` (+ ``_PORT`` default 587, ``_USER``, ``_PASSWORD``, ``_FROM``,
``_STARTTLS`` default true, ``_SSL`` default false) and ``GLASSBOX_ALERT_EMAIL_TO``
(comma-separated)
    One plain-text e-mail per alert.

A new alert event gets one :class:`~data.monitoring.Notification` row per
configured channel in the transaction that records the event, so nothing is
lost if the process dies. :func:`deliver_pending` sends due rows: each run
tries a row a few times with a short backoff, and if it still fails records
the error, the attempt count and when to try again (exponential backoff
between runs) until ``GLASSBOX_ALERT_MAX_ATTEMPTS`` attempts, after which the
row is marked ``failed`` and logged as an error. Runs happen after API
ingestion (in a background thread) and in ``glassbox alerts evaluate``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from data.db import Database, utcnow
from data.monitoring import AlertEvent, Notification

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
#: Tries per row within one delivery run, and the pause before each retry (seconds).
TRIES_PER_RUN = 3
RETRY_PAUSE_S = 0.5
#: Attempts in total before a row is given up on.
DEFAULT_MAX_ATTEMPTS = 8
#: Pause between runs after a failed run: base * 2^(runs so far), capped.
BACKOFF_BASE = dt.timedelta(minutes=1)
BACKOFF_CAP = dt.timedelta(hours=6)


class DeliveryError(RuntimeError):
    """A channel refused or could not be reached; the message says how."""


@dataclass(frozen=True)
class Settings:
    """Notification settings read once per delivery run."""

    webhook_url: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_user: str | None
    smtp_password: str | None
    smtp_from: str
    smtp_starttls: bool
    smtp_ssl: bool
    email_to: tuple[str, ...]
    max_attempts: int

    @property
    def channels(self) -> list[tuple[str, str]]:
        """Return (channel, target) of every configured channel."""
        out = []
        if self.webhook_url:
            out.append(("webhook", redact_url(self.webhook_url)))
        if self.smtp_host and self.email_to:
            out.append(("email", ", ".join(self.email_to)[:255]))
        return out


def _setting(name: str, default: str | None = None) -> str | None:
    try:
        from flask import current_app, has_app_context

        if has_app_context() and current_app.config.get(name) not in (None, ""):
            return str(current_app.config[name])
    except ImportError:  # pragma: no cover - flask is a dependency
        pass
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _flag(name: str, default: bool) -> bool:
    value = _setting(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def load_settings() -> Settings:
    """Read the notification settings (Flask config first, then the environment)."""
    port = _setting("GLASSBOX_SMTP_PORT", "587")
    attempts = _setting("GLASSBOX_ALERT_MAX_ATTEMPTS", str(DEFAULT_MAX_ATTEMPTS))
    to = _setting("GLASSBOX_ALERT_EMAIL_TO", "") or ""
    return Settings(
        webhook_url=_setting("GLASSBOX_ALERT_WEBHOOK_URL"),
        smtp_host=_setting("GLASSBOX_SMTP_HOST"),
        smtp_port=int(port) if str(port).isdigit() else 587,
        smtp_user=_setting("GLASSBOX_SMTP_USER"),
        smtp_password=_setting("GLASSBOX_SMTP_PASSWORD"),
        smtp_from=_setting("GLASSBOX_SMTP_FROM", "glassbox@localhost") or "glassbox@localhost",
        smtp_starttls=_flag("GLASSBOX_SMTP_STARTTLS", True),
        smtp_ssl=_flag("GLASSBOX_SMTP_SSL", False),
        email_to=tuple(a.strip() for a in to.split(",") if a.strip()),
        max_attempts=max(1, int(attempts)) if str(attempts).isdigit() else DEFAULT_MAX_ATTEMPTS,
    )


def redact_url(url: str) -> str:
    """Return scheme://host/… of a URL: webhook paths carry secrets and must not be stored or shown."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}/…"


# -- queueing ------------------------------------------------------------------------

def queue_notifications(session: Session, event: AlertEvent, *, settings: Settings | None = None) -> int:
    """Add one pending notification per configured channel for a new event; return how many."""
    settings = settings or load_settings()
    for channel, target in settings.channels:
        session.add(Notification(event_id=event.id, channel=channel, target=target, status="pending",
                                 next_attempt_at=utcnow()))
    return len(settings.channels)


# -- channels --------------------------------------------------------------------------

def webhook_payload(message: str, *, title: str = "Glassbox alert") -> dict:
    """Return the Slack-compatible JSON body for an alert message."""
    return {"text": f"{title}: {message}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{message}"}}]}


def send_webhook(url: str, payload: dict, *, timeout: float = TIMEOUT_S) -> None:
    """POST ``payload`` as JSON; raise DeliveryError unless the answer is 2xx."""
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DeliveryError(f"the webhook URL must be http(s), not {scheme or 'empty'}")
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "glassbox-alerts"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            status = response.status
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"webhook unreachable: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook answered HTTP {status}")


def send_email(settings: Settings, *, subject: str, body: str, timeout: float = TIMEOUT_S) -> None:
    """Send one plain-text e-mail to the configured recipients; raise DeliveryError on failure."""
    if not settings.smtp_host or not settings.email_to:
        raise DeliveryError("SMTP is not configured (GLASSBOX_SMTP_HOST and GLASSBOX_ALERT_EMAIL_TO)")
    msg = EmailMessage()
    msg["Subject"] = subject[:200]
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(settings.email_to)
    msg.set_content(body)
    try:
        if settings.smtp_ssl:
            client = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        with client:
            if settings.smtp_starttls and not settings.smtp_ssl:
                client.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                client.login(settings.smtp_user, settings.smtp_password or "")
            client.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"e-mail not sent: {type(exc).__name__}: {exc}") from None


def _send(channel: str, message: str, settings: Settings) -> None:
    if channel == "webhook":
        if not settings.webhook_url:
            raise DeliveryError("GLASSBOX_ALERT_WEBHOOK_URL is no longer set")
        send_webhook(settings.webhook_url, webhook_payload(message))
    elif channel == "email":
        send_email(settings, subject=f"[Glassbox alert] {message[:120]}", body=message +
                   "\n\nOpen the monitoring page of this model in Glassbox to see and acknowledge it.\n")
    else:
        raise DeliveryError(f"unknown channel {channel!r}")


# -- delivery -----------------------------------------------------------------------------

def _claim(db: Database, now: dt.datetime) -> list[tuple[int, str, str]]:
    """Take the due rows with a compare-and-set token so two runs never send the same row."""
    token = secrets.token_hex(8)
    stale = now - dt.timedelta(minutes=15)
    with db.session() as s:
        due = s.scalars(select(Notification.id).where(
            Notification.status == "pending",
            or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
            or_(Notification.claim_token.is_(None), Notification.last_attempt_at < stale))
            .order_by(Notification.id).limit(100)).all()
        taken = []
        for nid in due:
            done = s.execute(update(Notification).where(Notification.id == nid, Notification.status == "pending",
                                                        or_(Notification.claim_token.is_(None),
                                                            Notification.last_attempt_at < stale))
                             .values(claim_token=token, last_attempt_at=now)).rowcount
            if done == 1:
                taken.append(nid)
        rows = s.execute(select(Notification.id, Notification.channel, AlertEvent.message)
                         .join(AlertEvent, AlertEvent.id == Notification.event_id)
                         .where(Notification.id.in_(taken))).all()
    return [(r.id, r.channel, r.message) for r in rows]


def deliver_pending(db: Database, *, now: dt.datetime | None = None, settings: Settings | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> dict[str, int]:
    """Send every due notification; return counts of sent, retry-later and given-up rows."""
    settings = settings or load_settings()
    now = now or utcnow()
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for nid, channel, message in _claim(db, now):
        error = None
        tries = 0
        for attempt in range(TRIES_PER_RUN):
            tries += 1
            try:
                _send(channel, message, settings)
                error = None
                break
            except DeliveryError as exc:
                error = str(exc)
                log.warning("notification %s via %s failed (try %d): %s", nid, channel, attempt + 1, error)
                if attempt + 1 < TRIES_PER_RUN:
                    sleep(RETRY_PAUSE_S * 2 ** attempt)
        with db.session() as s:
            row = s.get(Notification, nid)
            row.attempts += tries
            row.last_attempt_at = utcnow()
            row.claim_token = None
            if error is None:
                row.status, row.sent_at, row.last_error, row.next_attempt_at = "sent", utcnow(), None, None
                counts["sent"] += 1
            elif row.attempts >= settings.max_attempts:
                row.status, row.last_error, row.next_attempt_at = "failed", error[:2000], None
                counts["failed"] += 1
                log.error("notification %s via %s given up after %d attempts: %s", nid, channel, row.attempts,
                          error)
            else:
                runs = max(1, row.attempts // TRIES_PER_RUN)
                row.last_error = error[:2000]
                row.next_attempt_at = utcnow() + min(BACKOFF_BASE * 2 ** (runs - 1), BACKOFF_CAP)
                counts["retry"] += 1
    return counts


def retry_notification(session: Session, notification_id: int) -> None:
    """Queue a failed notification again now (admin action); raise ValueError if it is not failed."""
    row = session.get(Notification, notification_id) if isinstance(notification_id, int) else None
    if row is None or row.status != "failed":
        raise ValueError("only a notification that was given up on can be retried")
    row.status, row.next_attempt_at, row.attempts = "pending", utcnow(), 0


def recent_notifications(session: Session, *, limit: int = 50) -> list[dict]:
    """Return the latest notifications with their event message, newest first."""
    rows = session.execute(select(Notification, AlertEvent.message)
                           .join(AlertEvent, AlertEvent.id == Notification.event_id)
                           .order_by(Notification.id.desc()).limit(limit)).all()
    return [{"id": n.id, "channel": n.channel, "target": n.target, "status": n.status, "attempts": n.attempts,
             "last_error": n.last_error, "created_at": n.created_at, "sent_at": n.sent_at,
             "next_attempt_at": n.next_attempt_at, "message": message} for n, message in rows]
