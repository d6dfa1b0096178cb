"""Figures for classifier and regressor performance.

Inputs are the plain dicts produced by :mod:`app.ml.metrics`,
:mod:`app.ml.threshold` and :mod:`app.ml.calibration` (or plain arrays), never
estimators. Missing data gives an empty-state figure that says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.figures.common import (PALETTE, SEQUENCE, SEQUENTIAL, TEST_COLOR, TRAIN_COLOR,
                                empty_figure, style)

__all__ = [
    "calibration_figure",
    "confidence_figure",
    "confusion_figure",
    "error_by_decile_figure",
    "metrics_bars_figure",
    "pr_figure",
    "predicted_vs_actual_figure",
    "residual_histogram_figure",
    "residuals_figure",
    "roc_figure",
    "score_distribution_figure",
]

_CHANCE = dict(color=PALETTE["grey"], dash="dash", width=1)

_METRIC_LABELS = {
    "precision": "Precision", "recall": "Recall", "f1": "F1", "accuracy": "Accuracy",
    "specificity": "Specificity", "balanced_accuracy": "Balanced accuracy", "mcc": "MCC",
    "roc_auc": "ROC AUC", "pr_auc": "PR AUC",
}


def _colors(keys: Sequence[str]) -> dict[str, str]:
    """Train and Test keep their house colours; other keys take the sequence."""
    fixed = {"train": TRAIN_COLOR, "test": TEST_COLOR}
    others = iter(c for c in SEQUENCE if c not in (TRAIN_COLOR, TEST_COLOR))
    out = {}
    for key in keys:
        out[key] = fixed.get(str(key).lower()) or next(others, PALETTE["grey"])
    return out


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def _threshold_text(t: Any) -> str:
    return "above every score" if t is None else f"{t:.3g}"


def _nonempty(curves: Mapping | None, key: str) -> dict:
    if not curves:
        return {}
    return {name: c for name, c in curves.items() if c and len(c.get(key) or []) > 0}


def _operating_point_traces(fig: go.Figure, points: Mapping | None, colors: dict,
                            x_key: str, y_key: str) -> None:
    for name, point in (points or {}).items():
        if not point or point.get(x_key) is None or point.get(y_key) is None:
            continue
        t = point.get("threshold")
        label = f"t = {_threshold_text(t)}"
        fig.add_trace(go.Scatter(
            x=[point[x_key]], y=[point[y_key]], mode="markers+text",
            name=f"{name} at {label}", text=[label], textposition="bottom right",
            marker=dict(size=11, color=colors.get(name, PALETTE["black"]), symbol="circle",
                        line=dict(color=PALETTE["black"], width=1.5)),
            hovertemplate=f"{name}<br>threshold {label[4:]}<br>{x_key} %{{x:.3f}}"
                          f"<br>{y_key} %{{y:.3f}}<extra></extra>",
        ))


def roc_figure(curves: dict[str, dict], *, operating_points: dict[str, dict] | None = None) -> go.Figure:
    """ROC curves (e.g. Train and Test) with AUC in the legend and a chance diagonal.

    ``curves`` maps a name to a :meth:`ThresholdSweep.roc_curve` dict;
    ``operating_points`` maps the same names to ``{"fpr", "tpr", "threshold"}``.
    """
    title = "ROC curve"
    good = _nonempty(curves, "fpr")
    if not good:
        return empty_figure("No ROC curve: it needs rows of both classes and scores.", title=title)
    colors = _colors(list(good))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Chance (AUC 0.5)",
                             line=_CHANCE, hoverinfo="skip"))
    for name, c in good.items():
        thresholds = [_threshold_text(t) for t in c.get("thresholds", [None] * len(c["fpr"]))]
        fig.add_trace(go.Scatter(
            x=c["fpr"], y=c["tpr"], mode="lines", name=f"{name} (AUC {_fmt(c.get('auc'))})",
            line=dict(color=colors[name], width=2.5), customdata=thresholds,
            hovertemplate=f"{name}<br>threshold %{{customdata}}<br>FPR %{{x:.3f}}"
                          f"<br>TPR %{{y:.3f}}<extra></extra>",
        ))
    _operating_point_traces(fig, operating_points, colors, "fpr", "tpr")
    style(fig, title=title, x_title="False positive rate (share of negatives flagged)",
          y_title="True positive rate (share of positives caught)")
    fig.update_xaxes(range=[0, 1], constrain="domain")
    fig.update_yaxes(range=[0, 1.02])
    return fig


def pr_figure(curves: dict[str, dict], *, operating_points: dict[str, dict] | None = None,
              prevalence: float | None = None) -> go.Figure:
    """Precision-recall curves with average precision in the legend.

    ``curves`` maps a name to a :meth:`ThresholdSweep.pr_curve` dict;
    ``operating_points`` to ``{"recall", "precision", "threshold"}``;
    ``prevalence`` (share of positives) draws the no-skill line.
    """
    title = "Precision-recall curve"
    good = _nonempty(curves, "recall")
    if not good:
        return empty_figure("No precision-recall curve: it needs positive rows and scores.",
                            title=title)
    colors = _colors(list(good))
    fig = go.Figure()
    if prevalence is not None:
        fig.add_trace(go.Scatter(x=[0, 1], y=[prevalence, prevalence], mode="lines",
                                 name=f"Chance (positives {prevalence:.1%})", line=_CHANCE,
                                 hoverinfo="skip"))
    for name, c in good.items():
        thr = list(c.get("thresholds", []))
        # The last point (recall 0, precision 1) has no threshold, as in sklearn.
        labels = [_threshold_text(t) for t in thr] + ["above every score"] * (len(c["recall"]) - len(thr))
        fig.add_trace(go.Scatter(
            x=c["recall"], y=c["precision"], mode="lines", line_shape="vh",
            name=f"{name} (AP {_fmt(c.get('average_precision'))})",
            line=dict(color=colors[name], width=2.5), customdata=labels,
            hovertemplate=f"{name}<br>threshold %{{customdata}}<br>recall %{{x:.3f}}"
                          f"<br>precision %{{y:.3f}}<extra></extra>",
        ))
    _operating_point_traces(fig, operating_points, colors, "recall", "precision")
    style(fig, title=title, x_title="Recall (share of positives caught)",
          y_title="Precision (share of flagged rows that are positive)")
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return fig


def calibration_figure(curves: dict[str, dict]) -> go.Figure:
    """Reliability diagram: observed share of positives against mean predicted probability.

    ``curves`` maps a name to an :func:`app.ml.calibration.calibration_data` dict.
    """
    title = "Calibration: do predicted probabilities match reality?"
    good = _nonempty(curves, "prob_pred")
    if not good:
        return empty_figure("No calibration data: it needs predicted probabilities.", title=title)
    colors = _colors(list(good))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Perfectly calibrated",
                             line=_CHANCE, hoverinfo="skip"))
    for name, c in good.items():
        counts = c.get("counts") or [None] * len(c["prob_pred"])
        brier = c.get("brier")
        fig.add_trace(go.Scatter(
            x=c["prob_pred"], y=c["prob_true"], mode="lines+markers",
            name=f"{name} (Brier {_fmt(brier)})" if brier is not None else name,
            line=dict(color=colors[name], width=2), marker=dict(size=8), customdata=counts,
            hovertemplate=f"{name}<br>mean predicted %{{x:.3f}}<br>observed positives %{{y:.3f}}"
                          f"<br>rows %{{customdata:,}}<extra></extra>",
        ))
    style(fig, title=title, x_title="Mean predicted probability (per bin)",
          y_title="Observed share of positives (per bin)")
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return fig


def score_distribution_figure(dist: dict, *, threshold: float | None = None) -> go.Figure:
    """Overlaid histograms of the score per true class, with the threshold line.

    ``dist`` is an :func:`app.ml.calibration.score_distributions` dict; bars
    show each class's share of its own rows so small classes stay visible.
    """
    title = "Score distribution by true class"
    if not dist or not dist.get("classes") or not any(dist.get("totals") or []):
        return empty_figure("No scores to show: there are no rows.", title=title)
    edges = np.asarray(dist["edges"], dtype=float)
    centers = (edges[:-1] + edges[1:]) / 2
    widths = np.diff(edges)
    fig = go.Figure()
    shares = dist.get("share") or dist["counts"]
    for i, (cls, counts, share) in enumerate(zip(dist["classes"], dist["counts"], shares)):
        total = (dist.get("totals") or [sum(counts)] * len(dist["classes"]))[i]
        fig.add_trace(go.Bar(
            x=centers, y=share, width=widths, name=f"True class {cls} ({total:,} rows)",
            marker=dict(color=SEQUENCE[i % len(SEQUENCE)]), opacity=0.6, customdata=counts,
            hovertemplate=f"true class {cls}<br>score %{{x:.3f}}<br>rows %{{customdata:,}}"
                          f"<br>share of class %{{y:.1%}}<extra></extra>",
        ))
    fig.update_layout(barmode="overlay", bargap=0)
    if threshold is not None:
        fig.add_vline(x=threshold, line=dict(color=PALETTE["black"], width=2, dash="dot"),
                      annotation_text=f"threshold {threshold:.2f}", annotation_position="top")
    style(fig, title=title, x_title="Predicted score for the positive class",
          y_title="Share of the class's rows")
    fig.update_yaxes(tickformat=".0%")
    return fig


def confidence_figure(dist: dict) -> go.Figure:
    """Histograms of the top-class probability for correct and incorrect predictions.

    ``dist`` is an :func:`app.ml.calibration.confidence_distributions` dict.
    """
    title = "Confidence of correct and incorrect predictions"
    if not dist or not (dist.get("n_correct", 0) + dist.get("n_incorrect", 0)):
        return empty_figure("No predictions to show: there are no rows.", title=title)
    edges = np.asarray(dist["edges"], dtype=float)
    centers = (edges[:-1] + edges[1:]) / 2
    widths = np.diff(edges)
    fig = go.Figure()
    for key, label, color in (("correct", "Correct", PALETTE["green"]),
                              ("incorrect", "Incorrect", PALETTE["vermillion"])):
        n = dist.get(f"n_{key}", sum(dist[key]))
        fig.add_trace(go.Bar(
            x=centers, y=dist[key], width=widths, name=f"{label} ({n:,} rows)",
            marker=dict(color=color), opacity=0.65,
            hovertemplate=f"{label}<br>confidence %{{x:.3f}}<br>rows %{{y:,}}<extra></extra>",
        ))
    fig.update_layout(barmode="overlay", bargap=0)
    acc = dist.get("accuracy")
    sub = f" (accuracy {acc:.1%})" if acc is not None else ""
    style(fig, title=title + sub, x_title="Confidence (probability of the predicted class)",
          y_title="Rows")
    fig.update_xaxes(range=[0, 1])
    return fig


def metrics_bars_figure(values: dict[str, float]) -> go.Figure:
    """Bars of metrics on a 0-1 scale (precision, recall, F1, ...) with value labels."""
    title = "Precision, recall and F1"
    if not values:
        return empty_figure("No metrics to show.", title=title)
    keys = list(values)
    labels = [_METRIC_LABELS.get(k, k.replace("_", " ").capitalize()) for k in keys]
    ys = [values[k] if values[k] is not None else 0.0 for k in keys]
    texts = [_fmt(values[k]) for k in keys]
    fig = go.Figure(go.Bar(
        x=labels, y=ys, text=texts, textposition="outside", cliponaxis=False,
        marker=dict(color=[SEQUENCE[i % len(SEQUENCE)] for i in range(len(keys))]),
        hovertemplate="%{x}: %{text}<extra></extra>",
    ))
    style(fig, title=title, x_title="Metric", y_title="Score (0 to 1, higher is better)",
          legend=False)
    fig.update_yaxes(range=[0, 1.1], tickvals=[0, 0.25, 0.5, 0.75, 1.0])
    return fig


def confusion_figure(matrix, labels, *, normalize: str | None = None,
                     title: str = "Confusion matrix") -> go.Figure:
    """Heatmap of a confusion matrix: rows are true classes, columns predicted.

    Each cell shows the count and a percentage: of all rows
    (``normalize=None``), of the true class (``"true"``) or of the predicted
    class (``"pred"``); the colour follows the same normalisation. Each
    cell's ``customdata`` is ``[true_label, predicted_label]`` so a click
    can be decoded. Text is white on dark cells.
    """
    if normalize not in (None, "true", "pred"):
        raise ValueError(f"normalize must be None, 'true' or 'pred', got {normalize!r}")
    m = np.asarray(matrix, dtype=float) if matrix is not None else np.zeros((0, 0))
    labels = [] if labels is None else [v.item() if isinstance(v, np.generic) else v for v in labels]
    if m.size == 0 or m.ndim != 2 or m.sum() == 0:
        return empty_figure("No confusion matrix: there are no rows.", title=title)
    if m.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix has shape {m.shape} but there are {len(labels)} labels")
    if normalize == "true":
        den = m.sum(axis=1, keepdims=True)
        basis = "of true class"
    elif normalize == "pred":
        den = m.sum(axis=0, keepdims=True)
        basis = "of predicted class"
    else:
        den = np.full_like(m, m.sum())
        basis = "of all rows"
    share = np.divide(m, den, out=np.zeros_like(m), where=den != 0)
    z = share if normalize else m
    names = [str(label) for label in labels]
    text = [[f"{int(m[i, j]):,}<br>{share[i, j]:.1%}" for j in range(len(names))]
            for i in range(len(names))]
    custom = [[[labels[i], labels[j]] for j in range(len(names))] for i in range(len(names))]
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, colorscale=SEQUENTIAL,
        text=text, customdata=custom, showscale=False, xgap=1, ygap=1,
        hovertemplate=f"true %{{y}}<br>predicted %{{x}}<br>%{{text}} {basis}<extra></extra>",
    ))
    zmax = float(z.max()) if z.size else 0.0
    for i in range(len(names)):
        for j in range(len(names)):
            dark = zmax > 0 and z[i, j] / zmax > 0.5
            fig.add_annotation(x=names[j], y=names[i], text=text[i][j], showarrow=False,
                               font=dict(color="#ffffff" if dark else "#1a1a1a", size=13))
    style(fig, title=title, x_title="Predicted class", y_title="True class", legend=False,
          height=max(300, 60 * len(names) + 120))
    fig.update_xaxes(type="category", side="bottom")
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


# ---------------------------------------------------------------------------
# Regression
# ---------------------------------------------------------------------------

def _sample(n: int, max_points: int) -> np.ndarray:
    """Row indices to draw: all rows, or a fixed-seed random sample."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=max_points, replace=False))


