"""The model views' read helpers against scikit-learn on registered models.

Models come from tests/data/conftest.py; only the analyses the views read are
computed (the rest are marked skipped), which keeps this module fast.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix
from sklearn.tree import DecisionTreeClassifier

from app.ml.fairness import group_rates
from data import views
from data.analysis_cache import claim_next, finish
from data.registry import get_version, register_model
from tests.browser.seed_models import run_view_analyses

FEATURES = [f"x{i}" for i in range(5)]
#: What these helpers read: the sweeps (the rest of the queue is marked skipped).
KINDS = frozenset({"sweep_test", "sweep_train", "curves_test", "curves_train"})


def _register(store, case, *, run=True, **kwargs):
    db, artifact_dir = store
    model, train, test = case
    if "region" in test.columns:
        kwargs.setdefault("group_columns", ["region"])
    version = register_model(model, train, test, created_by="t", db=db, artifact_dir=artifact_dir, **kwargs)
    if run:
        run_view_analyses(db, KINDS)
    with db.session() as s:
        return get_version(s, version.name, version.number)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One database for the read-only tests of this module."""
    from data.db import Base, Database
    from data.tables import import_all_tables

    tmp = tmp_path_factory.mktemp("views")
    import_all_tables()
    db = Database(f"sqlite:///{tmp / 'views.db'}")
    Base.metadata.create_all(db.engine)
    yield db, tmp / "artifacts"
    db.dispose()
    views.clear_caches()


@pytest.fixture(scope="module")
def binary(shared_store, binary_case):
    return _register(shared_store, binary_case, name="bin", target="label", positive_class="yes")


def _scores(version, case, split="test"):
    model, train, test = case
    frame = test if split == "test" else train
    pos = list(model.classes_).index(version.positive_class)
    return frame, model.predict_proba(frame[FEATURES])[:, pos]


# -- status and sweeps ---------------------------------------------------------------

def test_readiness_moves_from_computing_to_ready(store, binary_case):
    db, _ = store
    version = _register(store, binary_case, run=False, name="b", target="label", positive_class="yes")
    with db.session() as s:
        before = views.readiness(s, version.id, views.THRESHOLD_KINDS)
    assert before["state"] == "computing" and before["progress"] == 0 and len(before["waiting"]) == 4
    assert before["titles"]["sweep_test"] == "Threshold sweep (test)"
    assert views.load_sweep(db, version, "test") is None
    run_view_analyses(db, KINDS)
    with db.session() as s:
        after = views.readiness(s, version.id, views.THRESHOLD_KINDS)
        other = views.readiness(s, version.id, ("shap", "not_a_kind"))
    assert after["state"] == "ready" and after["progress"] == 1.0
    assert other["state"] == "failed" and other["missing"] == ["not_a_kind"]
    assert "skipped" in other["failed"][0]["error"]


def test_failed_analysis_is_reported(store, binary_case):
    db, _ = store
    version = _register(store, binary_case, run=False, name="b", target="label", positive_class="yes")
    while (claim := claim_next(db)) is not None:
        finish(db, claim, error="ValueError: boom")
    with db.session() as s:
        ready = views.readiness(s, version.id, ("sweep_test",))
    assert ready["state"] == "failed" and ready["failed"] == [{"kind": "sweep_test", "error": "ValueError: boom"}]


def test_grid_equals_sklearn_at_every_step(shared_store, binary, binary_case):
    db, _ = shared_store
    for split in ("train", "test"):
        frame, score = _scores(binary, binary_case, split)
        grid = views.threshold_grid(views.load_sweep(db, binary, split))
        y = (frame["label"] == "yes").to_numpy()
        for k in range(101) if split == "test" else (0, 1, 17, 29, 50, 57, 83, 99, 100):
            t = k / 100
            tn, fp, fn, tp = confusion_matrix(y, score >= t, labels=[False, True]).ravel()
            assert (grid["tp"][k], grid["fp"][k], grid["tn"][k], grid["fn"][k]) == (tp, fp, tn, fn), (split, k)
        assert grid["n"] == len(frame)


def test_sweep_is_memoised_per_process(shared_store, binary):
    db, _ = shared_store
    assert views.load_sweep(db, binary, "test") is views.load_sweep(db, binary, "test")
    with pytest.raises(views.ViewError, match="unknown data split"):
        views.load_sweep(db, binary, "valid")


