"""Exact confusion counts of a binary classifier at any threshold.

Convention (as ``sklearn.metrics.roc_curve``): a row is predicted positive
iff ``score >= threshold``. Scores and thresholds are compared as float64
(float32 scores are widened exactly first).

The sweep sorts the distinct score values once (O(n log n)) and keeps, for
each distinct value, how many positive and negative rows have that score.
Cumulative sums from the top give, for each distinct value ``v``, the
number of positives and negatives with ``score >= v``; the counts at any
threshold ``t`` are then one binary search away: the first distinct value
``>= t`` (``np.searchsorted(values, t, side="left")``). No row-level data is
kept, so the object's size depends on the number of distinct scores, not on
the number of rows.

Ratios whose denominator is zero (precision with nothing predicted positive,
recall with no positives, ...) are 0.0, like scikit-learn with
``zero_division=0``; MCC is 0.0 when undefined, as ``matthews_corrcoef``.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from app.ml.metrics import _as_1d, _as_float_1d, _check_same_length, _py

__all__ = ["ThresholdSweep", "threshold_sweep"]

_FORMAT = "glassbox.threshold_sweep/1"


def _grid_size(step: float) -> int:
    """Return N with ``step == 1/N``, or raise ValueError."""
    try:
        step = float(step)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"step must be a number, got {step!r}") from exc
    if not (0.0 < step <= 1.0):
        raise ValueError(f"step must be in (0, 1], got {step!r}")
    size = round(1.0 / step)
    if size > 100_000 or not math.isclose(size * step, 1.0, rel_tol=1e-9):
        raise ValueError(f"step must be 1/N for an integer N <= 100000, got {step!r}")
    return int(size)


def _check_cost(value: Any, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return value


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0.0 where den == 0 (sklearn's zero_division=0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype)).copy()


def _downsample(x: np.ndarray, y: np.ndarray, max_points: int, keep: np.ndarray) -> np.ndarray:
    """Indices of at most ``max_points`` points of a curve.

    Always keeps the two endpoints and the indices in ``keep`` (for ROC, the
    vertices of the upper convex hull), then fills the remaining budget with
    points spaced evenly along the curve's length, so the drawn shape stays
    faithful where the curve bends.
    """
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    keep = np.unique(np.concatenate([[0, n - 1], keep]))
    if len(keep) >= max_points:
        inner = keep[1:-1]
        pick = np.linspace(0, len(inner) - 1, max_points - 2).round().astype(int)
        return np.unique(np.concatenate([[0, n - 1], inner[pick]]))
    seg = np.hypot(np.diff(x), np.diff(y))
    length = np.concatenate([[0.0], np.cumsum(seg)])
    budget = max_points - len(keep)
    if length[-1] > 0:
        targets = np.linspace(0.0, length[-1], budget + 2)[1:-1]
        extra = np.searchsorted(length, targets, side="left")
    else:
        extra = np.linspace(0, n - 1, budget + 2).round().astype(int)[1:-1]
    idx = np.unique(np.concatenate([keep, extra]))
    if len(idx) > max_points:
        # Duplicates were merged; if still over budget, thin the extras evenly.
        extras = np.setdiff1d(idx, keep)
        pick = np.linspace(0, len(extras) - 1, max_points - len(keep)).round().astype(int)
        idx = np.unique(np.concatenate([keep, extras[pick]]))
    return idx


def _upper_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the upper-left convex hull vertices of a ROC curve.

    Large curves use qhull (vertices strictly above the chord from the
    first to the last point); small ones, or degenerate inputs qhull
    rejects, use a monotone chain over the points (sorted by x).
    """
    if len(x) > 5000:
        try:
            vertices = ConvexHull(np.column_stack([x, y])).vertices
        except QhullError:
            vertices = None
        if vertices is not None:
            chord = y[0] + (y[-1] - y[0]) * (x - x[0]) / max(x[-1] - x[0], 1e-300)
            return np.sort(vertices[y[vertices] > chord[vertices]])
    hull: list[int] = []
    for i in range(len(x)):
        while len(hull) >= 2:
            o, a = hull[-2], hull[-1]
            cross = (x[a] - x[o]) * (y[i] - y[o]) - (y[a] - y[o]) * (x[i] - x[o])
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    return np.asarray(hull, dtype=int)


