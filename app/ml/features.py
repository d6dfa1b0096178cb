"""Feature metadata and task detection for a registered model.

Feature metadata drives the what-if controls, counterfactual search and drift
bins: for each input column its kind (numeric or categorical), its range and
quantiles, whether it holds whole numbers, whether a logarithmic scale suits
it, and the levels of a categorical column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import is_classifier, is_regressor

TASKS = ("binary", "multiclass", "regression")
KINDS = ("numeric", "categorical")
META_KEYS = ("name", "kind", "min", "max", "q01", "q25", "median", "q75", "q99", "integer", "log_scale", "levels")
#: Most frequent levels kept for a categorical column (an ID-like column would otherwise bloat the record).
MAX_LEVELS = 200
#: A positive column whose 1st..99th percentile span reaches this ratio gets a log-scale hint.
LOG_SCALE_RATIO = 100.0


def _plain(value: Any) -> Any:
    """Return a JSON-friendly Python scalar for a numpy/pandas scalar."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(value)
    return value


def _numeric_meta(name: str, values: pd.Series) -> dict:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    numbers = numbers[np.isfinite(numbers)]
    if numbers.size == 0:
        raise ValueError(f"numeric feature {name!r} has no finite value")
    q01, q25, median, q75, q99 = np.quantile(numbers, [0.01, 0.25, 0.5, 0.75, 0.99])
    lo, hi = float(numbers.min()), float(numbers.max())
    integer = bool(np.all(np.equal(np.floor(numbers), numbers)))
    log_scale = bool(q01 > 0 and q99 / q01 >= LOG_SCALE_RATIO)
    return {
        "name": name, "kind": "numeric", "min": lo, "max": hi,
        "q01": float(q01), "q25": float(q25), "median": float(median), "q75": float(q75), "q99": float(q99),
        "integer": integer, "log_scale": log_scale, "levels": None,
    }


def _categorical_meta(name: str, values: pd.Series) -> dict:
    counts = values.dropna().value_counts(sort=False)
    if counts.empty:
        raise ValueError(f"categorical feature {name!r} has no value")
    # Most frequent first; ties broken by the level's text so the order is stable.
    ranked = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    levels = [_plain(level) for level, _ in ranked[:MAX_LEVELS]]
    return {
        "name": name, "kind": "categorical", "min": None, "max": None,
        "q01": None, "q25": None, "median": None, "q75": None, "q99": None,
        "integer": False, "log_scale": False, "levels": levels,
    }


def _check_override(name: str, override: Any) -> dict:
    if not isinstance(override, Mapping):
        raise ValueError(f"override for feature {name!r} must be a mapping, got {type(override).__name__}")
    unknown = sorted(set(override) - set(META_KEYS) - {"name"})
    if unknown:
        raise ValueError(f"override for feature {name!r} has unknown keys {unknown}; allowed: {list(META_KEYS[1:])}")
    if "kind" in override and override["kind"] not in KINDS:
        raise ValueError(f"override for feature {name!r}: kind must be one of {KINDS}, got {override['kind']!r}")
    for key in ("min", "max", "q01", "q25", "median", "q75", "q99"):
        value = override.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise ValueError(f"override for feature {name!r}: {key} must be a finite number, got {value!r}")
    if override.get("levels") is not None and not isinstance(override["levels"], (list, tuple)):
        raise ValueError(f"override for feature {name!r}: levels must be a list")
    return dict(override)


