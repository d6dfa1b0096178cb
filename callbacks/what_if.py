"""Callbacks of the what-if page (all need 'use what-if' on the model).

The prediction callback is the hot path: it answers every step of a
slider drag (live), so it returns a :class:`dash.Patch` of the probability chart (the bars,
colours and title) instead of a new figure once the chart is drawn for the
model, and it leaves the explanation to a separate callback that runs in
parallel. History, reset, step back and copy-as-JSON run in the browser
(``assets/what_if.js``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dash import ALL, MATCH, ClientsideFunction, Input, Output, Patch, State, ctx, no_update

from app.figures.explain import CLOSE_CALL, FAIRLY_CONFIDENT, MUTED_COLOR, UP_COLOR, probability_figure
from app.security.permissions import Permission
from callbacks.model_select import register_selector, resolve
from callbacks.validate import InvalidInput, error_alert
from data import explain_views as ev
from layouts import what_if as L
from layouts.model_select import SelectorIds

PERMISSION = Permission.USE_WHAT_IF
ROWS = Permission.VIEW_ROWS
KERNEL_NOTE = ("This model is neither tree-based nor linear, so no exact fast explainer exists for it: its "
               "explanation is a Kernel SHAP estimate that takes a few seconds. It runs only when you ask.")


def _version(model, version, user):
    return resolve(model, version, user=user, permission=PERMISSION)


# -- starting row -----------------------------------------------------------------------------

def start_row(found, start: Any, *, user) -> tuple[dict, str, dict]:
    """Return (row, note, start info) for a start request ``{"row", "split", "values"}``; raise InvalidInput."""
    start = start if isinstance(start, dict) else {}
    split = start.get("split") if start.get("split") in ("train", "test") else "test"
    info: dict[str, Any] = {"split": split, "row": None}
    try:
        if start.get("row") is not None:
            if not user.can(ROWS, model=found.name):
                raise InvalidInput(f"Starting from a row of the data needs the permission '{ROWS.label}' on "
                                   f"'{found.name}'.")
            index = ev.check_index(found, split, start["row"])
            base = ev.split_row(found, split, index)
            info["row"] = index
            note = f"Started from row {index} of the {split} data."
        else:
            base = ev.typical_row(found)
            note = "Started from a typical row: the median of each number, the most common category."
        anchor = dict(base)
        if start.get("values"):
            entered = ev.parse_values(start["values"])
            base = ev.check_row(found, {**base, **entered})
            changed = ", ".join(str(k) for k in entered)
            note = note[:-1] + f", with the values given in the link ({changed[:200]})."
    except ev.ExplainError as exc:
        raise InvalidInput(str(exc)) from None
    info["anchor"] = anchor
    return base, note, info


def build(trigger, model, version, row_index, split, start, *, user) -> tuple:
    """Build one control per feature for the chosen model and start row.

    ``trigger`` is the button pressed (typical row or load row), else the
    model changed: then the start in the URL applies if it names this model.
    Outputs: controls, spec, start note.
    """
    if not model:
        return no_update, no_update, None
    try:
        found = _version(model, version, user)
    except InvalidInput as exc:
        return error_alert(str(exc)), None, None
    request: dict = {}
    if trigger == L.START_ROW_GO:
        request = {"row": row_index, "split": split}
    elif trigger != L.START_TYPICAL and isinstance(start, dict) and start.get("model") in (None, found.name):
        request = start
    try:
        row, note, info = start_row(found, request, user=user)
    except InvalidInput as exc:
        row, _, info = start_row(found, {}, user=user)
        note = error_alert(str(exc) + " Started from a typical row instead.")
    meta = ev.slider_meta(found)
    # The explainer is built by the explanation callback, in parallel: the form does not wait for it.
    spec = L.spec(meta, row, model=found.name, version=found.number, start={"split": info["split"], "row": info["row"]})
    for feature in spec["features"]:
        feature["anchor"] = info["anchor"][feature["name"]]
    return L.controls(meta, row), spec, note


# -- posted values -----------------------------------------------------------------------------

def posted_row(found, slider_values, slider_ids, choice_values, choice_ids) -> dict:
    """Turn the posted control values into a validated row, or raise InvalidInput naming the problems."""
    meta = {m["name"]: m for m in ev.slider_meta(found)}
    row: dict = {}
    problems: list[str] = []
    for ids, values in ((slider_ids, slider_values), (choice_ids, choice_values)):
        if not isinstance(ids, list) or not isinstance(values, list) or len(ids) != len(values):
            raise InvalidInput("The form was posted in an unexpected shape; reload the page.")
        for control_id, value in zip(ids, values):
            name = control_id.get("feature") if isinstance(control_id, dict) else None
            if not isinstance(name, str) or name not in meta:
                problems.append(f"Unknown feature {str(name)[:40]!r}.")
                continue
            if name in row:
                problems.append(f"{name} was posted twice.")
                continue
            try:
                row[name] = L.value_of(meta[name], value)
            except ValueError as exc:
                problems.append(str(exc))
    if problems:
        raise InvalidInput(" ".join(problems[:6]))
    try:
        return ev.check_row(found, row)
    except ev.ExplainError as exc:
        raise InvalidInput(str(exc)) from None


# -- prediction ----------------------------------------------------------------------------------

def confidence_words(margin: float) -> str:
    """Return how sure a call with this top-minus-runner-up margin is (the probability chart's words)."""
    if margin < CLOSE_CALL:
        return "a close call"
    if margin < FAIRLY_CONFIDENT:
        return "fairly confident"
    return "confident"


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%"


def figure_key(found, prediction: dict) -> str:
    """Return what must match for a patch to apply to the drawn chart (model version and chart shape)."""
    if "value" in prediction:
        shape = "value+interval" if prediction.get("interval") else "value"
    elif prediction.get("proba") is None:
        shape = "no-proba"  # drawn anew every time (a text-only chart)
    else:
        shape = f"proba:{len(prediction['proba'])}"
    return f"{found.id}:{shape}"


def probability_patch(prediction: dict) -> Patch:
    """Return the changes that turn the drawn probability chart into the one for ``prediction``.

    The same bars, colours, texts and title as
    :func:`app.figures.explain.probability_figure` would draw.
    """
    patch = Patch()
    if "value" in prediction:
        value = float(prediction["value"])
        patch["data"][0]["x"] = [value]
        interval = prediction.get("interval")
        if interval is not None:
            lo, hi = float(interval[0]), float(interval[1])
            patch["data"][0]["error_x"]["array"] = [max(hi - value, 0.0)]
            patch["data"][0]["error_x"]["arrayminus"] = [max(value - lo, 0.0)]
        patch["layout"]["title"]["text"] = value_title(prediction)
        return patch
    classes = [str(c) for c in prediction["classes"]]
    p = np.asarray(prediction["proba"], dtype=float)
    winner = int(np.argmax(p))
    ranked = np.sort(p)[::-1]
    runner = float(ranked[1]) if len(p) > 1 else 0.0
    margin = float(ranked[0] - runner)
    patch["data"][0]["x"] = [float(v) for v in p]
    patch["data"][0]["text"] = [_pct(v) for v in p]
    patch["data"][0]["marker"]["color"] = [UP_COLOR if i == winner else MUTED_COLOR for i in range(len(p))]
    patch["layout"]["title"]["text"] = (f"Predicted: {classes[winner]}, {_pct(p[winner])} vs {_pct(runner)} - "
                                        f"{confidence_words(margin)}")
    return patch


def value_title(prediction: dict) -> str:
    """Return the title of a regression's chart: the value, its interval and how the interval was made.

    Values are written in full with thousands separators (the figure's own
    title would write 18,230 as 1.823e+04).
    """
    title = f"Predicted: {L.fmt(float(prediction['value']))}"
    interval = prediction.get("interval")
    if interval is not None:
        title += f" (interval {L.fmt(float(interval[0]))} to {L.fmt(float(interval[1]))})"
    method = prediction.get("interval_method") or "This model gives no uncertainty interval."
    return f"{title}<br><sup>{method}</sup>"


def _label(prediction: dict) -> str:
    if "value" in prediction:
        return L.fmt(float(prediction["value"]))
    if prediction.get("proba") is None:
        return str(prediction.get("predicted"))
    return f"{prediction['predicted']} {_pct(max(prediction['proba']))}"


def live_positions(drags: Any, values: Any) -> Any:
    """Return each slider's position now: where it is being dragged, else its committed value.

    A slider reports ``drag_value`` while the handle moves and ``value`` when
    it is released; ``drag_value`` is None until the first drag (and the
    browser's step back and reset set both).
    """
    if not isinstance(drags, list) or not isinstance(values, list) or len(drags) != len(values):
        return values
    return [value if drag is None else drag for drag, value in zip(drags, values)]


def predict(model, version, slider_values, slider_ids, choice_values, choice_ids, figkey, *, user,
            slider_drags: Any = None, committed: bool = True) -> tuple:
    """Answer one change of the form. Outputs: chart (figure or patch), chart key, verdict, values, message.

    Called live while a slider is dragged (``committed`` False: the chart and
    the verdict follow, the values store, which feeds the history, the JSON
    and the links, waits for the release).
    """
    try:
        found = _version(model, version, user)
        positions = live_positions(slider_drags, slider_values) if slider_drags is not None else slider_values
        row = posted_row(found, positions, slider_ids, choice_values, choice_ids)
    except InvalidInput as exc:
        return no_update, no_update, no_update, no_update, error_alert(str(exc))
    prediction = ev.predict(found, row)
    key = figure_key(found, prediction)
    if key == figkey and not key.endswith("no-proba"):
        chart = probability_patch(prediction)
    else:
        chart = probability_figure(prediction)
        if "value" in prediction:
            chart.update_layout(title_text=value_title(prediction))
    words = None
    if prediction.get("proba") is not None:
        ranked = sorted(prediction["proba"], reverse=True)
        words = confidence_words(ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0))
    values = {"values": row, "label": _label(prediction)} if committed else no_update
    return chart, key, L.verdict(prediction, words), values, None


