"""The signed-in user as the rest of the app sees it, and account operations."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_login import UserMixin
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.security.passwords import hash_password, password_problem
from app.security.permissions import MODEL_SCOPED, ROLES, Permission, role_permissions
from data.db import utcnow
from data.models import RoleGrant, User

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$")
ROLE_ORDER = list(ROLES)  # viewer < analyst < admin


class AccountError(ValueError):
    """An account operation was refused; the message says why."""


@dataclass(frozen=True)
class CurrentUser(UserMixin):
    """A snapshot of a user and their permissions, rebuilt from the database per request."""

    id: int
    username: str
    session_version: int
    active: bool
    global_permissions: frozenset[Permission]
    model_permissions: dict[str, frozenset[Permission]] = field(default_factory=dict)
    roles: tuple[str, ...] = ()

    def get_id(self) -> str:
        """Return the session id: user id and session version, so old sessions die."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # noqa: D401 - Flask-Login protocol
        return self.active

    @property
    def role(self) -> str:
        """Return the highest role the user holds (for display)."""
        held = [r for r in ROLE_ORDER if r in self.roles]
        return held[-1] if held else "no role"

    def can(self, permission: Permission, model: str | None = None) -> bool:
        """Return whether the user holds ``permission`` (on ``model``, or anywhere if None)."""
        if permission in self.global_permissions:
            return True
        if model is not None:
            return permission in self.model_permissions.get(model, frozenset())
        return any(permission in perms for perms in self.model_permissions.values())

    def visible_models(self, permission: Permission) -> set[str] | None:
        """Return the models on which the user holds ``permission``; None means all."""
        if permission in self.global_permissions:
            return None
        return {m for m, perms in self.model_permissions.items() if permission in perms}


def snapshot(user: User) -> CurrentUser:
    """Build the request's view of ``user`` from its grants."""
    global_perms: set[Permission] = {Permission.AUTHENTICATED}
    per_model: dict[str, set[Permission]] = {}
    for grant in user.grants:
        perms = ROLES.get(grant.role, frozenset())
        if grant.model_name is None:
            global_perms |= perms
        else:
            per_model.setdefault(grant.model_name, set()).update(perms & MODEL_SCOPED)
    return CurrentUser(
        id=user.id,
        username=user.username,
        session_version=user.session_version,
        active=user.is_active,
        global_permissions=frozenset(global_perms),
        model_permissions={m: frozenset(p) for m, p in per_model.items()},
        roles=tuple(sorted({g.role for g in user.grants}, key=ROLE_ORDER.index)),
    )


def load_session_user(session: Session, session_id: str) -> CurrentUser | None:
    """Return the user for a session id ``"<id>:<version>"`` if it is still valid."""
    try:
        raw_id, raw_version = session_id.split(":", 1)
        user_id, version = int(raw_id), int(raw_version)
    except (ValueError, AttributeError):
        return None
    user = session.get(User, user_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    return snapshot(user)


def find_user(session: Session, username: str) -> User | None:
    """Return the user called ``username`` (case-insensitive) or None."""
    return session.scalar(select(User).where(User.username == username.strip().lower()))


def require_user(session: Session, username: str) -> User:
    """Return the user called ``username`` or raise :class:`AccountError`."""
    user = find_user(session, username)
    if user is None:
        raise AccountError(f"There is no user called {username!r}.")
    return user


def end_sessions(user: User) -> None:
    """End every live session of ``user`` at once."""
    user.session_version += 1


def create_user(session: Session, username: str, password: str, *, role: str, model: str | None = None,
                granted_by: str | None = None) -> User:
    """Create an active user with one grant; raise :class:`AccountError` on bad input."""
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise AccountError("Usernames are 2-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit.")
    if find_user(session, username) is not None:
        raise AccountError(f"A user called {username!r} already exists.")
    problem = password_problem(password, username=username)
    if problem:
        raise AccountError(problem)
    _check_role(role)
    user = User(username=username, password_hash=hash_password(password), is_active=True, session_version=1)
    session.add(user)
    user.grants.append(RoleGrant(role=role, model_name=_clean_model(model), granted_by=granted_by))
    session.flush()
    return user


def _check_role(role: str) -> None:
    try:
        role_permissions(role)
    except ValueError as exc:
        raise AccountError(str(exc)) from None


def _clean_model(model: str | None) -> str | None:
    if model is None:
        return None
    model = model.strip()
    if not model or model == "*":
        return None
    if len(model) > 128:
        raise AccountError("Model names are at most 128 characters.")
    return model


def grant_role(session: Session, user: User, role: str, *, model: str | None = None,
               granted_by: str | None = None) -> bool:
    """Grant ``role`` on ``model`` (all models if None); return False if already held."""
    _check_role(role)
    model = _clean_model(model)
    if any(g.role == role and g.model_name == model for g in user.grants):
        return False
    user.grants.append(RoleGrant(role=role, model_name=model, granted_by=granted_by))
    end_sessions(user)
    return True


def revoke_role(session: Session, user: User, role: str, *, model: str | None = None) -> bool:
    """Revoke ``role`` on ``model``; return False if the user did not hold it."""
    model = _clean_model(model)
    for grant in list(user.grants):
        if grant.role == role and grant.model_name == model:
            user.grants.remove(grant)
            end_sessions(user)
            return True
    return False


def set_active(user: User, active: bool) -> None:
    """Enable or disable ``user``; disabling ends their sessions."""
    user.is_active = active
    end_sessions(user)


def set_password(user: User, password: str) -> None:
    """Set a new password after checking its strength; ends every session."""
    problem = password_problem(password, username=user.username)
    if problem:
        raise AccountError(problem)
    user.password_hash = hash_password(password)
    end_sessions(user)


def count_active_admins(session: Session) -> int:
    """Return how many active users hold the admin role on all models."""
    rows = session.scalars(
        select(User).join(RoleGrant).where(User.is_active.is_(True), RoleGrant.role == "admin",
                                           RoleGrant.model_name.is_(None))
    ).unique().all()
    return len(rows)


def touch_login(user: User) -> None:
    """Record the time of a successful login."""
    user.last_login_at = utcnow()
