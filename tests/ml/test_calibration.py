"""Calibration data and score distributions against scikit-learn / numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from app.ml.calibration import calibration_data, confidence_distributions, score_distributions


@pytest.fixture(scope="module")
def probs():
    rng = np.random.default_rng(5)
    p = rng.random(500)
    y = (rng.random(500) < p ** 1.5).astype(int)
    return y, p


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [5, 10, 23])
def test_equals_sklearn_calibration_curve(probs, strategy, n_bins):
    y, p = probs
    d = calibration_data(y, p, n_bins=n_bins, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    np.testing.assert_allclose(d["prob_true"], prob_true)
    np.testing.assert_allclose(d["prob_pred"], prob_pred)
    assert len(d["counts"]) == len(prob_true)
    assert sum(d["counts"]) == len(y)
    assert d["brier"] == pytest.approx(brier_score_loss(y, p))
    json.dumps(d)


def test_counts_per_bin_and_empty_bins_dropped():
    y = [0, 0, 1, 1, 1]
    p = [0.05, 0.08, 0.95, 0.91, 0.99]
    d = calibration_data(y, p, n_bins=10)
    assert d["counts"] == [2, 3]
    assert d["prob_true"] == [0.0, 1.0]
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10)
    np.testing.assert_allclose(d["prob_pred"], prob_pred)


def test_string_positive_label(probs):
    y, p = probs
    names = np.array(["bad", "good"])[y]
    d = calibration_data(names, p, positive_label="good")
    prob_true, _ = calibration_curve(names, p, n_bins=10, pos_label="good")
    np.testing.assert_allclose(d["prob_true"], prob_true)
    with pytest.raises(ValueError, match="positive_label"):
        calibration_data(names, p)


@pytest.mark.parametrize("kwargs, match", [
    (dict(y_true=[0, 1], y_prob=[0.1, 1.2]), r"\[0, 1\]"),
    (dict(y_true=[0, 1, 2], y_prob=[0.1, 0.2, 0.3]), "binary"),
    (dict(y_true=[0, 1], y_prob=[0.1, 0.2], strategy="kmeans"), "strategy"),
    (dict(y_true=[0, 1], y_prob=[0.1, 0.2], n_bins=0), "n_bins"),
    (dict(y_true=[0, 1], y_prob=[0.1]), "rows"),
])
def test_bad_inputs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        calibration_data(**kwargs)


def test_score_distributions_equal_numpy_histograms(probs):
    y, p = probs
    d = score_distributions(y, p, bins=20)
    edges = np.linspace(0, 1, 21)
    np.testing.assert_allclose(d["edges"], edges)
    assert d["classes"] == [0, 1]
    for i, c in enumerate([0, 1]):
        expected = np.histogram(p[y == c], bins=edges)[0]
        assert d["counts"][i] == expected.tolist()
        assert d["totals"][i] == int((y == c).sum())
        np.testing.assert_allclose(d["share"][i], expected / (y == c).sum())
    json.dumps(d)


def test_score_distributions_classes_order_and_missing_class():
    d = score_distributions(["a", "a"], [0.2, 0.9], bins=2, classes=["b", "a"])
    assert d["classes"] == ["b", "a"]
    assert d["counts"] == [[0, 0], [1, 1]]
    assert d["share"][0] == [0.0, 0.0]


def test_score_distributions_outside_unit_interval_use_data_range():
    d = score_distributions([0, 1, 1], [-2.0, 0.5, 3.0], bins=5)
    assert d["edges"][0] == -2.0 and d["edges"][-1] == 3.0
    assert sum(sum(c) for c in d["counts"]) == 3


def test_confidence_distributions():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.95, 0.05, 0.0]])
    y = ["x", "z", "x", "x"]
    d = confidence_distributions(y, proba, classes=["x", "y", "z"], bins=10)
    # predictions: x (correct), z (correct), y (wrong), x (correct)
    assert (d["n_correct"], d["n_incorrect"]) == (3, 1)
    assert d["accuracy"] == 0.75
    assert d["mean_confidence"] == pytest.approx(np.mean([0.7, 0.6, 0.5, 0.95]))
    edges = np.linspace(0, 1, 11)
    assert d["correct"] == np.histogram([0.7, 0.6, 0.95], bins=edges)[0].tolist()
    assert d["incorrect"] == np.histogram([0.5], bins=edges)[0].tolist()
    with pytest.raises(ValueError, match="shape"):
        confidence_distributions(y, proba[:, :2], classes=["x", "y", "z"])
    empty = confidence_distributions([], np.zeros((0, 2)), classes=[0, 1], bins=4)
    assert empty["accuracy"] is None and empty["correct"] == [0, 0, 0, 0]


def test_docstring_examples_run():
    import doctest

    import app.ml.calibration as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
