"""Read helpers for the model views (performance, threshold explorer, confusion matrix).

Everything here reads what the registry and the analysis cache hold; nothing
is written. Expensive derived values are kept per process, keyed by what
identifies an immutable model version (its id and its storage folder, which
is unique per registration):

- the :class:`~app.ml.threshold.ThresholdSweep` rebuilt from a cached sweep
  payload (decoding 1M distinct scores takes tens of milliseconds, so it is
  done once per process);
- the row-level predictions of a split (the model is run once per process
  and split; the drill-down into confusion-matrix cells needs them).

Row-level reads (:func:`cell_rows`, :func:`row_details`, :func:`cell_csv`,
:func:`confident_mistakes`) take the sort and filter models of an AG Grid
infinite-row request, validated here (:class:`ViewError` names what is
wrong): only known columns, known filter types and bounded values pass.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from app.ml.fairness import equalize_tpr_thresholds, group_rates
from app.ml.metrics import METRIC_INFO
from app.ml.threshold import ThresholdSweep
from data.analysis_cache import get_result, status_for
from data.db import Database
from data.registry import ModelVersion, load_estimator, load_frames

#: Threshold grid step shipped to the browser (the slider's step).
GRID_STEPS = 100
#: Largest page of rows one grid request may ask for.
MAX_PAGE_ROWS = 500
#: Most rows one CSV export writes (the page says when it was cut; formatting is ~20 µs a row).
MAX_EXPORT_ROWS = 20_000
#: A train-minus-test gap above this (on 0-1 scores) suggests overfitting.
OVERFIT_GAP = 0.05
#: A test error this many times the train error suggests overfitting.
OVERFIT_RATIO = 1.25
MAX_FILTER_TEXT = 200
MAX_SORT_KEYS = 3

#: Analyses each view reads, per task.
PERFORMANCE_KINDS = {
    "binary": ("metrics_train", "metrics_test", "curves_train", "curves_test", "calibration",
               "score_distributions"),
    "multiclass": ("metrics_train", "metrics_test", "curves_train", "curves_test", "calibration",
                   "score_distributions"),
    "regression": ("metrics_train", "metrics_test"),
}
THRESHOLD_KINDS = ("sweep_train", "sweep_test", "curves_train", "curves_test")
CONFUSION_KINDS = {"binary": ("sweep_train", "sweep_test"), "multiclass": ("metrics_train", "metrics_test")}

#: Metrics in the train-vs-test table, per task, in display order.
TABLE_METRICS = {
    "binary": ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss",
               "brier", "mcc"),
    "multiclass": ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted",
                   "roc_auc", "pr_auc", "log_loss", "mcc"),
    "regression": ("rmse", "mae", "r2", "median_ae", "max_error", "mean_residual"),
}
#: Lower-is-better metrics compared by ratio; the rest of the higher-is-better ones by difference.
_ERRORS = frozenset({"log_loss", "brier", "rmse", "mae", "median_ae", "max_error"})

#: Extra grid columns after the features: key -> header.
EXTRA_COLUMNS = {"row": "Row", "true": "True", "pred": "Predicted", "confidence": "Confidence",
                 "score": "Score (positive class)"}

_NUMBER_FILTERS = {"equals", "notEqual", "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual",
                   "inRange", "blank", "notBlank"}
_TEXT_FILTERS = {"equals", "notEqual", "contains", "notContains", "startsWith", "endsWith", "blank", "notBlank"}


class ViewError(ValueError):
    """A request a view cannot answer, with a message for the user."""


# -- analysis status ---------------------------------------------------------------

def readiness(session: Session, version_id: int, kinds: tuple[str, ...] | list[str]) -> dict:
    """Return how far the analyses ``kinds`` of a version are.

    ``{"state": "ready"|"computing"|"failed"|"missing", "progress": 0..1,
    "ready": [...], "waiting": [...], "failed": [{"kind", "error"}], "missing": [...],
    "titles": {kind: title}}``.
    ``missing`` are kinds never queued for this version; ``failed`` wins over
    ``computing`` only when nothing is still running.
    """
    status = status_for(session, version_id)
    by_kind: dict[str, dict] = {}
    for item in status["items"]:
        if not item.get("params"):
            by_kind[item["kind"]] = item
    ready, waiting, failed, missing = [], [], [], []
    for kind in kinds:
        item = by_kind.get(kind)
        if item is None:
            missing.append(kind)
        elif item["status"] == "ready":
            ready.append(kind)
        elif item["status"] == "failed":
            failed.append({"kind": kind, "error": item.get("error") or "unknown error"})
        else:
            waiting.append(kind)
    if waiting:
        state = "computing"
    elif failed:
        state = "failed"
    elif missing:
        state = "missing"
    else:
        state = "ready"
    total = len(kinds) or 1
    from data.analyses import ANALYSES

    titles = {k: ANALYSES[k].title if k in ANALYSES else k for k in kinds}
    return {"state": state, "progress": (len(ready) + len(failed)) / total, "ready": ready, "waiting": waiting,
            "failed": failed, "missing": missing, "titles": titles}


def results(session: Session, version_id: int, kinds) -> dict[str, Any]:
    """Return ``{kind: payload or None}`` for the analyses ``kinds`` (read-only payloads)."""
    return {kind: get_result(session, version_id, kind) for kind in kinds}


# -- threshold sweeps ----------------------------------------------------------------

class _NotReady(Exception):
    """The sweep is not in the cache yet (never cached by the LRU below)."""


@functools.lru_cache(maxsize=8)
def _sweep(db: Database, version_id: int, storage_dir: str, split: str) -> ThresholdSweep:
    with db.session() as session:
        payload = get_result(session, version_id, f"sweep_{split}")
    if payload is None:
        raise _NotReady(split)
    return ThresholdSweep.from_dict(payload)


def load_sweep(db: Database, version: ModelVersion, split: str) -> ThresholdSweep | None:
    """Return the exact threshold sweep of a binary version's split, or None until it is computed."""
    if split not in ("train", "test"):
        raise ViewError(f"unknown data split {split!r}")
    try:
        return _sweep(db, version.id, version.storage_dir, split)
    except _NotReady:
        return None


