"""Pieces shared by the model views (performance, threshold explorer, confusion matrix).

Not a page: no ``PAGE`` here. Graph containers with a loading state and an
empty state, cards, and the analysis-progress block shown while the cache is
still computing what a view reads.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

#: Poll every this many milliseconds while analyses are computing.
POLL_MS = 2000
GRAPH_CONFIG = {"displaylogo": False,
                "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


def placeholder(message: str, *, title: str = "", height: int = 360) -> dict:
    """Return a light blank figure saying why it is empty (no template: keeps the first load small)."""
    return {
        "data": [],
        "layout": {
            "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
            "height": height, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
            "xaxis": {"visible": False}, "yaxis": {"visible": False},
            "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff",
            "annotations": [{"text": message, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
                             "showarrow": False, "font": {"size": 14, "color": "#7F7F7F"}}],
        },
    }


def graph(graph_id: str, *, message: str = "Choose a model above.", title: str = "", height: int = 360,
          loading: bool = True) -> Any:
    """Return a dcc.Graph with an empty state, wrapped in a (delayed) loading spinner."""
    g = dcc.Graph(id=graph_id, figure=placeholder(message, title=title, height=height), config=GRAPH_CONFIG,
                  style={"minHeight": f"{height}px"})
    if not loading:
        return g
    # delay_show: clientside updates (the threshold slider) finish long before the spinner would flash.
    return dcc.Loading(g, type="circle", delay_show=400, color="#0072B2")


def card(title: str | None, body: Any, *, help_text: str | None = None, card_id: str | None = None,
         class_name: str = "") -> html.Div:
    """Return a card with an optional title (figures carry their own) and one-line explanation."""
    props = {"id": card_id} if card_id else {}
    if not title:
        tail = [html.P(help_text, className="gb-help small text-muted mb-0 mt-1")] if help_text else []
        return html.Div([body] + tail, className=f"gb-card p-3 mb-3 {class_name}".strip(), **props)
    head = [html.H2(title, className="h6 mb-1")]
    if help_text:
        head.append(html.P(help_text, className="gb-help small text-muted mb-2"))
    return html.Div(head + [body], className=f"gb-card p-3 mb-3 {class_name}".strip(), **props)


def progress_block(ready: dict | None) -> Any:
    """Return what to show for a :func:`data.views.readiness` result (None when everything is ready)."""
    if not ready or ready["state"] == "ready":
        return None
    titles = ready.get("titles", {})

    def _title(kind: str) -> str:
        return titles.get(kind, kind)

    done = len(ready["ready"])
    total = done + len(ready["waiting"]) + len(ready["failed"]) + len(ready["missing"])
    parts: list[Any] = []
    if ready["waiting"]:
        names = ", ".join(_title(k) for k in ready["waiting"])
        parts.append(html.Div([
            html.Div([html.I(className="bi bi-hourglass-split me-2"),
                      f"Computing the analyses behind this view: {done} of {total} ready. Waiting for: {names}. "
                      "The page updates by itself when they are ready."], className="mb-2"),
            dbc.Progress(value=round(100 * ready["progress"]), striped=True, animated=True,
                         label=f"{round(100 * ready['progress'])}%", style={"height": "1.1rem"}),
        ]))
    if ready["failed"]:
        parts.append(html.Div([
            html.I(className="bi bi-x-octagon me-2"),
            "Some analyses failed: ",
            html.Ul([html.Li(f"{_title(f['kind'])}: {str(f['error'])[:300]}") for f in ready["failed"]],
                    className="mb-0"),
            html.Span("An administrator can retry them from the model's page.", className="small"),
        ]))
    if ready["missing"]:
        names = ", ".join(_title(k) for k in ready["missing"])
        parts.append(html.Div([html.I(className="bi bi-info-circle me-2"),
                               f"Not computed for this version: {names}."]))
    color = "danger" if ready["failed"] and not ready["waiting"] else "info"
    return dbc.Alert(parts, color=color, className="mb-3")


def fmt(value: Any, spec: str = ".3f") -> str:
    """Return a number formatted for a table cell, or an en dash when missing."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    try:
        text = format(value, spec)
    except (TypeError, ValueError):
        return str(value)
    # "-0.0000": a tiny negative rounded to zero reads as a sign that is not there.
    return text[1:] if text.startswith("-") and not any(ch in "123456789" for ch in text) else text
