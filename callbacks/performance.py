"""Callbacks of the performance page: everything is read from the analysis cache.

While analyses are still computing the page shows their progress and polls
(a dcc.Interval that stops once everything the page reads is ready). A poll
that finds nothing new answers with ``no_update``.
"""

from __future__ import annotations

import functools
from typing import Any

import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback_context, dcc, html, no_update

from app.figures.common import empty_figure
from app.figures.confusion import legend_below, per_class_figure, sampled_title, svg_scatter, thin_curve
from app.figures.performance import (calibration_figure, confidence_figure, error_by_decile_figure, pr_figure,
                                     predicted_vs_actual_figure, residual_histogram_figure, residuals_figure,
                                     roc_figure, score_distribution_figure)
from app.security.permissions import Permission
from callbacks.model_select import register_selector, resolve
from callbacks.validate import InvalidInput, choice, error_alert
from data import views
from data.db import get_db
from data.registry import ModelVersion
from layouts import performance as L
from layouts.model_views import GRAPH_CONFIG, card, fmt, progress_block

SPLIT_NAMES = {"train": "Train", "test": "Test"}
#: Points per drawn ROC/PR curve (the cache keeps up to 2,000; AUC and AP use every row).
CURVE_POINTS = 500


def metrics_table(rows: list[dict], *, split_note: str | None = None) -> Any:
    """Return the train-vs-test table: plain-language meaning on hover, overfitting gaps highlighted."""
    head = html.Thead(html.Tr([html.Th("Metric"), html.Th("Train", className="text-end"),
                               html.Th("Test", className="text-end"),
                               html.Th("Gap (train \u2212 test)", className="text-end")]))
    body = []
    for r in rows:
        label = [r["label"], html.I(className="bi bi-info-circle ms-1 text-muted small", title=r["meaning"])]
        gap = "" if r["gap"] is None else f"{r['gap']:+.4f}"
        gap_cell = [html.I(className="bi bi-exclamation-triangle-fill text-warning me-1", title=r["note"]), gap] \
            if r["flag"] else gap
        body.append(html.Tr([
            html.Td(label, title=r["meaning"]),
            html.Td(fmt(r["train"], ".4f"), className="text-end font-monospace"),
            html.Td(fmt(r["test"], ".4f"), className="text-end font-monospace"),
            html.Td(gap_cell, className="text-end font-monospace" + (" table-warning fw-semibold" if r["flag"] else ""),
                    title=r["note"] or None),
        ], id=f"{L.METRICS_TABLE}-{r['key']}", className="gb-flagged" if r["flag"] else None))
    flags = [r for r in rows if r["flag"]]
    notes = []
    if flags:
        notes.append(dbc.Alert([html.I(className="bi bi-exclamation-triangle me-2"),
                                html.Strong("Possible overfitting. "),
                                html.Ul([html.Li(f"{r['label']}: {r['note']}") for r in flags], className="mb-0")],
                               color="warning", className="mt-2 mb-0 py-2", id=f"{L.METRICS_TABLE}-flags"))
    if split_note:
        notes.append(html.P(split_note, className="gb-help small text-muted mt-2 mb-0"))
    return html.Div([dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="mb-0",
                               id=L.METRICS_TABLE)] + notes)


def _graph(graph_id: str, fig) -> Any:
    return dcc.Graph(id=graph_id, figure=fig.to_plotly_json(), config=GRAPH_CONFIG)


def _roc(curve):
    return thin_curve(curve, keys=("fpr", "tpr"), max_points=CURVE_POINTS)


def _pr(curve):
    return thin_curve(curve, keys=("recall", "precision"), max_points=CURVE_POINTS)


def _why_missing(kind: str, ready: dict) -> str:
    failed = {f["kind"]: f["error"] for f in ready["failed"]}
    title = ready.get("titles", {}).get(kind, kind)
    if kind in failed:
        return f"{title} failed: {str(failed[kind])[:160]}"
    if kind in ready["waiting"]:
        return f"{title} is still being computed."
    return f"{title} was not computed for this version."


