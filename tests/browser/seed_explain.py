"""Small models for the why-pages (features, explain, what-if), for browser and callback tests.

* ``loans``: generated loan applications with an integer, a log-scale and
  two categorical columns, one-hot encoded in a ColumnTransformer before a
  small gradient-boosted classifier (binary, positive class "yes"; TreeSHAP).
* ``houses``: a small random-forest regression (value with a forest interval; TreeSHAP).
* ``mlp``: a small neural network classifier, which no fast explainer covers
  (Kernel SHAP, explained on request only).
* ``flowers``: iris with a small random forest (multiclass; TreeSHAP).

All stay small (a few hundred rows) so the analyses run synchronously
in a few seconds; the kernel model's SHAP sample is skipped (the why-pages
must cope with a missing analysis anyway).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

LOANS = "loans"
HOUSES = "houses"
MLP = "mlp"
FLOWERS = "flowers"
LOAN_NUMERIC = ["age", "annual_income", "credit_score", "existing_loans"]
LOAN_CATEGORICAL = ["employment_type", "home_ownership"]
LOAN_FEATURES = LOAN_NUMERIC + LOAN_CATEGORICAL


def loan_frames(n: int = 600, seed: int = 0) -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """Return (fitted pipeline, train, test) of the small loan model."""
    rng = np.random.default_rng(seed)
    employment = rng.choice(["salaried", "self-employed", "unemployed"], n, p=[0.65, 0.25, 0.10])
    home = rng.choice(["rent", "mortgage", "own"], n, p=[0.45, 0.4, 0.15])
    age = rng.integers(21, 71, n)
    income = np.round(rng.lognormal(mean=10.5, sigma=1.3, size=n), -1)
    credit = np.clip(np.round(rng.normal(680, 70, n)), 300, 850).astype(int)
    loans = rng.poisson(1.0, n)
    logit = (0.02 * (credit - 680) + 0.8 * (np.log(income) - 10.5) - 0.4 * loans
             + np.select([employment == "salaried", employment == "self-employed"], [0.6, 0.0], -1.8)
             + np.where(home == "own", 0.4, 0.0))
    approved = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame({"age": age, "annual_income": income, "credit_score": credit, "existing_loans": loans,
                          "employment_type": employment, "home_ownership": home,
                          "approved": np.where(approved, "yes", "no")})
    train, test = frame.iloc[: int(n * 0.75)].reset_index(drop=True), frame.iloc[int(n * 0.75):].reset_index(drop=True)
    model = Pipeline([
        ("prepare", ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore"), LOAN_CATEGORICAL),
                                       ("numbers", StandardScaler(), LOAN_NUMERIC)])),
        ("boosting", GradientBoostingClassifier(n_estimators=40, max_depth=2, random_state=0)),
    ]).fit(train[LOAN_FEATURES], train["approved"])
    return model, train, test


def house_frames(n: int = 400, seed: int = 1) -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """Return (fitted forest, train, test) of the small regression."""
    rng = np.random.default_rng(seed)
    rooms = rng.integers(1, 8, n)
    area = np.round(rng.normal(90, 30, n).clip(20, 250), 1)
    age = rng.integers(0, 100, n)
    price = 50 * area + 8000 * rooms - 300 * age + rng.normal(0, 5000, n)
    frame = pd.DataFrame({"rooms": rooms, "living_area_m2": area, "building_age_years": age, "price": price})
    train, test = frame.iloc[:300].reset_index(drop=True), frame.iloc[300:].reset_index(drop=True)
    # One test house is bigger than any training house: the registered ranges (from train) miss it.
    test.loc[0, "living_area_m2"] = float(train["living_area_m2"].max()) + 15.0
    model = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0).fit(
        train[["rooms", "living_area_m2", "building_age_years"]], train["price"])
    return model, train, test


def mlp_frames(n: int = 300, seed: int = 2) -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """Return (fitted neural-network pipeline, train, test) of a three-feature classifier."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] ** 2 - 0.3 * X[:, 2] > 0.4, "b", "a")
    frame = pd.DataFrame(X, columns=["signal", "curvature", "noise"])
    frame["label"] = y
    train, test = frame.iloc[:220].reset_index(drop=True), frame.iloc[220:].reset_index(drop=True)
    model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=2000, random_state=0)).fit(
        train[["signal", "curvature", "noise"]], train["label"])
    return model, train, test


def flower_frames() -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """Return (fitted forest, train, test) of iris with species names as classes."""
    data = load_iris(as_frame=True)
    frame = data.data.copy()
    frame.columns = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
    frame["species"] = np.asarray(data.target_names)[data.target]
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = frame.iloc[:110].reset_index(drop=True), frame.iloc[110:].reset_index(drop=True)
    model = RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0).fit(
        train[list(frame.columns[:4])], train["species"])
    return model, train, test


#: name -> (frames, target, positive class, description)
MODELS = {
    LOANS: (loan_frames, "approved", "yes", "Small loan approvals (gradient boosting)"),
    HOUSES: (house_frames, "price", None, "Small house prices (random forest regression)"),
    MLP: (mlp_frames, "label", "b", "Small neural network (no fast explainer)"),
    FLOWERS: (flower_frames, "species", None, "Iris species (small random forest)"),
}


