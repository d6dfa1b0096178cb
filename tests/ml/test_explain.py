"""Tests for app.ml.explain: method choice, additivity, per-original-feature values."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from app.ml.explain import build_explainer, explain_rows, row_explanation, shap_sample
from app.ml.influence import mean_abs_shap

RTOL = 1e-6


def assert_additive(result: dict) -> None:
    values = np.asarray(result["values"])
    reconstructed = np.asarray(result["base_values"]) + values.sum(axis=1)
    np.testing.assert_allclose(reconstructed, result["output"], rtol=RTOL, atol=1e-12)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True, as_frame=True)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:250, :8], y[:250]


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.default_rng(2)
    n = 200
    frame = pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "income": rng.normal(50, 10, n),
        "color": rng.choice(["red", "green", "blue"], n),
        "size": rng.choice(["S", "M", "L"], n),
    })
    y = ((frame["age"] > 45) ^ (frame["color"] == "red")).astype(int).to_numpy()
    return frame, y


def mixed_pipeline(model):
    ct = ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                            ("cat", OneHotEncoder(), ["color", "size"])])
    return make_pipeline(ct, model)


# ---------------------------------------------------------------- bare models

def test_random_forest_multiclass_uses_tree_probabilities(iris):
    X, y = iris
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    explainer = build_explainer(model, X, task="multiclass")
    assert (explainer.method, explainer.is_fast, explainer.output_space) == ("tree", True, "probability")
    result = explain_rows(explainer, X.iloc[[0, 60, 120]])
    assert_additive(result)
    predicted = model.predict_proba(X.iloc[[0, 60, 120]])
    assert result["target_index"] == list(predicted.argmax(axis=1))
    np.testing.assert_allclose(result["output"], predicted.max(axis=1))
    # Three rows of three different classes: one base value per row.
    assert isinstance(result["base_value"], list) and len(set(result["base_value"])) == 3
    assert result["data"][0] == list(X.iloc[0])


def test_explicit_target_index_gives_one_base_value(iris):
    X, y = iris
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    result = explain_rows(build_explainer(model, X, task="multiclass"), X.iloc[:5], target_index=2)
    assert_additive(result)
    np.testing.assert_allclose(result["output"], model.predict_proba(X.iloc[:5])[:, 2])
    assert isinstance(result["base_value"], float) and result["target_label"] == [2] * 5
    # The base value is the mean predicted probability over the background (path-dependent forests:
    # the training class shares, which for iris are 1/3 each up to bootstrap noise).
    assert 0.2 < result["base_value"] < 0.45


def test_logistic_regression_uses_linear_log_odds(iris):
    X, y = iris
    model = LogisticRegression(max_iter=1000).fit(X, y)
    explainer = build_explainer(model, X, task="multiclass", max_background=150)
    assert (explainer.method, explainer.output_space) == ("linear", "log-odds")
    result = explain_rows(explainer, X.iloc[[10, 70, 140]], target_index=1)
    assert_additive(result)
    np.testing.assert_allclose(result["output"], model.decision_function(X.iloc[[10, 70, 140]])[:, 1])
    # Interventional linear SHAP is coef * (x - mean of the background).
    expected = model.coef_[1] * (X.iloc[[10, 70, 140]].to_numpy() - X.to_numpy().mean(axis=0))
    np.testing.assert_allclose(result["values"], expected, atol=1e-10)


def test_gradient_boosting_binary_in_probability_space(cancer):
    X, y = cancer
    model = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(X, y)
    explainer = build_explainer(model, X, task="binary", max_background=60)
    assert (explainer.method, explainer.output_space) == ("tree", "probability")
    positive = explain_rows(explainer, X.iloc[:8])
    assert_additive(positive)
    np.testing.assert_allclose(positive["output"], model.predict_proba(X.iloc[:8])[:, 1])
    negative = explain_rows(explainer, X.iloc[:8], target_index=0)
    assert_additive(negative)
    np.testing.assert_allclose(negative["values"], -np.asarray(positive["values"]))
    assert negative["base_value"] == pytest.approx(1 - positive["base_value"])


def test_gradient_boosting_regressor_raw_output(cancer):
    X, y = cancer
    target = X["mean radius"] * 3 + y
    model = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(X, target)
    explainer = build_explainer(model, X, task="regression")
    assert (explainer.method, explainer.output_space) == ("tree", "raw")
    result = explain_rows(explainer, X.iloc[:10])
    assert_additive(result)
    np.testing.assert_allclose(result["output"], model.predict(X.iloc[:10]))
    assert result["target_index"] == [None] * 10
    # mean radius drives the target: it has the largest mean |SHAP|.
    assert mean_abs_shap(result)["features"][0] == "mean radius"


# ---------------------------------------------------------------- pipelines

def test_pipeline_forest_sums_one_hot_contributions_into_original_features(mixed):
    frame, y = mixed
    model = mixed_pipeline(RandomForestClassifier(n_estimators=20, random_state=0)).fit(frame, y)
    explainer = build_explainer(model, frame, task="binary")
    assert explainer.method == "tree"
    rows = frame.iloc[:6]
    result = explain_rows(explainer, rows)
    assert result["features"] == ["age", "income", "color", "size"]
    assert_additive(result)
    # Reference: shap directly on the transformed columns, grouped by hand.
    direct = shap.TreeExplainer(model[-1]).shap_values(model[:-1].transform(rows))[:, :, 1]
    names = list(model[:-1].get_feature_names_out())
    groups = {"age": ["num__age"], "income": ["num__income"],
              "color": [n for n in names if n.startswith("cat__color_")],
              "size": [n for n in names if n.startswith("cat__size_")]}
    expected = np.column_stack([direct[:, [names.index(n) for n in groups[f]]].sum(axis=1)
                                for f in result["features"]])
    np.testing.assert_allclose(result["values"], expected, atol=1e-12)
    assert result["data"][0][2] == rows.iloc[0]["color"]


def test_pipeline_logistic_regression_matches_coefficients_per_group(mixed):
    frame, y = mixed
    model = mixed_pipeline(LogisticRegression(max_iter=1000)).fit(frame, y)
    explainer = build_explainer(model, frame, task="binary", max_background=500)
    assert (explainer.method, explainer.output_space) == ("linear", "log-odds")
    rows = frame.iloc[:5]
    result = explain_rows(explainer, rows)
    assert_additive(result)
    transformed = model[:-1].transform(frame)
    per_column = model[-1].coef_[0] * (model[:-1].transform(rows) - transformed.mean(axis=0))
    names = list(model[:-1].get_feature_names_out())
    color = [i for i, n in enumerate(names) if n.startswith("cat__color_")]
    j = result["features"].index("color")
    np.testing.assert_allclose(np.asarray(result["values"])[:, j], per_column[:, color].sum(axis=1), atol=1e-10)


def test_svc_falls_back_to_kernel_with_a_small_budget(mixed):
    frame, y = mixed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # SVC(probability=True) is deprecated in 1.9
        model = mixed_pipeline(SVC(probability=True, random_state=0)).fit(frame, y)
    explainer = build_explainer(model, frame, task="binary", max_background=15, max_evals=20)
    assert (explainer.method, explainer.is_fast, explainer.output_space) == ("kernel", False, "probability")
    assert explainer.max_evals == 20
    rows = frame.iloc[:3]
    result = explain_rows(explainer, rows)
    assert_additive(result)
    np.testing.assert_allclose(result["output"], model.predict_proba(rows)[:, 1])
    again = explain_rows(explainer, rows)
    assert again["values"] == result["values"]  # seeded
    assert result["features"] == ["age", "income", "color", "size"]


def test_multiclass_gradient_boosting_falls_back_to_kernel(iris):
    # shap's TreeExplainer supports only binary GradientBoostingClassifier.
    X, y = iris
    model = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y)
    explainer = build_explainer(model, X, task="multiclass", max_background=10, max_evals=16)
    assert explainer.method == "kernel"
    result = explain_rows(explainer, X.iloc[[0, 100]])
    assert_additive(result)


# ---------------------------------------------------------------- sample, rows, validation

def test_shap_sample_is_seeded_and_sized(iris):
    X, y = iris
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    a = shap_sample(model, X, task="multiclass", n=30, random_state=1)
    b = shap_sample(model, X, task="multiclass", n=30, random_state=1)
    assert a["n_samples"] == 30 and a["n_total"] == 150 and a["is_fast"]
    assert a["index"] == b["index"] and a["values"] == b["values"]
    expected_rows = np.sort(np.random.default_rng(1).choice(150, size=30, replace=False))
    assert a["index"] == list(X.index[expected_rows])
    assert_additive(a)
    assert shap_sample(model, X.iloc[:10], task="multiclass", n=30)["n_samples"] == 10


def test_row_explanation_flattens_one_row(iris):
    X, y = iris
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    result = explain_rows(build_explainer(model, X, task="multiclass"), X.iloc[[0, 100]])
    row = row_explanation(result, 1)
    assert row["base_value"] + sum(row["values"]) == pytest.approx(row["output"])
    assert row["data"] == list(X.iloc[100]) and row["target_label"] == 2
    with pytest.raises(ValueError, match="row 5"):
        row_explanation(result, 5)


def test_validation_messages(iris):
    X, y = iris
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="task"):
        build_explainer(model, X, task="ranking")
    with pytest.raises(ValueError, match="background"):
        build_explainer(model, X.to_numpy(), task="multiclass")
    explainer = build_explainer(model, X, task="multiclass")
    with pytest.raises(ValueError, match="petal width"):
        explain_rows(explainer, X.drop(columns=["petal width (cm)"]))
    with pytest.raises(ValueError, match="target_index"):
        explain_rows(explainer, X.iloc[:2], target_index=3)


def test_docstring_examples():
    import doctest

    import app.ml.explain

    result = doctest.testmod(app.ml.explain)
    assert result.attempted > 0 and result.failed == 0
