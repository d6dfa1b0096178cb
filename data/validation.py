"""Checks run before a model version is registered.

The CLI, the Python API and the admin upload page all go through
:func:`validate_registration`. Every check raises :class:`RegistrationError`
with a message that names the problem; nothing is written before all pass.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.ml.features import detect_task, infer_feature_meta
from data.artifacts import ArtifactError, estimator_to_bytes, format_of

#: Model names appear in URLs (?model=NAME) and directory names.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
#: Rows used to prove that the model predicts on the data (the analyses use all rows later).
PREDICT_PROBE_ROWS = 500
#: Levels per categorical feature added to the probe (each level's first row).
PROBE_LEVELS = 200
MAX_TAGS = 20


class RegistrationError(ValueError):
    """A registration refused before anything was written, with a message for the user."""


@dataclass(frozen=True)
class CheckedRegistration:
    """What validation established about a registration."""

    name: str
    target: str
    task: str
    features: list[str]
    group_columns: list[str]
    classes: list | None
    positive_class: Any
    feature_meta: list[dict]
    tags: list[str]
    description: str
    artifact: bytes = field(repr=False)


def _size(nbytes: int) -> str:
    return f"{nbytes / 1024 / 1024:.1f} MB" if nbytes >= 1024 * 1024 else f"{nbytes / 1024:.0f} kB"


def check_name(name: Any) -> str:
    """Return a valid model name or raise."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise RegistrationError(
            f"model name {name!r} is not valid: use 1 to 128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit")
    return name


