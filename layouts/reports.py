"""Reports: self-contained HTML reports of a model's monitoring, to download or generate on demand."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.security.permissions import Permission
from layouts.model_select import selector
from layouts.model_views import card
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/reports", title="Reports", permission=Permission.VIEW_REPORTS, section="Monitoring",
                order=20, icon="bi-file-earmark-text",
                description="Daily and weekly reports of a model in production: metrics, confusion matrix, feature "
                            "influence, drift, anomalies, alerts and comments in one HTML file that opens offline. "
                            "Generated on a schedule, or now.")

PREFIX = "rep"
LIST = "rep-list"
PERIOD = "rep-period"
INCLUDE_TODAY = "rep-include-today"
GENERATE = "rep-generate"
MESSAGE = "rep-message"
DOWNLOAD = "rep-download"          # dcc.Download
DOWNLOAD_BUTTON = "rep-download-button"   # pattern-matching id type: {"type": ..., "index": report id}
DOWNLOAD_MESSAGE = "rep-download-message"
LOCAL = "rep-local"

PERIOD_OPTIONS = [{"label": "Daily (one day)", "value": "daily"}, {"label": "Weekly (seven days)", "value": "weekly"}]


def layout(ctx: PageContext):
    """Return the reports page."""
    generate = card("Generate a report now", html.Div([
        dbc.Row([
            dbc.Col([dbc.Label("Period", html_for=PERIOD),
                     dbc.RadioItems(id=PERIOD, options=PERIOD_OPTIONS, value="weekly")], md=5),
            dbc.Col([dbc.Label("Ending", html_for=INCLUDE_TODAY),
                     dbc.Checkbox(id=INCLUDE_TODAY, value=True, label="Include today so far"),
                     html.Div("Without it the period ends at midnight UTC, as the scheduled reports do.",
                              className="gb-help small")], md=7),
        ], className="g-3 mb-2"),
        dbc.Button([html.I(className="bi bi-file-earmark-plus me-2"), "Generate report"], id=GENERATE,
                   color="primary"),
        dcc.Loading(html.Div(id=MESSAGE, className="mt-3"), type="dot", delay_show=300),
    ]), help_text="The report covers the model's latest version. It takes a few seconds.")
    listing = card("Reports of this model", html.Div([
        html.Div(id=DOWNLOAD_MESSAGE),
        html.Div(id=LIST),
        dcc.Download(id=DOWNLOAD),
    ]), help_text="Scheduled with: glassbox report --model NAME --period daily|weekly --out DIR (for cron). "
                  "Downloads are recorded in the audit log.")
    return html.Div([
        selector(PREFIX, ctx, split=False),
        dcc.Store(id=LOCAL, data=0),
        dbc.Row([dbc.Col(listing, lg=7), dbc.Col(generate, lg=5)]),
    ])
