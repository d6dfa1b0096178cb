"""Tests for app.ml.neighbours: agrees with a brute-force loop, fast on 100k rows."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from app.ml.neighbours import nearest_rows

META = [
    {"name": "age", "kind": "numeric", "min": 0.0, "max": 100.0, "q25": 30.0, "q75": 50.0, "integer": True},
    {"name": "score", "kind": "numeric", "min": -5.0, "max": 5.0, "q25": 0.0, "q75": 0.0},  # IQR 0: range
    {"name": "color", "kind": "categorical", "levels": ["red", "green", "blue"]},
]
ROW = {"age": 40, "score": 0.5, "color": "green"}


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(0, 101, n),
        "score": rng.uniform(-5, 5, n),
        "color": rng.choice(["red", "green", "blue"], n),
    }, index=pd.RangeIndex(1000, 1000 + n))


def brute_force(frame: pd.DataFrame, row: dict) -> list[tuple[float, int]]:
    out = []
    for label, r in frame.iterrows():
        d = 0.0
        d += 1.0 if pd.isna(r["age"]) else abs(r["age"] - row["age"]) / 20.0
        d += 1.0 if pd.isna(r["score"]) else abs(r["score"] - row["score"]) / 10.0
        d += 1.0 if r["color"] != row["color"] else 0.0
        out.append((d, label))
    return sorted(out, key=lambda t: t[0])


def test_matches_brute_force_distances_and_labels():
    frame = make_frame(300)
    result = nearest_rows(frame, ROW, feature_meta=META, k=7)
    expected = brute_force(frame, ROW)[:7]
    assert [r["index"] for r in result] == [label for _, label in expected]
    assert [r["distance"] for r in result] == pytest.approx([d for d, _ in expected])


def test_exclude_index_leaves_the_row_itself_out():
    frame = make_frame(50)
    row = frame.loc[1010].to_dict()
    first = nearest_rows(frame, row, feature_meta=META, k=1)
    assert first == [{"index": 1010, "distance": 0.0}]
    result = nearest_rows(frame, row, feature_meta=META, k=3, exclude_index=1010)
    assert 1010 not in [r["index"] for r in result] and len(result) == 3


def test_missing_values_count_as_one_unit():
    frame = pd.DataFrame({"age": [40.0, np.nan], "score": [0.5, 0.5], "color": ["green", None]})
    result = nearest_rows(frame, ROW, feature_meta=META, k=2)
    assert result == [{"index": 0, "distance": 0.0}, {"index": 1, "distance": 2.0}]


def test_ties_keep_frame_order_and_k_is_capped():
    frame = pd.DataFrame({"age": [41, 39, 41], "score": [0.5, 0.5, 0.5], "color": ["green"] * 3})
    result = nearest_rows(frame, ROW, feature_meta=META, k=10)
    assert [r["index"] for r in result] == [0, 1, 2]


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(k=0), "k must"),
    (dict(row={"age": "x", "score": 0.0, "color": "red"}), "age"),
    (dict(frame=pd.DataFrame({"age": [1]})), "lacks"),
])
def test_validation(kwargs, fragment):
    args = dict(frame=make_frame(5), row=ROW, k=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        nearest_rows(args["frame"], args["row"], feature_meta=META, k=args["k"])


def test_100k_rows_answer_well_under_100_ms():
    frame = make_frame(100_000, seed=1)
    nearest_rows(frame, ROW, feature_meta=META, k=5)  # warm-up
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        result = nearest_rows(frame, ROW, feature_meta=META, k=5)
        timings.append(time.perf_counter() - start)
    assert len(result) == 5
    assert min(timings) < 0.05, timings
