"""Figures for the labs: decision regions, polynomial fits, validation curves.

Inputs are the plain dicts of :meth:`app.ml.boundary.BoundaryResult.to_dict`
and :meth:`app.ml.regression_lab.RegressionLabResult.to_dict` (lists or
arrays both work). Large grids are sent as float32 arrays, which plotly
ships to the browser as compact binary.

These figures are rebuilt on every slider release, so they are assembled
without plotly's per-property validation of the layout: the house layout
(:func:`app.figures.common.style`, template included) is computed once at
import as a constant and copied per figure, and the traces are validated as
they are built. Validating the template alone costs 30 to 60 ms per figure;
this path costs a few. The tests check that every figure passes full
validation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app.figures.common import PALETTE, TEST_COLOR, TRAIN_COLOR, empty_figure, style

__all__ = [
    "CLASS_COLORS",
    "boundary_figure",
    "coefficient_figure",
    "regression_fit_figure",
    "validation_curve_figure",
]

#: Class 0 and class 1, matching the ends of the shading scale.
CLASS_COLORS = (PALETTE["vermillion"], PALETTE["blue"])
_SHADING = [[0.0, "#e8a57a"], [0.5, "#f7f7f7"], [1.0, "#7fb3d8"]]  # light vermillion -> light blue
_PREVIOUS_COLOR = PALETTE["pink"]
_DECISION_CLIP = 3.0  # the shading saturates beyond +-3 decision units
#: The house layout (template, font, margins, legend, colours), never mutated: copied per figure.
_HOUSE_LAYOUT = style(go.Figure(), title="", x_title="", y_title="", height=None).to_plotly_json()["layout"]


def _assemble(traces: list, *, title: str, x_title: str, y_title: str, height: int,
              show_legend: bool = True, **layout: Any) -> go.Figure:
    """Return a figure in the house style from validated traces and layout overrides.

    ``layout`` entries for ``xaxis``/``yaxis``/``legend``/``margin`` are merged into the house values.
    """
    lay = copy.deepcopy(_HOUSE_LAYOUT)
    lay["title"]["text"] = title
    lay["xaxis"]["title"]["text"] = x_title
    lay["yaxis"]["title"]["text"] = y_title
    lay["height"] = height
    lay["showlegend"] = show_legend
    for key, value in layout.items():
        if isinstance(value, dict) and isinstance(lay.get(key), dict):
            lay[key].update(value)
        else:
            lay[key] = value
    return go.Figure(data=traces, layout=lay, _validate=False)


def _array(value: Any, dtype: Any = float) -> np.ndarray:
    """Return ``value`` as an array, with None turned into NaN for floats."""
    if value is None:
        return np.zeros(0, dtype=dtype)
    if dtype is float:
        return np.array(value, dtype=float) if not isinstance(value, np.ndarray) else value.astype(float)
    return np.asarray(value, dtype=dtype)


def _points(X: Any) -> np.ndarray:
    arr = _array(X)
    return arr.reshape(-1, 2) if arr.size else np.zeros((0, 2))


def _line(line: Mapping | None) -> tuple[np.ndarray, np.ndarray] | None:
    if not line:
        return None
    x, y = _array(line.get("x")), _array(line.get("y"))
    if x.size == 0 or x.shape != y.shape:
        return None
    return x.astype(np.float32), y.astype(np.float32)  # half the bytes; plenty for a line on screen


def boundary_figure(result: Mapping, *, previous: Mapping | None = None,
                    height: int = 540) -> go.Figure:
    """Decision regions with the boundary, train/test points and SVM details.

    Parameters
    ----------
    result : dict
        A :meth:`BoundaryResult.to_dict`. When it carries an ``error`` (one
        class only, ...) the points are drawn without regions and the title
        says why.
    previous : dict, optional
        ``{"x": [...], "y": [...]}``: an earlier boundary, drawn as a dotted
        outline for comparison.
    height : int, default=540
    """
    title = "Decision regions"
    X_train, X_test = _points(result.get("X_train")), _points(result.get("X_test"))
    if X_train.shape[0] + X_test.shape[0] == 0:
        return empty_figure(result.get("error") or "No data: generate a data set first.",
                            title=title, height=height)
    y_train = _array(result.get("y_train"), int)
    y_test = _array(result.get("y_test"), int)
    traces: list = []
    surface = result.get("surface")
    kind = None
    if surface:
        kind = surface.get("kind")
        z = _array(surface["z"]).astype(np.float32)
        level = float(surface.get("level", 0.0))
        if kind == "decision":
            zmin, zmax, bar = -_DECISION_CLIP, _DECISION_CLIP, "Decision<br>value"
            z = np.clip(z, zmin, zmax)
        else:
            zmin, zmax, bar = 0.0, 1.0, "P(class 1)"
        traces.append(go.Heatmap(
            x=_array(surface["x"]).astype(np.float32), y=_array(surface["y"]).astype(np.float32), z=z,
            zmin=zmin, zmax=zmax, zmid=level, colorscale=_SHADING, zsmooth="best", name="Model score",
            colorbar=dict(title=dict(text=bar, side="top"), thickness=12, len=0.75, x=1.01),
            hovertemplate="x1 %{x:.2f}, x2 %{y:.2f}<br>score %{z:.2f}<extra></extra>",
        ))
    prev = _line(previous)
    if prev is not None:
        traces.append(go.Scatter(x=prev[0], y=prev[1], mode="lines", name="Previous boundary",
                                 line=dict(color=_PREVIOUS_COLOR, width=3, dash="dot"),
                                 hoverinfo="skip", connectgaps=False))
    margins = _line(result.get("margins"))
    if margins is not None:
        traces.append(go.Scatter(x=margins[0], y=margins[1], mode="lines", name="Margin (score ±1)",
                                 line=dict(color="#4d4d4d", width=1.2, dash="dash"), hoverinfo="skip"))
    boundary = _line(result.get("boundary"))
    if boundary is not None:
        traces.append(go.Scatter(x=boundary[0], y=boundary[1], mode="lines", name="Decision boundary",
                                 line=dict(color=PALETTE["black"], width=2.5), hoverinfo="skip"))

    for part, X, y, symbol, size in (("train", X_train, y_train, "circle", 8),
                                     ("test", X_test, y_test, "diamond", 10)):
        for cls in (0, 1):
            mask = y == cls
            if not mask.any():
                continue
            traces.append(go.Scatter(
                x=X[mask, 0], y=X[mask, 1], mode="markers", name=f"{part.title()} · class {cls}",
                marker=dict(color=CLASS_COLORS[cls], symbol=symbol, size=size,
                            line=dict(color="white" if part == "train" else PALETTE["black"], width=1)),
                hovertemplate=f"{part} point, class {cls}<br>x1 %{{x:.2f}}, x2 %{{y:.2f}}<extra></extra>",
            ))
    support = _array(result.get("support_indices"), int)
    if support.size and X_train.shape[0]:
        sv = X_train[support[(support >= 0) & (support < X_train.shape[0])]]
        traces.append(go.Scatter(
            x=sv[:, 0], y=sv[:, 1], mode="markers", name=f"Support vector ({len(sv)})",
            marker=dict(symbol="circle-open", size=14, color=PALETTE["black"], line=dict(width=1.5)),
            hoverinfo="skip",
        ))
    wrong = _array(result.get("misclassified"), int)
    if wrong.size and X_test.shape[0]:
        bad = X_test[wrong[(wrong >= 0) & (wrong < X_test.shape[0])]]
        traces.append(go.Scatter(
            x=bad[:, 0], y=bad[:, 1], mode="markers", name=f"Misclassified test point ({len(bad)})",
            marker=dict(symbol="x-thin-open", size=13, color=PALETTE["black"], line=dict(width=2.5)),
            hovertemplate="misclassified test point<br>x1 %{x:.2f}, x2 %{y:.2f}<extra></extra>",
        ))
    if result.get("error"):
        title += ": not fitted (" + str(result["error"]).split(":")[0].rstrip(".").lower() + ")"
    elif kind == "decision":
        title += " (shading: SVM decision value; solid line: boundary at 0)"
    elif kind == "probability":
        title += " (shading: probability of class 1; solid line: boundary at 0.5)"
    xaxis: dict = dict(showgrid=False, zeroline=False)
    yaxis: dict = dict(showgrid=False, zeroline=False)
    if surface:
        xaxis["range"] = [float(surface["x"][0]), float(surface["x"][-1])]
        yaxis["range"] = [float(surface["y"][0]), float(surface["y"][-1])]
    return _assemble(traces, title=title, x_title="Feature x1 (generated units)",
                     y_title="Feature x2 (generated units)", height=height, xaxis=xaxis, yaxis=yaxis,
                     legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0.0),
                     margin=dict(l=60, r=20, t=50, b=40))


def regression_fit_figure(result: Mapping, *, height: int = 420) -> go.Figure:
    """Train and test points, the true function and the fitted polynomial.

    ``result`` is a :meth:`RegressionLabResult.to_dict`. The y axis covers
    the data and the true function; a fitted curve that shoots off (high
    degree, no penalty) is cut at the edge rather than squashing the data.
    """
    settings = result.get("settings") or {}
    degree = settings.get("degree")
    title = f"Data, true function and fitted degree-{degree} polynomial" if degree else "Data and fit"
    x_tr, y_tr = _array(result.get("x_train")), _array(result.get("y_train"))
    x_te, y_te = _array(result.get("x_test")), _array(result.get("y_test"))
    if x_tr.size + x_te.size == 0:
        return empty_figure("No data: set a sample count of at least 20.", title=title, height=height)
    cx, ct, cf = (_array(result.get(k)) for k in ("curve_x", "curve_true", "curve_fit"))
    traces = [
        go.Scatter(x=x_tr, y=y_tr, mode="markers", name=f"Train ({x_tr.size})",
                   marker=dict(color=TRAIN_COLOR, size=8, line=dict(color="white", width=1)),
                   hovertemplate="train<br>x %{x:.2f}, y %{y:.2f}<extra></extra>"),
        go.Scatter(x=x_te, y=y_te, mode="markers", name=f"Test ({x_te.size})",
                   marker=dict(color=TEST_COLOR, size=9, symbol="diamond",
                               line=dict(color=PALETTE["black"], width=1)),
                   hovertemplate="test<br>x %{x:.2f}, y %{y:.2f}<extra></extra>"),
    ]
    if cx.size:
        traces += [
            go.Scatter(x=cx, y=ct, mode="lines", name="True function",
                       line=dict(color=PALETTE["black"], width=2, dash="dash"),
                       hovertemplate="true f(x)<br>x %{x:.2f}, y %{y:.2f}<extra></extra>"),
            go.Scatter(x=cx, y=cf, mode="lines", name="Fitted polynomial",
                       line=dict(color=PALETTE["vermillion"], width=3),
                       hovertemplate="fit<br>x %{x:.2f}, y %{y:.2f}<extra></extra>"),
        ]
    yaxis: dict = {}
    ys = np.concatenate([y_tr, y_te, ct])
    ys = ys[np.isfinite(ys)]
    if ys.size:
        lo, hi = float(ys.min()), float(ys.max())
        pad = 0.15 * max(hi - lo, 1e-6)
        yaxis["range"] = [lo - pad, hi + pad]
    return _assemble(traces, title=title, x_title="x (input, arbitrary units)",
                     y_title="y (target, arbitrary units)", height=height, yaxis=yaxis)


def validation_curve_figure(validation: Mapping, *, degree: int | None = None,
                            noise: float | None = None, height: int = 340) -> go.Figure:
    """Train and test RMSE against polynomial degree, current degree marked.

    Parameters
    ----------
    validation : dict
        ``{"degree": [...], "train_rmse": [...], "test_rmse": [...]}``.
    degree : int, optional
        The current degree, drawn as a vertical line.
    noise : float, optional
        The noise level, the best RMSE any model can expect, drawn as a
        horizontal line.
    height : int, default=340
    """
    title = "Validation curve: error against degree"
    degrees = list(validation.get("degree") or []) if validation else []
    if not degrees:
        return empty_figure("No validation curve: the model could not be fitted.", title=title, height=height)
    floor = 1e-6  # a perfect fit has RMSE 0, which a log axis cannot show
    train = np.maximum(_array(validation["train_rmse"]), floor)
    test = np.maximum(_array(validation["test_rmse"]), floor)
    traces = [
        go.Scatter(x=degrees, y=train, mode="lines+markers", name="Train RMSE",
                   line=dict(color=TRAIN_COLOR, width=2.5), marker=dict(size=7),
                   hovertemplate="degree %{x}<br>train RMSE %{y:.3g}<extra></extra>"),
        go.Scatter(x=degrees, y=test, mode="lines+markers", name="Test RMSE",
                   line=dict(color=PALETTE["vermillion"], width=2.5), marker=dict(size=8, symbol="diamond"),
                   hovertemplate="degree %{x}<br>test RMSE %{y:.3g}<extra></extra>"),
    ]
    shapes, annotations = [], []
    if noise is not None and noise > 0:
        shapes.append(dict(type="line", xref="paper", x0=0, x1=1, y0=noise, y1=noise,
                           line=dict(color=PALETTE["grey"], width=1.5, dash="dot")))
        annotations.append(dict(text=f"noise level {noise:g}", xref="paper", x=0.01, y=np.log10(noise),
                                xanchor="left", yanchor="top", showarrow=False,
                                font=dict(color=PALETTE["grey"], size=12)))
    if degree is not None:
        shapes.append(dict(type="line", yref="paper", x0=degree, x1=degree, y0=0, y1=1,
                           line=dict(color=PALETTE["black"], width=2, dash="dash")))
        # Inside the top of the plot, on the side with more room, clear of the legend above it.
        right_half = degree > (min(degrees) + max(degrees)) / 2
        annotations.append(dict(text=f"current degree {degree}", x=degree, yref="paper", y=0.99,
                                xanchor="right" if right_half else "left", xshift=-4 if right_half else 4,
                                yanchor="top", showarrow=False, font=dict(size=12),
                                bgcolor="rgba(255,255,255,0.85)"))
    return _assemble(traces, title=title, x_title="Polynomial degree", y_title="RMSE (target units, log scale)",
                     height=height, xaxis=dict(dtick=1, range=[min(degrees) - 0.5, max(degrees) + 0.5]),
                     yaxis=dict(type="log"), shapes=shapes, annotations=annotations)


def coefficient_figure(coefficients: Any, *, penalty: str | None = None, height: int = 300) -> go.Figure:
    """Bars of coefficient magnitude per power of x; exact zeros are labelled.

    Parameters
    ----------
    coefficients : sequence of float
        Weights of the standardised powers x^1..x^d.
    penalty : str, optional
        Named in the title.
    height : int, default=300
    """
    title = "Coefficient sizes"
    if penalty and penalty != "none":
        title += f" ({penalty})"
    coefs = _array(coefficients)
    if coefs.size == 0:
        return empty_figure("No coefficients: the model could not be fitted.", title=title, height=height)
    powers = [f"x<sup>{i}</sup>" for i in range(1, coefs.size + 1)]
    mags = np.abs(coefs)
    zero = mags == 0.0
    colors = [PALETTE["grey"] if z else (PALETTE["blue"] if c > 0 else PALETTE["orange"])
              for c, z in zip(coefs, zero)]
    n_zero = int(zero.sum())
    if n_zero:
        title += f": {n_zero} of {coefs.size} exactly 0"
    bar = go.Bar(x=powers, y=mags, marker_color=colors, name="|coefficient|",
                 text=["0" if z else "" for z in zero], textposition="outside",
                 customdata=coefs, hovertemplate="%{x}<br>coefficient %{customdata:.4g}<extra></extra>")
    return _assemble([bar], title=title, x_title="Power of x (blue +, orange −)",
                     y_title="|coefficient| (target units)", height=height, show_legend=False,
                     yaxis=dict(rangemode="tozero"))
