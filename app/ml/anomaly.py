"""Input anomalies in logged records: range violations and an outlier score.

Two complementary views of "strange input":

* :func:`range_violations` checks each record against the feature metadata
  of the model version (numeric values below ``min`` / above ``max`` of the
  reference data, categories never seen in training, missing values).
* :class:`OutlierScorer` gives every record one number saying how far it
  lies from the reference data, fitted once per model version and stored as
  JSON (:meth:`OutlierScorer.to_dict`), never pickled.

Feature metadata is a list of dicts as produced by ``app.ml.features``:
``{"name", "kind": "numeric" | "categorical", "min", "max", "levels",
"log_scale", ...}``; keys not used here are ignored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

_KINDS = ("numeric", "categorical")
_N_EXAMPLES = 5
_FORMAT = "glassbox-outlier-scorer"
_VERSION = 1


def _as_frame(frame_or_records: Any, *, name: str = "frame_or_records") -> pd.DataFrame:
    if isinstance(frame_or_records, pd.DataFrame):
        return frame_or_records
    if isinstance(frame_or_records, Mapping):
        raise ValueError(f"{name} must be a DataFrame or a list of record dicts, got a single dict")
    try:
        records = list(frame_or_records)
    except TypeError:
        raise ValueError(f"{name} must be a DataFrame or a list of record dicts, "
                         f"got {type(frame_or_records).__name__}") from None
    if any(not isinstance(r, Mapping) for r in records):
        raise ValueError(f"{name} must hold dicts, one per record")
    return pd.DataFrame.from_records(records)


def _check_meta(feature_meta: Any) -> list[dict]:
    if isinstance(feature_meta, Mapping) or not isinstance(feature_meta, Iterable):
        raise ValueError("feature_meta must be a list of feature dicts")
    metas = list(feature_meta)
    seen: set[str] = set()
    for meta in metas:
        if not isinstance(meta, Mapping) or not meta.get("name"):
            raise ValueError(f"each feature_meta entry needs a 'name', got {meta!r}")
        if meta.get("kind") not in _KINDS:
            raise ValueError(f"feature {meta['name']!r} has kind {meta.get('kind')!r}; expected one of {_KINDS}")
        if meta["name"] in seen:
            raise ValueError(f"feature {meta['name']!r} appears twice in feature_meta")
        seen.add(meta["name"])
    return [dict(m) for m in metas]


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"numeric bound must be a number, got {value!r}") from None
    return None if math.isnan(out) else out


def _violation_masks(frame: pd.DataFrame, metas: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """Boolean masks per feature: missing, non_numeric, below_min, above_max, unseen."""
    n = len(frame)
    masks: dict[str, dict[str, np.ndarray]] = {}
    for meta in metas:
        name = meta["name"]
        none = np.zeros(n, dtype=bool)
        if name not in frame.columns:
            masks[name] = {"missing": np.ones(n, dtype=bool), "non_numeric": none, "below_min": none,
                           "above_max": none, "unseen": none}
            continue
        col = frame[name]
        missing = col.isna().to_numpy()
        if meta["kind"] == "numeric":
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            bad = np.isnan(values) & ~missing
            lo, hi = _num(meta.get("min")), _num(meta.get("max"))
            below = values < lo if lo is not None else none
            above = values > hi if hi is not None else none
            masks[name] = {"missing": missing, "non_numeric": bad, "below_min": below, "above_max": above,
                           "unseen": none}
        else:
            levels = meta.get("levels")
            if levels is None:
                unseen = none
            else:
                known = {str(v) for v in levels}
                codes, uniques = pd.factorize(col, use_na_sentinel=True)
                new_level = np.array([str(u) not in known for u in uniques] + [False])
                unseen = new_level[codes]  # code -1 (missing) picks the trailing False
            masks[name] = {"missing": missing, "non_numeric": none, "below_min": none, "above_max": none,
                           "unseen": unseen}
    return masks


def range_violations(frame_or_records: Any, *, feature_meta: Iterable[Mapping]) -> dict:
    """Count values outside the reference ranges, unseen categories and missing values.

    Parameters
    ----------
    frame_or_records : DataFrame or list of dict
        Current records, one column (key) per feature.
    feature_meta : list of dict
        ``{"name", "kind", "min", "max", "levels"}`` per feature. A numeric
        feature without ``min``/``max`` is not range-checked; a categorical
        feature without ``levels`` is not checked for unseen categories.

    Returns
    -------
    dict
        ``{"n_rows", "features": {name: {"kind", "missing", "non_numeric",
        "below_min", "above_max", "unseen", "unseen_examples", "absent"}},
        "totals": {...same counts summed..., "rows_with_violation"},
        "unknown_columns": [...]}``. ``unseen_examples`` lists up to five
        unseen categories, most frequent first. ``absent`` is true when the
        column is not in the input at all (every value counts as missing).

    Examples
    --------
    >>> meta = [{"name": "age", "kind": "numeric", "min": 18, "max": 90},
    ...         {"name": "city", "kind": "categorical", "levels": ["Oslo", "Bergen"]}]
    >>> out = range_violations([{"age": 12, "city": "Oslo"}, {"age": None, "city": "Paris"}],
    ...                        feature_meta=meta)
    >>> out["features"]["age"]["below_min"], out["features"]["age"]["missing"]
    (1, 1)
    >>> out["features"]["city"]["unseen_examples"]
    ['Paris']
    """
    metas = _check_meta(feature_meta)
    frame = _as_frame(frame_or_records)
    masks = _violation_masks(frame, metas)
    kinds = ("missing", "non_numeric", "below_min", "above_max", "unseen")
    features: dict[str, dict] = {}
    any_row = np.zeros(len(frame), dtype=bool)
    for meta in metas:
        name = meta["name"]
        m = masks[name]
        entry: dict[str, Any] = {"kind": meta["kind"], "absent": name not in frame.columns}
        for k in kinds:
            entry[k] = int(m[k].sum())
        examples: list[str] = []
        if entry["unseen"]:
            counts = frame.loc[m["unseen"], name].astype(object).map(str).value_counts()
            examples = [str(v) for v in counts.index[:_N_EXAMPLES]]
        entry["unseen_examples"] = examples
        features[name] = entry
        for k in kinds:
            any_row |= m[k]
    totals = {k: int(sum(f[k] for f in features.values())) for k in kinds}
    totals["rows_with_violation"] = int(any_row.sum())
    known_names = {m["name"] for m in metas}
    return {
        "n_rows": int(len(frame)),
        "features": features,
        "totals": totals,
        "unknown_columns": sorted(str(c) for c in frame.columns if c not in known_names),
    }


def row_violation_counts(frame_or_records: Any, *, feature_meta: Iterable[Mapping]) -> np.ndarray:
    """Number of violated checks per record (missing, out of range, unseen, non-numeric).

    Useful to list the worst records of a bucket next to their outlier score.

    Examples
    --------
    >>> meta = [{"name": "x", "kind": "numeric", "min": 0, "max": 1}]
    >>> row_violation_counts([{"x": 0.5}, {"x": 3}, {}], feature_meta=meta).tolist()
    [0, 1, 1]
    """
    metas = _check_meta(feature_meta)
    frame = _as_frame(frame_or_records)
    total = np.zeros(len(frame), dtype=np.int64)
    for m in _violation_masks(frame, metas).values():
        for mask in m.values():
            total += mask
    return total


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


class OutlierScorer:
    """Score how far records lie from the reference data; larger is stranger.

    Per feature a component ``c_j >= 0`` is computed:

    * numeric: ``|x - median| / IQR`` on the reference (on a signed
      ``log1p`` scale for ``log_scale`` features), divided by the 99th
      percentile of that distance over the reference rows, so ``c_j = 1``
      means "as far out as the 1 % most extreme reference values". A zero
      IQR falls back to the mean absolute deviation, then to 1.
    * categorical: ``log(1 / p) / log(1 / rare_share)`` with ``p`` the
      reference share of the category; a category with share
      ``rare_share`` gets 1, an unseen category is given share
      ``1 / (n_reference + 1)``.
    * a missing value gets ``missing_component``.

    The record's score is ``max_j c_j / s99`` where ``s99`` is the 99th
    percentile of ``max_j c_j`` over the reference rows. Scores are >= 0;
    about 1 % of reference records score above 1, and the feature that
    drives a score is the largest column of :meth:`contributions`.

    Parameters
    ----------
    feature_meta : list of dict, optional
        Names and kinds (and ``log_scale``) of the features to use. Without
        it every column of the fitted frame is used, numeric dtypes as
        numeric and everything else as categorical.
    rare_share : float, default=0.01
        The reference share at which a category counts as rare.
    missing_component : float, default=1.0
        Component of a missing value.

    Examples
    --------
    >>> ref = pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    >>> scorer = OutlierScorer().fit(ref)
    >>> s = scorer.score(pd.DataFrame({"x": [50.0, 1000.0], "c": ["a", "zzz"]}))
    >>> bool(s[0] < 1 < s[1])
    True
    >>> OutlierScorer.from_dict(scorer.to_dict()).score(ref.head(2)).round(6).tolist() == \\
    ...     scorer.score(ref.head(2)).round(6).tolist()
    True
    """

    def __init__(self, *, feature_meta: Iterable[Mapping] | None = None, rare_share: float = 0.01,
                 missing_component: float = 1.0) -> None:
        if not (isinstance(rare_share, (int, float)) and 0 < rare_share < 1):
            raise ValueError(f"rare_share must be in (0, 1), got {rare_share!r}")
        if not (isinstance(missing_component, (int, float)) and missing_component >= 0
                and math.isfinite(missing_component)):
            raise ValueError(f"missing_component must be a finite number >= 0, got {missing_component!r}")
        self.feature_meta = None if feature_meta is None else _check_meta(feature_meta)
        self.rare_share = float(rare_share)
        self.missing_component = float(missing_component)
        self.numeric_: dict[str, dict] = {}
        self.categorical_: dict[str, dict] = {}
        self.features_: list[str] = []
        self.calibration_: float | None = None
        self.n_reference_: int = 0

    # ---------------------------------------------------------------- fitting
    def fit(self, frame: pd.DataFrame) -> OutlierScorer:
        """Learn medians, IQRs and category shares from the reference frame."""
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
        if len(frame) == 0:
            raise ValueError("frame has no rows to fit on")
        if self.feature_meta is not None:
            metas = self.feature_meta
            missing = [m["name"] for m in metas if m["name"] not in frame.columns]
            if missing:
                raise ValueError(f"features {missing} are not columns of frame")
        else:
            metas = [{"name": c, "kind": "numeric" if (pd.api.types.is_numeric_dtype(frame[c])
                                                       and not pd.api.types.is_bool_dtype(frame[c]))
                      else "categorical"} for c in frame.columns]
        if not metas:
            raise ValueError("no features to fit on")
        n = len(frame)
        self.numeric_, self.categorical_ = {}, {}
        self.features_ = [str(m["name"]) for m in metas]
        self.n_reference_ = int(n)
        for meta in metas:
            name = meta["name"]
            if meta["kind"] == "numeric":
                x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                x = x[np.isfinite(x)]
                if x.size == 0:
                    raise ValueError(f"numeric feature {name!r} has no finite reference values")
                log = bool(meta.get("log_scale", False))
                if log:
                    x = _signed_log(x)
                med = float(np.median(x))
                q25, q75 = np.quantile(x, [0.25, 0.75])
                scale = float(q75 - q25)
                if scale <= 0:
                    scale = float(np.mean(np.abs(x - med)))
                if scale <= 0:
                    scale = 1.0
                z = np.abs(x - med) / scale
                z99 = float(np.quantile(z, 0.99))
                if z99 <= 0:
                    z99 = float(z.max()) if z.max() > 0 else 1.0
                self.numeric_[name] = {"median": med, "iqr": scale, "z99": z99, "log_scale": log}
            else:
                col = frame[name]
                strings = col[col.notna()].astype(object).map(str)
                shares = (strings.value_counts() / n).to_dict()
                self.categorical_[name] = {"shares": {str(k): float(v) for k, v in shares.items()},
                                           "unseen_share": 1.0 / (n + 1)}
        self.calibration_ = 1.0
        raw = self._components(frame).max(axis=1)
        s99 = float(np.quantile(raw, 0.99))
        self.calibration_ = s99 if s99 > 0 else 1.0
        return self

    def _check_fitted(self) -> None:
        if self.calibration_ is None:
            raise ValueError("OutlierScorer is not fitted; call fit() or from_dict() first")

    # ---------------------------------------------------------------- scoring
    def _components(self, frame: pd.DataFrame) -> np.ndarray:
        n = len(frame)
        out = np.empty((n, len(self.features_)), dtype=float)
        log_rare = math.log(1.0 / self.rare_share)
        for j, name in enumerate(self.features_):
            if name not in frame.columns:
                out[:, j] = self.missing_component
                continue
            if name in self.numeric_:
                p = self.numeric_[name]
                x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                if p["log_scale"]:
                    x = _signed_log(x)
                c = np.abs(x - p["median"]) / (p["iqr"] * p["z99"])
                c[~np.isfinite(c)] = self.missing_component
            else:
                p = self.categorical_[name]
                # Factorise first so only the distinct values go through str().
                codes, uniques = pd.factorize(frame[name], use_na_sentinel=True)
                table = np.array([p["shares"].get(str(u), p["unseen_share"]) for u in uniques] or [1.0])
                c = np.log(1.0 / table[np.maximum(codes, 0)]) / log_rare
                c[codes < 0] = self.missing_component
            out[:, j] = c
        return out

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Calibrated per-feature components; the row maximum is the score.

        Examples
        --------
        >>> s = OutlierScorer().fit(pd.DataFrame({"x": np.arange(100.0)}))
        >>> s.contributions(pd.DataFrame({"x": [49.5]}))["x"].tolist()
        [0.0]
        """
        self._check_fitted()
        frame = _as_frame(frame, name="frame")
        comp = self._components(frame) / self.calibration_
        return pd.DataFrame(comp, columns=self.features_, index=frame.index)

    def score(self, frame: Any) -> np.ndarray:
        """Outlier score per record, >= 0; above 1 is stranger than 99 % of the reference.

        Parameters
        ----------
        frame : DataFrame or list of dict
            Records with the fitted feature columns; an absent column counts
            as missing in every record.

        Returns
        -------
        ndarray of shape (n_records,)

        Examples
        --------
        >>> s = OutlierScorer().fit(pd.DataFrame({"x": np.arange(100.0)}))
        >>> bool(s.score([{"x": 500.0}])[0] > 1)
        True
        """
        self._check_fitted()
        frame = _as_frame(frame, name="frame")
        if len(frame) == 0:
            return np.empty(0, dtype=float)
        return self._components(frame).max(axis=1) / self.calibration_

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """Return the fitted state as plain JSON-able data."""
        self._check_fitted()
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "features": list(self.features_),
            "numeric": {k: dict(v) for k, v in self.numeric_.items()},
            "categorical": {k: {"shares": dict(v["shares"]), "unseen_share": v["unseen_share"]}
                            for k, v in self.categorical_.items()},
            "rare_share": self.rare_share,
            "missing_component": self.missing_component,
            "calibration": self.calibration_,
            "n_reference": self.n_reference_,
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> OutlierScorer:
        """Rebuild a fitted scorer from :meth:`to_dict` output."""
        if not isinstance(state, Mapping) or state.get("format") != _FORMAT:
            raise ValueError("state is not a serialised OutlierScorer")
        if state.get("version") != _VERSION:
            raise ValueError(f"unsupported OutlierScorer state version {state.get('version')!r}")
        try:
            obj = cls(rare_share=state["rare_share"], missing_component=state["missing_component"])
            features = [str(f) for f in state["features"]]
            numeric = {str(k): {"median": float(v["median"]), "iqr": float(v["iqr"]), "z99": float(v["z99"]),
                                "log_scale": bool(v["log_scale"])} for k, v in state["numeric"].items()}
            categorical = {str(k): {"shares": {str(a): float(b) for a, b in v["shares"].items()},
                                    "unseen_share": float(v["unseen_share"])}
                           for k, v in state["categorical"].items()}
            calibration = float(state["calibration"])
            n_reference = int(state["n_reference"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"OutlierScorer state is incomplete: {exc!r}") from None
        unknown = [f for f in features if f not in numeric and f not in categorical]
        if unknown:
            raise ValueError(f"OutlierScorer state has no parameters for features {unknown}")
        if not (calibration > 0 and math.isfinite(calibration)):
            raise ValueError(f"OutlierScorer state has an invalid calibration {calibration!r}")
        for name, p in numeric.items():
            if not (p["iqr"] > 0 and p["z99"] > 0):
                raise ValueError(f"OutlierScorer state has a non-positive scale for {name!r}")
        obj.features_, obj.numeric_, obj.categorical_ = features, numeric, categorical
        obj.calibration_, obj.n_reference_ = calibration, n_reference
        return obj
