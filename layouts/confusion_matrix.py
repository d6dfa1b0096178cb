"""Confusion matrix with drill-down: which cases does the model get wrong, and what do they look like?

Counts are for everyone with the page's permission. The rows behind a cell,
their details, the CSV export and the most confident mistakes need the
row-level permission on the model: without it the layout holds no row grid
at all, and the callbacks that serve rows refuse.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.security.permissions import Permission
from layouts.model_select import selector
from layouts.model_views import POLL_MS, card, graph
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/confusion-matrix", title="Confusion matrix", permission=Permission.VIEW_CONFUSION_MATRIX,
                section="Model", order=30, icon="bi-grid-3x3",
                description="Which classes the model mixes up: click a cell to see the rows behind it.")

PREFIX = "cm"
STATUS = "cm-status"
INTERVAL = "cm-interval"
MESSAGE = "cm-message"
NORMALISE = "cm-normalise"
THRESHOLD_NOTE = "cm-threshold-note"
MATRIX = "cm-matrix"
CELL = "cm-cell"
CELL_INFO = "cm-cell-info"
ROWS = "cm-rows"
ROWS_GRID = "cm-rows-grid"
ROWS_MESSAGE = "cm-rows-message"
EXPORT = "cm-export"
EXPORT_MESSAGE = "cm-export-message"
DOWNLOAD = "cm-download"
MISTAKES_GRID = "cm-mistakes-grid"
MISTAKES_MESSAGE = "cm-mistakes-message"
DETAILS = "cm-details"
DETAILS_BODY = "cm-details-body"

NORMALISE_OPTIONS = (("none", "Counts"), ("true", "Share of true class"), ("pred", "Share of predicted class"))
PAGE_SIZE = 25
MISTAKES_LIMIT = 20


def _rows_area(ctx: PageContext) -> html.Div:
    return html.Div([
        html.Div(id=CELL_INFO, className="mb-2", children=html.P(
            "Click a cell of the matrix to see the rows behind it.", className="gb-help mb-0")),
        html.Div(id=ROWS),
        html.Div(id=ROWS_MESSAGE),
    ])


def _mistakes(ctx: PageContext) -> html.Div:
    if not ctx.can(Permission.VIEW_ROWS):
        return html.P("The list of mistakes shows individual rows; it needs the permission 'view row-level data'.",
                      className="gb-help mb-0")
    import dash_ag_grid as dag

    return html.Div([
        html.Div(id=MISTAKES_MESSAGE),
        dag.AgGrid(id=MISTAKES_GRID, rowData=[], columnDefs=[],
                   columnSize="autoSize", style={"height": "340px"},
                   dashGridOptions={"rowSelection": {"mode": "singleRow", "checkboxes": False,
                                                     "enableClickSelection": True},
                                    "animateRows": False, "suppressCellFocus": True}),
        html.P("Click a row to see everything about it.", className="gb-help small text-muted mt-1 mb-0"),
    ])


def layout(ctx: PageContext):
    """Return the confusion-matrix page."""
    extras = []
    if ctx.can(Permission.VIEW_ROWS):
        extras.append(dcc.Download(id=DOWNLOAD))
    return html.Div([
        dcc.Store(id=CELL),
        dcc.Interval(id=INTERVAL, interval=POLL_MS, disabled=True),
        selector(PREFIX, ctx),
        html.Div(id=MESSAGE),
        html.Div(id=STATUS),
        dbc.Row([
            dbc.Col(card(None, html.Div([
                dbc.RadioItems(id=NORMALISE, options=[{"label": label, "value": v} for v, label in NORMALISE_OPTIONS],
                               value="none", inline=True, className="mb-1"),
                html.Div(id=THRESHOLD_NOTE, className="gb-help small text-muted mb-1"),
                graph(MATRIX, title="Confusion matrix", height=300),
            ]), help_text="Rows are the true class, columns what the model predicted; the diagonal is right. "
                          "Click a cell to see its rows."), lg=6),
            dbc.Col(card("Rows in the chosen cell", _rows_area(ctx)), lg=6),
        ], className="g-3"),
        card("Most confident mistakes", _mistakes(ctx),
             help_text="Wrong predictions the model was surest about: often mislabelled rows or a blind spot."),
        dbc.Offcanvas(id=DETAILS, title="Row details", placement="end", is_open=False, scrollable=True,
                      style={"width": "min(520px, 95vw)"}, children=html.Div(id=DETAILS_BODY)),
    ] + extras)
