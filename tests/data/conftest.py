"""Fixtures for the data layer: a bare database and artifact folder (no Flask app), small fitted models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from data import analyses, analysis_cache, registry
from data.db import Base, Database
from data.tables import import_all_tables


@pytest.fixture
def store(tmp_path):
    """A fresh SQLite database with every table, and an artifact folder."""
    import_all_tables()
    db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    Base.metadata.create_all(db.engine)
    artifact_dir = tmp_path / "artifacts"
    yield db, artifact_dir
    db.dispose()
    registry.clear_caches()
    analyses.release_contexts()
    analysis_cache.clear_payload_cache()


def _split(frame: pd.DataFrame, test_size: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    return frame.iloc[:-test_size].reset_index(drop=True), frame.iloc[-test_size:].reset_index(drop=True)


@pytest.fixture(scope="session")
def binary_case():
    """A fitted binary pipeline on 400 rows, with a group column kept out of the model."""
    X, y = make_classification(n_samples=400, n_features=5, n_informative=3, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame["label"] = np.where(y == 1, "yes", "no")
    frame["region"] = np.where(np.arange(400) % 3 == 0, "north", "south")
    train, test = _split(frame, 100)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(train[[f"x{i}" for i in range(5)]],
                                                                      train["label"])
    return model, train, test


@pytest.fixture(scope="session")
def multiclass_case():
    """A small forest on iris."""
    data = load_iris(as_frame=True)
    frame = data.frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = _split(frame, 50)
    features = list(data.feature_names)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(train[features], train["target"])
    return model, train, test


@pytest.fixture(scope="session")
def regression_case():
    """A linear regression on 300 generated rows."""
    X, y = make_regression(n_samples=300, n_features=4, noise=5.0, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["y"] = y
    train, test = _split(frame, 80)
    model = LinearRegression().fit(train[["a", "b", "c", "d"]], train["y"])
    return model, train, test


@pytest.fixture(scope="session")
def categorical_case():
    """A ColumnTransformer pipeline with a categorical column."""
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"plan": rng.choice(["basic", "plus", "pro"], n), "months": rng.integers(1, 60, n),
                          "spend": rng.gamma(2.0, 50.0, n)})
    frame["churned"] = (rng.random(n) < np.where(frame["plan"] == "basic", 0.5, 0.2)).astype(int)
    train, test = _split(frame, 80)
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                             ("num", StandardScaler(), ["months", "spend"])])
    model = make_pipeline(pre, LogisticRegression()).fit(train[["plan", "months", "spend"]], train["churned"])
    return model, train, test