def threshold_grid(sweep: ThresholdSweep) -> dict:
    """Return what the browser needs to answer every 0.01 threshold: counts at ``k / 100``.

    The browser looks up threshold ``t`` at index ``Math.round(t * 100)``;
    the thresholds themselves are left out (the browser computes ``k / 100``,
    the same double as here).
    """
    grid = sweep.grid(step=1 / GRID_STEPS)
    return {key: grid[key] for key in ("tp", "fp", "tn", "fn", "n", "n_pos", "n_neg")}


def labels_of(version: ModelVersion) -> tuple[Any, Any]:
    """Return (negative, positive) labels of a binary version."""
    classes = list(version.classes or [])
    positive = version.positive_class
    negative = next((c for c in classes if c != positive), None)
    return negative, positive


def saved_threshold(version: ModelVersion) -> float:
    """Return the version's saved threshold, or 0.5 when none is saved."""
    saved = version.threshold or {}
    value = saved.get("value") if isinstance(saved, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
        return float(value)
    return 0.5


# -- comparing train and test ---------------------------------------------------------

def compare_metrics(train: dict | None, test: dict | None, task: str) -> list[dict]:
    """Return the rows of the train-vs-test metrics table with overfitting gaps flagged.

    A higher-is-better score is flagged when train beats test by more than
    :data:`OVERFIT_GAP`; an error (log loss, Brier, RMSE, ...) when the test
    error exceeds the train error by more than :data:`OVERFIT_RATIO` times.
    Each row: ``key``, ``label``, ``meaning``, ``higher_is_better``,
    ``train``, ``test``, ``gap`` (train - test), ``flag`` (bool), ``note``.
    """
    if task not in TABLE_METRICS:
        raise ViewError(f"unknown task {task!r}")
    train = train or {}
    test = test or {}
    rows = []
    for key in TABLE_METRICS[task]:
        a, b = _finite(train.get(key)), _finite(test.get(key))
        if a is None and b is None:
            continue
        info = METRIC_INFO.get(key, {"label": key, "higher_is_better": None, "meaning": ""})
        gap = a - b if a is not None and b is not None else None
        flag, note = False, ""
        if gap is not None:
            if key in _ERRORS:
                if b > a * OVERFIT_RATIO and b - a > 1e-12:
                    flag = True
                    note = (f"The test error is {b / a:.1f} times the train error: the model may have learned "
                            "the training rows by heart (overfitting)." if a > 0 else
                            "The model is perfect on the training rows but not on the test rows: it may have "
                            "learned them by heart (overfitting).")
            elif info.get("higher_is_better") and gap > OVERFIT_GAP:
                flag = True
                note = (f"Train is {gap:.2f} better than test: the model may have learned the training rows by "
                        "heart (overfitting) and do worse on new data.")
        rows.append({"key": key, "label": info["label"], "meaning": info["meaning"],
                     "higher_is_better": info.get("higher_is_better"), "train": a, "test": b, "gap": gap,
                     "flag": flag, "note": note})
    return rows


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# -- row-level predictions --------------------------------------------------------------

@dataclass(frozen=True)
class _Files:
    """The parts of a version the registry's loaders read (hashable, detached from any session)."""

    id: int
    artifact_path: str
    artifact_sha256: str
    train_path: str
    test_path: str


@dataclass(frozen=True, eq=False)
class SplitRows:
    """One split of a version: its frame and the model's predictions on every row (read-only arrays)."""

    frame: pd.DataFrame
    y_true: np.ndarray
    #: Binary: positive-class score; multiclass: None.
    score: np.ndarray | None
    #: Multiclass: predicted label per row; binary: None (it depends on the threshold).
    pred: np.ndarray | None
    #: Multiclass: probability of the predicted class; binary: None.
    confidence: np.ndarray | None
    classes: tuple


@functools.lru_cache(maxsize=4)
def _split_rows(files: _Files, task: str, target: str, features: tuple, classes: tuple, positive: Any,
                split: str) -> SplitRows:
    estimator = load_estimator(files)
    train, test = load_frames(files)
    frame = train if split == "train" else test
    X = frame[list(features)]
    y_true = frame[target].to_numpy()
    proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    proba.setflags(write=False)
    if task == "binary":
        score = np.ascontiguousarray(proba[:, list(classes).index(positive)])
        score.setflags(write=False)
        return SplitRows(frame, y_true, score, None, None, classes)
    labels = np.asarray(classes, dtype=object)
    top = proba.argmax(axis=1)
    pred = labels[top]
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes):
        pred = pred.astype(np.int64)
    confidence = proba[np.arange(len(proba)), top]
    for arr in (pred, confidence):
        arr.setflags(write=False)
    return SplitRows(frame, y_true, None, pred, confidence, classes)


