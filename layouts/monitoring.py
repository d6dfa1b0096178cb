"""Monitoring: logged predictions over time, performance where ground truth arrived, drift, anomalies.

Everything on this page comes from SQL aggregates by time bucket; the
records grid reads one page of rows at a time. The page refreshes itself on
an interval the user can pause and only sends what changed.
"""

from __future__ import annotations

from urllib.parse import quote

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from app.monitoring.views import BUCKET_LABELS, RANGES
from app.security.permissions import Permission
from layouts.model_select import selector
from layouts.model_views import card, graph
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/monitoring", title="Monitoring", permission=Permission.VIEW_MONITORING,
                section="Monitoring", order=10, icon="bi-activity",
                description="How a deployed model behaves: predictions logged through the API, performance as "
                            "ground truth arrives, input drift against the training data, anomalies, alerts and "
                            "comments. Click a point in time to see its records.")

PREFIX = "mon"
RANGE = "mon-range"
BUCKET = "mon-bucket"
SEG_FEATURE = "mon-seg-feature"
SEG_BINS = "mon-seg-bins"
LIVE = "mon-live"
INTERVAL = "mon-interval"
UPDATED = "mon-updated"
STAMP = "mon-stamp"
LOCAL = "mon-local"
MESSAGE = "mon-message"
STATS = "mon-stats"
METRIC = "mon-metric"
TIMELINE = "mon-timeline"
SCORES = "mon-scores"
ANOMALIES = "mon-anomalies"
DRIFT_BARS = "mon-drift-bars"
DRIFT_GRID = "mon-drift-grid"
DRIFT_NOTE = "mon-drift-note"
HISTOGRAM = "mon-histogram"
DRIFT_FEATURE = "mon-drift-feature"
WORST = "mon-worst"
BUCKET_SEL = "mon-bucket-sel"
RECORDS_TITLE = "mon-records-title"
RECORDS = "mon-records"
RECORDS_PAGE = "mon-records-page"
RECORDS_PREV = "mon-records-prev"
RECORDS_NEXT = "mon-records-next"
RECORDS_INFO = "mon-records-info"
RECORDS_ANOMALOUS = "mon-records-anomalous"
ALERTS = "mon-alerts"
ACK = "mon-ack"              # pattern-matching id type: {"type": ACK, "index": event id}
ACK_MESSAGE = "mon-ack-message"
COMMENTS = "mon-comments"
COMMENT_TEXT = "mon-comment-text"
COMMENT_SCOPE = "mon-comment-scope"
COMMENT_POST = "mon-comment-post"
COMMENT_CANCEL = "mon-comment-cancel"
COMMENT_MESSAGE = "mon-comment-message"
COMMENT_EDITING = "mon-comment-editing"
COMMENT_EDIT = "mon-comment-edit"        # pattern-matching id type
COMMENT_DELETE = "mon-comment-delete"    # pattern-matching id type

REFRESH_MS = 30_000
PAGE_SIZE = 50
RANGE_OPTIONS = [{"label": label, "value": key} for key, (label, _) in RANGES.items()]
BUCKET_OPTIONS = [{"label": label, "value": key} for key, label in BUCKET_LABELS.items()]
SCOPE_OPTIONS = [{"label": "Whole model", "value": "model"},
                 {"label": "The selected point in time", "value": "bucket"},
                 {"label": "The time range shown", "value": "range"}]
DRIFT_COLUMNS = [
    {"field": "feature", "headerName": "Feature", "minWidth": 170, "pinned": "left"},
    {"field": "psi", "headerName": "PSI", "sort": "desc", "maxWidth": 110},
    # styleConditions are interpreted by dash-ag-grid (no eval), so they run under the CSP.
    {"field": "severity", "headerName": "Drift", "maxWidth": 130,
     "cellStyle": {"styleConditions": [
         {"condition": "params.value == 'significant'", "style": {"color": "#D55E00", "fontWeight": "600"}},
         {"condition": "params.value == 'moderate'", "style": {"color": "#9a6700", "fontWeight": "600"}}]}},
    {"field": "test", "headerName": "Test", "minWidth": 130},
    {"field": "statistic", "headerName": "Statistic", "maxWidth": 120},
    {"field": "p_value", "headerName": "p-value", "maxWidth": 120},
    {"field": "n_current", "headerName": "Records", "maxWidth": 120},
    {"field": "kind", "headerName": "Kind", "maxWidth": 130},
]


