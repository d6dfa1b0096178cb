"""Read helpers for the "why" pages: feature influence, explain a prediction, what-if.

Everything here reads the registry and the analysis cache; nothing is
written. Work that is too slow for a request and the same for every request
of an immutable model version is kept per process in small LRU caches keyed
by what identifies the version (its id and artifact checksum):

- the SHAP explainer of a version (built once: TreeExplainer/LinearExplainer
  setup takes tens of milliseconds to seconds);
- the version's *reference* feature metadata: the registered metadata widened
  so that every train and test row is valid (the registered ranges come from
  the training rows only, so a test row may lie outside them);
- the typical (median) row;
- partial dependence computed on demand for a feature the cache does not
  hold, on a bounded sample.

Rows are addressed by their position in the train or test frame (the frames
have a RangeIndex). Callers check permissions; functions here raise
:class:`ExplainError` with a message for the user when a request cannot be
answered.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from scipy import sparse
from sqlalchemy.orm import Session

from app.ml.counterfactual import find_counterfactual
from app.ml.explain import Explainer, build_explainer, explain_rows, row_explanation
from app.ml.influence import mean_abs_shap, partial_dependence_1d, partial_dependence_2d
from app.ml.neighbours import nearest_rows
from app.ml.predict import (FOREST_INTERVAL, classes_of, column_order, final_step, median_row, predict_row,
                            preprocessor, proba_summary, rows_to_frame, to_native, validate_row)
from data.analysis_cache import get_result
from data.registry import ModelVersion, load_estimator, load_frames

log = logging.getLogger(__name__)

#: Analyses the feature-influence page reads.
FEATURE_KINDS = ("permutation_importance", "impurity_importance", "pdp", "pdp_2d", "shap")
#: Importance methods of the features page: key -> (label, analysis kind).
METHODS = {
    "permutation": ("Permutation importance", "permutation_importance"),
    "impurity": ("Impurity importance", "impurity_importance"),
    "shap": ("Mean |SHAP value|", "shap"),
}
METHOD_MEANINGS = {
    "permutation": "How much the model's test score drops when one feature's values are shuffled, so the model "
                   "can no longer use it (mean and spread over several shuffles). It measures what the model "
                   "relies on for accuracy; a value near or below zero means the feature does not help.",
    "impurity": "How much the trees' splits on the feature purify their leaves during training, as a share of "
                "the total. Cheap and only for tree models; it is measured on training data and favours features "
                "with many distinct values.",
    "shap": "The average size of the feature's contribution to single predictions (SHAP values) over a sample of "
            "test rows. It says how much the feature moves predictions, whichever way, not whether it makes "
            "them right.",
}
#: Background rows kept by the explainer of a version (tree/linear: exact; kernel: fewer, it is slow).
BACKGROUND_ROWS = 100
KERNEL_BACKGROUND_ROWS = 40
#: On-demand partial dependence: rows, grid points, ICE lines.
ON_DEMAND_PDP_ROWS = 300
ON_DEMAND_PDP_GRID = 20
ON_DEMAND_ICE_LINES = 50
ON_DEMAND_PDP2D_ROWS = 200
ON_DEMAND_PDP2D_GRID = 12
#: Candidate rows a counterfactual search may predict.
COUNTERFACTUAL_EVALS = 2000
NEAREST_ROWS = 5
SEED = 0
SPLITS = ("train", "test")


class ExplainError(ValueError):
    """A request the why-pages cannot answer, with a message for the user."""


@dataclass(frozen=True)
class _Files:
    """What identifies an immutable version and where its files are (hashable, detached from any session)."""

    id: int
    artifact_path: str
    artifact_sha256: str
    train_path: str
    test_path: str
    task: str
    features: tuple
    target: str
    positive_class: Any
    classes: tuple
    meta_json: str


def _files(version: ModelVersion) -> _Files:
    return _Files(version.id, version.artifact_path, version.artifact_sha256, version.train_path,
                  version.test_path, version.task, tuple(version.features), version.target,
                  _hashable(version.positive_class), tuple(version.classes or ()),
                  json.dumps(version.feature_meta, sort_keys=True, default=str))


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# -- metadata ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def _reference_meta(files: _Files) -> tuple[dict, ...]:
    registered = {m["name"]: m for m in json.loads(files.meta_json)}
    train, test = load_frames(files)
    out = []
    for name in files.features:
        meta = dict(registered[name])
        values = pd.concat([train[name], test[name]], ignore_index=True)
        if meta["kind"] == "numeric":
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            numbers = numbers[np.isfinite(numbers)]
            if numbers.size:
                meta["min"] = float(min(meta["min"], numbers.min()))
                meta["max"] = float(max(meta["max"], numbers.max()))
                if meta.get("integer") and not np.all(numbers == np.round(numbers)):
                    meta["integer"] = False
        else:
            levels = list(meta["levels"])
            known = {_level_key(v) for v in levels}
            for value in pd.unique(values.dropna()):
                value = to_native(value)
                if _level_key(value) not in known:
                    levels.append(value)
                    known.add(_level_key(value))
            meta["levels"] = levels
        out.append(meta)
    return tuple(out)


def _level_key(value: Any) -> tuple[str, str]:
    return type(value).__name__, str(value)


def reference_meta(version: ModelVersion) -> list[dict]:
    """Return the feature metadata widened to cover every train and test row, in feature order.

    The registered ranges and levels come from the training rows; a test row
    may lie outside them, and it must still be explainable.
    """
    return [dict(m) for m in _reference_meta(_files(version))]


def slider_meta(version: ModelVersion) -> list[dict]:
    """Return the metadata the what-if controls are built from (the reference metadata)."""
    return reference_meta(version)


# -- estimator and explainer ------------------------------------------------------------------

def estimator_of(version: ModelVersion) -> Any:
    """Return the version's fitted estimator (loaded once per process; read-only)."""
    return load_estimator(version)


