"""Callbacks of the user administration page (all need 'manage users')."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, html
from sqlalchemy import select

from app.audit import record_event
from app.security.passwords import generate_password
from app.security.permissions import ROLES, Permission
from app.security.users import (AccountError, count_active_admins, create_user, grant_role, require_user,
                                revoke_role, set_active, set_password)
from callbacks.validate import InvalidInput, choice, error_alert, text
from data.db import get_db
from data.models import User
from layouts import admin_users as L


def _success(*children) -> dbc.Alert:
    return dbc.Alert(list(children), color="success", className="py-2 mb-0")


def _password_notice(username: str, password: str):
    return _success(
        html.Div(["Password for ", html.Strong(username), " (shown once; hand it over safely):"]),
        html.Code(password, className="fs-6 user-select-all", id="admin-users-password"),
    )


def create(n_clicks, username, role, model, *, actor: str):
    """Create a user with a generated password; return the message to show."""
    if not n_clicks:
        return None
    try:
        username = text(username, name="Username", max_length=64, required=True)
        role = choice(role, name="Role", options=list(ROLES))
        model = text(model, name="Model", max_length=128) or None
        password = generate_password()
        with get_db().session() as s:
            create_user(s, username, password, role=role, model=model, granted_by=actor)
    except (InvalidInput, AccountError) as exc:
        record_event("user.create", target=str(username)[:64], outcome="failure", detail=str(exc))
        return error_alert(str(exc))
    record_event("user.create", target=username.lower(), detail=f"role={role} model={model or '*'}")
    return _password_notice(username.lower(), password)


def act(_grant, _revoke, _disable, _enable, _reset, username, role, model, *, actor: str, trigger: str | None):
    """Apply the clicked action to the selected user; return the message to show."""
    if trigger is None:
        return None
    action = {L.GRANT: "grant", L.REVOKE: "revoke", L.DISABLE: "disable", L.ENABLE: "enable",
              L.RESET: "password"}.get(trigger)
    if action is None:
        return error_alert("Unknown action.")
    try:
        username = text(username, name="User", max_length=64, required=True)
        role = choice(role, name="Role", options=list(ROLES))
        model = text(model, name="Model", max_length=128) or None
        password = None
        with get_db().session() as s:
            user = require_user(s, username)
            if action == "grant":
                if not grant_role(s, user, role, model=model, granted_by=actor):
                    raise AccountError(f"{user.username} already holds {role} on {model or 'all models'}.")
            elif action == "revoke":
                _guard_last_admin(s, user, actor, removing_role=role if model is None else None)
                if not revoke_role(s, user, role, model=model):
                    raise AccountError(f"{user.username} does not hold {role} on {model or 'all models'}.")
            elif action == "disable":
                if user.username == actor:
                    raise AccountError("You cannot disable your own account.")
                _guard_last_admin(s, user, actor, removing_role="admin")
                set_active(user, False)
            elif action == "enable":
                set_active(user, True)
            else:
                password = generate_password()
                set_password(user, password)
    except (InvalidInput, AccountError) as exc:
        record_event(f"user.{action}", target=str(username)[:64], outcome="failure", detail=str(exc))
        return error_alert(str(exc))
    detail = f"role={role} model={model or '*'}" if action in {"grant", "revoke"} else None
    record_event(f"user.{action}", target=username.lower(), detail=detail)
    if password:
        return _password_notice(username.lower(), password)
    done = {"grant": f"Granted {role} on {model or 'all models'} to {username.lower()}.",
            "revoke": f"Revoked {role} on {model or 'all models'} from {username.lower()}.",
            "disable": f"Disabled {username.lower()}; their sessions have ended.",
            "enable": f"Enabled {username.lower()}."}[action]
    return _success(done)


def _guard_last_admin(session, user, actor, *, removing_role: str | None) -> None:
    holds_global_admin = any(g.role == "admin" and g.model_name is None for g in user.grants)
    if removing_role == "admin" and holds_global_admin and user.is_active and count_active_admins(session) <= 1:
        raise AccountError("This is the last active admin; make someone else an admin first.")


def users_table(*_triggers):
    """Return the accounts table and the options of the user picker."""
    with get_db().session() as s:
        users = s.scalars(select(User).order_by(User.username)).all()
        rows = []
        for u in users:
            grants = [dbc.Badge(f"{g.role} · {g.model_name or 'all models'}",
                                color={"admin": "danger", "analyst": "primary"}.get(g.role, "secondary"),
                                className="me-1") for g in u.grants] or [html.Span("no role", className="text-muted")]
            rows.append(html.Tr([
                html.Td(html.Strong(u.username)),
                html.Td(dbc.Badge("active", color="success") if u.is_active else dbc.Badge("disabled", color="dark")),
                html.Td(grants),
                html.Td(u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "never"),
            ]))
        options = [{"label": u.username, "value": u.username} for u in users]
    table = dbc.Table([html.Thead(html.Tr([html.Th("User"), html.Th("Status"), html.Th("Roles"),
                                           html.Th("Last sign-in")])),
                       html.Tbody(rows)], hover=True, responsive=True, className="gb-table mb-0",
                      id="admin-users-accounts")
    return table, options


def register(dash_app, policy):
    """Bind the admin controls; every callback needs 'manage users'."""

    def on_create(n_clicks, username, role, model):
        return create(n_clicks, username, role, model, actor=policy.current_user().username)

    policy.callback(Output(L.CREATE_MESSAGE, "children"), Input(L.CREATE, "n_clicks"),
                    State(L.NEW_USERNAME, "value"), State(L.NEW_ROLE, "value"), State(L.NEW_MODEL, "value"),
                    prevent_initial_call=True, permission=Permission.MANAGE_USERS)(on_create)

    def on_action(g, r, d, e, p, username, role, model):
        return act(g, r, d, e, p, username, role, model, actor=policy.current_user().username,
                   trigger=ctx.triggered_id)

    policy.callback(Output(L.ACTION_MESSAGE, "children"),
                    Input(L.GRANT, "n_clicks"), Input(L.REVOKE, "n_clicks"), Input(L.DISABLE, "n_clicks"),
                    Input(L.ENABLE, "n_clicks"), Input(L.RESET, "n_clicks"),
                    State(L.SELECTED, "value"), State(L.ACTION_ROLE, "value"), State(L.ACTION_MODEL, "value"),
                    prevent_initial_call=True, permission=Permission.MANAGE_USERS)(on_action)

    policy.callback(Output(L.TABLE, "children"), Output(L.SELECTED, "options"),
                    Input(L.CREATE_MESSAGE, "children"), Input(L.ACTION_MESSAGE, "children"),
                    permission=Permission.MANAGE_USERS)(users_table)
