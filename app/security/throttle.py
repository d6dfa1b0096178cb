"""Login rate limit per client IP and per username, shared by every worker.

Failed attempts live in the database, so N gunicorn workers (or hosts) see
one limit, not N times the limit.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from data.db import utcnow
from data.models import LoginAttempt


def _keys(ip: str | None, username: str) -> tuple[str, str]:
    return f"ip:{ip or '-'}", f"user:{username.strip().lower()[:64]}"


def is_limited(session: Session, *, ip: str | None, username: str, limit_ip: int, limit_user: int,
               window_seconds: int) -> bool:
    """Return whether this IP or username has too many recent failures."""
    since = utcnow() - dt.timedelta(seconds=window_seconds)
    ip_key, user_key = _keys(ip, username)

    def count(key: str) -> int:
        return session.scalar(
            select(func.count()).select_from(LoginAttempt)
            .where(LoginAttempt.key == key, LoginAttempt.attempted_at >= since)
        ) or 0

    return count(ip_key) >= limit_ip or count(user_key) >= limit_user


def record_failure(session: Session, *, ip: str | None, username: str, window_seconds: int) -> None:
    """Remember one failed attempt and forget the ones older than the window."""
    ip_key, user_key = _keys(ip, username)
    session.add_all([LoginAttempt(key=ip_key), LoginAttempt(key=user_key)])
    cutoff = utcnow() - dt.timedelta(seconds=window_seconds)
    session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at < cutoff))


def clear_user(session: Session, username: str) -> None:
    """Forget the failures of ``username`` after a successful login."""
    _, user_key = _keys(None, username)
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == user_key))
