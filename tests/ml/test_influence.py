"""Tests for app.ml.influence against sklearn.inspection on the same inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.inspection import partial_dependence, permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from app.ml.influence import (impurity_importance, mean_abs_shap, partial_dependence_1d, partial_dependence_2d,
                              permutation_importance_summary, transformed_feature_weights)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def iris_forest(iris):
    X, y = iris
    return RandomForestClassifier(n_estimators=15, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def mixed():
    """200 generated rows with 2 numeric and 2 categorical columns; the target uses both kinds."""
    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "income": rng.normal(50, 10, n),
        "color": rng.choice(["red", "green", "blue"], n),
        "size": rng.choice(["S", "M", "L", "XL"], n),
    })
    y = ((frame["age"] > 45) ^ (frame["color"] == "red")).astype(int).to_numpy()
    ct = ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                            ("cat", OneHotEncoder(), ["color", "size"])])
    model = make_pipeline(ct, RandomForestClassifier(n_estimators=20, random_state=0)).fit(frame, y)
    return frame, y, model


# ------------------------------------------------------------------ permutation

def test_permutation_importance_equals_sklearn(iris, iris_forest):
    X, y = iris
    result = permutation_importance_summary(iris_forest, X, y, n_repeats=4, random_state=3)
    reference = permutation_importance(iris_forest, X, y, n_repeats=4, random_state=3)
    by_name = dict(zip(result["features"], zip(result["mean"], result["std"])))
    for j, name in enumerate(X.columns):
        assert by_name[name][0] == pytest.approx(reference.importances_mean[j], abs=1e-12)
        assert by_name[name][1] == pytest.approx(reference.importances_std[j], abs=1e-12)
    assert result["mean"] == sorted(result["mean"], reverse=True)
    assert result["scoring"] == "accuracy" and result["n_samples"] == 150


def test_permutation_importance_on_a_seeded_sample(iris, iris_forest):
    X, y = iris
    result = permutation_importance_summary(iris_forest, X, y, n_repeats=3, random_state=5, max_samples=60,
                                            scoring="balanced_accuracy")
    rows = np.sort(np.random.default_rng(5).choice(150, size=60, replace=False))
    reference = permutation_importance(iris_forest, X.iloc[rows], y.to_numpy()[rows], n_repeats=3,
                                       random_state=5, scoring="balanced_accuracy")
    expected = dict(zip(X.columns, reference.importances_mean))
    assert {f: pytest.approx(v, abs=1e-12) for f, v in expected.items()} == dict(zip(result["features"],
                                                                                     result["mean"]))
    assert result["n_samples"] == 60 and result["scoring"] == "balanced_accuracy"


def test_permutation_importance_of_a_pipeline_is_per_original_feature(mixed):
    frame, y, model = mixed
    result = permutation_importance_summary(model, frame, y, n_repeats=2)
    assert sorted(result["features"]) == sorted(frame.columns)
    # The target is built from age and color only.
    assert set(result["features"][:2]) == {"age", "color"}


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(n_repeats=0), "n_repeats"),
    (dict(max_samples=1), "max_samples"),
])
def test_permutation_importance_validates_options(iris, iris_forest, kwargs, fragment):
    X, y = iris
    with pytest.raises(ValueError, match=fragment):
        permutation_importance_summary(iris_forest, X, y, **kwargs)


def test_permutation_importance_refuses_mismatched_rows(iris, iris_forest):
    X, y = iris
    with pytest.raises(ValueError, match="150 rows"):
        permutation_importance_summary(iris_forest, X, y[:10])


# ------------------------------------------------------------------ impurity

def test_impurity_importance_of_a_bare_forest(iris, iris_forest):
    X, _ = iris
    result = impurity_importance(iris_forest, feature_names=list(X.columns))
    expected = dict(zip(X.columns, iris_forest.feature_importances_))
    assert dict(zip(result["features"], result["mean"])) == {k: pytest.approx(v) for k, v in expected.items()}
    per_tree = np.array([t.feature_importances_ for t in iris_forest.estimators_])
    assert dict(zip(result["features"], result["std"])) == {
        k: pytest.approx(v) for k, v in zip(X.columns, per_tree.std(axis=0))}


def test_impurity_importance_sums_one_hot_columns_into_their_source(mixed):
    frame, _, model = mixed
    result = impurity_importance(model, feature_names=["size", "color", "income", "age"])
    raw = model[-1].feature_importances_
    names = model[:-1].get_feature_names_out()
    expected = {
        "age": raw[list(names).index("num__age")],
        "income": raw[list(names).index("num__income")],
        "color": sum(raw[i] for i, n in enumerate(names) if n.startswith("cat__color_")),
        "size": sum(raw[i] for i, n in enumerate(names) if n.startswith("cat__size_")),
    }
    assert dict(zip(result["features"], result["mean"])) == {k: pytest.approx(v) for k, v in expected.items()}
    assert sum(result["mean"]) == pytest.approx(1.0)


def test_impurity_importance_is_none_without_feature_importances(iris):
    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    assert impurity_importance(model, feature_names=list(X.columns)) is None


def test_weights_follow_nested_pipelines_and_remainder():
    frame = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "b": ["x", "y", "x", "z"], "c": [0.1, 0.2, 0.3, 0.4]})
    ct = ColumnTransformer([
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()), ["b"]),
        ("num", SimpleImputer(add_indicator=True), ["a"]),
    ], remainder="passthrough").fit(frame)
    weights = transformed_feature_weights(ct, ["a", "b", "c"])
    out_names = list(ct.get_feature_names_out())
    assert weights.shape == (len(out_names), 3)
    owners = [["a", "b", "c"][int(np.argmax(w))] for w in weights]
    assert owners == ["b", "b", "b", "a", "a", "c"], out_names
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)


# ------------------------------------------------------------------ partial dependence

def test_pdp_1d_equals_sklearn_for_multiclass(iris, iris_forest):
    X, _ = iris
    pdp = partial_dependence_1d(iris_forest, X, "petal length (cm)", grid_resolution=12, target_index=2)
    reference = partial_dependence(iris_forest, X, ["petal length (cm)"], grid_resolution=12, method="brute")
    np.testing.assert_allclose(pdp["grid"], reference["grid_values"][0])
    np.testing.assert_allclose(pdp["average"], reference["average"][2], atol=1e-12)
    assert pdp["target"] == 2 and pdp["kind"] == "numeric"


def test_ice_curves_average_to_the_pdp_when_every_row_is_sampled(iris, iris_forest):
    X, _ = iris
    pdp = partial_dependence_1d(iris_forest, X, "sepal width (cm)", grid_resolution=8, ice_samples=500,
                                target_index=1)
    ice = np.array(pdp["ice"])
    assert ice.shape == (150, len(pdp["grid"]))
    np.testing.assert_allclose(ice.mean(axis=0), pdp["average"], atol=1e-12)
    centered = np.array(pdp["centered_ice"])
    np.testing.assert_allclose(centered, ice - ice[:, :1])
    assert pdp["centered_average"][0] == 0.0


def test_ice_rows_are_a_seeded_sample(iris, iris_forest):
    X, _ = iris
    a = partial_dependence_1d(iris_forest, X, "sepal width (cm)", grid_resolution=5, ice_samples=10,
                              random_state=4)
    b = partial_dependence_1d(iris_forest, X, "sepal width (cm)", grid_resolution=5, ice_samples=10,
                              random_state=4)
    assert a["ice_rows"] == b["ice_rows"] and len(a["ice_rows"]) == 10
    reference = partial_dependence(iris_forest, X.loc[a["ice_rows"]], ["sepal width (cm)"], kind="individual",
                                   custom_values={"sepal width (cm)": a["grid"]}, method="brute")
    np.testing.assert_allclose(a["ice"], reference["individual"][0])


def test_pdp_binary_uses_the_positive_class_and_its_complement():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:200, :6]
    y = y[:200]
    model = LogisticRegression(max_iter=2000).fit(X, y)
    positive = partial_dependence_1d(model, X, "mean radius", grid_resolution=6, ice_samples=0)
    negative = partial_dependence_1d(model, X, "mean radius", grid_resolution=6, ice_samples=0, target_index=0)
    reference = partial_dependence(model, X, ["mean radius"], grid_resolution=6, method="brute")
    np.testing.assert_allclose(positive["average"], reference["average"][0])
    np.testing.assert_allclose(negative["average"], 1 - reference["average"][0])
    assert positive["ice"] == [] and positive["target"] == 1 and negative["target"] == 0


def test_pdp_categorical_feature_of_a_pipeline(mixed):
    frame, _, model = mixed
    pdp = partial_dependence_1d(model, frame, "color", categorical=True, ice_samples=5)
    reference = partial_dependence(model, frame, ["color"], categorical_features=["color"], method="brute")
    assert pdp["grid"] == list(reference["grid_values"][0])
    np.testing.assert_allclose(pdp["average"], reference["average"][0])
    assert pdp["kind"] == "categorical" and len(pdp["ice"]) == 5


def test_pdp_regression():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:150, :5]
    model = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, X["mean area"] / 100 + y[:150])
    pdp = partial_dependence_1d(model, X, "mean area", grid_resolution=7, ice_samples=3)
    reference = partial_dependence(model, X, ["mean area"], grid_resolution=7, method="brute")
    np.testing.assert_allclose(pdp["average"], reference["average"][0])
    assert pdp["target"] is None
    with pytest.raises(ValueError, match="target_index"):
        partial_dependence_1d(model, X, "mean area", target_index=1)


def test_pdp_2d_equals_sklearn(iris, iris_forest):
    X, _ = iris
    features = ["petal length (cm)", "sepal length (cm)"]
    pdp = partial_dependence_2d(iris_forest, X, features, grid_resolution=6, target_index=1)
    reference = partial_dependence(iris_forest, X, features, grid_resolution=6, method="brute")
    np.testing.assert_allclose(pdp["grid_x"], reference["grid_values"][0])
    np.testing.assert_allclose(pdp["grid_y"], reference["grid_values"][1])
    np.testing.assert_allclose(pdp["values"], reference["average"][1], atol=1e-12)


@pytest.mark.parametrize("call, fragment", [
    (lambda m, X: partial_dependence_1d(m, X, "nope"), "nope"),
    (lambda m, X: partial_dependence_1d(m, X.to_numpy(), "petal length (cm)"), "DataFrame"),
    (lambda m, X: partial_dependence_1d(m, X, "petal length (cm)", grid_resolution=1), "grid_resolution"),
    (lambda m, X: partial_dependence_1d(m, X, "petal length (cm)", target_index=3), "target_index"),
    (lambda m, X: partial_dependence_2d(m, X, ["petal length (cm)"] * 2), "two different"),
])
def test_pdp_validates_inputs(iris, iris_forest, call, fragment):
    X, _ = iris
    with pytest.raises(ValueError, match=fragment):
        call(iris_forest, X)


# ------------------------------------------------------------------ mean |SHAP|

def test_mean_abs_shap_ranks_by_mean_absolute_value():
    result = mean_abs_shap({"features": ["a", "b", "c"], "values": [[0.1, -2.0, 0.0], [-0.3, 1.0, 0.5]],
                            "output_space": "probability"})
    assert result["features"] == ["b", "c", "a"]
    assert result["values"] == pytest.approx([1.5, 0.25, 0.2])
    assert result["output_space"] == "probability"
    with pytest.raises(ValueError, match="rows x 3"):
        mean_abs_shap({"features": ["a", "b", "c"], "values": [[1.0, 2.0]]})


def test_decision_tree_doctest_claim(iris):
    X, y = iris
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    result = permutation_importance_summary(model, X, y, n_repeats=2)
    assert result["features"][0] == "petal width (cm)"


def test_docstring_examples():
    import doctest

    import app.ml.influence

    result = doctest.testmod(app.ml.influence)
    assert result.attempted > 0 and result.failed == 0
