"""Each analysis kind on real models: payloads equal scikit-learn's numbers; big sets are sampled, sweeps exact."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, mean_squared_error, roc_auc_score

from app.ml.influence import partial_dependence_1d
from app.ml.threshold import ThresholdSweep
from data import analyses
from data.analyses import ANALYSES, IMPORTANCE_ROWS, analyses_for
from data.analysis_cache import get_result, run_pending, status_for
from data.registry import register_model

FEATURES = [f"x{i}" for i in range(5)]


@pytest.fixture(autouse=True)
def small_grids(monkeypatch):
    """Coarser partial-dependence grids keep this module fast; sizes and sampling are unchanged."""
    monkeypatch.setattr(analyses, "PDP_GRID", 6)
    monkeypatch.setattr(analyses, "PDP_2D_GRID", 4)
    monkeypatch.setattr(analyses, "PDP_ICE_LINES", 10)


def register_and_run(store, case, **kwargs):
    db, artifact_dir = store
    model, train, test = case
    version = register_model(model, train, test, created_by="a", db=db, artifact_dir=artifact_dir, **kwargs)
    run_pending(db)
    with db.session() as s:
        status = status_for(s, version.id)
        results = {i["kind"]: get_result(s, version.id, i["kind"]) for i in status["items"]}
    failed = {i["kind"]: i["error"] for i in status["items"] if i["status"] != "ready"}
    assert not failed, failed
    for payload in results.values():
        json.dumps(payload)  # JSON-able
    return version, results


def test_every_kind_declares_tasks_and_a_title():
    for spec in ANALYSES.values():
        assert spec.tasks and spec.tasks <= {"binary", "multiclass", "regression"}, spec.name
        assert spec.title
    assert {"sweep_test", "sweep_train"} <= {k.name for k in analyses_for("binary")}
    assert "sweep_test" not in {k.name for k in analyses_for("multiclass")}
    assert "calibration" not in {k.name for k in analyses_for("regression")}
    with pytest.raises(ValueError, match="unknown task"):
        analyses_for("ranking")


@pytest.mark.parametrize("positive", ["yes", "no"])
def test_binary_payloads_equal_sklearn(store, binary_case, positive):
    model, train, test = binary_case
    version, results = register_and_run(store, binary_case, name="churn", target="label", group_columns=["region"],
                                        positive_class=positive)
    proba = model.predict_proba(test[FEATURES])
    score = proba[:, list(model.classes_).index(positive)]
    y = test["label"].to_numpy()
    metrics = results["metrics_test"]["metrics"]
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y == positive, score))
    negative = "no" if positive == "yes" else "yes"
    pred = np.where(score >= 0.5, positive, negative)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, pred))
    sweep = ThresholdSweep.from_dict(results["sweep_test"])
    # Thresholds at exact scores (ties at the threshold), between them, and at the ends.
    for t in [0.0, 0.5, 1.0, float(score[3]), float(score[10]), float(np.median(score))]:
        tn, fp, fn, tp = confusion_matrix(y == positive, score >= t, labels=[False, True]).ravel()
        assert sweep.counts_at(t) == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    assert results["sweep_train"]["n"] == 300
    assert results["curves_test"]["roc"]["auc"] == pytest.approx(roc_auc_score(y == positive, score))
    assert results["calibration"]["test"]["counts"]
    assert sum(results["score_distributions"]["test"]["totals"]) == 100
    assert results["permutation_importance"]["sample_size"] == 100
    assert results["impurity_importance"]["available"] is False
    assert set(results["pdp"]["grids"]) == {positive}
    shap = results["shap"]
    assert shap["sample_size"] == 100 and sorted(shap["index"]) == list(range(100))
    for i in (0, 50):
        assert shap["base_values"][i] + sum(shap["values"][i]) == pytest.approx(shap["output"][i])
        p = score[shap["index"][i]]
        expected = p if shap["output_space"] == "probability" else np.log(p / (1 - p))
        assert shap["output"][i] == pytest.approx(expected)
    assert set(results["drift_reference"]["features"]) == set(FEATURES)
    assert results["outlier_scorer"]["n"] == 300


def test_multiclass_payloads(store, multiclass_case):
    model, train, test = multiclass_case
    version, results = register_and_run(store, multiclass_case, name="iris", target="target")
    features = list(model.feature_names_in_)
    assert results["metrics_test"]["metrics"]["accuracy"] == pytest.approx(model.score(test[features], test["target"]))
    assert "sweep_test" not in results
    per_class = results["curves_test"]["per_class"]
    for i, c in enumerate(model.classes_):
        expected = roc_auc_score(test["target"] == c, model.predict_proba(test[features])[:, i])
        assert per_class[str(c)]["roc"]["auc"] == pytest.approx(expected)
    assert set(results["pdp"]["grids"]) == {"0", "1", "2"}
    # Per-class grids (computed with the model's outputs remembered across classes) equal direct calls.
    feature = results["pdp"]["features"][0]
    for i in range(3):
        direct = partial_dependence_1d(model, test[features], feature, grid_resolution=6, ice_samples=10,
                                       target_index=i)
        got = results["pdp"]["grids"][str(i)][feature]
        assert got["average"] == pytest.approx(direct["average"])
        np.testing.assert_allclose(got["ice"], direct["ice"])
    assert results["impurity_importance"]["available"] is True
    assert sum(results["impurity_importance"]["mean"]) == pytest.approx(1.0)
    assert len(results["pdp"]["features"]) == 4


def test_regression_payloads(store, regression_case):
    model, train, test = regression_case
    version, results = register_and_run(store, regression_case, name="reg", target="y")
    pred = model.predict(test[["a", "b", "c", "d"]])
    metrics = results["metrics_test"]["metrics"]
    assert metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(test["y"], pred)))
    assert results["metrics_test"]["points"]["sample_size"] == 80
    assert "residuals" not in results["metrics_test"]["residuals"]  # per-row residuals travel as sampled points
    assert results["drift_reference"]["prediction_kind"] == "value"
    assert set(results["pdp"]["grids"]) == {"value"}


def test_categorical_pipeline_payloads(store, categorical_case):
    version, results = register_and_run(store, categorical_case, name="churn-cat", target="churned")
    plan_bins = results["drift_reference"]["features"]["plan"]
    assert plan_bins["kind"] == "categorical" and set(plan_bins["levels"]) == {"basic", "plus", "pro"}
    grids = results["pdp"]["grids"][str(version.positive_class)]
    assert grids["plan"]["kind"] == "categorical" and set(grids["plan"]["grid"]) == {"basic", "plus", "pro"}


def test_large_test_sets_are_sampled_where_exactness_is_not_needed(store):
    X, y = make_classification(n_samples=6000, n_features=5, random_state=1)
    frame = pd.DataFrame(X, columns=FEATURES).assign(label=y)
    train, test = frame.iloc[:1000], frame.iloc[1000:].reset_index(drop=True)
    model = LogisticRegression().fit(train[FEATURES], train["label"])
    version, results = register_and_run(store, (model, train, test), name="big", target="label")
    assert results["sweep_test"]["n"] == 5000  # exact
    assert results["metrics_test"]["metrics"]["n"] == 5000
    imp = results["permutation_importance"]
    assert (imp["sample_size"], imp["n_rows"]) == (IMPORTANCE_ROWS, 5000)
    assert (results["pdp"]["sample_size"], results["pdp"]["n_rows"]) == (analyses.PDP_ROWS, 5000)
    assert (results["shap"]["sample_size"], results["shap"]["n_rows"]) == (analyses.SHAP_ROWS, 5000)
    assert results["pdp_2d"]["sample_size"] == analyses.PDP_2D_ROWS
