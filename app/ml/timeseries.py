"""Performance over time from per-bucket aggregates, and alert rule evaluation.

The SQL layer groups the prediction log by time bucket and returns sums and
counts only; nothing here needs individual records. Every function takes
those aggregates and returns plain lists and dicts.

Per-bucket aggregates (one dict per bucket, ``time`` = bucket start):

* classifiers: ``n`` (predictions), ``n_labelled``, ``correct``; binary
  classifiers add ``tp, fp, tn, fn`` (positive class = the model's positive
  label) and, optionally, ``pos_hist`` / ``neg_hist`` (histograms of the
  positive-class score over fixed bins, for labelled positives and
  negatives) from which ROC AUC is computed.
* regressors: ``n``, ``n_labelled``, ``sum_sq_err``, ``sum_abs_err`` and
  optionally ``sum_err`` (signed, prediction minus truth) for the bias.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

TASKS = ("binary", "multiclass", "regression")
COMPARISONS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _int_field(row: Mapping, key: str, *, index: int, required: bool = True) -> int | None:
    value = row.get(key)
    if value is None:
        if required:
            raise ValueError(f"bucket {index} has no {key!r}")
        return None
    if isinstance(value, bool):
        raise ValueError(f"bucket {index}: {key} must be a count, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"bucket {index}: {key} must be a count, got {value!r}") from None
    if not math.isfinite(f) or f < 0 or f != int(f):
        raise ValueError(f"bucket {index}: {key} must be a non-negative integer, got {value!r}")
    return int(f)


def _float_field(row: Mapping, key: str, *, index: int, required: bool = True,
                 non_negative: bool = True) -> float | None:
    value = row.get(key)
    if value is None:
        if required:
            raise ValueError(f"bucket {index} has no {key!r}")
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"bucket {index}: {key} must be a number, got {value!r}") from None
    if not math.isfinite(f) or (non_negative and f < 0):
        raise ValueError(f"bucket {index}: {key} must be a finite{' non-negative' if non_negative else ''} "
                         f"number, got {value!r}")
    return f


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den > 0 else None


def _f1(tp: int, fp: int, fn: int) -> float | None:
    return _ratio(2 * tp, 2 * tp + fp + fn)


def roc_auc_from_histograms(pos_counts: Sequence[float], neg_counts: Sequence[float]) -> float | None:
    """ROC AUC from score histograms of labelled positives and negatives.

    Both histograms use the same bins, ordered by increasing score. A
    positive beats every negative in a lower bin and ties (counts one half)
    with negatives in its own bin::

        AUC = sum_i pos_i * (neg_below_i + neg_i / 2) / (P * N)

    This is exactly sklearn's ``roc_auc_score`` on the scores replaced by
    their bin index; with fine bins it approaches the AUC of raw scores.

    Parameters
    ----------
    pos_counts, neg_counts : sequence of float of shape (n_bins,)

    Returns
    -------
    float or None
        None when there are no positives or no negatives.

    Examples
    --------
    >>> roc_auc_from_histograms([0, 0, 5], [5, 0, 0])
    1.0
    >>> roc_auc_from_histograms([1, 1], [1, 1])
    0.5
    >>> roc_auc_from_histograms([0, 0], [3, 1]) is None
    True
    """
    pos = np.asarray(pos_counts, dtype=float)
    neg = np.asarray(neg_counts, dtype=float)
    if pos.ndim != 1 or pos.size == 0:
        raise ValueError(f"pos_counts must be a non-empty 1-D sequence, got {pos_counts!r}")
    if pos.shape != neg.shape:
        raise ValueError(f"pos_counts has {pos.size} bins but neg_counts has {neg.size}")
    for name, arr in (("pos_counts", pos), ("neg_counts", neg)):
        if not np.all(np.isfinite(arr)) or (arr < 0).any():
            raise ValueError(f"{name} must hold finite non-negative counts, got {arr.tolist()}")
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    neg_below = np.cumsum(neg) - neg
    return float(np.sum(pos * (neg_below + 0.5 * neg)) / (n_pos * n_neg))


def bucket_performance(bucket_rows: Sequence[Mapping[str, Any]], *, task: str, time_key: str = "time") -> dict:
    """Per-bucket performance from SQL aggregates, as columns of equal length.

    Parameters
    ----------
    bucket_rows : list of dict
        One dict per time bucket, see the module docstring for the fields
        per task. ``correct`` may be omitted for binary tasks (``tp + tn``).
    task : {"binary", "multiclass", "regression"}
    time_key : str, default="time"
        Key of the bucket start in each row; passed through unchanged.

    Returns
    -------
    dict
        Lists aligned on ``time`` (sorted as given): ``time, n, n_labelled,
        label_share`` and, for classifiers, ``accuracy`` (+ ``precision,
        recall, f1, roc_auc`` for binary); for regressors ``rmse, mae`` and
        ``bias`` (when ``sum_err`` is given). A metric is None in buckets
        without labels (F1/precision/recall also when undefined, i.e. the
        zero-division case; ROC AUC when a class is absent or no histograms
        were given). ``overall`` holds the same metrics pooled over all
        buckets.

    Examples
    --------
    >>> rows = [{"time": "2026-01-01", "n": 10, "n_labelled": 4, "tp": 2, "fp": 1, "tn": 1, "fn": 0},
    ...         {"time": "2026-01-02", "n": 5, "n_labelled": 0, "tp": 0, "fp": 0, "tn": 0, "fn": 0}]
    >>> out = bucket_performance(rows, task="binary")
    >>> out["accuracy"], out["f1"], out["label_share"]
    ([0.75, None], [0.8, None], [0.4, 0.0])
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if isinstance(bucket_rows, Mapping) or not isinstance(bucket_rows, Sequence):
        raise ValueError("bucket_rows must be a list of dicts, one per bucket")
    cols: dict[str, list] = {"time": [], "n": [], "n_labelled": [], "label_share": []}
    if task == "regression":
        metric_names = ["rmse", "mae", "bias"]
    elif task == "binary":
        metric_names = ["accuracy", "precision", "recall", "f1", "roc_auc"]
    else:
        metric_names = ["accuracy"]
    for name in metric_names:
        cols[name] = []
    pooled: dict[str, float] = {}
    pooled_pos: np.ndarray | None = None
    pooled_neg: np.ndarray | None = None
    any_bias = True

    def add(key: str, value: float | None) -> None:
        if value is not None:
            pooled[key] = pooled.get(key, 0.0) + value

    for i, row in enumerate(bucket_rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"bucket {i} must be a dict, got {type(row).__name__}")
        if time_key not in row:
            raise ValueError(f"bucket {i} has no {time_key!r}")
        n_lab = _int_field(row, "n_labelled", index=i)
        n = _int_field(row, "n", index=i, required=False)
        n = n_lab if n is None else n
        if n_lab > n:
            raise ValueError(f"bucket {i}: n_labelled={n_lab} exceeds n={n}")
        cols["time"].append(row[time_key])
        cols["n"].append(n)
        cols["n_labelled"].append(n_lab)
        cols["label_share"].append(_ratio(n_lab, n))
        add("n", n)
        add("n_labelled", n_lab)
        if task == "regression":
            sse = _float_field(row, "sum_sq_err", index=i, required=n_lab > 0)
            sae = _float_field(row, "sum_abs_err", index=i, required=n_lab > 0)
            se = _float_field(row, "sum_err", index=i, required=False, non_negative=False)
            any_bias = any_bias and (se is not None or n_lab == 0)
            cols["rmse"].append(math.sqrt(sse / n_lab) if n_lab else None)
            cols["mae"].append(sae / n_lab if n_lab else None)
            cols["bias"].append(se / n_lab if n_lab and se is not None else None)
            if n_lab:
                add("sum_sq_err", sse)
                add("sum_abs_err", sae)
                add("sum_err", se)
            continue
        if task == "binary":
            # SUM() over a bucket without labels is NULL in SQL: read it as 0.
            tp, fp, tn, fn = (_int_field(row, k, index=i, required=n_lab > 0) or 0 for k in ("tp", "fp", "tn", "fn"))
            if tp + fp + tn + fn != n_lab:
                raise ValueError(f"bucket {i}: tp+fp+tn+fn={tp + fp + tn + fn} differs from n_labelled={n_lab}")
            correct = _int_field(row, "correct", index=i, required=False)
            correct = tp + tn if correct is None else correct
            cols["precision"].append(_ratio(tp, tp + fp))
            cols["recall"].append(_ratio(tp, tp + fn))
            cols["f1"].append(_f1(tp, fp, fn))
            for k, v in (("tp", tp), ("fp", fp), ("tn", tn), ("fn", fn)):
                add(k, v)
            auc = None
            if row.get("pos_hist") is not None and row.get("neg_hist") is not None:
                pos = np.asarray(row["pos_hist"], dtype=float)
                neg = np.asarray(row["neg_hist"], dtype=float)
                auc = roc_auc_from_histograms(pos, neg)
                if pooled_pos is None:
                    pooled_pos, pooled_neg = np.zeros_like(pos), np.zeros_like(neg)
                if pos.shape != pooled_pos.shape:
                    raise ValueError(f"bucket {i}: score histograms have {pos.size} bins, earlier buckets "
                                     f"{pooled_pos.size}")
                pooled_pos += pos
                pooled_neg += neg
            cols["roc_auc"].append(auc)
        else:
            correct = _int_field(row, "correct", index=i, required=n_lab > 0) or 0
        if correct > n_lab:
            raise ValueError(f"bucket {i}: correct={correct} exceeds n_labelled={n_lab}")
        cols["accuracy"].append(_ratio(correct, n_lab))
        add("correct", correct)

    n_all, lab_all = pooled.get("n", 0.0), pooled.get("n_labelled", 0.0)
    overall: dict[str, Any] = {"n": int(n_all), "n_labelled": int(lab_all), "label_share": _ratio(lab_all, n_all)}
    if task == "regression":
        overall["rmse"] = math.sqrt(pooled["sum_sq_err"] / lab_all) if lab_all else None
        overall["mae"] = pooled["sum_abs_err"] / lab_all if lab_all else None
        overall["bias"] = pooled["sum_err"] / lab_all if lab_all and any_bias and "sum_err" in pooled else None
    else:
        overall["accuracy"] = _ratio(pooled.get("correct", 0.0), lab_all)
        if task == "binary":
            tp, fp, fn = (pooled.get(k, 0.0) for k in ("tp", "fp", "fn"))
            overall["precision"] = _ratio(tp, tp + fp)
            overall["recall"] = _ratio(tp, tp + fn)
            overall["f1"] = _f1(tp, fp, fn)
            overall["roc_auc"] = (roc_auc_from_histograms(pooled_pos, pooled_neg)
                                  if pooled_pos is not None else None)
    cols["overall"] = overall
    return cols


