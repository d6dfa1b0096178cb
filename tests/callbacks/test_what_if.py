"""What-if callbacks: controls from metadata, start rows, live predictions, patches, forged input, access."""

from __future__ import annotations

import json
import math
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import Patch, no_update

from app.figures.explain import probability_figure
from app.security.permissions import MODEL_SCOPED, ROLES, Permission
from app.security.users import CurrentUser
from callbacks import explain as E
from callbacks import what_if as C
from data import explain_views as ev
from data.registry import get_version
from layouts import what_if as L
from layouts.page import PageContext
from tests.browser.seed_explain import FLOWERS, HOUSES, LOANS, MLP, why_app
from tests.conftest import post_callback, sign_in

ANALYST = CurrentUser(id=1, username="analyst", session_version=1, active=True,
                      global_permissions=ROLES["analyst"])
SCOPED = CurrentUser(id=2, username="scoped", session_version=1, active=True,
                     global_permissions=frozenset({Permission.AUTHENTICATED}),
                     model_permissions={HOUSES: ROLES["analyst"] & MODEL_SCOPED})
NO_ROWS = CurrentUser(id=3, username="norows", session_version=1, active=True,
                      global_permissions=frozenset({Permission.AUTHENTICATED, Permission.USE_WHAT_IF}))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = why_app(tmp_path_factory.mktemp("whatif"))
    yield app
    app.extensions["glassbox.db"].dispose()


@pytest.fixture(autouse=True)
def context(app):
    with app.app_context():
        yield


def version(app, name):
    with app.extensions["glassbox.db"].session() as s:
        return get_version(s, name)


class Form:
    """The posted state of the what-if controls built for a model."""

    def __init__(self, spec):
        self.spec = spec
        self.sliders = {f["name"]: f["base"] for f in spec["features"] if f["kind"] == "numeric"}
        self.choices = {f["name"]: f["base"] for f in spec["features"] if f["kind"] != "numeric"}

    def args(self):
        return ([*self.sliders.values()], [{"type": L.SLIDER, "feature": n} for n in self.sliders],
                [*self.choices.values()], [{"type": L.CHOICE, "feature": n} for n in self.choices])

    def set(self, name, value):
        meta = next(f for f in self.spec["features"] if f["name"] == name)
        if name in self.sliders:
            self.sliders[name] = math.log10(value) if meta["log"] else value
        else:
            self.choices[name] = value
        return self


def build(name, start=None, user=ANALYST, trigger=None, row=None, split="test"):
    controls, spec, note = C.build(trigger, name, None, row, split, start or {"model": None}, user=user)
    return controls, spec, note


def predict(name, form, figkey=None, user=ANALYST):
    sv, sid, cv, cid = form.args()
    return C.predict(name, None, sv, sid, cv, cid, figkey, user=user)


# -- scales ------------------------------------------------------------------------------------------

def test_log_slider_where_values_span_orders_of_magnitude(app):
    meta = {m["name"]: m for m in ev.slider_meta(version(app, LOANS))}
    assert L.uses_log(meta["annual_income"]) and not L.uses_log(meta["age"])
    assert not L.uses_log({"kind": "numeric", "log_scale": True, "min": 0.0, "max": 10.0})  # no log of 0
    lo, hi, step = L.slider_range(meta["annual_income"])
    assert lo == pytest.approx(math.log10(meta["annual_income"]["min"]))
    assert (hi - lo) / step == pytest.approx(L.SLIDER_POSITIONS)
    for value in (meta["annual_income"]["min"], 34_170, 123_450, meta["annual_income"]["max"]):
        assert L.value_of(meta["annual_income"], L.position_of(meta["annual_income"], value)) == value
    with pytest.raises(ValueError, match="outside the slider"):
        L.value_of(meta["annual_income"], hi + 1)
    # Every position of a log slider on a whole-number feature gives a whole number the model accepts.
    assert meta["annual_income"]["integer"]
    for k in range(0, L.SLIDER_POSITIONS + 1, 7):
        value = L.value_of(meta["annual_income"], lo + k * step)
        assert isinstance(value, int) and meta["annual_income"]["min"] <= value <= meta["annual_income"]["max"]


