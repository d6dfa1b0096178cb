"""Headline metrics for classifiers and regressors, as plain dicts.

Every function returns JSON-friendly values (Python floats, ints, lists).
A metric that is undefined for the given data (ROC AUC when only one class
is present, R^2 with a single row, ...) is ``None``: never NaN and never an
exception. Inputs that make no sense (different lengths, an empty array,
NaN scores, a predicted label outside ``classes``) raise ``ValueError``
naming the bad value.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "METRIC_INFO",
    "classification_metrics",
    "per_class_report",
    "regression_metrics",
    "residual_summary",
]


# ---------------------------------------------------------------------------
# Small shared helpers (also used by threshold, calibration and fairness).
# ---------------------------------------------------------------------------

def _as_1d(values: Any, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D array or raise ValueError naming it."""
    if values is None:
        raise ValueError(f"{name} is required, got None")
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _as_float_1d(values: Any, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """Return a finite float64 1-D array or raise ValueError naming ``name``."""
    arr = _as_1d(values, name)
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}") from exc
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)][0]
        raise ValueError(f"{name} must be finite, found {bad!r}")
    return arr


def _check_same_length(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{a_name} has {len(a)} rows but {b_name} has {len(b)}")


def _py(value: Any) -> Any:
    """Convert a numpy scalar to the matching plain Python value."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _finite_or_none(value: Any) -> float | None:
    """Return ``float(value)``, or None when it is None, NaN or infinite."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------

def classification_metrics(y_true, y_pred, *, y_score=None, classes=None,
                           positive_class=None) -> dict:
    """Headline classification metrics as a flat dict.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels.
    y_score : array-like of shape (n,) or (n, n_classes), optional
        Binary: the score of ``positive_class`` (higher means more likely
        positive). Multiclass: class probabilities, columns ordered as
        ``classes``. Enables ``roc_auc``, ``pr_auc``, ``log_loss`` and
        (binary only) ``brier``.
    classes : sequence, optional
        All class labels, in the column order of ``y_score``. Defaults to the
        sorted union of ``y_true`` and ``y_pred``.
    positive_class : label, optional
        Binary only: the class scored by ``y_score``. Defaults to
        ``classes[1]``.

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``balanced_accuracy``, ``precision_macro``,
        ``recall_macro``, ``f1_macro``, ``precision_weighted``,
        ``recall_weighted``, ``f1_weighted``, ``mcc``; for binary tasks also
        ``precision``, ``recall``, ``f1`` of the positive class; and
        ``roc_auc``, ``pr_auc``, ``log_loss``, ``brier`` (None when no
        ``y_score`` or when undefined; ``brier`` is None for multiclass).
        Precision, recall and F1 use ``zero_division=0``. ROC AUC and
        PR AUC are macro averages over one-vs-rest for multiclass, and None
        when any class has no rows (as the per-class value is undefined).

    Examples
    --------
    >>> m = classification_metrics([0, 1, 1, 0], [0, 1, 0, 0],
    ...                            y_score=[0.1, 0.9, 0.4, 0.3])
    >>> m["accuracy"], m["recall"], m["roc_auc"]
    (0.75, 0.5, 1.0)
    """
    y_true = _as_1d(y_true, "y_true")
    y_pred = _as_1d(y_pred, "y_pred")
    _check_same_length(y_true, "y_true", y_pred, "y_pred")
    if y_true.size == 0:
        raise ValueError("y_true is empty")
    if classes is None:
        classes_arr = np.unique(np.concatenate([y_true, y_pred]))
        if positive_class is not None and positive_class not in list(classes_arr):
            classes_arr = np.unique(np.concatenate([classes_arr, [positive_class]]))
    else:
        classes_arr = _as_1d(classes, "classes")
        if len(np.unique(classes_arr)) != len(classes_arr):
            raise ValueError(f"classes has duplicates: {list(classes_arr)!r}")
        for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
            unknown = np.setdiff1d(np.unique(arr), classes_arr)
            if unknown.size:
                raise ValueError(f"{name} has labels not in classes: {unknown.tolist()!r}")
    if len(classes_arr) < 2 and classes is not None:
        raise ValueError(f"classes needs at least two labels, got {list(classes_arr)!r}")
    binary = len(classes_arr) <= 2
    labels = list(classes_arr)
    if positive_class is None:
        positive_class = labels[-1]
    elif binary and positive_class not in labels:
        raise ValueError(f"positive_class {positive_class!r} is not one of classes {labels!r}")

    out: dict[str, Any] = {"n": int(len(y_true))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["accuracy"] = float(skm.accuracy_score(y_true, y_pred))
        out["balanced_accuracy"] = _finite_or_none(skm.balanced_accuracy_score(y_true, y_pred))
        for avg in ("macro", "weighted"):
            p, r, f, _ = skm.precision_recall_fscore_support(
                y_true, y_pred, labels=labels, average=avg, zero_division=0)
            out[f"precision_{avg}"] = float(p)
            out[f"recall_{avg}"] = float(r)
            out[f"f1_{avg}"] = float(f)
        out["mcc"] = _finite_or_none(skm.matthews_corrcoef(y_true, y_pred))
        if binary:
            p, r, f, _ = skm.precision_recall_fscore_support(
                y_true, y_pred, labels=[positive_class], average=None, zero_division=0)
            out["precision"] = float(p[0])
            out["recall"] = float(r[0])
            out["f1"] = float(f[0])
    out.update(roc_auc=None, pr_auc=None, log_loss=None, brier=None)
    if y_score is not None:
        out.update(_score_metrics(y_true, y_score, labels, positive_class, binary))
    return out


def _score_metrics(y_true, y_score, labels, positive_class, binary) -> dict:
    """ROC AUC, average precision, log loss and Brier score from scores."""
    score = np.asarray(y_score, dtype=np.float64)
    if binary and score.ndim == 2 and score.shape[1] == 2:
        score = score[:, labels.index(positive_class)]
    if binary:
        score = _as_float_1d(score, "y_score")
        _check_same_length(y_true, "y_true", score, "y_score")
        if len(labels) < 2:
            return {}
        y_bin = (y_true == positive_class).astype(int)
        negative = labels[0] if labels[1] == positive_class else labels[1]
        proba = np.zeros((len(score), 2))
        order = sorted([negative, positive_class])
        proba[:, order.index(positive_class)] = score
        proba[:, order.index(negative)] = 1.0 - score
        res = {"roc_auc": _binary_auc(y_bin, score), "pr_auc": _binary_ap(y_bin, score)}
        if score.min() >= 0.0 and score.max() <= 1.0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res["log_loss"] = _finite_or_none(skm.log_loss(y_true, proba, labels=order))
                res["brier"] = _finite_or_none(skm.brier_score_loss(y_bin, score))
        return res
    if score.ndim != 2 or score.shape != (len(y_true), len(labels)):
        raise ValueError(f"y_score must have shape ({len(y_true)}, {len(labels)}) for "
                         f"{len(labels)} classes, got {score.shape}")
    if not np.all(np.isfinite(score)):
        raise ValueError("y_score must be finite, found NaN or infinity")
    aucs = [_binary_auc((y_true == c).astype(int), score[:, i]) for i, c in enumerate(labels)]
    aps = [_binary_ap((y_true == c).astype(int), score[:, i]) for i, c in enumerate(labels)]
    res = {
        "roc_auc": None if any(a is None for a in aucs) else float(np.mean(aucs)),
        "pr_auc": None if any(a is None for a in aps) else float(np.mean(aps)),
    }
    if score.min() >= 0.0 and score.max() <= 1.0:
        # sklearn's log_loss orders the probability columns by sorted label.
        order = sorted(range(len(labels)), key=lambda i: labels[i])
        sorted_labels = [labels[i] for i in order]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res["log_loss"] = _finite_or_none(
                skm.log_loss(y_true, score[:, order], labels=sorted_labels))
    return res


def _binary_auc(y_bin: np.ndarray, score: np.ndarray) -> float | None:
    if y_bin.min() == y_bin.max():
        return None
    return _finite_or_none(skm.roc_auc_score(y_bin, score))


def _binary_ap(y_bin: np.ndarray, score: np.ndarray) -> float | None:
    if y_bin.max() == 0:
        return None
    return _finite_or_none(skm.average_precision_score(y_bin, score))


def per_class_report(y_true, y_pred, *, classes) -> list[dict]:
    """Precision, recall, F1 and support per class.

    The numbers equal ``sklearn.metrics.classification_report`` with
    ``labels=classes`` (zero division gives 0.0).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted labels.
    classes : sequence
        The classes to report, in this order.

    Returns
    -------
    list of dict
        One dict per class: ``class``, ``precision``, ``recall``, ``f1``,
        ``support`` (number of true rows of the class).

    Examples
    --------
    >>> per_class_report([0, 1, 1], [0, 1, 0], classes=[0, 1])[1]
    {'class': 1, 'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'support': 2}
    """
    y_true = _as_1d(y_true, "y_true")
    y_pred = _as_1d(y_pred, "y_pred")
    _check_same_length(y_true, "y_true", y_pred, "y_pred")
    if classes is None or len(classes) == 0:
        raise ValueError(f"classes must list at least one label, got {classes!r}")
    labels = list(_as_1d(classes, "classes"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, s = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=None, zero_division=0)
    return [
        {"class": _py(c), "precision": float(p[i]), "recall": float(r[i]),
         "f1": float(f[i]), "support": int(s[i])}
        for i, c in enumerate(labels)
    ]


# ---------------------------------------------------------------------------
# Regression
# ---------------------------------------------------------------------------

def _regression_inputs(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true = _as_float_1d(y_true, "y_true")
    y_pred = _as_float_1d(y_pred, "y_pred")
    _check_same_length(y_true, "y_true", y_pred, "y_pred")
    return y_true, y_pred


def regression_metrics(y_true, y_pred) -> dict:
    """Headline regression metrics as a flat dict.

    Residuals are ``y_true - y_pred`` (positive: the model predicted too low).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted values.

    Returns
    -------
    dict
        ``rmse``, ``mae``, ``r2`` (None with fewer than two rows),
        ``median_ae``, ``max_error``, ``mean_residual``, ``n``.

    Examples
    --------
    >>> regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])["max_error"]
    2.0
    """
    y_true, y_pred = _regression_inputs(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = skm.r2_score(y_true, y_pred) if len(y_true) >= 2 else None
    return {
        "rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": _finite_or_none(r2),
        "median_ae": float(skm.median_absolute_error(y_true, y_pred)),
        "max_error": float(skm.max_error(y_true, y_pred)),
        "mean_residual": float(np.mean(y_true - y_pred)),
        "n": int(len(y_true)),
    }


def residual_summary(y_true, y_pred, *, n_deciles=10) -> dict:
    """Residuals and the error in each decile (quantile bin) of prediction.

    Bin edges are quantiles of ``y_pred``; tied edges are merged, so heavily
    tied predictions give fewer than ``n_deciles`` bins. A row belongs to
    bin ``i`` when ``edges[i] <= y_pred < edges[i + 1]`` (the last bin also
    includes its upper edge).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted values.
    n_deciles : int, default 10
        Number of quantile bins asked for.

    Returns
    -------
    dict
        ``residuals`` (``y_true - y_pred``, one per row), ``edges``
        (bin edges, length ``n_bins + 1``), and per bin: ``count``,
        ``mean_predicted``, ``mean_residual``, ``mae``, ``rmse``.

    Examples
    --------
    >>> s = residual_summary([1, 2, 3, 4], [1, 2, 3, 6], n_deciles=2)
    >>> s["edges"], s["mae"]
    ([1.0, 2.5, 6.0], [0.0, 1.0])
    """
    y_true, y_pred = _regression_inputs(y_true, y_pred)
    if isinstance(n_deciles, bool) or not isinstance(n_deciles, (int, np.integer)) or n_deciles < 1:
        raise ValueError(f"n_deciles must be a positive integer, got {n_deciles!r}")
    residuals = y_true - y_pred
    edges = np.unique(np.quantile(y_pred, np.linspace(0.0, 1.0, int(n_deciles) + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0]])
    n_bins = len(edges) - 1
    bin_ids = np.searchsorted(edges[1:-1], y_pred, side="right")
    count = np.bincount(bin_ids, minlength=n_bins)
    abs_sum = np.bincount(bin_ids, weights=np.abs(residuals), minlength=n_bins)
    sq_sum = np.bincount(bin_ids, weights=residuals ** 2, minlength=n_bins)
    res_sum = np.bincount(bin_ids, weights=residuals, minlength=n_bins)
    pred_sum = np.bincount(bin_ids, weights=y_pred, minlength=n_bins)

    def per_bin(total: np.ndarray, *, root: bool = False) -> list:
        values = []
        for t, c in zip(total, count):
            if c == 0:
                values.append(None)
            else:
                v = t / c
                values.append(float(math.sqrt(v) if root else v))
        return values

    return {
        "residuals": residuals.tolist(),
        "edges": edges.tolist(),
        "count": count.astype(int).tolist(),
        "mean_predicted": per_bin(pred_sum),
        "mean_residual": per_bin(res_sum),
        "mae": per_bin(abs_sum),
        "rmse": per_bin(sq_sum, root=True),
    }


# ---------------------------------------------------------------------------
# Plain-English descriptions (tooltips for stakeholders)
# ---------------------------------------------------------------------------

def _info(label: str, higher_is_better: bool | None, meaning: str) -> dict:
    return {"label": label, "higher_is_better": higher_is_better, "meaning": meaning}


#: Label, direction and one-sentence meaning of every metric key above.
#: ``higher_is_better`` is None for counts and signed values with no better side.
METRIC_INFO: dict[str, dict] = {
    "n": _info("Rows", None, "How many rows the numbers were computed on."),
    "accuracy": _info("Accuracy", True, "Share of all rows the model labelled correctly."),
    "balanced_accuracy": _info(
        "Balanced accuracy", True,
        "Average of the share found in each true class, so rare classes count as much as common ones."),
    "precision": _info(
        "Precision", True, "Of the rows the model flagged as positive, the share that really were positive."),
    "recall": _info("Recall", True, "Of the truly positive rows, the share the model caught."),
    "f1": _info("F1", True, "A single score balancing precision and recall; high only when both are high."),
    "precision_macro": _info(
        "Precision (macro)", True, "Precision averaged over classes, each class weighted equally."),
    "recall_macro": _info("Recall (macro)", True, "Recall averaged over classes, each class weighted equally."),
    "f1_macro": _info("F1 (macro)", True, "F1 averaged over classes, each class weighted equally."),
    "precision_weighted": _info(
        "Precision (weighted)", True, "Precision averaged over classes, weighted by how common each class is."),
    "recall_weighted": _info(
        "Recall (weighted)", True, "Recall averaged over classes, weighted by how common each class is."),
    "f1_weighted": _info(
        "F1 (weighted)", True, "F1 averaged over classes, weighted by how common each class is."),
    "mcc": _info(
        "Matthews correlation", True,
        "Agreement between predictions and truth from -1 (always wrong) through 0 (no better than chance) to 1 (perfect)."),
    "roc_auc": _info(
        "ROC AUC", True,
        "Chance that a random positive row gets a higher score than a random negative one (0.5 is guessing)."),
    "pr_auc": _info(
        "PR AUC (average precision)", True,
        "Average precision over all recall levels; compare it with the share of positives, which is what guessing gets."),
    "log_loss": _info(
        "Log loss", False, "Penalty for confident wrong probabilities; lower means the probabilities are more trustworthy."),
    "brier": _info(
        "Brier score", False, "Mean squared gap between the predicted probability and what happened (0 is perfect)."),
    "rmse": _info(
        "RMSE", False, "Typical size of a prediction error, in the target's units, with large misses weighted more."),
    "mae": _info("MAE", False, "Average size of a prediction error, in the target's units."),
    "r2": _info(
        "R\u00b2", True, "Share of the variation in the target the model explains (1 is perfect, 0 is no better than the average)."),
    "median_ae": _info(
        "Median absolute error", False, "Half of the predictions miss by less than this, in the target's units."),
    "max_error": _info("Max error", False, "The single worst miss, in the target's units."),
    "mean_residual": _info(
        "Mean residual", None,
        "Average of actual minus predicted: positive means the model predicts too low on average, negative too high."),
    "specificity": _info(
        "Specificity", True, "Of the truly negative rows, the share the model correctly left unflagged."),
    "fpr": _info(
        "False positive rate", False, "Of the truly negative rows, the share the model wrongly flagged."),
    "predicted_positive_rate": _info(
        "Flagged rate", None, "Share of all rows the model flags as positive at this threshold."),
    "selection_rate": _info(
        "Selection rate", None, "Share of a group's rows the model flags as positive."),
    "tpr": _info("True positive rate", True, "Of a group's truly positive rows, the share the model caught."),
}
