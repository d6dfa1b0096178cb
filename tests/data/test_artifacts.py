"""Artifact storage: skops with an explicit trusted-types list, pickle only on request, sniffed formats."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from data.artifacts import (TRUSTED_TYPES, ArtifactError, estimator_from_bytes, estimator_to_bytes, format_of,
                            load_model_file, read_table, sniff_format, untrusted_types)

X, Y = load_iris(return_X_y=True, as_frame=True)


@pytest.mark.parametrize("estimator", [
    make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0)),
    make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    CalibratedClassifierCV(LogisticRegression(max_iter=500), cv=2),
    GradientBoostingRegressor(n_estimators=3),
], ids=["forest", "logistic", "calibrated", "boosting"])
def test_common_estimators_round_trip_with_identical_predictions(estimator):
    target = Y.astype(float) if isinstance(estimator, GradientBoostingRegressor) else Y
    estimator.fit(X, target)
    loaded = estimator_from_bytes(estimator_to_bytes(estimator))
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))


def test_column_transformer_pipeline_round_trips():
    frame = pd.DataFrame({"plan": ["a", "b", "c"] * 20, "x": np.arange(60.0)})
    y = np.arange(60) % 2
    pipe = make_pipeline(ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                                            ("n", StandardScaler(), ["x"])]), LogisticRegression()).fit(frame, y)
    np.testing.assert_array_equal(estimator_from_bytes(estimator_to_bytes(pipe)).predict_proba(frame),
                                  pipe.predict_proba(frame))


@pytest.mark.parametrize("estimator, named", [
    (HistGradientBoostingClassifier(max_iter=2), "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"),
    (KNeighborsClassifier(), "sklearn.neighbors._kd_tree.KDTree"),
])
def test_types_outside_the_list_are_refused_by_name(estimator, named):
    estimator.fit(X, Y)
    data = sio.dumps(estimator)
    assert named in untrusted_types(data)
    with pytest.raises(ArtifactError, match=named.replace(".", r"\.")):
        estimator_from_bytes(data)
    with pytest.raises(ArtifactError, match="does not trust"):
        estimator_to_bytes(estimator)


def test_the_trusted_list_is_explicit_and_small():
    assert "sklearn.tree._tree.Tree" in TRUSTED_TYPES
    assert all(t.startswith(("sklearn.", "numpy.")) for t in TRUSTED_TYPES)
    assert not any("TreePredictor" in t or "KDTree" in t for t in TRUSTED_TYPES)


def test_pickle_needs_trust(tmp_path):
    model = LogisticRegression(max_iter=500).fit(X, Y)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(ArtifactError, match="loading it could run arbitrary code"):
        load_model_file(path)
    assert load_model_file(path, trust_pickle=True).predict(X.head(3)).shape == (3,)


@pytest.mark.parametrize("head, kind", [
    (b"PK\x03\x04rest", "skops"), (b"PAR1....", "parquet"), (b"\x80\x04\x95", "pickle"), (b"\x1f\x8b\x08", "joblib"),
    (b"a,b\n1,2\n", "text"), ("é,ü\n".encode(), "text"), (b"\x00\x01\x02", "unknown"),
])
def test_sniffing(head, kind):
    assert sniff_format(head) == kind


def test_format_must_match_suffix(tmp_path):
    fake = tmp_path / "data.parquet"
    fake.write_text("a,b\n1,2\n")
    with pytest.raises(ArtifactError, match="data.parquet is named as parquet but its content is text"):
        format_of(fake)
    real = tmp_path / "data.csv"
    real.write_text("a,b\n1,2\n")
    assert format_of(real) == "csv"
    assert read_table(real).to_dict("list") == {"a": [1], "b": [2]}
    unnamed = tmp_path / "blob"
    unnamed.write_bytes(b"\x00\x00\x00")
    with pytest.raises(ArtifactError, match="unknown file type"):
        format_of(unnamed)
