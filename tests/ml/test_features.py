"""Feature metadata and task detection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from app.ml.features import META_KEYS, detect_task, infer_feature_meta


def test_numeric_statistics_equal_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=501)
    meta = infer_feature_meta(pd.DataFrame({"x": x}))[0]
    assert tuple(meta) == META_KEYS
    assert meta["kind"] == "numeric"
    assert meta["min"] == x.min() and meta["max"] == x.max()
    for key, q in (("q01", 0.01), ("q25", 0.25), ("median", 0.5), ("q75", 0.75), ("q99", 0.99)):
        assert meta[key] == pytest.approx(np.quantile(x, q))
    assert meta["integer"] is False and meta["log_scale"] is False and meta["levels"] is None


def test_integer_log_scale_and_missing_values():
    frame = pd.DataFrame({"count": [1, 2, 3, None], "income": np.geomspace(1e2, 1e6, 4)})
    count, income = infer_feature_meta(frame)
    assert count["integer"] is True and count["min"] == 1.0 and count["max"] == 3.0
    assert income["log_scale"] is True and income["integer"] is False


def test_categorical_levels_by_frequency_and_forced_categorical():
    frame = pd.DataFrame({"city": ["b", "a", "a", "c", "b", "a"], "code": [3, 1, 1, 2, 2, 1],
                          "flag": [True, False, True, True, True, False]})
    city, code, flag = infer_feature_meta(frame, categorical=["code"])
    assert city["kind"] == "categorical" and city["levels"] == ["a", "b", "c"]
    assert city["median"] is None and city["integer"] is False
    assert code["kind"] == "categorical" and code["levels"] == [1, 2, 3]
    assert isinstance(code["levels"][0], int)
    assert flag["kind"] == "categorical" and flag["levels"] == [True, False]


def test_overrides_replace_keys_and_kind():
    frame = pd.DataFrame({"age": [20.0, 30.0, 40.0], "zip": [1000, 2000, 1000]})
    age, zipcode = infer_feature_meta(frame, overrides={"age": {"min": 0, "max": 120},
                                                        "zip": {"kind": "categorical"}})
    assert (age["min"], age["max"], age["median"]) == (0, 120, 30.0)
    assert zipcode["kind"] == "categorical" and zipcode["levels"] == [1000, 2000]


@pytest.mark.parametrize("overrides, match", [
    ({"nope": {"min": 0}}, "nope"),
    ({"age": {"colour": 1}}, "colour"),
    ({"age": {"kind": "ordinal"}}, "ordinal"),
    ({"age": {"min": float("nan")}}, "finite"),
    ({"age": {"min": 50, "max": 10}}, "above max"),
    ({"age": 3}, "mapping"),
])
def test_bad_overrides_are_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        infer_feature_meta(pd.DataFrame({"age": [1.0, 2.0]}), overrides=overrides)


def test_bad_frames():
    with pytest.raises(ValueError, match="DataFrame"):
        infer_feature_meta([[1, 2]])
    with pytest.raises(ValueError, match="no row"):
        infer_feature_meta(pd.DataFrame({"a": []}))
    with pytest.raises(ValueError, match="no finite value"):
        infer_feature_meta(pd.DataFrame({"a": [np.nan, np.nan]}))
    with pytest.raises(ValueError, match="not in the frame"):
        infer_feature_meta(pd.DataFrame({"a": [1]}), categorical=["b"])


def test_detect_task_from_estimators():
    X, y = load_iris(return_X_y=True)
    assert detect_task(RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y), y) == "multiclass"
    yb = (y == 0).astype(int)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, yb)
    assert detect_task(pipe, yb) == "binary"
    Xd, yd = load_diabetes(return_X_y=True)
    assert detect_task(GradientBoostingRegressor(n_estimators=5).fit(Xd, yd), yd) == "regression"
    # A regressor fitted on 0/1 stays a regression.
    assert detect_task(LinearRegression().fit(X, yb), yb) == "regression"


def test_detect_task_in_column_transformer_pipeline():
    frame = pd.DataFrame({"a": ["x", "y", "z"] * 10, "b": np.arange(30.0)})
    y = np.array(["no", "yes"] * 15)
    ct = ColumnTransformer([("cat", OneHotEncoder(), ["a"]), ("num", StandardScaler(), ["b"])])
    pipe = make_pipeline(ct, LogisticRegression()).fit(frame, y)
    assert detect_task(pipe, y) == "binary"


def test_override_must_agree_with_estimator():
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    assert detect_task(clf, y, override="multiclass") == "multiclass"
    with pytest.raises(ValueError, match="3 classes"):
        detect_task(clf, y, override="binary")
    with pytest.raises(ValueError, match="regressor"):
        detect_task(LinearRegression().fit(X, y), y, override="binary")
    with pytest.raises(ValueError, match="'ranking'"):
        detect_task(clf, y, override="ranking")


def test_fallback_on_target_for_unknown_estimators():
    class Scorer:
        pass

    assert detect_task(Scorer(), [0.5, 1.25, 3.0]) == "regression"
    assert detect_task(Scorer(), [0, 1, 1]) == "binary"
    assert detect_task(Scorer(), ["a", "b", "c"]) == "multiclass"
    assert detect_task(Scorer(), [0.5, 1.0], override="binary") == "binary"
