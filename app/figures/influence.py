"""Figures for feature influence: importances, PDP/ICE, 2-D PDP, SHAP dependence."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.figures.common import PALETTE, SEQUENCE, SEQUENTIAL, empty_figure, style

ICE_COLOR = "rgba(86, 180, 233, 0.35)"  # PALETTE["sky"], translucent
AVERAGE_COLOR = PALETTE["blue"]
NEGATIVE_COLOR = PALETTE["vermillion"]


def fmt(value: Any) -> str:
    """Format a value for a label: 4 significant digits for floats, text as is."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if not np.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    return str(value)


def _subtitle(title: str, subtitle: str) -> str:
    return f"{title}<br><sup>{subtitle}</sup>"


def _describe(result: Mapping, method_label: str) -> tuple[str, str]:
    """Return (axis title, one-line meaning) for an importance result."""
    scoring = str(result.get("scoring") or "")
    if "SHAP" in scoring:
        space = result.get("output_space") or "model output"
        return (f"Mean |SHAP value| ({space})",
                f"Average size of the feature's contribution to a single prediction, in {space} units.")
    if "impurity" in scoring:
        return ("Mean decrease in impurity (share of total)",
                "How much the trees' splits on the feature reduce impurity; favours features with many values.")
    if scoring:
        n = result.get("n_samples")
        repeats = result.get("n_repeats")
        detail = ", ".join(p for p in (f"{n} rows" if n else "", f"{repeats} shuffles" if repeats else "") if p)
        return (f"Drop in {scoring} when shuffled",
                f"How much {scoring} falls when the feature's values are shuffled"
                + (f" ({detail}, mean ± std)" if detail else "") + "; below zero means noise.")
    return (method_label, f"{method_label} per feature.")


def importance_figure(result: Mapping | None, *, method_label: str, top_k: int = 15) -> go.Figure:
    """Horizontal bars of feature importance, largest on top, with std error bars.

    ``result`` is a permutation, impurity or mean |SHAP| result from
    ``app.ml.influence`` (``features`` plus ``mean`` or ``values``, optional
    ``std``).
    """
    title = method_label or "Feature importance"
    if not result or not result.get("features"):
        return empty_figure("No importance has been computed for this model.", title=title)
    features = list(result["features"])
    means = np.asarray(result.get("mean", result.get("values")), dtype=float)
    std = result.get("std")
    std = np.asarray(std, dtype=float) if std is not None else None
    order = np.argsort(-means, kind="stable")[: max(int(top_k), 1)]
    # Plotly draws the first bar at the bottom: reverse so the largest is on top.
    order = order[::-1]
    axis_title, meaning = _describe(result, method_label)
    colors = [NEGATIVE_COLOR if means[i] < 0 else AVERAGE_COLOR for i in order]
    bar = go.Bar(
        x=means[order], y=[features[i] for i in order], orientation="h", marker_color=colors,
        error_x=dict(type="data", array=std[order], color=PALETTE["black"], thickness=1) if std is not None else None,
        hovertemplate="%{y}: %{x:.4g}<extra></extra>", name=method_label,
    )
    fig = go.Figure(bar)
    hidden = len(features) - len(order)
    if hidden > 0:
        meaning += f" Top {len(order)} of {len(features)} features."
    style(fig, title=_subtitle(title, meaning), x_title=axis_title, y_title="Feature",
          height=max(260, 60 + 24 * len(order)), legend=False)
    fig.update_layout(margin=dict(t=70))
    fig.update_yaxes(automargin=True)
    return fig


def _output_title(target_label: Any, centered: bool, target: Any = None) -> str:
    label = target_label if target_label is not None else target
    base = f"Predicted probability of {label}" if label is not None else "Prediction"
    return f"Change in {base[0].lower() + base[1:]} from the first grid value" if centered else base


def pdp_figure(pdp: Mapping | None, *, centered: bool = False, categorical: bool = False,
               target_label: Any = None) -> go.Figure:
    """Partial dependence (thick line) with ICE curves (thin, translucent).

    Categorical features are drawn as bars of the average, with the ICE
    values as faint points. ``centered`` draws c-ICE: every curve starts at 0.
    """
    if not pdp or not pdp.get("grid"):
        return empty_figure("No partial dependence has been computed for this feature.",
                            title="Partial dependence")
    feature = pdp["feature"]
    grid = list(pdp["grid"])
    categorical = categorical or pdp.get("kind") == "categorical"
    average = pdp["centered_average"] if centered and "centered_average" in pdp else pdp["average"]
    if centered and "centered_average" not in pdp:
        average = [v - pdp["average"][0] for v in pdp["average"]]
    ice = pdp.get("centered_ice" if centered else "ice") or []
    y_title = _output_title(target_label, centered, pdp.get("target"))
    fig = go.Figure()
    if categorical:
        labels = [fmt(g) for g in grid]
        if ice:
            xs = [labels[j] for _ in ice for j in range(len(grid))]
            ys = [v for curve in ice for v in curve]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"Individual rows ({len(ice)})",
                                     marker=dict(color=ICE_COLOR, size=5), hoverinfo="skip"))
        fig.add_trace(go.Bar(x=labels, y=average, name="Average", marker_color=AVERAGE_COLOR, opacity=0.85,
                             hovertemplate=f"{feature} = %{{x}}<br>average %{{y:.4g}}<extra></extra>"))
        fig.update_xaxes(type="category")
    else:
        if ice:
            xs, ys = [], []
            for curve in ice:
                xs.extend(grid + [None])
                ys.extend(list(curve) + [None])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"Individual rows ({len(ice)})",
                                     line=dict(color=ICE_COLOR, width=1), hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=grid, y=average, mode="lines", name="Average (partial dependence)",
                                 line=dict(color=AVERAGE_COLOR, width=4),
                                 hovertemplate=f"{feature} = %{{x:.4g}}<br>average %{{y:.4g}}<extra></extra>"))
    title = f"How {feature} changes the prediction"
    subtitle = ("Each thin line is one row with only this feature changed; the thick line is their average."
                if not categorical else "Bars: average prediction with the feature set to each category.")
    style(fig, title=_subtitle(title, subtitle), x_title=str(feature), y_title=y_title)
    fig.update_layout(margin=dict(t=80))
    return fig


