"""Callbacks of the feature-influence page (all need 'view feature influence' on the model).

Every chart reads the analysis cache through :mod:`data.explain_views`; the
load callback reports the analyses' progress and keeps polling while they
compute, so the charts fill in by themselves.
"""

from __future__ import annotations

import functools
from typing import Any

from dash import Input, Output, State, ctx, no_update

from app.figures.influence import importance_figure, pdp2d_figure, pdp_figure, shap_dependence_figure
from app.security.permissions import Permission
from callbacks.model_select import register_selector, resolve
from callbacks.validate import InvalidInput, choice, error_alert, flag, number
from data import explain_views as ev
from data.db import get_db
from data.views import readiness
from layouts import features as L
from layouts.model_select import SelectorIds
from layouts.model_views import placeholder, progress_block

PERMISSION = Permission.VIEW_INFLUENCE


class _Source:
    """A cached analysis payload and what a chart draws from it, compared by the payload's identity.

    Payloads of ready analyses never change and the analysis cache hands out
    the same object while it keeps it, so a chart drawn from one payload with
    the same parameters is the same chart. The key holds the payload, so its
    identity cannot be reused while the figure is cached.
    """

    __slots__ = ("payload", "derived")

    def __init__(self, payload: Any, derived: Any):
        self.payload = payload
        self.derived = derived

    def __hash__(self) -> int:
        return id(self.payload)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Source) and other.payload is self.payload


@functools.lru_cache(maxsize=128)
def _figure(kind: str, source: _Source, params: tuple) -> dict:
    """Return a chart as a plain dict, built once per payload and parameters in this process.

    Building a house-style figure costs tens of milliseconds (most of it the
    template); the pages' charts are redrawn from the same cached payloads
    again and again, so the built figure is kept.
    """
    data = source.derived
    if kind == "importance":
        label, top_k = params[:2]
        fig = importance_figure(data, method_label=label, top_k=top_k)
    elif kind == "pdp":
        centered, target = params[:2]
        fig = pdp_figure(data, centered=centered, target_label=target)
    elif kind == "pdp2d":
        fig = pdp2d_figure(data)
    else:
        feature, color = params[:2]
        fig = shap_dependence_figure(data, feature, color_by=color)
        if color is not None and fig.data and getattr(fig.data[0].marker, "showscale", None):
            fig.update_layout(showlegend=False)  # a numeric colour has its colour bar; one legend entry says nothing
        if fig.data:
            # The x axis names the feature already; the long default title ran into the chart's title.
            fig.update_yaxes(title_text=f"SHAP value ({data.get('output_space') or 'model output'})")
    return fig.to_plotly_json()


def _version(model, version, user):
    return resolve(model, version, user=user, permission=PERMISSION)


def _options(names) -> list[dict]:
    return [{"label": str(n), "value": n} for n in names]


def _class(found, klass):
    """Return the class to explain (multiclass) or None; raise InvalidInput for an unknown class."""
    if found.task != "multiclass":
        return None
    if klass is None:
        return None
    try:
        return ev.class_key(found, klass)[2]
    except ev.ExplainError as exc:
        raise InvalidInput(str(exc)) from None


def _feature(found, value, what: str = "Feature"):
    return choice(value, name=what, options=list(found.features))


def load(model, version, n_intervals, current=None, *, user, polled: bool = False):
    """Report progress and fill the pickers for the chosen model.

    Outputs: status, interval disabled, ready store, message, class options,
    class value, class row style, then options and value of the PDP feature,
    the 2-D PDP pair and the SHAP dependence feature and colour.
    """
    n_out = 17
    try:
        found = _version(model, version, user)
    except InvalidInput as exc:
        if polled:
            return (no_update, True) + (no_update,) * (n_out - 2)
        return (None, True, None, error_alert(str(exc)), [], None, L.HIDDEN) + ([], None) * 5
    with get_db().session() as s:
        ready = readiness(s, found.id, ev.FEATURE_KINDS)
        ranked = ev.ranked_features(s, found)
        pair = ev.pdp2d_pair(s, found)
    status = progress_block(ready)
    computing = ready["state"] == "computing"
    store = {"version": found.id, "ready": sorted(ready["ready"]), "failed": sorted(f["kind"] for f in ready["failed"])}
    if polled:
        return (status, not computing, store if store != current else no_update) + (no_update,) * (n_out - 3)
    classes = ev.class_options(found)
    features = list(found.features)
    options = _options(features)
    top = ranked[0]
    second = ranked[1] if len(ranked) > 1 else ranked[0]
    return (status, not computing, store, None,
            _options(classes), classes[0] if classes else None, {} if classes else L.HIDDEN,
            options, top, options, pair[0], options, pair[1] if len(pair) > 1 else second,
            options, top, options, second)


def update_importance(model, version, method, top_k, klass, ready, *, user):
    """Return (importance figure, method meaning, note)."""
    try:
        found = _version(model, version, user)
        method = choice(method, name="Method", options=list(ev.METHODS))
        top_k = number(top_k, name="Features shown", lo=L.TOP_K_RANGE[0], hi=L.TOP_K_RANGE[1], integer=True)
        klass = _class(found, klass)
    except InvalidInput as exc:
        return placeholder(str(exc), title="Feature importance"), no_update, error_alert(str(exc))
    with get_db().session() as s:
        shown = ev.importance(s, found, method, klass=klass)
    meaning = ev.METHOD_MEANINGS[method]
    if shown["result"] is None:
        return placeholder(shown["note"], title=shown["label"]), meaning, None
    label = shown["label"] + (f" (towards {klass})" if klass is not None and method == "shap" else "")
    figure = _figure("importance", _Source(shown["source"], shown["result"]), (label, top_k, method, str(klass)))
    return figure, meaning, shown["note"]