def test_linear_slider_steps_are_round_and_keep_data_values(app):
    meta = {m["name"]: m for m in ev.slider_meta(version(app, HOUSES))}
    assert L.slider_range(meta["rooms"])[2] == 1
    assert L.slider_range(meta["living_area_m2"])[2] in (0.1, 1.0)
    assert L.value_of(meta["living_area_m2"], 0.1 + 0.2) == 0.3  # float noise removed
    assert L.value_of(meta["rooms"], 4.0) == 4 and isinstance(L.value_of(meta["rooms"], 4.0), int)
    assert L.nice_step(0, integer=False) == 1 and L.nice_step(300_000, integer=True) == 1000


def test_layout_reads_the_start_from_the_url():
    ctx = PageContext(username="a", role="analyst", query={"model": LOANS, "row": "5", "split": "train",
                                                          "values": '{"age": 30}'})
    assert L.initial_start(ctx) == {"model": LOANS, "split": "train", "row": 5, "values": '{"age": 30}'}
    junk = PageContext(username="a", role="analyst", query={"row": "-4", "split": "x"})
    assert L.initial_start(junk) == {"model": None, "split": "test", "row": None, "values": None}
    assert L.PAGE.path == "/what-if" and L.PAGE.permission is Permission.USE_WHAT_IF


# -- building the form ---------------------------------------------------------------------------------

def test_one_control_per_feature_with_full_labels(app):
    found = version(app, LOANS)
    controls, spec, note = build(LOANS)
    text = json.dumps([c.to_plotly_json() for c in controls], default=lambda o: o.to_plotly_json())
    for feature in found.features:
        assert f'"children": "{feature}"' in text  # the whole name, wrapping, never cut
    assert text.count(L.SLIDER) == 4 and text.count(L.CHOICE) == 2
    assert "typical row" in note
    assert {f["name"]: f["value"] for f in spec["features"]} == ev.typical_row(found)
    assert spec["start"] == {"split": "test", "row": None} and ev.explainer_method(found) == "tree"


def test_start_from_a_row_and_from_values(app):
    found = version(app, LOANS)
    _, spec, note = build(LOANS, {"model": LOANS, "row": 4, "split": "test", "values": None})
    assert "row 4 of the test data" in note
    assert {f["name"]: f["value"] for f in spec["features"]} == ev.split_row(found, "test", 4)
    _, spec, note = build(LOANS, {"model": LOANS, "row": 4, "split": "test", "values": '{"age": 33}'})
    values = {f["name"]: f["value"] for f in spec["features"]}
    assert values["age"] == 33 and "with the values given in the link" in note
    assert {f["name"]: f["anchor"] for f in spec["features"]} == ev.split_row(found, "test", 4)
    _, spec, _ = build(LOANS, trigger=L.START_ROW_GO, row=7, split="train")
    assert {f["name"]: f["value"] for f in spec["features"]} == ev.split_row(found, "train", 7)


@pytest.mark.parametrize("start, words", [
    ({"model": LOANS, "row": 10**6}, "There is no row"),
    ({"model": LOANS, "values": "{oops"}, "not valid JSON"),
    ({"model": LOANS, "values": '{"age": 9999}'}, "outside the range"),
    ({"model": LOANS, "values": '{"employment_type": "astronaut"}'}, "known categories"),
    ({"model": LOANS, "values": '{"favourite_colour": "red"}'}, "Unknown feature"),
])
def test_bad_starts_give_a_message_and_the_typical_row(app, start, words):
    _, spec, note = build(LOANS, start)
    assert words in str(note) and "typical row instead" in str(note)
    assert {f["name"]: f["value"] for f in spec["features"]} == ev.typical_row(version(app, LOANS))


def test_start_from_a_row_needs_row_level_access(app):
    _, spec, note = build(LOANS, {"model": LOANS, "row": 4}, user=NO_ROWS)
    assert "view row-level data" in str(note)
    controls, spec, note = build(LOANS, user=SCOPED)
    assert "You do not have access" in str(controls) and spec is None


def test_a_start_for_another_model_is_ignored(app):
    _, spec, note = build(HOUSES, {"model": LOANS, "row": 4})
    assert "typical row" in note


# -- predictions -----------------------------------------------------------------------------------------

