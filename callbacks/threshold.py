"""Callbacks of the threshold explorer.

The server sends, once per model selection, the exact confusion counts at
every 0.01 threshold (train and test) and the ROC and PR figures; every
slider move is then answered in the browser (``assets/threshold.js``): it
draws the matrix, the bars and the table and patches the curve markers. The
server answers the rest: a value typed off the 0.01 grid (exact sweep),
costs, fairness, saving. The current threshold is the value of the exact
box (the browser keeps it in step with the slider).
"""

from __future__ import annotations

import functools
from typing import Any

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, callback_context, dcc, html, no_update

from app.audit import record_event
from app.figures.common import TEST_COLOR, TRAIN_COLOR
from app.figures.confusion import legend_below
from app.figures.performance import pr_figure, roc_figure
from app.figures.threshold import cost_curve_figure, fairness_figure
from app.ml.fairness import RATES
from app.ml.metrics import METRIC_INFO
from app.security.permissions import Permission
from callbacks.model_select import register_selector, resolve
from callbacks.validate import InvalidInput, choice, error_alert, number, text
from data import views
from data.db import get_db
from data.registry import MAX_REASON_LENGTH, ModelVersion, save_threshold
from layouts import threshold as L
from layouts.model_views import placeholder, progress_block

TASKS = ("binary",)
SPLIT_NAMES = {"train": "Train", "test": "Test"}
#: Metrics of the train-vs-test table (the browser renders it; labels and meanings come from here).
TABLE_KEYS = ("precision", "recall", "f1", "accuracy", "specificity", "mcc", "predicted_positive_rate")
#: Points per drawn ROC/PR curve (AUC and AP are computed on every row).
CURVE_POINTS = 300


def _version(model, version, user, permission=Permission.VIEW_METRICS) -> ModelVersion:
    return resolve(model, version, user=user, permission=permission, tasks=TASKS)


def _split(split) -> str:
    return choice(split, name="Data", options=("train", "test"))


def _threshold(current: Any) -> float:
    """Return the current threshold: the box's value (browser data: validated)."""
    value = current.get("t") if isinstance(current, dict) else current
    return number(value, name="Threshold", lo=0.0, hi=1.0)


def _key(version: ModelVersion) -> str:
    return f"{version.name}:{version.number}"


def saved_block(version: ModelVersion) -> Any:
    """Return the sentence about the version's saved threshold (who, when, why)."""
    saved = version.threshold if isinstance(version.threshold, dict) else None
    if not saved:
        return html.P(["No threshold is saved for ", html.Strong(version.label),
                       "; the other views use 0.5."], className="mb-2")
    when = str(saved.get("set_at", "")).replace("T", " ")
    return html.Div([
        html.Div([html.I(className="bi bi-bookmark-check me-2"), "Saved threshold ",
                  html.Strong(f"{saved.get('value', 0.5):.4g}", id=f"{L.SAVED}-value"),
                  f" for {version.label}, set by ", html.Strong(str(saved.get("set_by", "?"))),
                  f" on {when} UTC."]),
        html.Div(f"Reason: {saved.get('reason', '')}", className="gb-help small text-muted"),
    ], className="mb-2")


def _marker_indices(fig, names: list[str]) -> dict[str, int]:
    """Return {split: index of its operating-point trace} in a ROC or PR figure."""
    out = {}
    for i, trace in enumerate(fig.data):
        for split, label in SPLIT_NAMES.items():
            if split in names and (trace.name or "").startswith(f"{label} at "):
                out[split] = i
    return out


def _grid_payload(version: ModelVersion, sweeps: dict, curves: dict) -> dict:
    negative, positive = views.labels_of(version)
    best = {}
    for split, sweep in sweeps.items():
        best_f1 = (curves.get(split) or {}).get("best_f1") or sweep.best_f1_threshold()
        best[split] = best_f1
    info = {k: {"label": METRIC_INFO[k]["label"], "meaning": METRIC_INFO[k]["meaning"]} for k in TABLE_KEYS}
    return {"key": _key(version), "model": version.name, "version": version.number,
            "labels": [str(negative), str(positive)], "steps": views.GRID_STEPS,
            "splits": {s: views.threshold_grid(sw) for s, sw in sweeps.items()},
            "best_f1": best, "info": info, "order": list(TABLE_KEYS)}


