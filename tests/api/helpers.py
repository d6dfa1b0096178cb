"""Small registered models and record builders shared by the monitoring tests."""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

FEATURES = ["age", "income", "plan"]


@functools.cache
def binary_frames() -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """A fitted churn-like pipeline (two numeric features, one categorical) and its train/test frames."""
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"age": rng.integers(18, 80, n).astype(float), "income": rng.gamma(3.0, 20.0, n),
                          "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])})
    logit = 0.04 * (frame["age"] - 45) - 0.01 * (frame["income"] - 60) + (frame["plan"] == "basic") * 0.8
    frame["churn"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                             ("num", StandardScaler(), ["age", "income"])])
    model = make_pipeline(pre, LogisticRegression()).fit(frame[FEATURES], frame["churn"])
    return model, frame.iloc[:450].reset_index(drop=True), frame.iloc[450:].reset_index(drop=True)


@functools.cache
def regression_frames() -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """A linear regression on two numeric features."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x1": rng.normal(0, 1, 300), "x2": rng.normal(5, 2, 300)})
    frame["y"] = 3 * frame["x1"] - frame["x2"] + rng.normal(0, 0.5, 300)
    model = LinearRegression().fit(frame[["x1", "x2"]], frame["y"])
    return model, frame.iloc[:220].reset_index(drop=True), frame.iloc[220:].reset_index(drop=True)


def register_binary(db, artifact_dir, name: str = "churn"):
    """Register the binary model; return the version row."""
    from data.registry import register_model

    model, train, test = binary_frames()
    return register_model(model, train, test, name=name, target="churn", positive_class="yes",
                          created_by="tests", db=db, artifact_dir=artifact_dir)


def register_regression(db, artifact_dir, name: str = "price"):
    """Register the regression model; return the version row."""
    from data.registry import register_model

    model, train, test = regression_frames()
    return register_model(model, train, test, name=name, target="y", created_by="tests", db=db,
                          artifact_dir=artifact_dir)


def iso(when: dt.datetime) -> str:
    """Return a UTC ISO string with a Z."""
    return when.replace(microsecond=0).isoformat() + "Z"


def binary_record(i: int, when: dt.datetime, *, age=40.0, income=50.0, plan="basic", label="yes", score=0.7,
                  version: int = 1) -> dict:
    """One valid prediction record of the binary model."""
    return {"id": f"r{i}", "timestamp": iso(when), "version": version,
            "features": {"age": age, "income": income, "plan": plan},
            "prediction": {"label": label, "score": score}}
