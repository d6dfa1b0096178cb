"""Every invalid registration gets a message naming the problem and leaves nothing behind."""

from __future__ import annotations

import pickle

import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sqlalchemy import func, select

from data import registry
from data.analysis_cache import AnalysisResult
from data.registry import ModelRecord, ModelVersion, register_files, register_model
from data.validation import RegistrationError

FEATURES = [f"x{i}" for i in range(5)]


def assert_nothing_written(db, artifact_dir):
    with db.session() as s:
        for table in (ModelRecord, ModelVersion, AnalysisResult):
            assert s.scalar(select(func.count()).select_from(table)) == 0, table.__tablename__
    assert not artifact_dir.exists() or not any(artifact_dir.rglob("*")), list(artifact_dir.rglob("*"))


def register(store, model, train, test, **kwargs):
    db, artifact_dir = store
    options = dict(name="churn", target="label", created_by="alice", db=db, artifact_dir=artifact_dir)
    options.update(kwargs)
    return register_model(model, train, test, **options)


def _unfitted(case):
    return LogisticRegression(), case[1], case[2]


def _extra_column(case):
    model, train, test = case
    return model, train.assign(customer_id=1), test.assign(customer_id=1)


def _missing_feature(case):
    model, train, test = case
    return model, train.drop(columns="x3"), test.drop(columns="x3")


def _no_target_train(case):
    model, train, test = case
    return model, train.drop(columns="label"), test


def _no_target_test(case):
    model, train, test = case
    return model, train, test.drop(columns="label")


def _empty_test(case):
    model, train, test = case
    return model, train, test.iloc[:0]


def _single_class_test(case):
    model, train, test = case
    return model, train, test[test["label"] == "yes"]


def _unknown_label(case):
    model, train, test = case
    test = test.copy()
    test.loc[0, "label"] = "maybe"
    return model, train, test


def _missing_label(case):
    model, train, test = case
    test = test.copy()
    test["label"] = test["label"].where(test.index != 3, None)
    return model, train, test


def _fails_to_predict(case):
    model, train, test = case
    test = test.copy()
    test["x1"] = "not a number"
    return model, train, test


def _not_a_frame(case):
    model, train, test = case
    return model, train.to_numpy(), test


def _different_columns(case):
    model, train, test = case
    return model, train, test.drop(columns="region")


@pytest.mark.parametrize("mutate, options, message", [
    (_no_target_train, {"group_columns": ["region"]}, "target column 'label' is missing from the train data"),
    (_no_target_test, {"group_columns": ["region"]}, "target column 'label' is missing from the test data"),
    (_extra_column, {"group_columns": ["region"]}, "columns the model does not expect: 'customer_id'"),
    (lambda c: c, {}, "columns the model does not expect: 'region'"),
    (_missing_feature, {"group_columns": ["region"]}, "expects columns that are missing from the data: 'x3'"),
    (_empty_test, {"group_columns": ["region"]}, "the test data is empty"),
    (_single_class_test, {"group_columns": ["region"]}, "the test set has a single class ('yes')"),
    (_unknown_label, {"group_columns": ["region"]}, "values the model does not know: 'maybe'"),
    (_missing_label, {"group_columns": ["region"]}, "has 1 missing values"),
    (_fails_to_predict, {"group_columns": ["region"]}, "the model fails to predict on the test data"),
    (_unfitted, {"group_columns": ["region"]}, "not a fitted scikit-learn estimator"),
    (_not_a_frame, {}, "must be a pandas DataFrame"),
    (_different_columns, {}, "train and test have different columns: only in train: 'region'"),
    (lambda c: c, {"group_columns": ["sex"]}, "group column 'sex' is missing from the train data"),
    (lambda c: c, {"group_columns": ["region"], "positive_class": "maybe"},
     "positive class 'maybe' is not one of the model's classes: no, yes"),
    (lambda c: c, {"group_columns": ["region"], "task": "multiclass"}, "does not match the classifier"),
    (lambda c: c, {"group_columns": ["region"], "name": "bad name/../x"}, "model name 'bad name/../x' is not valid"),
    (lambda c: c, {"group_columns": ["region"], "created_by": ""}, "created_by must name"),
    (lambda c: c, {"group_columns": ["region"], "feature_overrides": {"nope": {"min": 1}}}, "nope"),
])
def test_invalid_registration_names_the_problem_and_writes_nothing(store, binary_case, mutate, options, message):
    model, train, test = mutate(binary_case)
    with pytest.raises(RegistrationError) as info:
        register(store, model, train, test, **options)
    assert message in str(info.value)
    assert_nothing_written(*store)


def test_regression_target_must_be_numeric(store, regression_case):
    model, train, test = regression_case
    train = train.assign(y=train["y"].astype(str))
    with pytest.raises(RegistrationError, match="must be numeric for a regression model"):
        register(store, model, train, test, target="y")
    assert_nothing_written(*store)


def test_untrusted_type_is_named_and_nothing_written(store, binary_case):
    _, train, test = binary_case
    model = HistGradientBoostingClassifier(max_iter=3).fit(train[FEATURES], train["label"])
    with pytest.raises(RegistrationError, match="TreePredictor"):
        register(store, model, train, test, group_columns=["region"])
    assert_nothing_written(*store)


