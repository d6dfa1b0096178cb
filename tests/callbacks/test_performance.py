"""Performance page callbacks: numbers equal scikit-learn's; progress while computing; forged and cross-model requests."""

from __future__ import annotations

import json

import pytest
from dash import no_update
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, roc_auc_score

from callbacks import performance as C
from layouts import performance as L
from tests.callbacks.views_world import (BINARY, MULTICLASS, PENDING, REGRESSION, build_world, find, frame_of, request,
                                        text_of, user)
from tests.conftest import post_callback, sign_in


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    app = build_world(tmp_path_factory.mktemp("performance"))
    yield app
    app.extensions["glassbox.db"].dispose()


def update(world, model=BINARY, split="test", name="viewer", signature=None, polled=False, version_=None):
    with request(world):
        return C.update(model, version_, split, None, signature, user=user(world, name), polled=polled)


def _cell(body, key, column):
    row = find(body, f"{L.METRICS_TABLE}-{key}")
    assert row is not None, key
    return row.children[{"train": 1, "test": 2, "gap": 3}[column]]


def test_binary_metrics_table_equals_sklearn_and_flags_gaps(world):
    body, status, interval_off, message, signature = update(world)
    assert message is None and status is None and interval_off is True and signature
    model, test, features = frame_of(BINARY)
    score = model.predict_proba(test[features])[:, 1]
    pred = (score >= 0.5).astype(int)
    assert _cell(body, "accuracy", "test").children == f"{accuracy_score(test['target'], pred):.4f}"
    assert _cell(body, "f1", "test").children == f"{f1_score(test['target'], pred):.4f}"
    assert _cell(body, "roc_auc", "test").children == f"{roc_auc_score(test['target'], score):.4f}"
    flagged = [r for r in ("accuracy", "f1", "log_loss", "brier", "mcc", "recall")
               if "table-warning" in (_cell(body, r, "gap").className or "")]
    flags = find(body, f"{L.METRICS_TABLE}-flags")
    assert (flags is not None) == bool(flagged)
    if flags is not None:
        assert "overfitting" in text_of(flags)
    assert "default threshold 0.5" in text_of(body)
    for graph_id in (L.ROC, L.PR, L.CALIBRATION, L.SCORES):
        fig = find(body, graph_id).figure
        assert fig["data"], graph_id
        assert fig["layout"]["title"]["text"] and fig["layout"]["xaxis"]["title"]["text"]
    roc = find(body, L.ROC).figure
    assert {t["name"].split(" ")[0] for t in roc["data"]} >= {"Train", "Test"}


def test_multiclass_shows_one_vs_rest_curves_and_a_per_class_report(world):
    body, *_ = update(world, model=MULTICLASS, split="test")
    model, test, features = frame_of(MULTICLASS)
    pred = model.predict(test[features])
    table = text_of(find(body, L.PER_CLASS_TABLE))
    per_class = f1_score(test["target"], pred, average=None, labels=[0, 1, 2])
    for value in per_class:
        assert f"{value:.3f}" in table
    assert "each class against the rest (test data)" in find(body, L.ROC).figure["layout"]["title"]["text"]
    assert len([t for t in find(body, L.ROC).figure["data"] if t["name"].startswith("class")]) == 3
    assert find(body, L.PER_CLASS).figure["data"]


def test_regression_figures_and_errors(world):
    body, *_ = update(world, model=REGRESSION)
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    data = load_diabetes(as_frame=True)
    frame = data.frame
    features = list(data.feature_names)
    train, test = frame.iloc[:300], frame.iloc[300:]
    pred = LinearRegression().fit(train[features], train["target"]).predict(test[features])
    assert _cell(body, "mae", "test").children == f"{mean_absolute_error(test['target'], pred):.4f}"
    for graph_id in (L.PRED_ACTUAL, L.RESIDUALS, L.RESIDUAL_HIST, L.DECILES):
        fig = find(body, graph_id).figure
        assert fig["data"] and "test data" in fig["layout"]["title"]["text"], graph_id
    assert find(body, L.ROC) is None


def test_train_split_changes_the_split_figures(world):
    test_body, *_ = update(world, model=MULTICLASS, split="test")
    train_body, *_ = update(world, model=MULTICLASS, split="train")
    assert "(train data)" in find(train_body, L.ROC).figure["layout"]["title"]["text"]
    assert find(train_body, L.PER_CLASS_TABLE) != find(test_body, L.PER_CLASS_TABLE)


def test_pending_model_shows_progress_and_polls_until_ready(world):
    body, status, interval_off, message, signature = update(world, model=PENDING)
    assert interval_off is False and "Computing the analyses" in text_of(status)
    assert "still being computed" in json.dumps(find(body, L.ROC).figure)
    again = update(world, model=PENDING, signature=signature, polled=True)
    assert again[0] is no_update and again[2] is False and again[4] is no_update


def test_same_signature_answers_no_update(world):
    body, _, _, _, signature = update(world)
    again = update(world, signature=signature, polled=True)
    assert again[0] is no_update and again[2] is True


@pytest.mark.parametrize("model, split, version_, says", [
    ({"a": 1}, "test", None, "Choose a model"), (BINARY, "both", None, "Data must be one of"),
    (BINARY, "test", -3, "positive whole number"), (BINARY, "test", 99, "no version"),
])
def test_forged_selection_gives_a_message(world, model, split, version_, says):
    body, status, interval_off, message, signature = update(world, model=model, split=split, version_=version_)
    assert body is None and signature is None and says in text_of(message)


def test_grant_on_another_model_gives_the_permission_message_only(world):
    body, status, interval_off, message, signature = update(world, name="irisonly", model=BINARY)
    assert body is None and "do not have access" in text_of(message)
    assert update(world, name="irisonly", model=MULTICLASS)[0] is not None


def test_every_role_with_view_metrics_passes_the_gate(world):
    key = next(k for k in world.extensions["glassbox.policy"].permissions if k.startswith("..performance-body"))
    for name in ("viewer", "analyst", "irisonly"):
        client = world.test_client()
        sign_in(client, world.extensions["glassbox.db"], name)
        response = post_callback(client, key, inputs=[
            {"id": "performance-model", "property": "value", "value": BINARY},
            {"id": "performance-version", "property": "value", "value": None},
            {"id": "performance-split", "property": "value", "value": "test"},
            {"id": L.INTERVAL, "property": "n_intervals", "value": None}],
            state=[{"id": L.SIGNATURE, "property": "data", "value": None}])
        assert response.status_code == 200, name
        body = json.dumps(response.get_json())
        assert (f"{L.METRICS_TABLE}-accuracy" in body) == (name != "irisonly"), name
