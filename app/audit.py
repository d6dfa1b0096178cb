"""One function that records an audit event."""

from __future__ import annotations

import logging

from flask import has_request_context, request
from flask_login import current_user

from data.db import get_db
from data.models import AuditEvent

log = logging.getLogger("glassbox.audit")


def client_ip() -> str | None:
    """Return the client address of the current request (after ProxyFix, if configured)."""
    if not has_request_context():
        return None
    return (request.remote_addr or "")[:64] or None


def record_event(action: str, *, target: str | None = None, outcome: str = "success",
                 detail: str | None = None, username: str | None = None) -> None:
    """Write one audit event in its own transaction; never raise into the caller."""
    if username is None and has_request_context():
        try:
            if current_user and current_user.is_authenticated:
                username = current_user.username
        except Exception:  # no login manager (CLI contexts)
            username = None
    if username is None and not has_request_context():
        username = "cli"
    event = AuditEvent(username=username, ip=client_ip(), action=action[:64],
                       target=(target or None) and target[:255], outcome=outcome[:16],
                       detail=(detail or None) and detail[:4000])
    try:
        with get_db().session() as session:
            session.add(event)
    except Exception:
        log.exception("could not write audit event %s %s %s", action, target, outcome)
    log.info("audit action=%s target=%s outcome=%s user=%s", action, target, outcome, username)