@pytest.fixture(scope="module")
def tied_case():
    """A shallow tree: few distinct scores, so thresholds land exactly on tied scores."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(300, 5)), columns=FEATURES)
    frame["label"] = np.where(frame["x0"] + 0.5 * rng.normal(size=300) > 0, "yes", "no")
    frame["region"] = pd.Categorical(np.where(frame["x1"] > 0, "north", "south"),
                                     categories=["north", "south", "west"])
    train, test = frame.iloc[:200].reset_index(drop=True), frame.iloc[200:].reset_index(drop=True)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(train[FEATURES], train["label"])
    return model, train, test


def test_confusion_with_ties_at_the_threshold_equals_sklearn(store, tied_case):
    db, _ = store
    version = _register(store, tied_case, name="tree", target="label", positive_class="yes",
                        group_columns=["region"])
    frame, score = _scores(version, tied_case)
    y = (frame["label"] == "yes").to_numpy()
    values = np.unique(score)
    assert len(values) < 6 and np.bincount(np.searchsorted(values, score)).max() > 1  # ties
    for t in list(values) + [0.0, 1.0]:
        cm = views.confusion(db, version, "test", threshold=float(t))
        expected = confusion_matrix(y, score >= t, labels=[False, True])
        assert cm["labels"] == ["no", "yes"]
        assert cm["matrix"] == expected.tolist(), t


def test_empty_group_is_reported_not_an_error(store, tied_case):
    version = _register(store, tied_case, name="tree", target="label", positive_class="yes",
                        group_columns=["region"])
    frame, score = _scores(version, tied_case)
    result = views.fairness(version, "test", "region", threshold=0.5)
    groups = {g["group"]: g for g in result["groups"]}
    # Categories survive the Parquet round trip: the unused one is an empty group, not an error.
    assert groups["west"]["size"] == 0 and groups["west"]["tpr"] is None and groups["west"]["selection_rate"] is None
    expected = group_rates(frame["label"], score, frame["region"], threshold=0.5, positive_label="yes")
    assert [g["tpr"] for g in result["groups"] if g["size"]] == [g["tpr"] for g in expected["groups"] if g["size"]]


def test_multiclass_confusion_and_a_class_absent_from_test(store, multiclass_case):
    model, train, test = multiclass_case
    db, _ = store
    test = test[test["target"] != 2].reset_index(drop=True)
    version = _register(store, (model, train, test), name="iris", target="target")
    cm = views.confusion(db, version, "test")
    pred = model.predict(test[list(train.columns[:4])])
    assert cm["labels"] == [0, 1, 2]
    assert cm["matrix"] == confusion_matrix(test["target"], pred, labels=[0, 1, 2]).tolist()
    assert cm["matrix"][2] == [0, 0, 0]
    with pytest.raises(views.ViewError, match="not a class"):
        views.class_label(version, 7)
    assert views.class_label(version, "2") == 2


# -- rows of a cell -----------------------------------------------------------------

def test_cell_rows_are_the_rows_sklearn_puts_there(binary, binary_case):
    frame, score = _scores(binary, binary_case)
    t = 0.4
    mask = (frame["label"] == "yes").to_numpy() & (score < t)  # true yes, predicted no
    page = views.cell_rows(binary, "test", true_label="yes", pred_label="no", threshold=t, start=0, end=100)
    assert page["count"] == int(mask.sum())
    assert [r["row"] for r in page["rows"]] == np.flatnonzero(mask).tolist()
    first = page["rows"][0]
    assert first["true"] == "yes" and first["pred"] == "no"
    assert first["score"] == pytest.approx(score[first["row"]])
    assert first["confidence"] == pytest.approx(1 - score[first["row"]])
    assert first["c0"] == pytest.approx(frame.loc[first["row"], "x0"])


def test_cell_rows_sort_filter_and_page_on_the_server(binary, binary_case):
    frame, score = _scores(binary, binary_case)
    t = 0.5
    correct = np.flatnonzero((frame["label"] == "no").to_numpy() & (score < t))
    by_x0 = correct[np.argsort(-frame["x0"].to_numpy()[correct], kind="stable")]
    page = views.cell_rows(binary, "test", true_label="no", pred_label="no", threshold=t, start=5, end=10,
                           sort_model=[{"colId": "c0", "sort": "desc"}])
    assert [r["row"] for r in page["rows"]] == by_x0[5:10].tolist()
    north = [i for i in correct if frame.loc[i, "region"] == "north" and frame.loc[i, "x1"] > 0]
    page = views.cell_rows(binary, "test", true_label="no", pred_label="no", threshold=t, start=0, end=500,
                           filter_model={"c5": {"filterType": "text", "type": "equals", "filter": "NORTH"},
                                         "c1": {"filterType": "number", "type": "greaterThan", "filter": 0}})
    assert sorted(r["row"] for r in page["rows"]) == north and page["count"] == len(north)
    either = views.cell_rows(binary, "test", true_label="no", pred_label="no", threshold=t, start=0, end=500,
                             filter_model={"c0": {"filterType": "number", "operator": "OR", "conditions": [
                                 {"type": "lessThan", "filter": -1}, {"type": "inRange", "filter": 2,
                                                                      "filterTo": 1}]}})
    x0 = frame["x0"].to_numpy()[correct]
    assert either["count"] == int(((x0 < -1) | ((x0 >= 1) & (x0 <= 2))).sum())


@pytest.mark.parametrize("kwargs, message", [
    ({"filter_model": {"nope": {"type": "equals", "filter": 1}}}, "no column"),
    ({"filter_model": {"c0": {"type": "regex", "filter": ".*"}}}, "unknown number filter"),
    ({"filter_model": {"c5": {"type": "contains", "filter": "x" * 500}}}, "longer than"),
    ({"filter_model": {"c0": {"type": "lessThan", "filter": "1e9; drop"}}}, "finite number"),
    ({"filter_model": {"c0": {"type": "lessThan", "filter": float("nan")}}}, "malformed"),
    ({"filter_model": {"c0": "lessThan"}}, "malformed"),
    ({"filter_model": ["c0"]}, "malformed"),
    ({"sort_model": [{"colId": "c0", "sort": "sideways"}]}, "malformed"),
    ({"sort_model": [{"colId": "__class__", "sort": "asc"}]}, "no column"),
    ({"sort_model": {"colId": "c0"}}, "at most"),
    ({"start": -1}, "malformed page"),
    ({"start": 10, "end": 5}, "malformed page"),
    ({"true_label": {"$ne": 1}}, "not part"),
    ({"pred_label": "maybe"}, "not a class"),
])
def test_forged_grid_requests_are_refused_with_a_message(binary, kwargs, message):
    args = dict(true_label="yes", pred_label="no", threshold=0.5, start=0, end=10)
    args.update(kwargs)
    with pytest.raises(views.ViewError, match=message):
        views.cell_rows(binary, "test", **args)


def test_pages_are_capped(binary):
    page = views.cell_rows(binary, "train", true_label="no", pred_label="no", threshold=0.5, start=0, end=10**6)
    assert len(page["rows"]) <= views.MAX_PAGE_ROWS


def test_confident_mistakes_are_wrong_and_most_confident_first(binary, binary_case):
    frame, score = _scores(binary, binary_case)
    rows = views.confident_mistakes(binary, "test", threshold=0.5, limit=5)
    assert rows and len(rows) <= 5
    assert all(r["true"] != r["pred"] for r in rows)
    conf = [r["confidence"] for r in rows]
    assert conf == sorted(conf, reverse=True)
    wrong = (score >= 0.5) != (frame["label"] == "yes").to_numpy()
    assert conf[0] == pytest.approx(np.maximum(score, 1 - score)[wrong].max())


def test_all_one_class_predictions(binary):
    """At threshold 0 every row is predicted positive: the negative column is empty, nothing breaks."""
    page = views.cell_rows(binary, "test", true_label="no", pred_label="no", threshold=0.0, start=0, end=10)
    assert page == {"rows": [], "count": 0}
    mistakes = views.confident_mistakes(binary, "test", threshold=0.0, limit=3)
    assert all(r["true"] == "no" and r["pred"] == "yes" for r in mistakes)


@pytest.mark.parametrize("row", [-1, 10**9, "3", True, 2.5, None])
def test_row_details_refuse_rows_that_do_not_exist(binary, row):
    with pytest.raises(views.ViewError, match="no row"):
        views.row_details(binary, "test", row, threshold=0.5)


def test_row_details(binary, binary_case):
    frame, score = _scores(binary, binary_case)
    d = views.row_details(binary, "test", 7, threshold=0.5)
    assert d["features"][0] == {"name": "x0", "value": pytest.approx(frame.loc[7, "x0"])}
    assert d["groups"] == [{"name": "region", "value": frame.loc[7, "region"]}]
    assert d["score"] == pytest.approx(score[7])
    assert d["pred"] == ("yes" if score[7] >= 0.5 else "no") and d["true"] == frame.loc[7, "label"]


def test_csv_export_follows_filters_and_defuses_formulas(store, binary_case):
    model, train, test = binary_case
    test = test.copy()
    test["region"] = test["region"].astype(object)
    test.loc[0, "region"] = "=HYPERLINK(\"http://x\")"
    version = _register(store, (model, train, test), name="b", target="label", positive_class="yes",
                        group_columns=["region"])
    frame, score = _scores(version, (model, train, test))
    true_label = frame.loc[0, "label"]
    pred_label = "yes" if score[0] >= 0.5 else "no"
    out = views.cell_csv(version, "test", true_label=true_label, pred_label=pred_label, threshold=0.5)
    records = list(csv.reader(io.StringIO(out["csv"])))
    assert records[0][:2] == ["Row", "x0"] and "region" in records[0]
    assert out["rows"] == out["total"] == len(records) - 1 and not out["truncated"]
    first = dict(zip(records[0], records[1]))
    assert first["Row"] == "0" and first["region"].startswith("'=")
    assert all(not v.startswith(("=", "+", "@")) for r in records for v in r)
    capped = views.cell_csv(version, "test", true_label=true_label, pred_label=pred_label, threshold=0.5,
                            max_rows=2, sort_model=[{"colId": "row", "sort": "desc"}])
    assert capped["rows"] == 2 and capped["truncated"]
    assert [r[0] for r in list(csv.reader(io.StringIO(capped["csv"])))[1:]] == \
        [str(i) for i in sorted([int(r[0]) for r in records[1:]], reverse=True)[:2]]


def test_regressor_has_no_rows_by_cell(store, regression_case):
    version = _register(store, regression_case, name="reg", target="y")
    with pytest.raises(views.ViewError, match="classifier"):
        views.split_rows(version, "test")


# -- train vs test ------------------------------------------------------------------

def test_compare_metrics_flags_overfitting_gaps():
    train = {"accuracy": 0.99, "f1": 0.80, "log_loss": 0.10, "brier": 0.05, "roc_auc": None, "mcc": float("nan")}
    test = {"accuracy": 0.90, "f1": 0.78, "log_loss": 0.30, "brier": 0.055, "roc_auc": 0.9}
    rows = {r["key"]: r for r in views.compare_metrics(train, test, "binary")}
    assert rows["accuracy"]["flag"] and "overfitting" in rows["accuracy"]["note"]
    assert rows["accuracy"]["gap"] == pytest.approx(0.09)
    assert not rows["f1"]["flag"]
    assert rows["log_loss"]["flag"] and "3.0 times" in rows["log_loss"]["note"]
    assert not rows["brier"]["flag"]
    assert rows["roc_auc"]["train"] is None and rows["roc_auc"]["gap"] is None and not rows["roc_auc"]["flag"]
    assert "mcc" not in rows  # NaN on train, missing on test
    assert rows["accuracy"]["meaning"].startswith("Share of all rows")
    reg = {r["key"]: r for r in views.compare_metrics({"rmse": 0.0, "r2": 1.0}, {"rmse": 2.0, "r2": 0.5},
                                                       "regression")}
    assert reg["rmse"]["flag"] and "perfect on the training rows" in reg["rmse"]["note"]
    assert reg["r2"]["flag"]
    with pytest.raises(views.ViewError):
        views.compare_metrics({}, {}, "ranking")


def test_saved_threshold_defaults_to_half(binary):
    from types import SimpleNamespace

    assert views.saved_threshold(binary) == 0.5
    assert views.saved_threshold(SimpleNamespace(threshold={"value": 0.3})) == 0.3
    assert views.saved_threshold(SimpleNamespace(threshold={"value": "0.3"})) == 0.5
    assert views.saved_threshold(SimpleNamespace(threshold={"value": 1.5})) == 0.5
