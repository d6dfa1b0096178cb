"""Tests for app.ml.counterfactual: properties (Hypothesis) and known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from app.ml.counterfactual import find_counterfactual

META = [
    {"name": "age", "kind": "numeric", "min": 18.0, "max": 90.0, "q01": 19.0, "q25": 35.0, "median": 50.0,
     "q75": 70.0, "q99": 89.0, "integer": True, "log_scale": False},
    {"name": "income", "kind": "numeric", "min": 0.0, "max": 200.0, "q01": 2.0, "q25": 50.0, "median": 100.0,
     "q75": 150.0, "q99": 198.0, "integer": False, "log_scale": False},
    {"name": "color", "kind": "categorical", "levels": ["blue", "green", "red"]},
    {"name": "grade", "kind": "categorical", "levels": [1, 2, 3]},
]
NAMES = [m["name"] for m in META]
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 91, n),
        "income": rng.uniform(0, 200, n),
        "color": rng.choice(["blue", "green", "red"], n),
        "grade": rng.choice([1, 2, 3], n),
    })


def pipeline(model):
    ct = ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                            ("cat", OneHotEncoder(), ["color", "grade"])])
    return make_pipeline(ct, model)


def one_row(row: dict) -> pd.DataFrame:
    """An independent one-row frame (not built by the code under test)."""
    frame = pd.DataFrame({k: [v] for k, v in row.items()})[NAMES]
    return frame.astype({"age": "int64", "income": "float64", "grade": "int64"})


@pytest.fixture(scope="module")
def classifier():
    frame = make_frame()
    y = ((frame["age"] > 50) & (frame["income"] > 80)) | (frame["color"] == "red")
    return pipeline(RandomForestClassifier(n_estimators=15, random_state=0)).fit(frame, y.astype(int))


@pytest.fixture(scope="module")
def multiclass():
    frame = make_frame(seed=1)
    y = np.where(frame["income"] < 70, "low", np.where(frame["age"] < 50, "mid", "high"))
    return pipeline(LogisticRegression(max_iter=2000)).fit(frame, y)


@pytest.fixture(scope="module")
def regressor():
    frame = make_frame(seed=2)
    target = frame["income"] + 2 * frame["age"] + 30 * (frame["color"] == "red")
    return pipeline(GradientBoostingRegressor(n_estimators=30, random_state=0)).fit(frame, target)


rows = st.fixed_dictionaries({
    "age": st.integers(18, 90),
    "income": st.floats(0, 200, allow_nan=False),
    "color": st.sampled_from(["blue", "green", "red"]),
    "grade": st.sampled_from([1, 2, 3]),
})
locks = st.lists(st.sampled_from(NAMES), unique=True, max_size=3)


def assert_well_formed(result: dict, row: dict, locked: list, max_evals: int) -> None:
    cf = result["counterfactual"]
    assert set(cf) == set(NAMES)
    assert isinstance(cf["age"], int) and 18 <= cf["age"] <= 90
    assert isinstance(cf["income"], float) and 0.0 <= cf["income"] <= 200.0
    assert cf["color"] in ("blue", "green", "red") and cf["grade"] in (1, 2, 3)
    assert type(cf["grade"]) is int
    for name in locked:
        assert cf[name] == row[name]
    assert result["changes"] == [{"feature": n, "before": row[n], "after": cf[n]} for n in NAMES if cf[n] != row[n]]
    expected_distance = (abs(cf["age"] - row["age"]) / 35.0 + abs(cf["income"] - row["income"]) / 100.0
                         + (cf["color"] != row["color"]) + (cf["grade"] != row["grade"]))
    assert result["distance"] == pytest.approx(expected_distance)
    assert result["n_evals"] <= max_evals
    assert result["message"]


@SETTINGS
@given(row=rows, locked=locks, seed=st.integers(0, 3))
def test_found_counterfactuals_really_change_the_class(classifier, row, locked, seed):
    result = find_counterfactual(classifier, row, feature_meta=META, task="binary", locked=locked,
                                 max_evals=250, random_state=seed)
    assert_well_formed(result, row, locked, 250)
    before = classifier.predict_proba(one_row(row))[0].argmax()
    after = classifier.predict_proba(one_row(result["counterfactual"]))[0].argmax()
    assert result["prediction_before"]["predicted"] == before
    if result["found"]:
        assert after != before
        assert result["prediction_after"]["predicted"] == after
    else:
        assert "No counterfactual" in result["message"] or "locked" in result["message"]


@SETTINGS
@given(row=rows, locked=locks, desired=st.sampled_from(["low", "mid", "high"]))
def test_found_counterfactuals_reach_the_desired_class(multiclass, row, locked, desired):
    result = find_counterfactual(multiclass, row, feature_meta=META, task="multiclass", locked=locked,
                                 desired_class=desired, max_evals=250)
    assert_well_formed(result, row, locked, 250)
    if result["found"]:
        proba = multiclass.predict_proba(one_row(result["counterfactual"]))[0]
        assert multiclass.classes_[proba.argmax()] == desired


@SETTINGS
@given(row=rows, locked=locks, target=st.floats(50, 500), direction=st.sampled_from([None, "above", "below"]))
def test_found_counterfactuals_move_a_regression_past_the_target(regressor, row, locked, target, direction):
    result = find_counterfactual(regressor, row, feature_meta=META, task="regression", locked=locked,
                                 target_value=target, direction=direction, max_evals=250)
    assert_well_formed(result, row, locked, 250)
    before = regressor.predict(one_row(row))[0]
    side = direction or ("above" if target > before else "below")
    if result["found"]:
        after = regressor.predict(one_row(result["counterfactual"]))[0]
        assert after >= target if side == "above" else after <= target
        assert result["prediction_after"]["value"] == pytest.approx(after)


def test_the_smallest_change_crosses_a_single_threshold():
    frame = make_frame(seed=3)
    y = (frame["age"] > 45).astype(int)  # a depth-1 tree splits between 45 and 46
    model = pipeline(DecisionTreeClassifier(max_depth=1, random_state=0)).fit(frame, y)
    row = {"age": 30, "income": 120.0, "color": "blue", "grade": 3}
    result = find_counterfactual(model, row, feature_meta=META, task="binary", max_evals=600)
    assert result["found"]
    assert result["changes"] == [{"feature": "age", "before": 30, "after": 46}]
    assert result["distance"] == pytest.approx(16 / 35)


def test_only_a_category_can_help_when_numbers_are_locked(classifier):
    row = {"age": 20, "income": 10.0, "color": "blue", "grade": 1}
    result = find_counterfactual(classifier, row, feature_meta=META, task="binary", locked=["age", "income"])
    assert result["found"]
    assert [c["feature"] for c in result["changes"]] == ["color"]
    assert result["counterfactual"]["color"] == "red"


def test_iris_desired_class(multiclass):
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    meta = [{"name": c, "kind": "numeric", "min": float(X[c].min()), "max": float(X[c].max()),
             "q25": float(X[c].quantile(0.25)), "q75": float(X[c].quantile(0.75))} for c in X.columns]
    result = find_counterfactual(model, X.iloc[0].to_dict(), feature_meta=meta, task="multiclass",
                                 desired_class=2, max_evals=800)
    assert result["found"]
    assert model.predict(pd.DataFrame([result["counterfactual"]]))[0] == 2


def test_already_there_and_everything_locked(classifier):
    row = {"age": 20, "income": 10.0, "color": "red", "grade": 1}
    predicted = classifier.predict(one_row(row))[0]
    same = find_counterfactual(classifier, row, feature_meta=META, task="binary", desired_class=predicted)
    assert same["found"] and same["changes"] == [] and same["distance"] == 0.0
    stuck = find_counterfactual(classifier, row, feature_meta=META, task="binary", locked=NAMES)
    assert not stuck["found"] and stuck["changes"] == [] and "locked" in stuck["message"]


def test_unreachable_goal_returns_the_closest_candidate(regressor):
    row = {"age": 30, "income": 50.0, "color": "blue", "grade": 2}
    result = find_counterfactual(regressor, row, feature_meta=META, task="regression", target_value=5000.0,
                                 max_evals=300)
    assert not result["found"]
    assert "No counterfactual found within 300" in result["message"]
    before = regressor.predict(one_row(row))[0]
    assert result["prediction_after"]["value"] > before  # moved towards the goal
    assert result["n_evals"] <= 300


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(task="binary", locked=["height"]), "height"),
    (dict(task="binary", desired_class="maybe"), "maybe"),
    (dict(task="binary", target_value=3.0), "target_value"),
    (dict(task="binary", max_evals=1), "max_evals"),
    (dict(task="regression"), "target_value"),
    (dict(task="regression", target_value=float("nan")), "target_value"),
    (dict(task="regression", target_value=1.0, direction="up"), "direction"),
    (dict(task="binary", row={"age": "old"}), "Invalid row"),
])
def test_validation(classifier, regressor, kwargs, fragment):
    task = kwargs.pop("task")
    model = regressor if task == "regression" else classifier
    row = kwargs.pop("row", {"age": 30, "income": 50.0, "color": "blue", "grade": 2})
    with pytest.raises(ValueError, match=fragment):
        find_counterfactual(model, row, feature_meta=META, task=task, **kwargs)


def test_works_with_metadata_inferred_by_app_ml_features(classifier):
    from app.ml.features import infer_feature_meta

    frame = make_frame()
    meta = infer_feature_meta(frame, categorical=["grade"])
    row = {"age": 20, "income": 10.0, "color": "blue", "grade": 1}
    result = find_counterfactual(classifier, row, feature_meta=meta, task="binary", max_evals=400)
    assert result["found"]
    after = classifier.predict_proba(one_row(result["counterfactual"]))[0].argmax()
    assert after != classifier.predict_proba(one_row(row))[0].argmax()


def test_docstring_examples():
    import doctest

    import app.ml.counterfactual

    result = doctest.testmod(app.ml.counterfactual)
    assert result.attempted > 0 and result.failed == 0