def test_failure_while_writing_leaves_nothing(store, binary_case, monkeypatch):
    model, train, test = binary_case

    def broken(session, version):
        raise RuntimeError("disk full")

    monkeypatch.setattr("data.analysis_cache.enqueue_all", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        register(store, model, train, test, group_columns=["region"])
    assert_nothing_written(*store)


# -- files (CLI and upload) ------------------------------------------------------------

@pytest.fixture
def files(tmp_path, binary_case):
    model, train, test = binary_case
    folder = tmp_path / "in"
    folder.mkdir()
    sio.dump(model, folder / "model.skops")
    train.to_csv(folder / "train.csv", index=False)
    test.to_parquet(folder / "test.parquet", index=False)
    with open(folder / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    return folder


def register_from(store, files, **kwargs):
    db, artifact_dir = store
    options = dict(name="churn", model_path=files / "model.skops", train_path=files / "train.csv",
                   test_path=files / "test.parquet", target="label", created_by="alice",
                   group_columns=["region"], db=db, artifact_dir=artifact_dir)
    options.update(kwargs)
    return register_files(**options)


def test_files_register(store, files):
    version = register_from(store, files)
    assert (version.number, version.task, version.train_rows, version.test_rows) == (1, "binary", 300, 100)


def test_pickle_refused_without_the_flag(store, files):
    with pytest.raises(RegistrationError, match="model.pkl is a pickle file; pickle can run arbitrary code.*--trust-pickle"):
        register_from(store, files, model_path=files / "model.pkl")
    assert_nothing_written(*store)


def test_pickle_disguised_as_skops_refused(store, files):
    disguised = files / "sneaky.skops"
    disguised.write_bytes((files / "model.pkl").read_bytes())
    with pytest.raises(RegistrationError, match="sneaky.skops is named as skops but its content is a pickle"):
        register_from(store, files, model_path=disguised)
    assert_nothing_written(*store)


def test_pickle_accepted_with_the_flag_and_stored_as_skops(store, files):
    version = register_from(store, files, model_path=files / "model.pkl", trust_pickle=True)
    assert version.artifact_path.endswith(".skops")
    with open(version.artifact_path, "rb") as fh:
        assert fh.read(4) == b"PK\x03\x04"


@pytest.mark.parametrize("which, content, message", [
    ("model_path", b"a,b\n1,2\n", "named as skops but its content is text (CSV)"),
    ("train_path", b"PAR1 not really", "train file: train.csv is named as csv but its content is a Parquet file"),
    ("test_path", b"\x00\x01\x02binary", "test file: test.parquet is named as parquet but its content is"),
    ("model_path", b"PK\x03\x04 truncated zip", "not a valid skops archive"),
])
def test_files_not_what_they_claim(store, files, which, content, message):
    name = {"model_path": "model.skops", "train_path": "train.csv", "test_path": "test.parquet"}[which]
    (files / name).write_bytes(content)
    with pytest.raises(RegistrationError) as info:
        register_from(store, files)
    assert message in str(info.value)
    assert_nothing_written(*store)


def test_file_too_large(store, files):
    with pytest.raises(RegistrationError, match=r"model file model.skops is \d+ kB; the limit is 1 kB"):
        register_from(store, files, max_bytes=1024)
    assert_nothing_written(*store)


def test_missing_file(store, files):
    with pytest.raises(RegistrationError, match="test file .* does not exist"):
        register_from(store, files, test_path=files / "nope.csv")
    assert_nothing_written(*store)


def test_csv_with_wrong_column_is_refused(store, files):
    frame = pd.read_csv(files / "train.csv").rename(columns={"x2": "X2"})
    frame.to_csv(files / "train.csv", index=False)
    with pytest.raises(RegistrationError, match="only in train: 'X2'; only in test: 'x2'"):
        register_from(store, files)
    assert_nothing_written(*store)


def test_concurrent_number_clash_cleans_up(store, binary_case, monkeypatch):
    model, train, test = binary_case
    register(store, model, train, test, group_columns=["region"])
    db, artifact_dir = store
    before = sorted(p.name for p in (artifact_dir / "churn").iterdir())
    # Simulate another registration that took number 2 between our read and our insert.
    real_max = registry.func.max
    monkeypatch.setattr(registry.func, "max", lambda col: real_max(col) - 1)
    with pytest.raises(RegistrationError, match="at the same moment"):
        register(store, model, train, test, group_columns=["region"])
    assert sorted(p.name for p in (artifact_dir / "churn").iterdir()) == before
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == 1


def test_an_unknown_category_far_down_the_test_set_is_caught(store, categorical_case):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    _, train, test = categorical_case
    strict = make_pipeline(ColumnTransformer([("cat", OneHotEncoder(handle_unknown="error"), ["plan"]),
                                              ("num", StandardScaler(), ["months", "spend"])]),
                           LogisticRegression()).fit(train[["plan", "months", "spend"]], train["churned"])
    big = pd.concat([test] * 10, ignore_index=True)  # 800 rows: more than the random probe
    big.loc[len(big) - 1, "plan"] = "enterprise"
    with pytest.raises(RegistrationError, match="fails to predict on the test data.*enterprise"):
        register(store, strict, train, big, target="churned")
    assert_nothing_written(*store)
