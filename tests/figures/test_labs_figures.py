"""Lab figures: the traces carry the computed numbers, empty states say why."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from app.figures.common import PALETTE
from app.figures.labs import (
    CLASS_COLORS,
    boundary_figure,
    coefficient_figure,
    regression_fit_figure,
    validation_curve_figure,
)
from app.ml.boundary import BoundarySettings, fit_boundary, run_boundary
from app.ml.regression_lab import RegressionSettings, run_regression_lab

OKABE_ITO = set(PALETTE.values())


def _by_name(fig: go.Figure, prefix: str) -> list:
    return [t for t in fig.data if (t.name or "").startswith(prefix)]


@pytest.fixture(scope="module")
def svm_result():
    return run_boundary(BoundarySettings(n_samples=120, noise=0.3, C=10.0, gamma=5.0), resolution=30).to_dict()


def test_boundary_figure_draws_regions_boundary_points_and_svm_details(svm_result):
    fig = boundary_figure(svm_result)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(heat) == 1
    np.testing.assert_allclose(np.asarray(heat[0].z, dtype=float),
                               np.clip(np.asarray(svm_result["surface"]["z"]), -3, 3), rtol=1e-6, atol=1e-6)
    assert heat[0].zmid == 0.0
    assert len(_by_name(fig, "Decision boundary")) == 1
    assert len(_by_name(fig, "Margin")) == 1
    train = _by_name(fig, "Train")
    test = _by_name(fig, "Test")
    assert sum(len(t.x) for t in train) == len(svm_result["y_train"])
    assert sum(len(t.x) for t in test) == len(svm_result["y_test"])
    assert {t.marker.symbol for t in train} == {"circle"} and {t.marker.symbol for t in test} == {"diamond"}
    assert {t.marker.color for t in train} == set(CLASS_COLORS)
    (sv,) = _by_name(fig, "Support vector")
    assert len(sv.x) == svm_result["n_support"]
    wrong = _by_name(fig, "Misclassified")
    assert sum(len(t.x) for t in wrong) == len(svm_result["misclassified"])
    assert "decision value" in fig.layout.title.text
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert fig.layout.template.layout.paper_bgcolor is not None  # plotly_white applied


def test_boundary_figure_compare_outline(svm_result):
    previous = {"x": [0.0, 1.0, None, 2.0, 3.0], "y": [0.0, 1.0, None, 1.0, 0.0]}
    fig = boundary_figure(svm_result, previous=previous)
    (prev,) = _by_name(fig, "Previous boundary")
    assert prev.line.dash == "dot" and prev.line.color in OKABE_ITO
    assert len(prev.x) == 5 and np.isnan(prev.x[2])
    assert not _by_name(boundary_figure(svm_result), "Previous boundary")
    # A malformed outline is ignored, not drawn.
    assert not _by_name(boundary_figure(svm_result, previous={"x": [1, 2], "y": [1]}), "Previous")


def test_probability_models_shade_probability_without_margins():
    r = run_boundary(BoundarySettings(model="knn", k=5, n_samples=80), resolution=20).to_dict()
    fig = boundary_figure(r)
    (heat,) = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert (heat.zmin, heat.zmax, heat.zmid) == (0.0, 1.0, 0.5)
    assert not _by_name(fig, "Margin") and not _by_name(fig, "Support vector")
    assert "probability" in fig.layout.title.text


def test_boundary_figure_for_an_unfitted_result_shows_points_and_says_why():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5], [3.0, 1.0]])
    r = fit_boundary(X[:3], X[3:], [1, 1, 1], [0], settings=BoundarySettings()).to_dict()
    fig = boundary_figure(r)
    assert not [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert "not fitted" in fig.layout.title.text
    empty = boundary_figure({"error": "Nothing to show."})
    assert empty.layout.annotations[0].text == "Nothing to show."


@pytest.fixture(scope="module")
def reg_result():
    return run_regression_lab(RegressionSettings(degree=12, penalty="lasso", alpha=0.05)).to_dict()


def test_regression_fit_figure(reg_result):
    fig = regression_fit_figure(reg_result)
    names = [t.name for t in fig.data]
    assert names[:2] == [f"Train ({len(reg_result['x_train'])})", f"Test ({len(reg_result['x_test'])})"]
    (true,) = _by_name(fig, "True function")
    (fit,) = _by_name(fig, "Fitted polynomial")
    np.testing.assert_allclose(fit.y, reg_result["curve_fit"])
    np.testing.assert_allclose(true.y, reg_result["curve_true"])
    assert "degree-12" in fig.layout.title.text
    lo, hi = fig.layout.yaxis.range
    assert lo <= min(reg_result["y_train"]) and hi >= max(reg_result["y_train"])
    assert regression_fit_figure({}).layout.annotations[0].text.startswith("No data")


def test_validation_curve_figure_marks_degree_and_uses_log_axis(reg_result):
    vc = reg_result["validation"]
    fig = validation_curve_figure(vc, degree=12, noise=0.5)
    (train,) = _by_name(fig, "Train RMSE")
    (test,) = _by_name(fig, "Test RMSE")
    assert list(train.x) == list(range(1, 16))
    np.testing.assert_allclose(test.y, vc["test_rmse"])
    assert fig.layout.yaxis.type == "log"
    shapes = fig.layout.shapes
    assert any(s.x0 == 12 and s.x1 == 12 for s in shapes)  # the current degree
    assert any(s.y0 == 0.5 and s.y1 == 0.5 for s in shapes)  # the noise level
    # A perfect fit (RMSE 0) is drawn at the floor, not dropped from the log axis.
    fig = validation_curve_figure({"degree": [1, 2], "train_rmse": [0.0, 0.0], "test_rmse": [0.1, 0.0]})
    assert min(fig.data[0].y) > 0
    assert "No validation curve" in validation_curve_figure({}).layout.annotations[0].text


def test_coefficient_figure_shows_lasso_zeros(reg_result):
    coefs = reg_result["coefficients"]
    fig = coefficient_figure(coefs, penalty="lasso")
    (bar,) = fig.data
    np.testing.assert_allclose(bar.y, np.abs(coefs))
    n_zero = sum(c == 0.0 for c in coefs)
    assert n_zero > 0
    assert list(bar.text).count("0") == n_zero
    assert f"{n_zero} of {len(coefs)} exactly 0" in fig.layout.title.text
    assert set(bar.marker.color) <= OKABE_ITO
    assert "No coefficients" in coefficient_figure([]).layout.annotations[0].text


def test_every_figure_passes_full_plotly_validation(svm_result, reg_result):
    """The figures skip per-property validation for speed; prove they would pass it."""
    figures = [
        boundary_figure(svm_result, previous={"x": [0.0, 1.0], "y": [1.0, 0.0]}),
        regression_fit_figure(reg_result),
        validation_curve_figure(reg_result["validation"], degree=12, noise=0.5),
        coefficient_figure(reg_result["coefficients"], penalty="lasso"),
    ]
    for fig in figures:
        rebuilt = go.Figure(fig.to_plotly_json())  # validates every property; raises on a bad one
        assert rebuilt.layout.template.layout.paper_bgcolor == "white"
        assert rebuilt.layout.title.text and rebuilt.layout.font.family
