"""Threshold explorer: drag the decision threshold of a binary model and watch every number move.

Moving the slider is answered in the browser from a grid of exact confusion
counts at every 0.01 step (``assets/threshold.js``); a value typed in the box
that is not on that grid is answered by the server from the exact sweep.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.security.permissions import Permission
from layouts.model_select import selector
from layouts.model_views import POLL_MS, card, graph
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/threshold", title="Threshold explorer", permission=Permission.VIEW_METRICS,
                section="Model", order=20, icon="bi-sliders",
                description="Choose where a binary model draws the line between yes and no: move the threshold "
                            "and see the confusion matrix, precision, recall and costs change at once.")

PREFIX = "threshold"
STATUS = "threshold-status"
INTERVAL = "threshold-interval"
MESSAGE = "threshold-message"
SLIDER = "threshold-slider"
BOX = "threshold-box"
PATH = "threshold-path"
JUMP_DEFAULT = "threshold-jump-default"
JUMP_F1 = "threshold-jump-f1"
JUMP_COST = "threshold-jump-cost"
JUMP_SAVED = "threshold-jump-saved"
COST_FP = "threshold-cost-fp"
COST_FN = "threshold-cost-fn"
COST_MESSAGE = "threshold-cost-message"
# Stores: the 0.01 grid of counts, jump requests, off-grid requests and answers. The box holds the threshold.
GRID = "threshold-grid"
JUMP = "threshold-jump"
EXACT_REQUEST = "threshold-exact-request"
EXACT = "threshold-exact"
COST_STORE = "threshold-cost-store"
DRAWN = "threshold-drawn"
SAVED_STORE = "threshold-saved-store"
# Figures and tables. HEATMAP, BARS, TABLE, PATH and FAIR_NOTE are drawn by assets/threshold.js into
# elements React leaves empty; NOTE says why they are empty.
NOTE = "threshold-numbers-note"
HEATMAP = "threshold-heatmap"
BARS = "threshold-bars"
TABLE = "threshold-table"
ROC = "threshold-roc"
PR = "threshold-pr"
COST_GRAPH = "threshold-cost-graph"
# Fairness.
FAIR_COLUMN = "threshold-fair-column"
FAIR_BUTTON = "threshold-fair-update"
FAIR_GRAPH = "threshold-fair-graph"
FAIR_TABLE = "threshold-fair-table"
FAIR_STORE = "threshold-fair-store"
FAIR_NOTE = "threshold-fair-note"
FAIR_MESSAGE = "threshold-fair-message"
EQ_TARGET = "threshold-eq-target"
EQ_BUTTON = "threshold-eq-button"
EQ_TABLE = "threshold-eq-table"
TABS = "threshold-tabs"
# Saving.
SAVED = "threshold-saved"
REASON = "threshold-reason"
SAVE = "threshold-save"
SAVE_MESSAGE = "threshold-save-message"

DEFAULT_COST_FP = 1.0
DEFAULT_COST_FN = 5.0
MAX_COST = 1e9
SLIDER_MARKS = {0: "0", 0.25: "0.25", 0.5: "0.5", 0.75: "0.75", 1: "1"}


def _controls() -> html.Div:
    jump = dbc.ButtonGroup([
        dbc.Button("0.5 (default)", id=JUMP_DEFAULT, color="secondary", outline=True, size="sm"),
        dbc.Button("Best F1", id=JUMP_F1, color="secondary", outline=True, size="sm",
                   title="The threshold with the highest F1 on the chosen data."),
        dbc.Button("Lowest cost", id=JUMP_COST, color="secondary", outline=True, size="sm",
                   title="The threshold with the lowest expected cost for the costs entered below."),
        dbc.Button("Saved", id=JUMP_SAVED, color="secondary", outline=True, size="sm",
                   title="The threshold saved for this model version."),
    ], className="flex-wrap")
    return html.Div([
        dbc.Row([
            dbc.Col([
                dbc.Label("Threshold: rows with a score at or above it are flagged positive", html_for=SLIDER),
                dcc.Slider(id=SLIDER, min=0, max=1, step=0.01, value=0.5, marks=SLIDER_MARKS, updatemode="drag",
                           allow_direct_input=False),
            ], md=7),
            dbc.Col([
                dbc.Label("Exact value", html_for=BOX),
                dbc.Input(id=BOX, type="number", min=0, max=1, step="any", value=0.5, debounce=True,
                          inputMode="decimal", style={"maxWidth": "9rem"}),
            ], md=2),
            dbc.Col([html.Div("Jump to", className="form-label"), jump], md=3),
        ], className="g-3 align-items-end"),
        html.Div(id=PATH, className="gb-help small text-muted mt-2", role="status", **{"aria-live": "polite"}),
    ])


def _cost() -> html.Div:
    return html.Div([
        html.P("What a wrong flag costs against what a missed positive costs, in any unit (money, hours). The "
               "curve shows the average cost per row at each threshold.", className="gb-help small text-muted mt-2"),
        dbc.Row([
            dbc.Col([dbc.Label("Cost of a false positive", html_for=COST_FP),
                     dbc.Input(id=COST_FP, type="number", min=0, max=MAX_COST, step="any", value=DEFAULT_COST_FP,
                               debounce=True)], md=3),
            dbc.Col([dbc.Label("Cost of a false negative", html_for=COST_FN),
                     dbc.Input(id=COST_FN, type="number", min=0, max=MAX_COST, step="any", value=DEFAULT_COST_FN,
                               debounce=True)], md=3),
            dbc.Col(html.Div(id=COST_MESSAGE, className="pt-md-4"), md=6),
        ], className="g-3 mb-2"),
        graph(COST_GRAPH, title="Expected cost per row by threshold"),
    ])


def _fairness(ctx: PageContext) -> html.Div:
    return html.Div([
        html.P("At the current threshold: how often each group is flagged, how many of its positives are caught "
               "(TPR) and how many of its negatives are wrongly flagged (FPR).",
               className="gb-help small text-muted mt-2"),
        dbc.Row([
            dbc.Col([dbc.Label("Group column", html_for=FAIR_COLUMN),
                     dcc.Dropdown(id=FAIR_COLUMN, options=[], value=None, clearable=False,
                                  placeholder="This model has no group column")], md=4),
            dbc.Col(dbc.Button("Update at the current threshold", id=FAIR_BUTTON, color="primary", outline=True,
                               size="sm"), md="auto", className="pt-md-4"),
            dbc.Col([dbc.Label("Target true positive rate", html_for=EQ_TARGET),
                     dbc.Input(id=EQ_TARGET, type="number", min=0.01, max=1, step=0.01, value=None,
                               placeholder="overall TPR", debounce=True, style={"maxWidth": "9rem"})], md=2),
            dbc.Col(dbc.Button("Thresholds that equalise TPR", id=EQ_BUTTON, color="secondary", outline=True,
                               size="sm"), md="auto", className="pt-md-4"),
        ], className="g-3 align-items-start mb-2"),
        html.Div(id=FAIR_NOTE, className="small"),  # drawn by assets/threshold.js
        html.Div(id=FAIR_MESSAGE),
        graph(FAIR_GRAPH, message="Choose a group column to compare groups.", title="Rates by group"),
        html.Div(id=FAIR_TABLE, className="mt-2"),
        html.Div(id=EQ_TABLE, className="mt-3"),
    ])


def _save(ctx: PageContext) -> html.Div:
    saved = html.Div(id=SAVED, className="mb-2 mt-3")
    if not ctx.can(Permission.SET_THRESHOLD):
        return html.Div([saved, html.P(
            "Saving a threshold needs the permission 'set the classification threshold' "
            "(analysts and administrators).", className="gb-help small text-muted mb-0")])
    return html.Div([
        saved,
        dbc.Label("Why this threshold? (kept in the audit log with your name)", html_for=REASON),
        dbc.Textarea(id=REASON, rows=2, maxLength=500,
                     placeholder="e.g. Catch at least 90% of fraud while reviewing fewer than 5% of orders."),
        dbc.Button("Save the current threshold", id=SAVE, color="primary", className="mt-2", size="sm"),
        html.Div(id=SAVE_MESSAGE, className="mt-2"),
    ])


def layout(ctx: PageContext):
    """Return the threshold explorer."""
    stores = [dcc.Store(id=s) for s in (GRID, JUMP, EXACT_REQUEST, EXACT, COST_STORE, SAVED_STORE, FAIR_STORE,
                                        DRAWN)]
    return html.Div(stores + [
        dcc.Interval(id=INTERVAL, interval=POLL_MS, disabled=True),
        selector(PREFIX, ctx),
        html.Div(id=MESSAGE),
        html.Div(id=STATUS),
        card("Threshold", _controls()),
        html.Div(id=NOTE, children=html.P("Choose a model above.", className="gb-help")),
        dbc.Row([
            dbc.Col(card(None, html.Div(id=HEATMAP, role="group")), lg=6),
            dbc.Col(card(None, html.Div(id=BARS),
                         help_text="Precision: of the flagged rows, how many are positive. Recall: of the positive "
                                   "rows, how many are flagged."), lg=6),
        ], className="g-3"),
        card("Train and test at this threshold", html.Div(id=TABLE),
             help_text="A large gap between train and test means the numbers on new data may be worse than on "
                       "the data the model learned from."),
        dbc.Row([
            dbc.Col(card(None, graph(ROC, title="ROC curve"),
                         help_text="The dots mark the current threshold on the train and test curves."), lg=6),
            dbc.Col(card(None, graph(PR, title="Precision-recall curve")), lg=6),
        ], className="g-3"),
        # Only the chosen tab is rendered: fewer components make every slider move cheaper (see threshold.js).
        html.Div(dcc.Tabs(id=TABS, value="cost", className="mb-3", children=[
            dcc.Tab(label="Expected cost", value="cost", children=_cost()),
            dcc.Tab(label="Fairness across groups", value="fairness", children=_fairness(ctx)),
            dcc.Tab(label="Saved threshold", value="save", children=_save(ctx)),
        ]), className="gb-card p-3 mb-3"),
    ])
