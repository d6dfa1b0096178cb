"""Registering, versioning, loading, listing, archiving and deleting models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from sqlalchemy import func, select

from data import artifacts, registry
from data.analyses import analyses_for
from data.analysis_cache import AnalysisResult
from data.registry import (ModelVersion, archive_model, delete_model, get_version, list_models, load_estimator,
                           load_frames, register_model, save_threshold)

FEATURES = [f"x{i}" for i in range(5)]


def reg(store, case, name="churn", **kwargs):
    db, artifact_dir = store
    model, train, test = case
    options = dict(name=name, target="label", created_by="alice", db=db, artifact_dir=artifact_dir,
                   group_columns=["region"])
    options.update(kwargs)
    return register_model(model, train, test, **options)


def test_register_stores_files_rows_and_queues_analyses(store, binary_case):
    db, artifact_dir = store
    model, train, test = binary_case
    version = reg(store, binary_case, description="first", tags=["demo", "lr"])
    assert (version.name, version.number, version.task) == ("churn", 1, "binary")
    assert version.classes == ["no", "yes"] and version.positive_class == "yes"
    assert version.features == FEATURES and version.group_columns == ["region"]
    assert (version.train_rows, version.test_rows) == (300, 100)
    assert version.tags == ["demo", "lr"] and version.description == "first" and version.created_by == "alice"
    assert artifacts.sha256_file(version.artifact_path) == version.artifact_sha256
    assert version.artifact_bytes == len(open(version.artifact_path, "rb").read())
    assert [m["name"] for m in version.feature_meta] == FEATURES
    with db.session() as s:
        kinds = set(s.scalars(select(AnalysisResult.kind).where(AnalysisResult.version_id == version.id)))
        statuses = set(s.scalars(select(AnalysisResult.status)))
    assert kinds == {k.name for k in analyses_for("binary")}
    assert statuses == {"queued"}
    # The stored estimator predicts exactly like the original; the frames come back equal.
    loaded = load_estimator(version)
    np.testing.assert_array_equal(loaded.predict_proba(test[FEATURES]), model.predict_proba(test[FEATURES]))
    train_back, test_back = load_frames(version)
    assert_frame_equal(test_back, test[FEATURES + ["region", "label"]].reset_index(drop=True), check_dtype=False)
    assert load_frames(version)[0] is train_back  # cached per process


def test_a_second_registration_is_version_two(store, binary_case):
    db, _ = store
    first = reg(store, binary_case)
    second = reg(store, binary_case, positive_class="no")
    assert (first.number, second.number) == (1, 2)
    assert second.positive_class == "no"
    assert first.storage_dir != second.storage_dir
    with db.session() as s:
        assert get_version(s, "churn").number == 2
        assert get_version(s, "churn", 1).id == first.id
        assert get_version(s, "churn", 7) is None
        assert get_version(s, "nope") is None
        assert get_version(s, {"forged": 1}) is None


def test_each_task_registers(store, multiclass_case, regression_case, categorical_case):
    db, artifact_dir = store
    model, train, test = multiclass_case
    iris = register_model(model, train, test, name="iris", target="target", created_by="a", db=db,
                          artifact_dir=artifact_dir)
    assert iris.task == "multiclass" and iris.classes == [0, 1, 2] and iris.positive_class is None
    model, train, test = regression_case
    reg_v = register_model(model, train, test, name="reg", target="y", created_by="a", db=db,
                           artifact_dir=artifact_dir)
    assert reg_v.task == "regression" and reg_v.classes is None
    model, train, test = categorical_case
    cat = register_model(model, train, test, name="churn-cat", target="churned", created_by="a", db=db,
                         artifact_dir=artifact_dir)
    plan = next(m for m in cat.feature_meta if m["name"] == "plan")
    assert plan["kind"] == "categorical" and set(plan["levels"]) == {"basic", "plus", "pro"}
    assert load_estimator(cat).predict(test[["plan", "months", "spend"]]).shape == (80,)


def test_list_models_respects_visibility_and_archive(store, binary_case):
    db, _ = store
    reg(store, binary_case, name="a")
    reg(store, binary_case, name="b")
    reg(store, binary_case, name="c")
    with db.session() as s:
        assert [m.name for m in list_models(s)] == ["a", "b", "c"]
        assert [m.name for m in list_models(s, visible={"b", "zzz"})] == ["b"]
        assert list_models(s, visible=set()) == []
        archive_model(s, "b")
    with db.session() as s:
        assert [m.name for m in list_models(s)] == ["a", "c"]
        assert [m.name for m in list_models(s, include_archived=True)] == ["a", "b", "c"]
        archive_model(s, "b", archived=False)
        with pytest.raises(KeyError):
            archive_model(s, "zzz")
    with db.session() as s:
        assert [m.name for m in list_models(s)] == ["a", "b", "c"]


def test_registering_an_archived_model_shows_it_again(store, binary_case):
    db, _ = store
    reg(store, binary_case)
    with db.session() as s:
        archive_model(s, "churn")
    reg(store, binary_case)
    with db.session() as s:
        assert [m.name for m in list_models(s)] == ["churn"]


def test_delete_removes_rows_analyses_and_files(store, binary_case):
    db, artifact_dir = store
    v1 = reg(store, binary_case)
    v2 = reg(store, binary_case)
    assert delete_model(db, "churn", version=1) == ["churn v1"]
    assert not Path(v1.storage_dir).exists() and Path(v2.storage_dir).exists()
    with db.session() as s:
        assert [v.number for v in get_version(s, "churn").model.versions] == [2]
        assert s.scalar(select(func.count()).where(AnalysisResult.version_id == v1.id)) == 0
    assert delete_model(db, "churn") == ["churn v2"]
    assert not (artifact_dir / "churn").exists()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == 0
        assert s.scalar(select(func.count()).select_from(AnalysisResult)) == 0
    with pytest.raises(KeyError):
        delete_model(db, "churn")


def test_deleting_the_last_version_deletes_the_model(store, binary_case):
    db, _ = store
    reg(store, binary_case)
    delete_model(db, "churn", version=1)
    with db.session() as s:
        assert list_models(s, include_archived=True) == []
    reg(store, binary_case)
    with pytest.raises(KeyError, match="no version 3"):
        delete_model(db, "churn", version=3)


def test_tampered_artifact_is_refused(store, binary_case):
    version = reg(store, binary_case)
    registry.clear_caches()
    with open(version.artifact_path, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(artifacts.ArtifactError, match="checksum mismatch"):
        load_estimator(version)


def test_save_threshold(store, binary_case, multiclass_case):
    db, artifact_dir = store
    version = reg(store, binary_case)
    with db.session() as s:
        saved = save_threshold(s, version.id, value=0.37, reason="recall matters", set_by="bob")
    assert saved["value"] == 0.37 and saved["set_by"] == "bob" and saved["reason"] == "recall matters"
    with db.session() as s:
        assert get_version(s, "churn").threshold["value"] == 0.37
        for value in (-0.1, 1.5, float("nan"), "0.5", True, None):
            with pytest.raises(ValueError, match="between 0 and 1"):
                save_threshold(s, version.id, value=value, reason="x", set_by="bob")
        with pytest.raises(ValueError, match="reason"):
            save_threshold(s, version.id, value=0.5, reason="  ", set_by="bob")
        with pytest.raises(ValueError, match="no model version"):
            save_threshold(s, 999, value=0.5, reason="x", set_by="bob")
    model, train, test = multiclass_case
    iris = register_model(model, train, test, name="iris", target="target", created_by="a", db=db,
                          artifact_dir=artifact_dir)
    with db.session() as s, pytest.raises(ValueError, match="binary models only"):
        save_threshold(s, iris.id, value=0.5, reason="x", set_by="bob")


def test_defaults_from_the_environment(tmp_path, monkeypatch, binary_case):
    from data.db import Base, Database
    from data.tables import import_all_tables

    url = f"sqlite:///{tmp_path / 'nb.db'}"
    import_all_tables()
    Base.metadata.create_all(Database(url).engine)
    monkeypatch.setenv("GLASSBOX_DATABASE_URL", url)
    monkeypatch.setenv("GLASSBOX_ARTIFACT_DIR", str(tmp_path / "nb-artifacts"))
    model, train, test = binary_case
    version = register_model(model, train, test, name="notebook", target="label", created_by="alice",
                             group_columns=["region"])
    assert version.artifact_path.startswith(str((tmp_path / "nb-artifacts").resolve()))
    with Database(url).session() as s:
        assert get_version(s, "notebook").id == version.id
    assert isinstance(load_frames(version)[0], pd.DataFrame)