def test_first_answer_is_a_figure_then_patches(app):
    _, spec, _ = build(LOANS)
    form = Form(spec)
    chart, key, verdict, values, message = predict(LOANS, form)
    assert isinstance(chart, go.Figure) and message is None and key.endswith("proba:2")
    found = version(app, LOANS)
    assert values["values"] == ev.typical_row(found)
    expected = ev.predict(found, values["values"])
    assert list(chart.data[0].x) == pytest.approx(expected["proba"])
    form.set("credit_score", 800)
    patch, key2, *_ = predict(LOANS, form, figkey=key)
    assert isinstance(patch, Patch) and key2 == key
    # Another model's chart key gets a whole new figure.
    chart, *_ = predict(LOANS, form, figkey="999:proba:2")
    assert isinstance(chart, go.Figure)


def test_moving_a_slider_changes_the_probabilities(app):
    _, spec, _ = build(LOANS)
    form = Form(spec)
    found = version(app, LOANS)
    meta = {m["name"]: m for m in ev.slider_meta(found)}["credit_score"]
    low = predict(LOANS, form.set("credit_score", int(meta["min"])))[3]["values"]
    high = predict(LOANS, form.set("credit_score", int(meta["max"])))[3]["values"]
    assert ev.predict(found, low)["proba"] != ev.predict(found, high)["proba"]


@pytest.mark.parametrize("proba", [[0.51, 0.49], [0.95, 0.05], [0.2, 0.45, 0.35], [0.7, 0.3]])
def test_patch_matches_the_figure_a_redraw_would_give(proba):
    classes = ["a", "b", "c"][: len(proba)]
    winner = int(np.argmax(proba))
    ranked = sorted(proba, reverse=True)
    prediction = {"classes": classes, "proba": proba, "predicted": classes[winner],
                  "runner_up": classes[proba.index(ranked[1])], "margin": ranked[0] - ranked[1], "entropy": 0.0}
    figure = probability_figure(prediction)
    patch = C.probability_patch(prediction).to_plotly_json()["operations"]
    ops = {tuple(op["location"]): op["params"]["value"] for op in patch}
    assert ops[(("data", 0, "x"))] == pytest.approx(list(figure.data[0].x))
    assert ops[("data", 0, "text")] == list(figure.data[0].text)
    assert ops[("data", 0, "marker", "color")] == list(figure.data[0].marker.color)
    assert ops[("layout", "title", "text")] == figure.layout.title.text


def test_a_close_call_reads_differently_from_a_sure_one():
    def verdict(p):
        prediction = {"classes": ["no", "yes"], "proba": p, "predicted": "yes" if p[1] > p[0] else "no",
                      "runner_up": "no" if p[1] > p[0] else "yes"}
        title = dict((tuple(o["location"]), o["params"]["value"])
                     for o in C.probability_patch(prediction).to_plotly_json()["operations"])[("layout", "title",
                                                                                                  "text")]
        badge = str(L.verdict(prediction, C.confidence_words(abs(p[1] - p[0]))))
        return title, badge
    close, close_badge = verdict([0.49, 0.51])
    sure, sure_badge = verdict([0.05, 0.95])
    assert "51% vs 49% - a close call" in close and "2 percentage points" in close_badge
    assert "95% vs 5% - confident" in sure and "90 percentage points" in sure_badge
    assert "warning" in close_badge and "success" in sure_badge


def test_regression_shows_value_and_interval(app):
    _, spec, _ = build(HOUSES)
    form = Form(spec)
    chart, key, verdict, values, message = predict(HOUSES, form)
    prediction = ev.predict(version(app, HOUSES), values["values"])
    assert chart.data[0].x[0] == pytest.approx(prediction["value"]) and key.endswith("value+interval")
    assert "likely between" in str(verdict) and chart.layout.title.text == C.value_title(prediction)
    patch, *_ = predict(HOUSES, form.set("living_area_m2", 150.0), figkey=key)
    ops = {tuple(o["location"]): o["params"]["value"] for o in patch.to_plotly_json()["operations"]}
    moved = ev.predict(version(app, HOUSES), {**values["values"], "living_area_m2": 150.0})
    assert ops[("data", 0, "x")] == [pytest.approx(moved["value"])]
    lo, hi = moved["interval"]
    assert ops[("data", 0, "error_x", "array")] == [pytest.approx(hi - moved["value"])]
    assert ops[("data", 0, "error_x", "arrayminus")] == [pytest.approx(moved["value"] - lo)]
    assert "," in C.value_title({"value": 18234.5, "interval": None})  # 18,234 rather than 1.823e+04