def _committed(triggered: list) -> bool:
    """Return False when only dragging handles triggered the call (no release, no other change)."""
    props = [t.get("prop_id", "") for t in triggered or []]
    return any(p.endswith(".value") for p in props) or not any(p.endswith(".drag_value") for p in props)


# -- local explanation ------------------------------------------------------------------------------

def local(trigger, model, version, slider_values, slider_ids, choice_values, choice_ids, *, user) -> tuple:
    """Explain the current values. Outputs: contributions, note, explain-button style.

    Tree and linear models are explained on every change; a model that
    needs Kernel SHAP only when the button is pressed.
    """
    try:
        found = _version(model, version, user)
        row = posted_row(found, slider_values, slider_ids, choice_values, choice_ids)
    except InvalidInput as exc:
        return None, str(exc), L.HIDDEN
    method = ev.explainer_method(found)
    if method == "kernel" and trigger != L.EXPLAIN_GO:
        return (None, KERNEL_NOTE + " Values changed since the last explanation." if trigger else KERNEL_NOTE,
                {})
    explanation = ev.explain(found, row)
    note = (f"Exact {method} SHAP values; they add up to the prediction." if method != "kernel"
            else "Kernel SHAP estimate for the current values; it adds up to the prediction.")
    return L.contributions(explanation), note, ({} if method == "kernel" else L.HIDDEN)


