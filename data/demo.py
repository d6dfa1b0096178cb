"""The five demo models that ``make run`` seeds, trained on data shipped with scikit-learn or generated.

* ``iris``: RandomForest after a StandardScaler (multiclass; the live-prediction example).
* ``fraud-imbalanced``: ``make_classification(30000, 20 features, 10 % positive)``, stratified 80/20,
  a RandomForest tuned by 5-fold CV grid search, plus a synthetic ``region`` group column
  (the threshold and fairness example).
* ``breast-cancer``: scaled LogisticRegression on the Wisconsin data (binary, "malignant" positive).
* ``diabetes``: gradient-boosted regression of disease progression.
* ``loan-approval``: generated applications with categorical columns through a ColumnTransformer.

Seeding is idempotent: a model that exists already is left alone.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data.db import Database

log = logging.getLogger(__name__)

SEED = 42
#: The fraud demo tunes its forest on a stratified subsample of this many training rows (keeps
#: seeding under two minutes on two cores), then fits the chosen settings on every training row.
TUNING_ROWS = 3000


@dataclass(frozen=True)
class DemoModel:
    """One demo: how to build it and how to register it."""

    name: str
    description: str
    build: Callable[[], tuple[Any, pd.DataFrame, pd.DataFrame]]
    target: str
    positive_class: Any = None
    group_columns: tuple[str, ...] = ()
    tags: tuple[str, ...] = ("demo",)


def _jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def build_iris() -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """RandomForest with StandardScaler on iris, species names as classes."""
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_iris(as_frame=True)
    frame = data.data.copy()
    frame.columns = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    frame["species"] = np.asarray(data.target_names)[data.target]
    train, test = train_test_split(frame, test_size=0.3, stratify=frame["species"], random_state=SEED)
    features = list(frame.columns[:4])
    model = Pipeline([("scale", StandardScaler()),
                      ("forest", RandomForestClassifier(n_estimators=50, random_state=SEED, n_jobs=_jobs()))])
    model.fit(train[features], train["species"])
    # Predict in one thread: a worker answers single rows, where thread start-up costs more than it saves.
    model.set_params(forest__n_jobs=None)
    return model, train.reset_index(drop=True), test.reset_index(drop=True)


def build_fraud() -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """Imbalanced binary: 30k rows, 20 features, 10 % positive, RandomForest tuned by 5-fold grid search."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

    X, y = make_classification(n_samples=30000, n_features=20, n_informative=8, n_redundant=4,
                               weights=[0.9, 0.1], flip_y=0.02, class_sep=0.9, random_state=SEED)
    features = [f"feature_{i:02d}" for i in range(20)]
    frame = pd.DataFrame(X, columns=features)
    frame["is_fraud"] = y
    # A synthetic group column, kept out of the model: its regions differ in base rate and in how
    # separable they are, so the fairness view has gaps to show.
    rng = np.random.default_rng(SEED)
    regions = np.array(["north", "south", "east", "west"])
    weights = np.where(y[:, None] == 1, [0.15, 0.35, 0.25, 0.25], [0.30, 0.20, 0.25, 0.25])
    frame["region"] = regions[(rng.random(len(y))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)]
    noisy = frame["region"].to_numpy() == "south"
    frame.loc[noisy, features[:3]] += rng.normal(0, 1.0, size=(int(noisy.sum()), 3))
    train, test = train_test_split(frame, test_size=0.2, stratify=frame["is_fraud"], random_state=SEED)
    tune, _ = train_test_split(train, train_size=TUNING_ROWS, stratify=train["is_fraud"], random_state=SEED)
    search = GridSearchCV(
        RandomForestClassifier(n_estimators=20, max_features="sqrt", random_state=SEED),
        {"max_depth": [6, 12], "min_samples_leaf": [2, 10]},
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED), scoring="average_precision",
        n_jobs=_jobs(), refit=False)
    search.fit(tune[features], tune["is_fraud"])
    log.info("fraud demo: grid search chose %s (CV average precision %.3f)", search.best_params_,
             search.best_score_)
    model = RandomForestClassifier(n_estimators=60, max_features="sqrt", max_samples=0.4, random_state=SEED,
                                   n_jobs=_jobs(), **search.best_params_)
    model.fit(train[features], train["is_fraud"])
    model.set_params(n_jobs=None)
    return model, train.reset_index(drop=True), test.reset_index(drop=True)


def build_breast_cancer() -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """Scaled LogisticRegression on the Wisconsin breast cancer data."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    frame = data.data.copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["diagnosis"] = np.asarray(data.target_names)[data.target]
    features = list(frame.columns[:-1])
    train, test = train_test_split(frame, test_size=0.25, stratify=frame["diagnosis"], random_state=SEED)
    model = Pipeline([("scale", StandardScaler()), ("logistic", LogisticRegression(C=0.5, max_iter=2000))])
    model.fit(train[features], train["diagnosis"])
    return model, train.reset_index(drop=True), test.reset_index(drop=True)


def build_diabetes() -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """Gradient-boosted regression of diabetes progression after one year."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.model_selection import train_test_split

    data = load_diabetes(as_frame=True, scaled=False)
    frame = data.data.rename(columns={"s1": "total_cholesterol", "s2": "ldl", "s3": "hdl", "s4": "cholesterol_ratio",
                                      "s5": "log_triglycerides", "s6": "blood_sugar", "bp": "blood_pressure"})
    frame["progression"] = data.target.astype(float)
    features = list(frame.columns[:-1])
    train, test = train_test_split(frame, test_size=0.25, random_state=SEED)
    model = GradientBoostingRegressor(n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8,
                                      random_state=SEED)
    model.fit(train[features], train["progression"])
    return model, train.reset_index(drop=True), test.reset_index(drop=True)


