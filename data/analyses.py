"""The table of analysis kinds computed for each model version and kept in the analysis cache.

Each kind is one :class:`AnalysisKind` entry: a name, the tasks it applies
to, and a function ``compute(ctx, params) -> dict`` over a
:class:`ModelContext`. Payloads are plain JSON-able values. Exact where it
matters and cheap (metrics, threshold sweeps, curves, calibration, score
distributions on every row); sampled where the cost grows with rows times
features (permutation importance, partial dependence, SHAP), with the sample
size stored in the payload so figures can say so.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from data.db import Database

log = logging.getLogger(__name__)

#: Rows used for permutation importance (and the importance-based feature ranking).
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 5
#: Rows behind partial dependence / ICE, and ICE lines kept for drawing.
PDP_ROWS = 500
PDP_ICE_LINES = 50
PDP_GRID = 20
PDP_TOP_FEATURES = 6
PDP_2D_ROWS = 300
PDP_2D_GRID = 12
#: Rows explained with SHAP (TreeSHAP on 200 rows of a 100-tree forest takes ~10 s).
SHAP_ROWS = 200
SHAP_BACKGROUND = 100
#: Points of predicted-vs-actual kept for drawing a regression.
REGRESSION_POINTS = 5000
SEED = 0
ALL_TASKS = frozenset({"binary", "multiclass", "regression"})
CLASSIFIERS = frozenset({"binary", "multiclass"})
BINARY = frozenset({"binary"})
SPLITS = ("train", "test")


# -- what an analysis sees -------------------------------------------------------

@dataclass(frozen=True, eq=False)
class VersionInfo:
    """The parts of a model version an analysis needs (a detached, immutable copy).

    Equal and hashed by (id, artifact checksum): that pair identifies an immutable version.
    """

    id: int
    name: str
    number: int
    task: str
    target: str
    features: tuple[str, ...]
    group_columns: tuple[str, ...]
    classes: tuple | None
    positive_class: Any
    feature_meta: tuple[dict, ...]
    artifact_sha256: str

    @classmethod
    def of(cls, version) -> VersionInfo:
        """Copy what is needed from a ModelVersion row."""
        return cls(id=version.id, name=version.model.name, number=version.number, task=version.task,
                   target=version.target, features=tuple(version.features),
                   group_columns=tuple(version.group_columns or ()),
                   classes=None if version.classes is None else tuple(version.classes),
                   positive_class=version.positive_class, feature_meta=tuple(version.feature_meta),
                   artifact_sha256=version.artifact_sha256)

    def __hash__(self) -> int:
        return hash((self.id, self.artifact_sha256))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VersionInfo) and (self.id, self.artifact_sha256) == (other.id, other.artifact_sha256)


class ModelContext:
    """A version's estimator and frames, with predictions computed once and shared by its analyses."""

    def __init__(self, info: VersionInfo, estimator: Any, train: pd.DataFrame, test: pd.DataFrame):
        self.info = info
        self.estimator = estimator
        self.frames = {"train": train, "test": test}
        self._lock = threading.Lock()
        self._predictions: dict[str, dict[str, np.ndarray]] = {}

    def X(self, split: str) -> pd.DataFrame:
        """Return the model inputs of ``split``."""
        return self.frames[split][list(self.info.features)]

    def y(self, split: str) -> np.ndarray:
        """Return the target of ``split``."""
        return self.frames[split][self.info.target].to_numpy()

    def n(self, split: str) -> int:
        """Return the number of rows of ``split``."""
        return len(self.frames[split])

    def _predict(self, split: str) -> dict[str, np.ndarray]:
        with self._lock:
            if split not in self._predictions:
                X = self.X(split)
                if self.info.task == "regression":
                    self._predictions[split] = {"pred": np.asarray(self.estimator.predict(X), dtype=float)}
                else:
                    proba = np.asarray(self.estimator.predict_proba(X), dtype=float)
                    classes = list(self.info.classes)
                    if self.info.task == "binary":
                        pos = classes.index(self.info.positive_class)
                        score = proba[:, pos]
                        neg = classes[1 - pos]
                        # Positive iff score >= 0.5: the rule of the threshold views at their default.
                        pred = np.where(score >= 0.5, self.info.positive_class, neg)
                        self._predictions[split] = {"proba": proba, "score": score, "pred": pred}
                    else:
                        pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
                        self._predictions[split] = {"proba": proba, "pred": _same_kind(pred, classes)}
            return self._predictions[split]

    def proba(self, split: str) -> np.ndarray:
        """Return class probabilities (columns in ``classes`` order)."""
        return self._predict(split)["proba"]

    def score(self, split: str) -> np.ndarray:
        """Return the positive-class score of a binary model."""
        return self._predict(split)["score"]

    def pred(self, split: str) -> np.ndarray:
        """Return predicted labels (binary: at threshold 0.5) or predicted values."""
        return self._predict(split)["pred"]

    def sample(self, split: str, rows: int) -> np.ndarray:
        """Return sorted row positions of a reproducible random sample of at most ``rows`` rows."""
        n = self.n(split)
        if n <= rows:
            return np.arange(n)
        rng = np.random.default_rng(SEED)
        return np.sort(rng.choice(n, size=rows, replace=False))