def _classifier(version: ModelVersion, payloads: dict, split: str, ready: dict) -> list:
    binary = version.task == "binary"
    out = []
    curves_split = payloads.get(f"curves_{split}")
    if binary:
        roc_in = {SPLIT_NAMES[s]: _roc((payloads.get(f"curves_{s}") or {}).get("roc")) for s in ("train", "test")}
        pr_in = {SPLIT_NAMES[s]: _pr((payloads.get(f"curves_{s}") or {}).get("pr")) for s in ("train", "test")}
        sweep_n = (payloads.get("curves_test") or {}).get("n")
        prevalence = None
        per_class = (payloads.get("metrics_test") or {}).get("per_class") or []
        pos = next((r for r in per_class if r["class"] == version.positive_class), None)
        if pos and sweep_n:
            prevalence = pos["support"] / sweep_n
        roc = roc_figure(roc_in) if any(roc_in.values()) else empty_figure(_why_missing("curves_test", ready),
                                                                             title="ROC curve")
        pr = pr_figure(pr_in, prevalence=prevalence) if any(pr_in.values()) else \
            empty_figure(_why_missing("curves_test", ready), title="Precision-recall curve")
    else:
        per = (curves_split or {}).get("per_class") or {}
        roc_in = {f"class {k}": _roc(v["roc"]) for k, v in per.items() if v}
        pr_in = {f"class {k}": _pr(v["pr"]) for k, v in per.items() if v}
        roc = roc_figure(roc_in) if roc_in else empty_figure(_why_missing(f"curves_{split}", ready),
                                                             title="ROC curve")
        pr = pr_figure(pr_in) if pr_in else empty_figure(_why_missing(f"curves_{split}", ready),
                                                         title="Precision-recall curve")
        if roc_in:
            roc.update_layout(title_text=f"ROC curve, each class against the rest ({split} data)")
        if pr_in:
            pr.update_layout(title_text=f"Precision-recall, each class against the rest ({split} data)")
    out.append(dbc.Row([dbc.Col(card(None, _graph(L.ROC, legend_below(roc)),
                                     help_text="Higher and further left is better; the diagonal is guessing."), lg=6),
                        dbc.Col(card(None, _graph(L.PR, legend_below(pr)),
                                     help_text="How precise the model stays as it catches more of the positives."),
                                lg=6)], className="g-3"))

    cal = payloads.get("calibration")
    if cal is None:
        cal_fig = empty_figure(_why_missing("calibration", ready), title="Calibration")
    elif binary:
        cal_fig = calibration_figure({SPLIT_NAMES[s]: cal.get(s) for s in ("train", "test")})
    else:
        cal_fig = calibration_figure({f"class {c}": d for c, d in (cal.get(split) or {}).items()})
        cal_fig.update_layout(title_text=f"Calibration, each class against the rest ({split} data)")
    dist = payloads.get("score_distributions")
    if dist is None:
        dist_fig = empty_figure(_why_missing("score_distributions", ready), title="Score distribution")
    elif binary:
        dist_fig = score_distribution_figure(dist.get(split) or {}, threshold=views.saved_threshold(version))
        dist_fig.update_layout(title_text=f"Score distribution by true class ({split} data)")
    else:
        dist_fig = confidence_figure((dist.get(split) or {}).get("confidence") or {})
    out.append(dbc.Row([
        dbc.Col(card(None, _graph(L.CALIBRATION, legend_below(cal_fig)),
                     help_text="On the diagonal, a predicted 70% means 70% of such rows really are positive."), lg=6),
        dbc.Col(card(None, _graph(L.SCORES, legend_below(dist_fig)),
                     help_text="Well separated humps mean the model tells the classes apart."
                     if binary else "A good model is rarely confident when it is wrong."), lg=6),
    ], className="g-3"))

    if not binary:
        report = (payloads.get(f"metrics_{split}") or {}).get("per_class") or []
        fig = per_class_figure(report, title=f"Precision, recall and F1 by class ({split} data)")
        head = html.Thead(html.Tr([html.Th("Class"), html.Th("Precision", className="text-end"),
                                   html.Th("Recall", className="text-end"), html.Th("F1", className="text-end"),
                                   html.Th("Rows", className="text-end")]))
        body = html.Tbody([html.Tr([html.Td(str(r["class"])), html.Td(fmt(r["precision"], ".3f"), className="text-end"),
                                    html.Td(fmt(r["recall"], ".3f"), className="text-end"),
                                    html.Td(fmt(r["f1"], ".3f"), className="text-end"),
                                    html.Td(f"{r['support']:,}", className="text-end")]) for r in report])
        out.append(card("Per-class report", dbc.Row([
            dbc.Col(_graph(L.PER_CLASS, fig), lg=7),
            dbc.Col(dbc.Table([head, body], size="sm", hover=True, id=L.PER_CLASS_TABLE), lg=5),
        ]), help_text="Recall of a class: of its rows, the share the model labelled correctly."))
    return out