def infer_feature_meta(frame: pd.DataFrame, *, categorical: Iterable[str] | None = None,
                       overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict]:
    """Infer one metadata record per column of ``frame``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The model's input columns (no target, no group columns), usually the train frame.
    categorical : iterable of str, optional
        Columns to treat as categorical even if numeric (e.g. integer codes).
        Non-numeric and boolean columns are always categorical.
    overrides : mapping of str to mapping, optional
        Per column, keys of the record to replace, e.g. ``{"age": {"integer": True}}``.
        Changing ``kind`` recomputes the record for the new kind before other keys apply.

    Returns
    -------
    list of dict
        In column order, each ``{"name", "kind", "min", "max", "q01", "q25", "median",
        "q75", "q99", "integer", "log_scale", "levels"}``; numeric records have
        ``levels=None``, categorical ones have the statistics set to None and
        ``levels`` ordered from most to least frequent (at most 200).

    Examples
    --------
    >>> import pandas as pd
    >>> meta = infer_feature_meta(pd.DataFrame({"age": [20, 30, 40], "city": ["a", "b", "a"]}))
    >>> meta[0]["kind"], meta[0]["median"], meta[0]["integer"]
    ('numeric', 30.0, True)
    >>> meta[1]["kind"], meta[1]["levels"]
    ('categorical', ['a', 'b'])
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    if frame.shape[1] == 0:
        raise ValueError("frame has no column")
    if len(frame) == 0:
        raise ValueError("frame has no row")
    names = [str(c) for c in frame.columns]
    forced = set(categorical or ())
    missing = sorted(forced - set(names))
    if missing:
        raise ValueError(f"categorical names columns that are not in the frame: {missing}")
    overrides = dict(overrides or {})
    missing = sorted(set(overrides) - set(names))
    if missing:
        raise ValueError(f"overrides name columns that are not in the frame: {missing}")
    checked = {name: _check_override(name, ov) for name, ov in overrides.items()}

    records = []
    for column, name in zip(frame.columns, names, strict=True):
        values = frame[column]
        kind = "categorical" if (name in forced or pd.api.types.is_bool_dtype(values)
                                 or not pd.api.types.is_numeric_dtype(values)) else "numeric"
        kind = checked.get(name, {}).get("kind", kind)
        record = _numeric_meta(name, values) if kind == "numeric" else _categorical_meta(name, values)
        record.update({k: v for k, v in checked.get(name, {}).items() if k != "name"})
        if record["kind"] == "numeric" and record["min"] > record["max"]:
            raise ValueError(f"feature {name!r}: min {record['min']} is above max {record['max']}")
        records.append(record)
    return records


def _estimator_classes(estimator: Any) -> list | None:
    classes = getattr(estimator, "classes_", None)
    if classes is None and hasattr(estimator, "steps"):
        classes = getattr(estimator.steps[-1][1], "classes_", None)
    return None if classes is None else list(classes)


def _safely(check, estimator: Any) -> bool:
    # is_classifier/is_regressor raise on objects without scikit-learn tags.
    try:
        return bool(check(estimator))
    except (AttributeError, TypeError):
        return False


def detect_task(estimator: Any, y: Any, *, override: str | None = None) -> str:
    """Return the task of a fitted estimator: ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Parameters
    ----------
    estimator : fitted scikit-learn estimator or Pipeline
        A classifier decides by the number of its ``classes_``; a regressor is "regression".
        An estimator that is neither falls back on the target.
    y : array-like
        The target; used when the estimator does not say (a float target with
        non-integer values is regression; otherwise two values are binary, more multiclass).
    override : str, optional
        Force a task. It must agree with the estimator: a regressor cannot be
        "binary", a two-class classifier cannot be "multiclass".

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression, LinearRegression
    >>> detect_task(LogisticRegression().fit([[0], [1], [2]], [0, 1, 1]), [0, 1, 1])
    'binary'
    >>> detect_task(LinearRegression().fit([[0], [1]], [0.5, 1.5]), [0.5, 1.5])
    'regression'
    """
    if override is not None and override not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {override!r}")
    classes = _estimator_classes(estimator)
    if _safely(is_classifier, estimator) or classes is not None:
        if classes is None:
            raise ValueError("the classifier has no classes_: is it fitted?")
        detected = "binary" if len(classes) == 2 else "multiclass"
        if len(classes) < 2:
            raise ValueError(f"the classifier knows only {len(classes)} class; at least 2 are needed")
        if override is not None and override != detected:
            raise ValueError(f"task {override!r} does not match the classifier, which has "
                             f"{len(classes)} classes ({detected})")
        return detected
    if _safely(is_regressor, estimator):
        if override is not None and override != "regression":
            raise ValueError(f"task {override!r} does not match the estimator, which is a regressor")
        return "regression"
    if override is not None:
        return override
    values = pd.Series(np.asarray(y).ravel()).dropna()
    if values.empty:
        raise ValueError("cannot detect the task: the target is empty")
    if pd.api.types.is_float_dtype(values) and not np.all(np.floor(values) == values):
        return "regression"
    return "binary" if values.nunique() == 2 else "multiclass"
