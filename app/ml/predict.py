"""Single-row predictions, row validation and typical rows.

Everything here works on rows of the ORIGINAL feature columns, described by
the feature metadata of ``app.ml.features`` (a list of dicts with ``name``,
``kind`` and, for numeric features, ``min``/``max``/quantiles/``integer``, for
categorical features ``levels``).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

TASKS = ("binary", "multiclass", "regression")

#: Quantiles of the per-tree predictions used as a forest's interval.
FOREST_INTERVAL = (0.05, 0.95)
#: Two-sided 95 % normal quantile for models that give a predictive std.
NORMAL_95 = 1.959963984540054


# ----------------------------------------------------------------------------
# helpers shared by the other "why" modules
# ----------------------------------------------------------------------------

def check_task(task: Any) -> str:
    """Return ``task`` if it is a known task name, else raise ValueError."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}.")
    return task


def check_feature_meta(feature_meta: Any) -> list[dict]:
    """Return the feature metadata as a list of dicts or raise ValueError."""
    if not isinstance(feature_meta, Sequence) or isinstance(feature_meta, (str, bytes)) or not feature_meta:
        raise ValueError("feature_meta must be a non-empty list of feature dicts.")
    names = []
    for item in feature_meta:
        if not isinstance(item, Mapping) or "name" not in item or item.get("kind") not in ("numeric", "categorical"):
            raise ValueError(f"feature_meta entry {item!r} needs a 'name' and a kind 'numeric' or 'categorical'.")
        if item["kind"] == "categorical" and not list(item.get("levels") or []):
            raise ValueError(f"categorical feature {item['name']!r} has no levels.")
        if item["kind"] == "numeric" and not (_finite(item.get("min")) and _finite(item.get("max"))):
            raise ValueError(f"numeric feature {item['name']!r} needs finite 'min' and 'max'.")
        names.append(item["name"])
    if len(set(names)) != len(names):
        raise ValueError("feature_meta has duplicate feature names.")
    return list(feature_meta)


def column_order(estimator: Any, feature_meta: Sequence[Mapping]) -> list[str]:
    """Return the columns in the order the estimator was trained on."""
    names = [m["name"] for m in feature_meta]
    trained = getattr(estimator, "feature_names_in_", None)
    if trained is not None and set(map(str, trained)) == set(map(str, names)) and len(trained) == len(names):
        by_str = {str(n): n for n in names}
        return [by_str[str(c)] for c in trained]
    return names


def feature_scale(meta: Mapping) -> float:
    """Return a robust unit of change for a numeric feature: IQR, else range, else 1."""
    q25, q75 = meta.get("q25"), meta.get("q75")
    if _finite(q25) and _finite(q75) and float(q75) - float(q25) > 0:
        return float(q75) - float(q25)
    span = float(meta["max"]) - float(meta["min"])
    return span if span > 0 else 1.0