def loan_applications(n: int = 6000, *, seed: int = SEED) -> pd.DataFrame:
    """Generate loan applications with realistic columns and an approval decision."""
    rng = np.random.default_rng(seed)
    employment = rng.choice(["salaried", "self-employed", "contract", "unemployed"], n, p=[0.6, 0.2, 0.15, 0.05])
    home = rng.choice(["rent", "mortgage", "own"], n, p=[0.45, 0.4, 0.15])
    purpose = rng.choice(["debt_consolidation", "home_improvement", "car", "education", "business"], n,
                         p=[0.35, 0.2, 0.2, 0.1, 0.15])
    age = rng.integers(21, 71, n)
    income = np.round(rng.lognormal(mean=10.8, sigma=0.6, size=n), -2)
    income = np.where(employment == "unemployed", np.round(income * 0.2, -2), income)
    loan_amount = np.round(rng.lognormal(mean=9.3, sigma=0.7, size=n), -2)
    credit_score = np.clip(np.round(rng.normal(680, 70, n)), 300, 850).astype(int)
    years_at_employer = np.where(employment == "unemployed", 0, np.minimum(rng.poisson(4, n), age - 18))
    existing_loans = rng.poisson(1.0, n)
    logit = (-1.0 + 0.012 * (credit_score - 650) + 1.1 * np.log(income / loan_amount) - 0.35 * existing_loans
             + 0.04 * np.minimum(years_at_employer, 10)
             + np.select([employment == "salaried", employment == "self-employed", employment == "contract"],
                         [0.4, -0.1, -0.3], -1.5)
             + np.select([home == "own", home == "mortgage"], [0.3, 0.15], 0.0)
             + np.select([purpose == "business", purpose == "education"], [-0.5, -0.2], 0.0))
    approved = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({
        "age": age, "annual_income": income, "loan_amount": loan_amount, "credit_score": credit_score,
        "years_at_employer": years_at_employer, "existing_loans": existing_loans,
        "employment_type": employment, "home_ownership": home, "loan_purpose": purpose,
        "approved": np.where(approved, "yes", "no"),
    })


def build_loans() -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """A pipeline with categorical features: one-hot encoding and scaling in a ColumnTransformer."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = loan_applications()
    numeric = ["age", "annual_income", "loan_amount", "credit_score", "years_at_employer", "existing_loans"]
    categorical = ["employment_type", "home_ownership", "loan_purpose"]
    train, test = train_test_split(frame, test_size=0.2, stratify=frame["approved"], random_state=SEED)
    model = Pipeline([
        ("prepare", ColumnTransformer([
            ("categories", OneHotEncoder(handle_unknown="ignore"), categorical),
            ("numbers", StandardScaler(), numeric),
        ])),
        ("boosting", GradientBoostingClassifier(n_estimators=150, max_depth=3, learning_rate=0.1, random_state=SEED)),
    ])
    model.fit(train[numeric + categorical], train["approved"])
    return model, train.reset_index(drop=True), test.reset_index(drop=True)


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel("iris", "Iris species from flower measurements: a scaled RandomForest (multiclass). "
              "The live-prediction example.", build_iris, target="species"),
    DemoModel("fraud-imbalanced", "Imbalanced binary demo (10 % positive, 30,000 generated rows, 20 features): "
              "a RandomForest tuned by 5-fold CV grid search. 'region' is a synthetic group column for "
              "fairness views, not a model input.", build_fraud, target="is_fraud", positive_class=1,
              group_columns=("region",)),
    DemoModel("breast-cancer", "Wisconsin breast cancer diagnosis (scikit-learn's copy of the UCI data): "
              "a scaled LogisticRegression; 'malignant' is the positive class.", build_breast_cancer,
              target="diagnosis", positive_class="malignant"),
    DemoModel("diabetes", "Diabetes progression after one year (scikit-learn's diabetes data): "
              "gradient-boosted regression.", build_diabetes, target="progression"),
    DemoModel("loan-approval", "Generated loan applications with categorical columns, one-hot encoded in a "
              "ColumnTransformer before gradient boosting; 'yes' (approved) is the positive class.", build_loans,
              target="approved", positive_class="yes"),
)

DEMO_NAMES = tuple(d.name for d in DEMO_MODELS)


def seed_demo_models(db: Database, *, artifact_dir: str | os.PathLike, created_by: str = "admin",
                     only: tuple[str, ...] | None = None) -> list[str]:
    """Train and register the demo models that are not registered yet; return the names registered.

    Their analyses are queued (the server's runner or ``glassbox analyses run`` computes them).
    """
    from data.registry import get_model, register_model

    registered = []
    for demo in DEMO_MODELS:
        if only is not None and demo.name not in only:
            continue
        with db.session() as session:
            existing = get_model(session, demo.name)
            if existing is not None and existing.versions:
                log.info("demo model %s exists already; left alone", demo.name)
                continue
        started = time.perf_counter()
        model, train, test = demo.build()
        register_model(model, train, test, name=demo.name, target=demo.target, created_by=created_by,
                       positive_class=demo.positive_class, group_columns=demo.group_columns,
                       description=demo.description, tags=demo.tags, db=db, artifact_dir=Path(artifact_dir))
        log.info("demo model %s trained and registered in %.1f s", demo.name, time.perf_counter() - started)
        registered.append(demo.name)
    return registered
