"""Performance: how good is the model, on the data it learned from and on held-out data."""

from __future__ import annotations

from dash import dcc, html

from app.security.permissions import Permission
from layouts.model_select import selector
from layouts.model_views import POLL_MS
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/performance", title="Performance", permission=Permission.VIEW_METRICS,
                section="Model", order=10, icon="bi-speedometer2",
                description="How good the model is: its scores on the training data and on held-out test data side "
                            "by side, and the curves behind them.")

PREFIX = "performance"
STATUS = "performance-status"
INTERVAL = "performance-interval"
MESSAGE = "performance-message"
BODY = "performance-body"
SIGNATURE = "performance-signature"
# Ids inside the body (built by the callback).
METRICS_TABLE = "performance-metrics"
ROC = "performance-roc"
PR = "performance-pr"
CALIBRATION = "performance-calibration"
SCORES = "performance-scores"
PER_CLASS = "performance-per-class"
PER_CLASS_TABLE = "performance-per-class-table"
PRED_ACTUAL = "performance-pred-actual"
RESIDUALS = "performance-residuals"
RESIDUAL_HIST = "performance-residual-hist"
DECILES = "performance-deciles"


def layout(ctx: PageContext):
    """Return the performance page: selector, analysis status and the body the callback fills."""
    return html.Div([
        dcc.Store(id=SIGNATURE),
        dcc.Interval(id=INTERVAL, interval=POLL_MS, disabled=True),
        selector(PREFIX, ctx),
        html.Div(id=MESSAGE),
        html.Div(id=STATUS),
        dcc.Loading(html.Div(id=BODY, children=html.P("Choose a model above.", className="gb-help")),
                    type="circle", delay_show=300, color="#0072B2"),
    ])