def rows_to_frame(rows: Sequence[Mapping], *, feature_meta: Sequence[Mapping],
                  columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Build a frame of validated rows: integers as int64, floats as float64.

    Categorical columns keep the type of their levels (text stays text).
    """
    meta_by_name = {m["name"]: m for m in feature_meta}
    columns = list(columns) if columns is not None else [m["name"] for m in feature_meta]
    data = {}
    for name in columns:
        meta = meta_by_name[name]
        values = [r[name] for r in rows]
        if meta["kind"] == "numeric":
            arr = np.asarray(values, dtype=float)
            if meta.get("integer") and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            data[name] = arr
        else:
            data[name] = pd.Series(values, dtype=_level_dtype(meta["levels"]))
    frame = pd.DataFrame(data, columns=columns)
    frame.index = pd.RangeIndex(len(rows))
    return frame


def frame_from_arrays(columns: Mapping[str, np.ndarray], *, feature_meta: Sequence[Mapping],
                      order: Sequence[str]) -> pd.DataFrame:
    """Build a frame from per-feature arrays (numeric values, or level values)."""
    meta_by_name = {m["name"]: m for m in feature_meta}
    data = {}
    for name in order:
        meta = meta_by_name[name]
        arr = columns[name]
        if meta["kind"] == "numeric":
            arr = np.asarray(arr, dtype=float)
            data[name] = arr.astype(np.int64) if meta.get("integer") else arr
        else:
            data[name] = pd.Series(arr, dtype=_level_dtype(meta["levels"]))
    return pd.DataFrame(data, columns=list(order))


def final_step(estimator: Any) -> Any:
    """Return the last step of a Pipeline, or the estimator itself."""
    steps = getattr(estimator, "steps", None)
    if steps:
        return steps[-1][1]
    return estimator


def preprocessor(estimator: Any) -> Any | None:
    """Return the Pipeline without its last step, or None for a bare estimator."""
    steps = getattr(estimator, "steps", None)
    if steps and len(steps) > 1:
        return estimator[:-1]
    return None


def to_native(value: Any) -> Any:
    """Return ``value`` as a plain Python scalar (for JSON and dict keys)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def classes_of(estimator: Any) -> list:
    """Return ``estimator.classes_`` as plain Python values."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise ValueError(f"{type(estimator).__name__} has no classes_; is it a fitted classifier?")
    return [to_native(c) for c in classes]


def proba_summary(classes: Sequence, proba: np.ndarray) -> dict:
    """Summarise one probability vector: predicted class, margin, entropy (nats)."""
    p = np.asarray(proba, dtype=float)
    order = np.argsort(-p, kind="stable")
    top = float(p[order[0]])
    runner = float(p[order[1]]) if len(p) > 1 else 0.0
    positive = p[p > 0]
    return {
        "classes": list(classes),
        "proba": [float(v) for v in p],
        "predicted": classes[int(order[0])],
        "runner_up": classes[int(order[1])] if len(p) > 1 else None,
        "margin": top - runner,
        "entropy": float(-(positive * np.log(positive)).sum()),
    }


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _level_dtype(levels: Sequence) -> Any:
    kinds = {type(to_native(v)) for v in levels}
    if kinds and kinds <= {int}:
        return "int64"
    if kinds and kinds <= {int, float}:
        return "float64"
    if kinds and kinds <= {bool}:
        return "bool"
    if kinds and kinds <= {str}:
        return None  # pandas' default text dtype, as when the training frame was read
    return object


# ----------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------

def validate_row(row: Any, *, feature_meta: Sequence[Mapping]) -> tuple[dict, list[str]]:
    """Coerce and check one row of feature values posted by a user.

    Every feature must be present, numeric features must be finite numbers in
    ``[min, max]`` (whole numbers for integer features), categorical features
    must be one of their levels, and no unknown keys are allowed. Bad input
    never raises: it yields a message naming the feature and the value.

    Parameters
    ----------
    row : dict
        Feature name to value.
    feature_meta : list of dict
        Feature metadata.

    Returns
    -------
    clean : dict
        The features that passed, coerced to plain Python values.
    messages : list of str
        One message per problem; empty when the row is valid.

    Examples
    --------
    >>> meta = [{"name": "age", "kind": "numeric", "min": 18, "max": 90, "integer": True}]
    >>> validate_row({"age": 42.0}, feature_meta=meta)
    ({'age': 42}, [])
    >>> validate_row({"age": "x"}, feature_meta=meta)[1]
    ["age: 'x' is not a number."]
    """
    feature_meta = check_feature_meta(feature_meta)
    if not isinstance(row, Mapping):
        return {}, [f"The row must be a mapping of feature names to values, not {type(row).__name__}."]
    clean: dict = {}
    messages: list[str] = []
    known = {str(m["name"]) for m in feature_meta}
    for key in row:
        if str(key) not in known:
            messages.append(f"Unknown feature {_show(key)}.")
    by_str = {str(k): v for k, v in row.items()}
    for meta in feature_meta:
        name = meta["name"]
        if name in row:
            value = row[name]
        elif str(name) in by_str:
            value = by_str[str(name)]
        else:
            messages.append(f"{name}: a value is missing.")
            continue
        if meta["kind"] == "numeric":
            ok, result = _check_number(value, meta)
        else:
            ok, result = _check_level(value, meta)
        if ok:
            clean[name] = result
        else:
            messages.append(f"{name}: {result}")
    return clean, messages


def _check_number(value: Any, meta: Mapping) -> tuple[bool, Any]:
    if value is None:
        return False, "a value is missing."
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        return False, f"{_show(value)} is not a number."
    number = float(value)
    if math.isnan(number):
        return False, "a value is missing (NaN)."
    if math.isinf(number):
        return False, f"{number} is not a finite number."
    lo, hi = float(meta["min"]), float(meta["max"])
    if number < lo or number > hi:
        return False, f"{number:g} is outside the range {lo:g} to {hi:g}."
    if meta.get("integer"):
        if number != round(number):
            return False, f"{number:g} is not a whole number."
        return True, int(round(number))
    return True, number


def _check_level(value: Any, meta: Mapping) -> tuple[bool, Any]:
    levels = [to_native(v) for v in meta["levels"]]
    if value is None:
        return False, "a value is missing."
    if not isinstance(value, (str, numbers.Number, np.generic)):
        return False, f"{_show(value)} is not one of the known categories."
    value = to_native(value)
    if isinstance(value, float) and not math.isfinite(value):
        return False, f"{value} is not one of the known categories."
    for level in levels:
        if type(level) is type(value) and level == value:
            return True, level
    # Dropdowns post text: accept "2" for the level 2, and 2 for the level "2".
    for level in levels:
        if str(level) == str(value) and not isinstance(value, bool):
            return True, level
    shown = ", ".join(str(v) for v in levels[:12])
    more = ", ..." if len(levels) > 12 else ""
    return False, f"{_show(value)} is not one of the known categories ({shown}{more})."


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ----------------------------------------------------------------------------
# typical row
# ----------------------------------------------------------------------------

def median_row(frame: pd.DataFrame, *, feature_meta: Sequence[Mapping]) -> dict:
    """Return a typical row: the median of numeric features, the mode of categorical ones.

    Integer features get a whole-number median; values stay within the
    metadata's ``[min, max]``. A column absent from ``frame`` (or all missing)
    falls back to the metadata's median or first level.

    Examples
    --------
    >>> import pandas as pd
    >>> meta = [{"name": "n", "kind": "numeric", "min": 0, "max": 9, "integer": True, "median": 2},
    ...         {"name": "c", "kind": "categorical", "levels": ["a", "b"]}]
    >>> median_row(pd.DataFrame({"n": [1, 2, 3, 4], "c": ["b", "b", "a", "b"]}), feature_meta=meta)
    {'n': 2, 'c': 'b'}
    """
    feature_meta = check_feature_meta(feature_meta)
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame, not {type(frame).__name__}.")
    out: dict = {}
    for meta in feature_meta:
        name = meta["name"]
        column = frame[name].dropna() if name in frame.columns else pd.Series([], dtype=object)
        if meta["kind"] == "numeric":
            numeric = pd.to_numeric(column, errors="coerce").dropna() if len(column) else column
            if len(numeric):
                value = float(np.median(numeric.to_numpy(dtype=float)))
            elif _finite(meta.get("median")):
                value = float(meta["median"])
            else:
                value = (float(meta["min"]) + float(meta["max"])) / 2
            value = min(max(value, float(meta["min"])), float(meta["max"]))
            if meta.get("integer"):
                # Round half down so the median of [1, 2, 3, 4] is the observed 2, then stay in range.
                value = int(math.ceil(value - 0.5))
                value = min(max(value, math.ceil(float(meta["min"]))), math.floor(float(meta["max"])))
            out[name] = value
        else:
            levels = [to_native(v) for v in meta["levels"]]
            counts = column.map(to_native).value_counts() if len(column) else pd.Series([], dtype=int)
            counts = counts[[v in levels for v in counts.index]] if len(counts) else counts
            if len(counts):
                top = counts.max()
                # Ties go to the level listed first in the metadata: deterministic.
                value = next(v for v in levels if v in counts.index and counts[v] == top)
            else:
                value = levels[0]
            out[name] = value
    return out


# ----------------------------------------------------------------------------
# prediction
# ----------------------------------------------------------------------------

def predict_row(estimator: Any, row: Mapping, *, feature_meta: Sequence[Mapping], task: str) -> dict:
    """Predict one row and say how sure the model is.

    Parameters
    ----------
    estimator : fitted estimator or Pipeline
        Takes a DataFrame of the original feature columns.
    row : dict
        One valid row (see :func:`validate_row`); it is validated again here.
    feature_meta : list of dict
        Feature metadata.
    task : {"binary", "multiclass", "regression"}

    Returns
    -------
    dict
        Classifiers: ``classes``, ``proba``, ``predicted``, ``runner_up``,
        ``margin`` (top minus runner-up probability) and ``entropy`` (nats);
        ``proba`` is None when the model has no ``predict_proba``.
        Regressors: ``value``, ``interval`` ((lo, hi) or None) and
        ``interval_method``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True, as_frame=True)
    >>> model = LogisticRegression(max_iter=500).fit(X, y)
    >>> meta = [{"name": c, "kind": "numeric", "min": 0.0, "max": 10.0} for c in X.columns]
    >>> predict_row(model, X.iloc[0].to_dict(), feature_meta=meta, task="multiclass")["predicted"]
    0
    """
    check_task(task)
    clean, messages = validate_row(row, feature_meta=feature_meta)
    if messages:
        raise ValueError("Invalid row: " + " ".join(messages))
    frame = rows_to_frame([clean], feature_meta=feature_meta, columns=column_order(estimator, feature_meta))
    if task in ("binary", "multiclass"):
        classes = classes_of(estimator)
        if hasattr(estimator, "predict_proba"):
            proba = np.asarray(estimator.predict_proba(frame), dtype=float)[0]
            return proba_summary(classes, proba)
        predicted = to_native(estimator.predict(frame)[0])
        return {"classes": classes, "proba": None, "predicted": predicted, "runner_up": None,
                "margin": None, "entropy": None}
    return _predict_regression(estimator, frame)


def _predict_regression(estimator: Any, frame: pd.DataFrame) -> dict:
    last = final_step(estimator)
    try:
        accepts_std = "return_std" in inspect.signature(last.predict).parameters
    except (TypeError, ValueError):
        accepts_std = False
    if accepts_std:
        value, std = estimator.predict(frame, return_std=True)
        value, std = float(np.ravel(value)[0]), float(np.ravel(std)[0])
        return {"value": value, "interval": (value - NORMAL_95 * std, value + NORMAL_95 * std),
                "interval_method": "95% interval from the model's predictive standard deviation"}
    value = float(np.ravel(estimator.predict(frame))[0])
    trees = getattr(last, "estimators_", None)
    if _is_forest_regressor(last) and trees:
        pre = preprocessor(estimator)
        transformed = pre.transform(frame) if pre is not None else frame
        if isinstance(transformed, pd.DataFrame):
            transformed = transformed.to_numpy()
        per_tree = np.array([float(np.ravel(t.predict(transformed))[0]) for t in trees])
        lo, hi = np.quantile(per_tree, FOREST_INTERVAL)
        return {"value": value, "interval": (float(lo), float(hi)),
                "interval_method": "5th to 95th percentile of the individual trees' predictions"}
    return {"value": value, "interval": None, "interval_method": None}


def _is_forest_regressor(model: Any) -> bool:
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
    return isinstance(model, (RandomForestRegressor, ExtraTreesRegressor))
