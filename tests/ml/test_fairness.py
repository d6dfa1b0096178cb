"""Per-group rates and TPR-equalising thresholds, checked with sklearn per group."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from app.ml.fairness import equalize_tpr_thresholds, group_rates


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 900
    groups = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 2, n)
    shift = np.where(groups == "south", 0.15, 0.0)
    score = np.round(np.clip(0.3 * y + rng.random(n) * 0.6 + shift, 0, 1), 2)
    return y, score, groups


def test_group_rates_match_sklearn_per_group(data):
    y, score, groups = data
    t = 0.5
    r = group_rates(y, score, groups, threshold=t)
    assert [g["group"] for g in r["groups"]] == ["east", "north", "south"]
    for g in r["groups"]:
        mask = groups == g["group"]
        yt, yp = y[mask], (score[mask] >= t).astype(int)
        tn, fp, fn, tp = confusion_matrix(yt, yp, labels=[0, 1]).ravel()
        assert g["size"] == mask.sum() and g["n_pos"] == yt.sum()
        assert g["selection_rate"] == pytest.approx(yp.mean())
        assert g["tpr"] == pytest.approx(recall_score(yt, yp))
        assert g["fpr"] == pytest.approx(fp / (fp + tn))
        assert g["precision"] == pytest.approx(precision_score(yt, yp))
    json.dumps(r)


def test_gaps_and_flags(data):
    y, score, groups = data
    r = group_rates(y, score, groups, threshold=0.5)
    for rate, gap in r["gaps"].items():
        values = {g["group"]: g[rate] for g in r["groups"]}
        assert gap["gap"] == pytest.approx(max(values.values()) - min(values.values()))
        assert values[gap["high_group"]] == max(values.values())
        assert values[gap["low_group"]] == min(values.values())
        assert (rate in r["flagged"]) == (gap["gap"] > 0.1)
    # South is shifted up: its selection rate gap is large.
    assert "selection_rate" in r["flagged"]
    assert r["gaps"]["selection_rate"]["high_group"] == "south"
    loose = group_rates(y, score, groups, threshold=0.5, gap_tolerance=1.0)
    assert loose["flagged"] == []


def test_empty_groups_and_groups_without_positives_give_none():
    groups = pd.Categorical(["a", "a", "b", "b"], categories=["a", "b", "c"])
    r = group_rates([0, 0, 1, 0], [0.2, 0.7, 0.9, 0.1], groups, threshold=0.5)
    by = {g["group"]: g for g in r["groups"]}
    assert list(by) == ["a", "b", "c"]
    assert by["a"]["tpr"] is None and by["a"]["fpr"] == 0.5 and by["a"]["precision"] == 0.0
    assert by["c"]["size"] == 0 and all(by["c"][k] is None for k in
                                        ("selection_rate", "tpr", "fpr", "precision"))
    assert r["gaps"]["tpr"]["gap"] is None  # only one group has a TPR
    assert "tpr" not in r["flagged"]


def test_missing_group_values_form_their_own_group():
    r = group_rates([1, 0, 1], [0.9, 0.1, 0.2], ["a", None, "a"], threshold=0.5)
    assert [g["group"] for g in r["groups"]] == ["a", "(missing)"]
    assert r["groups"][1]["size"] == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(threshold=float("nan")), "NaN"),
    (dict(threshold=0.5, gap_tolerance=-0.1), "gap_tolerance"),
    (dict(threshold="high"), "number"),
])
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_rates([0, 1], [0.1, 0.9], ["a", "b"], **kwargs)


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="groups"):
        group_rates([0, 1], [0.1, 0.9], ["a"], threshold=0.5)


@pytest.mark.parametrize("target", [0.1, 0.5, 0.8, 0.9, 1.0])
def test_equalize_tpr_is_the_largest_threshold_reaching_target(data, target):
    y, score, groups = data
    out = equalize_tpr_thresholds(y, score, groups, target_tpr=target)
    assert [o["group"] for o in out] == ["east", "north", "south"]
    for o in out:
        mask = groups == o["group"]
        yt, st = y[mask], score[mask]
        tpr_at = recall_score(yt, (st >= o["threshold"]).astype(int))
        assert tpr_at >= target and tpr_at == pytest.approx(o["tpr"])
        # Any larger candidate threshold falls below the target.
        higher = np.unique(st[st > o["threshold"]])
        if higher.size:
            assert recall_score(yt, (st >= higher[0]).astype(int)) < target


def test_equalize_tpr_exact_fraction_and_no_positives():
    # 0.3 * 10 = 3.0000000000000004 in floats: need exactly 3 of 10 positives.
    y = [1] * 10 + [0]
    s = [i / 10 for i in range(10)] + [0.5]
    g = ["a"] * 10 + ["b"]
    out = equalize_tpr_thresholds(y, s, g, target_tpr=0.3)
    assert out[0] == {"group": "a", "threshold": 0.7, "tpr": 0.3, "n_pos": 10}
    assert out[1] == {"group": "b", "threshold": None, "tpr": None, "n_pos": 0}
    with pytest.raises(ValueError, match="target_tpr"):
        equalize_tpr_thresholds(y, s, g, target_tpr=0)


def test_docstring_examples_run():
    import doctest

    import app.ml.fairness as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
