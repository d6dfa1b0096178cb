"""Callbacks of the explain page.

Every callback needs 'view feature influence' on the model. A row chosen by
its number is row-level data: the explanation callback then also checks
'view row-level data' on the model and answers with a message without it;
the mistakes list and the nearest rows serve only row-level data, so they are
registered with that permission (the gate refuses a user who has it on no
model) and check it on the model too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from dash import ALL, Input, Output, State, ctx, no_update

from app.figures.explain import counterfactual_table, waterfall_figure
from app.security.permissions import Permission
from callbacks.model_select import register_selector, resolve, url_search
from callbacks.validate import InvalidInput, choice, error_alert, number
from data import explain_views as ev
from layouts import explain as L
from layouts.model_select import SelectorIds
from layouts.model_views import placeholder

PERMISSION = Permission.VIEW_INFLUENCE
ROWS = Permission.VIEW_ROWS
#: parse_query keeps 500 characters of a query value; a longer ?values= would arrive cut.
MAX_LINK_VALUES = 480
ANY_OTHER = "__any__"
SOURCES = ("index", "values", "typical")


def _version(model, version, user):
    return resolve(model, version, user=user, permission=PERMISSION)


def _rows_allowed(found, user) -> None:
    if not user.can(ROWS, model=found.name):
        raise InvalidInput(f"Rows of the data of '{found.name}' need the permission '{ROWS.label}' on it. "
                           "You can still explain values you enter yourself.")


def _split(value) -> str:
    return choice(value, name="Data", options=["train", "test"])


# -- which row -----------------------------------------------------------------------------

def choose(trigger, clicked, index, split, value_ids, values, model) -> Any:
    """Return the new row request for the button that was pressed (no_update for a stray trigger)."""
    if not clicked:
        return no_update
    split = split if split in ("train", "test") else "test"
    if trigger == L.TYPICAL_GO:
        return {"model": model, "split": split, "source": "typical"}
    if trigger == L.INDEX_GO:
        return {"model": model, "split": split, "source": "index", "row": index}
    if trigger == L.VALUES_GO:
        ids = value_ids if isinstance(value_ids, list) else []
        entered = {i.get("feature"): v for i, v in zip(ids, values if isinstance(values, list) else [])
                   if isinstance(i, dict)}
        return {"model": model, "split": split, "source": "values", "values": entered, "base_row": None}
    if isinstance(trigger, dict) and trigger.get("type") == L.MISTAKE:
        return {"model": model, "split": split, "source": "index", "row": trigger.get("row")}
    return no_update


def row_for(request: Any, found, *, user) -> tuple[dict, dict]:
    """Return (clean row, info) for a row request, checking row-level access; raise InvalidInput.

    ``info`` has ``source``, ``label``, ``split`` and, for a row of the data,
    ``index`` and ``true``.
    """
    if not isinstance(request, dict) or request.get("source") not in SOURCES:
        request = {"source": "typical"}
    if request.get("model") not in (None, found.name):
        request = {"source": "typical"}  # a row of another model: start again from a typical row
    split = request.get("split") if request.get("split") in ("train", "test") else "test"
    try:
        if request["source"] == "index":
            _rows_allowed(found, user)
            index = ev.check_index(found, split, request.get("row"))
            row = ev.split_row(found, split, index)
            return row, {"source": "index", "split": split, "index": index, "true": ev.true_value(found, split, index),
                         "label": f"Row {index} of the {split} data"}
        if request["source"] == "values":
            entered = ev.parse_values(request.get("values"))
            base_row = request.get("base_row")
            if base_row is not None:
                _rows_allowed(found, user)
                index = ev.check_index(found, split, base_row)
                base = ev.split_row(found, split, index)
                label = f"Row {index} of the {split} data with the values you entered"
            else:
                base, label, index = ev.typical_row(found), "Values you entered", None
            row = ev.check_row(found, {**base, **entered})
            info = {"source": "values", "split": split, "label": label}
            if index is not None:
                info["base_index"] = index
            return row, info
    except ev.ExplainError as exc:
        raise InvalidInput(str(exc)) from None
    return ev.typical_row(found), {"source": "typical", "split": split,
                                   "label": "A typical row: the median of each number and the most common "
                                            "category in the training data"}


def whatif_href(found, row: dict, info: dict) -> str | None:
    """Return the what-if link that starts from ``row`` (values relative to its base), or None if too long."""
    params: dict[str, Any] = {"model": found.name, "version": found.number}
    if info.get("source") == "index" or info.get("base_index") is not None:
        index = info.get("index", info.get("base_index"))
        base = ev.split_row(found, info["split"], index)
        params.update(split=info["split"], row=index)
    else:
        base = ev.typical_row(found)
    diff = ev.values_diff(row, base)
    if diff:
        text = ev.compact_json(diff)
        if len(text) > MAX_LINK_VALUES:
            return None
        params["values"] = text
    return "/what-if?" + urlencode(params)


def _threshold_note(found, prediction: dict) -> str:
    saved = found.threshold.get("value") if isinstance(found.threshold, dict) else None
    if found.task != "binary" or not isinstance(saved, (int, float)) or prediction.get("proba") is None:
        return ""
    classes = [str(c) for c in prediction["classes"]]
    p = prediction["proba"][classes.index(str(found.positive_class))]
    answer = found.positive_class if p >= saved else next(c for c in prediction["classes"]
                                                          if str(c) != str(found.positive_class))
    return (f"At the saved threshold {saved:.2f} (instead of 0.5) the model answers {answer}: "
            f"P({found.positive_class}) = {pct(p)}.")


def pct(p: float) -> str:
    return f"{100 * p:.0f}%"


def explain_row(request, model, version, *, user) -> tuple:
    """Explain the requested row.

    Outputs: summary, row table, explanation store, message, what-if link,
    lock options, lock value, class options, class value, class row style,
    target value, target row style, URL search.
    """
    try:
        found = _version(model, version, user)
        row, info = row_for(request, found, user=user)
    except InvalidInput as exc:
        return (None, None, None, error_alert(str(exc)), "/what-if", [], [], [], None, L.HIDDEN, None, L.HIDDEN,
                no_update)
    prediction = ev.predict(found, row)
    explanation = ev.explain(found, row)
    explanation["task"] = found.task
    summary = L.summary(info, prediction, threshold_note=_threshold_note(found, prediction))
    href = whatif_href(found, row, info) or f"/what-if?{urlencode({'model': found.name, 'version': found.number})}"
    locks = [{"label": name, "value": name} for name in found.features]
    if found.task == "multiclass":
        classes = [{"label": f"any class but {prediction['predicted']}", "value": ANY_OTHER}] + [
            {"label": str(c), "value": c} for c in prediction["classes"] if c != prediction["predicted"]]
        class_out = (classes, ANY_OTHER, {})
    else:
        class_out = ([], None, L.HIDDEN)
    if found.task == "regression":
        value = prediction["value"]
        target_out = (float(f"{value * 1.1 if value else 1.0:.4g}"), {})
    else:
        target_out = (None, L.HIDDEN)
    search = url_search(found.name, found.number, info["split"])
    if info["source"] == "index":
        search += f"&row={info['index']}"
    return (summary, L.row_table(row), explanation, None, href, locks, [], *class_out, *target_out, search)


def draw_waterfall(explanation, top_k) -> Any:
    """Return the waterfall figure of a stored explanation."""
    try:
        top_k = number(top_k, name="Contributions shown", lo=L.TOP_K_RANGE[0], hi=L.TOP_K_RANGE[1], integer=True)
    except InvalidInput as exc:
        return placeholder(str(exc), title="Why this prediction")
    if not _valid_explanation(explanation):
        return placeholder("Choose a row above.", title="Why this prediction")
    return waterfall_figure(explanation, top_k=top_k)


def _valid_explanation(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    features, values, data = value.get("features"), value.get("values"), value.get("data")
    if not isinstance(features, list) or not isinstance(values, list) or len(features) != len(values) or not features:
        return False
    if data is not None and (not isinstance(data, list) or len(data) != len(features)):
        return False
    numbers = values + [value.get("base_value"), value.get("output")]
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)


# -- row-level lists ------------------------------------------------------------------------

def mistakes(model, version, split, *, user) -> Any:
    """Return the list of most confident mistakes (largest errors for a regression)."""
    if not model:
        return L.waiting()
    try:
        found = _version(model, version, user)
        split = _split(split)
        _rows_allowed(found, user)
    except InvalidInput as exc:
        return error_alert(str(exc))
    if found.task == "regression":
        items = ev.largest_errors(found, split)
    else:
        items = ev.confident_mistakes(found, split)
    return L.mistakes_list(items, task=found.task, split=split)


def nearest(request, model, version, split, *, user) -> Any:
    """Return the rows of the chosen data nearest to the explained row, with their true labels."""
    if not model:
        return L.waiting()
    try:
        found = _version(model, version, user)
        split = _split(split)
        _rows_allowed(found, user)
        row, info = row_for(request, found, user=user)
    except InvalidInput as exc:
        return error_alert(str(exc))
    exclude = info.get("index") if info.get("split") == split else None
    items = ev.nearest(found, split, row, exclude_index=exclude)
    return L.nearest_table(items, row, task=found.task, split=split)


def values_form(model, version, *, user) -> Any:
    """Return the form of feature values, prefilled with the typical row."""
    if not model:
        return L.waiting()
    try:
        found = _version(model, version, user)
    except InvalidInput as exc:
        return error_alert(str(exc))
    return L.values_form(ev.reference_meta(found), ev.typical_row(found))


# -- counterfactual -------------------------------------------------------------------------

def counterfactual(trigger, request, model, version, locks, desired, target, *, user) -> tuple:
    """Find the smallest change that alters the answer. Outputs: result, message, apply link, link style."""
    if trigger != L.CF_GO:
        return None, None, "/what-if", L.HIDDEN  # a new row: the old answer no longer applies
    try:
        found = _version(model, version, user)
        row, info = row_for(request, found, user=user)
        locks = [choice(f, name="Locked feature", options=list(found.features))
                 for f in (locks if isinstance(locks, list) else [])]
        options: dict[str, Any] = {}
        if found.task == "regression":
            options["target_value"] = number(target, name="Prediction to reach", lo=-1e15, hi=1e15)
        elif found.task == "multiclass" and desired not in (None, ANY_OTHER):
            options["desired_class"] = choice(desired, name="Class to reach", options=list(found.classes or []))
        result = ev.counterfactual(found, row, locked=locks, **options)
    except (InvalidInput, ev.ExplainError) as exc:
        return None, error_alert(str(exc)), "/what-if", L.HIDDEN
    block = L.counterfactual_block(result, counterfactual_table(result))
    if not result["changes"]:
        return block, None, "/what-if", L.HIDDEN
    href = whatif_href(found, result["counterfactual"], info)
    if href is None:
        return block, error_alert("This counterfactual changes too many values to carry in a link; "
                                  "set them in the what-if form by hand."), "/what-if", L.HIDDEN
    return block, None, href, {}


def register(dash_app, policy) -> None:
    """Register the selector, row choice, explanation, waterfall, counterfactual and the row lists."""
    register_selector(policy, L.PREFIX, permission=PERMISSION, split=True)
    ids = SelectorIds(L.PREFIX)
    user = policy.current_user

    def _choose(*args):
        trigger = ctx.triggered_id
        clicked = ctx.triggered[0]["value"] if ctx.triggered else None
        return choose(trigger, clicked, *args)

    policy.callback(Output(L.REQUEST, "data"),
                    Input(L.INDEX_GO, "n_clicks"), Input(L.TYPICAL_GO, "n_clicks"), Input(L.VALUES_GO, "n_clicks"),
                    Input({"type": L.MISTAKE, "row": ALL}, "n_clicks"),
                    State(L.INDEX, "value"), State(ids.split, "value"),
                    State({"type": L.VALUE, "feature": ALL}, "id"), State({"type": L.VALUE, "feature": ALL}, "value"),
                    State(ids.model, "value"),
                    prevent_initial_call=True, permission=PERMISSION)(
        lambda _a, _b, _c, _d, index, split, value_ids, values, model: _choose(index, split, value_ids, values,
                                                                               model))

    policy.callback(Output(L.SUMMARY, "children"), Output(L.ROW_TABLE, "children"),
                    Output(L.EXPLANATION, "data"), Output(L.MESSAGE, "children"),
                    Output(L.WHATIF_LINK, "href"), Output(L.LOCKS, "options"), Output(L.LOCKS, "value"),
                    Output(L.DESIRED, "options"), Output(L.DESIRED, "value"), Output(L.DESIRED_ROW, "style"),
                    Output(L.TARGET, "value"), Output(L.TARGET_ROW, "style"),
                    Output(ids.url, "search", allow_duplicate=True),
                    Input(L.REQUEST, "data"), Input(ids.model, "value"), Input(ids.version, "value"),
                    prevent_initial_call=True, permission=PERMISSION)(
        lambda request, model, version: explain_row(request, model, version, user=user()))

    policy.callback(Output(L.WATERFALL, "figure"), Input(L.EXPLANATION, "data"), Input(L.TOP_K, "value"),
                    permission=PERMISSION)(draw_waterfall)

    policy.callback(Output(L.VALUES_FORM, "children"), Input(ids.model, "value"), Input(ids.version, "value"),
                    permission=PERMISSION)(lambda model, version: values_form(model, version, user=user()))

    policy.callback(Output(L.MISTAKES, "children"), Input(ids.model, "value"), Input(ids.version, "value"),
                    Input(ids.split, "value"), permission=ROWS)(
        lambda model, version, split: mistakes(model, version, split, user=user()))

    policy.callback(Output(L.NEAREST, "children"), Input(L.REQUEST, "data"), Input(ids.model, "value"),
                    Input(ids.version, "value"), Input(ids.split, "value"), permission=ROWS)(
        lambda request, model, version, split: nearest(request, model, version, split, user=user()))

    policy.callback(Output(L.CF_RESULT, "children"), Output(L.CF_MESSAGE, "children"), Output(L.CF_APPLY, "href"),
                    Output(L.CF_APPLY, "style"),
                    Input(L.CF_GO, "n_clicks"), Input(L.REQUEST, "data"), State(ids.model, "value"),
                    State(ids.version, "value"), State(L.LOCKS, "value"), State(L.DESIRED, "value"),
                    State(L.TARGET, "value"), prevent_initial_call=True, permission=PERMISSION)(
        lambda _clicks, request, model, version, locks, desired, target: counterfactual(
            ctx.triggered_id, request, model, version, locks, desired, target, user=user()))
