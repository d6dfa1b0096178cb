"""Figures for one prediction: SHAP waterfall, class probabilities, counterfactual table."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.figures.common import PALETTE, empty_figure, style
from app.figures.influence import fmt

UP_COLOR = PALETTE["blue"]
DOWN_COLOR = PALETTE["vermillion"]
TOTAL_COLOR = PALETTE["grey"]
MUTED_COLOR = "#C8C8C8"
#: Margins (top minus runner-up probability) below which a call is "close" / only "fairly" confident.
CLOSE_CALL = 0.10
FAIRLY_CONFIDENT = 0.40

_SPACE_LABEL = {"probability": "Predicted probability", "log-odds": "Log-odds", "raw": "Model output"}


def _default_output_label(row: Mapping) -> str:
    space = row.get("output_space") or "raw"
    target = row.get("target_label")
    if space == "raw" and target is None:
        return "Prediction"
    label = _SPACE_LABEL.get(space, "Model output")
    return f"{label} of {target}" if target is not None else label


def waterfall_figure(explanation_row: Mapping | None, *, top_k: int = 10, feature_values: Mapping | None = None,
                     output_label: str | None = None) -> go.Figure:
    """SHAP waterfall from the base value to the prediction for one row.

    ``explanation_row`` is ``app.ml.explain.row_explanation(...)`` (or any
    dict with ``features``, ``values``, ``base_value``, ``output`` and
    optionally ``data``). The ``top_k`` largest contributions are shown as
    "feature = value"; the rest are grouped as "N other features".
    ``feature_values`` overrides the shown values (name -> display value).
    """
    title = "Why this prediction"
    if not explanation_row or not explanation_row.get("features"):
        return empty_figure("No explanation has been computed for this row.", title=title)
    features = list(explanation_row["features"])
    values = np.asarray(explanation_row["values"], dtype=float)
    data = explanation_row.get("data")
    if values.ndim == 2:  # a whole explain_rows result: show its first row
        explanation_row = dict(explanation_row, base_value=np.ravel(explanation_row.get(
            "base_values", explanation_row["base_value"]))[0], output=np.ravel(explanation_row["output"])[0],
            target_label=np.ravel(explanation_row.get("target_label") or [None])[0])
        values = values[0]
        data = data[0] if data else None
    data = list(data or [None] * len(features))
    shown = dict(zip(features, data))
    if feature_values:
        shown.update(feature_values)
    base = float(explanation_row["base_value"])
    output = float(explanation_row.get("output", base + values.sum()))
    label = output_label or _default_output_label(explanation_row)
    order = np.argsort(-np.abs(values), kind="stable")
    top = order[: max(int(top_k), 1)]
    rest = order[len(top):]
    names = ["Average prediction (base value)"]
    measures = ["absolute"]
    amounts = [base]
    for i in top:
        value = shown.get(features[i])
        names.append(f"{features[i]} = {fmt(value)}" if value is not None else str(features[i]))
        measures.append("relative")
        amounts.append(float(values[i]))
    if len(rest):
        names.append(f"{len(rest)} other feature{'s' if len(rest) != 1 else ''}")
        measures.append("relative")
        amounts.append(float(values[rest].sum()))
    names.append("This prediction")
    measures.append("total")
    amounts.append(output)
    text = [fmt(base)] + [f"{a:+.3g}" for a in amounts[1:-1]] + [fmt(output)]
    fig = go.Figure(go.Waterfall(
        orientation="h", y=names, x=amounts, measure=measures, text=text, textposition="outside", cliponaxis=False,
        increasing=dict(marker=dict(color=UP_COLOR)), decreasing=dict(marker=dict(color=DOWN_COLOR)),
        totals=dict(marker=dict(color=TOTAL_COLOR)), connector=dict(line=dict(color=PALETTE["grey"], width=1)),
        hovertemplate="%{y}: %{text}<extra></extra>",
    ))
    subtitle = (f"Starts at the average {label.lower()} ({fmt(base)}); blue pushes it up, "
                f"vermillion pushes it down, ending at {fmt(output)}.")
    style(fig, title=f"{title}<br><sup>{subtitle}</sup>", x_title=label, y_title=None,
          height=max(300, 90 + 30 * len(names)), legend=False)
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_layout(margin=dict(t=80, r=80))
    return fig


def _confidence_words(margin: float) -> str:
    if margin < CLOSE_CALL:
        return "a close call"
    if margin < FAIRLY_CONFIDENT:
        return "fairly confident"
    return "confident"


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%"


def probability_figure(prediction: Mapping | None) -> go.Figure:
    """Class probabilities with the predicted class highlighted; or a value with its interval.

    ``prediction`` is ``app.ml.predict.predict_row(...)``. The title names the
    winner and its margin over the runner-up, e.g. "Predicted: versicolor,
    51% vs 49% - a close call".
    """
    if not prediction:
        return empty_figure("No prediction yet: fill in the row and predict.", title="Prediction")
    if "value" in prediction:
        return _value_figure(prediction)
    proba = prediction.get("proba")
    if proba is None:
        return empty_figure(f"Predicted: {prediction.get('predicted')} (this model gives no probabilities).",
                            title=f"Predicted: {prediction.get('predicted')}")
    classes = [str(c) for c in prediction["classes"]]
    p = np.asarray(proba, dtype=float)
    winner = int(np.argmax(p))
    ranked = np.sort(p)[::-1]
    runner = float(ranked[1]) if len(p) > 1 else 0.0
    margin = float(ranked[0] - runner)
    title = (f"Predicted: {classes[winner]}, {_pct(p[winner])} vs {_pct(runner)} - "
             f"{_confidence_words(margin)}")
    colors = [UP_COLOR if i == winner else MUTED_COLOR for i in range(len(p))]
    fig = go.Figure(go.Bar(
        x=p, y=classes, orientation="h", marker_color=colors, text=[_pct(v) for v in p],
        textposition="outside", cliponaxis=False, hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    ))
    style(fig, title=title, x_title="Predicted probability", y_title="Class",
          height=max(200, 90 + 34 * len(p)), legend=False)
    fig.update_xaxes(range=[0, 1.1], tickformat=".0%")
    fig.update_yaxes(autorange="reversed", type="category", automargin=True)
    return fig


def _value_figure(prediction: Mapping) -> go.Figure:
    value = float(prediction["value"])
    interval = prediction.get("interval")
    error = None
    title = f"Predicted: {fmt(value)}"
    if interval is not None:
        lo, hi = float(interval[0]), float(interval[1])
        error = dict(type="data", symmetric=False, array=[max(hi - value, 0.0)],
                     arrayminus=[max(value - lo, 0.0)], color=PALETTE["black"], thickness=2, width=10)
        title += f" (interval {fmt(lo)} to {fmt(hi)})"
    fig = go.Figure(go.Scatter(
        x=[value], y=["Prediction"], mode="markers", marker=dict(color=UP_COLOR, size=14),
        error_x=error, hovertemplate="%{x:.4g}<extra></extra>",
    ))
    method = prediction.get("interval_method")
    subtitle = method if method else "This model gives no uncertainty interval."
    style(fig, title=f"{title}<br><sup>{subtitle}</sup>", x_title="Predicted value", y_title=None,
          height=200, legend=False)
    fig.update_layout(margin=dict(t=70))
    return fig


def _change(before: Any, after: Any) -> str:
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (before, after))
    if numeric:
        return f"{after - before:+.4g}"
    return f"{fmt(before)} → {fmt(after)}"


def _prediction_text(prediction: Mapping | None) -> str:
    if not prediction:
        return ""
    if "value" in prediction:
        return fmt(prediction["value"])
    proba = prediction.get("proba")
    if proba is None:
        return str(prediction.get("predicted"))
    return f"{prediction['predicted']} ({_pct(max(proba))})"


def counterfactual_table(result: Mapping | None) -> list[dict]:
    """Rows for a before/after table: one per changed feature, then the prediction.

    Each row has ``feature``, ``before``, ``after``, ``change`` (a signed
    difference for numbers, "a → b" for categories) and ``kind``
    ("feature" or "prediction"). All values are display strings.
    """
    if not result:
        return []
    rows = [{"feature": str(c["feature"]), "before": fmt(c["before"]), "after": fmt(c["after"]),
             "change": _change(c["before"], c["after"]), "kind": "feature"}
            for c in result.get("changes", [])]
    before = _prediction_text(result.get("prediction_before"))
    after = _prediction_text(result.get("prediction_after"))
    if before or after:
        rows.append({"feature": "Prediction", "before": before, "after": after,
                     "change": "" if before == after else f"{before} → {after}", "kind": "prediction"})
    return rows
