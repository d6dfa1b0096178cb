"""Range violations and the outlier score."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from app.ml import anomaly

META = [
    {"name": "age", "kind": "numeric", "min": 18, "max": 90, "q01": 19, "q99": 85, "integer": True,
     "log_scale": False, "levels": None},
    {"name": "income", "kind": "numeric", "min": 0, "max": 1e6, "log_scale": True, "levels": None},
    {"name": "city", "kind": "categorical", "levels": ["Oslo", "Bergen", "Tromso"]},
]


@pytest.fixture()
def reference():
    rng = np.random.default_rng(3)
    n = 2000
    return pd.DataFrame({
        "age": rng.integers(18, 91, size=n).astype(float),
        "income": rng.lognormal(10, 0.6, size=n),
        "city": rng.choice(["Oslo", "Bergen", "Tromso"], size=n, p=[0.6, 0.35, 0.05]),
    })


# ----------------------------------------------------------- range checks

def test_range_violations_counts_each_kind():
    records = [
        {"age": 17, "income": 100.0, "city": "Oslo"},
        {"age": 95, "income": -5.0, "city": "Paris"},
        {"age": None, "income": 2e6, "city": "Paris"},
        {"age": "old", "income": 10.0, "city": "Rome"},
        {"age": 40, "income": 10.0, "city": None, "extra": 1},
    ]
    out = anomaly.range_violations(records, feature_meta=META)
    age, income, city = (out["features"][k] for k in ("age", "income", "city"))
    assert out["n_rows"] == 5
    assert (age["below_min"], age["above_max"], age["missing"], age["non_numeric"]) == (1, 1, 1, 1)
    assert (income["below_min"], income["above_max"], income["missing"]) == (1, 1, 0)
    assert (city["unseen"], city["missing"]) == (3, 1)
    assert city["unseen_examples"] == ["Paris", "Rome"]
    assert out["totals"]["unseen"] == 3
    assert out["totals"]["below_min"] == 2
    assert out["totals"]["rows_with_violation"] == 5
    assert out["unknown_columns"] == ["extra"]
    json.dumps(out)


def test_range_violations_frame_equals_records_and_boundaries_are_inside():
    frame = pd.DataFrame({"age": [18, 90, 50], "income": [0.0, 1e6, 3.0], "city": ["Oslo", "Bergen", "Tromso"]})
    out = anomaly.range_violations(frame, feature_meta=META)
    assert out["totals"] == {"missing": 0, "non_numeric": 0, "below_min": 0, "above_max": 0, "unseen": 0,
                             "rows_with_violation": 0}
    assert anomaly.range_violations(frame.to_dict("records"), feature_meta=META) == out


def test_range_violations_absent_column_is_missing():
    out = anomaly.range_violations([{"age": 30}, {"age": 31}], feature_meta=META)
    assert out["features"]["city"]["absent"] is True
    assert out["features"]["city"]["missing"] == 2
    assert out["features"]["age"]["absent"] is False


def test_row_violation_counts():
    records = [{"age": 30, "income": 5.0, "city": "Oslo"}, {"age": 10, "income": None, "city": "Rome"}]
    assert anomaly.row_violation_counts(records, feature_meta=META).tolist() == [0, 3]


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"name": "x"}, "list of feature dicts"),
        ([{"kind": "numeric"}], "name"),
        ([{"name": "x", "kind": "numeric"}, {"name": "x", "kind": "numeric"}], "twice"),
        ([{"name": "x", "kind": "text"}], "kind"),
        ([{"name": "x", "kind": "numeric", "min": "low"}], "bound"),
    ],
)
def test_range_violations_rejects_bad_meta(meta, match):
    with pytest.raises(ValueError, match=match):
        anomaly.range_violations([{"x": 1}], feature_meta=meta)


def test_range_violations_rejects_bad_records():
    with pytest.raises(ValueError, match="single dict"):
        anomaly.range_violations({"x": 1}, feature_meta=META)
    with pytest.raises(ValueError, match="dicts"):
        anomaly.range_violations([1, 2], feature_meta=META)


# -------------------------------------------------------------- the scorer

def test_scorer_reference_calibration(reference):
    scorer = anomaly.OutlierScorer(feature_meta=META).fit(reference)
    s = scorer.score(reference)
    assert s.min() >= 0
    # By construction about 1 % of reference rows score above 1.
    assert 0.005 <= (s > 1).mean() <= 0.015


def test_scorer_numeric_component_is_robust_distance(reference):
    scorer = anomaly.OutlierScorer(feature_meta=[META[0]]).fit(reference[["age"]])
    age = reference["age"].to_numpy()
    med = np.median(age)
    iqr = np.subtract(*np.quantile(age, [0.75, 0.25]))
    z99 = np.quantile(np.abs(age - med) / iqr, 0.99)
    x = np.array([med, med + iqr, med - 3 * iqr])
    expected = np.abs(x - med) / iqr / z99 / scorer.to_dict()["calibration"]
    np.testing.assert_allclose(scorer.score(pd.DataFrame({"age": x})), expected)
    # Median is the least strange value; further is stranger, both directions.
    s = scorer.score(pd.DataFrame({"age": [med, med + 10, med + 100, med - 100]}))
    assert s[0] == 0 and s[0] < s[1] < s[2] and s[2] == pytest.approx(s[3])


def test_scorer_ranks_planted_outliers_first(reference):
    scorer = anomaly.OutlierScorer(feature_meta=META).fit(reference)
    current = reference.sample(500, random_state=0).reset_index(drop=True)
    current.loc[0, "age"] = 400.0
    current.loc[1, "income"] = 1e9
    current.loc[2, "city"] = "Atlantis"
    scores = scorer.score(current)
    assert set(np.argsort(-scores)[:3]) == {0, 1, 2}
    assert (scores[:3] > 1).all()
    top = scorer.contributions(current.head(3)).idxmax(axis=1).tolist()
    assert top == ["age", "income", "city"]


def test_scorer_rare_category_stranger_than_common(reference):
    scorer = anomaly.OutlierScorer(feature_meta=[META[2]]).fit(reference[["city"]])
    s = scorer.score(pd.DataFrame({"city": ["Oslo", "Tromso", "Nowhere"]}))
    assert s[0] < s[1] < s[2]


def test_scorer_missing_values_and_absent_columns(reference):
    scorer = anomaly.OutlierScorer(feature_meta=META, missing_component=5.0).fit(reference)
    row = reference.head(1).copy()
    base = scorer.score(row)[0]
    row.loc[row.index[0], "age"] = np.nan
    assert scorer.score(row)[0] == pytest.approx(5.0 / scorer.to_dict()["calibration"])
    assert scorer.score(reference.head(3).drop(columns="city")).min() >= 5.0 / scorer.to_dict()["calibration"]
    assert base < scorer.score(row)[0]


def test_scorer_round_trips_through_json(reference):
    scorer = anomaly.OutlierScorer(feature_meta=META).fit(reference)
    state = json.loads(json.dumps(scorer.to_dict()))
    clone = anomaly.OutlierScorer.from_dict(state)
    np.testing.assert_array_equal(clone.score(reference), scorer.score(reference))


def test_scorer_infers_kinds_without_meta(reference):
    scorer = anomaly.OutlierScorer().fit(reference)
    state = scorer.to_dict()
    assert set(state["numeric"]) == {"age", "income"}
    assert set(state["categorical"]) == {"city"}


def test_scorer_is_fast_on_10k_rows(reference):
    scorer = anomaly.OutlierScorer(feature_meta=META).fit(reference)
    big = pd.concat([reference] * 5, ignore_index=True)
    scorer.score(big)
    start = time.perf_counter()
    scorer.score(big)
    assert time.perf_counter() - start < 0.1


def test_scorer_errors(reference):
    with pytest.raises(ValueError, match="not fitted"):
        anomaly.OutlierScorer().score(reference)
    with pytest.raises(ValueError, match="rare_share"):
        anomaly.OutlierScorer(rare_share=1.5)
    with pytest.raises(ValueError, match="not columns"):
        anomaly.OutlierScorer(feature_meta=META).fit(reference[["age"]])
    with pytest.raises(ValueError, match="no rows"):
        anomaly.OutlierScorer().fit(reference.head(0))
    with pytest.raises(ValueError, match="not a serialised"):
        anomaly.OutlierScorer.from_dict({"numeric": {}})
    state = anomaly.OutlierScorer().fit(reference).to_dict()
    del state["numeric"]["age"]
    with pytest.raises(ValueError, match="age"):
        anomaly.OutlierScorer.from_dict(state)