def _shown(title: str, shown: int, n: int) -> str:
    return title if shown == n else f"{title} (showing {shown:,} of {n:,} rows)"


def _floats(values) -> np.ndarray:
    return np.asarray(values if values is not None else [], dtype=float).ravel()


def predicted_vs_actual_figure(y_true, y_pred, *, max_points: int = 5000) -> go.Figure:
    """Scatter of predicted against actual values with the identity line."""
    title = "Predicted vs actual"
    y_true, y_pred = _floats(y_true), _floats(y_pred)
    if y_true.size == 0 or y_true.size != y_pred.size:
        return empty_figure("No predictions to show: there are no rows.", title=title)
    idx = _sample(y_true.size, max_points)
    lo = float(min(y_true.min(), y_pred.min()))
    hi = float(max(y_true.max(), y_pred.max()))
    fig = go.Figure()
    fig.add_trace(go.Scattergl(
        x=y_true[idx], y=y_pred[idx], mode="markers", name="Rows",
        marker=dict(color=TEST_COLOR, size=5, opacity=0.5),
        hovertemplate="actual %{x:.4g}<br>predicted %{y:.4g}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="Perfect prediction",
                             line=_CHANCE, hoverinfo="skip"))
    style(fig, title=_shown(title, len(idx), y_true.size), x_title="Actual value (target units)",
          y_title="Predicted value (target units)")
    return fig


