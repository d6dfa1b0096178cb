"""Threshold explorer callbacks: results equal scikit-learn; edge, forged and cross-model requests; roles."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from dash import no_update
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, matthews_corrcoef, precision_score,
                             recall_score)

from app.ml.fairness import equalize_tpr_thresholds, group_rates
from app.ml.threshold import ThresholdSweep
from callbacks import threshold as C
from data import views
from data.models import AuditEvent
from layouts import threshold as L
from tests.callbacks.views_world import (BINARY, GROUP, MULTICLASS, PENDING, build_world, request, frame_of,
                                        text_of, user, version)
from tests.conftest import csrf_headers, post_callback, sign_in

ASSET = Path(__file__).resolve().parents[2] / "assets" / "threshold.js"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    app = build_world(tmp_path_factory.mktemp("threshold"), kinds=views.THRESHOLD_KINDS)
    yield app
    app.extensions["glassbox.db"].dispose()


@pytest.fixture(scope="module")
def scores():
    model, test, features = frame_of(BINARY)
    return test["target"].to_numpy(), model.predict_proba(test[features])[:, 1], test


def load(world, name="analyst", model=BINARY, version_=None, split="test", polled=False):
    with request(world):
        return C.load_model(model, version_, split, None, user=user(world, name), polled=polled)


def counts(y, score, t):
    tn, fp, fn, tp = confusion_matrix(y, (score >= t).astype(int), labels=[0, 1]).ravel()
    return tp, fp, tn, fn


def sk(y, score, t):
    pred = (score >= t).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn, "precision": precision_score(y, pred, zero_division=0),
            "recall": recall_score(y, pred, zero_division=0), "f1": f1_score(y, pred, zero_division=0),
            "accuracy": accuracy_score(y, pred), "mcc": matthews_corrcoef(y, pred),
            "specificity": tn / (tn + fp) if tn + fp else 0.0, "predicted_positive_rate": (tp + fp) / len(y)}


# -- loading a model ----------------------------------------------------------------

def test_load_sends_the_grid_and_figures_equal_to_sklearn(world, scores):
    y, score, _ = scores
    out = load(world)
    grid, note, roc, pr, status, interval_off, message, jump, saved, saved_value, groups, group = out
    assert message is None and status is None and interval_off is True and note is None
    assert grid["key"] == f"{BINARY}:1" and grid["labels"] == ["0", "1"] and grid["steps"] == 100
    test = grid["splits"]["test"]
    for k in (0, 1, 29, 50, 57, 99, 100):
        expected = sk(y, score, k / 100)
        assert [test[c][k] for c in ("tp", "fp", "tn", "fn")] == [expected[c] for c in ("tp", "fp", "tn", "fn")], k
    assert jump == {"t": 0.5, "key": grid["key"], "source": "load"} and saved_value == 0.5
    assert groups == [{"label": GROUP, "value": GROUP}] and group == GROUP
    # The browser patches the operating-point traces the server named.
    for fig, markers in ((roc, grid["markers"]["roc"]), (pr, grid["markers"]["pr"])):
        assert set(markers) == {"train", "test"}
        assert fig["data"][markers["test"]]["name"].startswith("Test at ")
        assert fig["data"][markers["train"]]["name"].startswith("Train at ")
    expected = sk(y, score, 0.5)
    marker = roc["data"][grid["markers"]["roc"]["test"]]
    assert marker["x"] == [pytest.approx(expected["fp"] / (expected["fp"] + expected["tn"]))]
    assert marker["y"] == [pytest.approx(expected["recall"])]
    assert "No threshold is saved" in text_of(saved)
    best = max(np.unique(score), key=lambda t: 2 * counts(y, score, t)[0] / (2 * counts(y, score, t)[0] +
                                                                         sum(counts(y, score, t)[1:4:2])))
    assert grid["best_f1"]["test"]["f1"] == pytest.approx(sk(y, score, best)["f1"])


def test_figures_are_memoised(world):
    assert load(world)[2] is load(world)[2]


@pytest.mark.parametrize("model, version_, split, says", [
    (MULTICLASS, None, "test", "binary classifiers"),
    ({"$ne": 1}, None, "test", "Choose a model"),
    (None, None, "test", "Choose a model"),
    (BINARY, 10**9, "test", "no version"),
    (BINARY, "1; drop", "test", "positive whole number"),
    (BINARY, True, "test", "positive whole number"),
    (BINARY, None, "validation", "Data must be one of"),
    ("no-such-model", None, "test", "no model"),
])
def test_forged_or_wrong_selection_gives_a_message(world, model, version_, split, says):
    out = load(world, model=model, version_=version_, split=split)
    assert out[0] is None and says in text_of(out[6]) and says in text_of(out[1])


def test_user_without_a_grant_on_the_model_gets_the_permission_message(world):
    out = load(world, name="irisonly")
    assert out[0] is None and "do not have access" in text_of(out[6])
    assert out[2]["data"] == [] and out[3]["data"] == []  # no curves, no counts: just the message


def test_pending_analyses_show_progress_and_poll(world):
    out = load(world, model=PENDING)
    grid, note, roc, *_ = out
    assert grid is None and out[5] is False  # interval on
    assert "Computing the analyses" in text_of(out[4])
    assert "still being computed" in text_of(note) and "still being computed" in json.dumps(roc)
    polled = load(world, model=PENDING, polled=True)
    assert polled[0] is no_update and polled[1] is no_update and polled[5] is False


# -- off-grid thresholds ---------------------------------------------------------------

@pytest.mark.parametrize("t", [0.0, 1.0, 0.4237, 0.29, 1e-9, 0.9999999])
def test_exact_answer_equals_sklearn(world, scores, t):
    y, score, _ = scores
    with request(world):
        out = C.exact_metrics({"t": t}, BINARY, None, user=user(world, "viewer"))
    assert out["key"] == f"{BINARY}:1" and out["t"] == t
    expected = sk(y, score, t)
    for key, value in expected.items():
        assert out["test"][key] == pytest.approx(value, abs=1e-12), key


def test_ties_at_the_threshold_count_as_positive(world, scores):
    y, score, _ = scores
    t = float(np.sort(score)[len(score) // 2])  # exactly a score: that row is flagged
    with request(world):
        out = C.exact_metrics({"t": t}, BINARY, None, user=user(world, "viewer"))
    assert out["test"]["tp"] + out["test"]["fp"] == int((score >= t).sum())


@pytest.mark.parametrize("req", [{"t": "abc"}, {"t": None}, {"t": 1e9}, {"t": -0.1}, {"t": [0.3]}, "0.3", None,
                                 {"t": float("nan")}, {"t": True}])
def test_forged_exact_requests_give_an_error_not_an_exception(world, req):
    with request(world):
        out = C.exact_metrics(req, BINARY, None, user=user(world, "viewer"))
    assert out["error"] and "test" not in out


def test_exact_answer_respects_model_grants(world):
    with request(world):
        out = C.exact_metrics({"t": 0.3}, BINARY, None, user=user(world, "irisonly"))
    assert "do not have access" in out["error"] and "test" not in out


# -- costs ----------------------------------------------------------------------------

def test_cost_curve_and_optimum_equal_a_brute_force_search(world, scores):
    y, score, _ = scores
    grid = {"key": f"{BINARY}:1"}
    with request(world):
        fig, store, message = C.cost_curve(1, 5, grid, "test", {"t": 0.5}, BINARY, None, user=user(world, "viewer"))
    candidates = list(np.unique(score)) + [np.nextafter(score.max(), 2)]
    costs = [(1 * counts(y, score, t)[1] + 5 * counts(y, score, t)[3]) / len(y) for t in candidates]
    assert store["optimum"]["cost"] == pytest.approx(min(costs))
    assert store["shape"] == 0 and store["annotation"] is not None
    assert fig["layout"]["shapes"][0]["x0"] == 0.5
    assert fig["layout"]["annotations"][store["annotation"]]["text"] == "threshold 0.50"
    assert "Lowest expected cost" in text_of(message)


@pytest.mark.parametrize("fp, fn, says", [(-1, 5, "between 0"), ("x", 5, "must be a number"), (1e12, 1, "between"),
                                          (0, 0, "above zero"), (None, 1, "must be a number")])
def test_forged_costs_give_a_message(world, fp, fn, says):
    with request(world):
        fig, store, message = C.cost_curve(fp, fn, {"key": "k"}, "test", {"t": 0.5}, BINARY, None,
                                           user=user(world, "viewer"))
    assert fig is no_update and store is no_update and says in text_of(message)


def test_cost_curve_waits_for_the_grid(world):
    with request(world):
        fig, store, message = C.cost_curve(1, 5, None, "test", None, BINARY, None, user=user(world, "viewer"))
    assert store is None and "Choose a model" in json.dumps(fig)


# -- fairness -------------------------------------------------------------------------------

def test_fairness_equals_group_rates_at_the_current_threshold(world, scores):
    y, score, test = scores
    with request(world):
        fig, table, store, message = C.fairness_at(1, GROUP, {"t": 0.7}, BINARY, None, "test",
                                                   user=user(world, "viewer"))
    expected = group_rates(y, score, test[GROUP], threshold=0.7, positive_label=1)
    assert message is None and store == {"key": f"{BINARY}:1", "t": 0.7, "column": GROUP, "split": "test"}
    shown = text_of(table)
    for g in expected["groups"]:
        assert f"{g['tpr']:.1%}" in shown and str(g["group"]) in shown
    assert fig["layout"]["title"]["text"].startswith("Rates by group (threshold 0.70")


@pytest.mark.parametrize("column, current, says", [("__class__", {"t": 0.5}, "Group column must be one of"),
                                                   (["site"], {"t": 0.5}, "Group column must be one of"),
                                                   (GROUP, {"t": "high"}, "Threshold must be a number"),
                                                   (GROUP, {"t": 2}, "between 0 and 1")])
def test_forged_fairness_requests_give_a_message(world, column, current, says):
    with request(world):
        out = C.fairness_at(1, column, current, BINARY, None, "test", user=user(world, "viewer"))
    assert out[0] is no_update and says in text_of(out[3])


def test_equalising_tpr_reaches_the_target_in_every_group(world, scores):
    y, score, test = scores
    with request(world):
        table = C.equalise(1, GROUP, None, {"t": 0.8}, BINARY, None, "test", user=user(world, "viewer"))
    overall = sk(y, score, 0.8)["recall"]
    expected = equalize_tpr_thresholds(y, score, test[GROUP], target_tpr=overall, positive_label=1)
    shown = text_of(table)
    assert f"{overall:.1%}" in shown
    for g in expected:
        assert f"{g['threshold']:.4f}" in shown and g["tpr"] >= overall
    with request(world):
        assert "Target TPR" in text_of(C.equalise(1, GROUP, 3, {"t": 0.8}, BINARY, None, "test",
                                                  user=user(world, "viewer")))
        assert "above 0" in text_of(C.equalise(1, GROUP, 0, {"t": 0.8}, BINARY, None, "test",
                                               user=user(world, "viewer")))
        assert C.equalise(None, GROUP, None, {"t": 0.8}, BINARY, None, "test", user=user(world, "viewer")) \
            is no_update


# -- saving ------------------------------------------------------------------------------------

def test_analyst_saves_a_threshold_with_a_reason_and_it_is_audited(world):
    with request(world):
        block, value, message = C.save(1, BINARY, None, {"t": 0.37}, "  fewer missed cases  ",
                                       user=user(world, "analyst"))
    try:
        assert value == 0.37 and "Saved threshold 0.37" in text_of(message)
        assert "analyst" in text_of(block) and "fewer missed cases" in text_of(block)
        saved = version(world, BINARY).threshold
        assert saved["value"] == 0.37 and saved["set_by"] == "analyst" and saved["reason"] == "fewer missed cases"
        with world.extensions["glassbox.db"].session() as s:
            event = s.query(AuditEvent).filter_by(action="threshold.save", outcome="success").one()
            assert event.target == f"{BINARY} v1" and "0.37" in event.detail
        reloaded = load(world)
        assert reloaded[7]["t"] == 0.37 and reloaded[9] == 0.37
    finally:
        from data.registry import clear_threshold

        with world.extensions["glassbox.db"].session() as s:
            clear_threshold(s, version(world, BINARY).id)


@pytest.mark.parametrize("name, current, reason, says", [
    ("viewer", {"t": 0.4}, "why", "set the classification threshold"),
    ("mixed", {"t": 0.4}, "why", "set the classification threshold"),
    ("irisonly", {"t": 0.4}, "why", "do not have access"),
    ("analyst", {"t": 0.4}, "   ", "Reason is required"),
    ("analyst", {"t": 0.4}, "x" * 501, "at most 500"),
    ("analyst", {"t": 0.4}, {"$set": 1}, "Reason must be text"),
    ("analyst", {"t": 7}, "why", "between 0 and 1"),
    ("analyst", None, "why", "Threshold must be a number"),
])
def test_saving_is_refused_with_a_message(world, name, current, reason, says):
    with request(world):
        block, value, message = C.save(1, BINARY, None, current, reason, user=user(world, name))
    assert block is no_update and value is no_update and says in text_of(message)
    assert version(world, BINARY).threshold is None


def test_saving_needs_a_click(world):
    with request(world):
        assert C.save(None, BINARY, None, {"t": 0.4}, "why", user=user(world, "analyst")) == (no_update,) * 3


# -- the gate --------------------------------------------------------------------------------

def _save_key(world):
    policy = world.extensions["glassbox.policy"]
    return next(k for k in policy.permissions if "threshold-save-message" in k)


@pytest.mark.parametrize("name, status", [("viewer", 403), ("analyst", 200)])
def test_gate_refuses_saving_without_the_permission(world, name, status):
    client = world.test_client()
    sign_in(client, world.extensions["glassbox.db"], name)
    key = _save_key(world)
    response = post_callback(
        client, key,
        inputs=[{"id": L.SAVE, "property": "n_clicks", "value": 1}],
        state=[{"id": "threshold-model", "property": "value", "value": MULTICLASS},
               {"id": "threshold-version", "property": "value", "value": None},
               {"id": L.BOX, "property": "value", "value": 0.4},
               {"id": L.REASON, "property": "value", "value": "x"}], headers=csrf_headers(client))
    assert response.status_code == status
    assert version(world, MULTICLASS).threshold is None


def test_viewer_loads_the_explorer_through_the_gate(world):
    client = world.test_client()
    sign_in(client, world.extensions["glassbox.db"], "viewer")
    key = next(k for k in world.extensions["glassbox.policy"].permissions if k.startswith("..threshold-grid.data"))
    response = post_callback(client, key, inputs=[{"id": "threshold-model", "property": "value", "value": BINARY},
                                                  {"id": "threshold-version", "property": "value", "value": None},
                                                  {"id": L.INTERVAL, "property": "n_intervals", "value": None}],
                             state=[{"id": "threshold-split", "property": "value", "value": "test"}])
    assert response.status_code == 200
    assert response.get_json()["response"]["threshold-grid"]["data"]["key"] == f"{BINARY}:1"


# -- the browser's arithmetic -----------------------------------------------------------------

def _node(script: str):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    code = ("global.window = {dash_clientside: {no_update: '__nu__', callback_context: null}};\n"
            f"{ASSET.read_text()}\n"
            "const ns = window.dash_clientside.glassbox_threshold;\n" + script)
    out = subprocess.run([node, "-e", code], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def test_browser_metrics_are_bitwise_equal_to_the_server(world, scores):
    """The clientside formulas, fed the grid's counts, give exactly the sweep's metrics."""
    y, score, _ = scores
    sweep = ThresholdSweep.from_dict(_sweep_payload(world))
    grid = sweep.grid(step=0.01)
    counts = [{c: grid[c][k] for c in ("tp", "fp", "tn", "fn")} for k in range(101)]
    counts += [{"tp": 0, "fp": 0, "tn": 5, "fn": 3}, {"tp": 4, "fp": 6, "tn": 0, "fn": 0},
               {"tp": 500000, "fp": 250000, "tn": 200000, "fn": 50000}]
    got = _node(f"console.log(JSON.stringify({json.dumps(counts)}.map(c => ns._metrics(c))));")
    for c, js in zip(counts, got):
        t_metrics = _metrics_for_counts(c)
        for key, value in t_metrics.items():
            assert js[key] == value, (c, key, js[key], value)


def _sweep_payload(world):
    from data.analysis_cache import get_result

    with world.extensions["glassbox.db"].session() as s:
        return get_result(s, version(world, BINARY).id, "sweep_test")


def _metrics_for_counts(c):
    """The server's formulas on given counts (a sweep built to have exactly these counts at t = 0.5)."""
    tp, fp, tn, fn = c["tp"], c["fp"], c["tn"], c["fn"]
    sweep = ThresholdSweep(np.array([0.25, 0.75]), np.array([fn, tp]), np.array([tn, fp]))
    m = sweep.metrics_at(0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)
    return m