def split_rows(version: ModelVersion, split: str) -> SplitRows:
    """Return a classifier version's split with the model's predictions (computed once per process)."""
    if split not in ("train", "test"):
        raise ViewError(f"unknown data split {split!r}")
    if version.task not in ("binary", "multiclass"):
        raise ViewError(f"{version.label} is a {version.task} model; rows by cell need a classifier")
    files = _Files(version.id, version.artifact_path, version.artifact_sha256, version.train_path,
                   version.test_path)
    return _split_rows(files, version.task, version.target, tuple(version.features),
                       tuple(version.classes or ()), version.positive_class, split)


def predicted(rows: SplitRows, version: ModelVersion, threshold: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Return (predicted label, probability of the predicted class) per row.

    Binary: positive iff ``score >= threshold`` (the sweep's rule).
    """
    if version.task == "binary":
        negative, positive = labels_of(version)
        flagged = rows.score >= threshold
        pred = np.where(flagged, positive, negative)
        confidence = np.where(flagged, rows.score, 1.0 - rows.score)
        return pred, confidence
    return rows.pred, rows.confidence


# -- the confusion matrix -----------------------------------------------------------------

def confusion(db: Database, version: ModelVersion, split: str, *, threshold: float | None = None) -> dict:
    """Return ``{"labels", "matrix", "n", "source"}`` (rows: true class, columns: predicted).

    Binary models read the exact sweep from the cache (no prediction run);
    multiclass models count the predictions of :func:`split_rows`. Returns
    ``{"labels": [...], "matrix": None}`` while the sweep is being computed.
    """
    if version.task == "binary":
        negative, positive = labels_of(version)
        sweep = load_sweep(db, version, split)
        if sweep is None:
            return {"labels": [negative, positive], "matrix": None, "n": None, "source": "sweep"}
        c = sweep.counts_at(0.5 if threshold is None else threshold)
        return {"labels": [negative, positive], "matrix": [[c["tn"], c["fp"]], [c["fn"], c["tp"]]],
                "n": sweep.n, "source": "sweep"}
    if version.task != "multiclass":
        raise ViewError(f"{version.label} is a {version.task} model; a confusion matrix needs a classifier")
    rows = split_rows(version, split)
    classes = list(rows.classes)
    k = len(classes)
    true_idx = pd.Categorical(rows.y_true, categories=classes).codes.astype(np.int64)
    pred_idx = pd.Categorical(rows.pred, categories=classes).codes.astype(np.int64)
    keep = (true_idx >= 0) & (pred_idx >= 0)
    matrix = np.bincount(true_idx[keep] * k + pred_idx[keep], minlength=k * k).reshape(k, k)
    return {"labels": classes, "matrix": matrix.tolist(), "n": int(keep.sum()), "source": "predictions"}


def class_label(version: ModelVersion, value: Any) -> Any:
    """Return the version's class equal to ``value`` (matched by its text), or raise ViewError."""
    if isinstance(value, (dict, list)) or value is None:
        raise ViewError("that cell is not part of this confusion matrix")
    for c in version.classes or []:
        if c == value or str(c) == str(value):
            return c
    raise ViewError(f"{str(value)[:40]!r} is not a class of {version.label}")


# -- columns, sorting and filtering of row grids ------------------------------------------

def grid_columns(version: ModelVersion) -> list[dict]:
    """Return ``[{"id", "header", "source", "kind"}]`` of the row grid (safe ids ``c0, c1, ...``).

    Column ids never contain the feature names: names may hold dots, which
    the grid would read as nested fields.
    """
    kinds = {m["name"]: m.get("kind", "numeric") for m in version.feature_meta or []}
    cols = [{"id": "row", "header": EXTRA_COLUMNS["row"], "source": "row", "kind": "numeric"}]
    names = list(version.features) + [g for g in version.group_columns or [] if g not in version.features]
    for i, name in enumerate(names):
        kind = kinds.get(name, "categorical" if name in (version.group_columns or []) else "numeric")
        cols.append({"id": f"c{i}", "header": name, "source": name, "kind": kind})
    label_kind = "numeric" if all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                  for c in version.classes or []) else "categorical"
    cols.append({"id": "true", "header": EXTRA_COLUMNS["true"], "source": "true", "kind": label_kind})
    cols.append({"id": "pred", "header": EXTRA_COLUMNS["pred"], "source": "pred", "kind": label_kind})
    cols.append({"id": "confidence", "header": EXTRA_COLUMNS["confidence"], "source": "confidence",
                 "kind": "numeric"})
    if version.task == "binary":
        cols.append({"id": "score", "header": EXTRA_COLUMNS["score"], "source": "score", "kind": "numeric"})
    return cols


def _column_values(col: dict, rows: SplitRows, pred: np.ndarray, confidence: np.ndarray,
                   idx: np.ndarray) -> np.ndarray:
    """Return a grid column's values at row positions ``idx`` (frame columns are indexed before converting)."""
    source = col["source"]
    if source == "row":
        return np.asarray(idx)
    if source == "true":
        return rows.y_true[idx]
    if source == "pred":
        return pred[idx]
    if source == "confidence":
        return confidence[idx]
    if source == "score":
        return rows.score[idx]
    return rows.frame[source].iloc[idx].to_numpy()


def _as_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ViewError(f"the filter on {what} needs a finite number")
    return float(value)


def _condition_mask(values: np.ndarray, spec: dict, col: dict) -> np.ndarray:
    kind = spec.get("type")
    header = col["header"]
    numeric = col["kind"] == "numeric"
    if numeric:
        if kind not in _NUMBER_FILTERS:
            raise ViewError(f"unknown number filter {str(kind)[:30]!r} on {header}")
        x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
        blank = np.isnan(x)
        if kind == "blank":
            return blank
        if kind == "notBlank":
            return ~blank
        a = _as_number(spec.get("filter"), header)
        with np.errstate(invalid="ignore"):
            if kind == "equals":
                return x == a
            if kind == "notEqual":
                return x != a
            if kind == "lessThan":
                return x < a
            if kind == "lessThanOrEqual":
                return x <= a
            if kind == "greaterThan":
                return x > a
            if kind == "greaterThanOrEqual":
                return x >= a
            b = _as_number(spec.get("filterTo"), header)
            lo, hi = min(a, b), max(a, b)
            return (x >= lo) & (x <= hi)
    if kind not in _TEXT_FILTERS:
        raise ViewError(f"unknown text filter {str(kind)[:30]!r} on {header}")
    series = pd.Series(values, dtype=object)
    blank = series.isna().to_numpy() | (series.astype(str).str.len() == 0).to_numpy()
    if kind == "blank":
        return blank
    if kind == "notBlank":
        return ~blank
    needle = spec.get("filter")
    if not isinstance(needle, (str, int, float)) or isinstance(needle, bool):
        raise ViewError(f"the filter on {header} needs text")
    needle = str(needle)
    if len(needle) > MAX_FILTER_TEXT:
        raise ViewError(f"the filter on {header} is longer than {MAX_FILTER_TEXT} characters")
    text = series.astype(str).str.lower()
    needle = needle.lower()
    if kind == "equals":
        out = text == needle
    elif kind == "notEqual":
        out = text != needle
    elif kind == "contains":
        out = text.str.contains(needle, regex=False)
    elif kind == "notContains":
        out = ~text.str.contains(needle, regex=False)
    elif kind == "startsWith":
        out = text.str.startswith(needle)
    else:
        out = text.str.endswith(needle)
    return out.to_numpy(dtype=bool)


def _filter_mask(values: np.ndarray, spec: Any, col: dict) -> np.ndarray:
    if not isinstance(spec, dict):
        raise ViewError(f"the filter on {col['header']} is malformed")
    conditions = spec.get("conditions")
    if conditions is not None:
        operator = spec.get("operator", "AND")
        if operator not in ("AND", "OR") or not isinstance(conditions, list) or not 1 <= len(conditions) <= 4:
            raise ViewError(f"the combined filter on {col['header']} is malformed")
        masks = [_condition_mask(values, c, col) if isinstance(c, dict) else _filter_mask(values, c, col)
                 for c in conditions]
        out = masks[0]
        for m in masks[1:]:
            out = (out & m) if operator == "AND" else (out | m)
        return out
    return _condition_mask(values, spec, col)


def _sort_key(values: np.ndarray) -> np.ndarray:
    """Return values as something numpy can sort (numbers as floats, NaN last; else text)."""
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    numeric = pd.to_numeric(pd.Series(values), errors="coerce")
    if numeric.notna().all():
        return numeric.to_numpy(dtype=np.float64)
    return pd.Series(values, dtype=object).astype(str).to_numpy(dtype=str)


def select_rows(rows: SplitRows, version: ModelVersion, candidates: np.ndarray, pred: np.ndarray,
                confidence: np.ndarray, *, sort_model: Any = None, filter_model: Any = None) -> np.ndarray:
    """Return the candidate row positions that pass ``filter_model``, ordered by ``sort_model``.

    Both come from the browser (AG Grid's models): unknown columns, filter
    types or malformed values raise :class:`ViewError`. Without a sort the
    rows keep their order in the split.
    """
    columns = {c["id"]: c for c in grid_columns(version)}
    idx = np.asarray(candidates, dtype=np.int64)
    if filter_model not in (None, {}):
        if not isinstance(filter_model, dict) or len(filter_model) > len(columns):
            raise ViewError("the grid's filters are malformed")
        for col_id, spec in filter_model.items():
            col = columns.get(col_id)
            if col is None:
                raise ViewError(f"there is no column {str(col_id)[:40]!r} to filter")
            values = _column_values(col, rows, pred, confidence, idx)
            idx = idx[_filter_mask(values, spec, col)]
    if sort_model not in (None, []):
        if not isinstance(sort_model, list) or len(sort_model) > MAX_SORT_KEYS:
            raise ViewError(f"sort by at most {MAX_SORT_KEYS} columns")
        keys = []
        for item in sort_model:
            if not isinstance(item, dict) or item.get("sort") not in ("asc", "desc"):
                raise ViewError("the grid's sort order is malformed")
            col = columns.get(item.get("colId"))
            if col is None:
                raise ViewError(f"there is no column {str(item.get('colId'))[:40]!r} to sort by")
            keys.append((_sort_key(_column_values(col, rows, pred, confidence, idx)), item["sort"]))
        order = np.arange(len(idx))
        # Stable sorts from the last key to the first: the first key decides, later keys break ties.
        for values, direction in reversed(keys):
            v = values[order]
            if direction == "desc":
                step = np.argsort(v[::-1], kind="stable")
                step = len(v) - 1 - step[::-1]
            else:
                step = np.argsort(v, kind="stable")
            order = order[step]
        idx = idx[order]
    return idx


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def page_records(rows: SplitRows, version: ModelVersion, idx: np.ndarray, pred: np.ndarray,
                 confidence: np.ndarray) -> list[dict]:
    """Return grid records (keys are the safe column ids) of the row positions ``idx``."""
    cols = grid_columns(version)
    records = [{} for _ in range(len(idx))]
    for col in cols:
        values = _column_values(col, rows, pred, confidence, idx)
        for rec, v in zip(records, values.tolist() if hasattr(values, "tolist") else values):
            rec[col["id"]] = _plain(v)
    return records


def _cell_candidates(version: ModelVersion, rows: SplitRows, pred: np.ndarray, true_label: Any,
                     pred_label: Any) -> np.ndarray:
    true_label = class_label(version, true_label)
    pred_label = class_label(version, pred_label)
    return np.flatnonzero((rows.y_true == true_label) & (pred == pred_label))


def cell_rows(version: ModelVersion, split: str, *, true_label: Any, pred_label: Any, threshold: float | None,
              start: int, end: int, sort_model: Any = None, filter_model: Any = None) -> dict:
    """Return one page of the rows in a confusion-matrix cell: ``{"rows", "count"}``.

    ``count`` is the number of rows passing the filters (the grid's row
    count); ``rows`` are those at positions ``start`` to ``end`` after sorting.
    """
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool) \
            or start < 0 or end <= start:
        raise ViewError("the grid asked for a malformed page of rows")
    end = min(end, start + MAX_PAGE_ROWS)
    rows = split_rows(version, split)
    pred, confidence = predicted(rows, version, threshold)
    idx = _ordered_cell(_VersionKey(version), split, threshold, class_label(version, true_label),
                        class_label(version, pred_label), _canonical(sort_model), _canonical(filter_model))
    return {"rows": page_records(rows, version, idx[start:end], pred, confidence), "count": int(len(idx))}