def evaluate_rule(values: Sequence[Mapping[str, Any]], *, comparison: str, threshold: float, window: int = 1,
                  min_samples: int = 0) -> list[dict]:
    """Evaluate an alert rule bucket by bucket over a trailing window.

    At each bucket the rule's value is the mean of the ``value`` of the
    last ``window`` buckets (this one included) weighted by their ``n``;
    buckets whose value is None (no labels, no data) are left out. The rule
    fires when that pooled sample holds at least ``min_samples`` records and
    ``value <comparison> threshold`` holds.

    Parameters
    ----------
    values : list of dict
        ``{"time", "value", "n"}`` per bucket, in any order (sorted by
        ``time`` here; times must be comparable, e.g. ISO strings of one
        format or datetimes).
    comparison : {">", ">=", "<", "<="}
    threshold : float
    window : int, default=1
        Number of trailing buckets pooled.
    min_samples : int, default=0
        Minimum pooled ``n`` for the rule to fire.

    Returns
    -------
    list of dict
        ``{"time", "value", "n", "fired"}`` per bucket in time order, where
        ``value`` is the pooled value (None when no bucket in the window has
        one) and ``n`` the pooled count.

    Examples
    --------
    >>> vals = [{"time": 1, "value": 0.9, "n": 100}, {"time": 2, "value": 0.6, "n": 100},
    ...         {"time": 3, "value": 0.6, "n": 5}]
    >>> [r["fired"] for r in evaluate_rule(vals, comparison="<", threshold=0.8, min_samples=50)]
    [False, True, False]
    >>> [r["value"] for r in evaluate_rule(vals, comparison="<", threshold=0.8, window=2)]
    [0.9, 0.75, 0.6]
    """
    if comparison not in COMPARISONS:
        raise ValueError(f"comparison must be one of {sorted(COMPARISONS)}, got {comparison!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 0:
        raise ValueError(f"min_samples must be an integer >= 0, got {min_samples!r}")
    if isinstance(values, Mapping) or not isinstance(values, Sequence):
        raise ValueError("values must be a list of {'time', 'value', 'n'} dicts")
    points = []
    for i, row in enumerate(values):
        if not isinstance(row, Mapping) or "time" not in row:
            raise ValueError(f"values[{i}] must be a dict with 'time', 'value' and 'n'")
        n = _int_field(row, "n", index=i)
        v = _float_field(row, "value", index=i, required=False, non_negative=False)
        points.append((row["time"], v, n))
    try:
        points.sort(key=lambda p: p[0])
    except TypeError:
        raise ValueError("values have times that cannot be compared with each other") from None
    compare = COMPARISONS[comparison]
    out = []
    for i, (time, _, _) in enumerate(points):
        recent = [(v, n) for _, v, n in points[max(0, i - window + 1): i + 1] if v is not None]
        n_total = sum(n for _, n in recent)
        if not recent:
            value = None
        elif n_total > 0:
            value = sum(v * n for v, n in recent) / n_total
        else:
            value = sum(v for v, _ in recent) / len(recent)
        fired = value is not None and n_total >= min_samples and bool(compare(value, threshold))
        out.append({"time": time, "value": value, "n": int(n_total), "fired": fired})
    return out


def alert_events(evaluated: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Buckets where a rule starts firing (a rising edge), to record one event per episode.

    Examples
    --------
    >>> ev = [{"time": t, "value": v, "n": 1, "fired": f}
    ...       for t, v, f in [(1, 0.1, False), (2, 0.9, True), (3, 0.9, True), (4, 0.1, False), (5, 0.8, True)]]
    >>> [e["time"] for e in alert_events(ev)]
    [2, 5]
    """
    events, before = [], False
    for row in evaluated:
        fired = bool(row.get("fired"))
        if fired and not before:
            events.append(dict(row))
        before = fired
    return events