def update_pdp(model, version, feature, centered, klass, ready, *, user):
    """Return (partial dependence figure, note)."""
    try:
        found = _version(model, version, user)
        feature = _feature(found, feature)
        centered = flag(centered, name="Centre")
        klass = _class(found, klass)
    except InvalidInput as exc:
        return placeholder(str(exc), title="Partial dependence"), error_alert(str(exc))
    with get_db().session() as s:
        shown = ev.pdp(s, found, feature, klass=klass)
    if shown["pdp"] is None:
        return placeholder(shown["note"], title="Partial dependence"), None
    key, _, target = ev.class_key(found, klass)
    figure = _figure("pdp", _Source(shown["source"], shown["pdp"]), (centered, target, feature, key))
    return figure, shown["note"]


def update_pdp2d(model, version, fx, fy, klass, ready, *, user):
    """Return (two-way partial dependence heatmap, note)."""
    try:
        found = _version(model, version, user)
        fx = _feature(found, fx, "First feature")
        fy = _feature(found, fy, "Second feature")
        klass = _class(found, klass)
        if fx == fy:
            raise InvalidInput("Choose two different features.")
    except InvalidInput as exc:
        return placeholder(str(exc), title="Two-way partial dependence"), str(exc)
    with get_db().session() as s:
        shown = ev.pdp2d(s, found, [fx, fy], klass=klass)
    if shown["pdp"] is None:
        return placeholder(shown["note"], title="Two-way partial dependence"), None
    key = ev.class_key(found, klass)[0]
    return _figure("pdp2d", _Source(shown["source"], shown["pdp"]), (fx, fy, key)), shown["note"]


def update_dependence(model, version, feature, color, klass, ready, *, user):
    """Return (SHAP dependence scatter, note)."""
    try:
        found = _version(model, version, user)
        feature = _feature(found, feature)
        color = _feature(found, color, "Colour by") if color is not None else None
        klass = _class(found, klass)
    except InvalidInput as exc:
        return placeholder(str(exc), title="SHAP dependence"), error_alert(str(exc))
    with get_db().session() as s:
        shown = ev.shap_rows(s, found, klass=klass)
    if shown["sample"] is None:
        return placeholder(shown["note"], title=f"SHAP dependence: {feature}"), None
    color = color if color != feature else None
    key = ev.class_key(found, klass)[0]
    return _figure("dependence", _Source(shown["source"], shown["sample"]), (feature, color, key)), shown["note"]


def register(dash_app, policy) -> None:
    """Register the selector, the progress poll and one callback per chart."""
    register_selector(policy, L.PREFIX, permission=PERMISSION, split=False)
    ids = SelectorIds(L.PREFIX)

    def _load(model, version, n_intervals, current):
        return load(model, version, n_intervals, current, user=policy.current_user(),
                    polled=ctx.triggered_id == L.INTERVAL)

    policy.callback(
        Output(L.STATUS, "children"), Output(L.INTERVAL, "disabled"), Output(L.READY, "data"),
        Output(L.MESSAGE, "children"), Output(L.CLASS, "options"), Output(L.CLASS, "value"),
        Output(L.CLASS_ROW, "style"),
        Output(L.PDP_FEATURE, "options"), Output(L.PDP_FEATURE, "value"),
        Output(L.PDP2D_X, "options"), Output(L.PDP2D_X, "value"),
        Output(L.PDP2D_Y, "options"), Output(L.PDP2D_Y, "value"),
        Output(L.DEP_FEATURE, "options"), Output(L.DEP_FEATURE, "value"),
        Output(L.DEP_COLOR, "options"), Output(L.DEP_COLOR, "value"),
        Input(ids.model, "value"), Input(ids.version, "value"), Input(L.INTERVAL, "n_intervals"),
        State(L.READY, "data"), permission=PERMISSION)(_load)

    def _user_wrapped(func):
        def wrapped(*args):
            return func(*args, user=policy.current_user())
        wrapped.__name__ = func.__name__
        return wrapped

    model_inputs = (State(ids.model, "value"), State(ids.version, "value"))
    policy.callback(Output(L.IMPORTANCE, "figure"), Output(L.METHOD_HELP, "children"),
                    Output(L.IMPORTANCE_NOTE, "children"),
                    *model_inputs, Input(L.METHOD, "value"), Input(L.TOP_K, "value"), Input(L.CLASS, "value"),
                    Input(L.READY, "data"), permission=PERMISSION)(_user_wrapped(update_importance))
    policy.callback(Output(L.PDP_GRAPH, "figure"), Output(L.PDP_NOTE, "children"),
                    *model_inputs, Input(L.PDP_FEATURE, "value"), Input(L.PDP_CENTERED, "value"),
                    Input(L.CLASS, "value"), Input(L.READY, "data"),
                    permission=PERMISSION)(_user_wrapped(update_pdp))
    policy.callback(Output(L.PDP2D_GRAPH, "figure"), Output(L.PDP2D_NOTE, "children"),
                    *model_inputs, Input(L.PDP2D_X, "value"), Input(L.PDP2D_Y, "value"),
                    Input(L.CLASS, "value"), Input(L.READY, "data"),
                    permission=PERMISSION)(_user_wrapped(update_pdp2d))
    policy.callback(Output(L.DEP_GRAPH, "figure"), Output(L.DEP_NOTE, "children"),
                    *model_inputs, Input(L.DEP_FEATURE, "value"), Input(L.DEP_COLOR, "value"),
                    Input(L.CLASS, "value"), Input(L.READY, "data"),
                    permission=PERMISSION)(_user_wrapped(update_dependence))
