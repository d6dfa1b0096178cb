"""Admin: registered models and versions, their analyses, archive/delete, and registration by upload."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.security.permissions import Permission
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/admin/models", title="Models", permission=Permission.MANAGE_MODELS, section="Admin",
                order=5, icon="bi-boxes",
                description="Register a model by uploading it with its data, follow its analyses, retry the ones "
                            "that failed, and archive or delete models. Every change is recorded in the audit log.")

# Upload form
UPLOAD_MODEL = "admin-models-upload-model"
UPLOAD_TRAIN = "admin-models-upload-train"
UPLOAD_TEST = "admin-models-upload-test"
MODEL_FILE = "admin-models-model-file"
TRAIN_FILE = "admin-models-train-file"
TEST_FILE = "admin-models-test-file"
NAME = "admin-models-name"
TARGET = "admin-models-target"
POSITIVE = "admin-models-positive"
GROUPS = "admin-models-groups"
DESCRIPTION = "admin-models-description"
TAGS = "admin-models-tags"
REGISTER = "admin-models-register"
REGISTER_MESSAGE = "admin-models-register-message"
REGISTERED = "admin-models-registered"
# Versions table
TABLE = "admin-models-table"
REFRESH = "admin-models-refresh"
RETRY = "admin-models-retry"  # pattern-matching: {"type": RETRY, "version": <id>}
RETRY_MESSAGE = "admin-models-retry-message"
RETRIED = "admin-models-retried"
# Archive / delete
MANAGE_MODEL = "admin-models-manage-model"
MANAGE_VERSION = "admin-models-manage-version"
ARCHIVE = "admin-models-archive"
UNARCHIVE = "admin-models-unarchive"
DELETE = "admin-models-delete"
CONFIRM = "admin-models-confirm"
PENDING = "admin-models-pending"
ASK_MESSAGE = "admin-models-ask-message"
ACTION_MESSAGE = "admin-models-action-message"
CHANGED = "admin-models-changed"

ALL_VERSIONS = "all"
REFRESH_MS = 4000
#: Per-file limit of the upload form when the app does not say: the three files travel in one request,
#: base64-encoded (4/3 larger), so each gets a quarter of the request limit.
DEFAULT_FILE_LIMIT = 50 * 1024 * 1024


def file_limit() -> int:
    """Return the per-file upload limit in bytes (a quarter of GLASSBOX_MAX_UPLOAD_BYTES)."""
    try:
        from flask import current_app

        return int(current_app.config["GLASSBOX_MAX_UPLOAD_BYTES"]) // 4
    except (RuntimeError, KeyError):
        return DEFAULT_FILE_LIMIT


def _upload(component_id: str, label_id: str, prompt: str, accept: str, limit: int):
    return html.Div([
        dcc.Upload(id=component_id, multiple=False, accept=accept, max_size=limit,
                   children=html.Div([html.I(className="bi bi-cloud-arrow-up me-2"), prompt]),
                   className="border border-2 rounded p-3 text-center bg-light",
                   style={"borderStyle": "dashed", "cursor": "pointer"}),
        html.Div("No file chosen", id=label_id, className="gb-help mt-1"),
    ], className="mb-3")


def _field(label: str, control, help_text: str | None = None):
    return html.Div([dbc.Label(label, html_for=getattr(control, "id", None)), control,
                     dbc.FormText(help_text) if help_text else None], className="mb-3")


def layout(ctx: PageContext):
    """Return the model administration page."""
    limit = file_limit()
    limit_mb = f"{limit / 1024 / 1024:.0f} MB"
    upload_card = dbc.Card([
        dbc.CardHeader([html.I(className="bi bi-upload me-2"), "Register a model"]),
        dbc.CardBody([
            html.P(["Upload a fitted scikit-learn estimator or Pipeline saved with ", html.Code("skops.io.dump"),
                    " and its train and test data (CSV or Parquet, with the target column). Each file may be up to ",
                    limit_mb, "; larger ones and pickle files register from the command line (",
                    html.Code("glassbox register"), ")."], className="gb-help"),
            dbc.Row([
                dbc.Col(_upload(UPLOAD_MODEL, MODEL_FILE, "Model (.skops)", ".skops", limit), md=4),
                dbc.Col(_upload(UPLOAD_TRAIN, TRAIN_FILE, "Train data (.csv, .parquet)", ".csv,.parquet,.pq", limit),
                        md=4),
                dbc.Col(_upload(UPLOAD_TEST, TEST_FILE, "Test data (.csv, .parquet)", ".csv,.parquet,.pq", limit),
                        md=4),
            ]),
            dbc.Row([
                dbc.Col(_field("Model name", dbc.Input(id=NAME, maxLength=128, placeholder="e.g. churn",
                                                       autoComplete="off"),
                               "Letters, digits, '.', '_' or '-'. An existing name gets a new version."), md=4),
                dbc.Col(_field("Target column", dbc.Input(id=TARGET, maxLength=255, autoComplete="off")), md=4),
                dbc.Col(_field("Positive class", dbc.Input(id=POSITIVE, maxLength=255, autoComplete="off",
                                                           placeholder="Binary models; default: second class")),
                        md=4),
            ]),
            dbc.Row([
                dbc.Col(_field("Group columns", dbc.Input(id=GROUPS, maxLength=1000, autoComplete="off",
                                                          placeholder="e.g. region, age_band"),
                               "Comma-separated columns kept for fairness views, not fed to the model."), md=6),
                dbc.Col(_field("Tags", dbc.Input(id=TAGS, maxLength=500, autoComplete="off",
                                                 placeholder="e.g. q3, candidate")), md=6),
            ]),
            _field("Description", dbc.Textarea(id=DESCRIPTION, maxLength=2000, rows=2)),
            dbc.Button([html.I(className="bi bi-check2-circle me-2"), "Validate and register"], id=REGISTER,
                       color="primary"),
            dcc.Loading(html.Div(id=REGISTER_MESSAGE, className="mt-3"), type="dot", color="#0072B2"),
        ]),
    ], className="mb-4")
    manage_card = dbc.Card([
        dbc.CardHeader([html.I(className="bi bi-archive me-2"), "Archive or delete"]),
        dbc.CardBody([
            _field("Model", dcc.Dropdown(id=MANAGE_MODEL, placeholder="Choose a model")),
            _field("Version", dcc.Dropdown(id=MANAGE_VERSION, clearable=False, placeholder="Every version")),
            html.P("Archiving hides a model from every view and keeps it; deleting removes its versions, data, "
                   "analyses and files for good.", className="gb-help"),
            dbc.Button("Archive", id=ARCHIVE, color="secondary", outline=True, className="me-2"),
            dbc.Button("Unarchive", id=UNARCHIVE, color="secondary", outline=True, className="me-2"),
            dbc.Button("Delete", id=DELETE, color="danger", outline=True),
            html.Div(id=ASK_MESSAGE, className="mt-3"),
            html.Div(id=ACTION_MESSAGE, className="mt-3"),
        ]),
    ], className="mb-4")
    return html.Div([
        dcc.Store(id=PENDING),
        dcc.Store(id=CHANGED, data=0),
        dcc.Store(id=REGISTERED, data=0),
        dcc.Store(id=RETRIED, data=0),
        dcc.ConfirmDialog(id=CONFIRM),
        dcc.Interval(id=REFRESH, interval=REFRESH_MS, disabled=False),
        dbc.Card([
            dbc.CardHeader([html.I(className="bi bi-boxes me-2"), "Registered models"]),
            dbc.CardBody([html.Div(id=RETRY_MESSAGE), html.Div(id=TABLE)]),
        ], className="mb-4"),
        dbc.Row([dbc.Col(upload_card, xl=8), dbc.Col(manage_card, xl=4)]),
    ])