def residuals_figure(y_pred, residuals, *, max_points: int = 5000) -> go.Figure:
    """Residual (actual minus predicted) against predicted value, with a zero line."""
    title = "Residuals vs predicted"
    y_pred, residuals = _floats(y_pred), _floats(residuals)
    if y_pred.size == 0 or y_pred.size != residuals.size:
        return empty_figure("No residuals to show: there are no rows.", title=title)
    idx = _sample(y_pred.size, max_points)
    fig = go.Figure(go.Scattergl(
        x=y_pred[idx], y=residuals[idx], mode="markers", name="Rows",
        marker=dict(color=TEST_COLOR, size=5, opacity=0.5),
        hovertemplate="predicted %{x:.4g}<br>residual %{y:.4g}<extra></extra>",
    ))
    fig.add_hline(y=0, line=_CHANCE)
    style(fig, title=_shown(title, len(idx), y_pred.size), x_title="Predicted value (target units)",
          y_title="Residual: actual - predicted (target units)", legend=False)
    return fig


def residual_histogram_figure(residuals) -> go.Figure:
    """Histogram of residuals with a line at zero and the mean in the title."""
    title = "Distribution of residuals"
    residuals = _floats(residuals)
    if residuals.size == 0:
        return empty_figure("No residuals to show: there are no rows.", title=title)
    fig = go.Figure(go.Histogram(
        x=residuals, nbinsx=40, name="Residuals", marker=dict(color=TEST_COLOR),
        hovertemplate="residual %{x}<br>rows %{y:,}<extra></extra>",
    ))
    fig.add_vline(x=0, line=dict(color=PALETTE["black"], width=1.5, dash="dot"))
    style(fig, title=f"{title} (mean {residuals.mean():.4g})",
          x_title="Residual: actual - predicted (target units)", y_title="Rows", legend=False)
    fig.update_layout(bargap=0.02)
    return fig


def error_by_decile_figure(summary: dict) -> go.Figure:
    """MAE and RMSE per decile of predicted value (from ``residual_summary``)."""
    title = "Error by decile of predicted value"
    if not summary or not summary.get("count") or sum(summary["count"]) == 0:
        return empty_figure("No errors to show: there are no rows.", title=title)
    edges = summary["edges"]
    labels = [f"{edges[i]:.3g} to {edges[i + 1]:.3g}" for i in range(len(summary["count"]))]
    fig = go.Figure()
    for key, name, color in (("mae", "MAE", PALETTE["blue"]), ("rmse", "RMSE", PALETTE["orange"])):
        fig.add_trace(go.Bar(
            x=labels, y=summary[key], name=name, marker=dict(color=color),
            customdata=summary["count"],
            hovertemplate=f"predicted %{{x}}<br>{name} %{{y:.4g}}<br>rows %{{customdata:,}}"
                          "<extra></extra>",
        ))
    fig.update_layout(barmode="group")
    style(fig, title=title, x_title="Predicted value range (target units)",
          y_title="Error (target units)")
    return fig
