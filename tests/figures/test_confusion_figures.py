"""Figure helpers of the model views: per-class bars, thinned curves, sampled titles, legends below."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support, roc_curve

from app.figures.confusion import legend_below, per_class_figure, sampled_title, svg_scatter, thin_curve
from app.figures.performance import predicted_vs_actual_figure, roc_figure
from app.ml.metrics import per_class_report
from app.ml.threshold import threshold_sweep


def test_per_class_figure_shows_sklearn_numbers_per_class():
    y_true = [0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0, 2]
    fig = per_class_figure(per_class_report(y_true, y_pred, classes=[0, 1, 2]))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2], zero_division=0)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["Precision"].y) == pytest.approx(p)
    assert list(by_name["Recall"].y) == pytest.approx(r)
    assert list(by_name["F1"].y) == pytest.approx(f)
    assert list(by_name["F1"].customdata) == list(s)
    assert fig.layout.title.text and fig.layout.xaxis.title.text == "True class"
    assert "0 to 1" in fig.layout.yaxis.title.text


def test_per_class_figure_empty_state_says_why():
    fig = per_class_figure([])
    assert not fig.data and "no rows" in fig.layout.annotations[0].text


def test_thin_curve_keeps_endpoints_and_scalars():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    score = rng.random(5000)
    curve = threshold_sweep(y, score).roc_curve(max_points=2000)
    thin = thin_curve(curve, keys=("fpr", "tpr"), max_points=300)
    assert len(thin["fpr"]) == len(thin["tpr"]) == len(thin["thresholds"]) <= 300
    assert (thin["fpr"][0], thin["tpr"][0]) == (0.0, 0.0) and (thin["fpr"][-1], thin["tpr"][-1]) == (1.0, 1.0)
    assert thin["auc"] == curve["auc"]
    # Every kept point is a point of scikit-learn's curve.
    fpr, tpr, _ = roc_curve(y, score)
    pairs = set(zip(np.round(fpr, 12), np.round(tpr, 12)))
    assert all((round(a, 12), round(b, 12)) in pairs for a, b in zip(thin["fpr"], thin["tpr"]))
    assert thin_curve(curve, keys=("fpr", "tpr"), max_points=5000) is curve
    assert thin_curve(None, keys=("fpr", "tpr")) is None


def test_thin_pr_curve_keeps_one_shorter_thresholds():
    curve = threshold_sweep([0, 1] * 1000, np.linspace(0, 1, 2000)).pr_curve(max_points=2000)
    thin = thin_curve(curve, keys=("recall", "precision"), max_points=100)
    assert len(thin["recall"]) == len(thin["precision"]) <= 100
    assert len(thin["thresholds"]) == len(thin["recall"]) - 1


def test_sampled_title_says_when_only_a_sample_is_drawn():
    fig = roc_figure({"Test": threshold_sweep([0, 1, 1], [0.1, 0.7, 0.4]).roc_curve()})
    assert sampled_title(fig, shown=10, total=10).layout.title.text == "ROC curve"
    assert sampled_title(fig, shown=5_000, total=1_000_000).layout.title.text == \
        "ROC curve (a random sample of 5,000 of 1,000,000 rows)"


def test_legend_below_moves_the_legend_under_the_plot():
    fig = legend_below(roc_figure({"Test": threshold_sweep([0, 1, 1], [0.1, 0.7, 0.4]).roc_curve()}), height=500)
    assert fig.layout.legend.y < 0 and fig.layout.legend.orientation == "h" and fig.layout.height == 500


def test_svg_scatter_keeps_the_points_and_drops_webgl():
    fig = predicted_vs_actual_figure([1.0, 2.0, 3.0], [1.5, 2.0, 2.5])
    assert any(t.type == "scattergl" for t in fig.data)
    svg = svg_scatter(fig)
    assert [t.type for t in svg.data] == ["scatter", "scatter"]
    assert list(svg.data[0].x) == [1.0, 2.0, 3.0] and list(svg.data[0].y) == [1.5, 2.0, 2.5]
    assert svg.layout.title.text == "Predicted vs actual"