def register(dash_app, policy) -> None:
    """Register the selector, the form builder, prediction, explanation and the browser-side helpers."""
    register_selector(policy, L.PREFIX, permission=PERMISSION, split=False)
    ids = SelectorIds(L.PREFIX)
    user = policy.current_user
    sliders = {"type": L.SLIDER, "feature": ALL}
    choices = {"type": L.CHOICE, "feature": ALL}

    policy.callback(Output(L.CONTROLS, "children"), Output(L.SPEC, "data"), Output(L.START_NOTE, "children"),
                    Input(ids.model, "value"), Input(ids.version, "value"), Input(L.START_TYPICAL, "n_clicks"),
                    Input(L.START_ROW_GO, "n_clicks"), State(L.START_ROW, "value"), State(L.START_SPLIT, "value"),
                    State(L.START, "data"), permission=PERMISSION)(
        lambda model, version, _a, _b, row, split, start: build(ctx.triggered_id, model, version, row, split,
                                                                 start, user=user()))

    policy.callback(Output(L.PROBA, "figure"), Output(L.FIGKEY, "data"), Output(L.VERDICT, "children"),
                    Output(L.VALUES, "data"), Output(L.MESSAGE, "children"),
                    Input(sliders, "drag_value"), Input(sliders, "value"), Input(choices, "value"),
                    State(sliders, "id"), State(choices, "id"),
                    State(ids.model, "value"), State(ids.version, "value"), State(L.FIGKEY, "data"),
                    prevent_initial_call=True, permission=PERMISSION)(
        lambda drags, sv, cv, sid, cid, model, version, key: predict(
            model, version, sv, sid, cv, cid, key, user=user(), slider_drags=drags,
            committed=_committed(ctx.triggered)))

    policy.callback(Output(L.LOCAL, "children"), Output(L.LOCAL_NOTE, "children"), Output(L.EXPLAIN_GO, "style"),
                    Input(sliders, "value"), Input(choices, "value"), Input(L.EXPLAIN_GO, "n_clicks"),
                    State(sliders, "id"), State(choices, "id"), State(ids.model, "value"), State(ids.version, "value"),
                    prevent_initial_call=True, permission=PERMISSION)(
        lambda sv, cv, _n, sid, cid, model, version: local(ctx.triggered_id, model, version, sv, sid, cv, cid,
                                                           user=user()))

    policy.clientside_callback(ClientsideFunction("whatif", "shown"), Output({"type": L.SHOWN, "feature": MATCH},
                                                                             "children"),
                               Input({"type": L.SLIDER, "feature": MATCH}, "drag_value"),
                               Input({"type": L.SLIDER, "feature": MATCH}, "value"),
                               State({"type": L.SLIDER, "feature": MATCH}, "id"), State(L.SPEC, "data"))
    policy.clientside_callback(ClientsideFunction("whatif", "record"), Output(L.HISTORY, "data"),
                               Input(L.VALUES, "data"), Input(L.SPEC, "data"), State(L.HISTORY, "data"))
    policy.clientside_callback(ClientsideFunction("whatif", "step"), Output(sliders, "value"),
                               Output(sliders, "drag_value"), Output(choices, "value"),
                               Output(L.HISTORY, "data", allow_duplicate=True),
                               Input(L.BACK, "n_clicks"), Input(L.RESET, "n_clicks"), State(L.HISTORY, "data"),
                               State(L.SPEC, "data"), State(sliders, "id"), State(choices, "id"),
                               prevent_initial_call=True)
    policy.clientside_callback(ClientsideFunction("whatif", "render"), Output(L.HISTORY_LIST, "children"),
                               Output(L.BACK, "disabled"), Output(L.JSON_TEXT, "children"),
                               Output(L.COPY, "content"), Output(L.EXPLAIN_LINK, "href"),
                               Input(L.HISTORY, "data"), Input(L.VALUES, "data"), State(L.SPEC, "data"))
