"""Admin: users, roles and per-model grants."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.security.permissions import ROLE_DESCRIPTIONS, ROLES, Permission
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/admin/users", title="Users and roles", permission=Permission.MANAGE_USERS,
                section="Admin", order=10, icon="bi-people",
                description="Create accounts, grant roles on all models or on one, disable accounts and reset "
                            "passwords. Every change is recorded in the audit log and takes effect at once.")

NEW_USERNAME = "admin-users-new-username"
NEW_ROLE = "admin-users-new-role"
NEW_MODEL = "admin-users-new-model"
CREATE = "admin-users-create"
CREATE_MESSAGE = "admin-users-create-message"
TABLE = "admin-users-table"
SELECTED = "admin-users-selected"
ACTION_ROLE = "admin-users-action-role"
ACTION_MODEL = "admin-users-action-model"
GRANT = "admin-users-grant"
REVOKE = "admin-users-revoke"
DISABLE = "admin-users-disable"
ENABLE = "admin-users-enable"
RESET = "admin-users-reset"
ACTION_MESSAGE = "admin-users-action-message"

ROLE_OPTIONS = [{"label": r.title(), "value": r} for r in ROLES]
ROLE_HELP = " ".join(f"{r.title()}: {ROLE_DESCRIPTIONS[r]}" for r in ROLES)


def _field(label: str, control, help_text: str | None = None):
    return html.Div([dbc.Label(label, html_for=getattr(control, "id", None)), control,
                     dbc.FormText(help_text) if help_text else None], className="mb-3")


def layout(ctx: PageContext):
    """Return the user administration page."""
    create_card = dbc.Card([
        dbc.CardHeader([html.I(className="bi bi-person-plus me-2"), "New user"]),
        dbc.CardBody([
            _field("Username", dbc.Input(id=NEW_USERNAME, maxLength=64, placeholder="e.g. jane.doe",
                                         autoComplete="off")),
            _field("Role", dcc.Dropdown(id=NEW_ROLE, options=ROLE_OPTIONS, value="viewer", clearable=False),
                   ROLE_HELP),
            _field("Model", dbc.Input(id=NEW_MODEL, maxLength=128, placeholder="All models"),
                   "Leave empty to grant the role on every model, or name one model."),
            dbc.Button("Create user", id=CREATE, color="primary"),
            html.Div(id=CREATE_MESSAGE, className="mt-3"),
        ]),
    ], className="mb-4")
    manage_card = dbc.Card([
        dbc.CardHeader([html.I(className="bi bi-person-gear me-2"), "Change a user"]),
        dbc.CardBody([
            _field("User", dcc.Dropdown(id=SELECTED, placeholder="Choose a user")),
            dbc.Row([
                dbc.Col(_field("Role", dcc.Dropdown(id=ACTION_ROLE, options=[{"label": r.title(), "value": r}
                                                                             for r in ROLES],
                                                    value="viewer", clearable=False)), md=6),
                dbc.Col(_field("Model", dbc.Input(id=ACTION_MODEL, maxLength=128, placeholder="All models")),
                        md=6),
            ]),
            html.Div([
                dbc.Button("Grant role", id=GRANT, color="primary", className="me-2 mb-2"),
                dbc.Button("Revoke role", id=REVOKE, color="secondary", outline=True, className="me-2 mb-2"),
            ]),
            html.Hr(),
            html.Div([
                dbc.Button("Reset password", id=RESET, color="secondary", outline=True, className="me-2 mb-2"),
                dbc.Button("Disable", id=DISABLE, color="danger", outline=True, className="me-2 mb-2"),
                dbc.Button("Enable", id=ENABLE, color="success", outline=True, className="mb-2"),
            ]),
            html.Div(id=ACTION_MESSAGE, className="mt-3"),
        ]),
    ])
    return dbc.Row([
        dbc.Col([create_card, manage_card], lg=4),
        dbc.Col(dbc.Card([dbc.CardHeader([html.I(className="bi bi-people me-2"), "Accounts"]),
                          dbc.CardBody(html.Div(id=TABLE))]), lg=8),
    ])
