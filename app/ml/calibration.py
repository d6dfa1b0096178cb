"""Calibration (reliability) data and score distributions, as plain dicts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app.ml.metrics import _as_1d, _as_float_1d, _check_same_length, _py

__all__ = ["calibration_data", "confidence_distributions", "score_distributions"]


def _check_bins(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def calibration_data(y_true, y_prob, *, n_bins=10, strategy="uniform", positive_label=1) -> dict:
    """Reliability-diagram data for a binary classifier.

    ``prob_true`` and ``prob_pred`` equal ``sklearn.calibration.calibration_curve``
    on the same inputs (empty bins are left out, as there); ``counts`` gives
    the number of rows in each non-empty bin.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels (at most two distinct values).
    y_prob : array-like of shape (n,)
        Predicted probability of ``positive_label``, in [0, 1].
    n_bins : int, default 10
        Number of bins asked for.
    strategy : {"uniform", "quantile"}, default "uniform"
        Equal-width bins on [0, 1], or bins holding equal numbers of rows.
    positive_label : label, default 1
        The positive class.

    Returns
    -------
    dict
        ``prob_true`` (share of positives per bin), ``prob_pred`` (mean
        predicted probability per bin), ``counts`` (rows per bin), ``brier``
        (Brier score over all rows), ``n``.

    Examples
    --------
    >>> d = calibration_data([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9], n_bins=2)
    >>> d["prob_true"], d["counts"]
    ([0.0, 1.0], [2, 2])
    """
    y_true = _as_1d(y_true, "y_true")
    y_prob = _as_float_1d(y_prob, "y_prob")
    _check_same_length(y_true, "y_true", y_prob, "y_prob")
    n_bins = _check_bins(n_bins, "n_bins")
    if y_prob.min() < 0.0 or y_prob.max() > 1.0:
        raise ValueError(f"y_prob must lie in [0, 1], found values in "
                         f"[{y_prob.min()!r}, {y_prob.max()!r}]")
    labels = np.unique(y_true)
    if len(labels) > 2:
        raise ValueError(f"y_true must be binary, found labels {labels.tolist()!r}")
    if len(labels) == 2 and positive_label not in labels.tolist():
        raise ValueError(f"positive_label {positive_label!r} is not one of y_true's labels "
                         f"{labels.tolist()!r}")
    if strategy == "quantile":
        edges = np.percentile(y_prob, np.linspace(0.0, 1.0, n_bins + 1) * 100)
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    y_bin = (y_true == positive_label).astype(np.float64)
    # Same bin assignment as scikit-learn's calibration_curve.
    bin_ids = np.searchsorted(edges[1:-1], y_prob)
    sums = np.bincount(bin_ids, weights=y_prob, minlength=n_bins)
    trues = np.bincount(bin_ids, weights=y_bin, minlength=n_bins)
    totals = np.bincount(bin_ids, minlength=n_bins)
    nonzero = totals != 0
    return {
        "prob_true": (trues[nonzero] / totals[nonzero]).tolist(),
        "prob_pred": (sums[nonzero] / totals[nonzero]).tolist(),
        "counts": totals[nonzero].astype(int).tolist(),
        "brier": float(np.mean((y_prob - y_bin) ** 2)),
        "n": int(len(y_true)),
    }


def _edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Shared bin edges: [0, 1] for probabilities, else the data's range."""
    lo, hi = (0.0, 1.0)
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        lo, hi = float(values.min()), float(values.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def _hist(values: np.ndarray, edges: np.ndarray) -> list[int]:
    return np.histogram(values, bins=edges)[0].astype(int).tolist()


def score_distributions(y_true, y_score, *, bins=40, classes=None) -> dict:
    """Histograms of one score, split by true class, on shared bin edges.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    y_score : array-like of shape (n,)
        Score of the positive class. Edges span [0, 1] when every score is
        a probability, otherwise the scores' range.
    bins : int, default 40
        Number of equal-width bins.
    classes : sequence, optional
        Classes to report, in this order; defaults to the sorted labels of
        ``y_true``. A class with no rows gets zero counts.

    Returns
    -------
    dict
        ``edges`` (``bins + 1`` floats), ``classes`` (labels), ``counts``
        (one list per class), ``share`` (counts divided by the class's rows,
        so classes of very different size can be compared), ``totals``.

    Examples
    --------
    >>> d = score_distributions([0, 0, 1], [0.1, 0.2, 0.9], bins=2)
    >>> d["edges"], d["counts"]
    ([0.0, 0.5, 1.0], [[2, 0], [0, 1]])
    """
    y_true = _as_1d(y_true, "y_true")
    score = _as_float_1d(y_score, "y_score", allow_empty=True)
    _check_same_length(y_true, "y_true", score, "y_score")
    bins = _check_bins(bins, "bins")
    labels = list(np.unique(y_true)) if classes is None else list(_as_1d(classes, "classes"))
    edges = _edges(score, bins)
    counts, shares, totals = [], [], []
    for c in labels:
        values = score[y_true == c]
        h = _hist(values, edges)
        counts.append(h)
        totals.append(int(values.size))
        shares.append([v / values.size if values.size else 0.0 for v in h])
    return {"edges": edges.tolist(), "classes": [_py(c) for c in labels], "counts": counts,
            "share": shares, "totals": totals}


def confidence_distributions(y_true, proba, *, classes, bins=40) -> dict:
    """Histograms of the top class probability, split by correct and incorrect.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels.
    proba : array-like of shape (n, n_classes)
        Class probabilities, columns ordered as ``classes``.
    classes : sequence
        Class labels in column order.
    bins : int, default 40
        Number of equal-width bins on [0, 1].

    Returns
    -------
    dict
        ``edges``, ``correct`` and ``incorrect`` (counts per bin),
        ``n_correct``, ``n_incorrect``, ``accuracy`` (None when empty),
        ``mean_confidence`` (None when empty).

    Examples
    --------
    >>> d = confidence_distributions([0, 1], [[0.9, 0.1], [0.8, 0.2]], classes=[0, 1], bins=2)
    >>> d["correct"], d["incorrect"], d["accuracy"]
    ([0, 1], [0, 1], 0.5)
    """
    y_true = _as_1d(y_true, "y_true")
    if classes is None or len(classes) < 2:
        raise ValueError(f"classes must list at least two labels, got {classes!r}")
    labels = _as_1d(classes, "classes")
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (len(y_true), len(labels)):
        raise ValueError(f"proba must have shape ({len(y_true)}, {len(labels)}), got {proba.shape}")
    if not np.all(np.isfinite(proba)) or (proba.size and (proba.min() < 0 or proba.max() > 1)):
        raise ValueError("proba must hold probabilities in [0, 1]")
    bins = _check_bins(bins, "bins")
    edges = np.linspace(0.0, 1.0, bins + 1)
    if len(y_true) == 0:
        zero = [0] * bins
        return {"edges": edges.tolist(), "correct": zero, "incorrect": list(zero),
                "n_correct": 0, "n_incorrect": 0, "accuracy": None, "mean_confidence": None}
    confidence = proba.max(axis=1)
    correct = labels[proba.argmax(axis=1)] == y_true
    n_correct = int(correct.sum())
    mean_conf = float(confidence.mean())
    return {
        "edges": edges.tolist(),
        "correct": _hist(confidence[correct], edges),
        "incorrect": _hist(confidence[~correct], edges),
        "n_correct": n_correct,
        "n_incorrect": int(len(y_true) - n_correct),
        "accuracy": n_correct / len(y_true),
        "mean_confidence": mean_conf if math.isfinite(mean_conf) else None,
    }