@dataclass(frozen=True, eq=False)
class _VersionKey:
    """A version as a cache key: equal when id and storage folder are (a registration never changes)."""

    version: Any

    def __hash__(self) -> int:
        return hash((self.version.id, self.version.storage_dir))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _VersionKey) and \
            (self.version.id, self.version.storage_dir) == (other.version.id, other.version.storage_dir)


def _canonical(model: Any) -> str:
    """Return a sort or filter model as canonical JSON (the cache key of an ordering)."""
    try:
        return json.dumps(model, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ViewError("the grid's sort or filter is malformed") from exc


@functools.lru_cache(maxsize=4)
def _ordered_cell(key: _VersionKey, split: str, threshold: float | None, true_label: Any, pred_label: Any,
                  sort_json: str, filter_json: str) -> np.ndarray:
    """Return the row positions of a cell after filtering and sorting (kept while the user pages through)."""
    version = key.version
    rows = split_rows(version, split)
    pred, confidence = predicted(rows, version, threshold)
    candidates = _cell_candidates(version, rows, pred, true_label, pred_label)
    idx = select_rows(rows, version, candidates, pred, confidence, sort_model=json.loads(sort_json),
                      filter_model=json.loads(filter_json))
    idx.setflags(write=False)
    return idx


def cell_csv(version: ModelVersion, split: str, *, true_label: Any, pred_label: Any, threshold: float | None,
             sort_model: Any = None, filter_model: Any = None, max_rows: int = MAX_EXPORT_ROWS) -> dict:
    """Return ``{"csv", "rows", "total", "truncated"}``: the cell's rows (filtered, sorted) as CSV text."""
    rows = split_rows(version, split)
    pred, confidence = predicted(rows, version, threshold)
    candidates = _cell_candidates(version, rows, pred, true_label, pred_label)
    idx = select_rows(rows, version, candidates, pred, confidence, sort_model=sort_model,
                      filter_model=filter_model)
    total = int(len(idx))
    idx = idx[:max_rows]
    cols = grid_columns(version)
    frame = pd.DataFrame({_defuse(c["header"]): _column_values(c, rows, pred, confidence, idx) for c in cols})
    for name in frame.columns:
        if frame[name].dtype == object or pd.api.types.is_string_dtype(frame[name]):
            frame[name] = _defuse_series(frame[name])
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    return {"csv": buffer.getvalue(), "rows": int(len(idx)), "total": total, "truncated": total > len(idx)}


#: A cell starting with one of these runs as a formula when the CSV is opened in a spreadsheet.
_FORMULA_START = ("=", "+", "@", "\t", "\r")


def _defuse(text: str) -> str:
    text = str(text)
    risky = text[:1] in _FORMULA_START or (text[:1] == "-" and not _is_number(text))
    return "'" + text if risky else text


def _defuse_series(values: pd.Series) -> pd.Series:
    text = values.astype(object).where(values.isna(), values.astype(str))
    first = text.str[:1]
    numeric = pd.to_numeric(text, errors="coerce").notna()
    risky = first.isin(_FORMULA_START) | ((first == "-") & ~numeric)
    return text.where(~risky.fillna(False), "'" + text.astype(str))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def confident_mistakes(version: ModelVersion, split: str, *, threshold: float | None, limit: int = 20) -> list[dict]:
    """Return the ``limit`` wrong predictions the model was most sure of (grid records, most confident first)."""
    if limit < 1:
        return []
    rows = split_rows(version, split)
    pred, confidence = predicted(rows, version, threshold)
    wrong = np.flatnonzero(pred != rows.y_true)
    if wrong.size == 0:
        return []
    conf = confidence[wrong]
    if wrong.size > limit:
        # The top ``limit`` in linear time, then sorted (ties in row order).
        top = np.argpartition(-conf, limit - 1)[:limit]
        wrong, conf = wrong[top], conf[top]
    order = np.lexsort((wrong, -conf))
    return page_records(rows, version, wrong[order], pred, confidence)


def row_details(version: ModelVersion, split: str, row: Any, *, threshold: float | None) -> dict:
    """Return everything about one row: inputs, group columns, truth, prediction, probabilities."""
    rows = split_rows(version, split)
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= int(row) < len(rows.y_true):
        raise ViewError(f"there is no row {str(row)[:20]} in the {split} data")
    row = int(row)
    pred, confidence = predicted(rows, version, threshold)
    record = rows.frame.iloc[row]
    features = [{"name": f, "value": _plain(record[f])} for f in version.features]
    groups = [{"name": g, "value": _plain(record[g])} for g in version.group_columns or []
              if g not in version.features]
    out = {"row": row, "split": split, "features": features, "groups": groups,
           "true": _plain(rows.y_true[row]), "pred": _plain(pred[row]),
           "confidence": float(confidence[row]), "correct": bool(pred[row] == rows.y_true[row])}
    if version.task == "binary":
        out["score"] = float(rows.score[row])
        out["threshold"] = threshold
    return out


# -- fairness ---------------------------------------------------------------------------

def _group_values(version: ModelVersion, rows: SplitRows, column: Any) -> pd.Series:
    if not isinstance(column, str) or column not in (version.group_columns or []):
        raise ViewError(f"{str(column)[:40]!r} is not a group column of {version.label}")
    return rows.frame[column]


def fairness(version: ModelVersion, split: str, column: Any, *, threshold: float,
             gap_tolerance: float = 0.1) -> dict:
    """Return :func:`app.ml.fairness.group_rates` for a group column at ``threshold``."""
    if version.task != "binary":
        raise ViewError("fairness at a threshold needs a binary model")
    rows = split_rows(version, split)
    return group_rates(rows.y_true, rows.score, _group_values(version, rows, column), threshold=threshold,
                       positive_label=version.positive_class, gap_tolerance=gap_tolerance)


def equalised_tpr(version: ModelVersion, split: str, column: Any, *, target_tpr: float) -> list[dict]:
    """Return per group the threshold that reaches ``target_tpr`` (see :func:`equalize_tpr_thresholds`)."""
    if version.task != "binary":
        raise ViewError("equalising TPR needs a binary model")
    rows = split_rows(version, split)
    return equalize_tpr_thresholds(rows.y_true, rows.score, _group_values(version, rows, column),
                                   target_tpr=target_tpr, positive_label=version.positive_class)


def clear_caches() -> None:
    """Forget this process's sweeps and predictions (tests, memory pressure)."""
    _sweep.cache_clear()
    _split_rows.cache_clear()
    _ordered_cell.cache_clear()