def _regression(version: ModelVersion, payloads: dict, split: str, ready: dict) -> list:
    payload = payloads.get(f"metrics_{split}")
    if payload is None:
        why = _why_missing(f"metrics_{split}", ready)
        figs = [empty_figure(why, title=t) for t in ("Predicted vs actual", "Residuals vs predicted",
                                                    "Distribution of residuals", "Error by decile of predicted value")]
    else:
        points = payload.get("points") or {}
        y_true, y_pred = points.get("y_true") or [], points.get("y_pred") or []
        residuals = [a - b for a, b in zip(y_true, y_pred)]
        shown, total = int(points.get("sample_size") or len(y_true)), int(payload.get("n") or len(y_true))
        figs = [sampled_title(predicted_vs_actual_figure(y_true, y_pred), shown=shown, total=total),
                sampled_title(residuals_figure(y_pred, residuals), shown=shown, total=total),
                sampled_title(residual_histogram_figure(residuals), shown=shown, total=total),
                error_by_decile_figure(payload.get("residuals") or {})]
        for fig in figs:
            fig.update_layout(title_text=f"{fig.layout.title.text} \u2013 {split} data")
            fig.update_xaxes(title_font=dict(size=12))
            fig.update_yaxes(title_font=dict(size=12))
    ids = (L.PRED_ACTUAL, L.RESIDUALS, L.RESIDUAL_HIST, L.DECILES)
    helps = ("Points on the diagonal are perfect predictions.",
             "A pattern here (a curve, a funnel) means the errors depend on the prediction.",
             "Errors centred on zero and narrow are best.",
             "Where in the range of predictions the model misses most (computed on every row).")
    cols = [dbc.Col(card(None, _graph(i, svg_scatter(f)), help_text=h), lg=6) for i, f, h in zip(ids, figs, helps)]
    return [dbc.Row(cols[:2], className="g-3"), dbc.Row(cols[2:], className="g-3")]


@functools.lru_cache(maxsize=32)
def _body(db, version_id: int, storage_dir: str, split: str, signature: str) -> list:
    """Build the page body of one version and split (memoised per process: plotly figures are slow to build)."""
    with db.session() as s:
        version = s.get(ModelVersion, version_id)
        kinds = views.PERFORMANCE_KINDS[version.task]
        ready = views.readiness(s, version_id, kinds)
        payloads = views.results(s, version_id, kinds)
    train = (payloads.get("metrics_train") or {}).get("metrics")
    test = (payloads.get("metrics_test") or {}).get("metrics")
    rows = views.compare_metrics(train, test, version.task)
    note = None
    if version.task == "binary":
        saved = views.saved_threshold(version)
        note = ("Precision, recall, F1, accuracy and MCC are at the default threshold 0.5"
                + (f"; a threshold of {saved:.4g} is saved for this version" if version.threshold else "")
                + ". The threshold explorer shows them at any threshold.")
    sizes = f"{version.train_rows:,} train rows, {version.test_rows:,} test rows."
    table = metrics_table(rows, split_note=" ".join(p for p in (sizes, note) if p)) if rows else html.P(
        _why_missing("metrics_test", ready), className="gb-help")
    body = [card("Train and test side by side", table,
                 help_text="Hover a metric for what it means. A much better score on train than on test suggests "
                           "overfitting: the model learned the training rows by heart.")]
    body += _regression(version, payloads, split, ready) if version.task == "regression" else \
        _classifier(version, payloads, split, ready)
    return body


def update(model, version, split, n_intervals, signature, *, user, polled: bool = False):
    """Fill the page from the cache. Outputs: body, status, interval disabled, message, signature."""
    try:
        found = resolve(model, version, user=user, permission=Permission.VIEW_METRICS)
        split = choice(split, name="Data", options=("train", "test"))
    except InvalidInput as exc:
        if polled:
            return no_update, no_update, True, no_update, no_update
        return None, None, True, error_alert(str(exc)), None
    db = get_db()
    with db.session() as s:
        ready = views.readiness(s, found.id, views.PERFORMANCE_KINDS[found.task])
    saved = (found.threshold or {}).get("value") if isinstance(found.threshold, dict) else None
    key = f"{found.id}:{found.storage_dir}:{split}:{saved}:{','.join(sorted(ready['ready']))}:" \
          f"{','.join(sorted(f['kind'] for f in ready['failed']))}"
    status = progress_block(ready)
    computing = ready["state"] == "computing"
    if key == signature:
        return no_update, status, not computing, no_update, no_update
    return _body(db, found.id, found.storage_dir, split, key), status, not computing, None, key


def register(dash_app, policy) -> None:
    """Register the selector and the page callback (view metrics)."""
    register_selector(policy, L.PREFIX, permission=Permission.VIEW_METRICS)
    from layouts.model_select import SelectorIds

    ids = SelectorIds(L.PREFIX)

    def _update(model, version, split, n_intervals, signature):
        polled = callback_context.triggered_id == L.INTERVAL
        return update(model, version, split, n_intervals, signature, user=policy.current_user(), polled=polled)

    policy.callback(Output(L.BODY, "children"), Output(L.STATUS, "children"), Output(L.INTERVAL, "disabled"),
                    Output(L.MESSAGE, "children"), Output(L.SIGNATURE, "data"),
                    Input(ids.model, "value"), Input(ids.version, "value"), Input(ids.split, "value"),
                    Input(L.INTERVAL, "n_intervals"), State(L.SIGNATURE, "data"),
                    permission=Permission.VIEW_METRICS)(_update)