def _same_kind(pred: np.ndarray, classes: list) -> np.ndarray:
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes):
        return pred.astype(np.int64)
    return pred


# -- the analyses ------------------------------------------------------------------

def _metrics(split: str) -> Callable[[ModelContext, dict], dict]:
    def compute(ctx: ModelContext, params: dict) -> dict:
        from app.ml.metrics import classification_metrics, per_class_report, regression_metrics, residual_summary

        y = ctx.y(split)
        if ctx.info.task == "regression":
            pred = ctx.pred(split)
            summary = residual_summary(y, pred)
            summary.pop("residuals", None)
            rows = ctx.sample(split, REGRESSION_POINTS)
            return {"split": split, "n": ctx.n(split), "metrics": regression_metrics(y, pred), "residuals": summary,
                    "points": {"y_true": y[rows].astype(float).tolist(), "y_pred": pred[rows].tolist(),
                               "rows": rows.tolist(), "sample_size": int(len(rows))}}
        classes = list(ctx.info.classes)
        binary = ctx.info.task == "binary"
        y_score = ctx.score(split) if binary else ctx.proba(split)
        metrics = classification_metrics(y, ctx.pred(split), y_score=y_score, classes=classes,
                                         positive_class=ctx.info.positive_class if binary else None)
        return {"split": split, "n": ctx.n(split), "metrics": metrics, "threshold": 0.5 if binary else None,
                "per_class": per_class_report(y, ctx.pred(split), classes=classes)}
    return compute


def _sweep(split: str) -> Callable[[ModelContext, dict], dict]:
    def compute(ctx: ModelContext, params: dict) -> dict:
        from app.ml.threshold import threshold_sweep

        return threshold_sweep(ctx.y(split), ctx.score(split), positive_label=ctx.info.positive_class).to_dict()
    return compute


def _curves(split: str) -> Callable[[ModelContext, dict], dict]:
    def compute(ctx: ModelContext, params: dict) -> dict:
        from app.ml.threshold import threshold_sweep

        y = ctx.y(split)
        if ctx.info.task == "binary":
            sweep = threshold_sweep(y, ctx.score(split), positive_label=ctx.info.positive_class)
            return {"split": split, "n": ctx.n(split), "mode": "binary", "positive_class": ctx.info.positive_class,
                    "roc": sweep.roc_curve(), "pr": sweep.pr_curve(), "best_f1": sweep.best_f1_threshold()}
        per_class = {}
        proba = ctx.proba(split)
        for i, c in enumerate(ctx.info.classes):
            is_c = (y == c)
            if is_c.all() or not is_c.any():
                per_class[str(c)] = None  # one-vs-rest needs both sides
                continue
            sweep = threshold_sweep(is_c.astype(int), proba[:, i], positive_label=1)
            per_class[str(c)] = {"class": c, "roc": sweep.roc_curve(), "pr": sweep.pr_curve()}
        return {"split": split, "n": ctx.n(split), "mode": "one-vs-rest", "classes": list(ctx.info.classes),
                "per_class": per_class}
    return compute


