"""Callbacks of the overview: the model cards, refreshed while analyses compute."""

from __future__ import annotations

import re
from urllib.parse import quote

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html
from flask import current_app, has_app_context

from app.ml.metrics import METRIC_INFO
from app.security.permissions import Permission
from data.analysis_cache import status_for
from data.db import get_db
from data.registry import list_models
from data.monitoring import open_alert_counts
from layouts import overview as L
from layouts.monitoring import alert_badge

TASK_LABELS = {"binary": "Binary classifier", "multiclass": "Multiclass classifier", "regression": "Regressor"}
STATE_COLORS = {"ready": "success", "computing": "info", "failed": "danger", "none": "secondary"}
STATE_LABELS = {"ready": "analyses ready", "computing": "analyses computing", "failed": "some analyses failed",
                "none": "no analyses"}


def _slug(name: str) -> str:
    """Return ``name`` usable inside a component id (Dash ids may not contain '.')."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _metric(key: str, value) -> html.Div:
    info = METRIC_INFO.get(key, {"label": key, "meaning": ""})
    shown = "–" if value is None else (f"{value:,.3f}" if isinstance(value, float) else f"{value:,}")
    return html.Div([html.Div(shown, className="gb-stat"), html.Div(info["label"], className="gb-stat-label")],
                    title=info.get("meaning", ""), className="me-4 mb-2")


def _links(name: str, task: str, can, available: set[str] | None) -> list:
    links = []
    for path, label, icon, permission, tasks in L.VIEWS:
        if tasks is not None and task not in tasks:
            continue
        if available is not None and path not in available:
            continue
        if not can(permission, model=name):
            continue
        links.append(dcc.Link([html.I(className=f"bi {icon} me-1"), label], href=f"{path}?model={quote(name)}",
                              className="btn btn-outline-primary btn-sm me-2 mb-2",
                              id=f"overview-link-{path.strip('/')}-{_slug(name)}"))
    return links


def _status_block(status: dict, name: str, can_manage: bool) -> html.Div:
    state = status["state"]
    done = status["ready"] + status["failed"]
    parts = [html.Div([dbc.Badge(STATE_LABELS[state], color=STATE_COLORS[state], className="me-2"),
                       html.Span(f"{status['ready']} of {status['total']} ready"
                                 + (f", {status['failed']} failed" if status["failed"] else ""),
                                 className="gb-help")], className="mb-1")]
    if state == "computing":
        parts.append(dbc.Progress(value=round(100 * done / max(status["total"], 1)), striped=True, animated=True,
                                  style={"height": "6px"}, className="mb-1",
                                  id=f"overview-progress-{_slug(name)}"))
    if status["failed"] and can_manage:
        parts.append(dcc.Link("Retry failed analyses in Admin › Models", href="/admin/models",
                              className="small"))
    return html.Div(parts, className="mb-2")


def _threshold_block(version) -> html.Div | None:
    if version.task != "binary":
        return None
    saved = version.threshold
    if not saved:
        return html.Div([html.I(className="bi bi-sliders me-1"),
                         "No threshold saved; the views use 0.5."], className="gb-help mb-2")
    return html.Div([html.I(className="bi bi-sliders me-1"),
                     html.Strong(f"Threshold {saved['value']:.3f}"),
                     f" set by {saved['set_by']} on {saved['set_at'][:10]}",
                     html.Span(f": {saved['reason']}", className="text-muted")], className="mb-2")


def model_card(record, status: dict, *, can, available: set[str] | None = None, open_alerts: int = 0) -> dbc.Col:
    """Return the card of one model (its latest version) as seen by a user with ``can``."""
    version = record.latest
    name = record.name
    metrics = version.metrics or {}
    shown = [_metric(k, v) for k, v in metrics.items() if k != "n"]
    metric_row = (html.Div(shown, className="d-flex flex-wrap") if shown else
                  html.P("Test metrics appear when the analyses are ready.", className="gb-help"))
    positive = (f" · positive class “{version.positive_class}”" if version.task == "binary" else "")
    body = dbc.CardBody([
        html.Div([html.H5(name, className="mb-0 me-2"),
                  dbc.Badge(TASK_LABELS.get(version.task, version.task), color="light", text_color="dark",
                            className="me-2 border"),
                  html.Span(f"v{version.number}" + (f" of {len(record.versions)}" if len(record.versions) > 1
                                                    else ""), className="gb-help"),
                  alert_badge(name, open_alerts) if can(Permission.VIEW_MONITORING, model=name) else None],
                 className="d-flex align-items-center flex-wrap mb-1"),
        html.P((version.description[:240] + ("…" if len(version.description) > 240 else ""))
               if version.description else "", className="gb-help mb-2"),
        html.Div(f"Predicts “{version.target}”{positive} from {len(version.features)} features · "
                 f"{version.train_rows:,} train / {version.test_rows:,} test rows · registered "
                 f"{version.created_at:%Y-%m-%d} by {version.created_by}", className="small mb-2"),
        html.Div("Held-out test metrics" + (" (threshold 0.5)" if version.task == "binary" else ""),
                 className="gb-stat-label mb-1"),
        metric_row,
        _threshold_block(version),
        _status_block(status, name, can(Permission.MANAGE_MODELS)),
        html.Div(_links(name, version.task, can, available), className="mt-2"),
    ])
    return dbc.Col(dbc.Card(body, className="gb-card h-100", id=f"overview-card-{_slug(name)}"), lg=6)


def empty_state(*, can_manage: bool) -> dbc.Col:
    """Return the message shown when the user sees no model."""
    how = [
        html.P("Register a fitted scikit-learn model with its train and test data:", className="mb-1"),
        html.Pre("glassbox register --name churn --model churn.skops --train train.csv --test test.csv "
                 "--target churned", className="bg-light p-2 rounded small mb-2",
                 style={"whiteSpace": "pre-wrap", "wordBreak": "break-word"}),
        html.P(["From a notebook: ", html.Code("from data.registry import register_model"), "."], className="mb-2"),
    ]
    if can_manage:
        how.append(html.P(["Or upload the files on ", dcc.Link("Admin › Models", href="/admin/models"), "; ",
                           html.Code("glassbox demo seed"), " adds five demo models."]))
    else:
        how.append(html.P("An administrator can register models (command line or Admin › Models) and give you "
                          "access to them.", className="mb-0"))
    title = "No model is registered yet" if can_manage else "No model is registered yet, or none is shared with you"
    return dbc.Col(dbc.Card(dbc.CardBody([html.H5(title, className="mb-3"), *how]), className="gb-card",
                            id="overview-empty"), md=10, lg=8)


def overview_cards(user, *, available: set[str] | None = None) -> tuple[list, bool]:
    """Return (cards, refresh disabled) for the models ``user`` may see on the overview.

    ``user`` has ``can(permission, model=None)`` and ``visible_models(permission)``.
    The refresh interval stays on while any shown model's analyses are computing.
    """
    visible = user.visible_models(Permission.VIEW_OVERVIEW)
    with get_db().session() as session:
        records = [r for r in list_models(session, visible=visible)
                   if user.can(Permission.VIEW_OVERVIEW, model=r.name)]
        statuses = {r.name: status_for(session, r.latest.id) for r in records}
        if not records:
            return [empty_state(can_manage=user.can(Permission.MANAGE_MODELS))], True
        alerts = open_alert_counts(session, [r.name for r in records])
        cards = [model_card(r, statuses[r.name], can=user.can, available=available, open_alerts=alerts[r.name])
                 for r in records]
    computing = any(s["state"] == "computing" for s in statuses.values())
    return cards, not computing


def _page_paths() -> set[str] | None:
    if not has_app_context():
        return None
    pages = current_app.extensions.get("glassbox.pages")
    return None if pages is None else {p.spec.path for p in pages}


def register(dash_app, policy):
    """Bind the cards to the refresh interval."""

    def refresh(_n_intervals):
        return overview_cards(policy.current_user(), available=_page_paths())

    policy.callback(Output(L.CARDS, "children"), Output(L.REFRESH, "disabled"),
                    Input(L.REFRESH, "n_intervals"), permission=Permission.VIEW_OVERVIEW)(refresh)
