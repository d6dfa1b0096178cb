"""Admin: the audit log, filterable and exportable."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.security.permissions import Permission
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/admin/audit", title="Audit log", permission=Permission.VIEW_AUDIT_LOG,
                section="Admin", order=30, icon="bi-journal-text",
                description="Every sign-in, failure, sign-out, denial, grant, export and admin action, "
                            "with UTC time, user, address, target and outcome.")

USER = "audit-user"
ACTION = "audit-action"
OUTCOME = "audit-outcome"
DATES = "audit-dates"
PAGE_NO = "audit-page"
TABLE = "audit-table"
SUMMARY = "audit-summary"
EXPORT = "audit-export"
DOWNLOAD = "audit-download"
MESSAGE = "audit-message"
PAGE_SIZE = 50


def layout(ctx: PageContext):
    """Return the audit log page."""
    filters = dbc.Row([
        dbc.Col([dbc.Label("User", html_for=USER), dbc.Input(id=USER, placeholder="Any user", maxLength=64,
                                                             debounce=True)], md=3),
        dbc.Col([dbc.Label("Action", html_for=ACTION), dcc.Dropdown(id=ACTION, placeholder="Any action")], md=3),
        dbc.Col([dbc.Label("Outcome", html_for=OUTCOME),
                 dcc.Dropdown(id=OUTCOME, placeholder="Any outcome",
                              options=[{"label": o.title(), "value": o} for o in ("success", "failure", "denied")])],
                md=2),
        dbc.Col([dbc.Label("Time range (UTC)", html_for=DATES),
                 html.Div(dcc.DatePickerRange(id=DATES, display_format="YYYY-MM-DD", clearable=True))], md=4),
    ], className="g-3 mb-3")
    return dbc.Card(dbc.CardBody([
        filters,
        html.Div(id=MESSAGE),
        html.Div([
            html.Span(id=SUMMARY, className="gb-help me-auto"),
            dbc.Pagination(id=PAGE_NO, max_value=1, active_page=1, fully_expanded=False, size="sm",
                           className="mb-0 me-3", first_last=True, previous_next=True),
            dbc.Button([html.I(className="bi bi-download me-1"), "Export CSV"], id=EXPORT, color="secondary",
                       outline=True, size="sm"),
            dcc.Download(id=DOWNLOAD),
        ], className="d-flex align-items-center mb-2"),
        html.Div(id=TABLE),
    ]))