def _calibration(ctx: ModelContext, params: dict) -> dict:
    from app.ml.calibration import calibration_data

    out: dict[str, Any] = {"mode": "binary" if ctx.info.task == "binary" else "one-vs-rest"}
    for split in SPLITS:
        y = ctx.y(split)
        if ctx.info.task == "binary":
            out[split] = calibration_data(y, ctx.score(split), n_bins=10, strategy="uniform",
                                          positive_label=ctx.info.positive_class)
        else:
            proba = ctx.proba(split)
            out[split] = {str(c): calibration_data((y == c).astype(int), proba[:, i], n_bins=10, positive_label=1)
                          for i, c in enumerate(ctx.info.classes) if (y == c).any()}
        out[f"n_{split}"] = ctx.n(split)
    return out


def _score_distributions(ctx: ModelContext, params: dict) -> dict:
    from app.ml.calibration import confidence_distributions, score_distributions

    out: dict[str, Any] = {}
    for split in SPLITS:
        y = ctx.y(split)
        if ctx.info.task == "binary":
            out[split] = score_distributions(y, ctx.score(split), bins=40, classes=list(ctx.info.classes))
        else:
            out[split] = {"per_class": {str(c): score_distributions(y, ctx.proba(split)[:, i], bins=40,
                                                                    classes=list(ctx.info.classes))
                                        for i, c in enumerate(ctx.info.classes)},
                          "confidence": confidence_distributions(y, ctx.proba(split), classes=list(ctx.info.classes),
                                                                 bins=40)}
    return out


def _scoring(task: str) -> str:
    return {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}[task]


def _permutation_importance(ctx: ModelContext, params: dict) -> dict:
    from app.ml.influence import permutation_importance_summary

    scoring = _scoring(ctx.info.task)
    result = permutation_importance_summary(ctx.estimator, ctx.X("test"), ctx.y("test"), scoring=scoring,
                                            n_repeats=IMPORTANCE_REPEATS, random_state=SEED,
                                            max_samples=IMPORTANCE_ROWS if ctx.n("test") > IMPORTANCE_ROWS else None)
    result = dict(result)
    result.update(split="test", sample_size=int(result.get("n_samples", min(ctx.n("test"), IMPORTANCE_ROWS))),
                  n_rows=ctx.n("test"), scoring_key=scoring)
    return result


def _impurity_importance(ctx: ModelContext, params: dict) -> dict:
    from app.ml.influence import impurity_importance

    result = impurity_importance(ctx.estimator, feature_names=list(ctx.info.features))
    if result is None:
        # Not every model has impurity importances (linear models, k-NN, ...): say so, do not fail.
        return {"available": False, "reason": "this model has no impurity-based importance"}
    return {"available": True, **result}


def _top_features(ctx: ModelContext, lookup: Callable[[str], Any], k: int) -> list[str]:
    """Rank features by permutation importance when ready, else impurity importance, else column order."""
    features = list(ctx.info.features)
    for kind in ("permutation_importance", "impurity_importance"):
        ranked = _ranking(lookup(kind), features)
        if ranked:
            return ranked[:k]
    return features[:k]


def _ranking(result: Any, features: list[str]) -> list[str]:
    if not isinstance(result, dict) or result.get("available") is False:
        return []
    names, scores = result.get("features"), result.get("mean")
    if not isinstance(names, list) or not isinstance(scores, list) or len(names) != len(scores):
        return []
    order = sorted(range(len(names)), key=lambda i: -(scores[i] if scores[i] is not None else -np.inf))
    return [names[i] for i in order if names[i] in features]