def _build_figures(version: ModelVersion, sweeps: dict, curves: dict, split: str, t: float) -> dict:
    """Build the figures at threshold ``t`` (the browser patches them as the slider moves)."""
    roc_curves, pr_curves, roc_points, pr_points = {}, {}, {}, {}
    for s in ("train", "test"):
        payload = curves.get(s) or {}
        name = SPLIT_NAMES[s]
        ms = sweeps[s].metrics_at(t)
        # Redrawn on every slider move (to move the marker): few points keep that within a frame.
        roc_curves[name] = sweeps[s].roc_curve(max_points=CURVE_POINTS) if payload.get("roc") else None
        pr_curves[name] = sweeps[s].pr_curve(max_points=CURVE_POINTS) if payload.get("pr") else None
        roc_points[name] = {"fpr": ms["fpr"], "tpr": ms["recall"], "threshold": t}
        flagged = ms["tp"] + ms["fp"]
        pr_points[name] = {"recall": ms["recall"], "precision": ms["precision"] if flagged else None,
                           "threshold": t}
    test_sweep = sweeps["test"]
    roc = legend_below(roc_figure(roc_curves, operating_points=roc_points))
    pr = legend_below(pr_figure(pr_curves, operating_points=pr_points,
                                 prevalence=test_sweep.n_pos / test_sweep.n if test_sweep.n else None))
    # A PR marker is left out while nothing is flagged (precision undefined): add it so the browser can move it.
    colors = {"train": TRAIN_COLOR, "test": TEST_COLOR}
    present = [s for s in ("train", "test") if ((curves.get(s) or {}).get("pr") or {}).get("recall")]
    for s in present:
        if not any((tr.name or "").startswith(f"{SPLIT_NAMES[s]} at ") for tr in pr.data):
            pr.add_scatter(x=[None], y=[None], mode="markers+text", name=f"{SPLIT_NAMES[s]} at t = {t:.3g}",
                           text=[""], textposition="bottom right",
                           marker=dict(size=11, color=colors[s], line=dict(color="#000000", width=1.5)))
    roc_present = [s for s in ("train", "test") if ((curves.get(s) or {}).get("roc") or {}).get("fpr")]
    return {"roc": roc.to_plotly_json(), "pr": pr.to_plotly_json(),
            "markers": {"roc": _marker_indices(roc, roc_present), "pr": _marker_indices(pr, present)}}


class _NotReady(Exception):
    """The sweeps or curves are not in the cache yet (never memoised)."""


@functools.lru_cache(maxsize=32)
def _figures(db, version_id: int, storage_dir: str, split: str, t: float) -> dict:
    """Return the figures of one version, split and threshold (memoised per process: plotly is slow to build)."""
    with db.session() as s:
        version = s.get(ModelVersion, version_id)
        curves = views.results(s, version_id, ["curves_train", "curves_test"])
    sweeps = {sp: views.load_sweep(db, version, sp) for sp in ("train", "test")}
    if version is None or None in sweeps.values():
        raise _NotReady(version_id)
    return _build_figures(version, sweeps, {"train": curves["curves_train"], "test": curves["curves_test"]},
                          split, t)


