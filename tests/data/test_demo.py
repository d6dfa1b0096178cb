"""Demo models: each registers with the right task, seeding is idempotent."""

from __future__ import annotations

import numpy as np

from data import demo
from data.registry import get_version, list_models


def test_demo_table():
    assert demo.DEMO_NAMES == ("iris", "fraud-imbalanced", "breast-cancer", "diabetes", "loan-approval")
    fraud = next(d for d in demo.DEMO_MODELS if d.name == "fraud-imbalanced")
    assert fraud.group_columns == ("region",) and fraud.positive_class == 1


def test_seed_is_idempotent_and_registers_each_task(store):
    db, artifact_dir = store
    cheap = ("iris", "breast-cancer", "diabetes", "loan-approval")
    assert demo.seed_demo_models(db, artifact_dir=artifact_dir, only=cheap) == list(cheap)
    assert demo.seed_demo_models(db, artifact_dir=artifact_dir, only=cheap) == []
    with db.session() as s:
        assert [m.name for m in list_models(s)] == sorted(cheap)
        tasks = {name: get_version(s, name).task for name in cheap}
        loans = get_version(s, "loan-approval")
        cancer = get_version(s, "breast-cancer")
    assert tasks == {"iris": "multiclass", "breast-cancer": "binary", "diabetes": "regression",
                     "loan-approval": "binary"}
    kinds = {m["name"]: m["kind"] for m in loans.feature_meta}
    assert kinds["employment_type"] == "categorical" and kinds["credit_score"] == "numeric"
    credit = next(m for m in loans.feature_meta if m["name"] == "credit_score")
    assert credit["integer"] is True and 300 <= credit["min"] <= credit["max"] <= 850
    assert cancer.positive_class == "malignant" and cancer.classes == ["benign", "malignant"]


def test_loan_applications_are_plausible():
    frame = demo.loan_applications(2000, seed=1)
    assert set(frame["approved"]) == {"yes", "no"}
    assert 0.2 < (frame["approved"] == "yes").mean() < 0.9
    assert frame["credit_score"].between(300, 850).all()
    assert (frame.loc[frame["employment_type"] == "unemployed", "years_at_employer"] == 0).all()
    # Better credit means more approvals.
    high = frame["credit_score"] > frame["credit_score"].median()
    assert (frame.loc[high, "approved"] == "yes").mean() > (frame.loc[~high, "approved"] == "yes").mean()
    assert np.isfinite(frame["annual_income"]).all()