def _targets(ctx: ModelContext) -> list[tuple[str, int | None]]:
    """Return (key, target_index) of each output to explain: the positive class, every class, or the value."""
    if ctx.info.task == "regression":
        return [("value", None)]
    classes = list(ctx.info.classes)
    if ctx.info.task == "binary":
        return [(str(ctx.info.positive_class), classes.index(ctx.info.positive_class))]
    return [(str(c), i) for i, c in enumerate(classes)]


def _pdp_frame(ctx: ModelContext, rows: np.ndarray) -> pd.DataFrame:
    """Return sampled test inputs with integer numeric columns as floats (sklearn refuses integer PDP grids)."""
    X = ctx.X("test").iloc[rows]
    numeric = {m["name"] for m in ctx.info.feature_meta if m["kind"] == "numeric"}
    casts = {c: float for c in X.columns if c in numeric and pd.api.types.is_integer_dtype(X[c])}
    return X.astype(casts) if casts else X


def _content_key(X: Any) -> tuple:
    if isinstance(X, pd.DataFrame):
        digest = hashlib.blake2b(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes(), digest_size=16)
        return ("frame", tuple(map(str, X.columns)), X.shape, digest.digest())
    array = np.ascontiguousarray(X)
    return ("array", array.shape, str(array.dtype), hashlib.blake2b(array.tobytes(), digest_size=16).digest())


def _remembering(estimator: Any) -> Any:
    """Return a shallow copy of ``estimator`` whose predict/predict_proba remember outputs by input content.

    Partial dependence of a multiclass model is computed once per class over the
    same grids; with this the model runs once per grid point instead of once per
    class and grid point. The original estimator is untouched.
    """
    twin = copy.copy(estimator)
    for method in ("predict_proba", "predict"):
        bound = getattr(estimator, method, None)
        if bound is None:
            continue
        memory: dict[tuple, np.ndarray] = {}

        def remembered(X, _bound=bound, _memory=memory):
            key = _content_key(X)
            if key not in _memory:
                _memory[key] = np.asarray(_bound(X))
            return _memory[key].copy()

        setattr(twin, method, remembered)
    return twin


def _pdp_estimator(ctx: ModelContext) -> Any:
    return _remembering(ctx.estimator) if ctx.info.task == "multiclass" else ctx.estimator


def _pdp(ctx: ModelContext, params: dict, lookup: Callable[[str], Any]) -> dict:
    from app.ml.influence import partial_dependence_1d

    features = list(params.get("features") or _top_features(ctx, lookup, PDP_TOP_FEATURES))
    unknown = [f for f in features if f not in ctx.info.features]
    if unknown:
        raise ValueError(f"unknown features for partial dependence: {unknown}")
    rows = ctx.sample("test", PDP_ROWS)
    X = _pdp_frame(ctx, rows)
    kinds = {m["name"]: m["kind"] for m in ctx.info.feature_meta}
    estimator = _pdp_estimator(ctx)
    grids: dict[str, dict[str, dict]] = {}
    for key, target_index in _targets(ctx):
        grids[key] = {f: partial_dependence_1d(estimator, X, f, categorical=kinds[f] == "categorical",
                                               grid_resolution=PDP_GRID, ice_samples=PDP_ICE_LINES,
                                               target_index=target_index, random_state=SEED)
                      for f in features}
    return {"features": features, "targets": list(grids), "default_target": next(iter(grids)), "grids": grids,
            "split": "test", "sample_size": int(len(rows)), "n_rows": ctx.n("test")}


