"""Admin > Monitoring: API tokens of the prediction-log API, alert rules, and notification deliveries."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.ml.timeseries import COMPARISONS
from app.security.permissions import Permission
from layouts.model_views import card
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/admin/monitoring", title="Monitoring setup", permission=Permission.MANAGE_MODELS,
                section="Admin", order=30, icon="bi-broadcast",
                description="Issue and revoke the API tokens services use to log predictions, define the alert "
                            "rules evaluated after every batch and on schedule, and check that notifications "
                            "were delivered. Every change is audited.")

TOKEN_MODEL = "admon-token-model"
TOKEN_NAME = "admon-token-name"
TOKEN_CREATE = "admon-token-create"
TOKEN_MESSAGE = "admon-token-message"
TOKENS = "admon-tokens"
TOKEN_REVOKE = "admon-token-revoke"      # pattern-matching id type
RULE_MODEL = "admon-rule-model"
RULE_NAME = "admon-rule-name"
RULE_METRIC = "admon-rule-metric"
RULE_COMPARISON = "admon-rule-comparison"
RULE_THRESHOLD = "admon-rule-threshold"
RULE_WINDOW = "admon-rule-window"
RULE_BUCKET = "admon-rule-bucket"
RULE_MIN = "admon-rule-min"
RULE_CREATE = "admon-rule-create"
RULE_MESSAGE = "admon-rule-message"
RULES = "admon-rules"
RULE_TOGGLE = "admon-rule-toggle"        # pattern-matching id type
RULE_DELETE = "admon-rule-delete"        # pattern-matching id type
RULE_ACTION_MESSAGE = "admon-rule-action-message"
CHANNELS = "admon-channels"
NOTIFICATIONS = "admon-notifications"
EVALUATE = "admon-evaluate"
RETRY = "admon-retry"                    # pattern-matching id type
NOTIFY_MESSAGE = "admon-notify-message"
LOCAL = "admon-local"

COMPARISON_OPTIONS = [{"label": c, "value": c} for c in COMPARISONS]
BUCKET_OPTIONS = [{"label": "Hour", "value": "hour"}, {"label": "Day", "value": "day"}, {"label": "Week", "value": "week"}]


def _field(label: str, control, help_text: str | None = None, **col):
    return dbc.Col(html.Div([dbc.Label(label, html_for=getattr(control, "id", None)), control,
                             dbc.FormText(help_text) if help_text else None], className="mb-2"), **col)


def layout(ctx: PageContext):
    """Return the monitoring administration page."""
    tokens = card("API tokens", html.Div([
        dbc.Row([
            _field("Model", dcc.Dropdown(id=TOKEN_MODEL, placeholder="Choose a model"), md=5),
            _field("Used by", dbc.Input(id=TOKEN_NAME, maxLength=64, placeholder="e.g. scoring-service (prod)"),
                   md=4),
            dbc.Col(dbc.Button([html.I(className="bi bi-key me-2"), "Create token"], id=TOKEN_CREATE,
                               color="primary", className="mt-md-4"), md=3),
        ], className="g-2"),
        html.Div(id=TOKEN_MESSAGE, className="mb-2"),
        html.Div(id=TOKENS),
    ]), help_text="A token may log predictions and labels for one model only. It is shown once; only its hash "
                  "is stored. Revoking takes effect at the next request.")
    rules = card("Alert rules", html.Div([
        dbc.Row([
            _field("Model", dcc.Dropdown(id=RULE_MODEL, placeholder="Choose a model"), md=4),
            _field("Name", dbc.Input(id=RULE_NAME, maxLength=128, placeholder="e.g. Recall dropped"), md=4),
            _field("Metric", dcc.Dropdown(id=RULE_METRIC, placeholder="Choose a model first"), md=4),
            _field("Fires when", dcc.Dropdown(id=RULE_COMPARISON, options=COMPARISON_OPTIONS, value="<",
                                              clearable=False), md=2),
            _field("Threshold", dbc.Input(id=RULE_THRESHOLD, type="number", value=0.8, step="any"), md=2),
            _field("Over", dbc.Input(id=RULE_WINDOW, type="number", value=1, min=1, max=60, step=1),
                   "buckets pooled", md=2),
            _field("Bucket", dcc.Dropdown(id=RULE_BUCKET, options=BUCKET_OPTIONS, value="day", clearable=False),
                   md=2),
            _field("At least", dbc.Input(id=RULE_MIN, type="number", value=100, min=0, step=1), "records", md=2),
            dbc.Col(dbc.Button([html.I(className="bi bi-bell me-2"), "Add rule"], id=RULE_CREATE, color="primary",
                               className="mt-md-4"), md=2),
        ], className="g-2"),
        html.Div(id=RULE_MESSAGE, className="mb-2"),
        html.Div(id=RULE_ACTION_MESSAGE, className="mb-2"),
        html.Div(id=RULES),
    ]), help_text="Each bucket's value is computed on the records of the last N buckets together; performance "
                  "metrics count labelled records only. An event is recorded where a rule starts firing.")
    notifications = card("Notifications", html.Div([
        html.Div(id=CHANNELS, className="mb-2"),
        dbc.Button([html.I(className="bi bi-arrow-repeat me-2"), "Evaluate rules and send now"], id=EVALUATE,
                   color="secondary", outline=True, size="sm", className="mb-2"),
        html.Div(id=NOTIFY_MESSAGE, className="mb-2"),
        html.Div(id=NOTIFICATIONS),
    ]), help_text="Channels are set by the server's settings (GLASSBOX_ALERT_WEBHOOK_URL, GLASSBOX_SMTP_*). "
                  "Failed deliveries are retried with backoff; the last error is kept.")
    return html.Div([dcc.Store(id=LOCAL, data=0), tokens, rules, notifications])
