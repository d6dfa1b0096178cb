"""Headline metrics against scikit-learn on the same inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from app.ml.metrics import (METRIC_INFO, classification_metrics, per_class_report,
                            regression_metrics, residual_summary)


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    pred = (score >= 0.5).astype(int)
    return y, pred, score


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X[::2], y[::2])
    return y[1::2], model.predict(X[1::2]), model.predict_proba(X[1::2]), model.classes_


def test_binary_metrics_match_sklearn(binary):
    y, pred, score = binary
    m = classification_metrics(y, pred, y_score=score)
    assert m["n"] == len(y)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    for avg in ("macro", "weighted"):
        assert m[f"precision_{avg}"] == pytest.approx(skm.precision_score(y, pred, average=avg))
        assert m[f"recall_{avg}"] == pytest.approx(skm.recall_score(y, pred, average=avg))
        assert m[f"f1_{avg}"] == pytest.approx(skm.f1_score(y, pred, average=avg))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, score))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, score))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, score))
    json.dumps(m)


def test_binary_positive_class_is_the_first_label(binary):
    y, pred, score = binary
    # Scores of class 0: same data seen from the other side.
    m = classification_metrics(y, pred, y_score=1 - score, classes=[0, 1], positive_class=0)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 0, 1 - score))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y == 0, 1 - score))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, score))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y == 0, 1 - score))


def test_string_labels(binary):
    y, pred, score = binary
    names = np.array(["ham", "spam"])
    m = classification_metrics(names[y], names[pred], y_score=score, positive_class="spam")
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, score))


def test_multiclass_metrics_match_sklearn(iris):
    y, pred, proba, classes = iris
    m = classification_metrics(y, pred, y_score=proba, classes=classes)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, proba, average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert m["brier"] is None
    assert "precision" not in m


def test_multiclass_unsorted_class_order(iris):
    y, pred, proba, classes = iris
    order = [2, 0, 1]
    m = classification_metrics(y, pred, y_score=proba[:, order], classes=classes[order])
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))


def test_undefined_values_are_none():
    y = [1, 1, 1]
    m = classification_metrics(y, [1, 0, 1], y_score=[0.9, 0.2, 0.8], classes=[0, 1])
    assert m["roc_auc"] is None
    assert m["pr_auc"] == pytest.approx(1.0)
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in m.values())
    neg = classification_metrics([0, 0], [0, 0], y_score=[0.1, 0.2], classes=[0, 1])
    assert neg["roc_auc"] is None and neg["pr_auc"] is None
    assert neg["precision"] == 0.0 and neg["recall"] == 0.0
    # Multiclass with a class missing from y_true: ovr AUC undefined.
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1]])
    mc = classification_metrics([0, 1, 0], [0, 1, 0], y_score=proba, classes=[0, 1, 2])
    assert mc["roc_auc"] is None and mc["pr_auc"] is None
    assert mc["log_loss"] == pytest.approx(skm.log_loss([0, 1, 0], proba, labels=[0, 1, 2]))
    assert classification_metrics([1], [1])["n"] == 1


def test_no_scores_gives_none_score_metrics(binary):
    y, pred, _ = binary
    m = classification_metrics(y, pred)
    assert m["roc_auc"] is None and m["log_loss"] is None and m["brier"] is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(y_true=[0, 1], y_pred=[0]), "rows"),
    (dict(y_true=[], y_pred=[]), "empty"),
    (dict(y_true=[0, 1], y_pred=[0, 2], classes=[0, 1]), "y_pred has labels not in classes"),
    (dict(y_true=[0, 1], y_pred=[0, 1], y_score=[0.1, np.nan]), "finite"),
    (dict(y_true=[0, 1, 2], y_pred=[0, 1, 2], y_score=[[0.5, 0.5]] * 3), "shape"),
    (dict(y_true=[0, 1], y_pred=[0, 1], positive_class=5, classes=[0, 1]), "positive_class"),
])
def test_bad_inputs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(**kwargs)


def test_per_class_report_equals_classification_report(iris):
    y, pred, _, classes = iris
    ref = skm.classification_report(y, pred, labels=classes, output_dict=True)
    rows = per_class_report(y, pred, classes=classes)
    assert [r["class"] for r in rows] == list(classes)
    for r in rows:
        expected = ref[str(r["class"])]
        assert r["precision"] == pytest.approx(expected["precision"])
        assert r["recall"] == pytest.approx(expected["recall"])
        assert r["f1"] == pytest.approx(expected["f1-score"])
        assert r["support"] == expected["support"]
    json.dumps(rows)


def test_per_class_report_with_absent_class():
    rows = per_class_report(["a", "b"], ["a", "a"], classes=["a", "b", "c"])
    ref = skm.classification_report(["a", "b"], ["a", "a"], labels=["a", "b", "c"],
                                    output_dict=True, zero_division=0)
    for r in rows:
        assert r["precision"] == pytest.approx(ref[r["class"]]["precision"])
        assert r["support"] == ref[r["class"]]["support"]
    assert rows[2]["support"] == 0 and rows[2]["f1"] == 0.0


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    pred = LinearRegression().fit(X[::2], y[::2]).predict(X[1::2])
    return y[1::2], pred


def test_regression_metrics_match_sklearn(diabetes):
    y, pred = diabetes
    m = regression_metrics(y, pred)
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert m["median_ae"] == pytest.approx(skm.median_absolute_error(y, pred))
    assert m["max_error"] == pytest.approx(skm.max_error(y, pred))
    assert m["mean_residual"] == pytest.approx(np.mean(y - pred))
    assert m["n"] == len(y)
    json.dumps(m)


def test_regression_single_row_r2_is_none():
    m = regression_metrics([3.0], [2.0])
    assert m["r2"] is None and m["mae"] == 1.0 and m["mean_residual"] == 1.0
    with pytest.raises(ValueError, match="finite"):
        regression_metrics([1.0, np.inf], [1.0, 2.0])


def test_residual_summary_bins(diabetes):
    y, pred = diabetes
    s = residual_summary(y, pred)
    assert len(s["residuals"]) == len(y)
    np.testing.assert_allclose(s["residuals"], y - pred)
    edges = np.asarray(s["edges"])
    np.testing.assert_allclose(edges, np.quantile(pred, np.linspace(0, 1, 11)))
    assert sum(s["count"]) == len(y) and len(s["count"]) == 10
    # Recompute each bin's MAE and RMSE by hand.
    for i in range(10):
        lo, hi = edges[i], edges[i + 1]
        mask = (pred >= lo) & ((pred < hi) if i < 9 else (pred <= hi))
        assert s["count"][i] == mask.sum()
        res = (y - pred)[mask]
        assert s["mae"][i] == pytest.approx(np.abs(res).mean())
        assert s["rmse"][i] == pytest.approx(np.sqrt((res ** 2).mean()))
        assert s["mean_predicted"][i] == pytest.approx(pred[mask].mean())
    json.dumps(s)


def test_residual_summary_ties_merge_bins():
    s = residual_summary([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0])
    assert s["count"] == [4] and s["edges"] == [5.0, 5.0]
    assert s["mae"] == [pytest.approx(2.5)]
    with pytest.raises(ValueError, match="n_deciles"):
        residual_summary([1.0], [1.0], n_deciles=0)


def test_metric_info_covers_every_key(binary, diabetes):
    y, pred, score = binary
    keys = set(classification_metrics(y, pred, y_score=score)) | set(regression_metrics(*diabetes))
    assert keys <= set(METRIC_INFO)
    for key, info in METRIC_INFO.items():
        assert info["label"] and info["meaning"].endswith("."), key
        assert info["higher_is_better"] in (True, False, None)
    assert METRIC_INFO["log_loss"]["higher_is_better"] is False
    assert METRIC_INFO["roc_auc"]["higher_is_better"] is True


def test_docstring_examples_run():
    import doctest

    import app.ml.metrics as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