def _pdp_2d(ctx: ModelContext, params: dict, lookup: Callable[[str], Any]) -> dict:
    from app.ml.influence import partial_dependence_2d

    pair = list(params.get("features") or [])
    if not pair:
        numeric = {m["name"] for m in ctx.info.feature_meta if m["kind"] == "numeric"}
        ranked = _top_features(ctx, lookup, len(ctx.info.features))
        pair = [f for f in ranked if f in numeric][:2]
        if len(pair) < 2:
            pair = ranked[:2]
    if len(pair) != 2:
        return {"available": False, "reason": "the model has fewer than two features"}
    rows = ctx.sample("test", PDP_2D_ROWS)
    X = _pdp_frame(ctx, rows)
    kinds = {m["name"]: m["kind"] for m in ctx.info.feature_meta}
    flags = tuple(kinds[f] == "categorical" for f in pair)
    estimator = _pdp_estimator(ctx)
    grids = {key: partial_dependence_2d(estimator, X, pair, grid_resolution=PDP_2D_GRID,
                                        target_index=target_index, categorical=flags)
             for key, target_index in _targets(ctx)}
    return {"available": True, "features": pair, "targets": list(grids), "default_target": next(iter(grids)),
            "grids": grids, "split": "test", "sample_size": int(len(rows)), "n_rows": ctx.n("test")}


def _shap(ctx: ModelContext, params: dict) -> dict:
    from app.ml.explain import shap_sample

    target_index = None
    if ctx.info.task == "binary":
        target_index = list(ctx.info.classes).index(ctx.info.positive_class)
    result = dict(shap_sample(ctx.estimator, ctx.X("test"), task=ctx.info.task, n=SHAP_ROWS, random_state=SEED,
                              target_index=target_index, max_background=SHAP_BACKGROUND))
    # The test frame has a RangeIndex, so "index" holds row positions in the test set.
    result.update(split="test", sample_size=int(result.get("n_samples", 0)), n_rows=ctx.n("test"))
    return result


def _drift_reference(ctx: ModelContext, params: dict) -> dict:
    from app.ml.drift import reference_bins

    train = ctx.frames["train"]
    features = {m["name"]: reference_bins(train[m["name"]], kind=m["kind"]) for m in ctx.info.feature_meta}
    if ctx.info.task == "binary":
        prediction = reference_bins(ctx.score("train"), kind="numeric", n_bins=20)
        prediction_kind = "score"
    elif ctx.info.task == "multiclass":
        prediction = reference_bins(pd.Series(ctx.pred("train")).astype(str), kind="categorical")
        prediction_kind = "class"
    else:
        prediction = reference_bins(ctx.pred("train"), kind="numeric", n_bins=20)
        prediction_kind = "value"
    return {"split": "train", "n": ctx.n("train"), "features": features, "prediction": prediction,
            "prediction_kind": prediction_kind}


def _outlier_scorer(ctx: ModelContext, params: dict) -> dict:
    from app.ml.anomaly import OutlierScorer

    scorer = OutlierScorer(feature_meta=list(ctx.info.feature_meta)).fit(ctx.X("train"))
    return {"split": "train", "n": ctx.n("train"), "scorer": scorer.to_dict()}


def _as_dict(result: Any) -> Any:
    return result.to_dict() if hasattr(result, "to_dict") else result


# -- after-ready steps ---------------------------------------------------------------

KEY_METRICS = {
    "binary": ("accuracy", "roc_auc", "pr_auc", "f1", "precision", "recall"),
    "multiclass": ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc"),
    "regression": ("rmse", "mae", "r2"),
}


def _store_key_metrics(db: Database, version_id: int, payload: dict) -> None:
    """Copy the headline test metrics onto the version row (the overview reads them from there)."""
    from data.registry import ModelVersion

    with db.session() as session:
        version = session.get(ModelVersion, version_id)
        if version is None:
            return
        metrics = payload.get("metrics", {})
        key = {k: metrics.get(k) for k in KEY_METRICS[version.task] if k in metrics}
        key["n"] = payload.get("n")
        version.metrics = key


# -- the table -------------------------------------------------------------------------

