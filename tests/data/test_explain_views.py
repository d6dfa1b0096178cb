"""The why-pages' read helpers against scikit-learn and the model itself, on small registered models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import partial_dependence

from app.ml.predict import validate_row
from data import analyses, analysis_cache, registry
from data import explain_views as ev
from data.analysis_cache import get_result
from data.db import Database
from data.registry import get_version
from tests.browser.seed_explain import FLOWERS, HOUSES, LOANS, MLP, world_copy


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Four small models with their feature analyses (partial dependence cached for two features only)."""
    url, _ = world_copy(tmp_path_factory.mktemp("why"))
    db = Database(url)
    yield db
    db.dispose()
    registry.clear_caches()
    analyses.release_contexts()
    analysis_cache.clear_payload_cache()
    ev.clear_caches()


def version(db, name):
    with db.session() as s:
        return get_version(s, name)


# -- metadata and rows ------------------------------------------------------------------------

def test_reference_meta_covers_every_train_and_test_row(world):
    found = version(world, HOUSES)
    train, test = registry.load_frames(found)
    registered = {m["name"]: m for m in found.feature_meta}
    widened = {m["name"]: m for m in ev.reference_meta(found)}
    both = pd.concat([train, test])
    for name in found.features:
        assert widened[name]["min"] == min(registered[name]["min"], both[name].min())
        assert widened[name]["max"] == max(registered[name]["max"], both[name].max())
    # Some test row lies outside the training ranges, and it is still a valid row.
    outside = [i for i in range(len(test)) if validate_row(
        {f: test[f].iloc[i].item() for f in found.features}, feature_meta=found.feature_meta)[1]]
    assert outside, "the fixture should hold a test row outside the training ranges"
    row = ev.split_row(found, "test", outside[0])
    assert row == {f: test[f].iloc[outside[0]].item() for f in found.features}


def test_split_row_refuses_bad_indices(world):
    found = version(world, LOANS)
    n = ev.row_count(found, "test")
    for bad in (-1, n, 1e9, "x", None, [1], {"a": 1}, True, 2.5):
        with pytest.raises(ev.ExplainError):
            ev.split_row(found, "test", bad)
    with pytest.raises(ev.ExplainError, match="train or the test"):
        ev.split_row(found, "validation", 0)
    assert ev.check_index(found, "test", "3") == 3 and ev.check_index(found, "test", 3.0) == 3


def test_typical_row_is_the_training_median_and_mode(world):
    found = version(world, LOANS)
    train, _ = registry.load_frames(found)
    row = ev.typical_row(found)
    assert row["credit_score"] == int(np.median(train["credit_score"])) or \
        abs(row["credit_score"] - np.median(train["credit_score"])) <= 0.5
    assert row["employment_type"] == train["employment_type"].mode()[0]
    assert validate_row(row, feature_meta=ev.reference_meta(found))[1] == []


def test_check_row_and_parse_values_give_messages(world):
    found = version(world, LOANS)
    good = ev.typical_row(found)
    assert ev.check_row(found, good) == good
    with pytest.raises(ev.ExplainError, match="outside the range"):
        ev.check_row(found, {**good, "age": 500})
    with pytest.raises(ev.ExplainError, match="known categories"):
        ev.check_row(found, {**good, "employment_type": "astronaut"})
    with pytest.raises(ev.ExplainError, match="Unknown feature"):
        ev.check_row(found, {**good, "shoe_size": 44})
    with pytest.raises(ev.ExplainError, match="not valid JSON"):
        ev.parse_values("{nope")
    with pytest.raises(ev.ExplainError, match="JSON object"):
        ev.parse_values("[1, 2]")
    with pytest.raises(ev.ExplainError, match="longer than"):
        ev.parse_values("{" + " " * 5000 + "}")
    assert ev.parse_values('{"age": 30}') == {"age": 30}


