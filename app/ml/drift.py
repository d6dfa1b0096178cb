"""Input and prediction drift between reference data and production traffic.

Monitoring never loads every logged record into memory: the SQL layer counts
current values per bin (``CASE`` expressions built from the explicit bin edges
stored here) and this module compares those counts with the reference counts
kept once per model version. Raw samples are used only where they are at hand
(an exact two-sample KS test on a sample of current records).

Binning convention
------------------
Numeric bins are left-closed, right-open: bin ``i`` holds values ``v`` with
``edges[i] <= v < edges[i + 1]``. The outer edges are ``-inf`` and ``+inf`` so
every finite value falls in a bin. The SQL equivalent is::

    CASE WHEN v < edges[1] THEN 0 WHEN v < edges[2] THEN 1 ... ELSE k - 1 END

Missing values (``None``/``NaN``) are not binned; they are an anomaly, counted
by :mod:`app.ml.anomaly`. Categorical bins are the reference levels, compared
by their string form, followed by one ``"(other)"`` bin for anything else.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

logger = logging.getLogger(__name__)

#: PSI below this is read as stable.
PSI_MODERATE = 0.1
#: PSI above this is read as a significant shift.
PSI_SIGNIFICANT = 0.25
#: Name of the catch-all categorical bin.
OTHER_LEVEL = "(other)"

_KINDS = ("numeric", "categorical")


# --------------------------------------------------------------------- helpers

def _as_1d(values: Any, *, name: str) -> np.ndarray:
    if isinstance(values, (pd.Series, pd.Index)):
        arr = values.to_numpy(dtype=object)
    else:
        arr = np.asarray(values, dtype=object)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be one-dimensional, got a scalar {values!r}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _numeric_values(values: Any, *, name: str) -> np.ndarray:
    """Return the finite float values, dropping missing; reject non-numbers."""
    arr = _as_1d(values, name=name)
    if arr.size == 0:
        return np.empty(0, dtype=float)
    try:
        out = pd.to_numeric(pd.Series(arr), errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if np.isinf(out).any():
        raise ValueError(f"{name} contains infinite values")
    return out[~np.isnan(out)]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _category_strings(values: Any, *, name: str) -> list[str]:
    arr = _as_1d(values, name=name)
    return [str(v) for v in arr if not _is_missing(v)]


def _counts(counts: Any, *, name: str) -> np.ndarray:
    try:
        arr = np.asarray(counts, dtype=float)
    except (ValueError, TypeError):
        raise ValueError(f"{name} must be a sequence of counts, got {counts!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of counts, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or (arr < 0).any():
        raise ValueError(f"{name} must hold finite non-negative counts, got {arr.tolist()}")
    return arr


def _pair(ref_counts: Any, cur_counts: Any) -> tuple[np.ndarray, np.ndarray]:
    ref = _counts(ref_counts, name="ref_counts")
    cur = _counts(cur_counts, name="cur_counts")
    if ref.shape != cur.shape:
        raise ValueError(f"ref_counts has {ref.size} bins but cur_counts has {cur.size}")
    if ref.sum() <= 0:
        raise ValueError("ref_counts are all zero")
    if cur.sum() <= 0:
        raise ValueError("cur_counts are all zero")
    return ref, cur


def _edge(value: Any) -> float:
    # Strict JSON has no infinity; accept None as an open outer edge.
    return float("nan") if value is None else float(value)


def _inner_edges(bins: Mapping[str, Any]) -> np.ndarray:
    edges = bins.get("edges")
    if edges is None or len(edges) < 2:
        raise ValueError(f"numeric bins need at least two edges, got {edges!r}")
    inner = np.asarray([_edge(e) for e in edges[1:-1]], dtype=float)
    if np.isnan(inner).any() or (np.diff(inner) <= 0).any():
        raise ValueError(f"inner bin edges must be finite and strictly increasing, got {list(edges)}")
    return inner


def _bin_labels(edges: Sequence[float]) -> list[str]:
    def fmt(x: float) -> str:
        if math.isinf(x):
            return "-inf" if x < 0 else "+inf"
        return f"{x:.4g}"

    return [f"[{fmt(lo)}, {fmt(hi)})" for lo, hi in zip(edges[:-1], edges[1:])]


def _check_kind(kind: str) -> str:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    return kind


# ----------------------------------------------------------------- binning

def reference_bins(values: Any, *, kind: str, n_bins: int = 10, max_levels: int = 50) -> dict:
    """Bin the reference values once per model version.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Reference (training) values of one feature or of the predictions.
        Missing values are ignored (and counted in ``n_missing``).
    kind : {"numeric", "categorical"}
        How to bin.
    n_bins : int, default=10
        Numeric only: the number of quantile bins before duplicates are
        merged. Inner edges are the reference quantiles at ``1/n_bins``,
        ``2/n_bins``, ...; repeated quantiles (ties) collapse, so fewer bins
        may result.
    max_levels : int, default=50
        Categorical only: the most frequent levels kept as their own bins;
        rarer levels join ``"(other)"``.

    Returns
    -------
    dict
        Numeric: ``{"kind", "edges", "labels", "counts", "n", "n_missing"}``
        with ``edges[0] == -inf`` and ``edges[-1] == +inf``. Categorical:
        ``{"kind", "levels", "labels", "counts", "n", "n_missing"}`` where
        ``labels == levels + ["(other)"]`` and ``counts`` has one entry per
        label. Levels are strings. All values are plain Python numbers,
        strings and lists (``json.dumps`` writes the infinite edges as
        ``Infinity``, which ``json.loads`` reads back).

    Examples
    --------
    >>> b = reference_bins([1, 2, 3, 4], kind="numeric", n_bins=2)
    >>> b["edges"], b["counts"]
    ([-inf, 2.5, inf], [2, 2])
    >>> reference_bins(["a", "b", "a"], kind="categorical")["counts"]
    [2, 1, 0]
    """
    _check_kind(kind)
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    if isinstance(max_levels, bool) or not isinstance(max_levels, (int, np.integer)) or max_levels < 1:
        raise ValueError(f"max_levels must be an integer >= 1, got {max_levels!r}")
    raw = _as_1d(values, name="values")
    if kind == "numeric":
        finite = _numeric_values(raw, name="values")
        if finite.size == 0:
            raise ValueError("values has no non-missing reference values to bin")
        qs = np.quantile(finite, np.linspace(0.0, 1.0, int(n_bins) + 1)[1:-1])
        inner = np.unique(qs)
        edges = [float("-inf"), *(float(e) for e in inner), float("inf")]
        counts = np.bincount(np.searchsorted(inner, finite, side="right"), minlength=len(edges) - 1)
        return {
            "kind": "numeric",
            "edges": edges,
            "labels": _bin_labels(edges),
            "counts": [int(c) for c in counts],
            "n": int(finite.size),
            "n_missing": int(raw.size - finite.size),
        }
    cats = _category_strings(raw, name="values")
    if not cats:
        raise ValueError("values has no non-missing reference values to bin")
    freq = pd.Series(cats).value_counts(sort=False)
    # Most frequent first; ties broken by name so the order is reproducible.
    order = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = order[: int(max_levels)]
    levels = [k for k, _ in kept]
    other = int(sum(c for _, c in order[int(max_levels):]))
    return {
        "kind": "categorical",
        "levels": levels,
        "labels": [*levels, OTHER_LEVEL],
        "counts": [int(c) for _, c in kept] + [other],
        "n": len(cats),
        "n_missing": int(raw.size - len(cats)),
    }


def bin_counts(values: Any, bins: Mapping[str, Any]) -> list[int]:
    """Count values in the bins made by :func:`reference_bins`.

    Parameters
    ----------
    values : array-like of shape (n_samples,)
        Current values; missing values are skipped.
    bins : dict
        The output of :func:`reference_bins` (``kind`` and ``edges`` or
        ``levels`` are read).

    Returns
    -------
    list of int
        One count per bin, in the order of ``bins["labels"]``.

    Examples
    --------
    >>> b = reference_bins([1, 2, 3, 4], kind="numeric", n_bins=2)
    >>> bin_counts([0, 2.5, 9, None], b)
    [1, 2]
    """
    if not isinstance(bins, Mapping):
        raise ValueError(f"bins must be a dict from reference_bins, got {type(bins).__name__}")
    kind = _check_kind(bins.get("kind"))
    if kind == "numeric":
        inner = _inner_edges(bins)
        finite = _numeric_values(values, name="values")
        counts = np.bincount(np.searchsorted(inner, finite, side="right"), minlength=inner.size + 1)
        return [int(c) for c in counts]
    levels = bins.get("levels")
    if levels is None:
        raise ValueError("categorical bins need 'levels'")
    index = {str(level): i for i, level in enumerate(levels)}
    other = len(index)
    codes = [index.get(v, other) for v in _category_strings(values, name="values")]
    counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=other + 1)
    return [int(c) for c in counts]


# ------------------------------------------------------------- statistics

def psi(ref_counts: Any, cur_counts: Any, *, epsilon: float = 1e-4) -> float:
    """Population stability index between two binned distributions.

    With reference shares ``p_i`` and current shares ``q_i`` per bin,

    ``PSI = sum_i (q_i - p_i) * ln(q_i / p_i)``

    where a share of exactly zero is replaced by ``epsilon`` so empty bins
    contribute a large but finite term. PSI is symmetric in the two inputs
    and zero when the shares are equal. Common reading: below 0.1 stable,
    0.1 to 0.25 a moderate shift, above 0.25 a significant shift.

    Parameters
    ----------
    ref_counts, cur_counts : array-like of shape (n_bins,)
        Non-negative counts on the same bins.
    epsilon : float, default=1e-4
        Share substituted for empty bins.

    Returns
    -------
    float

    Examples
    --------
    >>> psi([50, 50], [50, 50])
    0.0
    >>> round(psi([50, 50], [90, 10]), 4)
    0.8789
    """
    ref, cur = _pair(ref_counts, cur_counts)
    if not (isinstance(epsilon, (int, float)) and 0 < epsilon < 1):
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon!r}")
    p = ref / ref.sum()
    q = cur / cur.sum()
    p = np.where(p == 0, epsilon, p)
    q = np.where(q == 0, epsilon, q)
    return float(np.sum((q - p) * np.log(q / p)))


def severity(psi_value: float | None) -> str:
    """Read a PSI value: ``"stable"``, ``"moderate"``, ``"significant"`` or ``"no data"``.

    Examples
    --------
    >>> severity(0.05), severity(0.1), severity(0.3), severity(None)
    ('stable', 'moderate', 'significant', 'no data')
    """
    if psi_value is None or (isinstance(psi_value, float) and math.isnan(psi_value)):
        return "no data"
    if psi_value < PSI_MODERATE:
        return "stable"
    if psi_value <= PSI_SIGNIFICANT:
        return "moderate"
    return "significant"


def ks_test(reference: Any, current: Any) -> dict:
    """Two-sample Kolmogorov-Smirnov test on raw numeric samples.

    Missing values are dropped first; the result is that of
    ``scipy.stats.ks_2samp(reference, current)`` (two-sided, ``method="auto"``).

    Parameters
    ----------
    reference, current : array-like of shape (n,)
        Numeric samples; each needs at least one non-missing value.

    Returns
    -------
    dict
        ``{"statistic", "p_value", "n_reference", "n_current"}``.

    Examples
    --------
    >>> ks_test([1, 2, 3], [1, 2, 3])["statistic"]
    0.0
    """
    ref = _numeric_values(reference, name="reference")
    cur = _numeric_values(current, name="current")
    if ref.size == 0:
        raise ValueError("reference has no non-missing values")
    if cur.size == 0:
        raise ValueError("current has no non-missing values")
    res = stats.ks_2samp(ref, cur)
    return {
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "n_reference": int(ref.size),
        "n_current": int(cur.size),
    }


def ks_from_counts(ref_counts: Any, cur_counts: Any) -> dict:
    """Kolmogorov-Smirnov statistic from counts on shared bins (approximation).

    The statistic is the largest distance between the two cumulative shares,
    evaluated at the bin edges only. It equals the exact KS statistic of the
    binned data and is a lower bound of the statistic on the raw values (the
    raw CDFs can differ more inside a bin). The p-value uses the same
    asymptotic distribution as ``scipy.stats.ks_2samp(method="asymp")``;
    with ties created by binning it is conservative.

    Parameters
    ----------
    ref_counts, cur_counts : array-like of shape (n_bins,)

    Returns
    -------
    dict
        ``{"statistic", "p_value", "n_reference", "n_current"}``.

    Examples
    --------
    >>> ks_from_counts([5, 5], [10, 0])["statistic"]
    0.5
    """
    ref, cur = _pair(ref_counts, cur_counts)
    n_ref, n_cur = ref.sum(), cur.sum()
    d = float(np.max(np.abs(np.cumsum(ref) / n_ref - np.cumsum(cur) / n_cur)))
    m, n = sorted([float(n_ref), float(n_cur)], reverse=True)
    en = m * n / (m + n)
    p = float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))
    return {"statistic": d, "p_value": p, "n_reference": int(round(n_ref)), "n_current": int(round(n_cur))}


def chi_square_test(ref_counts: Any, cur_counts: Any, *, correction: bool = True) -> dict:
    """Chi-square test of homogeneity on the 2 x k table of counts.

    Bins empty in both rows are dropped, then the result is that of
    ``scipy.stats.chi2_contingency(table, correction=correction)``
    (scipy applies Yates' correction only when ``dof == 1``). With a single
    non-empty bin the two distributions are identical: statistic 0, p 1.

    Parameters
    ----------
    ref_counts, cur_counts : array-like of shape (n_bins,)
    correction : bool, default=True

    Returns
    -------
    dict
        ``{"statistic", "p_value", "dof"}``.

    Examples
    --------
    >>> chi_square_test([10, 10, 0], [10, 10, 0])["dof"]
    1
    """
    ref, cur = _pair(ref_counts, cur_counts)
    keep = (ref + cur) > 0
    table = np.vstack([ref[keep], cur[keep]])
    if table.shape[1] < 2:
        return {"statistic": 0.0, "p_value": 1.0, "dof": 0}
    res = stats.chi2_contingency(table, correction=bool(correction))
    return {"statistic": float(res.statistic), "p_value": float(res.pvalue), "dof": int(res.dof)}


# ------------------------------------------------------------------ tables

def _drift_row(name: str, bins: Mapping[str, Any], cur_counts: Any, *, reference_sample: Any = None,
               current_sample: Any = None) -> dict:
    kind = _check_kind(bins.get("kind") if isinstance(bins, Mapping) else None)
    ref = _counts(bins.get("counts"), name=f"reference counts of {name!r}")
    row = {"feature": name, "kind": kind, "psi": None, "test": "KS" if kind == "numeric" else "chi-square",
           "statistic": None, "p_value": None, "severity": "no data", "n_current": 0,
           "n_reference": int(ref.sum()), "approximate": None}
    if cur_counts is None:
        return row
    cur = _counts(cur_counts, name=f"current counts of {name!r}")
    if cur.size != ref.size:
        raise ValueError(f"current counts of {name!r} have {cur.size} bins, the reference has {ref.size}")
    row["n_current"] = int(cur.sum())
    if cur.sum() <= 0:
        return row
    value = psi(ref, cur)
    row["psi"] = value
    row["severity"] = severity(value)
    if kind == "numeric":
        exact = None
        if reference_sample is not None and current_sample is not None:
            ref_vals = _numeric_values(reference_sample, name=f"reference sample of {name!r}")
            cur_vals = _numeric_values(current_sample, name=f"current sample of {name!r}")
            if ref_vals.size and cur_vals.size:
                exact = ks_test(ref_vals, cur_vals)
        result = exact if exact is not None else ks_from_counts(ref, cur)
        row["approximate"] = exact is None
    else:
        result = chi_square_test(ref, cur)
        row["approximate"] = False
    row["statistic"] = result["statistic"]
    row["p_value"] = result["p_value"]
    return row


def _sort_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["psi"] is None, -(r["psi"] or 0.0), r["feature"]))


def feature_drift_table(reference_bins_by_feature: Mapping[str, Mapping], current_counts_by_feature: Mapping[str, Any],
                        *, current_samples: Mapping[str, Any] | None = None,
                        reference_samples: Mapping[str, Any] | None = None) -> list[dict]:
    """Drift of every feature: PSI, a KS or chi-square test, and a severity.

    Parameters
    ----------
    reference_bins_by_feature : dict
        Feature name -> output of :func:`reference_bins`.
    current_counts_by_feature : dict
        Feature name -> current counts on those bins (from SQL or
        :func:`bin_counts`). A feature that is absent, ``None`` or all zero
        gives a row with ``None`` statistics and severity ``"no data"``.
    current_samples, reference_samples : dict, optional
        Feature name -> raw values. When both are given for a numeric
        feature the exact :func:`ks_test` is used; otherwise
        :func:`ks_from_counts` (``approximate=True``). Categorical features
        always use :func:`chi_square_test` on the counts.

    Returns
    -------
    list of dict
        One row per reference feature with keys ``feature, kind, psi, test
        ("KS" | "chi-square"), statistic, p_value, severity ("stable" |
        "moderate" | "significant" | "no data"), n_current, n_reference,
        approximate``, sorted by PSI descending (rows without data last).

    Examples
    --------
    >>> bins = {"x": reference_bins([1, 2, 3, 4] * 25, kind="numeric", n_bins=4)}
    >>> rows = feature_drift_table(bins, {"x": [0, 0, 0, 100]})
    >>> rows[0]["severity"], rows[0]["test"]
    ('significant', 'KS')
    """
    if not isinstance(reference_bins_by_feature, Mapping):
        raise ValueError("reference_bins_by_feature must be a dict of feature name -> bins")
    if not isinstance(current_counts_by_feature, Mapping):
        raise ValueError("current_counts_by_feature must be a dict of feature name -> counts")
    unknown = sorted(set(current_counts_by_feature) - set(reference_bins_by_feature))
    if unknown:
        logger.warning("current counts for features without reference bins ignored: %s", unknown)
    current_samples = current_samples or {}
    reference_samples = reference_samples or {}
    rows = [
        _drift_row(str(name), bins, current_counts_by_feature.get(name),
                   reference_sample=reference_samples.get(name), current_sample=current_samples.get(name))
        for name, bins in reference_bins_by_feature.items()
    ]
    return _sort_rows(rows)


def prediction_drift(reference_bins_: Mapping[str, Any], current_counts: Any, *, name: str = "prediction",
                     reference_sample: Any = None, current_sample: Any = None) -> dict:
    """Drift of the prediction distribution, as one row of a drift table.

    For classifiers bin the predicted classes with
    ``reference_bins(classes, kind="categorical")`` (chi-square test); for
    scores or regression values use ``kind="numeric"`` (KS test, exact when
    both samples are given).

    Parameters
    ----------
    reference_bins_ : dict
        Output of :func:`reference_bins` on the reference predictions.
    current_counts : array-like or None
        Current counts on those bins.
    name : str, default="prediction"
        Label of the row.
    reference_sample, current_sample : array-like, optional
        Raw numeric predictions for the exact KS test.

    Returns
    -------
    dict
        A row as in :func:`feature_drift_table`.

    Examples
    --------
    >>> bins = reference_bins(["yes"] * 50 + ["no"] * 50, kind="categorical")
    >>> prediction_drift(bins, [50, 50, 0])["severity"]
    'stable'
    """
    if not isinstance(reference_bins_, Mapping):
        raise ValueError("reference_bins_ must be a dict from reference_bins")
    return _drift_row(str(name), reference_bins_, current_counts,
                      reference_sample=reference_sample, current_sample=current_sample)


def drift_table_from_frames(reference: pd.DataFrame, current: pd.DataFrame, *, feature_meta: Iterable[Mapping],
                            n_bins: int = 10) -> list[dict]:
    """Convenience for small in-memory frames (reports, tests, the simulator).

    Bins each feature of ``feature_meta`` on ``reference``, counts
    ``current`` on the same bins and calls :func:`feature_drift_table` with
    raw samples so numeric features get the exact KS test.

    Examples
    --------
    >>> ref = pd.DataFrame({"x": range(100)})
    >>> rows = drift_table_from_frames(ref, ref, feature_meta=[{"name": "x", "kind": "numeric"}])
    >>> rows[0]["psi"], rows[0]["p_value"]
    (0.0, 1.0)
    """
    if not isinstance(reference, pd.DataFrame) or not isinstance(current, pd.DataFrame):
        raise ValueError("reference and current must be pandas DataFrames")
    bins, counts, ref_samples, cur_samples = {}, {}, {}, {}
    for meta in feature_meta:
        name = meta.get("name")
        if name not in reference.columns:
            raise ValueError(f"feature {name!r} is not a column of reference")
        bins[name] = reference_bins(reference[name], kind=meta.get("kind"), n_bins=n_bins)
        if name in current.columns:
            counts[name] = bin_counts(current[name], bins[name])
            if meta.get("kind") == "numeric":
                ref_samples[name] = reference[name]
                cur_samples[name] = current[name]
    return feature_drift_table(bins, counts, current_samples=cur_samples, reference_samples=ref_samples)