def load_model(model, version, split, n_intervals, *, user, polled: bool = False):
    """Send the 0.01 grid, the figures and the saved threshold of the chosen model (or why not).

    Outputs: grid, note, ROC, PR, status, interval disabled, message, jump,
    saved block, saved store, group options, group value. The browser draws
    the matrix, bars and table from the grid.
    """
    skip = (no_update,) * 12
    try:
        found = _version(model, version, user)
        split = _split(split)
    except InvalidInput as exc:
        if polled:
            return skip[:5] + (True,) + skip[6:]
        empty = placeholder(str(exc))
        return (None, html.P(str(exc), className="gb-help"), empty, empty, None, True, error_alert(str(exc)),
                no_update, None, None, [], None)
    db = get_db()
    with db.session() as s:
        ready = views.readiness(s, found.id, views.THRESHOLD_KINDS)
        curves = {sp: views.results(s, found.id, [f"curves_{sp}"])[f"curves_{sp}"] for sp in ("train", "test")}
    sweeps = {sp: views.load_sweep(db, found, sp) for sp in ("train", "test")}
    status = progress_block(ready)
    computing = ready["state"] == "computing"
    if sweeps["test"] is None or sweeps["train"] is None or computing:
        if polled:
            return skip[:4] + (status, not computing) + skip[6:]
        why = ("The threshold sweep of this model is still being computed; this view fills in when it is ready."
               if computing else "The threshold sweep of this model is not available (see above).")
        empty = placeholder(why)
        groups = [{"label": g, "value": g} for g in found.group_columns or []]
        return (None, html.P(why, className="gb-help"), empty, empty, status, not computing, None, no_update,
                saved_block(found),
                views.saved_threshold(found), groups, groups[0]["value"] if groups else None)
    t = views.saved_threshold(found)
    try:
        figs = _figures(db, found.id, found.storage_dir, split, t)
    except _NotReady:
        return skip
    grid = _grid_payload(found, sweeps, curves)
    grid["markers"] = figs["markers"]
    groups = [{"label": g, "value": g} for g in found.group_columns or []]
    # The matrix, bars and table are drawn in the browser from the grid (the move callback runs on it).
    return (grid, None, figs["roc"], figs["pr"], status, True, None,
            {"t": t, "key": grid["key"], "source": "load"}, saved_block(found), t, groups,
            groups[0]["value"] if groups else None)


def exact_metrics(request, model, version, *, user) -> dict:
    """Answer a threshold off the 0.01 grid from the exact sweep: metrics for train and test."""
    t_raw = request.get("t") if isinstance(request, dict) else None
    try:
        found = _version(model, version, user)
        t = number(t_raw, name="Threshold", lo=0.0, hi=1.0)
    except InvalidInput as exc:
        return {"key": None, "t": t_raw if isinstance(t_raw, (int, float)) else None, "error": str(exc)}
    db = get_db()
    out = {"key": _key(found), "t": t}
    for split in ("train", "test"):
        sweep = views.load_sweep(db, found, split)
        if sweep is None:
            return {"key": _key(found), "t": t, "error": "The threshold sweep is still being computed."}
        out[split] = sweep.metrics_at(t)
    return out


def _costs(cost_fp, cost_fn) -> tuple[float, float]:
    fp = number(cost_fp, name="Cost of a false positive", lo=0.0, hi=L.MAX_COST)
    fn = number(cost_fn, name="Cost of a false negative", lo=0.0, hi=L.MAX_COST)
    if fp == 0 and fn == 0:
        raise InvalidInput("Enter a cost above zero for false positives, false negatives or both.")
    return fp, fn


def cost_curve(cost_fp, cost_fn, grid, split, current, model, version, *, user):
    """Expected cost per row at every threshold, the lowest-cost threshold, and where to patch the line.

    Outputs: cost figure, cost store, message.
    """
    title = "Expected cost per row by threshold"
    if not isinstance(grid, dict) or not grid.get("key"):
        return placeholder("Choose a model with a computed threshold sweep.", title=title), None, None
    try:
        found = _version(model, version, user)
        split = _split(split)
        fp, fn = _costs(cost_fp, cost_fn)
        t = _threshold(current) if current is not None else views.saved_threshold(found)
    except InvalidInput as exc:
        return no_update, no_update, error_alert(str(exc))
    try:
        fig, optimum, shape, annotation = _cost_figure(get_db(), found.id, found.storage_dir, split, fp, fn, t)
    except _NotReady:
        return placeholder("The threshold sweep is still being computed.", title=title), None, None
    store = {"key": _key(found), "split": split, "optimum": optimum, "shape": shape, "annotation": annotation,
             "cost_fp": fp, "cost_fn": fn}
    message = html.Span([f"Lowest expected cost on the {split} data: ",
                         html.Strong(f"{optimum['cost']:.4g} per row"),
                         f" at threshold {optimum['threshold']:.4g}."], className="small")
    return fig, store, message