@pytest.mark.parametrize("feature, value, words", [
    ("age", 1e9, "outside the range"),
    ("age", -5, "outside the range"),
    ("age", "forty", "not a number"),
    ("age", None, "missing"),
    ("age", {"x": 1}, "not a number"),
    ("age", [1, 2], "not a number"),
    ("age", True, "not a number"),
    ("age", 30.5, "not a whole number"),
    ("employment_type", "astronaut", "known categories"),
    ("employment_type", {"a": 1}, "known categories"),
    ("employment_type", None, "missing"),
])
def test_forged_values_get_a_message_not_an_exception(app, feature, value, words):
    _, spec, _ = build(LOANS)
    form = Form(spec)
    if feature in form.sliders:
        form.sliders[feature] = value
    else:
        form.choices[feature] = value
    chart, key, verdict, values, message = predict(LOANS, form)
    assert chart is no_update and values is no_update
    assert words in str(message), message


def test_forged_log_position_and_shapes(app):
    _, spec, _ = build(LOANS)
    form = Form(spec)
    form.sliders["annual_income"] = 12.0  # 10**12
    assert "outside the slider" in str(predict(LOANS, form)[4])
    sv, sid, cv, cid = Form(spec).args()
    for args in ((sv[:-1], sid, cv, cid), ("x", sid, cv, cid), (sv, "x", cv, cid), (sv, sid, cv, None)):
        assert "unexpected shape" in str(C.predict(LOANS, None, *args, None, user=ANALYST)[4])
    forged_ids = [{"type": L.SLIDER, "feature": "shoe_size"}] + sid[1:]
    assert "Unknown feature" in str(C.predict(LOANS, None, sv, forged_ids, cv, cid, None, user=ANALYST)[4])
    twice = [sid[0]] + sid[:-1]
    assert "posted twice" in str(C.predict(LOANS, None, sv, twice, cv, cid, None, user=ANALYST)[4])
    assert "missing" in str(C.predict(LOANS, None, sv[1:], sid[1:], cv, cid, None, user=ANALYST)[4])


def test_another_models_user_gets_only_the_message(app):
    _, spec, _ = build(LOANS)
    chart, key, verdict, values, message = predict(LOANS, Form(spec), user=SCOPED)
    assert chart is no_update and values is no_update and "You do not have access" in str(message)


# -- local explanation ---------------------------------------------------------------------------------------

def test_local_explanation_of_tree_models_follows_every_change(app):
    for name in (LOANS, HOUSES, FLOWERS):
        _, spec, _ = build(name)
        sv, sid, cv, cid = Form(spec).args()
        children, note, style = C.local(None, name, None, sv, sid, cv, cid, user=ANALYST)
        assert children is not None and "add up to the prediction" in note and style == L.HIDDEN
        explanation = ev.explain(version(app, name), {f["name"]: f["value"] for f in spec["features"]})
        text = str(children)
        top = max(range(len(explanation["values"])), key=lambda i: abs(explanation["values"][i]))
        assert explanation["features"][top] in text


def test_kernel_models_explain_only_on_request(app):
    _, spec, _ = build(MLP)
    assert ev.explainer_method(version(app, MLP)) == "kernel"
    sv, sid, cv, cid = Form(spec).args()
    children, note, style = C.local(None, MLP, None, sv, sid, cv, cid, user=ANALYST)
    assert children is None and "Kernel SHAP" in note and style == {}
    children, note, style = C.local({"type": L.SLIDER, "feature": "signal"}, MLP, None, sv, sid, cv, cid,
                                    user=ANALYST)
    assert children is None and "Values changed" in note
    children, note, style = C.local(L.EXPLAIN_GO, MLP, None, sv, sid, cv, cid, user=ANALYST)
    assert children is not None and "estimate" in note


def test_local_with_forged_values_says_why(app):
    _, spec, _ = build(LOANS)
    form = Form(spec)
    form.sliders["age"] = "old"
    sv, sid, cv, cid = form.args()
    children, note, style = C.local(None, LOANS, None, sv, sid, cv, cid, user=ANALYST)
    assert children is None and "not a number" in note


# -- counterfactual carried into the form ---------------------------------------------------------------------