def test_browser_snaps_slider_values_to_the_grid_with_round_not_truncation():
    """0.29 * 100 is 28.999999999999996: the grid index must be 29; 0.4237 goes to the server."""
    script = """
    const grid = [0.29, 0.57, 0.58, 1, 0, 0.1 + 0.2].map(v => ns._next('threshold-slider', v, null, null));
    const on = id => { window.dash_clientside.callback_context = {triggered_id: id}; };
    on('threshold-box');
    const box = ns.move(0.5, 0.4237, null, null, 'test', null, null, null);
    on('threshold-box');
    const bad = ns.move(0.5, 7, null, null, 'test', null, null, null);
    on('threshold-slider');
    const same = ns.move(0.5, 0.5, null, null, 'test', null, null, null);
    on('threshold-slider');
    const moved = ns.move(0.29, 0.5, null, null, 'test', null, null, null);
    console.log(JSON.stringify({grid: grid, box: box, bad: bad, same: same, moved: moved,
                                boxNext: ns._next('threshold-box', 0.5, 0.4237, null)}));
    """
    out = _node(script)
    assert [c["k"] for c in out["grid"]] == [29, 57, 58, 100, 0, 30]
    assert all(c["grid"] for c in out["grid"])
    assert out["grid"][0]["t"] == 0.29 and out["grid"][-1]["t"] == 0.3
    assert out["boxNext"] == {"t": 0.4237, "grid": False, "k": 42, "source": "box"}
    # Nothing drawn without a grid, but an off-grid value is asked of the server only once a model is loaded.
    slider, box, request = out["box"]
    assert slider == 0.42 and box == "__nu__" and request == "__nu__"
    assert out["bad"] == ["__nu__"] * 3
    assert out["same"] == ["__nu__"] * 3  # no new threshold, no box update, no request
    assert out["moved"] == ["__nu__", 0.29, "__nu__"]  # the box follows the slider; on the grid: no request