#: Grid options of the drift table; the prediction's own drift row is pinned below the features.
DRIFT_GRID_OPTIONS = {"domLayout": "autoHeight",
                      "rowSelection": {"mode": "singleRow", "enableClickSelection": True, "checkboxes": False}}


def alert_badge(model: str, count: int) -> html.Span | None:
    """Return a badge linking to the model's monitoring page when it has open alerts (for the overview cards)."""
    if not count:
        return None
    slug = "".join(c if c.isalnum() else "-" for c in model.lower())
    return html.Span(dcc.Link(dbc.Badge([html.I(className="bi bi-bell-fill me-1"),
                                         f"{count} open alert{'s' if count != 1 else ''}"],
                                        color="danger", className="gb-alert-badge"),
                              href=f"/monitoring?model={quote(model)}"), id=f"overview-alerts-{slug}",
                     className="ms-2")


def _initial(ctx: PageContext, key: str, options: dict, default: str) -> str:
    value = ctx.query.get(key)
    return value if value in options else default


def _filters(ctx: PageContext) -> html.Div:
    return html.Div(dbc.Row([
        dbc.Col([dbc.Label("Time range", html_for=RANGE),
                 dcc.Dropdown(id=RANGE, options=RANGE_OPTIONS, value=_initial(ctx, "range", RANGES, "30d"),
                              clearable=False)], md=3, lg=2),
        dbc.Col([dbc.Label("Bucket", html_for=BUCKET),
                 dbc.RadioItems(id=BUCKET, options=BUCKET_OPTIONS, value=_initial(ctx, "bucket", BUCKET_LABELS, "day"),
                                inline=True, className="pt-1")], md=4, lg=3),
        dbc.Col([dbc.Label("Segment: feature", html_for=SEG_FEATURE),
                 dcc.Dropdown(id=SEG_FEATURE, placeholder="All records", clearable=True)], md=3, lg=2),
        dbc.Col([dbc.Label("Segment: values", html_for=SEG_BINS),
                 dcc.Dropdown(id=SEG_BINS, multi=True, placeholder="Choose a feature first")], md=5, lg=3),
        dbc.Col([dbc.Label("Live", html_for=LIVE),
                 dbc.Switch(id=LIVE, value=True, label="Auto-refresh", className="pt-1"),
                 html.Div(id=UPDATED, className="gb-help small")], md=3, lg=2),
    ], className="g-3 align-items-start"), className="gb-card p-3 mb-3")


def _records_card(ctx: PageContext) -> html.Div:
    if not ctx.can(Permission.VIEW_ROWS):
        return card("Records", html.P(["Seeing individual records needs the permission ",
                                       html.Strong(Permission.VIEW_ROWS.label), "."],
                                      className="text-muted mb-0", id="mon-records-denied"))
    pager = html.Div([
        dbc.Button([html.I(className="bi bi-chevron-left")], id=RECORDS_PREV, size="sm", color="secondary",
                   outline=True, className="me-2", title="Previous page"),
        dbc.Button([html.I(className="bi bi-chevron-right")], id=RECORDS_NEXT, size="sm", color="secondary",
                   outline=True, className="me-3", title="Next page"),
        html.Span(id=RECORDS_INFO, className="gb-help me-3"),
        dbc.Checkbox(id=RECORDS_ANOMALOUS, value=False, label="Only records with an anomaly",
                     className="d-inline-block"),
    ], className="d-flex align-items-center mb-2 flex-wrap")
    grid = dag.AgGrid(id=RECORDS, rowData=[], columnDefs=[], defaultColDef={"resizable": True, "sortable": False},
                      dashGridOptions={"domLayout": "autoHeight", "suppressCellFocus": True},
                      className="ag-theme-alpine", style={"width": "100%"})
    return card(None, html.Div([html.H2("Records", className="h6 mb-1"),
                                html.P("Click a bar or point on a time chart to list the records of that bucket.",
                                       id=RECORDS_TITLE, className="gb-help small mb-2"),
                                pager, grid, dcc.Store(id=RECORDS_PAGE, data=0)]))