class ThresholdSweep:
    """Confusion counts at every threshold of one binary score.

    Build it with :func:`threshold_sweep` or :meth:`from_dict`.

    Attributes
    ----------
    values : ndarray of float64
        Distinct score values, ascending.
    pos_ge, neg_ge : ndarray of int64, length ``len(values) + 1``
        Positives / negatives with ``score >= values[i]``; the last entry is
        0 (a threshold above every score).
    n, n_pos, n_neg : int
        Rows, positive rows, negative rows.
    positive_label : label
        The label counted as positive.
    """

    def __init__(self, values: np.ndarray, pos_count: np.ndarray, neg_count: np.ndarray,
                 *, positive_label: Any = 1) -> None:
        values = np.asarray(values, dtype=np.float64)
        pos_count = np.asarray(pos_count, dtype=np.int64)
        neg_count = np.asarray(neg_count, dtype=np.int64)
        if not (values.ndim == pos_count.ndim == neg_count.ndim == 1
                and len(values) == len(pos_count) == len(neg_count)):
            raise ValueError("values, pos_count and neg_count must be 1-D of equal length")
        if len(values) and np.any(np.diff(values) <= 0):
            raise ValueError("values must be strictly increasing")
        if np.any(pos_count < 0) or np.any(neg_count < 0):
            raise ValueError("counts must be >= 0")
        self.values = values
        self.positive_label = _py(positive_label)
        zero = np.zeros(1, dtype=np.int64)
        # Suffix sums: rows with score >= values[i]; trailing 0 for t > max.
        self.pos_ge = np.concatenate([np.cumsum(pos_count[::-1])[::-1], zero])
        self.neg_ge = np.concatenate([np.cumsum(neg_count[::-1])[::-1], zero])
        self.n_pos = int(self.pos_ge[0])
        self.n_neg = int(self.neg_ge[0])
        self.n = self.n_pos + self.n_neg
        if self.n == 0:
            raise ValueError("a threshold sweep needs at least one row")

    # -- counts -------------------------------------------------------------

    def _index(self, thresholds: Any) -> np.ndarray:
        t = np.asarray(thresholds, dtype=np.float64)
        if np.any(np.isnan(t)):
            raise ValueError("threshold must not be NaN")
        return np.searchsorted(self.values, t, side="left")

    def counts_at(self, t: float) -> dict:
        """Confusion counts at threshold ``t`` (positive iff ``score >= t``).

        Examples
        --------
        >>> threshold_sweep([0, 1, 1], [0.2, 0.5, 0.9]).counts_at(0.5)
        {'tp': 2, 'fp': 0, 'tn': 1, 'fn': 0}
        """
        if np.ndim(t) != 0:
            raise ValueError(f"t must be a single number, got {t!r}")
        i = int(self._index(t))
        tp = int(self.pos_ge[i])
        fp = int(self.neg_ge[i])
        return {"tp": tp, "fp": fp, "tn": self.n_neg - fp, "fn": self.n_pos - tp}

    def _counts_many(self, thresholds: Any) -> tuple[np.ndarray, ...]:
        idx = self._index(thresholds)
        tp = self.pos_ge[idx]
        fp = self.neg_ge[idx]
        return tp, fp, self.n_neg - fp, self.n_pos - tp

    def metrics_at_many(self, thresholds: Any) -> dict:
        """Vectorised :meth:`metrics_at`: a dict of arrays, one entry per threshold.

        Examples
        --------
        >>> s = threshold_sweep([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.7])
        >>> s.metrics_at_many([0.5, 0.75])["precision"].tolist()
        [0.6666666666666666, 1.0]
        """
        tp, fp, tn, fn = self._counts_many(thresholds)
        tpf, fpf, tnf, fnf = (a.astype(np.float64) for a in (tp, fp, tn, fn))
        n = float(self.n)
        precision = _ratio(tpf, tpf + fpf)
        recall = _ratio(tpf, tpf + fnf)
        mcc_den = np.sqrt((tpf + fpf) * (tpf + fnf) * (tnf + fpf) * (tnf + fnf))
        return {
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * tpf, 2 * tpf + fpf + fnf),
            "accuracy": (tpf + tnf) / n,
            "specificity": _ratio(tnf, tnf + fpf),
            "mcc": _ratio(tpf * tnf - fpf * fnf, mcc_den),
            "predicted_positive_rate": (tpf + fpf) / n,
            "fpr": _ratio(fpf, fpf + tnf),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        }

    def metrics_at(self, t: float) -> dict:
        """Precision, recall, F1, accuracy, specificity, MCC and rates at ``t``.

        Zero denominators give 0.0 (sklearn's ``zero_division=0``).

        Examples
        --------
        >>> m = threshold_sweep([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.7]).metrics_at(0.65)
        >>> m["precision"], m["recall"], m["tp"]
        (0.5, 0.5, 1)
        """
        if np.ndim(t) != 0:
            raise ValueError(f"t must be a single number, got {t!r}")
        many = self.metrics_at_many([t])
        out = {}
        for key, arr in many.items():
            out[key] = int(arr[0]) if key in ("tp", "fp", "tn", "fn") else float(arr[0])
        return out

    def grid(self, step: float = 0.01) -> dict:
        """Counts at every threshold ``k * step`` for ``k = 0 .. 1/step``.

        Thresholds are computed as ``k / N`` (``N = 1/step``), the exact
        double a browser gets from ``k / 100``, so a clientside callback can
        look up the counts at slider value ``t`` with
        ``index = Math.round(t * N)``; no float truncation is involved.

        Returns
        -------
        dict
            ``thresholds``, ``tp``, ``fp``, ``tn``, ``fn`` (lists of equal
            length ``N + 1``), and ``n``, ``n_pos``, ``n_neg``, ``step``.

        Examples
        --------
        >>> g = threshold_sweep([0, 1], [0.29, 0.7]).grid(step=0.01)
        >>> g["thresholds"][29], g["fp"][29], g["fp"][30]
        (0.29, 1, 0)
        """
        size = _grid_size(step)
        thresholds = np.arange(size + 1, dtype=np.float64) / size
        tp, fp, tn, fn = self._counts_many(thresholds)
        return {
            "thresholds": thresholds.tolist(),
            "tp": tp.tolist(), "fp": fp.tolist(), "tn": tn.tolist(), "fn": fn.tolist(),
            "n": self.n, "n_pos": self.n_pos, "n_neg": self.n_neg, "step": 1.0 / size,
        }

    # -- curves ---------------------------------------------------------------

    def _descending(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct thresholds high to low with cumulative tps and fps."""
        k = len(self.values)
        return self.values[::-1], self.pos_ge[:k][::-1], self.neg_ge[:k][::-1]

    def roc_curve(self, max_points: int = 2000) -> dict:
        """ROC curve, equal to ``sklearn.metrics.roc_curve`` when small.

        The first point (0, 0) has threshold None (sklearn: +inf, which JSON
        cannot hold): it means "nothing predicted positive". With more
        points than ``max_points`` the curve is thinned, keeping the
        endpoints and every vertex of its convex hull; ``auc`` is always
        computed on the full curve.

        Returns
        -------
        dict
            ``fpr``, ``tpr``, ``thresholds`` (lists) and ``auc``. All empty
            and ``auc`` None when only one class is present.

        Examples
        --------
        >>> threshold_sweep([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]).roc_curve()["auc"]
        0.75
        """
        max_points = self._check_max_points(max_points)
        if self.n_pos == 0 or self.n_neg == 0:
            return {"fpr": [], "tpr": [], "thresholds": [], "auc": None}
        thr, tps, fps = self._descending()
        tps = tps.astype(np.float64)
        fps = fps.astype(np.float64)
        if len(tps) > 2:
            # sklearn's drop_intermediate: drop points on straight segments.
            keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
            thr, tps, fps = thr[keep], tps[keep], fps[keep]
        tpr = np.r_[0.0, tps / self.n_pos]
        fpr = np.r_[0.0, fps / self.n_neg]
        thresholds = np.r_[np.inf, thr]
        auc = float(np.trapezoid(tpr, fpr))
        idx = _downsample(fpr, tpr, max_points, _upper_hull(fpr, tpr))
        return {
            "fpr": fpr[idx].tolist(),
            "tpr": tpr[idx].tolist(),
            "thresholds": [None if math.isinf(v) else v for v in thresholds[idx].tolist()],
            "auc": auc,
        }

    def pr_curve(self, max_points: int = 2000) -> dict:
        """Precision-recall curve, equal to ``sklearn.metrics.precision_recall_curve``.

        As in scikit-learn, ``precision`` and ``recall`` have one more entry
        than ``thresholds`` (the final point precision 1, recall 0).
        ``average_precision`` equals ``average_precision_score`` and is
        always computed on the full curve; with more points than
        ``max_points`` the drawn curve is thinned, keeping its endpoints.

        Returns
        -------
        dict
            ``precision``, ``recall``, ``thresholds`` (ascending) and
            ``average_precision`` (None, with empty lists, without positives).

        Examples
        --------
        >>> pr = threshold_sweep([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]).pr_curve()
        >>> round(pr["average_precision"], 4)
        0.8333
        """
        max_points = self._check_max_points(max_points)
        if self.n_pos == 0:
            return {"precision": [], "recall": [], "thresholds": [], "average_precision": None}
        thr, tps, fps = self._descending()
        precision = _ratio(tps, tps + fps)
        recall = tps / self.n_pos
        precision = np.r_[precision[::-1], 1.0]
        recall = np.r_[recall[::-1], 0.0]
        thresholds = thr[::-1]
        ap = float(-np.sum(np.diff(recall) * precision[:-1]))
        idx = _downsample(recall, precision, max_points, np.array([], dtype=int))
        thr_idx = idx[idx < len(thresholds)]
        return {
            "precision": precision[idx].tolist(),
            "recall": recall[idx].tolist(),
            "thresholds": thresholds[thr_idx].tolist(),
            "average_precision": ap,
        }

    @staticmethod
    def _check_max_points(max_points: Any) -> int:
        if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) \
                or max_points < 3:
            raise ValueError(f"max_points must be an integer >= 3, got {max_points!r}")
        return int(max_points)

    # -- optimal thresholds -------------------------------------------------

    def _candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every distinct score plus one threshold just above the maximum.

        Returns thresholds (ascending), tp and fp at each.
        """
        above = np.nextafter(self.values[-1], np.inf) if len(self.values) else 1.0
        return np.r_[self.values, above], self.pos_ge, self.neg_ge

    def best_f1_threshold(self) -> dict:
        """The threshold (a score value) with the highest F1.

        Among ties the highest threshold wins (fewest rows flagged).

        Examples
        --------
        >>> threshold_sweep([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.7]).best_f1_threshold()
        {'threshold': 0.6, 'f1': 0.8}
        """
        thr, tp, fp = self._candidates()
        fn = self.n_pos - tp
        f1 = _ratio(2.0 * tp, 2.0 * tp + fp + fn)
        best = len(f1) - 1 - int(np.argmax(f1[::-1]))
        return {"threshold": float(thr[best]), "f1": float(f1[best])}

    def cost_optimal_threshold(self, *, cost_fp: float, cost_fn: float) -> dict:
        """The threshold minimising ``cost_fp * FP + cost_fn * FN``.

        Candidates are every distinct score and one value just above the
        highest score (flag nothing). Among ties the highest threshold wins.
        ``cost`` is per row; ``total_cost`` over all rows.

        Examples
        --------
        >>> s = threshold_sweep([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.7])
        >>> s.cost_optimal_threshold(cost_fp=1.0, cost_fn=5.0)
        {'threshold': 0.6, 'cost': 0.25, 'total_cost': 1.0}
        """
        cost_fp = _check_cost(cost_fp, "cost_fp")
        cost_fn = _check_cost(cost_fn, "cost_fn")
        thr, tp, fp = self._candidates()
        total = cost_fp * fp + cost_fn * (self.n_pos - tp)
        best = len(total) - 1 - int(np.argmin(total[::-1]))
        return {"threshold": float(thr[best]), "cost": float(total[best] / self.n),
                "total_cost": float(total[best])}

    def expected_cost_curve(self, *, cost_fp: float, cost_fn: float, step: float = 0.01) -> dict:
        """Cost per row, ``(cost_fp * FP + cost_fn * FN) / n``, on the threshold grid.

        Examples
        --------
        >>> c = threshold_sweep([0, 1], [0.3, 0.6]).expected_cost_curve(
        ...     cost_fp=1.0, cost_fn=2.0, step=0.5)
        >>> c["thresholds"], c["cost"]
        ([0.0, 0.5, 1.0], [0.5, 0.0, 1.0])
        """
        cost_fp = _check_cost(cost_fp, "cost_fp")
        cost_fn = _check_cost(cost_fn, "cost_fn")
        size = _grid_size(step)
        thresholds = np.arange(size + 1, dtype=np.float64) / size
        _, fp, _, fn = self._counts_many(thresholds)
        cost = (cost_fp * fp + cost_fn * fn) / self.n
        return {"thresholds": thresholds.tolist(), "cost": cost.tolist(),
                "cost_fp": cost_fp, "cost_fn": cost_fn}

    # -- serialisation --------------------------------------------------------

    def to_dict(self) -> dict:
        """A compact JSON-able form (see :meth:`from_dict`).

        Stores the distinct score values (float64) and the positive and
        negative count at each, base64-encoded little-endian arrays. Size is
        about 16 bytes per distinct score (x4/3 for base64), independent of
        the number of rows: 1M rows with 1M distinct scores take ~21 MB of
        JSON, with 10k distinct scores ~0.2 MB. Use :meth:`grid` for what the
        browser needs.

        Examples
        --------
        >>> s = threshold_sweep([0, 1, 1], [0.2, 0.5, 0.5])
        >>> ThresholdSweep.from_dict(s.to_dict()).counts_at(0.5)
        {'tp': 2, 'fp': 0, 'tn': 1, 'fn': 0}
        """
        k = len(self.values)
        pos = self.pos_ge[:k] - self.pos_ge[1:]
        neg = self.neg_ge[:k] - self.neg_ge[1:]
        count_dtype = "<u4" if self.n < 2 ** 32 else "<u8"
        return {
            "format": _FORMAT,
            "n": self.n, "n_pos": self.n_pos, "n_neg": self.n_neg,
            "positive_label": self.positive_label,
            "n_values": k,
            "count_dtype": count_dtype,
            "values": _b64(self.values.astype("<f8")),
            "pos": _b64(pos.astype(count_dtype)),
            "neg": _b64(neg.astype(count_dtype)),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ThresholdSweep:
        """Rebuild a sweep from :meth:`to_dict` output."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"not a threshold sweep dict (format {_FORMAT!r} expected)")
        dtype = data.get("count_dtype")
        if dtype not in ("<u4", "<u8"):
            raise ValueError(f"count_dtype must be '<u4' or '<u8', got {dtype!r}")
        values = _unb64(data["values"], "<f8")
        pos = _unb64(data["pos"], dtype).astype(np.int64)
        neg = _unb64(data["neg"], dtype).astype(np.int64)
        if not (len(values) == len(pos) == len(neg) == data.get("n_values")):
            raise ValueError("threshold sweep dict is corrupt: array lengths differ")
        sweep = cls(values, pos, neg, positive_label=data.get("positive_label", 1))
        if (sweep.n_pos, sweep.n_neg) != (data.get("n_pos"), data.get("n_neg")):
            raise ValueError("threshold sweep dict is corrupt: counts do not add up")
        return sweep

    def __repr__(self) -> str:
        return (f"ThresholdSweep(n={self.n}, n_pos={self.n_pos}, n_neg={self.n_neg}, "
                f"distinct_scores={len(self.values)})")


def threshold_sweep(y_true, y_score, *, positive_label=1) -> ThresholdSweep:
    """Build a :class:`ThresholdSweep` from labels and positive-class scores.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True labels; rows equal to ``positive_label`` are positive, all
        others negative.
    y_score : array-like of shape (n,)
        Score of the positive class (finite numbers; any range).
    positive_label : label, default 1
        The positive class.

    Returns
    -------
    ThresholdSweep

    Examples
    --------
    >>> s = threshold_sweep(["no", "yes", "yes"], [0.2, 0.5, 0.9], positive_label="yes")
    >>> s.n, s.n_pos, s.counts_at(0.6)
    (3, 2, {'tp': 1, 'fp': 0, 'tn': 1, 'fn': 1})
    """
    y_true = _as_1d(y_true, "y_true")
    score = _as_float_1d(y_score, "y_score")
    _check_same_length(y_true, "y_true", score, "y_score")
    labels = np.unique(y_true)
    if len(labels) > 2:
        raise ValueError(f"y_true must be binary, found {len(labels)} labels: {labels[:5].tolist()!r}")
    is_pos = y_true == positive_label
    if len(labels) == 2 and not is_pos.any():
        raise ValueError(f"positive_label {positive_label!r} is not one of y_true's labels "
                         f"{labels.tolist()!r}")
    # Sort once; distinct values with the number of positives/negatives at each.
    values, inverse = np.unique(score, return_inverse=True)
    total = np.bincount(inverse, minlength=len(values))
    positives = np.bincount(inverse[is_pos], minlength=len(values))
    return ThresholdSweep(values, positives, total - positives, positive_label=positive_label)
