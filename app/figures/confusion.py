"""Figures and layout helpers for the model views: per-class report, sampled titles, legends below.

Pure plotly: dicts and lists in, ``go.Figure`` out.
"""

from __future__ import annotations

import plotly.graph_objects as go

from app.figures.common import PALETTE, empty_figure, style

__all__ = ["legend_below", "per_class_figure", "sampled_title", "svg_scatter", "thin_curve"]


def thin_curve(curve: dict | None, *, keys: tuple[str, ...], max_points: int = 500) -> dict | None:
    """Return ``curve`` with at most ``max_points`` points of its arrays ``keys`` (endpoints kept).

    For drawing only: a curve of 2,000 points looks the same at 500 in a
    half-width chart, and ships a quarter of the bytes. Scalars (AUC, AP)
    are left as they are. ``thresholds`` is thinned alongside when it is as
    long as the arrays; a PR curve's one-shorter ``thresholds`` keeps its own
    matching indices.
    """
    if not curve or not curve.get(keys[0]):
        return curve
    n = len(curve[keys[0]])
    if n <= max_points:
        return curve
    step = (n - 1) / (max_points - 1)
    idx = sorted({round(i * step) for i in range(max_points)} | {0, n - 1})
    out = dict(curve)
    for key in keys:
        out[key] = [curve[key][i] for i in idx]
    thresholds = curve.get("thresholds")
    if isinstance(thresholds, list):
        out["thresholds"] = [thresholds[i] for i in idx if i < len(thresholds)]
    return out


def svg_scatter(fig: go.Figure) -> go.Figure:
    """Draw WebGL scatter traces as SVG (browsers without WebGL show nothing; a few thousand points are fine)."""
    if not any(trace.type == "scattergl" for trace in fig.data):
        return fig
    traces = []
    for trace in fig.data:
        if trace.type == "scattergl":
            props = trace.to_plotly_json()
            props.pop("type", None)
            traces.append(go.Scatter(**props))
        else:
            traces.append(trace)
    fig.data = []
    fig.add_traces(traces)
    return fig


def legend_below(fig: go.Figure, *, height: int = 430) -> go.Figure:
    """Move the legend under the plot area (half-width cards are too narrow for a legend beside the title)."""
    fig.update_layout(height=height, margin=dict(b=120),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0))
    fig.update_xaxes(title_font=dict(size=12))
    fig.update_yaxes(title_font=dict(size=12))
    return fig


def sampled_title(fig: go.Figure, *, shown: int, total: int) -> go.Figure:
    """Append "(a random sample of N of M rows)" to the title when only a sample is drawn."""
    if shown < total:
        title = fig.layout.title.text or ""
        fig.update_layout(title_text=f"{title} (a random sample of {shown:,} of {total:,} rows)")
    return fig


def per_class_figure(report: list[dict], *, title: str = "Precision, recall and F1 by class") -> go.Figure:
    """Grouped bars of precision, recall and F1 for each class, with the class size on hover.

    ``report`` is an :func:`app.ml.metrics.per_class_report` list.
    """
    if not report:
        return empty_figure("No per-class report: there are no rows.", title=title)
    names = [f"{r['class']}" for r in report]
    support = [r.get("support", 0) for r in report]
    fig = go.Figure()
    for key, label, color in (("precision", "Precision", PALETTE["blue"]), ("recall", "Recall", PALETTE["orange"]),
                              ("f1", "F1", PALETTE["green"])):
        values = [r.get(key) for r in report]
        fig.add_trace(go.Bar(
            x=names, y=values, name=label, marker=dict(color=color), customdata=support,
            text=["n/a" if v is None else f"{v:.2f}" for v in values], textposition="outside", cliponaxis=False,
            hovertemplate=f"class %{{x}}<br>{label} %{{y:.3f}}<br>rows of the class %{{customdata:,}}<extra></extra>",
        ))
    fig.update_layout(barmode="group")
    style(fig, title=title, x_title="True class", y_title="Score (0 to 1, higher is better)")
    fig.update_xaxes(type="category")
    fig.update_yaxes(range=[0, 1.12], tickvals=[0, 0.25, 0.5, 0.75, 1.0])
    return fig
