"""Login and logout: a server-rendered page that works without the Dash bundle."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, session
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from app.audit import client_ip, record_event
from app.security import throttle
from app.security.passwords import hash_password, needs_rehash, verify_password
from app.security.users import end_sessions, find_user, snapshot, touch_login
from data.db import get_db
from data.models import User

bp = Blueprint("auth", __name__, template_folder="templates", static_folder="static",
               static_url_path="/auth-static")


class LoginForm(FlaskForm):
    """Username and password, with the CSRF token Flask-WTF adds."""

    username = StringField("Username", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


def safe_next(target: str | None) -> str:
    """Return ``target`` if it is a local path on this site, else ``/``."""
    if not target or not isinstance(target, str) or len(target) > 2000:
        return "/"
    if any(ch in target for ch in ("\\", "\r", "\n", "\t")) or any(ord(ch) < 32 for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if target.startswith("/login") or target.startswith("/logout"):
        return "/"
    return target


def _render(form: LoginForm, error: str | None = None, status: int = 200):
    return render_template("login.html", form=form, error=error,
                           next=safe_next(request.values.get("next"))), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; on POST check the throttle, then the password."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if request.method == "GET":
        return _render(form)
    if not form.validate_on_submit():
        return _render(form, "Enter your username and password.", 400)

    cfg = current_app.config
    username = form.username.data.strip().lower()
    ip = client_ip()
    db = get_db()
    with db.session() as s:
        limited = throttle.is_limited(
            s, ip=ip, username=username, limit_ip=cfg["GLASSBOX_LOGIN_LIMIT_IP"],
            limit_user=cfg["GLASSBOX_LOGIN_LIMIT_USER"], window_seconds=cfg["GLASSBOX_LOGIN_WINDOW_SECONDS"])
    if limited:
        record_event("login", target=username, outcome="denied", detail="rate limited", username=username)
        minutes = max(1, cfg["GLASSBOX_LOGIN_WINDOW_SECONDS"] // 60)
        return _render(form, f"Too many failed attempts. Wait {minutes} minutes and try again.", 429)

    with db.session() as s:
        user = find_user(s, username)
        ok = verify_password(user.password_hash if user else None, form.password.data)
        if ok and user.is_active:
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(form.password.data)
            touch_login(user)
            throttle.clear_user(s, username)
            who = snapshot(user)
        else:
            throttle.record_failure(s, ip=ip, username=username,
                                    window_seconds=cfg["GLASSBOX_LOGIN_WINDOW_SECONDS"])
            who = None
            reason = "disabled account" if (ok and user and not user.is_active) else "bad credentials"
    if who is None:
        record_event("login", target=username, outcome="failure", detail=reason, username=username)
        return _render(form, "Unknown username or wrong password.", 401)

    session.clear()  # no fixation: a fresh session for the signed-in user
    session.permanent = True
    login_user(who, remember=False)
    record_event("login", target=username, username=username)
    return redirect(safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout():
    """End the session everywhere (the session version is bumped) and go to the login page."""
    if current_user.is_authenticated:
        username = current_user.username
        with get_db().session() as s:
            user = s.get(User, current_user.id)
            if user is not None:
                end_sessions(user)
        record_event("logout", target=username, username=username)
    logout_user()
    session.clear()
    return redirect("/login")
