"""Callbacks of Admin > Monitoring (all need 'manage models'); every change is audited."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, html, no_update

from app.audit import record_event
from app.security.permissions import Permission
from callbacks.validate import InvalidInput, choice, error_alert, number, text
from data import alerts as A
from data import monitoring as M
from data import notify as N
from data.db import get_db
from data.registry import get_model, list_models
from layouts import admin_monitoring as L

STATUS_COLORS = {"sent": "success", "pending": "warning", "failed": "danger"}


def _success(*children) -> dbc.Alert:
    return dbc.Alert(list(children), color="success", className="py-2 mb-0")


def _clicked(clicks, trigger) -> int | None:
    """Return the index of a clicked pattern-matching button, None when nothing was really clicked."""
    if not isinstance(trigger, dict) or not any(isinstance(c, int) and c > 0 for c in (clicks or [])):
        return None
    try:
        return number(trigger.get("index"), name="Item", lo=1, hi=2**31, integer=True)
    except InvalidInput:
        return None


def _when(value) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "never"


def model_options(_local):
    """Return the same model options for the token and the rule forms."""
    with get_db().session() as s:
        options = [{"label": m.name, "value": m.name} for m in list_models(s)]
    return options, options


def metric_options(model):
    """Return the metrics a rule on the chosen model can watch."""
    if not isinstance(model, str) or not model:
        return [], None
    with get_db().session() as s:
        found = get_model(s, model)
        if found is None or not found.versions:
            return [], None
        options = A.metric_options(found.latest.task, found.latest.features)
    return options, options[0]["value"] if options else None


# -- tokens ---------------------------------------------------------------------------------

def create_token(n_clicks, model, name, local, *, user):
    """Create a token and show it once (audited); return (message, bumped local revision)."""
    if not n_clicks:
        return no_update, no_update
    try:
        model = text(model, name="Model", max_length=128, required=True)
        name = text(name, name="Used by", max_length=64, required=True)
        with get_db().session() as s:
            row, token = M.create_token(s, model, name=name, created_by=user.username)
            token_id, prefix = row.id, row.prefix
    except (InvalidInput, ValueError) as exc:
        record_event("token.create", target=str(model)[:80], outcome="failure", detail=str(exc)[:200],
                     username=user.username)
        return error_alert(str(exc)), no_update
    record_event("token.create", target=f"{model}:{prefix}", detail=f"id={token_id} name={name}",
                 username=user.username)
    return _success(html.Div(["Token for ", html.Strong(model), " (shown once; copy it now and hand it over safely):"]),
                    html.Code(token, className="fs-6 user-select-all d-block mt-1", id="admon-token-value")), \
        (local or 0) + 1


def tokens_table(_local):
    """Return the tokens table with revoke buttons for active tokens."""
    with get_db().session() as s:
        rows = M.list_tokens(s)
    if not rows:
        return html.P("No API tokens yet.", className="text-muted mb-0")
    body = []
    for t in rows:
        status = dbc.Badge("active", color="success") if t["active"] else \
            dbc.Badge(f"revoked {t['revoked_at']:%Y-%m-%d} by {t['revoked_by']}", color="secondary")
        action = dbc.Button("Revoke", id={"type": L.TOKEN_REVOKE, "index": t["id"]}, size="sm", color="danger",
                            outline=True) if t["active"] else None
        body.append(html.Tr([html.Td(t["model"]), html.Td(t["name"]), html.Td(html.Code(f"{t['prefix']}…")),
                             html.Td(f"{_when(t['created_at'])} by {t['created_by']}"),
                             html.Td(_when(t["last_used_at"])), html.Td(status), html.Td(action)]))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Model", "Used by", "Token", "Created", "Last used", "Status",
                                                    "")]))
    return dbc.Table([head, html.Tbody(body)], hover=True, responsive=True, size="sm", className="gb-table mb-0")


def revoke_token(clicks, local, *, user, trigger=None):
    """Revoke the clicked token (audited)."""
    token_id = _clicked(clicks, trigger)
    if token_id is None:
        return no_update, no_update
    try:
        with get_db().session() as s:
            prefix = M.revoke_token(s, token_id, revoked_by=user.username).prefix
    except ValueError as exc:
        return error_alert(str(exc)), no_update
    record_event("token.revoke", target=prefix, detail=f"id={token_id}", username=user.username)
    return _success(f"Token {prefix}… is revoked; requests with it are refused from now on."), (local or 0) + 1


# -- rules -------------------------------------------------------------------------------------

def create_rule(n_clicks, model, name, metric, comparison, threshold, window, bucket, min_samples, local, *, user):
    """Validate and add an alert rule (audited)."""
    if not n_clicks:
        return no_update, no_update
    try:
        model = text(model, name="Model", max_length=128, required=True)
        name = text(name, name="Name", max_length=128, required=True)
        threshold = number(threshold, name="Threshold", lo=-1e12, hi=1e12)
        window = number(window, name="Window", lo=1, hi=A.MAX_WINDOW, integer=True)
        min_samples = number(min_samples if min_samples is not None else 0, name="Minimum records", lo=0,
                             hi=10_000_000, integer=True)
        comparison = choice(comparison, name="Comparison", options=list(A.COMPARISONS))
        bucket = choice(bucket, name="Bucket", options=list(A.RULE_BUCKETS))
        with get_db().session() as s:
            rule = A.create_rule(s, model_name=model, name=name, metric=metric, comparison=comparison,
                                 threshold=threshold, window=window, bucket=bucket, min_samples=min_samples,
                                 created_by=user.username)
            described, rule_id = A.rule_text(rule), rule.id
    except (InvalidInput, ValueError) as exc:
        return error_alert(str(exc)), no_update
    record_event("alert.rule.create", target=f"{model}:{rule_id}", detail=described, username=user.username)
    return _success(f"Rule added: {described}. It is evaluated after every batch and by `glassbox alerts evaluate`."), \
        (local or 0) + 1


def rules_table(_local):
    """Return the rules with enable/disable and delete buttons."""
    with get_db().session() as s:
        rules = A.list_rules(s)
    if not rules:
        return html.P("No alert rules yet.", className="text-muted mb-0")
    body = []
    for r in rules:
        body.append(html.Tr([
            html.Td(r["model"]), html.Td(html.Strong(r["name"])), html.Td(r["text"]),
            html.Td(dbc.Badge("on", color="success") if r["enabled"] else dbc.Badge("off", color="secondary")),
            html.Td(_when(r["last_evaluated_at"])),
            html.Td([dbc.Button("Disable" if r["enabled"] else "Enable", id={"type": L.RULE_TOGGLE, "index": r["id"]},
                                size="sm", color="secondary", outline=True, className="me-2"),
                     dbc.Button("Delete", id={"type": L.RULE_DELETE, "index": r["id"]}, size="sm", color="danger",
                                outline=True)]),
        ]))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Model", "Rule", "Condition", "", "Last evaluated", "")]))
    return dbc.Table([head, html.Tbody(body)], hover=True, responsive=True, size="sm", className="gb-table mb-0")


def rule_action(toggle_clicks, delete_clicks, local, *, user, trigger=None):
    """Enable/disable or delete the clicked rule (audited)."""
    kind = trigger.get("type") if isinstance(trigger, dict) else None
    rule_id = _clicked(toggle_clicks if kind == L.RULE_TOGGLE else delete_clicks, trigger)
    if rule_id is None or kind not in (L.RULE_TOGGLE, L.RULE_DELETE):
        return no_update, no_update
    try:
        with get_db().session() as s:
            if kind == L.RULE_TOGGLE:
                rule = s.get(M.AlertRule, rule_id)
                if rule is None:
                    raise ValueError("that rule does not exist any more")
                A.set_rule_enabled(s, rule_id, not rule.enabled)
                action, done = ("alert.rule.enable" if rule.enabled else "alert.rule.disable",
                                f"Rule {rule.name} is {'on' if rule.enabled else 'off'}.")
            else:
                name = A.delete_rule(s, rule_id)
                action, done = "alert.rule.delete", f"Rule {name} and its events are deleted."
    except ValueError as exc:
        return error_alert(str(exc)), no_update
    record_event(action, target=str(rule_id), username=user.username)
    return _success(done), (local or 0) + 1


# -- notifications --------------------------------------------------------------------------------

def notifications_view(_local):
    """Return (configured channels, recent notifications with retry buttons for failed ones)."""
    settings = N.load_settings()
    channels = settings.channels
    if channels:
        shown = html.Div([html.Span("Channels: ", className="fw-semibold")] +
                         [dbc.Badge(f"{c}: {t}", color="info", className="me-2") for c, t in channels])
    else:
        shown = dbc.Alert("No notification channel is configured: alerts show on the monitoring page and the "
                          "overview only. Set GLASSBOX_ALERT_WEBHOOK_URL and/or GLASSBOX_SMTP_HOST with "
                          "GLASSBOX_ALERT_EMAIL_TO.", color="light", className="py-2 mb-0")
    with get_db().session() as s:
        rows = N.recent_notifications(s, limit=30)
    if not rows:
        return shown, html.P("No notifications yet.", className="text-muted mb-0")
    body = [html.Tr([
        html.Td(_when(n["created_at"])), html.Td(f"{n['channel']} · {n['target']}"),
        html.Td(dbc.Badge(n["status"], color=STATUS_COLORS.get(n["status"], "secondary"))),
        html.Td(str(n["attempts"])), html.Td(n["last_error"] or "", className="small text-danger"),
        html.Td(n["message"][:140], className="small"),
        html.Td(dbc.Button("Retry", id={"type": L.RETRY, "index": n["id"]}, size="sm", color="secondary",
                           outline=True) if n["status"] == "failed" else None),
    ]) for n in rows]
    head = html.Thead(html.Tr([html.Th(h) for h in ("Created", "Channel", "Status", "Attempts", "Last error",
                                                    "Alert", "")]))
    return shown, dbc.Table([head, html.Tbody(body)], hover=True, responsive=True, size="sm",
                            className="gb-table mb-0")


def evaluate_now(n_clicks, local, *, user):
    """Evaluate every rule and send due notifications now (audited)."""
    if not n_clicks:
        return no_update, no_update
    db = get_db()
    fired = A.evaluate_rules(db)
    counts = N.deliver_pending(db)
    record_event("alerts.evaluate", target="all", username=user.username,
                 detail=f"{len(fired)} new, sent {counts['sent']}, retry {counts['retry']}, failed {counts['failed']}")
    return _success(f"{len(fired)} new alert(s). Notifications sent {counts['sent']}, to retry {counts['retry']}, "
                    f"given up {counts['failed']}."), (local or 0) + 1


def retry_notification(clicks, local, *, user, trigger=None):
    """Queue a failed notification again (audited)."""
    nid = _clicked(clicks, trigger)
    if nid is None:
        return no_update, no_update
    try:
        with get_db().session() as s:
            N.retry_notification(s, nid)
    except ValueError as exc:
        return error_alert(str(exc)), no_update
    record_event("alerts.notification.retry", target=str(nid), username=user.username)
    return _success("Queued again; it is sent with the next evaluation."), (local or 0) + 1


def register(dash_app, policy) -> None:
    """Register the page's callbacks; all need 'manage models'."""
    permission = Permission.MANAGE_MODELS
    user = policy.current_user
    local = State(L.LOCAL, "data")
    policy.callback(Output(L.TOKEN_MODEL, "options"), Output(L.RULE_MODEL, "options"), Input(L.LOCAL, "data"),
                    permission=permission)(model_options)
    policy.callback(Output(L.RULE_METRIC, "options"), Output(L.RULE_METRIC, "value"), Input(L.RULE_MODEL, "value"),
                    permission=permission)(metric_options)
    policy.callback(Output(L.TOKEN_MESSAGE, "children"), Output(L.LOCAL, "data"), Input(L.TOKEN_CREATE, "n_clicks"),
                    State(L.TOKEN_MODEL, "value"), State(L.TOKEN_NAME, "value"), local, prevent_initial_call=True,
                    permission=permission)(lambda n, m, name, loc: create_token(n, m, name, loc, user=user()))
    policy.callback(Output(L.TOKENS, "children"), Input(L.LOCAL, "data"), permission=permission)(tokens_table)
    policy.callback(Output(L.TOKEN_MESSAGE, "children", allow_duplicate=True),
                    Output(L.LOCAL, "data", allow_duplicate=True),
                    Input({"type": L.TOKEN_REVOKE, "index": ALL}, "n_clicks"), local, prevent_initial_call=True,
                    permission=permission)(
        lambda clicks, loc: revoke_token(clicks, loc, user=user(), trigger=ctx.triggered_id))
    policy.callback(Output(L.RULE_MESSAGE, "children"), Output(L.LOCAL, "data", allow_duplicate=True),
                    Input(L.RULE_CREATE, "n_clicks"), State(L.RULE_MODEL, "value"), State(L.RULE_NAME, "value"),
                    State(L.RULE_METRIC, "value"), State(L.RULE_COMPARISON, "value"), State(L.RULE_THRESHOLD, "value"),
                    State(L.RULE_WINDOW, "value"), State(L.RULE_BUCKET, "value"), State(L.RULE_MIN, "value"), local,
                    prevent_initial_call=True, permission=permission)(
        lambda n, m, name, metric, comp, thr, win, b, mn, loc: create_rule(
            n, m, name, metric, comp, thr, win, b, mn, loc, user=user()))
    policy.callback(Output(L.RULES, "children"), Input(L.LOCAL, "data"), permission=permission)(rules_table)
    policy.callback(Output(L.RULE_ACTION_MESSAGE, "children"), Output(L.LOCAL, "data", allow_duplicate=True),
                    Input({"type": L.RULE_TOGGLE, "index": ALL}, "n_clicks"),
                    Input({"type": L.RULE_DELETE, "index": ALL}, "n_clicks"), local, prevent_initial_call=True,
                    permission=permission)(
        lambda t, d, loc: rule_action(t, d, loc, user=user(), trigger=ctx.triggered_id))
    policy.callback(Output(L.CHANNELS, "children"), Output(L.NOTIFICATIONS, "children"), Input(L.LOCAL, "data"),
                    permission=permission)(notifications_view)
    policy.callback(Output(L.NOTIFY_MESSAGE, "children"), Output(L.LOCAL, "data", allow_duplicate=True),
                    Input(L.EVALUATE, "n_clicks"), local, prevent_initial_call=True, permission=permission)(
        lambda n, loc: evaluate_now(n, loc, user=user()))
    policy.callback(Output(L.NOTIFY_MESSAGE, "children", allow_duplicate=True),
                    Output(L.LOCAL, "data", allow_duplicate=True),
                    Input({"type": L.RETRY, "index": ALL}, "n_clicks"), local, prevent_initial_call=True,
                    permission=permission)(
        lambda clicks, loc: retry_notification(clicks, loc, user=user(), trigger=ctx.triggered_id))
