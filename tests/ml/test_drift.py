"""Drift statistics against scipy on the same samples."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from app.ml import drift


@pytest.fixture()
def rng():
    return np.random.default_rng(7)


# ----------------------------------------------------------------- binning

def test_reference_bins_numeric_edges_are_quantiles(rng):
    x = rng.normal(size=1000)
    b = drift.reference_bins(x, kind="numeric", n_bins=10)
    assert b["edges"][0] == -np.inf and b["edges"][-1] == np.inf
    np.testing.assert_allclose(b["edges"][1:-1], np.quantile(x, np.arange(1, 10) / 10))
    assert b["counts"] == [100] * 10
    assert b["n"] == 1000 and b["n_missing"] == 0
    assert len(b["labels"]) == 10
    back = json.loads(json.dumps(b))
    assert back == b


def test_reference_bins_merges_tied_quantiles_and_counts_missing():
    x = [0] * 80 + [1, 2, 3, 4, 5] * 4 + [None, np.nan]
    b = drift.reference_bins(x, kind="numeric", n_bins=10)
    inner = b["edges"][1:-1]
    assert inner == sorted(set(inner))
    assert sum(b["counts"]) == 100
    assert b["n_missing"] == 2
    # Left-closed bins: every zero sits in the bin starting at the first edge >= 0.
    assert b["counts"] == drift.bin_counts(x, b)


def test_reference_bins_constant_feature():
    b = drift.reference_bins([3.0] * 10, kind="numeric")
    assert b["edges"] == [-np.inf, 3.0, np.inf]
    assert b["counts"] == [0, 10]
    assert drift.bin_counts([2.9, 3.0, 7], b) == [1, 2]


def test_bin_counts_match_numpy_histogram_on_edges(rng):
    ref = rng.gamma(2.0, size=500)
    cur = rng.gamma(2.5, size=300)
    b = drift.reference_bins(ref, kind="numeric", n_bins=8)
    # np.histogram's bins are left-closed too (except the last, closed at +inf here).
    edges = np.array(b["edges"])
    expected, _ = np.histogram(cur, bins=edges)
    assert drift.bin_counts(cur, b) == expected.tolist()


def test_reference_bins_categorical_and_other_bucket():
    ref = ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + [None]
    b = drift.reference_bins(ref, kind="categorical")
    assert b["levels"] == ["a", "b", "c"]
    assert b["labels"] == ["a", "b", "c", "(other)"]
    assert b["counts"] == [5, 3, 2, 0]
    assert b["n_missing"] == 1
    assert drift.bin_counts(["a", "z", "c", "c", None, "y"], b) == [1, 0, 2, 2]


def test_reference_bins_categorical_max_levels():
    b = drift.reference_bins(list("aaabbc"), kind="categorical", max_levels=2)
    assert b["levels"] == ["a", "b"]
    assert b["counts"] == [3, 2, 1]


def test_categorical_levels_compare_as_strings():
    b = drift.reference_bins([1, 2, 2], kind="categorical")
    assert b["levels"] == ["2", "1"]
    assert drift.bin_counts(["1", 2, 3], b) == [1, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"values": [1, 2], "kind": "ordinal"}, "kind"),
        ({"values": [1, 2], "kind": "numeric", "n_bins": 1}, "n_bins"),
        ({"values": [None, np.nan], "kind": "numeric"}, "no non-missing"),
        ({"values": ["a", "b"], "kind": "numeric"}, "numeric"),
        ({"values": [[1, 2]], "kind": "numeric"}, "one-dimensional"),
        ({"values": [1, np.inf], "kind": "numeric"}, "infinite"),
    ],
)
def test_reference_bins_rejects_bad_input(kwargs, match):
    values = kwargs.pop("values")
    with pytest.raises(ValueError, match=match):
        drift.reference_bins(values, **kwargs)


def test_bin_counts_rejects_bad_bins():
    with pytest.raises(ValueError, match="strictly increasing"):
        drift.bin_counts([1], {"kind": "numeric", "edges": [-np.inf, 2, 1, np.inf]})
    with pytest.raises(ValueError, match="levels"):
        drift.bin_counts(["a"], {"kind": "categorical"})


# --------------------------------------------------------------------- PSI

def test_psi_formula_and_reading():
    ref, cur = [40, 30, 20, 10], [10, 20, 30, 40]
    p = np.array(ref) / 100
    q = np.array(cur) / 100
    assert drift.psi(ref, cur) == pytest.approx(np.sum((q - p) * np.log(q / p)))
    assert drift.psi(ref, ref) == 0.0
    assert drift.psi(ref, cur) == pytest.approx(drift.psi(cur, ref))
    assert drift.severity(0.099) == "stable"
    assert drift.severity(0.2) == "moderate"
    assert drift.severity(0.26) == "significant"


def test_psi_smooths_empty_bins():
    value = drift.psi([50, 50, 0], [50, 40, 10], epsilon=1e-4)
    p = np.array([0.5, 0.5, 1e-4])
    q = np.array([0.5, 0.4, 0.1])
    assert np.isfinite(value)
    assert value == pytest.approx(np.sum((q - p) * np.log(q / p)))


def test_psi_grows_with_shift(rng):
    ref = rng.normal(size=5000)
    b = drift.reference_bins(ref, kind="numeric")
    values = [drift.psi(b["counts"], drift.bin_counts(rng.normal(loc=s, size=5000), b)) for s in (0, 0.3, 1.0)]
    assert values[0] < 0.1 < values[1] < 0.25 < values[2]


@pytest.mark.parametrize(
    ("ref", "cur", "match"),
    [([1, 2], [1, 2, 3], "bins"), ([0, 0], [1, 1], "ref_counts are all zero"),
     ([1, 1], [0, 0], "cur_counts are all zero"), ([1, -1], [1, 1], "non-negative"), ([], [], "non-empty")],
)
def test_psi_rejects_bad_counts(ref, cur, match):
    with pytest.raises(ValueError, match=match):
        drift.psi(ref, cur)


# ------------------------------------------------------------------- tests

def test_ks_test_equals_scipy(rng):
    a = rng.normal(size=300)
    b = rng.normal(loc=0.3, size=200)
    ours = drift.ks_test(np.append(a, np.nan), b)
    ref = stats.ks_2samp(a, b)
    assert ours["statistic"] == pytest.approx(ref.statistic, abs=0, rel=1e-12)
    assert ours["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert (ours["n_reference"], ours["n_current"]) == (300, 200)


def test_ks_from_counts_is_ks_of_binned_data(rng):
    a = rng.normal(size=3000)
    c = rng.normal(loc=0.2, scale=1.2, size=2000)
    b = drift.reference_bins(a, kind="numeric", n_bins=20)
    inner = np.array(b["edges"][1:-1])
    ia, ic = np.searchsorted(inner, a, side="right"), np.searchsorted(inner, c, side="right")
    ours = drift.ks_from_counts(drift.bin_counts(a, b), drift.bin_counts(c, b))
    binned = stats.ks_2samp(ia, ic, method="asymp")
    assert ours["statistic"] == pytest.approx(binned.statistic, rel=1e-12)
    assert ours["p_value"] == pytest.approx(binned.pvalue, rel=1e-9)
    # Binning hides differences inside a bin: never larger than the raw statistic.
    assert ours["statistic"] <= stats.ks_2samp(a, c).statistic + 1e-12


def test_chi_square_equals_scipy_and_drops_empty_bins():
    ref, cur = [30, 0, 50, 20], [10, 0, 60, 35]
    ours = drift.chi_square_test(ref, cur)
    res = stats.chi2_contingency(np.array([[30, 50, 20], [10, 60, 35]]))
    assert ours["statistic"] == pytest.approx(res.statistic, rel=1e-12)
    assert ours["p_value"] == pytest.approx(res.pvalue, rel=1e-12)
    assert ours["dof"] == 2


def test_chi_square_two_bins_uses_scipy_yates_default():
    ours = drift.chi_square_test([30, 70], [45, 55])
    res = stats.chi2_contingency(np.array([[30, 70], [45, 55]]))
    assert ours["dof"] == 1
    assert ours["statistic"] == pytest.approx(res.statistic)
    plain = drift.chi_square_test([30, 70], [45, 55], correction=False)
    assert plain["statistic"] > ours["statistic"]


def test_chi_square_single_bin_is_no_difference():
    assert drift.chi_square_test([5, 0], [9, 0]) == {"statistic": 0.0, "p_value": 1.0, "dof": 0}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=2, max_size=8))
def test_chi_square_matches_scipy_on_random_tables(pairs):
    ref = [a for a, _ in pairs]
    cur = [b for _, b in pairs]
    keep = [i for i in range(len(pairs)) if ref[i] + cur[i] > 0]
    if sum(ref) == 0 or sum(cur) == 0 or len(keep) < 2:
        return
    res = stats.chi2_contingency(np.array([[ref[i] for i in keep], [cur[i] for i in keep]]))
    ours = drift.chi_square_test(ref, cur)
    assert ours["statistic"] == pytest.approx(res.statistic, rel=1e-9, abs=1e-12)
    assert ours["p_value"] == pytest.approx(res.pvalue, rel=1e-9, abs=1e-12)


# ------------------------------------------------------------------ tables

def _bins_and_counts(rng):
    ref = pd.DataFrame({
        "age": rng.normal(40, 10, size=2000),
        "income": rng.lognormal(10, 0.5, size=2000),
        "city": rng.choice(["a", "b", "c"], size=2000, p=[0.5, 0.3, 0.2]),
    })
    cur = pd.DataFrame({
        "age": rng.normal(40, 10, size=1000),
        "income": rng.lognormal(10.6, 0.5, size=1000),
        "city": rng.choice(["a", "b", "c", "d"], size=1000, p=[0.4, 0.3, 0.2, 0.1]),
    })
    kinds = {"age": "numeric", "income": "numeric", "city": "categorical"}
    bins = {f: drift.reference_bins(ref[f], kind=k) for f, k in kinds.items()}
    counts = {f: drift.bin_counts(cur[f], bins[f]) for f in kinds}
    return ref, cur, bins, counts


def test_feature_drift_table_sorted_with_severity_and_tests(rng):
    ref, cur, bins, counts = _bins_and_counts(rng)
    rows = drift.feature_drift_table(bins, counts)
    assert [r["feature"] for r in rows][0] == "income"
    assert [r["psi"] for r in rows] == sorted((r["psi"] for r in rows), reverse=True)
    by = {r["feature"]: r for r in rows}
    assert by["income"]["severity"] == "significant"
    assert by["age"]["severity"] == "stable"
    assert by["age"]["test"] == "KS" and by["age"]["approximate"] is True
    assert by["city"]["test"] == "chi-square"
    chi = stats.chi2_contingency(np.array([bins["city"]["counts"], counts["city"]]))
    assert by["city"]["statistic"] == pytest.approx(chi.statistic)
    assert by["city"]["p_value"] == pytest.approx(chi.pvalue)
    assert by["age"]["statistic"] == pytest.approx(drift.ks_from_counts(bins["age"]["counts"], counts["age"])["statistic"])
    assert all(r["n_current"] == 1000 for r in rows)
    json.dumps(rows)


def test_feature_drift_table_exact_ks_with_samples(rng):
    ref, cur, bins, counts = _bins_and_counts(rng)
    rows = drift.feature_drift_table(bins, counts, current_samples={"age": cur["age"]},
                                     reference_samples={"age": ref["age"]})
    age = next(r for r in rows if r["feature"] == "age")
    res = stats.ks_2samp(ref["age"], cur["age"])
    assert age["approximate"] is False
    assert age["statistic"] == pytest.approx(res.statistic)
    assert age["p_value"] == pytest.approx(res.pvalue)


def test_feature_drift_table_no_data_rows_last(rng):
    _, _, bins, counts = _bins_and_counts(rng)
    counts["age"] = None
    counts["city"] = [0, 0, 0, 0]
    rows = drift.feature_drift_table(bins, counts)
    assert [r["feature"] for r in rows] == ["income", "age", "city"]
    for r in rows[1:]:
        assert r["severity"] == "no data"
        assert r["psi"] is None and r["statistic"] is None and r["p_value"] is None
    rows = drift.feature_drift_table(bins, {})
    assert {r["severity"] for r in rows} == {"no data"}


def test_feature_drift_table_rejects_mismatched_bins(rng):
    _, _, bins, counts = _bins_and_counts(rng)
    counts["city"] = [1, 2]
    with pytest.raises(ValueError, match="city"):
        drift.feature_drift_table(bins, counts)


def test_prediction_drift_classes_and_scores(rng):
    classes = drift.reference_bins(["no"] * 700 + ["yes"] * 300, kind="categorical")
    row = drift.prediction_drift(classes, [400, 600, 0])
    res = stats.chi2_contingency(np.array([[700, 300], [400, 600]]))
    assert row["feature"] == "prediction" and row["test"] == "chi-square"
    assert row["statistic"] == pytest.approx(res.statistic)
    assert row["severity"] == "significant"
    ref_scores, cur_scores = rng.beta(2, 5, 500), rng.beta(2, 5, 400)
    scores = drift.reference_bins(ref_scores, kind="numeric")
    row = drift.prediction_drift(scores, drift.bin_counts(cur_scores, scores), name="score",
                                 reference_sample=ref_scores, current_sample=cur_scores)
    assert row["feature"] == "score" and row["severity"] == "stable"
    assert row["p_value"] == pytest.approx(stats.ks_2samp(ref_scores, cur_scores).pvalue)
    assert drift.prediction_drift(scores, None)["severity"] == "no data"


def test_drift_table_from_frames_finds_drifted_feature(rng):
    ref, cur, _, _ = _bins_and_counts(rng)
    meta = [{"name": "age", "kind": "numeric"}, {"name": "income", "kind": "numeric"},
            {"name": "city", "kind": "categorical"}]
    rows = drift.drift_table_from_frames(ref, cur, feature_meta=meta)
    assert rows[0]["feature"] == "income"
    assert all(r["approximate"] is False for r in rows)