@dataclass(frozen=True)
class AnalysisKind:
    """One analysis: its name, the tasks it applies to, and how to compute it."""

    name: str
    title: str
    tasks: frozenset[str]
    compute: Callable[..., dict]
    #: compute(ctx, params, lookup) instead of compute(ctx, params): it reads other results.
    uses_lookup: bool = False
    on_ready: Callable[[Database, int, Any], None] | None = None
    default: bool = True
    sampled: bool = False


_KINDS = (
    AnalysisKind("metrics_test", "Metrics (test)", ALL_TASKS, _metrics("test"), on_ready=_store_key_metrics),
    AnalysisKind("metrics_train", "Metrics (train)", ALL_TASKS, _metrics("train")),
    AnalysisKind("sweep_test", "Threshold sweep (test)", BINARY, _sweep("test")),
    AnalysisKind("sweep_train", "Threshold sweep (train)", BINARY, _sweep("train")),
    AnalysisKind("curves_test", "ROC and PR curves (test)", CLASSIFIERS, _curves("test")),
    AnalysisKind("curves_train", "ROC and PR curves (train)", CLASSIFIERS, _curves("train")),
    AnalysisKind("calibration", "Calibration", CLASSIFIERS, _calibration),
    AnalysisKind("score_distributions", "Score distributions", CLASSIFIERS, _score_distributions),
    AnalysisKind("permutation_importance", "Permutation importance", ALL_TASKS, _permutation_importance,
                 sampled=True),
    AnalysisKind("impurity_importance", "Impurity importance", ALL_TASKS, _impurity_importance),
    AnalysisKind("pdp", "Partial dependence (top features)", ALL_TASKS, _pdp, uses_lookup=True, sampled=True),
    AnalysisKind("pdp_2d", "Two-feature partial dependence", ALL_TASKS, _pdp_2d, uses_lookup=True, sampled=True),
    AnalysisKind("shap", "SHAP sample", ALL_TASKS, _shap, sampled=True),
    AnalysisKind("drift_reference", "Drift reference bins", ALL_TASKS, _drift_reference),
    AnalysisKind("outlier_scorer", "Outlier scorer", ALL_TASKS, _outlier_scorer),
)

#: Analysis name -> its entry (read-only).
ANALYSES = MappingProxyType({k.name: k for k in _KINDS})


def analyses_for(task: str) -> list[AnalysisKind]:
    """Return the default analyses that apply to ``task``, in the order they are queued."""
    if task not in ALL_TASKS:
        raise ValueError(f"unknown task {task!r}")
    return [k for k in _KINDS if k.default and task in k.tasks]


# -- running ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def _context(info: VersionInfo, artifact_path: str, train_path: str, test_path: str) -> ModelContext:
    from data.registry import _estimator, _frames

    estimator = _estimator(info.id, artifact_path, info.artifact_sha256)
    train, test = _frames(info.id, train_path, test_path)
    return ModelContext(info, estimator, train, test)


def model_context(version) -> ModelContext:
    """Return the (per-process cached) context of a version row: estimator, frames, shared predictions."""
    return _context(VersionInfo.of(version), version.artifact_path, version.train_path, version.test_path)


def release_contexts() -> None:
    """Drop cached contexts (and their predictions) of this process; the runner calls it when idle."""
    _context.cache_clear()


def run_analysis(db: Database, version_id: int, kind: str, params: dict | None = None) -> dict:
    """Compute one analysis of one version and return its payload (nothing is stored here)."""
    from data.analysis_cache import get_result
    from data.registry import ModelVersion

    spec = ANALYSES[kind]
    with db.session() as session:
        version = session.get(ModelVersion, version_id)
        if version is None:
            raise ValueError(f"model version {version_id} no longer exists")
        if version.task not in spec.tasks:
            raise ValueError(f"{spec.title} does not apply to a {version.task} model")
        ctx = model_context(version)
    params = dict(params or {})
    if spec.uses_lookup:
        def lookup(other: str) -> Any:
            with db.session() as s:
                return get_result(s, version_id, other)
        return spec.compute(ctx, params, lookup)
    return spec.compute(ctx, params)