# -- explanations --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [LOANS, HOUSES, MLP, FLOWERS])
def test_shap_contributions_add_up_to_the_model_output(world, name):
    found = version(world, name)
    estimator = ev.estimator_of(found)
    _, test = registry.load_frames(found)
    for index in (0, 7):
        row = ev.split_row(found, "test", index)
        explanation = ev.explain(found, row)
        total = explanation["base_value"] + sum(explanation["values"])
        assert total == pytest.approx(explanation["output"], abs=1e-6)
        X = test[list(found.features)].iloc[[index]]
        space = explanation["output_space"]
        if found.task == "regression":
            expected = float(estimator.predict(X)[0])
        else:
            classes = [str(c) for c in estimator.classes_]
            column = classes.index(str(explanation["target_label"]))
            if space == "probability":
                expected = float(estimator.predict_proba(X)[0, column])
            else:
                margin = float(np.ravel(estimator.decision_function(X))[0])
                expected = margin if column == 1 else -margin
        assert explanation["output"] == pytest.approx(expected, rel=1e-9, abs=1e-9), (name, space)
    if found.task == "binary":
        assert str(explanation["target_label"]) == str(found.positive_class)
    assert ev.explainer_method(found) == ("kernel" if name == MLP else "tree")


def test_explainer_is_built_once_per_version(world):
    found = version(world, LOANS)
    assert ev.explainer_for(found) is ev.explainer_for(version(world, LOANS))


def test_predict_matches_the_estimator(world):
    found = version(world, FLOWERS)
    _, test = registry.load_frames(found)
    row = ev.split_row(found, "test", 4)
    prediction = ev.predict(found, row)
    proba = ev.estimator_of(found).predict_proba(test[list(found.features)].iloc[[4]])[0]
    assert prediction["proba"] == pytest.approx(proba.tolist())
    assert prediction["predicted"] == ev.estimator_of(found).classes_[int(np.argmax(proba))]


# -- counterfactuals ------------------------------------------------------------------------------

def test_counterfactual_flips_the_prediction_and_keeps_locks(world):
    found = version(world, LOANS)
    estimator = ev.estimator_of(found)
    row = ev.split_row(found, "test", 3)
    before = ev.predict(found, row)["predicted"]
    result = ev.counterfactual(found, row, locked=["age", "employment_type"])
    assert result["found"], result["message"]
    after_row = result["counterfactual"]
    assert after_row["age"] == row["age"] and after_row["employment_type"] == row["employment_type"]
    frame = ev.row_frame(found, after_row)
    assert estimator.predict(frame)[0] != before
    assert validate_row(after_row, feature_meta=ev.reference_meta(found))[1] == []


def test_counterfactual_regression_reaches_the_target(world):
    found = version(world, HOUSES)
    row = ev.split_row(found, "test", 0)
    value = ev.predict(found, row)["value"]
    result = ev.counterfactual(found, row, target_value=value + 20_000)
    assert result["found"]
    assert ev.predict(found, result["counterfactual"])["value"] >= value + 20_000


def test_counterfactual_with_everything_locked_says_so(world):
    found = version(world, LOANS)
    row = ev.split_row(found, "test", 3)
    result = ev.counterfactual(found, row, locked=list(found.features))
    assert not result["found"] and "locked" in result["message"]
    with pytest.raises(ev.ExplainError, match="unknown features"):
        ev.counterfactual(found, row, locked=["nope"])


# -- row lists ---------------------------------------------------------------------------------------

def test_nearest_rows_are_nearest_with_true_labels(world):
    found = version(world, LOANS)
    _, test = registry.load_frames(found)
    row = ev.split_row(found, "test", 5)
    items = ev.nearest(found, "test", row, k=4)
    assert items[0]["row"] == 5 and items[0]["distance"] == 0.0
    assert [i["distance"] for i in items] == sorted(i["distance"] for i in items)
    for item in items:
        assert item["true"] == test[found.target].iloc[item["row"]]
    without = ev.nearest(found, "test", row, k=4, exclude_index=5)
    assert 5 not in [i["row"] for i in without]