def register_explain_models(db, *, names=tuple(MODELS), artifact_dir=None, skip_kernel_shap: bool = True,
                            kinds: frozenset[str] | None = None) -> dict[str, int]:
    """Register the models ``names``, compute their analyses (only ``kinds`` if given); return name -> version id.

    Analyses left out are marked failed with the reason "skipped".
    """
    from data.analysis_cache import claim_next, finish, run_claim
    from data.registry import register_model

    ids = {}
    kwargs = {"db": db} if artifact_dir is None else {"db": db, "artifact_dir": artifact_dir}
    for name in names:
        frames, target, positive, description = MODELS[name]
        model, train, test = frames()
        ids[name] = register_model(model, train, test, name=name, target=target, positive_class=positive,
                                   created_by="admin", description=description, **kwargs).id
    while (claim := claim_next(db)) is not None:
        if skip_kernel_shap and claim.version_id == ids.get(MLP) and claim.kind == "shap":
            finish(db, claim, error="skipped: Kernel SHAP on a sample is too slow for the test server")
        elif kinds is not None and claim.kind not in kinds:
            finish(db, claim, error="skipped: not needed by these tests")
        else:
            run_claim(db, claim)
    return ids


@contextmanager
def small_analyses(**sizes):
    """Make the cached analyses coarse (grids, ICE lines, SHAP rows) while registering test models."""
    from data import analyses

    values = {"PDP_GRID": 6, "PDP_ICE_LINES": 10, "PDP_2D_GRID": 4, "SHAP_ROWS": 30, "IMPORTANCE_REPEATS": 2,
              **sizes}
    saved = {key: getattr(analyses, key) for key in values}
    for key, value in values.items():
        setattr(analyses, key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(analyses, key, value)


#: Analysis sizes of the shared test world: small, so it builds in seconds.
TEST_SIZES = {"PDP_GRID": 5, "PDP_ICE_LINES": 8, "PDP_ROWS": 100, "PDP_2D_GRID": 4, "PDP_2D_ROWS": 80,
              "PDP_TOP_FEATURES": 2, "SHAP_ROWS": 20, "SHAP_BACKGROUND": 30, "IMPORTANCE_REPEATS": 2}


@functools.cache
def _prepared_world() -> tuple[str, tuple]:
    """Build, once per test process, a SQLite file with the four models and their feature analyses."""
    from data import explain_views
    from data.db import Base, Database
    from data.tables import import_all_tables

    folder = Path(tempfile.mkdtemp(prefix="glassbox-why-"))
    atexit.register(shutil.rmtree, folder, True)
    import_all_tables()
    db = Database(f"sqlite:///{folder / 'why.db'}")
    Base.metadata.create_all(db.engine)
    with small_analyses(**TEST_SIZES):
        ids = register_explain_models(db, artifact_dir=folder / "artifacts", skip_kernel_shap=False,
                                      kinds=frozenset(explain_views.FEATURE_KINDS))
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return str(folder / "why.db"), tuple(ids.items())


def world_copy(folder) -> tuple[str, dict[str, int]]:
    """Return (database URL, name -> version id) of a private copy of the shared test world in ``folder``.

    The four models (``loans``, ``houses``, ``mlp``, ``flowers``) are registered with their feature-influence
    analyses computed (partial dependence cached for the top two features only; the rest is skipped).
    The artifacts are shared and read-only.
    """
    source, ids = _prepared_world()
    target = Path(folder) / "why.db"
    shutil.copyfile(source, target)
    return f"sqlite:///{target}", dict(ids)


def seed(app) -> None:
    """Register the why-page models on the live test server (analyses computed now).

    The browser suite has iris and a logistic regression from ``seed_models``; this adds a pipeline with
    categories, a regression and a model without a fast explainer.
    """
    db = app.extensions["glassbox.db"]
    with small_analyses(PDP_GRID=10, PDP_ICE_LINES=20, PDP_2D_GRID=6, SHAP_ROWS=40), app.app_context():
        register_explain_models(db, names=(LOANS, HOUSES, MLP))


# -- shared by the why-pages' callback tests ------------------------------------------------------

#: Users of :func:`why_app`: role, and the model the grant is limited to (None: every model).
WHY_USERS = {"viewer": ("viewer", None), "analyst": ("analyst", None), "scoped": ("analyst", HOUSES)}


def why_app(folder):
    """Return an app on a private copy of the shared world, with the users of :data:`WHY_USERS`."""
    from app.security.users import create_user
    from tests.conftest import _test_hash, build_test_app

    url, _ = world_copy(folder)
    app = build_test_app(Path(folder), GLASSBOX_DATABASE_URL=url)
    with app.extensions["glassbox.db"].session() as s:
        for username, (role, model) in WHY_USERS.items():
            user = create_user(s, username, "placeholder-Pass-987", role=role, model=model)
            user.password_hash = _test_hash()
    return app


def post_to(client, app, output: str, values: dict | None = None):
    """POST the callback behind ``output`` with every declared input and state, as the renderer would.

    ``values`` maps "component-id.property" to the value sent (default None).
    """
    from tests.conftest import post_callback

    spec = app.extensions["glassbox.dash"].callback_map[output]
    values = values or {}

    def items(kind):
        return [{"id": d["id"], "property": d["property"], "value": values.get(f"{d['id']}.{d['property']}")}
                for d in spec[kind]]

    return post_callback(client, output, inputs=items("inputs"), state=items("state"))