def test_applied_counterfactual_really_flips_the_prediction(app):
    found = version(app, LOANS)
    request = {"model": LOANS, "split": "test", "source": "index", "row": 3}
    before = ev.predict(found, ev.split_row(found, "test", 3))["predicted"]
    _, _, href, _ = E.counterfactual(E.L.CF_GO, request, LOANS, None, [], None, None, user=ANALYST)
    query = dict(parse_qsl(urlsplit(href).query))
    assert urlsplit(href).path == "/what-if"
    start = L.initial_start(PageContext(username="analyst", role="analyst", query=query))
    _, spec, note = build(LOANS, start)
    assert "with the values given in the link" in note
    _, _, verdict, values, message = predict(LOANS, Form(spec))
    assert message is None
    after = ev.predict(found, values["values"])["predicted"]
    assert after != before, (before, after, values)
    assert f"{after}" in str(verdict)


# -- access through the gate ---------------------------------------------------------------------------------

def outputs(app):
    return [k for k in app.extensions["glassbox.policy"].permissions if k.lstrip(".").startswith("whatif-")]


def test_viewer_gets_403_from_every_what_if_callback(app):
    client = app.test_client()
    sign_in(client, app.extensions["glassbox.db"], "viewer")
    keys = outputs(app)
    assert len(keys) == 5
    for key in keys:
        assert post_callback(client, key).status_code == 403, key


def test_scoped_analyst_posting_for_another_model_gets_the_message(app):
    _, spec, _ = build(LOANS)
    sv, sid, cv, cid = Form(spec).args()
    client = app.test_client()
    sign_in(client, app.extensions["glassbox.db"], "scoped")
    key = next(k for k in outputs(app) if k.startswith("..whatif-proba"))

    def items(ids, values, prop="value"):
        return [{"id": i, "property": prop, "value": v} for i, v in zip(ids, values)]

    def ids_of(ids):
        return [{"id": i, "property": "id", "value": i} for i in ids]

    body_inputs = [items(sid, [None] * len(sv), "drag_value"), items(sid, sv), items(cid, cv)]
    state = [ids_of(sid), ids_of(cid), {"id": "whatif-model", "property": "value", "value": LOANS},
             {"id": "whatif-version", "property": "value", "value": None},
             {"id": "whatif-figkey", "property": "data", "value": None}]
    response = post_callback(client, key, inputs=body_inputs, state=state, changed=[])
    assert response.status_code == 200, response.data[:300]
    body = response.get_data(as_text=True)
    assert "You do not have access" in body and "proba" not in body


# -- live while dragging ---------------------------------------------------------------------------------------

def test_dragging_answers_live_and_commits_on_release(app):
    _, spec, _ = build(LOANS)
    form = Form(spec)
    sv, sid, cv, cid = form.args()
    names = [i["feature"] for i in sid]
    drags = [None] * len(sv)
    drags[names.index("credit_score")] = 840  # the handle is here; the committed value is still the old one
    chart, key, verdict, values, message = C.predict(LOANS, None, sv, sid, cv, cid, None, user=ANALYST,
                                                     slider_drags=drags, committed=False)
    found = version(app, LOANS)
    live = {**ev.typical_row(found), "credit_score": 840}
    assert values is no_update and message is None
    assert list(chart.data[0].x) == pytest.approx(ev.predict(found, live)["proba"])
    released = C.predict(LOANS, None, [840 if n == "credit_score" else v for n, v in zip(names, sv)], sid, cv, cid,
                         key, user=ANALYST, slider_drags=drags, committed=True)
    assert released[3]["values"] == live


def test_committed_and_live_positions():
    assert C._committed([{"prop_id": '{"feature":"a","type":"whatif-slider"}.drag_value'}]) is False
    assert C._committed([{"prop_id": '{"feature":"a","type":"whatif-slider"}.value'}]) is True
    assert C._committed([{"prop_id": '{"feature":"a","type":"whatif-slider"}.drag_value'},
                         {"prop_id": '{"feature":"a","type":"whatif-slider"}.value'}]) is True
    assert C._committed([{"prop_id": '{"feature":"e","type":"whatif-choice"}.value'}]) is True
    assert C._committed([{"prop_id": "."}]) is True and C._committed([]) is True
    assert C.live_positions([None, 5], [1, 2]) == [1, 5]
    assert C.live_positions("junk", [1, 2]) == [1, 2] and C.live_positions([1], [1, 2]) == [1, 2]