def check_file(path: str | os.PathLike, *, label: str, kinds: tuple[str, ...],
               max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Check that a file exists, is within the size limit and is of one of ``kinds``; return its format."""
    path = Path(path)
    if not path.is_file():
        raise RegistrationError(f"{label} file {str(path)!r} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise RegistrationError(f"{label} file {path.name} is empty")
    if size > max_bytes:
        raise RegistrationError(f"{label} file {path.name} is {_size(size)}; the limit is {_size(max_bytes)}")
    try:
        fmt = format_of(path)
    except ArtifactError as exc:
        raise RegistrationError(f"{label} file: {exc}") from exc
    if fmt not in kinds:
        raise RegistrationError(f"{label} file {path.name} is {fmt}; expected {' or '.join(kinds)}")
    return fmt


def _check_frame(frame: Any, label: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise RegistrationError(f"the {label} data must be a pandas DataFrame, got {type(frame).__name__}")
    bad = [c for c in frame.columns if not isinstance(c, str)]
    if bad:
        raise RegistrationError(f"the {label} data has column names that are not text: {bad[:5]}")
    dupes = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if dupes:
        raise RegistrationError(f"the {label} data has duplicate columns: {', '.join(dupes)}")
    if len(frame) == 0:
        raise RegistrationError(f"the {label} data is empty (no rows)")
    return frame


def _listing(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def feature_columns(estimator: Any, frame: pd.DataFrame, *, target: str, group_columns: list[str]) -> list[str]:
    """Return the model's input columns, checked against the data's columns."""
    expected = getattr(estimator, "feature_names_in_", None)
    others = [c for c in frame.columns if c != target]
    if expected is not None:
        expected = [str(c) for c in expected]
        missing = [c for c in expected if c not in frame.columns]
        if missing:
            raise RegistrationError(f"the model expects columns that are missing from the data: {_listing(missing)}")
        if target in expected:
            raise RegistrationError(f"the target {target!r} is one of the model's input columns")
        extra = [c for c in others if c not in expected and c not in group_columns]
        if extra:
            raise RegistrationError(
                f"the data has columns the model does not expect: {_listing(extra)}. Drop them, or name them "
                "as group columns if they are kept for fairness views")
        return expected
    n_expected = getattr(estimator, "n_features_in_", None)
    candidates = [c for c in others if c not in group_columns]
    if n_expected is None:
        raise RegistrationError("the model does not say which inputs it expects (no n_features_in_): is it fitted?")
    if int(n_expected) != len(candidates):
        raise RegistrationError(
            f"the model expects {int(n_expected)} input columns but the data has {len(candidates)} besides the "
            f"target and group columns ({_listing(candidates)})")
    return candidates


def _estimator_classes(estimator: Any) -> list | None:
    classes = getattr(estimator, "classes_", None)
    return None if classes is None else [c.item() if isinstance(c, np.generic) else c for c in classes]


def _resolve_positive(positive_class: Any, classes: list, task: str) -> Any:
    if task != "binary":
        if positive_class is not None:
            raise RegistrationError(f"a positive class applies only to binary models; this one is {task}")
        return None
    if positive_class is None:
        return classes[1]
    for c in classes:
        if c == positive_class or str(c) == str(positive_class):
            return c
    raise RegistrationError(f"positive class {positive_class!r} is not one of the model's classes: "
                            f"{', '.join(str(c) for c in classes)}")


def _check_target(frame: pd.DataFrame, label: str, *, target: str, task: str, classes: list | None) -> None:
    y = frame[target]
    if y.isna().any():
        raise RegistrationError(f"the {label} target {target!r} has {int(y.isna().sum())} missing values")
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise RegistrationError(f"the {label} target {target!r} must be numeric for a regression model")
        if not np.isfinite(y.to_numpy(dtype=float)).all():
            raise RegistrationError(f"the {label} target {target!r} has infinite values")
        return
    known = set(classes)
    unknown = sorted({v.item() if isinstance(v, np.generic) else v for v in y.unique()} - known, key=str)
    if unknown:
        raise RegistrationError(
            f"the {label} target {target!r} has values the model does not know: {_listing([str(u) for u in unknown])}"
            f" (the model's classes: {', '.join(str(c) for c in classes)})")
    if label == "test" and y.nunique() < 2:
        raise RegistrationError(
            f"the test set has a single class ({y.iloc[0]!r}); metrics, ROC and threshold analyses need at "
            "least two classes in the test target")


def _probe(frame: pd.DataFrame, rows: int, features: list[str]) -> pd.DataFrame:
    """Return a random sample of ``rows`` rows plus the first row of every level of each non-numeric
    feature and the first row with a missing value in each feature: the rows most likely to break a
    pipeline (an encoder that meets an unknown category, an imputer-less model that meets a NaN)."""
    if len(frame) <= rows:
        return frame
    picked = set(frame.sample(n=rows, random_state=0).index)
    for column in features:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            firsts = values.drop_duplicates().index[:PROBE_LEVELS]
            picked.update(firsts)
        missing = values.index[values.isna().to_numpy()][:1]
        picked.update(missing)
    return frame.loc[sorted(picked)]


def check_predicts(estimator: Any, frame: pd.DataFrame, *, label: str, features: list[str], task: str,
                   classes: list | None) -> None:
    """Run the model on a sample of ``frame``; raise if it fails or returns something unusable."""
    X = _probe(frame, PREDICT_PROBE_ROWS, features)[features]
    try:
        pred = np.asarray(estimator.predict(X))
    except Exception as exc:
        raise RegistrationError(f"the model fails to predict on the {label} data: {type(exc).__name__}: {exc}") from exc
    if pred.shape[0] != len(X):
        raise RegistrationError(f"the model returned {pred.shape[0]} predictions for {len(X)} {label} rows")
    if task == "regression":
        if not np.isfinite(pred.astype(float)).all():
            raise RegistrationError(f"the model predicts non-finite values on the {label} data")
        return
    if not hasattr(estimator, "predict_proba"):
        raise RegistrationError("the classifier has no predict_proba; threshold and calibration views need "
                                "probabilities (wrap it in sklearn.calibration.CalibratedClassifierCV)")
    try:
        proba = np.asarray(estimator.predict_proba(X), dtype=float)
    except Exception as exc:
        raise RegistrationError(
            f"the model fails to predict probabilities on the {label} data: {type(exc).__name__}: {exc}") from exc
    if proba.shape != (len(X), len(classes)):
        raise RegistrationError(f"predict_proba returned shape {proba.shape}; expected {(len(X), len(classes))}")
    if not np.isfinite(proba).all():
        raise RegistrationError(f"the model's probabilities on the {label} data are not all finite")


def validate_registration(estimator: Any, train: Any, test: Any, *, name: str, target: str,
                          positive_class: Any = None, group_columns: tuple[str, ...] | list[str] = (),
                          task: str | None = None, description: str = "", tags: tuple[str, ...] | list[str] = (),
                          feature_overrides: dict | None = None) -> CheckedRegistration:
    """Run every check of a registration and return what they established.

    Raise :class:`RegistrationError` at the first failure: invalid name, not a
    DataFrame, target or group column missing, empty data, columns the model
    does not expect or misses, unknown or missing target values, a single-class
    test set, a bad positive class, a model that fails to predict, a model
    that cannot be stored with trusted types, unusable feature overrides.
    """
    name = check_name(name)
    train = _check_frame(train, "train")
    test = _check_frame(test, "test")
    if not isinstance(target, str) or not target:
        raise RegistrationError("the target column must be named")
    for label, frame in (("train", train), ("test", test)):
        if target not in frame.columns:
            raise RegistrationError(f"the target column {target!r} is missing from the {label} data")
    group_columns = list(group_columns or ())
    if len(set(group_columns)) != len(group_columns):
        raise RegistrationError("a group column is named twice")
    for column in group_columns:
        if column == target:
            raise RegistrationError(f"group column {column!r} is the target")
        for label, frame in (("train", train), ("test", test)):
            if column not in frame.columns:
                raise RegistrationError(f"group column {column!r} is missing from the {label} data")
    if list(train.columns) != list(test.columns):
        only_train = [c for c in train.columns if c not in test.columns]
        only_test = [c for c in test.columns if c not in train.columns]
        if only_train or only_test:
            parts = ([f"only in train: {_listing(only_train)}"] if only_train else []) + (
                [f"only in test: {_listing(only_test)}"] if only_test else [])
            raise RegistrationError("train and test have different columns: " + "; ".join(parts))
    if not isinstance(description, str) or len(description) > 2000:
        raise RegistrationError("the description must be text of at most 2000 characters")
    tags = [str(t).strip() for t in (tags or ()) if str(t).strip()]
    if len(tags) > MAX_TAGS or any(len(t) > 64 for t in tags):
        raise RegistrationError(f"at most {MAX_TAGS} tags of at most 64 characters each")

    try:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator)
    except Exception as exc:
        raise RegistrationError(f"the model is not a fitted scikit-learn estimator: {exc}") from exc
    features = feature_columns(estimator, train, target=target, group_columns=group_columns)
    try:
        task = detect_task(estimator, train[target], override=task)
    except ValueError as exc:
        raise RegistrationError(f"task: {exc}") from exc
    classes = None if task == "regression" else _estimator_classes(estimator)
    _check_target(train, "train", target=target, task=task, classes=classes)
    _check_target(test, "test", target=target, task=task, classes=classes)
    positive = _resolve_positive(positive_class, classes, task) if classes is not None else (
        _resolve_positive(positive_class, [], task))
    for label, frame in (("train", train), ("test", test)):
        check_predicts(estimator, frame, label=label, features=features, task=task, classes=classes)
    try:
        meta = infer_feature_meta(train[features], overrides=feature_overrides)
    except ValueError as exc:
        raise RegistrationError(f"feature metadata: {exc}") from exc
    try:
        artifact = estimator_to_bytes(estimator)
    except ArtifactError as exc:
        raise RegistrationError(str(exc)) from exc
    return CheckedRegistration(name=name, target=target, task=task, features=features, group_columns=group_columns,
                               classes=classes, positive_class=positive, feature_meta=meta, tags=tags,
                               description=description, artifact=artifact)
