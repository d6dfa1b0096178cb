"""Boundary lab callbacks: good, edge and forged values; URL state; roles."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import plotly.graph_objects as go
import pytest
from dash import no_update

from app.ml.boundary import BoundarySettings, run_boundary
from callbacks import labs_boundary as C
from layouts import labs_boundary as L
from layouts.page import PageContext

GOOD = dict(dataset="moons", n_samples=120, noise=0.25, seed=0, test_fraction=0.3, model="svm", kernel="rbf",
            log_c=0.0, log_gamma=0.0, degree=3, k=15, max_depth=4)
ORDER = list(GOOD)


def call(store=None, compare=False, **changes):
    values = {**GOOD, **changes}
    return C.update_boundary(*(values[k] for k in ORDER), compare, store)


def test_good_values_give_figure_stats_reading_and_url():
    fig, stats, reading, message, store, search = call()
    assert isinstance(fig, go.Figure)
    expected = run_boundary(BoundarySettings(n_samples=120))
    assert f"{expected.test_accuracy:.1%}" in json.dumps(stats.to_plotly_json(), default=str)
    assert reading == expected.reading
    assert message is None
    assert store["key"] == search and store["current"]["x"] and store["previous"] is None
    query = dict(parse_qsl(search[1:]))
    assert query["C"] == "1" and query["gamma"] == "1" and query["n"] == "120"


def test_log_sliders_map_to_real_c_and_gamma():
    *_, search = call(log_c=3.0, log_gamma=2.0)
    query = dict(parse_qsl(search[1:]))
    assert (query["C"], query["gamma"]) == ("1000", "100")
    s = C.settings_from_controls(*({**GOOD, "log_c": -2.0, "log_gamma": 0.5}[k] for k in ORDER))
    assert s.C == 0.01 and s.gamma == pytest.approx(3.162, abs=1e-9)


def test_moving_c_and_gamma_changes_boundary_and_accuracy():
    base = call(noise=0.3)
    wild = call(noise=0.3, log_c=3.0, log_gamma=2.0)
    assert base[2] != wild[2] and "memorising" in wild[2]
    assert base[4]["current"] != wild[4]["current"]


def test_compare_keeps_the_previous_boundary_as_an_outline():
    first = call()
    store = first[4]
    fig, *_, store2, _ = call(store=store, compare=True, log_c=2.0)
    names = [t.name for t in fig.data]
    assert "Previous boundary" in names
    outline = next(t for t in fig.data if t.name == "Previous boundary")
    assert len(outline.x) == len(store["current"]["x"])
    assert store2["previous"] == store["current"]
    # Toggling compare off and on without moving a control keeps the same outline (store untouched).
    fig3, *_, store3, _ = call(store=store2, compare=True, log_c=2.0)
    assert store3 is no_update
    assert any(t.name == "Previous boundary" for t in fig3.data)
    # Compare off: no outline drawn.
    fig4 = call(store=store2, compare=False, log_c=2.0)[0]
    assert all(t.name != "Previous boundary" for t in fig4.data)


@pytest.mark.parametrize("store", [
    "junk", 5, [], {"key": 5}, {"key": "x" * 5000}, {"key": "a", "current": "nope"},
    {"key": "a", "current": {"x": [1, 2], "y": [1]}}, {"key": "a", "current": {"x": ["a"], "y": ["b"]}},
    {"key": "a", "current": {"x": [float("nan")], "y": [1.0]}},
    {"key": "a", "current": {"x": [True], "y": [1.0]}},
    {"key": "a", "current": {"x": [0.0] * 30000, "y": [0.0] * 30000}},
])
def test_forged_store_is_ignored(store):
    fig, _, reading, message, new_store, _ = call(store=store, compare=True)
    assert isinstance(fig, go.Figure) and message is None
    assert all(t.name != "Previous boundary" for t in fig.data)
    assert new_store["previous"] is None


@pytest.mark.parametrize("name,value", [
    ("dataset", "spiral"), ("dataset", None), ("dataset", {"a": 1}), ("dataset", ["moons"]),
    ("n_samples", 1e9), ("n_samples", "many"), ("n_samples", None), ("n_samples", 10), ("n_samples", 100.5),
    ("n_samples", {"$gt": 1}), ("noise", -1), ("noise", "nan"), ("noise", float("inf")), ("seed", -3),
    ("seed", 1.5), ("seed", None), ("test_fraction", 0.9), ("model", "rf"), ("model", 3),
    ("kernel", "sigmoid"), ("log_c", 9), ("log_c", "1e9"), ("log_c", [1]), ("log_gamma", -10),
    ("log_gamma", True), ("degree", 12), ("k", 0), ("k", 1e9), ("max_depth", 1e9), ("max_depth", "deep"),
])
def test_forged_values_give_a_message_not_an_exception(name, value):
    fig, stats, reading, message, store, search = call(**{name: value})
    assert fig is no_update and store is no_update and search is no_update
    assert "alert" in type(message).__name__.lower()


@pytest.mark.parametrize("compare", ["yes", 5, {"a": 1}])
def test_forged_compare_switch_gives_a_message(compare):
    assert call(compare=compare)[0] is no_update


def test_single_class_training_set_is_a_message(monkeypatch):
    # Generated data always keeps both classes after the stratified split, so hand the callback
    # a one-class training set the way app.ml reports it.
    import numpy as np

    from app.ml.boundary import fit_boundary

    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5], [3.0, 1.0]])
    monkeypatch.setattr(C, "run_boundary",
                        lambda settings: fit_boundary(X[:3], X[3:], [1, 1, 1], [0], settings=settings))
    fig, stats, reading, message, store, search = call()
    assert "only one class" in reading
    assert "only one class" in str(message.to_plotly_json())
    assert "not fitted" in fig.layout.title.text
    assert "–" in str(stats.to_plotly_json())  # no accuracies to show


def test_same_controls_same_answer():
    a, b = call(model="tree", max_depth=7, dataset="xor"), call(model="tree", max_depth=7, dataset="xor")
    assert a[2] == b[2] and a[4] == b[4] and a[5] == b[5]
    assert a[0].to_json() == b[0].to_json()  # the whole figure, regions included


# ---------------------------------------------------------------------------
# URL state: layout() reads the query, validating each field.
# ---------------------------------------------------------------------------

def _ctx(query):
    return PageContext(username="ana", role="analyst", query=query)


def _find(component, target_id):
    if getattr(component, "id", None) == target_id:
        return component
    children = getattr(component, "children", None)
    if children is None:
        return None
    for child in children if isinstance(children, (list, tuple)) else [children]:
        found = _find(child, target_id) if hasattr(child, "to_plotly_json") else None
        if found is not None:
            return found
    return None


def test_url_round_trip_reproduces_the_controls():
    settings = C.settings_from_controls(*({**GOOD, "dataset": "xor", "model": "knn", "k": 7,
                                           "log_c": 0.7, "log_gamma": -1.3, "n_samples": 640}[k] for k in ORDER))
    query = dict(parse_qsl(L.search_string(settings)[1:]))
    v = L.values_from_query(query)
    assert v["dataset"] == "xor" and v["model"] == "knn" and v["k"] == 7 and v["n_samples"] == 640
    assert v["log_c"] == 0.7 and v["log_gamma"] == -1.3
    again = C.settings_from_controls(*(v[k] for k in ORDER))
    assert again == settings
    page = L.layout(_ctx(query))
    assert _find(page, L.DATASET).value == "xor"
    assert _find(page, L.LOG_C).value == 0.7
    assert _find(page, L.GROUP_K).style is None and _find(page, L.GROUP_C).style == {"display": "none"}


@pytest.mark.parametrize("query", [
    {}, {"C": "1e9"}, {"C": "abc"}, {"gamma": "-1"}, {"n": "5"}, {"n": "nan"}, {"dataset": "<script>"},
    {"model": ""}, {"k": "x" * 100}, {"seed": "1.7"}, {"noise": "inf"}, {"test": "0.99"},
])
def test_bad_query_values_fall_back_to_defaults(query):
    v = L.values_from_query(query)
    settings = C.settings_from_controls(*(v[k] for k in ORDER))
    d = BoundarySettings()
    assert settings.dataset == d.dataset and settings.C == d.C and settings.k == d.k
    assert L.layout(_ctx(query)) is not None


def test_query_that_is_not_a_dict_is_ignored():
    assert L.values_from_query(None)["dataset"] == "moons"


def test_ids_share_the_page_prefix():
    ids = [v for k, v in vars(L).items() if k.isupper() and isinstance(v, str) and v.startswith("boundary")]
    assert len(ids) > 15 and all(i.startswith("boundary-") for i in ids)
    assert L.PAGE.path == "/labs/boundary" and L.PAGE.section == "Labs"


# ---------------------------------------------------------------------------
# Roles: analysts and admins may refit; viewers get 403 (the gate decides on the output key).
# ---------------------------------------------------------------------------

OUTPUT = ("..boundary-graph.figure...boundary-stats.children...boundary-reading.children..."
          "boundary-message.children...boundary-store.data...boundary-url.search..")


def _inputs():
    ids = [L.DATASET, L.N_SAMPLES, L.NOISE, L.SEED, L.TEST_FRACTION, L.MODEL, L.KERNEL, L.LOG_C, L.LOG_GAMMA,
           L.DEGREE, L.K, L.MAX_DEPTH]
    inputs = [{"id": i, "property": "value", "value": GOOD[k]} for i, k in zip(ids, ORDER)]
    inputs.append({"id": L.COMPARE, "property": "value", "value": False})
    return inputs


@pytest.mark.parametrize("role,status", [("viewer", 403), ("analyst", 200), ("admin", 200)])
def test_role_table(app, make_user, role, status):
    from tests.conftest import post_callback, sign_in

    make_user(role, role=role)
    client = app.test_client()
    sign_in(client, app.extensions["glassbox.db"], role)
    response = post_callback(client, OUTPUT, inputs=_inputs(),
                             state=[{"id": L.STORE, "property": "data", "value": None}])
    assert response.status_code == status, response.data[:300]
    if status == 200:
        body = response.get_json()["response"]
        assert body["boundary-url"]["search"].startswith("?dataset=moons")
        assert body["boundary-graph"]["figure"]["data"]


def test_anonymous_gets_401(client):
    response = client.post("/_dash-update-component", json={"output": OUTPUT, "inputs": _inputs()})
    assert response.status_code == 401