@functools.lru_cache(maxsize=8)
def _explainer(files: _Files) -> Explainer:
    estimator = load_estimator(files)
    train, _ = load_frames(files)
    background = train[list(files.features)]
    explainer = build_explainer(estimator, background, task=files.task, max_background=BACKGROUND_ROWS,
                                random_state=SEED)
    if explainer.method == "kernel" and len(background) > KERNEL_BACKGROUND_ROWS:
        # Kernel SHAP predicts every coalition on every background row: keep the background small.
        explainer = build_explainer(estimator, background, task=files.task, max_background=KERNEL_BACKGROUND_ROWS,
                                    random_state=SEED)
    return explainer


def explainer_for(version: ModelVersion) -> Explainer:
    """Return the version's SHAP explainer (built once per process and version)."""
    return _explainer(_files(version))


def explainer_method(version: ModelVersion) -> str:
    """Return "tree", "linear" or "kernel": how this version's predictions are explained."""
    return explainer_for(version).method


# -- rows --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def _median(files: _Files) -> tuple[tuple[str, Any], ...]:
    train, _ = load_frames(files)
    meta = list(_reference_meta(files))
    row = median_row(train[list(files.features)], feature_meta=meta)
    return tuple(row.items())


def typical_row(version: ModelVersion) -> dict:
    """Return the median row of the training data (mode for categories)."""
    return dict(_median(_files(version)))


def split_frame(version: ModelVersion, split: Any) -> pd.DataFrame:
    """Return the train or test frame of a version (read-only)."""
    if split not in SPLITS:
        raise ExplainError("Choose the train or the test data.")
    train, test = load_frames(version)
    return train if split == "train" else test


def row_count(version: ModelVersion, split: Any) -> int:
    """Return how many rows ``split`` has."""
    return len(split_frame(version, split))


def check_index(version: ModelVersion, split: Any, index: Any) -> int:
    """Return ``index`` as a valid row position of ``split`` or raise ExplainError."""
    n = row_count(version, split)
    if isinstance(index, str) and index.strip().isdigit():
        index = int(index.strip())
    if isinstance(index, float) and index.is_integer():
        index = int(index)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= int(index) < n:
        raise ExplainError(f"There is no row {str(index)[:20]} in the {split} data; rows are numbered 0 to {n - 1}.")
    return int(index)


