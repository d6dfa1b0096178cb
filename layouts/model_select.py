"""The model, version and data-split selector shared by every model view.

The choice lives in the URL (``?model=NAME&version=N&split=test``) so a link
opens the same view for a colleague who has access. The layout only declares
the controls with the values asked for in the URL; the options are filled by a
callback that knows the user's grants (see ``callbacks/model_select.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts.page import PageContext

SPLITS = (("test", "Test (held-out)"), ("train", "Train"))


@dataclass(frozen=True)
class SelectorIds:
    """The component ids of one page's selector."""

    prefix: str

    @property
    def model(self) -> str:
        return f"{self.prefix}-model"

    @property
    def version(self) -> str:
        return f"{self.prefix}-version"

    @property
    def split(self) -> str:
        return f"{self.prefix}-split"

    @property
    def url(self) -> str:
        return f"{self.prefix}-url"

    @property
    def info(self) -> str:
        return f"{self.prefix}-model-info"


def _initial_version(ctx: PageContext) -> int | None:
    raw = ctx.query.get("version", "")
    return int(raw) if raw.isdigit() and len(raw) < 7 else None


def selector(prefix: str, ctx: PageContext, *, split: bool = True) -> html.Div:
    """Return the selector bar for a model view with the URL's choice preselected."""
    ids = SelectorIds(prefix)
    split_value = ctx.query.get("split") if ctx.query.get("split") in {"train", "test"} else "test"
    controls = [
        dcc.Location(id=ids.url, refresh=False),
        dbc.Col([dbc.Label("Model", html_for=ids.model),
                 dcc.Dropdown(id=ids.model, value=ctx.query.get("model") or None, clearable=False,
                              placeholder="Choose a model", persistence=False)], md=4, lg=3),
        dbc.Col([dbc.Label("Version", html_for=ids.version),
                 dcc.Dropdown(id=ids.version, value=_initial_version(ctx), clearable=False,
                              placeholder="Latest")], md=3, lg=2),
    ]
    if split:
        controls.append(dbc.Col([dbc.Label("Data", html_for=ids.split),
                                 dbc.RadioItems(id=ids.split, options=[{"label": l, "value": v} for v, l in SPLITS],
                                                value=split_value, inline=True, className="pt-1")],
                                md=3, lg=3))
    else:
        controls.append(dcc.Store(id=ids.split, data="test"))
    controls.append(dbc.Col(html.Div(id=ids.info, className="gb-help pt-md-4"), md=True))
    return html.Div(dbc.Row(controls, className="g-3 align-items-start"), className="gb-card p-3 mb-3")