@functools.lru_cache(maxsize=32)
def _cost_figure(db, version_id: int, storage_dir: str, split: str, fp: float, fn: float, t: float):
    """Return (figure, optimum, shape index, annotation index) of the line the browser moves (memoised)."""
    with db.session() as s:
        version = s.get(ModelVersion, version_id)
    sweep = views.load_sweep(db, version, split) if version is not None else None
    if sweep is None:
        raise _NotReady(version_id)
    curve = sweep.expected_cost_curve(cost_fp=fp, cost_fn=fn)
    optimum = sweep.cost_optimal_threshold(cost_fp=fp, cost_fn=fn)
    fig = cost_curve_figure(curve, threshold=t, optimum=optimum)
    shape = 0 if fig.layout.shapes else None
    annotation = next((i for i, a in enumerate(fig.layout.annotations or ())
                       if str(a.text or "").startswith("threshold ")), None)
    return fig.to_plotly_json(), optimum, shape, annotation


@functools.lru_cache(maxsize=32)
def _fairness(db, version_id: int, storage_dir: str, split: str, column: str, t: float):
    """Return (figure, group rates) at one threshold (memoised: plotly figures are slow to build)."""
    with db.session() as s:
        version = s.get(ModelVersion, version_id)
    result = views.fairness(version, split, column, threshold=t)
    return fairness_figure(result).to_plotly_json(), result


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


_MD_SPECIAL = "\\`*_{}[]()#+-.!|<>"


def md_text(value: Any) -> str:
    """Return ``value`` as Markdown text that renders literally (group names come from the data)."""
    text = " ".join(str(value).split())
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)


