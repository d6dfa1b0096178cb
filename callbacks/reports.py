"""Callbacks of the reports page: list, generate (audited) and download (audited) a model's reports."""

from __future__ import annotations

import logging

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, html, no_update

from app.audit import record_event
from app.security.permissions import Permission
from callbacks.model_select import register_selector, resolve
from callbacks.validate import InvalidInput, choice, error_alert, flag, number
from data.db import get_db
from data.reports import PERIODS, ReportError, generate_report, list_reports, report_content
from layouts import reports as L
from layouts.model_views import fmt

log = logging.getLogger(__name__)


def reports_table(model, version, _local, *, user):
    """Return the table of the model's stored reports, newest first, with download buttons."""
    try:
        found = resolve(model, version, user=user, permission=Permission.VIEW_REPORTS)
    except InvalidInput as exc:
        return error_alert(str(exc))
    with get_db().session() as s:
        rows = list_reports(s, model_ids=[found.model_id], limit=100)
    if not rows:
        return html.P("No report has been generated for this model yet.", className="text-muted mb-0",
                      id="rep-empty")
    head = html.Thead(html.Tr([html.Th("Period"), html.Th("Covers (UTC)"), html.Th("Version"), html.Th("Made"),
                               html.Th("Size"), html.Th("")]))
    body = html.Tbody([html.Tr([
        html.Td(r["period"].capitalize()),
        html.Td(f"{r['start']:%Y-%m-%d %H:%M} to {r['end']:%Y-%m-%d %H:%M}"),
        html.Td(f"v{r['version']}"),
        html.Td([f"{r['created_at']:%Y-%m-%d %H:%M}", html.Span(f" by {r['created_by']}", className="gb-help")]),
        html.Td(f"{r['size_bytes'] / 1e6:.1f} MB"),
        html.Td(dbc.Button([html.I(className="bi bi-download me-1"), "Download"],
                           id={"type": L.DOWNLOAD_BUTTON, "index": r["id"]}, size="sm", color="primary",
                           outline=True)),
    ]) for r in rows])
    return dbc.Table([head, body], hover=True, responsive=True, size="sm", className="gb-table mb-0",
                     id="rep-table")


def generate(n_clicks, period, include_today, model, version, local, *, user):
    """Generate a report of the model now (audited); return (message, bumped local revision)."""
    if not n_clicks:
        return no_update, no_update
    try:
        found = resolve(model, version, user=user, permission=Permission.VIEW_REPORTS)
        period = choice(period, name="Period", options=list(PERIODS))
        today = flag(include_today, name="Include today")
        made = generate_report(get_db(), found.name, period=period, created_by=user.username, include_today=today)
    except (InvalidInput, ReportError) as exc:
        record_event("report.generate", target=str(model)[:80], outcome="failure", detail=str(exc)[:300],
                     username=user.username)
        return error_alert(str(exc)), no_update
    record_event("report.generate", target=f"{found.name}:{made['id']}", username=user.username,
                 detail=f"{period} {made['start']:%Y-%m-%d %H:%M} to {made['end']:%Y-%m-%d %H:%M}")
    return (dbc.Alert([html.I(className="bi bi-check2-circle me-2"),
                       f"Report {made['filename']} is ready ({fmt(made['size_bytes'] / 1e6, '.1f')} MB)."],
                      color="success", className="py-2 mb-0"), (local or 0) + 1)


def download(clicks, *, user, trigger=None):
    """Send the clicked report as a file after checking the user may see its model (audited)."""
    if not isinstance(trigger, dict) or not any(isinstance(c, int) and c > 0 for c in (clicks or [])):
        return no_update, no_update
    try:
        report_id = number(trigger.get("index"), name="Report", lo=1, hi=2**31, integer=True)
        with get_db().session() as s:
            found = report_content(s, report_id)
        if found is None:
            raise InvalidInput("That report does not exist any more.")
        model, filename, text = found
        if not user.can(Permission.VIEW_REPORTS, model=model):
            raise InvalidInput("You do not have access to this report.")
    except (InvalidInput, ReportError) as exc:
        record_event("report.download", target=str(trigger.get("index"))[:40], outcome="denied",
                     detail=str(exc)[:200], username=user.username)
        return no_update, error_alert(str(exc))
    record_event("report.download", target=f"{model}:{report_id}", detail=filename, username=user.username)
    return {"content": text, "filename": filename, "type": "text/html"}, None


def register(dash_app, policy) -> None:
    """Register the reports page's callbacks (all need 'view reports')."""
    permission = Permission.VIEW_REPORTS
    user = policy.current_user
    register_selector(policy, L.PREFIX, permission=permission, split=False)
    model, version = State(f"{L.PREFIX}-model", "value"), State(f"{L.PREFIX}-version", "value")
    policy.callback(Output(L.LIST, "children"), Input(f"{L.PREFIX}-model", "value"),
                    Input(f"{L.PREFIX}-version", "value"), Input(L.LOCAL, "data"), permission=permission)(
        lambda m, v, loc: reports_table(m, v, loc, user=user()))
    policy.callback(Output(L.MESSAGE, "children"), Output(L.LOCAL, "data"), Input(L.GENERATE, "n_clicks"),
                    State(L.PERIOD, "value"), State(L.INCLUDE_TODAY, "value"), model, version, State(L.LOCAL, "data"),
                    prevent_initial_call=True, permission=permission)(
        lambda n, p, t, m, v, loc: generate(n, p, t, m, v, loc, user=user()))
    policy.callback(Output(L.DOWNLOAD, "data"), Output(L.DOWNLOAD_MESSAGE, "children"),
                    Input({"type": L.DOWNLOAD_BUTTON, "index": ALL}, "n_clicks"), prevent_initial_call=True,
                    permission=permission)(
        lambda clicks: download(clicks, user=user(), trigger=ctx.triggered_id))
