"""Performance and threshold figures built from real (small) analysis results."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from sklearn.metrics import confusion_matrix

from app.figures.common import TEST_COLOR, TRAIN_COLOR
from app.figures.performance import (calibration_figure, confidence_figure, confusion_figure,
                                     error_by_decile_figure, metrics_bars_figure, pr_figure,
                                     predicted_vs_actual_figure, residual_histogram_figure,
                                     residuals_figure, roc_figure, score_distribution_figure)
from app.figures.threshold import cost_curve_figure, fairness_figure
from app.ml.calibration import calibration_data, confidence_distributions, score_distributions
from app.ml.fairness import group_rates
from app.ml.metrics import residual_summary
from app.ml.threshold import threshold_sweep


def is_empty_state(fig: go.Figure) -> bool:
    return len(fig.data) == 0 and len(fig.layout.annotations) == 1 \
        and bool(fig.layout.annotations[0].text)


def axis_titles(fig: go.Figure) -> tuple[str, str]:
    return fig.layout.xaxis.title.text, fig.layout.yaxis.title.text


def assert_styled(fig: go.Figure) -> None:
    assert fig.layout.title.text
    x, y = axis_titles(fig)
    assert x and y
    assert fig.layout.template.layout.paper_bgcolor is not None  # plotly_white applied
    fig.to_json()  # serialisable for the browser


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(2)
    n = 300
    y = rng.integers(0, 2, n)
    s = np.round(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1), 3)
    return y, s


@pytest.fixture(scope="module")
def sweeps(binary):
    y, s = binary
    half = len(y) // 2
    return {"Train": threshold_sweep(y[:half], s[:half]), "Test": threshold_sweep(y[half:], s[half:])}


def test_roc_figure(sweeps):
    curves = {k: sw.roc_curve() for k, sw in sweeps.items()}
    points = {k: {**sw.metrics_at(0.5), "threshold": 0.5, "tpr": sw.metrics_at(0.5)["recall"]}
              for k, sw in sweeps.items()}
    fig = roc_figure(curves, operating_points=points)
    assert_styled(fig)
    assert len(fig.data) == 1 + 2 + 2  # chance, two curves, two operating points
    chance, train, test = fig.data[:3]
    assert list(chance.x) == [0, 1] and list(chance.y) == [0, 1]
    assert f"{curves['Train']['auc']:.3f}" in train.name and "Train" in train.name
    assert train.line.color == TRAIN_COLOR and test.line.color == TEST_COLOR
    assert list(test.x) == curves["Test"]["fpr"]
    marker = fig.data[4]
    assert marker.x[0] == points["Test"]["fpr"] and marker.y[0] == points["Test"]["tpr"]
    assert "0.5" in marker.text[0]
    assert customdata_first(train) == "above every score"


def customdata_first(trace) -> str:
    return trace.customdata[0]


def test_pr_figure_with_prevalence(sweeps):
    curves = {k: sw.pr_curve() for k, sw in sweeps.items()}
    fig = pr_figure(curves, prevalence=0.42,
                    operating_points={"Test": {"recall": 0.6, "precision": 0.7, "threshold": 0.4}})
    assert_styled(fig)
    assert len(fig.data) == 4
    assert list(fig.data[0].y) == [0.42, 0.42] and "42.0%" in fig.data[0].name
    ap = curves["Test"]["average_precision"]
    assert f"{ap:.3f}" in fig.data[2].name
    assert len(fig.data[2].customdata) == len(curves["Test"]["recall"])


def test_curve_figures_empty_state():
    assert is_empty_state(roc_figure({}))
    one_class = threshold_sweep([1, 1], [0.2, 0.3]).roc_curve()
    assert is_empty_state(roc_figure({"Test": one_class}))
    assert is_empty_state(pr_figure({"Test": threshold_sweep([0, 0], [0.2, 0.3]).pr_curve()}))
    assert is_empty_state(calibration_figure({}))


def test_calibration_figure(binary):
    y, s = binary
    data = calibration_data(y, s, n_bins=8)
    fig = calibration_figure({"Test": data})
    assert_styled(fig)
    assert len(fig.data) == 2
    assert list(fig.data[1].x) == data["prob_pred"] and list(fig.data[1].y) == data["prob_true"]
    assert list(fig.data[1].customdata) == data["counts"]
    assert f"{data['brier']:.3f}" in fig.data[1].name


def test_score_distribution_figure(binary):
    y, s = binary
    dist = score_distributions(y, s, bins=20)
    fig = score_distribution_figure(dist, threshold=0.35)
    assert_styled(fig)
    assert len(fig.data) == 2 and all(isinstance(t, go.Bar) for t in fig.data)
    assert fig.layout.barmode == "overlay"
    assert list(fig.data[1].y) == dist["share"][1]
    assert list(fig.data[1].customdata) == dist["counts"][1]
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].x0 == 0.35
    assert is_empty_state(score_distribution_figure({}))
    assert is_empty_state(score_distribution_figure(score_distributions([], [], bins=4)))


def test_confidence_figure():
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
    dist = confidence_distributions([0, 0, 0], proba, classes=[0, 1], bins=5)
    fig = confidence_figure(dist)
    assert_styled(fig)
    assert [t.name.split(" ")[0] for t in fig.data] == ["Correct", "Incorrect"]
    assert sum(fig.data[0].y) == 2 and sum(fig.data[1].y) == 1
    assert "66.7%" in fig.layout.title.text
    empty = confidence_distributions([], np.zeros((0, 2)), classes=[0, 1])
    assert is_empty_state(confidence_figure(empty))


def test_metrics_bars_figure():
    fig = metrics_bars_figure({"precision": 0.8125, "recall": 0.5, "f1": None})
    assert_styled(fig)
    bar = fig.data[0]
    assert list(bar.x) == ["Precision", "Recall", "F1"]
    assert list(bar.text) == ["0.812", "0.500", "n/a"]
    assert list(fig.layout.yaxis.range) == [0, 1.1]
    assert is_empty_state(metrics_bars_figure({}))


def test_confusion_figure_counts_percentages_and_click_data():
    y = ["cat", "dog", "dog", "bird", "cat", "dog"]
    p = ["cat", "dog", "cat", "bird", "cat", "bird"]
    labels = ["bird", "cat", "dog"]
    m = confusion_matrix(y, p, labels=labels)
    fig = confusion_figure(m, labels)
    assert_styled(fig)
    assert axis_titles(fig) == ("Predicted class", "True class")
    heat = fig.data[0]
    assert list(heat.x) == labels and list(heat.y) == labels
    # row "dog" (true), column "cat" (predicted): one of six rows
    assert m[2, 1] == 1
    assert heat.text[2][1] == "1<br>16.7%"
    assert list(heat.customdata[2][1]) == ["dog", "cat"]
    assert len(fig.layout.annotations) == 9
    # Darkest cell (largest count) has white text, an empty cell dark text.
    texts = {(a.y, a.x): a for a in fig.layout.annotations}
    assert texts[("cat", "cat")].font.color == "#ffffff"
    assert texts[("bird", "dog")].font.color != "#ffffff"

    by_true = confusion_figure(m, labels, normalize="true")
    assert by_true.data[0].text[2][1] == "1<br>33.3%"
    assert by_true.data[0].z[2][1] == pytest.approx(1 / 3)
    by_pred = confusion_figure(m, labels, normalize="pred")
    assert by_pred.data[0].text[2][1] == "1<br>33.3%"  # cat predicted 3 times
    assert by_pred.data[0].text[0][0] == "1<br>50.0%"


def test_confusion_figure_empty_and_bad_inputs():
    assert is_empty_state(confusion_figure([], []))
    assert is_empty_state(confusion_figure([[0, 0], [0, 0]], [0, 1]))
    with pytest.raises(ValueError, match="normalize"):
        confusion_figure([[1]], [0], normalize="all")
    with pytest.raises(ValueError, match="labels"):
        confusion_figure([[1, 0], [0, 1]], [0, 1, 2])
    fig = confusion_figure(np.array([[3, 1], [0, 2]]), np.array([0, 1]))
    assert list(fig.data[0].customdata[0][1]) == [0, 1]
    assert type(fig.data[0].customdata[0][1][0]) is int


def test_predicted_vs_actual_figure_samples_large_inputs():
    rng = np.random.default_rng(0)
    y = rng.normal(size=12_345)
    pred = y + rng.normal(scale=0.1, size=y.size)
    fig = predicted_vs_actual_figure(y, pred, max_points=5000)
    assert_styled(fig)
    assert len(fig.data[0].x) == 5000
    assert "showing 5,000 of 12,345" in fig.layout.title.text
    identity = fig.data[1]
    assert identity.x[0] == identity.y[0] == pytest.approx(min(y.min(), pred.min()))
    small = predicted_vs_actual_figure([1.0, 2.0], [1.5, 2.5])
    assert small.layout.title.text == "Predicted vs actual"
    assert list(small.data[0].y) == [1.5, 2.5]
    assert is_empty_state(predicted_vs_actual_figure([], []))


def test_residual_figures():
    y = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    pred = np.array([1.5, 2.0, 2.0, 4.5, 7.0])
    res = y - pred
    fig = residuals_figure(pred, res)
    assert_styled(fig)
    assert list(fig.data[0].y) == res.tolist() and fig.layout.shapes[0].y0 == 0
    hist = residual_histogram_figure(res)
    assert_styled(hist)
    assert list(hist.data[0].x) == res.tolist()
    assert f"{res.mean():.4g}" in hist.layout.title.text
    assert is_empty_state(residuals_figure([], []))
    assert is_empty_state(residual_histogram_figure(None))


def test_error_by_decile_figure():
    rng = np.random.default_rng(4)
    y = rng.normal(size=200)
    pred = y + rng.normal(size=200)
    summary = residual_summary(y, pred, n_deciles=5)
    fig = error_by_decile_figure(summary)
    assert_styled(fig)
    assert [t.name for t in fig.data] == ["MAE", "RMSE"]
    assert list(fig.data[0].y) == summary["mae"] and list(fig.data[1].y) == summary["rmse"]
    assert len(fig.data[0].x) == 5
    assert is_empty_state(error_by_decile_figure({}))


def test_cost_curve_figure(sweeps):
    sw = sweeps["Test"]
    curve = sw.expected_cost_curve(cost_fp=1.0, cost_fn=4.0)
    opt = sw.cost_optimal_threshold(cost_fp=1.0, cost_fn=4.0)
    fig = cost_curve_figure(curve, threshold=0.5, optimum=opt)
    assert_styled(fig)
    assert list(fig.data[0].y) == curve["cost"]
    assert fig.data[1].x[0] == opt["threshold"] and fig.data[1].y[0] == opt["cost"]
    assert fig.layout.shapes[0].x0 == 0.5
    assert "false negative 4" in fig.layout.title.text
    assert is_empty_state(cost_curve_figure({}))


def test_fairness_figure_marks_flagged_gaps():
    rng = np.random.default_rng(9)
    n = 400
    groups = rng.choice(["a", "b"], n)
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + 0.6 * rng.random(n) + np.where(groups == "b", 0.3, 0.0), 0, 1)
    rates = group_rates(y, s, groups, threshold=0.5)
    assert "selection_rate" in rates["flagged"]
    fig = fairness_figure(rates)
    assert_styled(fig)
    assert len(fig.data) == 2 and fig.layout.barmode == "group"
    a = fig.data[0]
    assert list(a.y) == [rates["groups"][0][k] for k in ("selection_rate", "tpr", "fpr", "precision")]
    assert "gap" in a.x[0] and "\u26a0" in a.x[0]
    assert len(fig.layout.shapes) == len(rates["flagged"])
    # None rates (a group without positives) show as n/a, not an error.
    with_none = group_rates([0, 0, 1, 0], [0.9, 0.1, 0.8, 0.2], ["x", "x", "y", "y"], threshold=0.5)
    fig2 = fairness_figure(with_none)
    assert fig2.data[0].text[1] == "n/a"
    assert is_empty_state(fairness_figure({}))
    assert is_empty_state(fairness_figure({"groups": [{"group": "a", "size": 0}]}))