def md_table(header: list[str], rows: list[list[str]], *, table_id: str, total_row: bool = False) -> Any:
    """Return a Markdown table (one component, however many rows: see assets/threshold.js on why that matters)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return dcc.Markdown("\n".join(lines), id=table_id, className="gb-md-table" + (" gb-md-total" if total_row else ""))


def fairness_table(result: dict) -> Any:
    """Return the per-group table; the rates of the two groups behind each flagged gap are marked."""
    flagged = set(result.get("flagged", []))
    labels = {"selection_rate": "Selection rate", "tpr": "TPR", "fpr": "FPR", "precision": "Precision"}
    header = ["Group", "Rows", "Positives"] + [labels[r] + (" \u26a0" if r in flagged else "") for r in RATES]
    rows = []
    for g in result["groups"]:
        cells = [md_text(g["group"]), f"{g['size']:,}", f"{g['n_pos']:,}"]
        for r in RATES:
            gap = result["gaps"].get(r, {})
            extreme = r in flagged and g["group"] in (gap.get("high_group"), gap.get("low_group"))
            cells.append(f"**{_pct(g[r])}** \u26a0" if extreme else _pct(g[r]))
        rows.append(cells)
    gaps = ["**Largest gap**", "", ""]
    for r in RATES:
        gap = result["gaps"].get(r, {}).get("gap")
        gaps.append("n/a" if gap is None else (f"**{gap:.1%}**" if r in flagged else f"{gap:.1%}"))
    rows.append(gaps)
    note = (f"Gaps over {result['gap_tolerance']:.0%} are flagged (\u26a0): "
            + (", ".join(labels[r] for r in RATES if r in flagged) if flagged else "none") + ". "
            + "TPR: share of a group's positives caught; FPR: share of its negatives wrongly flagged.")
    return html.Div([md_table(header, rows, table_id=f"{L.FAIR_TABLE}-rates", total_row=True),
                     html.P(note, className="gb-help small text-muted mb-0")])


def fairness_at(n_clicks, column, current, model, version, split, *, user):
    """Rates per group at the current threshold. Outputs: figure, table, store, message."""
    title = "Rates by group"
    try:
        found = _version(model, version, user)
        split = _split(split)
        t = views.saved_threshold(found) if current is None else _threshold(current)
        if column is None:
            return (placeholder("This model has no group column to compare." if not found.group_columns
                                else "Choose a group column.", title=title), None, None, None)
        column = choice(column, name="Group column", options=found.group_columns or [])
    except InvalidInput as exc:
        return no_update, no_update, no_update, error_alert(str(exc))
    try:
        figure, result = _fairness(get_db(), found.id, found.storage_dir, split, column, t)
    except (views.ViewError, ValueError) as exc:
        return no_update, no_update, no_update, error_alert(str(exc))
    store = {"key": _key(found), "t": t, "column": column, "split": split}
    return figure, fairness_table(result), store, None


def equalise(n_clicks, column, target, current, model, version, split, *, user):
    """Per-group thresholds that reach the same TPR (the overall TPR at the current threshold by default)."""
    if not n_clicks:
        return no_update
    try:
        found = _version(model, version, user)
        split = _split(split)
        column = choice(column, name="Group column", options=found.group_columns or [])
        if target in (None, ""):
            sweep = views.load_sweep(get_db(), found, split)
            if sweep is None:
                raise InvalidInput("The threshold sweep is still being computed.")
            target = sweep.metrics_at(_threshold(current))["recall"]
            if target <= 0:
                raise InvalidInput("Nothing is caught at the current threshold; enter a target TPR above 0.")
        target = number(target, name="Target TPR", lo=0.0, hi=1.0)
        if target <= 0:
            raise InvalidInput("The target TPR must be above 0.")
        rows = views.equalised_tpr(found, split, column, target_tpr=target)
    except (InvalidInput, views.ViewError, ValueError) as exc:
        return error_alert(str(exc))
    body = [[md_text(r["group"]), "no positive rows" if r["threshold"] is None else f"{r['threshold']:.4f}",
             _pct(r["tpr"]), f"{r['n_pos']:,}"] for r in rows]
    return html.Div([
        html.P(f"Thresholds per group that catch at least {target:.1%} of each group's positives "
               f"({split} data). Using different thresholds per group is a policy decision: check it with "
               "your legal and ethics advisers before using it.", className="small mb-1"),
        md_table(["Group", "Threshold", "TPR reached", "Positives"], body, table_id=f"{L.EQ_TABLE}-rows"),
    ])


def save(n_clicks, model, version, current, reason, *, user):
    """Save the current threshold with a reason (audited). Outputs: saved block, saved store, message."""
    if not n_clicks:
        return no_update, no_update, no_update
    try:
        found = _version(model, version, user, permission=Permission.SET_THRESHOLD)
        t = _threshold(current)
        reason = text(reason, name="Reason", max_length=MAX_REASON_LENGTH, required=True)
    except InvalidInput as exc:
        record_event("threshold.save", target=str(model)[:120], outcome="failure", detail=str(exc)[:300])
        return no_update, no_update, error_alert(str(exc))
    with get_db().session() as s:
        try:
            saved = save_threshold(s, found.id, value=t, reason=reason, set_by=user.username)
        except ValueError as exc:
            return no_update, no_update, error_alert(str(exc))
        version_row = s.get(ModelVersion, found.id)
        block = saved_block(version_row)
    record_event("threshold.save", target=found.label, detail=f"threshold {t:.6g}; reason: {reason[:300]}")
    message = dbc.Alert(f"Saved threshold {t:.4g} for {found.label}.", color="success", className="py-2 mb-0",
                        duration=6000)
    return block, saved["value"], message


def register(dash_app, policy) -> None:
    """Register the explorer: the selector, server callbacks, and the browser-only slider callbacks."""
    register_selector(policy, L.PREFIX, permission=Permission.VIEW_METRICS, tasks=TASKS)
    from layouts.model_select import SelectorIds

    ids = SelectorIds(L.PREFIX)

    def _load(model, version, split, n_intervals):
        polled = callback_context.triggered_id == L.INTERVAL
        return load_model(model, version, split, n_intervals, user=policy.current_user(), polled=polled)

    policy.callback(
        Output(L.GRID, "data"), Output(L.NOTE, "children"), Output(L.ROC, "figure"),
        Output(L.PR, "figure"), Output(L.STATUS, "children"), Output(L.INTERVAL, "disabled"),
        Output(L.MESSAGE, "children"), Output(L.JUMP, "data"), Output(L.SAVED, "children"),
        Output(L.SAVED_STORE, "data"), Output(L.FAIR_COLUMN, "options"), Output(L.FAIR_COLUMN, "value"),
        Input(ids.model, "value"), Input(ids.version, "value"), State(ids.split, "value"),
        Input(L.INTERVAL, "n_intervals"),
        permission=Permission.VIEW_METRICS)(_load)

    def _exact(request, model, version):
        return exact_metrics(request, model, version, user=policy.current_user())

    policy.callback(Output(L.EXACT, "data"), Input(L.EXACT_REQUEST, "data"), State(ids.model, "value"),
                    State(ids.version, "value"), prevent_initial_call=True,
                    permission=Permission.VIEW_METRICS)(_exact)

    def _cost(cost_fp, cost_fn, grid, split, current, model, version):
        return cost_curve(cost_fp, cost_fn, grid, split, current, model, version, user=policy.current_user())

    policy.callback(Output(L.COST_GRAPH, "figure"), Output(L.COST_STORE, "data"), Output(L.COST_MESSAGE, "children"),
                    Input(L.COST_FP, "value"), Input(L.COST_FN, "value"), Input(L.GRID, "data"),
                    Input(ids.split, "value"), State(L.BOX, "value"), State(ids.model, "value"),
                    State(ids.version, "value"), prevent_initial_call=True,
                    permission=Permission.VIEW_METRICS)(_cost)

    def _fair(n_clicks, column, current, model, version, split):
        return fairness_at(n_clicks, column, current, model, version, split, user=policy.current_user())

    policy.callback(Output(L.FAIR_GRAPH, "figure"), Output(L.FAIR_TABLE, "children"), Output(L.FAIR_STORE, "data"),
                    Output(L.FAIR_MESSAGE, "children"),
                    Input(L.FAIR_BUTTON, "n_clicks"), Input(L.FAIR_COLUMN, "value"), State(L.BOX, "value"),
                    State(ids.model, "value"), State(ids.version, "value"), Input(ids.split, "value"),
                    prevent_initial_call=True, permission=Permission.VIEW_METRICS)(_fair)

    def _equalise(n_clicks, column, target, current, model, version, split):
        return equalise(n_clicks, column, target, current, model, version, split, user=policy.current_user())

    policy.callback(Output(L.EQ_TABLE, "children"), Input(L.EQ_BUTTON, "n_clicks"), State(L.FAIR_COLUMN, "value"),
                    State(L.EQ_TARGET, "value"), State(L.BOX, "value"), State(ids.model, "value"),
                    State(ids.version, "value"), State(ids.split, "value"), prevent_initial_call=True,
                    permission=Permission.VIEW_METRICS)(_equalise)

    def _save(n_clicks, model, version, current, reason):
        return save(n_clicks, model, version, current, reason, user=policy.current_user())

    policy.callback(Output(L.SAVED, "children", allow_duplicate=True),
                    Output(L.SAVED_STORE, "data", allow_duplicate=True), Output(L.SAVE_MESSAGE, "children"),
                    Input(L.SAVE, "n_clicks"), State(ids.model, "value"), State(ids.version, "value"),
                    State(L.BOX, "value"), State(L.REASON, "value"), prevent_initial_call=True,
                    permission=Permission.SET_THRESHOLD)(_save)

    ns = "glassbox_threshold"
    # One browser-only callback per slider move: a move costs one pass of the renderer and no request.
    policy.clientside_callback(
        ClientsideFunction(ns, "move"),
        Output(L.SLIDER, "value"), Output(L.BOX, "value"), Output(L.EXACT_REQUEST, "data"),
        Input(L.SLIDER, "value"), Input(L.BOX, "value"), Input(L.JUMP, "data"), Input(L.GRID, "data"),
        Input(ids.split, "value"), Input(L.COST_STORE, "data"), Input(L.FAIR_STORE, "data"), State(L.EXACT, "data"),
        prevent_initial_call=True)
    policy.clientside_callback(
        ClientsideFunction(ns, "exactAnswer"), Output(L.DRAWN, "data"),
        Input(L.EXACT, "data"), State(L.GRID, "data"), State(ids.split, "value"), State(L.BOX, "value"),
        State(L.DRAWN, "data"), prevent_initial_call=True)
    policy.clientside_callback(
        ClientsideFunction(ns, "jump"),
        Output(L.JUMP, "data", allow_duplicate=True),
        Input(L.JUMP_DEFAULT, "n_clicks"), Input(L.JUMP_F1, "n_clicks"), Input(L.JUMP_COST, "n_clicks"),
        Input(L.JUMP_SAVED, "n_clicks"), State(L.GRID, "data"), State(L.COST_STORE, "data"),
        State(L.SAVED_STORE, "data"), State(ids.split, "value"), prevent_initial_call=True)
