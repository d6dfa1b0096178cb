"""Figures for choosing a threshold: expected cost and per-group fairness."""

from __future__ import annotations

import plotly.graph_objects as go

from app.figures.common import PALETTE, SEQUENCE, empty_figure, style

__all__ = ["cost_curve_figure", "fairness_figure"]

_RATE_LABELS = {
    "selection_rate": "Selection rate",
    "tpr": "True positive rate",
    "fpr": "False positive rate",
    "precision": "Precision",
}


def cost_curve_figure(curve: dict, *, threshold: float | None = None,
                      optimum: dict | None = None) -> go.Figure:
    """Expected cost per row against threshold.

    ``curve`` is a :meth:`ThresholdSweep.expected_cost_curve` dict;
    ``threshold`` draws the current threshold; ``optimum`` is a
    :meth:`ThresholdSweep.cost_optimal_threshold` dict drawn as a marker.
    """
    title = "Expected cost per row by threshold"
    if not curve or not curve.get("thresholds"):
        return empty_figure("No cost curve: there are no scored rows.", title=title)
    fig = go.Figure(go.Scatter(
        x=curve["thresholds"], y=curve["cost"], mode="lines", name="Cost per row",
        line=dict(color=PALETTE["blue"], width=2.5),
        hovertemplate="threshold %{x:.2f}<br>cost per row %{y:.4g}<extra></extra>",
    ))
    if optimum and optimum.get("threshold") is not None:
        fig.add_trace(go.Scatter(
            x=[optimum["threshold"]], y=[optimum["cost"]], mode="markers+text",
            name=f"Lowest cost (t = {optimum['threshold']:.3g})",
            text=[f"lowest: {optimum['cost']:.3g}"], textposition="top center",
            marker=dict(color=PALETTE["green"], size=12, symbol="diamond",
                        line=dict(color=PALETTE["black"], width=1)),
            hovertemplate="lowest cost<br>threshold %{x:.4g}<br>cost per row %{y:.4g}<extra></extra>",
        ))
    if threshold is not None:
        fig.add_vline(x=threshold, line=dict(color=PALETTE["vermillion"], width=2, dash="dot"),
                      annotation_text=f"threshold {threshold:.2f}", annotation_position="top")
    cost_fp, cost_fn = curve.get("cost_fp"), curve.get("cost_fn")
    if cost_fp is not None and cost_fn is not None:
        title += f" (false positive costs {cost_fp:g}, false negative {cost_fn:g})"
    style(fig, title=title, x_title="Threshold (flag rows with score at or above it)",
          y_title="Expected cost per row (cost units)")
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(rangemode="tozero")
    return fig


def fairness_figure(group_rates_result: dict) -> go.Figure:
    """Grouped bars: selection rate, TPR, FPR and precision for each group.

    ``group_rates_result`` is an :func:`app.ml.fairness.group_rates` dict.
    Rates whose gap exceeds the tolerance are shaded and their axis label
    carries the gap and the two groups involved. Undefined rates (no rows,
    no positives) are left out and say "n/a" on hover.
    """
    title = "Rates by group"
    groups = (group_rates_result or {}).get("groups") or []
    if not any(g.get("size") for g in groups):
        return empty_figure("No groups to compare: there are no rows.", title=title)
    gaps = group_rates_result.get("gaps", {})
    flagged = set(group_rates_result.get("flagged", []))
    rates = list(_RATE_LABELS)
    x_labels = []
    for rate in rates:
        label = _RATE_LABELS[rate]
        gap = gaps.get(rate, {})
        if rate in flagged:
            label += (f"<br>\u26a0 gap {gap['gap']:.2f} "
                      f"({gap['high_group']} vs {gap['low_group']})")
        x_labels.append(label)
    fig = go.Figure()
    for i, g in enumerate(groups):
        ys = [g.get(rate) for rate in rates]
        fig.add_trace(go.Bar(
            x=x_labels, y=ys, name=f"{g['group']} ({g.get('size', 0):,} rows)",
            marker=dict(color=SEQUENCE[i % len(SEQUENCE)]),
            text=["n/a" if v is None else f"{v:.2f}" for v in ys], textposition="outside",
            cliponaxis=False,
            hovertemplate=f"group {g['group']}<br>%{{x}}<br>%{{text}}<extra></extra>",
        ))
    for k, rate in enumerate(rates):
        if rate in flagged:
            fig.add_vrect(x0=k - 0.5, x1=k + 0.5, fillcolor=PALETTE["vermillion"], opacity=0.08,
                          line_width=0, layer="below")
    fig.update_layout(barmode="group")
    tol = group_rates_result.get("gap_tolerance")
    thr = group_rates_result.get("threshold")
    parts = []
    if thr is not None:
        parts.append(f"threshold {thr:.2f}")
    if tol is not None:
        parts.append(f"gaps over {tol:.2f} shaded")
    if parts:
        title += " (" + ", ".join(parts) + ")"
    style(fig, title=title, x_title="Rate", y_title="Rate (0 to 1)")
    fig.update_yaxes(range=[0, 1.12])
    return fig