def split_row(version: ModelVersion, split: Any, index: Any) -> dict:
    """Return the feature values of row ``index`` of ``split`` (validated)."""
    frame = split_frame(version, split)
    index = check_index(version, split, index)
    record = frame.iloc[index]
    row = {name: to_native(record[name]) for name in version.features}
    clean, messages = validate_row(row, feature_meta=reference_meta(version))
    if messages:
        raise ExplainError(f"Row {index} of the {split} data cannot be used: " + " ".join(messages))
    return clean


def true_value(version: ModelVersion, split: Any, index: Any) -> Any:
    """Return the true target of row ``index`` of ``split``."""
    frame = split_frame(version, split)
    index = check_index(version, split, index)
    return to_native(frame[version.target].iloc[index])


def check_row(version: ModelVersion, row: Any) -> dict:
    """Validate a posted row against the reference metadata; return it clean or raise ExplainError."""
    clean, messages = validate_row(row, feature_meta=reference_meta(version))
    if messages:
        shown = " ".join(messages[:6]) + (f" (and {len(messages) - 6} more problems)" if len(messages) > 6 else "")
        raise ExplainError(shown)
    return clean


def parse_values(raw: Any, *, max_length: int = 4000) -> dict:
    """Parse ``?values=`` (JSON text of feature -> value) into a dict, or raise ExplainError."""
    if isinstance(raw, dict):
        return dict(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise ExplainError("The values must be a JSON object of feature names to values.")
    if len(raw) > max_length:
        raise ExplainError(f"The values are longer than {max_length} characters.")
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ExplainError("The values are not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise ExplainError("The values must be a JSON object of feature names to values.")
    return parsed


def values_diff(row: dict, base: dict) -> dict:
    """Return the entries of ``row`` that differ from ``base`` (what a link needs to carry)."""
    return {k: v for k, v in row.items() if k not in base or base[k] != v or type(base[k]) is not type(v)}


def compact_json(values: dict) -> str:
    """Return ``values`` as short JSON (floats to 8 significant digits)."""
    def short(v: Any) -> Any:
        if isinstance(v, float) and math.isfinite(v):
            return float(f"{v:.8g}")
        return v
    return json.dumps({k: short(v) for k, v in values.items()}, separators=(",", ":"))


# -- predictions and explanations --------------------------------------------------------------

def target_index(version: ModelVersion) -> int | None:
    """Return the class explained by default: the positive class of a binary model, else None."""
    if version.task != "binary":
        return None
    classes = [to_native(c) for c in getattr(estimator_of(version), "classes_", version.classes or [])]
    positive = version.positive_class
    for i, c in enumerate(classes):
        if c == positive or str(c) == str(positive):
            return i
    return 1


def predict(version: ModelVersion, row: dict) -> dict:
    """Return :func:`app.ml.predict.predict_row` for a clean row (the same dict, faster for forests).

    This answers every what-if slider move. A random forest's own
    ``predict_proba`` spends most of a single-row call dispatching its trees
    to worker threads and re-checking the input for each tree (about 17 ms
    for 100 trees; the trees themselves take about 1 ms), so forests are
    answered from their trees directly (:class:`FastForest`), a path checked
    against ``predict_row`` when it is built. Other models run
    ``predict_row`` with scikit-learn's per-call input checks off: the row
    has been validated already.
    """
    meta = reference_meta(version)
    fast = _fast_forest(_files(version))
    if fast is not None:
        return fast.predict_row(row, feature_meta=meta)
    with _quick_sklearn():
        return predict_row(estimator_of(version), row, feature_meta=meta, task=version.task)


def _quick_sklearn():
    """Skip scikit-learn's finiteness and parameter checks (rows here are validated first)."""
    return sklearn.config_context(assume_finite=True, skip_parameter_validation=True)


#: Forest types whose single-row predictions :class:`FastForest` reproduces.
_FORESTS = ("RandomForestClassifier", "ExtraTreesClassifier", "RandomForestRegressor", "ExtraTreesRegressor")


class FastForest:
    """Single-row predictions of a fitted scikit-learn forest read from its trees' arrays.

    The same arithmetic as the forest's ``predict_proba`` (each tree's leaf
    values normalised per row, then averaged) or ``predict`` (the mean of the
    trees), without the joblib dispatch and per-tree input validation; a
    forest regressor's interval comes from the same per-tree values as in
    :func:`app.ml.predict.predict_row`.
    """

    def __init__(self, estimator: Any, task: str):
        self.estimator = estimator
        self.task = task
        self.pre = preprocessor(estimator)
        forest = final_step(estimator)
        self.trees = [tree.tree_ for tree in forest.estimators_]
        self.n_classes = getattr(forest, "n_classes_", None)
        self.classes = classes_of(estimator) if task != "regression" else None

    def _inputs(self, frame: pd.DataFrame) -> np.ndarray:
        data = self.pre.transform(frame) if self.pre is not None else frame
        if sparse.issparse(data):
            data = data.toarray()
        return np.ascontiguousarray(np.asarray(data, dtype=np.float32))

    def per_tree(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the trees' outputs: (trees, rows, classes) probabilities, or (trees, rows) values."""
        X = self._inputs(frame)
        if self.task == "regression":
            return np.stack([tree.predict(X)[:, 0] for tree in self.trees])
        out = []
        for tree in self.trees:
            proba = tree.predict(X)[:, : self.n_classes]
            normalizer = proba.sum(axis=1)[:, np.newaxis]
            normalizer[normalizer == 0.0] = 1.0
            out.append(proba / normalizer)
        return np.stack(out)

    def predict_row(self, row: dict, *, feature_meta: list[dict]) -> dict:
        """Return what :func:`app.ml.predict.predict_row` returns for one clean row."""
        clean, messages = validate_row(row, feature_meta=feature_meta)
        if messages:
            raise ValueError("Invalid row: " + " ".join(messages))
        frame = rows_to_frame([clean], feature_meta=feature_meta, columns=column_order(self.estimator, feature_meta))
        values = self.per_tree(frame)
        if self.task == "regression":
            per_tree = values[:, 0]
            value = float(per_tree.sum() / len(per_tree))
            lo, hi = np.quantile(per_tree, FOREST_INTERVAL)
            return {"value": value, "interval": (float(lo), float(hi)),
                    "interval_method": "5th to 95th percentile of the individual trees' predictions"}
        proba = values.sum(axis=0)[0] / len(self.trees)
        return proba_summary(self.classes, proba)


@functools.lru_cache(maxsize=8)
def _fast_forest(files: _Files) -> FastForest | None:
    """Return the fast path of a forest version, or None for other models or if it disagrees with predict_row."""
    estimator = load_estimator(files)
    if type(final_step(estimator)).__name__ not in _FORESTS:
        return None
    try:
        fast = FastForest(estimator, files.task)
        meta = list(_reference_meta(files))
        train, _ = load_frames(files)
        rows = train[list(files.features)].head(20)
        for record in rows.to_dict(orient="records"):
            row, messages = validate_row({k: to_native(v) for k, v in record.items()}, feature_meta=meta)
            if messages:
                continue
            expected = predict_row(estimator, row, feature_meta=meta, task=files.task)
            if not _same_prediction(fast.predict_row(row, feature_meta=meta), expected):
                log.warning("fast forest path disagrees with predict_row for version %s; not used", files.id)
                return None
    except Exception:  # an unusual forest (sparse output, multi-output, ...): use the general path
        log.info("fast forest path unavailable for version %s", files.id, exc_info=True)
        return None
    return fast


def _same_prediction(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, (list, tuple)) and x and isinstance(x[0], float):
            if not np.allclose(x, y, rtol=1e-12, atol=1e-12):
                return False
        elif isinstance(x, float):
            if not math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12):
                return False
        elif x != y:
            return False
    return True


def row_frame(version: ModelVersion, row: dict) -> pd.DataFrame:
    """Return a one-row frame of a clean row, in the model's column order."""
    meta = reference_meta(version)
    return rows_to_frame([row], feature_meta=meta, columns=column_order(estimator_of(version), meta))


def explain(version: ModelVersion, row: dict, *, target: int | None = None) -> dict:
    """Return the SHAP explanation of one clean row (see :func:`app.ml.explain.row_explanation`).

    Binary models explain the positive class, multiclass models the
    predicted class unless ``target`` (a class index) says otherwise.
    """
    explainer = explainer_for(version)
    if target is None:
        target = target_index(version)
    with _quick_sklearn():
        result = explain_rows(explainer, row_frame(version, row), target_index=target)
    return row_explanation(result, 0)


def counterfactual(version: ModelVersion, row: dict, *, locked=(), desired_class: Any = None,
                   target_value: float | None = None, max_evals: int = COUNTERFACTUAL_EVALS) -> dict:
    """Return :func:`app.ml.counterfactual.find_counterfactual` within the reference ranges."""
    try:
        return find_counterfactual(estimator_of(version), row, feature_meta=reference_meta(version),
                                   task=version.task, locked=list(locked), desired_class=desired_class,
                                   target_value=target_value, max_evals=max_evals, random_state=SEED)
    except ValueError as exc:
        raise ExplainError(str(exc)) from None


def nearest(version: ModelVersion, split: Any, row: dict, *, k: int = NEAREST_ROWS,
            exclude_index: int | None = None) -> list[dict]:
    """Return the ``k`` rows of ``split`` nearest to ``row``, with their values, truth and prediction."""
    frame = split_frame(version, split)
    found = nearest_rows(frame[list(version.features)], row, feature_meta=reference_meta(version), k=k,
                         exclude_index=exclude_index)
    if not found:
        return []
    positions = [int(f["index"]) for f in found]
    X = frame[list(version.features)].iloc[positions]
    estimator = estimator_of(version)
    out = []
    if version.task == "regression":
        predicted = [float(v) for v in np.ravel(estimator.predict(X))]
        confidence = [None] * len(positions)
    else:
        classes = [to_native(c) for c in estimator.classes_]
        proba = np.asarray(estimator.predict_proba(X), dtype=float)
        top = proba.argmax(axis=1)
        if version.task == "binary":
            # The threshold views' rule at 0.5: positive iff its probability >= 0.5.
            t = target_index(version)
            other = 1 - t
            top = np.where(proba[:, t] >= 0.5, t, other)
        predicted = [classes[i] for i in top]
        confidence = [float(proba[j, i]) for j, i in enumerate(top)]
    for item, position, pred, conf in zip(found, positions, predicted, confidence):
        record = frame.iloc[position]
        out.append({"row": position, "distance": item["distance"],
                    "values": {name: to_native(record[name]) for name in version.features},
                    "true": to_native(record[version.target]), "predicted": pred, "confidence": conf})
    return out


def confident_mistakes(version: ModelVersion, split: Any, *, limit: int = 10) -> list[dict]:
    """Return the wrong predictions the model was most sure of: row, true, predicted, confidence.

    Binary models predict at the saved threshold (0.5 when none is saved), as
    the confusion matrix does.
    """
    if version.task == "regression":
        raise ExplainError("A regression has no mistakes in this sense; choose a row by number.")
    frame = split_frame(version, split)
    estimator = estimator_of(version)
    proba = _split_proba(_files(version), split)
    classes = [to_native(c) for c in estimator.classes_]
    y = frame[version.target].to_numpy()
    if version.task == "binary":
        t = target_index(version)
        saved = (version.threshold or {}).get("value") if isinstance(version.threshold, dict) else None
        threshold = float(saved) if isinstance(saved, (int, float)) and not isinstance(saved, bool) else 0.5
        top = np.where(proba[:, t] >= threshold, t, 1 - t)
    else:
        top = proba.argmax(axis=1)
    labels = np.asarray(classes, dtype=object)[top]
    truth = pd.Categorical(pd.Series(y).map(to_native), categories=classes).codes
    wrong = np.flatnonzero(truth != top)
    if wrong.size == 0:
        return []
    confidence = proba[np.arange(len(proba)), top]
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    return [{"row": int(i), "true": to_native(y[i]), "predicted": to_native(labels[i]),
             "confidence": float(confidence[i])} for i in order]


def largest_errors(version: ModelVersion, split: Any, *, limit: int = 10) -> list[dict]:
    """Return the rows a regression predicts worst: row, true, predicted, error (predicted minus true)."""
    if version.task != "regression":
        raise ExplainError("Largest errors are for regressions; classifiers list their confident mistakes.")
    frame = split_frame(version, split)
    predicted = _split_predictions(_files(version), split)
    y = frame[version.target].to_numpy(dtype=float)
    error = predicted - y
    order = np.argsort(-np.abs(error), kind="stable")[:limit]
    return [{"row": int(i), "true": float(y[i]), "predicted": float(predicted[i]), "error": float(error[i])}
            for i in order]


@functools.lru_cache(maxsize=4)
def _split_predictions(files: _Files, split: str) -> np.ndarray:
    train, test = load_frames(files)
    frame = train if split == "train" else test
    predicted = np.asarray(load_estimator(files).predict(frame[list(files.features)]), dtype=float).ravel()
    predicted.setflags(write=False)
    return predicted


@functools.lru_cache(maxsize=4)
def _split_proba(files: _Files, split: str) -> np.ndarray:
    train, test = load_frames(files)
    frame = train if split == "train" else test
    proba = np.asarray(load_estimator(files).predict_proba(frame[list(files.features)]), dtype=float)
    proba.setflags(write=False)
    return proba


# -- the features page ------------------------------------------------------------------------

def class_options(version: ModelVersion) -> list:
    """Return the classes a user may pick to explain (multiclass only; else empty)."""
    if version.task != "multiclass":
        return []
    return [to_native(c) for c in version.classes or []]


def class_key(version: ModelVersion, klass: Any) -> tuple[str, int | None, Any]:
    """Return (cache key, class index, class label) of the class to explain.

    Binary: the positive class; regression: the value; multiclass: ``klass``
    (matched by its text), else the first class.
    """
    if version.task == "regression":
        return "value", None, None
    if version.task == "binary":
        return str(version.positive_class), target_index(version), version.positive_class
    classes = class_options(version)
    for i, c in enumerate(classes):
        if klass is not None and (c == klass or str(c) == str(klass)):
            return str(c), i, c
    if klass is not None:
        raise ExplainError(f"{str(klass)[:40]!r} is not a class of this model.")
    return str(classes[0]), 0, classes[0]


def importance(session: Session, version: ModelVersion, method: str, *, klass: Any = None) -> dict:
    """Return the importance to draw: ``{"result", "label", "meaning", "note", "state"}``.

    ``state`` is "ready", "computing" (not in the cache yet) or
    "unavailable" (the model has none of this kind, e.g. impurity for a
    linear model). Mean |SHAP| of a multiclass model uses the sampled rows
    whose predicted class is ``klass``. ``source`` is the cached payload the
    result comes from (read-only; the same object while it stays cached).
    """
    if method not in METHODS:
        raise ExplainError(f"Choose one of the methods: {', '.join(METHODS)}.")
    label, kind = METHODS[method]
    out = {"result": None, "label": label, "meaning": METHOD_MEANINGS[method], "note": "", "state": "ready",
           "source": None}
    payload = get_result(session, version.id, kind)
    if payload is None:
        out.update(state="computing", note=f"{label} is still being computed for this model.")
        return out
    if method == "impurity":
        if payload.get("available") is False:
            out.update(state="unavailable", note="This model has no impurity importance: only tree-based models "
                                                 "(forests, boosting, single trees) have one.")
            return out
        out["result"] = out["source"] = payload
        out["note"] = "From the model's training (mean decrease in impurity); spread over the trees."
        return out
    if method == "permutation":
        out["result"] = out["source"] = payload
        n = payload.get("n_samples") or payload.get("sample_size")
        total = payload.get("n_rows")
        sample = f"{n:,} of {total:,}" if n and total and n < total else f"{n:,}" if n else "the"
        out["note"] = (f"Scored with {payload.get('scoring')} on {sample} test rows, "
                       f"{payload.get('n_repeats', '')} shuffles per feature; bars show mean ± std.")
        return out
    sample = shap_rows(session, version, klass=klass)
    if sample["sample"] is None:
        out.update(state="unavailable" if sample["state"] != "computing" else "computing", note=sample["note"])
        return out
    out["result"] = mean_abs_shap(sample["sample"])
    out["source"] = sample["source"]
    out["note"] = sample["note"]
    return out


def shap_rows(session: Session, version: ModelVersion, *, klass: Any = None) -> dict:
    """Return the cached SHAP sample to draw, restricted to one class for multiclass models.

    ``{"sample", "note", "state", "source"}``; the sample is an ``explain_rows``
    result, ``source`` the cached payload it comes from.
    """
    payload = get_result(session, version.id, "shap")
    if payload is None:
        return {"sample": None, "note": "The SHAP sample is still being computed for this model.",
                "state": "computing", "source": None}
    n, total = payload.get("n_samples", len(payload["values"])), payload.get("n_rows")
    rows = f"{n:,} sampled test rows (of {total:,})" if total and n < total else f"all {n:,} test rows"
    if version.task == "multiclass":
        key, _, label = class_key(version, klass)
        labels = payload.get("target_label") or []
        keep = [i for i, t in enumerate(labels) if str(t) == key]
        if not keep:
            return {"sample": None, "state": "empty", "source": payload,
                    "note": f"None of the {n} sampled test rows is predicted as {label}, so there are no SHAP "
                            f"values for it."}
        sample = dict(payload)
        for field in ("values", "data", "output", "base_values", "target_index", "target_label", "index"):
            if isinstance(payload.get(field), list) and len(payload[field]) == len(labels):
                sample[field] = [payload[field][i] for i in keep]
        note = (f"SHAP values towards {label} for the {len(keep)} of {rows} that the model predicts as {label} "
                f"({payload.get('output_space')} units, {payload.get('method')} explainer).")
        return {"sample": sample, "note": note, "state": "ready", "source": payload}
    towards = f" towards {version.positive_class}" if version.task == "binary" else ""
    note = (f"SHAP values{towards} for {rows} ({payload.get('output_space')} units, "
            f"{payload.get('method')} explainer).")
    return {"sample": payload, "note": note, "state": "ready", "source": payload}


def pdp(session: Session, version: ModelVersion, feature: str, *, klass: Any = None) -> dict:
    """Return the partial dependence of ``feature`` to draw: ``{"pdp", "note", "state", "on_demand", "source"}``.

    Read from the cache for the top features; any other feature is computed
    now on a bounded sample (and kept for this process), and the note says so.
    """
    if feature not in version.features:
        raise ExplainError(f"{str(feature)[:60]!r} is not a feature of this model.")
    key, index, label = class_key(version, klass)
    payload = get_result(session, version.id, "pdp")
    if payload is None:
        return {"pdp": None, "note": "Partial dependence is still being computed for this model.",
                "state": "computing", "on_demand": False, "source": None}
    cached = (payload.get("grids") or {}).get(key, {}).get(feature)
    kinds = {m["name"]: m["kind"] for m in version.feature_meta}
    if cached is not None:
        n = payload.get("sample_size")
        note = (f"Average over {n:,} sampled test rows; {len(cached.get('ice') or [])} of them drawn as lines."
                if n else "")
        return {"pdp": cached, "note": note, "state": "ready", "on_demand": False, "source": payload}
    result = _pdp_on_demand(_files(version), feature, kinds[feature] == "categorical", index)
    note = (f"{feature} is not among the features computed in advance, so this was computed now on "
            f"{result['n_samples']:,} sampled test rows ({len(result.get('ice') or [])} drawn as lines).")
    return {"pdp": result, "note": note, "state": "ready", "on_demand": True, "source": result}


@functools.lru_cache(maxsize=32)
def _pdp_on_demand(files: _Files, feature: str, categorical: bool, index: int | None) -> dict:
    X = _sample(files, ON_DEMAND_PDP_ROWS)
    return partial_dependence_1d(load_estimator(files), X, feature, categorical=categorical,
                                 grid_resolution=ON_DEMAND_PDP_GRID, ice_samples=ON_DEMAND_ICE_LINES,
                                 target_index=index, random_state=SEED)


def _sample(files: _Files, rows: int) -> pd.DataFrame:
    """Return a seeded sample of test inputs with integer numeric columns as floats (as the cache does)."""
    _, test = load_frames(files)
    X = test[list(files.features)]
    if len(X) > rows:
        X = X.iloc[np.sort(np.random.default_rng(SEED).choice(len(X), size=rows, replace=False))]
    numeric = {m["name"] for m in json.loads(files.meta_json) if m["kind"] == "numeric"}
    casts = {c: float for c in X.columns if c in numeric and pd.api.types.is_integer_dtype(X[c])}
    return X.astype(casts) if casts else X


def pdp2d_pair(session: Session, version: ModelVersion) -> list[str]:
    """Return the pair of features the cache holds a two-way partial dependence for (or the first two)."""
    payload = get_result(session, version.id, "pdp_2d")
    if payload and payload.get("available") and len(payload.get("features") or []) == 2:
        return list(payload["features"])
    return list(version.features[:2])


def pdp2d(session: Session, version: ModelVersion, pair: list, *, klass: Any = None) -> dict:
    """Return a two-way partial dependence to draw: ``{"pdp", "note", "state", "on_demand", "source"}``."""
    if not isinstance(pair, (list, tuple)) or len(pair) != 2:
        raise ExplainError("Choose two features.")
    fx, fy = pair
    for f in (fx, fy):
        if f not in version.features:
            raise ExplainError(f"{str(f)[:60]!r} is not a feature of this model.")
    if fx == fy:
        raise ExplainError("Choose two different features.")
    key, index, _ = class_key(version, klass)
    payload = get_result(session, version.id, "pdp_2d")
    if payload is None:
        return {"pdp": None, "state": "computing", "on_demand": False, "source": None,
                "note": "The two-way partial dependence is still being computed for this model."}
    if payload and payload.get("available") and payload.get("features") in ([fx, fy], [fy, fx]):
        cached = payload["grids"].get(key)
        if cached is not None:
            if payload["features"] == [fy, fx]:
                cached = {"features": [fx, fy], "grid_x": cached["grid_y"], "grid_y": cached["grid_x"],
                          "values": np.asarray(cached["values"]).T.tolist(), "target": cached.get("target")}
            return {"pdp": cached, "state": "ready", "on_demand": False, "source": payload,
                    "note": f"Average over {payload.get('sample_size', 0):,} sampled test rows."}
    kinds = {m["name"]: m["kind"] for m in version.feature_meta}
    result = _pdp2d_on_demand(_files(version), fx, fy, kinds[fx] == "categorical", kinds[fy] == "categorical",
                              index)
    return {"pdp": result, "state": "ready", "on_demand": True, "source": result,
            "note": f"This pair is not computed in advance, so it was computed now on {ON_DEMAND_PDP2D_ROWS:,} "
                    f"sampled test rows (at most) with a {ON_DEMAND_PDP2D_GRID}-point grid per feature."}


@functools.lru_cache(maxsize=16)
def _pdp2d_on_demand(files: _Files, fx: str, fy: str, cat_x: bool, cat_y: bool, index: int | None) -> dict:
    X = _sample(files, ON_DEMAND_PDP2D_ROWS)
    return partial_dependence_2d(load_estimator(files), X, [fx, fy], grid_resolution=ON_DEMAND_PDP2D_GRID,
                                 target_index=index, categorical=(cat_x, cat_y))


def ranked_features(session: Session, version: ModelVersion) -> list[str]:
    """Return the features, most important first (permutation, else impurity, else column order)."""
    for kind in ("permutation_importance", "impurity_importance"):
        payload = get_result(session, version.id, kind)
        names = (payload or {}).get("features")
        if isinstance(names, list) and (payload or {}).get("available", True) is not False:
            ranked = [n for n in names if n in version.features]
            return ranked + [f for f in version.features if f not in ranked]
    return list(version.features)


def clear_caches() -> None:
    """Forget this process's explainers, metadata, typical rows and on-demand results (tests)."""
    for cached in (_reference_meta, _explainer, _fast_forest, _median, _split_proba, _split_predictions,
                   _pdp_on_demand, _pdp2d_on_demand):
        cached.cache_clear()