def test_confident_mistakes_are_wrong_and_sorted(world):
    found = version(world, LOANS)
    _, test = registry.load_frames(found)
    estimator = ev.estimator_of(found)
    proba = estimator.predict_proba(test[list(found.features)])
    positive = list(estimator.classes_).index("yes")
    predicted = np.where(proba[:, positive] >= 0.5, "yes", "no")
    wrong = np.flatnonzero(predicted != test["approved"].to_numpy())
    items = ev.confident_mistakes(found, "test", limit=5)
    assert len(items) == min(5, len(wrong))
    confidences = [i["confidence"] for i in items]
    assert confidences == sorted(confidences, reverse=True)
    expected_top = max(proba[i].max() for i in wrong)
    assert confidences[0] == pytest.approx(expected_top)
    for item in items:
        assert item["true"] != item["predicted"] and item["row"] in wrong


def test_largest_errors_of_a_regression(world):
    found = version(world, HOUSES)
    _, test = registry.load_frames(found)
    pred = ev.estimator_of(found).predict(test[list(found.features)])
    items = ev.largest_errors(found, "test", limit=3)
    errors = np.abs(pred - test["price"].to_numpy())
    assert [i["row"] for i in items] == list(np.argsort(-errors, kind="stable")[:3])
    with pytest.raises(ev.ExplainError):
        ev.confident_mistakes(found, "test")


# -- the features page ---------------------------------------------------------------------------------

def test_importances_come_from_the_cache(world):
    found = version(world, LOANS)
    with world.session() as s:
        perm = ev.importance(s, found, "permutation")
        assert perm["result"] is get_result(s, found.id, "permutation_importance")
        assert "roc_auc" in perm["note"]
        imp = ev.importance(s, found, "impurity")
        assert imp["state"] == "ready" and sum(imp["result"]["mean"]) == pytest.approx(1.0)
        shap = ev.importance(s, found, "shap")
        sample = get_result(s, found.id, "shap")
        expected = np.abs(np.asarray(sample["values"])).mean(axis=0)
        by_name = dict(zip(shap["result"]["features"], shap["result"]["mean"]))
        assert [by_name[f] for f in sample["features"]] == pytest.approx(expected.tolist())
        with pytest.raises(ev.ExplainError):
            ev.importance(s, found, "gain")
    mlp = version(world, MLP)
    with world.session() as s:
        assert ev.importance(s, mlp, "impurity")["state"] == "unavailable"


def test_multiclass_shap_is_per_predicted_class(world):
    found = version(world, FLOWERS)
    with world.session() as s:
        payload = get_result(s, found.id, "shap")
        for klass in found.classes:
            shown = ev.shap_rows(s, found, klass=klass)
            if shown["sample"] is None:
                continue
            keep = [i for i, t in enumerate(payload["target_label"]) if t == klass]
            assert shown["sample"]["values"] == [payload["values"][i] for i in keep]
            assert set(shown["sample"]["target_label"]) == {klass}
        with pytest.raises(ev.ExplainError):
            ev.shap_rows(s, found, klass="tulip")


def test_cached_pdp_is_read_and_other_features_are_computed_like_sklearn(world):
    found = version(world, LOANS)
    with world.session() as s:
        payload = get_result(s, found.id, "pdp")
        cached_feature = payload["features"][0]
        shown = ev.pdp(s, found, cached_feature)
        assert not shown["on_demand"] and shown["pdp"] is payload["grids"]["yes"][cached_feature]
        other = next(f for f in found.features if f not in payload["features"] and f in
                     ("age", "credit_score", "existing_loans", "annual_income"))
        computed = ev.pdp(s, found, other)
    assert computed["on_demand"] and "computed now" in computed["note"]
    _, test = registry.load_frames(found)
    X = test[list(found.features)].astype({c: float for c in ("age", "credit_score", "existing_loans")})
    reference = partial_dependence(ev.estimator_of(found), X, [other], grid_resolution=ev.ON_DEMAND_PDP_GRID,
                                   method="brute", kind="average")
    assert computed["pdp"]["grid"] == pytest.approx(reference["grid_values"][0].tolist())
    assert computed["pdp"]["average"] == pytest.approx(reference["average"][0].tolist())


def test_categorical_pdp_on_demand(world):
    found = version(world, LOANS)
    with world.session() as s:
        payload = get_result(s, found.id, "pdp")
        categorical = next(f for f in ("employment_type", "home_ownership") if f not in payload["features"])
        shown = ev.pdp(s, found, categorical)
    assert shown["pdp"]["kind"] == "categorical"
    assert set(shown["pdp"]["grid"]) <= {"salaried", "self-employed", "unemployed", "rent", "mortgage", "own"}


