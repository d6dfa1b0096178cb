"""Callbacks of the audit log page (all need 'view audit log')."""

from __future__ import annotations

import csv
import datetime as dt
import io

import dash_bootstrap_components as dbc
from dash import Input, Output, State, html, no_update
from sqlalchemy import distinct, func, select

from app.audit import record_event
from app.security.permissions import Permission
from callbacks.validate import InvalidInput, choice, error_alert, number, text
from data.db import get_db
from data.models import AuditEvent
from layouts import audit_log as L

EXPORT_LIMIT = 100_000
OUTCOMES = ("success", "failure", "denied")


def _date(value, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a date like 2026-01-31.")
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise InvalidInput(f"{name} must be a date like 2026-01-31.") from None


def build_filters(user, action, outcome, start, end) -> list:
    """Return SQL conditions for the validated filters (raise InvalidInput on bad values)."""
    conditions = []
    user = text(user, name="User", max_length=64)
    if user:
        conditions.append(AuditEvent.username == user.lower())
    action = text(action, name="Action", max_length=64)
    if action:
        conditions.append(AuditEvent.action == action)
    if outcome not in (None, ""):
        conditions.append(AuditEvent.outcome == choice(outcome, name="Outcome", options=OUTCOMES))
    start_d, end_d = _date(start, "Start date"), _date(end, "End date")
    if start_d and end_d and end_d < start_d:
        raise InvalidInput("The end date is before the start date.")
    if start_d:
        conditions.append(AuditEvent.occurred_at >= dt.datetime.combine(start_d, dt.time.min))
    if end_d:
        conditions.append(AuditEvent.occurred_at < dt.datetime.combine(end_d + dt.timedelta(days=1), dt.time.min))
    return conditions


def _table(events) -> dbc.Table:
    colour = {"success": "success", "failure": "warning", "denied": "danger"}
    rows = [html.Tr([
        html.Td(e.occurred_at.strftime("%Y-%m-%d %H:%M:%S")),
        html.Td(e.username or "-"),
        html.Td(e.ip or "-"),
        html.Td(html.Code(e.action)),
        html.Td(e.target or "-", className="text-break"),
        html.Td(dbc.Badge(e.outcome, color=colour.get(e.outcome, "secondary"))),
        html.Td(e.detail or "", className="text-break small"),
    ]) for e in events]
    if not rows:
        rows = [html.Tr(html.Td("No events match these filters.", colSpan=7, className="text-muted"))]
    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in ("Time (UTC)", "User", "Address", "Action",
                                                               "Target", "Outcome", "Detail")])),
                      html.Tbody(rows)], hover=True, size="sm", responsive=True, className="gb-table",
                     id="audit-events")


def events_page(user, action, outcome, start, end, page):
    """Return (table, summary, page count, action options, message) for one page of events."""
    try:
        conditions = build_filters(user, action, outcome, start, end)
        page = number(page or 1, name="Page", lo=1, hi=1_000_000, integer=True)
    except InvalidInput as exc:
        return no_update, no_update, no_update, no_update, error_alert(str(exc))
    with get_db().session() as s:
        total = s.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
        pages = max(1, -(-total // L.PAGE_SIZE))
        page = min(page, pages)
        events = s.scalars(select(AuditEvent).where(*conditions).order_by(AuditEvent.occurred_at.desc(),
                                                                          AuditEvent.id.desc())
                           .offset((page - 1) * L.PAGE_SIZE).limit(L.PAGE_SIZE)).all()
        actions = sorted(a for a in s.scalars(select(distinct(AuditEvent.action))) if a)
    first = (page - 1) * L.PAGE_SIZE + 1 if total else 0
    summary = f"{total:,} events · showing {first:,}-{min(page * L.PAGE_SIZE, total):,}"
    return _table(events), summary, pages, [{"label": a, "value": a} for a in actions], None


def export_csv(n_clicks, user, action, outcome, start, end):
    """Return a CSV download of the filtered events (audited), or a message."""
    if not n_clicks:
        return no_update, no_update
    try:
        conditions = build_filters(user, action, outcome, start, end)
    except InvalidInput as exc:
        return no_update, error_alert(str(exc))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["occurred_at_utc", "username", "ip", "action", "target", "outcome", "detail"])
    with get_db().session() as s:
        events = s.scalars(select(AuditEvent).where(*conditions).order_by(AuditEvent.occurred_at.desc())
                           .limit(EXPORT_LIMIT))
        count = 0
        for e in events:
            writer.writerow([e.occurred_at.isoformat(), e.username or "", e.ip or "", e.action,
                             e.target or "", e.outcome, e.detail or ""])
            count += 1
    record_event("audit.export", target="audit_events", detail=f"{count} rows")
    return dict(content=buffer.getvalue(), filename="glassbox-audit.csv", type="text/csv"), None


def register(dash_app, policy):
    """Bind filters, paging and export; every callback needs 'view audit log'."""
    filters = [State(L.USER, "value"), State(L.ACTION, "value"), State(L.OUTCOME, "value"),
               State(L.DATES, "start_date"), State(L.DATES, "end_date")]
    policy.callback(Output(L.TABLE, "children"), Output(L.SUMMARY, "children"), Output(L.PAGE_NO, "max_value"),
                    Output(L.ACTION, "options"), Output(L.MESSAGE, "children"),
                    Input(L.USER, "value"), Input(L.ACTION, "value"), Input(L.OUTCOME, "value"),
                    Input(L.DATES, "start_date"), Input(L.DATES, "end_date"), Input(L.PAGE_NO, "active_page"),
                    permission=Permission.VIEW_AUDIT_LOG)(events_page)
    policy.callback(Output(L.DOWNLOAD, "data"), Output(L.MESSAGE, "children", allow_duplicate=True),
                    Input(L.EXPORT, "n_clicks"), *filters, prevent_initial_call=True,
                    permission=Permission.VIEW_AUDIT_LOG)(export_csv)
