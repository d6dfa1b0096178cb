"""Explain-page callbacks: choosing rows, the explanation, counterfactuals, row lists, forged input, access."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import plotly.graph_objects as go
import pytest
from dash import no_update

from app.security.permissions import MODEL_SCOPED, ROLES, Permission
from app.security.users import CurrentUser
from callbacks import explain as C
from data import explain_views as ev
from data.registry import get_version
from layouts import explain as L
from layouts.page import PageContext
from tests.browser.seed_explain import FLOWERS, HOUSES, LOANS, MLP, post_to, why_app
from tests.conftest import post_callback, sign_in

ANALYST = CurrentUser(id=1, username="analyst", session_version=1, active=True,
                      global_permissions=ROLES["analyst"])
SCOPED = CurrentUser(id=2, username="scoped", session_version=1, active=True,
                     global_permissions=frozenset({Permission.AUTHENTICATED}),
                     model_permissions={HOUSES: ROLES["analyst"] & MODEL_SCOPED})
#: Explanations of a model but no row-level data (no built-in role does this; the check must still hold).
NO_ROWS = CurrentUser(id=3, username="norows", session_version=1, active=True,
                      global_permissions=frozenset({Permission.AUTHENTICATED, Permission.VIEW_INFLUENCE}))
FORGED = [None, 1e9, -1, "x" * 3000, {"a": 1}, [1, 2], True, 2.5, "12abc"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = why_app(tmp_path_factory.mktemp("explain"))
    yield app
    app.extensions["glassbox.db"].dispose()


@pytest.fixture(autouse=True)
def context(app):
    with app.app_context():
        yield


def version(app, name):
    with app.extensions["glassbox.db"].session() as s:
        return get_version(s, name)


def as_json(component) -> str:
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json())


def index_request(row, model=LOANS, split="test"):
    return {"model": model, "split": split, "source": "index", "row": row}


# -- the URL and the buttons -----------------------------------------------------------------------

@pytest.mark.parametrize("query, expected", [
    ({"model": LOANS, "split": "train", "row": "12"}, {"source": "index", "row": 12, "split": "train"}),
    ({"model": LOANS, "row": "7"}, {"source": "index", "row": 7, "split": "test"}),
    ({"model": LOANS, "values": '{"age": 30}'}, {"source": "values", "values": '{"age": 30}', "base_row": None}),
    ({"model": LOANS, "values": '{"age": 30}', "row": "4"}, {"source": "values", "base_row": 4}),
    ({"model": LOANS, "row": "-1"}, {"source": "typical"}),
    ({"model": LOANS, "row": "1e9"}, {"source": "typical"}),
    ({"model": LOANS, "row": "99999999999"}, {"source": "typical"}),
    ({"split": "validation"}, {"source": "typical", "split": "test"}),
])
def test_initial_request_from_the_url(query, expected):
    request = L.initial_request(PageContext(username="a", role="analyst", query=query))
    for key, value in expected.items():
        assert request[key] == value


def test_layout_holds_no_row_data():
    body = json.dumps(L.layout(PageContext(username="a", role="analyst", query={"model": LOANS, "row": "3"}))
                      .to_plotly_json(), default=lambda o: o.to_plotly_json())
    assert "credit_score" not in body  # feature names and values come from callbacks that check access
    assert L.PAGE.path == "/explain" and L.PAGE.permission is Permission.VIEW_INFLUENCE


def test_choose_turns_each_button_into_a_request():
    ids = [{"type": L.VALUE, "feature": "age"}, {"type": L.VALUE, "feature": "home_ownership"}]
    assert C.choose(L.INDEX_GO, 1, 12, "train", [], [], LOANS) == index_request(12, split="train")
    assert C.choose(L.TYPICAL_GO, 1, None, "test", [], [], LOANS)["source"] == "typical"
    values = C.choose(L.VALUES_GO, 1, None, "test", ids, [30, "own"], LOANS)
    assert values["values"] == {"age": 30, "home_ownership": "own"} and values["source"] == "values"
    assert C.choose({"type": L.MISTAKE, "row": 9}, 1, None, "test", [], [], LOANS) == index_request(9)
    # A mistake button that appeared (n_clicks None) is not a click.
    assert C.choose({"type": L.MISTAKE, "row": 9}, None, None, "test", [], [], LOANS) is no_update
    assert C.choose("made-up", 1, None, "test", [], [], LOANS) is no_update
    assert C.choose(L.VALUES_GO, 1, None, "test", "not a list", {"x": 1}, LOANS)["values"] == {}


# -- the explanation --------------------------------------------------------------------------------

def test_explain_a_row_by_number(app):
    out = C.explain_row(index_request(3), LOANS, None, user=ANALYST)
    summary, table, explanation, message, href = out[:5]
    assert message is None
    assert "Row 3 of the test data" in str(summary) and "True class" in str(summary)
    assert explanation["base_value"] + sum(explanation["values"]) == pytest.approx(explanation["output"])
    found = version(app, LOANS)
    row = ev.split_row(found, "test", 3)
    assert dict(zip(explanation["features"], explanation["data"])) == row
    query = dict(parse_qsl(urlsplit(href).query))
    assert query["model"] == LOANS and query["row"] == "3" and query["split"] == "test" and "values" not in query
    assert [o["value"] for o in out[5]] == list(found.features) and out[6] == []
    assert out[9] == L.HIDDEN and out[11] == L.HIDDEN  # binary: no class to pick, no target value
    assert out[12].endswith("&row=3") and "model=loans" in out[12]


def test_explain_typical_and_entered_values(app):
    found = version(app, LOANS)
    typical = C.explain_row({"source": "typical"}, LOANS, None, user=ANALYST)
    assert "typical row" in str(typical[0])
    assert dict(zip(typical[2]["features"], typical[2]["data"])) == ev.typical_row(found)
    entered = C.explain_row({"model": LOANS, "source": "values", "values": '{"age": 25, "home_ownership": "own"}'},
                            LOANS, None, user=ANALYST)
    shown = dict(zip(entered[2]["features"], entered[2]["data"]))
    assert shown["age"] == 25 and shown["home_ownership"] == "own"
    assert "Values you entered" in str(entered[0]) and "True class" not in str(entered[0])
    query = dict(parse_qsl(urlsplit(entered[4]).query))
    assert json.loads(query["values"]) == {"age": 25, "home_ownership": "own"}


def test_a_request_for_another_model_starts_from_a_typical_row(app):
    out = C.explain_row(index_request(3, model=HOUSES), LOANS, None, user=ANALYST)
    assert "typical row" in str(out[0])


def test_multiclass_and_regression_controls(app):
    flowers = C.explain_row(index_request(2, model=FLOWERS), FLOWERS, None, user=ANALYST)
    assert flowers[9] == {} and flowers[8] == C.ANY_OTHER
    assert len(flowers[7]) == 3  # any other class, and the two classes not predicted
    houses = C.explain_row(index_request(2, model=HOUSES), HOUSES, None, user=ANALYST)
    assert houses[11] == {} and isinstance(houses[10], float)
    assert "True value" in str(houses[0])


@pytest.mark.parametrize("request_", [
    index_request(10**6), index_request("x"), index_request(None), index_request(-3), index_request({"a": 1}),
    {"model": LOANS, "source": "values", "values": "{not json"},
    {"model": LOANS, "source": "values", "values": '{"age": 1000}'},
    {"model": LOANS, "source": "values", "values": '{"employment_type": "pirate"}'},
    {"model": LOANS, "source": "values", "values": '{"shoe_size": 3}'},
    {"model": LOANS, "source": "values", "values": '["age"]'},
    {"model": LOANS, "source": "values", "values": '{"age": 30}', "base_row": 10**7},
])
def test_forged_row_requests_give_a_message_and_no_data(app, request_):
    out = C.explain_row(request_, LOANS, None, user=ANALYST)
    assert out[3] is not None and "warning" in str(out[3])
    assert out[0] is None and out[2] is None and out[5] == []


@pytest.mark.parametrize("junk", [None, "text", 5, [1], {"source": "weird"}])
def test_junk_requests_fall_back_to_a_typical_row(app, junk):
    out = C.explain_row(junk, LOANS, None, user=ANALYST)
    assert out[3] is None and "typical row" in str(out[0])


def test_rows_need_row_level_access_on_the_model(app):
    out = C.explain_row(index_request(3), LOANS, None, user=NO_ROWS)
    assert "view row-level data" in str(out[3]) and out[2] is None
    # Entered values need no row-level access.
    assert C.explain_row({"model": LOANS, "source": "typical"}, LOANS, None, user=NO_ROWS)[3] is None
    base_row = {"model": LOANS, "source": "values", "values": "{}", "base_row": 3}
    assert "view row-level data" in str(C.explain_row(base_row, LOANS, None, user=NO_ROWS)[3])
    scoped = C.explain_row(index_request(3), LOANS, None, user=SCOPED)
    assert "You do not have access" in str(scoped[3]) and scoped[2] is None


def test_waterfall_from_the_stored_explanation(app):
    explanation = C.explain_row(index_request(3), LOANS, None, user=ANALYST)[2]
    fig = C.draw_waterfall(explanation, 3)
    assert isinstance(fig, go.Figure)
    assert len(fig.data[0].y) == 1 + 3 + 1 + 1  # base, top 3, the rest grouped, the prediction
    assert fig.data[0].x[-1] == pytest.approx(explanation["output"])
    for forged in (None, "x", {"features": ["a"], "values": ["b"], "base_value": 0, "output": 1},
                   {"features": ["a", "b"], "values": [1.0], "base_value": 0, "output": 1},
                   {"features": [], "values": []}):
        assert isinstance(C.draw_waterfall(forged, 8), dict)
    for bad in FORGED:
        if bad in (None, 2.5):
            continue
        assert "Contributions shown" in str(C.draw_waterfall(explanation, bad))


# -- row lists ---------------------------------------------------------------------------------------

def test_mistakes_list(app):
    listing = C.mistakes(LOANS, None, "test", user=ANALYST)
    text = str(listing)
    assert "most sure of" in text and L.MISTAKE in text
    top = ev.confident_mistakes(version(app, LOANS), "test")[0]
    assert f"'row': {top['row']}" in text
    assert "predicts worst" in str(C.mistakes(HOUSES, None, "test", user=ANALYST))
    assert "view row-level data" in str(C.mistakes(LOANS, None, "test", user=NO_ROWS))
    assert "You do not have access" in str(C.mistakes(LOANS, None, "test", user=SCOPED))
    assert "Data must be one of" in str(C.mistakes(LOANS, None, "validation", user=ANALYST))
    assert "Choose a model" in str(C.mistakes(None, None, "test", user=ANALYST))


def test_nearest_rows_leave_out_the_row_itself(app):
    listing = as_json(C.nearest(index_request(5), LOANS, None, "test", user=ANALYST))
    assert "This row" in listing
    items = ev.nearest(version(app, LOANS), "test", ev.split_row(version(app, LOANS), "test", 5), exclude_index=5)
    assert all(f'"children": "{i["row"]}"' in listing for i in items)
    assert '"children": "5"' not in listing
    assert "view row-level data" in str(C.nearest(index_request(5), LOANS, None, "test", user=NO_ROWS))
    assert "warning" in str(C.nearest(index_request(10**6), LOANS, None, "test", user=ANALYST))


def test_values_form_has_one_input_per_feature(app):
    form = C.values_form(LOANS, None, user=ANALYST)
    text = str(form)
    for feature in version(app, LOANS).features:
        assert f"'feature': '{feature}'" in text
    assert "You do not have access" in str(C.values_form(LOANS, None, user=SCOPED))


# -- counterfactuals ---------------------------------------------------------------------------------

def test_counterfactual_flips_and_links_to_what_if(app):
    found = version(app, LOANS)
    block, message, href, style = C.counterfactual(L.CF_GO, index_request(3), LOANS, None, ["age"], None, None,
                                                   user=ANALYST)
    assert message is None and style == {}
    text = str(block)
    assert "Would need to be" in text and "changes the predicted class" in text
    query = dict(parse_qsl(urlsplit(href).query))
    assert query["row"] == "3" and query["model"] == LOANS
    changed = json.loads(query["values"])
    assert "age" not in changed and changed
    row = {**ev.split_row(found, "test", 3), **changed}
    assert ev.predict(found, row)["predicted"] != ev.predict(found, ev.split_row(found, "test", 3))["predicted"]


def test_counterfactual_is_cleared_when_the_row_changes(app):
    assert C.counterfactual(L.REQUEST, index_request(4), LOANS, None, [], None, None, user=ANALYST) == (
        None, None, "/what-if", L.HIDDEN)


def test_counterfactual_for_multiclass_and_regression(app):
    block, message, href, _ = C.counterfactual(L.CF_GO, index_request(2, model=FLOWERS), FLOWERS, None, [],
                                               "virginica", None, user=ANALYST)
    assert message is None and "virginica" in str(block)
    found = version(app, HOUSES)
    value = ev.predict(found, ev.split_row(found, "test", 1))["value"]
    block, message, href, _ = C.counterfactual(L.CF_GO, index_request(1, model=HOUSES), HOUSES, None, [], None,
                                               value + 15000, user=ANALYST)
    assert message is None and "moves the prediction above" in str(block)


@pytest.mark.parametrize("locks, desired, target", [
    (["not-a-feature"], None, None), ("age", None, None), ([{"a": 1}], None, None),
])
def test_counterfactual_forged_locks(app, locks, desired, target):
    _, message, _, style = C.counterfactual(L.CF_GO, index_request(3), LOANS, None, locks, desired, target,
                                            user=ANALYST)
    assert message is not None or locks == "age"
    assert style == L.HIDDEN or locks == "age"


@pytest.mark.parametrize("bad", [None, "x", 1e30, {"a": 1}, True])
def test_counterfactual_forged_targets_and_classes(app, bad):
    _, message, _, _ = C.counterfactual(L.CF_GO, index_request(1, model=HOUSES), HOUSES, None, [], None, bad,
                                        user=ANALYST)
    assert message is not None
    if bad is not None:
        _, message, _, _ = C.counterfactual(L.CF_GO, index_request(1, model=FLOWERS), FLOWERS, None, [], bad, None,
                                            user=ANALYST)
        assert message is not None


def test_everything_locked_says_nothing_can_change(app):
    found = version(app, LOANS)
    block, message, href, style = C.counterfactual(L.CF_GO, index_request(3), LOANS, None, list(found.features),
                                                   None, None, user=ANALYST)
    assert "locked" in str(block) and style == L.HIDDEN


def test_kernel_model_is_explained_on_this_page(app):
    out = C.explain_row(index_request(0, model=MLP), MLP, None, user=ANALYST)
    assert out[3] is None and out[2]["method"] == "kernel"
    assert out[2]["base_value"] + sum(out[2]["values"]) == pytest.approx(out[2]["output"])


def test_too_long_links_are_refused(app, monkeypatch):
    monkeypatch.setattr(C, "MAX_LINK_VALUES", 5)
    found = version(app, LOANS)
    row = {**ev.typical_row(found), "age": 22, "credit_score": 500}
    assert C.whatif_href(found, row, {"source": "values", "split": "test"}) is None


# -- access through the gate -----------------------------------------------------------------------------

def outputs(app):
    return [k for k in app.extensions["glassbox.policy"].permissions if k.lstrip(".").startswith("explain-")]


def test_viewer_gets_403_from_every_explain_callback(app):
    client = app.test_client()
    sign_in(client, app.extensions["glassbox.db"], "viewer")
    keys = outputs(app)
    assert len(keys) == 9
    for key in keys:
        assert post_callback(client, key).status_code == 403, key


def test_row_callbacks_are_registered_with_row_permission(app):
    permissions = app.extensions["glassbox.policy"].permissions
    assert permissions["explain-mistakes.children"] is Permission.VIEW_ROWS
    assert permissions["explain-nearest.children"] is Permission.VIEW_ROWS


def test_analyst_scoped_to_another_model_gets_only_the_message(app):
    client = app.test_client()
    sign_in(client, app.extensions["glassbox.db"], "scoped")
    key = next(k for k in outputs(app) if k.startswith("..explain-summary"))
    response = post_to(client, app, key, {"explain-request.data": index_request(3), "explain-model.value": LOANS})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "You do not have access" in body and "credit_score" not in body
    response = post_to(client, app, "explain-mistakes.children", {"explain-model.value": LOANS,
                                                                 "explain-split.value": "test"})
    assert response.status_code == 200 and "You do not have access" in response.get_data(as_text=True)
    allowed = post_to(client, app, key, {"explain-request.data": index_request(3, model=HOUSES),
                                         "explain-model.value": HOUSES})
    assert "Row 3 of the test data" in allowed.get_data(as_text=True)