def test_pdp2d_cached_pair_either_way_and_other_pairs_on_demand(world):
    found = version(world, HOUSES)
    with world.session() as s:
        pair = ev.pdp2d_pair(s, found)
        straight = ev.pdp2d(s, found, pair)
        swapped = ev.pdp2d(s, found, pair[::-1])
        assert not straight["on_demand"] and not swapped["on_demand"]
        assert np.asarray(swapped["pdp"]["values"]).T.tolist() == straight["pdp"]["values"]
        other = [f for f in found.features if f not in pair][0]
        computed = ev.pdp2d(s, found, [pair[0], other])
        assert computed["on_demand"] and len(computed["pdp"]["values"]) == len(computed["pdp"]["grid_x"])
        for bad in ([pair[0], pair[0]], [pair[0]], ["nope", pair[0]], "ab"):
            with pytest.raises(ev.ExplainError):
                ev.pdp2d(s, found, bad)


def test_class_key(world):
    flowers, loans, houses = version(world, FLOWERS), version(world, LOANS), version(world, HOUSES)
    assert ev.class_key(houses, None) == ("value", None, None)
    assert ev.class_key(loans, "anything")[0] == "yes"
    assert ev.class_key(flowers, "virginica")[2] == "virginica"
    assert ev.class_key(flowers, None)[0] == str(flowers.classes[0])
    with pytest.raises(ev.ExplainError):
        ev.class_key(flowers, "tulip")


def test_values_diff_and_compact_json():
    assert ev.values_diff({"a": 1, "b": 2.0}, {"a": 1, "b": 3.0}) == {"b": 2.0}
    assert json.loads(ev.compact_json({"x": 1 / 3, "c": "t"})) == {"x": 0.33333333, "c": "t"}


# -- the fast single-row path for forests -----------------------------------------------------------------

@pytest.mark.parametrize("name", [FLOWERS, HOUSES])
def test_forest_fast_path_equals_predict_row(world, name):
    from app.ml.predict import predict_row

    found = version(world, name)
    meta = ev.reference_meta(found)
    estimator = ev.estimator_of(found)
    assert ev._fast_forest(ev._files(found)) is not None
    _, test = registry.load_frames(found)
    for index in range(0, len(test), 3):
        row = ev.split_row(found, "test", index)
        fast, slow = ev.predict(found, row), predict_row(estimator, row, feature_meta=meta, task=found.task)
        assert fast.keys() == slow.keys()
        for key, value in slow.items():
            numeric = isinstance(value, float) or (isinstance(value, (list, tuple)) and all(
                isinstance(v, float) for v in value))
            assert fast[key] == (pytest.approx(value, rel=1e-12, abs=1e-12) if numeric else value), (index, key)


@pytest.mark.parametrize("name", [LOANS, MLP])
def test_other_models_take_the_general_path(world, name):
    assert ev._fast_forest(ev._files(version(world, name))) is None


@pytest.mark.parametrize("forest", ["random", "extra"])
def test_fast_forest_in_a_pipeline_with_parallel_trees(forest):
    from sklearn.datasets import load_iris
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from app.ml.features import infer_feature_meta
    from app.ml.predict import predict_row

    X, y = load_iris(return_X_y=True, as_frame=True)
    cls = RandomForestClassifier if forest == "random" else ExtraTreesClassifier
    model = make_pipeline(StandardScaler(), cls(n_estimators=30, n_jobs=2, random_state=0)).fit(X, y)
    meta = infer_feature_meta(X)
    fast = ev.FastForest(model, "multiclass")
    for i in range(0, 150, 10):
        row = {k: float(v) for k, v in X.iloc[i].items()}
        got, expected = fast.predict_row(row, feature_meta=meta), predict_row(model, row, feature_meta=meta,
                                                                               task="multiclass")
        assert got["proba"] == pytest.approx(expected["proba"], abs=1e-12)
        assert got["predicted"] == expected["predicted"] and got["margin"] == pytest.approx(expected["margin"])