def pdp2d_figure(pdp2d: Mapping | None) -> go.Figure:
    """Heatmap of a two-way partial dependence."""
    if not pdp2d or not pdp2d.get("values"):
        return empty_figure("No two-way partial dependence has been computed.", title="Two-way partial dependence")
    fx, fy = pdp2d["features"]
    values = np.asarray(pdp2d["values"], dtype=float)  # (len(grid_x), len(grid_y))
    target = pdp2d.get("target")
    z_title = f"P({target})" if target is not None else "Prediction"
    x = [fmt(v) if isinstance(v, str) else v for v in pdp2d["grid_x"]]
    y = [fmt(v) if isinstance(v, str) else v for v in pdp2d["grid_y"]]
    fig = go.Figure(go.Heatmap(
        x=x, y=y, z=values.T, colorscale=SEQUENTIAL, colorbar=dict(title=dict(text=z_title)),
        hovertemplate=f"{fx} = %{{x}}<br>{fy} = %{{y}}<br>{z_title} = %{{z:.4g}}<extra></extra>",
    ))
    label = f"predicted probability of {target}" if target is not None else "prediction"
    style(fig, title=_subtitle(f"{fx} and {fy} together",
                               f"Average {label} with both features set to each pair of values."),
          x_title=str(fx), y_title=str(fy), legend=False)
    fig.update_layout(margin=dict(t=80))
    return fig


def _column(sample: Mapping, feature: str) -> list:
    j = list(sample["features"]).index(feature)
    return [row[j] for row in sample["data"]]


def shap_dependence_figure(sample: Mapping | None, feature: str, *, color_by: str | None = None) -> go.Figure:
    """Scatter of a feature's value against its SHAP value, coloured by a second feature."""
    title = f"SHAP dependence: {feature}"
    if not sample or not sample.get("values"):
        return empty_figure("No SHAP sample has been computed for this model.", title=title)
    features = list(sample["features"])
    if feature not in features:
        return empty_figure(f"{feature} is not one of the explained features.", title=title)
    if color_by is not None and color_by not in features:
        return empty_figure(f"{color_by} is not one of the explained features.", title=title)
    j = features.index(feature)
    x = _column(sample, feature)
    y = [row[j] for row in sample["values"]]
    space = sample.get("output_space") or "model output"
    fig = go.Figure()
    if color_by is None:
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", marker=dict(color=AVERAGE_COLOR, size=7, opacity=0.7),
                                 name=feature, hovertemplate=f"{feature} = %{{x}}<br>SHAP %{{y:.4g}}<extra></extra>"))
    else:
        colour = _column(sample, color_by)
        numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in colour)
        if numeric:
            fig.add_trace(go.Scatter(
                x=x, y=y, mode="markers", name=feature,
                marker=dict(color=colour, colorscale=SEQUENTIAL, size=7, opacity=0.8, showscale=True,
                            line=dict(width=0.5, color=PALETTE["grey"]),
                            colorbar=dict(title=dict(text=str(color_by)))),
                customdata=colour,
                hovertemplate=f"{feature} = %{{x}}<br>SHAP %{{y:.4g}}<br>{color_by} = %{{customdata}}<extra></extra>"))
        else:
            levels = list(dict.fromkeys(colour))
            for k, level in enumerate(levels):
                idx = [i for i, v in enumerate(colour) if v == level]
                fig.add_trace(go.Scatter(
                    x=[x[i] for i in idx], y=[y[i] for i in idx], mode="markers", name=f"{color_by} = {fmt(level)}",
                    marker=dict(color=SEQUENCE[k % len(SEQUENCE)], size=7, opacity=0.8),
                    hovertemplate=f"{feature} = %{{x}}<br>SHAP %{{y:.4g}}<extra>{color_by} = {fmt(level)}</extra>"))
    fig.add_hline(y=0, line=dict(color=PALETTE["grey"], width=1, dash="dot"))
    subtitle = f"Each point is one row of a {len(y)}-row sample; above zero pushes the prediction up."
    style(fig, title=_subtitle(title, subtitle), x_title=str(feature),
          y_title=f"SHAP value of {feature} ({space})", legend=color_by is not None)
    fig.update_layout(margin=dict(t=80))
    return fig

