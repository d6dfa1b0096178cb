"""Tests for app.ml.predict: validation of forged rows, typical rows, one-row predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import entropy as scipy_entropy
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import BayesianRidge, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from app.ml.predict import median_row, predict_row, rows_to_frame, validate_row

META = [
    {"name": "age", "kind": "numeric", "min": 18.0, "max": 90.0, "q01": 19.0, "q25": 30.0, "median": 42.0,
     "q75": 55.0, "q99": 88.0, "integer": True, "log_scale": False},
    {"name": "income", "kind": "numeric", "min": 0.0, "max": 200.0, "q01": 5.0, "q25": 30.0, "median": 50.0,
     "q75": 70.0, "q99": 190.0, "integer": False, "log_scale": False},
    {"name": "color", "kind": "categorical", "levels": ["blue", "green", "red"]},
    {"name": "grade", "kind": "categorical", "levels": [1, 2, 3]},
]
GOOD = {"age": 42, "income": 51.5, "color": "red", "grade": 2}


def mixed_frame(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.integers(18, 91, n),
        "income": rng.uniform(0, 200, n),
        "color": rng.choice(["blue", "green", "red"], n),
        "grade": rng.choice([1, 2, 3], n),
    })
    y = ((frame["age"] > 45) ^ (frame["color"] == "red")).astype(int).to_numpy()
    return frame, y


def mixed_pipeline(model) -> object:
    ct = ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["color", "grade"])])
    return make_pipeline(ct, model)


# ---------------------------------------------------------------- validate_row

def test_valid_row_is_coerced_to_plain_python():
    clean, messages = validate_row({"age": np.float64(42.0), "income": np.int64(51), "color": "red",
                                    "grade": "2"}, feature_meta=META)
    assert messages == []
    assert clean == {"age": 42, "income": 51.0, "color": "red", "grade": 2}
    assert type(clean["age"]) is int and type(clean["income"]) is float and type(clean["grade"]) is int


@pytest.mark.parametrize("feature, value, fragment", [
    ("age", "42", "not a number"),
    ("age", {"$gt": 1}, "not a number"),
    ("age", [42], "not a number"),
    ("age", True, "not a number"),
    ("age", float("nan"), "missing"),
    ("age", float("inf"), "not a finite number"),
    ("age", 1e300, "outside the range"),
    ("age", 17, "outside the range"),
    ("age", 42.5, "not a whole number"),
    ("age", None, "missing"),
    ("income", -0.01, "outside the range"),
    ("color", "purple", "not one of the known categories"),
    ("color", {"a": 1}, "not one of the known categories"),
    ("color", None, "missing"),
    ("grade", 4, "not one of the known categories"),
    ("grade", float("nan"), "not one of the known categories"),
])
def test_each_bad_value_gives_a_message_naming_it(feature, value, fragment):
    row = dict(GOOD, **{feature: value})
    clean, messages = validate_row(row, feature_meta=META)
    assert len(messages) == 1
    assert messages[0].startswith(f"{feature}:") and fragment in messages[0]
    assert feature not in clean
    assert set(clean) == set(GOOD) - {feature}


def test_missing_and_unknown_keys_are_reported():
    row = {k: v for k, v in GOOD.items() if k != "income"}
    row["salary"] = 3
    _, messages = validate_row(row, feature_meta=META)
    assert any("salary" in m and "Unknown" in m for m in messages)
    assert any(m.startswith("income:") and "missing" in m for m in messages)


def test_range_bounds_are_inclusive():
    _, messages = validate_row(dict(GOOD, age=18, income=200.0), feature_meta=META)
    assert messages == []


@pytest.mark.parametrize("row", [None, "age=3", [1, 2], 42])
def test_a_row_that_is_not_a_mapping_gives_a_message(row):
    clean, messages = validate_row(row, feature_meta=META)
    assert clean == {} and len(messages) == 1


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["age", "income", "color", "grade", "x", "__class__"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                                 st.text(max_size=5), st.lists(st.integers(), max_size=2),
                                 st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))))
def test_forged_rows_never_raise(row):
    clean, messages = validate_row(row, feature_meta=META)
    # Either the row is fully valid, or every missing/bad feature is named.
    for meta in META:
        assert meta["name"] in clean or any(m.startswith(meta["name"] + ":") for m in messages)
    if not messages:
        assert set(clean) == {m["name"] for m in META}


# ---------------------------------------------------------------- median_row

def test_median_row_respects_integers_and_modes():
    frame = pd.DataFrame({"age": [20, 30, 41, 60], "income": [1.0, 2.0, 3.0, 100.0],
                          "color": ["red", "blue", "red", "green"], "grade": [3, 3, 1, 2]})
    row = median_row(frame, feature_meta=META)
    assert row == {"age": 35, "income": 2.5, "color": "red", "grade": 3}
    assert type(row["age"]) is int
    assert validate_row(row, feature_meta=META)[1] == []


def test_median_row_falls_back_to_metadata_for_missing_columns():
    row = median_row(pd.DataFrame({"age": [np.nan, np.nan]}), feature_meta=META)
    assert row == {"age": 42, "income": 50.0, "color": "blue", "grade": 1}


def test_median_row_ties_go_to_first_listed_level():
    frame = pd.DataFrame({"age": [20], "income": [1.0], "color": ["red", "green"][:1], "grade": [2]})
    frame = pd.concat([frame, frame.assign(color="green")], ignore_index=True)
    assert median_row(frame, feature_meta=META)["color"] == "green"


# ---------------------------------------------------------------- rows_to_frame

def test_rows_to_frame_uses_training_dtypes():
    frame = rows_to_frame([GOOD], feature_meta=META, columns=["grade", "color", "income", "age"])
    assert list(frame.columns) == ["grade", "color", "income", "age"]
    assert frame["age"].dtype == np.int64 and frame["income"].dtype == np.float64
    assert frame["grade"].dtype == np.int64
    training, _ = mixed_frame(5)
    assert frame["color"].dtype == training["color"].dtype


# ---------------------------------------------------------------- predict_row

def test_classifier_prediction_matches_predict_proba():
    X, y = load_iris(return_X_y=True, as_frame=True)
    names = ["setosa", "versicolor", "virginica"]
    labels = np.array(names)[y]
    model = LogisticRegression(max_iter=1000).fit(X, labels)
    meta = [{"name": c, "kind": "numeric", "min": 0.0, "max": 10.0} for c in X.columns]
    row = X.iloc[70].to_dict()
    result = predict_row(model, row, feature_meta=meta, task="multiclass")
    expected = model.predict_proba(X.iloc[[70]])[0]
    np.testing.assert_allclose(result["proba"], expected, rtol=1e-12)
    assert result["classes"] == names
    assert result["predicted"] == model.predict(X.iloc[[70]])[0]
    top2 = np.sort(expected)[::-1][:2]
    assert result["margin"] == pytest.approx(top2[0] - top2[1])
    assert result["entropy"] == pytest.approx(scipy_entropy(expected))


def test_pipeline_with_categories_predicts_from_a_dict():
    frame, y = mixed_frame()
    model = mixed_pipeline(RandomForestClassifier(n_estimators=20, random_state=0)).fit(frame, y)
    row = frame.iloc[3].to_dict()
    result = predict_row(model, row, feature_meta=META, task="binary")
    np.testing.assert_allclose(result["proba"], model.predict_proba(frame.iloc[[3]])[0])
    assert result["classes"] == [0, 1]


def test_predict_row_refuses_an_invalid_row():
    frame, y = mixed_frame()
    model = mixed_pipeline(LogisticRegression()).fit(frame, y)
    with pytest.raises(ValueError, match="age"):
        predict_row(model, dict(GOOD, age="old"), feature_meta=META, task="binary")
    with pytest.raises(ValueError, match="task"):
        predict_row(model, GOOD, feature_meta=META, task="ranking")


def test_forest_regressor_interval_is_the_spread_of_its_trees():
    frame, _ = mixed_frame()
    target = frame["income"] * 2 + frame["age"]
    model = mixed_pipeline(RandomForestRegressor(n_estimators=30, random_state=0)).fit(frame, target)
    result = predict_row(model, GOOD, feature_meta=META, task="regression")
    one = rows_to_frame([GOOD], feature_meta=META, columns=list(frame.columns))
    assert result["value"] == pytest.approx(model.predict(one)[0])
    transformed = model[:-1].transform(one)
    per_tree = [t.predict(transformed)[0] for t in model[-1].estimators_]
    lo, hi = result["interval"]
    assert lo == pytest.approx(np.quantile(per_tree, 0.05)) and hi == pytest.approx(np.quantile(per_tree, 0.95))
    assert lo <= hi


def test_return_std_models_give_a_normal_interval():
    frame, _ = mixed_frame()
    target = frame["income"] * 2 + frame["age"]
    model = mixed_pipeline(BayesianRidge()).fit(frame, target)
    result = predict_row(model, GOOD, feature_meta=META, task="regression")
    one = rows_to_frame([GOOD], feature_meta=META, columns=list(frame.columns))
    mean, std = model.predict(one, return_std=True)
    assert result["value"] == pytest.approx(mean[0])
    assert result["interval"][1] - result["interval"][0] == pytest.approx(2 * 1.959963984540054 * std[0])


def test_models_without_uncertainty_give_no_interval():
    frame, _ = mixed_frame()
    target = frame["income"] * 2 + frame["age"]
    model = mixed_pipeline(GradientBoostingRegressor(n_estimators=20, random_state=0)).fit(frame, target)
    result = predict_row(model, GOOD, feature_meta=META, task="regression")
    assert result["interval"] is None
    assert math.isfinite(result["value"])


# ---------------------------------------------------------------- with inferred metadata, doctests

def test_works_with_metadata_inferred_by_app_ml_features():
    from app.ml.features import infer_feature_meta

    frame, y = mixed_frame()
    meta = infer_feature_meta(frame, categorical=["grade"])
    model = mixed_pipeline(LogisticRegression()).fit(frame, y)
    row = median_row(frame, feature_meta=meta)
    clean, messages = validate_row(row, feature_meta=meta)
    assert messages == [] and clean == row
    result = predict_row(model, row, feature_meta=meta, task="binary")
    expected = model.predict_proba(pd.DataFrame([row])[list(frame.columns)])[0]
    np.testing.assert_allclose(result["proba"], expected)


@pytest.mark.parametrize("module_name", ["app.ml.predict", "app.ml.neighbours"])
def test_docstring_examples(module_name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module_name))
    assert result.attempted > 0 and result.failed == 0
