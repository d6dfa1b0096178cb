"""Small models for the browser tests: a binary classifier with a group column, and iris.

``cancer``: breast cancer, a scaled LogisticRegression pipeline, positive
class 1 ("benign" in scikit-learn's coding), with a synthetic ``site``
group column kept out of the model. ``iris``: a small RandomForest
(multiclass). Every analysis is computed before the server starts, so the
browser tests never wait for the cache. :func:`run_view_analyses` is for
fast callback tests that need only what the model views read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

BINARY = "cancer"
MULTICLASS = "iris"
GROUP = "site"
#: Analyses the model views read; the seeder computes these and skips the rest.
VIEW_KINDS = frozenset({"metrics_test", "metrics_train", "sweep_test", "sweep_train", "curves_test", "curves_train",
                        "calibration", "score_distributions"})


def binary_frames() -> tuple[object, pd.DataFrame, pd.DataFrame, list[str]]:
    """Return (fitted pipeline, train, test, features) of the breast cancer model."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.copy()
    features = list(data.feature_names)
    rng = np.random.default_rng(0)
    frame[GROUP] = rng.choice(["north", "south", "east"], size=len(frame), p=[0.5, 0.35, 0.15])
    train, test = train_test_split(frame, test_size=0.3, random_state=0, stratify=frame["target"])
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(train[features], train["target"])
    return model, train, test, features


def multiclass_frames() -> tuple[object, pd.DataFrame, pd.DataFrame, list[str]]:
    """Return (fitted forest, train, test, features) of iris."""
    data = load_iris(as_frame=True)
    frame = data.frame.copy()
    features = list(data.feature_names)
    train, test = train_test_split(frame, test_size=0.4, random_state=0, stratify=frame["target"])
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    model = RandomForestClassifier(n_estimators=20, max_depth=3, random_state=0).fit(train[features], train["target"])
    return model, train, test, features


def run_view_analyses(db, kinds=VIEW_KINDS) -> int:
    """Run the queued analyses in ``kinds``; mark the others failed as skipped. Return how many ran."""
    from data.analysis_cache import claim_next, finish, run_claim

    ran = 0
    while (claim := claim_next(db)) is not None:
        if claim.kind in kinds:
            run_claim(db, claim)
            ran += 1
        else:
            finish(db, claim, error="skipped: the test server computes only what the model views read")
    return ran


def seed(app) -> None:
    """Register the two models and compute all their analyses."""
    from data.analysis_cache import run_pending
    from data.registry import register_model

    db = app.extensions["glassbox.db"]
    with app.app_context():
        model, train, test, _ = binary_frames()
        register_model(model, train, test, name=BINARY, target="target", positive_class=1, group_columns=[GROUP],
                       created_by="admin", description="Breast cancer, scaled logistic regression", db=db)
        model, train, test, _ = multiclass_frames()
        register_model(model, train, test, name=MULTICLASS, target="target", created_by="admin",
                       description="Iris, small random forest", db=db)
        run_pending(db)