def _comments_card(ctx: PageContext) -> html.Div:
    form = []
    if ctx.can(Permission.COMMENT):
        form = [
            dbc.Textarea(id=COMMENT_TEXT, placeholder="Add a note for your colleagues (what happened, what to check)",
                         maxLength=2000, rows=3, className="mb-2"),
            dbc.Label("About", html_for=COMMENT_SCOPE, className="small mb-0"),
            dbc.RadioItems(id=COMMENT_SCOPE, options=SCOPE_OPTIONS, value="range", className="small mb-2"),
            html.Div([dbc.Button("Post comment", id=COMMENT_POST, color="primary", size="sm", className="me-2"),
                      dbc.Button("Cancel edit", id=COMMENT_CANCEL, color="secondary", outline=True, size="sm",
                                 style={"display": "none"})]),
            html.Div(id=COMMENT_MESSAGE, className="mt-2"),
            dcc.Store(id=COMMENT_EDITING, data=None),
        ]
    return card("Comments", html.Div([html.Div(id=COMMENTS, className="gb-comment-thread mb-3"), *form]),
                help_text="Shown on the timeline as pink marks; edit or delete your own.")


def layout(ctx: PageContext):
    """Return the monitoring page."""
    timeline_card = card(None, html.Div([
        dbc.Row([dbc.Col(dbc.Label("Performance metric", html_for=METRIC), width="auto"),
                 dbc.Col(dcc.Dropdown(id=METRIC, clearable=False, placeholder="Metric"), md=4)],
                className="g-2 align-items-center mb-2"),
        graph(TIMELINE, title="Volume and performance over time", height=460, loading=False),
    ]), help_text="Bars: predictions per bucket (dark: with ground truth). Line: the metric on labelled records. "
                 "Triangles: alerts. Pink: comments.")
    drift_card = card(None, html.Div([
        dbc.Row([
            dbc.Col(graph(DRIFT_BARS, title="Input drift per feature", height=380, loading=False), lg=6),
            dbc.Col(graph(HISTOGRAM, title="Reference vs current", message="Click a feature to compare.",
                          height=380, loading=False), lg=6),
        ]),
        html.Div(id=DRIFT_NOTE, className="gb-help small mb-2"),
        dag.AgGrid(id=DRIFT_GRID, rowData=[], columnDefs=DRIFT_COLUMNS,
                   defaultColDef={"resizable": True, "sortable": True, "filter": False},
                   dashGridOptions=DRIFT_GRID_OPTIONS, className="ag-theme-alpine", style={"width": "100%"}),
    ]), help_text="PSI compares the share of records per reference bin (below 0.1 stable, above 0.25 a "
                 "significant shift); KS for numeric features, chi-square for categories. Sort the table by any "
                 "column; click a row or bar for its histograms. The last row is the drift of the model's own "
                 "predictions.")
    return html.Div([
        selector(PREFIX, ctx, split=False),
        _filters(ctx),
        dcc.Interval(id=INTERVAL, interval=REFRESH_MS, disabled=False),
        dcc.Store(id=STAMP, data=None),
        dcc.Store(id=LOCAL, data=0),
        dcc.Store(id=BUCKET_SEL, data=None),
        dcc.Store(id=DRIFT_FEATURE, data=None),
        html.Div(id=MESSAGE),
        html.Div(id=STATS, className="mb-1"),
        dbc.Row([
            dbc.Col(timeline_card, xl=8),
            dbc.Col([card("Alerts", html.Div([html.Div(id=ALERTS), html.Div(id=ACK_MESSAGE)]),
                          help_text="Rules are set by administrators (Admin > Monitoring)."),
                     _comments_card(ctx)], xl=4),
        ]),
        dbc.Row([
            dbc.Col(card(None, graph(SCORES, title="Prediction distribution over time", height=380, loading=False)),
                    lg=6),
            dbc.Col(card(None, graph(ANOMALIES, title="Input anomalies over time", height=380, loading=False),
                         help_text="Values outside the training range, categories never seen in training, missing "
                                   "values, and records with an outlier score above 1."), lg=6),
        ]),
        drift_card,
        html.Div(id=WORST) if ctx.can(Permission.VIEW_ROWS) else None,
        _records_card(ctx),
    ])
