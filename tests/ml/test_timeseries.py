"""Per-bucket performance against sklearn, and alert rules that fire exactly when they should."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    precision_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from app.ml import timeseries as ts

EDGES = np.linspace(0, 1, 21)


def _binary_buckets(rng, n_buckets=4, label_rate=0.7):
    """Simulated log: aggregates per bucket the way SQL would compute them, plus the raw rows."""
    rows, raw = [], []
    for b in range(n_buckets):
        n = int(rng.integers(50, 120))
        y = rng.integers(0, 2, size=n)
        score = np.clip(0.3 * y + rng.normal(0.35, 0.2, size=n), 0, 1)
        pred = (score >= 0.5).astype(int)
        labelled = rng.random(n) < label_rate
        yl, pl, sl = y[labelled], pred[labelled], score[labelled]
        idx = np.clip(np.searchsorted(EDGES, sl, side="right") - 1, 0, len(EDGES) - 2)
        rows.append({
            "time": f"2026-03-0{b + 1}T00:00:00", "n": n, "n_labelled": int(labelled.sum()),
            "correct": int((yl == pl).sum()),
            "tp": int(((yl == 1) & (pl == 1)).sum()), "fp": int(((yl == 0) & (pl == 1)).sum()),
            "tn": int(((yl == 0) & (pl == 0)).sum()), "fn": int(((yl == 1) & (pl == 0)).sum()),
            "pos_hist": np.bincount(idx[yl == 1], minlength=20).tolist(),
            "neg_hist": np.bincount(idx[yl == 0], minlength=20).tolist(),
        })
        raw.append((yl, pl, idx))
    return rows, raw


def test_binary_bucket_metrics_match_sklearn():
    rng = np.random.default_rng(11)
    rows, raw = _binary_buckets(rng)
    out = ts.bucket_performance(rows, task="binary")
    assert out["time"] == [r["time"] for r in rows]
    for i, (y, p, idx) in enumerate(raw):
        assert out["accuracy"][i] == pytest.approx(accuracy_score(y, p))
        assert out["precision"][i] == pytest.approx(precision_score(y, p))
        assert out["recall"][i] == pytest.approx(recall_score(y, p))
        assert out["f1"][i] == pytest.approx(f1_score(y, p))
        assert out["roc_auc"][i] == pytest.approx(roc_auc_score(y, idx))
        assert out["label_share"][i] == pytest.approx(rows[i]["n_labelled"] / rows[i]["n"])
    y_all = np.concatenate([r[0] for r in raw])
    p_all = np.concatenate([r[1] for r in raw])
    idx_all = np.concatenate([r[2] for r in raw])
    assert out["overall"]["f1"] == pytest.approx(f1_score(y_all, p_all))
    assert out["overall"]["accuracy"] == pytest.approx(accuracy_score(y_all, p_all))
    assert out["overall"]["roc_auc"] == pytest.approx(roc_auc_score(y_all, idx_all))
    assert out["overall"]["n"] == sum(r["n"] for r in rows)
    json.dumps(out)


def test_buckets_without_labels_give_none():
    rows = [
        {"time": "t1", "n": 20, "n_labelled": 0, "tp": None, "fp": None, "tn": None, "fn": None},
        {"time": "t2", "n": 0, "n_labelled": 0},
        {"time": "t3", "n": 10, "n_labelled": 4, "tp": 0, "fp": 0, "tn": 4, "fn": 0},
    ]
    out = ts.bucket_performance(rows, task="binary")
    assert out["accuracy"] == [None, None, 1.0]
    assert out["f1"] == [None, None, None]  # no positives at all: F1 undefined
    assert out["roc_auc"] == [None, None, None]
    assert out["label_share"] == [0.0, None, 0.4]
    assert out["n"] == [20, 0, 10]


def test_multiclass_accuracy():
    rng = np.random.default_rng(5)
    rows, truth = [], []
    for b in range(3):
        y = rng.integers(0, 3, size=60)
        p = np.where(rng.random(60) < 0.7, y, rng.integers(0, 3, size=60))
        rows.append({"time": b, "n": 80, "n_labelled": 60, "correct": int((y == p).sum())})
        truth.append(accuracy_score(y, p))
    out = ts.bucket_performance(rows, task="multiclass")
    assert out["accuracy"] == pytest.approx(truth)
    assert "f1" not in out


def test_regression_metrics_match_sklearn():
    rng = np.random.default_rng(2)
    rows, raw = [], []
    for b in range(3):
        y = rng.normal(10, 3, size=40)
        p = y + rng.normal(0.5, 1.0, size=40)
        rows.append({"time": b, "n": 50, "n_labelled": 40, "sum_sq_err": float(np.sum((p - y) ** 2)),
                     "sum_abs_err": float(np.sum(np.abs(p - y))), "sum_err": float(np.sum(p - y))})
        raw.append((y, p))
    rows.append({"time": 3, "n": 7, "n_labelled": 0, "sum_sq_err": None, "sum_abs_err": None})
    out = ts.bucket_performance(rows, task="regression")
    for i, (y, p) in enumerate(raw):
        assert out["rmse"][i] == pytest.approx(root_mean_squared_error(y, p))
        assert out["mae"][i] == pytest.approx(mean_absolute_error(y, p))
        assert out["bias"][i] == pytest.approx(np.mean(p - y))
    assert out["rmse"][3] is None and out["mae"][3] is None
    y_all = np.concatenate([r[0] for r in raw])
    p_all = np.concatenate([r[1] for r in raw])
    assert out["overall"]["rmse"] == pytest.approx(root_mean_squared_error(y_all, p_all))
    assert out["overall"]["label_share"] == pytest.approx(120 / 157)


@pytest.mark.parametrize(
    ("rows", "task", "match"),
    [
        ([{"time": 1, "n": 1, "n_labelled": 1}], "ranking", "task"),
        ([{"n": 1, "n_labelled": 1}], "multiclass", "'time'"),
        ([{"time": 1, "n": 1, "n_labelled": 2, "correct": 1}], "multiclass", "exceeds"),
        ([{"time": 1, "n": 3, "n_labelled": 2, "correct": 3}], "multiclass", "correct"),
        ([{"time": 1, "n": 3, "n_labelled": 2, "tp": 1, "fp": 0, "tn": 0, "fn": 0}], "binary", "differs"),
        ([{"time": 1, "n": 3, "n_labelled": -1}], "multiclass", "non-negative"),
        ([{"time": 1, "n": 3, "n_labelled": 2}], "regression", "sum_sq_err"),
        ({"time": 1}, "binary", "list"),
    ],
)
def test_bucket_performance_rejects_bad_rows(rows, task, match):
    with pytest.raises(ValueError, match=match):
        ts.bucket_performance(rows, task=task)


# -------------------------------------------------------------------- AUC

@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.booleans()), min_size=2, max_size=200))
def test_roc_auc_from_histograms_matches_sklearn_on_binned_scores(pairs):
    bins = np.array([b for b, _ in pairs])
    y = np.array([int(lab) for _, lab in pairs])
    pos = np.bincount(bins[y == 1], minlength=10)
    neg = np.bincount(bins[y == 0], minlength=10)
    ours = ts.roc_auc_from_histograms(pos, neg)
    if y.min() == y.max():
        assert ours is None
    else:
        assert ours == pytest.approx(roc_auc_score(y, bins), rel=1e-12)


def test_roc_auc_from_histograms_approaches_raw_auc():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=4000)
    s = 1 / (1 + np.exp(-(y * 1.2 + rng.normal(size=4000))))
    edges = np.linspace(0, 1, 101)
    pos, _ = np.histogram(s[y == 1], bins=edges)
    neg, _ = np.histogram(s[y == 0], bins=edges)
    assert ts.roc_auc_from_histograms(pos, neg) == pytest.approx(roc_auc_score(y, s), abs=2e-3)


def test_roc_auc_from_histograms_rejects_bad_input():
    with pytest.raises(ValueError, match="bins"):
        ts.roc_auc_from_histograms([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        ts.roc_auc_from_histograms([1, -2], [1, 2])


# ------------------------------------------------------------------ alerts

def _pooled(points, i, window):
    recent = [(v, n) for _, v, n in points[max(0, i - window + 1): i + 1] if v is not None]
    n = sum(k for _, k in recent)
    if not recent:
        return None, n
    return (sum(v * k for v, k in recent) / n if n else sum(v for v, _ in recent) / len(recent)), n


@settings(max_examples=80, deadline=None)
@given(
    points=st.lists(st.tuples(st.one_of(st.none(), st.floats(0, 1)), st.integers(0, 100)), min_size=1, max_size=15),
    comparison=st.sampled_from([">", ">=", "<", "<="]),
    threshold=st.floats(0, 1),
    window=st.integers(1, 4),
    min_samples=st.integers(0, 150),
)
def test_evaluate_rule_fires_exactly_when_condition_holds(points, comparison, threshold, window, min_samples):
    values = [{"time": i, "value": v, "n": n} for i, (v, n) in enumerate(points)]
    out = ts.evaluate_rule(values, comparison=comparison, threshold=threshold, window=window,
                           min_samples=min_samples)
    ops = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
    triples = [(i, v, n) for i, (v, n) in enumerate(points)]
    assert [r["time"] for r in out] == list(range(len(points)))
    for i, row in enumerate(out):
        value, n = _pooled(triples, i, window)
        assert row["n"] == n
        assert (row["value"] is None) == (value is None)
        if value is not None:
            assert row["value"] == pytest.approx(value)
        expected = value is not None and n >= min_samples and ops[comparison](value, threshold)
        # Avoid asserting on float ties produced by different summation orders.
        if value is None or not math.isclose(value, threshold, rel_tol=1e-9, abs_tol=1e-12):
            assert row["fired"] == expected


def test_evaluate_rule_boundaries_and_min_samples():
    vals = [{"time": "2026-01-02", "value": 0.25, "n": 10}, {"time": "2026-01-01", "value": 0.3, "n": 100}]
    out = ts.evaluate_rule(vals, comparison=">=", threshold=0.25, window=1, min_samples=10)
    assert [r["time"] for r in out] == ["2026-01-01", "2026-01-02"]  # sorted by time
    assert [r["fired"] for r in out] == [True, True]
    out = ts.evaluate_rule(vals, comparison=">", threshold=0.25, window=1, min_samples=10)
    assert [r["fired"] for r in out] == [True, False]
    out = ts.evaluate_rule(vals, comparison=">", threshold=0.25, window=1, min_samples=11)
    assert [r["fired"] for r in out] == [True, False]
    out = ts.evaluate_rule(vals, comparison=">", threshold=0.2, window=2, min_samples=110)
    assert [(r["n"], r["fired"]) for r in out] == [(100, False), (110, True)]
    assert out[1]["value"] == pytest.approx((0.3 * 100 + 0.25 * 10) / 110)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"comparison": "==", "threshold": 1}, "comparison"),
        ({"comparison": ">", "threshold": float("nan")}, "threshold"),
        ({"comparison": ">", "threshold": 1, "window": 0}, "window"),
        ({"comparison": ">", "threshold": 1, "min_samples": -1}, "min_samples"),
    ],
)
def test_evaluate_rule_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ts.evaluate_rule([{"time": 1, "value": 1.0, "n": 1}], **kwargs)


def test_evaluate_rule_rejects_bad_values():
    with pytest.raises(ValueError, match="'n'"):
        ts.evaluate_rule([{"time": 1, "value": 1.0}], comparison=">", threshold=0)
    with pytest.raises(ValueError, match="compared"):
        ts.evaluate_rule([{"time": 1, "value": 1.0, "n": 1}, {"time": "x", "value": 1.0, "n": 1}],
                         comparison=">", threshold=0)


def test_alert_events_are_rising_edges():
    vals = [{"time": i, "value": v, "n": 50} for i, v in enumerate([0.1, 0.3, 0.4, 0.1, 0.5])]
    events = ts.alert_events(ts.evaluate_rule(vals, comparison=">", threshold=0.25))
    assert [(e["time"], e["value"]) for e in events] == [(1, 0.3), (4, 0.5)]
