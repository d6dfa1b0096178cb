"""Per-group rates of a binary classifier at a threshold, and their gaps.

A row is predicted positive iff ``score >= threshold`` (as in
:mod:`app.ml.threshold`). Rates that are undefined for a group (TPR with no
positive rows, precision with nothing flagged, anything for an empty
group) are None, never an error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from app.ml.metrics import _as_1d, _as_float_1d, _check_same_length, _py

__all__ = ["RATES", "equalize_tpr_thresholds", "group_rates"]

#: The rates compared across groups, in display order.
RATES = ("selection_rate", "tpr", "fpr", "precision")

_MISSING = "(missing)"


def _group_index(groups: Any, n: int) -> tuple[list, np.ndarray]:
    """Group labels (display order) and each row's index into them.

    A pandas categorical keeps its category order, including categories
    with no rows (reported as empty groups). Otherwise labels are sorted.
    Missing values form their own group, ``"(missing)"``.
    """
    if groups is None:
        raise ValueError("groups is required, got None")
    series = groups if isinstance(groups, pd.Series) else pd.Series(
        groups if isinstance(groups, pd.Categorical) else _as_1d(groups, "groups"))
    if len(series) != n:
        raise ValueError(f"y_true has {n} rows but groups has {len(series)}")
    if isinstance(series.dtype, pd.CategoricalDtype):
        labels = list(series.cat.categories)
        codes = series.cat.codes.to_numpy().astype(np.int64)
    else:
        codes, uniques = pd.factorize(series, sort=False, use_na_sentinel=True)
        uniques = list(uniques)
        try:
            order = sorted(range(len(uniques)), key=lambda i: uniques[i])
        except TypeError:
            order = sorted(range(len(uniques)), key=lambda i: str(uniques[i]))
        rank = np.empty(len(uniques), dtype=np.int64)
        rank[order] = np.arange(len(uniques))
        labels = [uniques[i] for i in order]
        codes = np.where(codes >= 0, rank[np.maximum(codes, 0)] if len(uniques) else -1, -1)
    if np.any(codes < 0):
        labels.append(_MISSING)
        codes = np.where(codes < 0, len(labels) - 1, codes)
    return [_py(g) for g in labels], codes


def _binary_inputs(y_true, y_score, positive_label) -> tuple[np.ndarray, np.ndarray]:
    y_true = _as_1d(y_true, "y_true")
    score = _as_float_1d(y_score, "y_score", allow_empty=True)
    _check_same_length(y_true, "y_true", score, "y_score")
    labels = np.unique(y_true)
    if len(labels) > 2:
        raise ValueError(f"y_true must be binary, found labels {labels.tolist()[:5]!r}")
    is_pos = y_true == positive_label
    if len(labels) == 2 and not is_pos.any():
        raise ValueError(f"positive_label {positive_label!r} is not one of y_true's labels "
                         f"{labels.tolist()!r}")
    return is_pos, score


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def group_rates(y_true, y_score, groups, *, threshold, positive_label=1,
                gap_tolerance=0.1) -> dict:
    """Selection rate, TPR, FPR and precision per group, and the largest gaps.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels (binary).
    y_score : array-like of shape (n,)
        Score of the positive class.
    groups : array-like of shape (n,)
        Group of each row (e.g. a sensitive attribute). A pandas categorical
        keeps its category order and reports unused categories as empty
        groups; missing values form the group ``"(missing)"``.
    threshold : float
        Rows with ``score >= threshold`` are flagged positive.
    positive_label : label, default 1
        The positive class.
    gap_tolerance : float, default 0.1
        A rate is flagged when its max-min gap across groups exceeds this.

    Returns
    -------
    dict
        ``groups``: one dict per group with ``group``, ``size``, ``n_pos``,
        ``selection_rate``, ``tpr``, ``fpr``, ``precision`` (None when
        undefined). ``gaps``: per rate, ``gap``, ``high_group``, ``high``,
        ``low_group``, ``low`` (all None with fewer than two groups having a
        value). ``flagged``: the rates whose gap exceeds ``gap_tolerance``.
        ``threshold`` and ``gap_tolerance`` echo the inputs.

    Examples
    --------
    >>> r = group_rates([1, 0, 1, 0], [0.9, 0.2, 0.4, 0.6], ["a", "a", "b", "b"],
    ...                 threshold=0.5)
    >>> [(g["group"], g["tpr"]) for g in r["groups"]], r["flagged"]
    ([('a', 1.0), ('b', 0.0)], ['tpr', 'fpr', 'precision'])
    """
    try:
        threshold = float(threshold)
        gap_tolerance = float(gap_tolerance)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"threshold and gap_tolerance must be numbers, got "
                         f"{threshold!r}, {gap_tolerance!r}") from exc
    if math.isnan(threshold):
        raise ValueError("threshold must not be NaN")
    if not (gap_tolerance >= 0):
        raise ValueError(f"gap_tolerance must be >= 0, got {gap_tolerance!r}")
    is_pos, score = _binary_inputs(y_true, y_score, positive_label)
    labels, codes = _group_index(groups, len(score))
    k = len(labels)
    flagged_rows = score >= threshold
    size = np.bincount(codes, minlength=k)
    n_pos = np.bincount(codes[is_pos], minlength=k)
    selected = np.bincount(codes[flagged_rows], minlength=k)
    tp = np.bincount(codes[flagged_rows & is_pos], minlength=k)
    rows = []
    for i, g in enumerate(labels):
        n_neg = int(size[i] - n_pos[i])
        fp = int(selected[i] - tp[i])
        rows.append({
            "group": g,
            "size": int(size[i]),
            "n_pos": int(n_pos[i]),
            "selection_rate": _rate(int(selected[i]), int(size[i])),
            "tpr": _rate(int(tp[i]), int(n_pos[i])),
            "fpr": _rate(fp, n_neg),
            "precision": _rate(int(tp[i]), int(selected[i])),
        })
    gaps, flagged = {}, []
    for rate in RATES:
        present = [(r[rate], r["group"]) for r in rows if r[rate] is not None]
        if len(present) < 2:
            gaps[rate] = {"gap": None, "high_group": None, "high": None,
                          "low_group": None, "low": None}
            continue
        high = max(present, key=lambda p: p[0])
        low = min(present, key=lambda p: p[0])
        gap = high[0] - low[0]
        gaps[rate] = {"gap": gap, "high_group": high[1], "high": high[0],
                      "low_group": low[1], "low": low[0]}
        if gap > gap_tolerance:
            flagged.append(rate)
    return {"groups": rows, "gaps": gaps, "flagged": flagged,
            "threshold": threshold, "gap_tolerance": gap_tolerance}


def equalize_tpr_thresholds(y_true, y_score, groups, *, target_tpr, positive_label=1) -> list[dict]:
    """Per group, the largest threshold whose true positive rate is >= ``target_tpr``.

    That threshold is the k-th highest score among the group's positive
    rows, with ``k`` the smallest count for which ``k / n_pos >= target_tpr``.
    Groups without positive rows get ``threshold`` and ``tpr`` None.

    Parameters
    ----------
    y_true, y_score, groups : array-like of shape (n,)
        As in :func:`group_rates`.
    target_tpr : float in (0, 1]
        The TPR every group should reach.
    positive_label : label, default 1
        The positive class.

    Returns
    -------
    list of dict
        ``group``, ``threshold``, ``tpr`` (reached at that threshold; above
        the target when scores tie), ``n_pos``.

    Examples
    --------
    >>> equalize_tpr_thresholds([1, 1, 0, 1, 1], [0.9, 0.3, 0.5, 0.8, 0.6],
    ...                         ["a", "a", "a", "b", "b"], target_tpr=0.5)
    [{'group': 'a', 'threshold': 0.9, 'tpr': 0.5, 'n_pos': 2}, {'group': 'b', 'threshold': 0.8, 'tpr': 0.5, 'n_pos': 2}]
    """
    try:
        target = float(target_tpr)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"target_tpr must be a number, got {target_tpr!r}") from exc
    if not (0.0 < target <= 1.0):
        raise ValueError(f"target_tpr must be in (0, 1], got {target_tpr!r}")
    is_pos, score = _binary_inputs(y_true, y_score, positive_label)
    labels, codes = _group_index(groups, len(score))
    out = []
    for i, g in enumerate(labels):
        pos_scores = np.sort(score[(codes == i) & is_pos])[::-1]
        m = len(pos_scores)
        if m == 0:
            out.append({"group": g, "threshold": None, "tpr": None, "n_pos": 0})
            continue
        k = max(1, math.ceil(target * m))
        # Guard float error in target * m: use the smallest k with k/m >= target.
        while k > 1 and (k - 1) / m >= target:
            k -= 1
        while k < m and k / m < target:
            k += 1
        t = float(pos_scores[k - 1])
        tpr = int(np.count_nonzero(pos_scores >= t)) / m
        out.append({"group": g, "threshold": t, "tpr": tpr, "n_pos": m})
    return out
