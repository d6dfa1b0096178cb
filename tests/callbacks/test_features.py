"""Feature-influence callbacks: cache reads, on-demand partial dependence, progress, forged input, access."""

from __future__ import annotations

import base64
import json

import numpy as np
import plotly.graph_objects as go
import pytest
from dash import no_update
from plotly.io.json import to_json_plotly

from app.security.permissions import MODEL_SCOPED, ROLES, Permission
from app.security.users import CurrentUser
from callbacks import features as C
from data import explain_views as ev
from data.analysis_cache import get_result
from data.registry import get_version, register_model
from layouts import features as L
from layouts.page import PageContext
from tests.browser.seed_explain import FLOWERS, HOUSES, LOANS, MLP, loan_frames, post_to, why_app
from tests.conftest import sign_in

ANALYST = CurrentUser(id=1, username="analyst", session_version=1, active=True,
                      global_permissions=ROLES["analyst"])
SCOPED = CurrentUser(id=2, username="scoped", session_version=1, active=True,
                     global_permissions=frozenset({Permission.AUTHENTICATED}),
                     model_permissions={HOUSES: ROLES["analyst"] & MODEL_SCOPED})
FORGED = [None, 1e9, "x" * 5000, {"a": 1}, [1, 2], True, -3]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = why_app(tmp_path_factory.mktemp("features"))
    yield app
    app.extensions["glassbox.db"].dispose()


@pytest.fixture(autouse=True)
def context(app):
    with app.app_context():
        yield


def _plain(value):
    """Turn plotly's typed arrays ({"dtype", "bdata", "shape"}) back into lists, recursively."""
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        if value.get("shape"):
            array = array.reshape([int(n) for n in str(value["shape"]).split(",")])
        return array.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def drawn(fig) -> go.Figure:
    """Return a chart answer as a Figure, checking it is a chart and not an empty state."""
    assert isinstance(fig, dict) and fig.get("data"), fig
    return go.Figure(_plain(json.loads(to_json_plotly(fig))))


def empty(fig) -> bool:
    """Return True for an empty-state answer (no traces, a message instead)."""
    return isinstance(fig, dict) and fig.get("data") == [] and bool(fig["layout"].get("annotations"))


def cached(app, name, kind):
    with app.extensions["glassbox.db"].session() as s:
        return get_result(s, get_version(s, name).id, kind)


def test_layout_declares_every_control():
    body = str(L.layout(PageContext(username="a", role="analyst", query={"model": LOANS})))
    for control in (L.METHOD, L.TOP_K, L.IMPORTANCE, L.PDP_FEATURE, L.PDP_CENTERED, L.PDP2D_X, L.PDP2D_Y,
                    L.DEP_FEATURE, L.DEP_COLOR, L.INTERVAL, L.STATUS, L.CLASS):
        assert control in body
    assert L.PAGE.path == "/features" and L.PAGE.permission is Permission.VIEW_INFLUENCE


# -- load --------------------------------------------------------------------------------------

def test_load_fills_pickers_from_the_ranking(app):
    out = C.load(LOANS, None, 0, user=ANALYST)
    status, interval_disabled, store, message = out[:4]
    assert status is None and interval_disabled is True and message is None
    assert sorted(store["ready"]) == sorted(ev.FEATURE_KINDS)
    assert out[4] == [] and out[6] == L.HIDDEN  # binary: no class picker
    ranked = cached(app, LOANS, "permutation_importance")["features"]
    assert out[8] == ranked[0] and out[14] == ranked[0] and out[16] == ranked[1]
    assert [o["value"] for o in out[7]] == get_version_features(app, LOANS)
    assert [out[10], out[12]] == cached(app, LOANS, "pdp_2d")["features"]


def get_version_features(app, name):
    with app.extensions["glassbox.db"].session() as s:
        return list(get_version(s, name).features)


def test_load_shows_the_class_picker_for_multiclass(app):
    out = C.load(FLOWERS, None, 0, user=ANALYST)
    assert [o["value"] for o in out[4]] == ["setosa", "versicolor", "virginica"]
    assert out[5] == "setosa" and out[6] == {}


def test_load_while_analyses_compute_shows_progress_and_polls(app):
    model, train, test = loan_frames(n=200, seed=5)
    register_model(model, train, test, name="pending-loans", target="approved", positive_class="yes",
                   created_by="admin", db=app.extensions["glassbox.db"])
    out = C.load("pending-loans", None, 0, user=ANALYST)
    assert out[0] is not None and "Computing" in str(out[0]) and out[1] is False
    assert out[2]["ready"] == []
    fig, meaning, note = C.update_importance("pending-loans", None, "permutation", 10, None, out[2], user=ANALYST)
    assert "still being computed" in str(fig) and note is None  # the chart says why it is empty
    fig, note = C.update_pdp("pending-loans", None, "age", False, None, out[2], user=ANALYST)
    assert "still being computed" in str(fig)
    # A poll with nothing new changes neither the store nor the pickers.
    polled = C.load("pending-loans", None, 1, out[2], user=ANALYST, polled=True)
    assert polled[2] is no_update and all(v is no_update for v in polled[3:])
    assert polled[1] is False


def test_load_refuses_models_the_user_may_not_open(app):
    for user, model in ((SCOPED, LOANS), (ANALYST, "no-such-model"), (ANALYST, None), (ANALYST, {"a": 1})):
        out = C.load(model, None, 0, user=user)
        assert out[3] is not None and out[1] is True
        assert out[8] is None  # no feature names leak
    assert "You do not have access" in str(C.load(LOANS, None, 0, user=SCOPED)[3])
    assert C.load(HOUSES, None, 0, user=SCOPED)[3] is None


# -- importance ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["permutation", "impurity", "shap"])
def test_importance_figure_is_sorted_and_limited(app, method):
    fig, meaning, note = C.update_importance(LOANS, None, method, 3, None, None, user=ANALYST)
    assert meaning == ev.METHOD_MEANINGS[method] and note
    bar = drawn(fig).data[0]
    assert len(bar.y) == 3
    assert list(bar.x) == sorted(bar.x)  # largest on top (plotly draws the first bar at the bottom)
    if method == "permutation":
        payload = cached(app, LOANS, "permutation_importance")
        assert list(bar.y)[::-1] == payload["features"][:3]
        assert list(bar.x)[::-1] == pytest.approx(payload["mean"][:3])
        assert list(bar.error_x.array)[::-1] == pytest.approx(payload["std"][:3])


def test_charts_are_built_once_per_payload_and_parameters(app):
    first, _, _ = C.update_importance(LOANS, None, "permutation", 4, None, None, user=ANALYST)
    again, _, _ = C.update_importance(LOANS, None, "permutation", 4, None, None, user=ANALYST)
    other, _, _ = C.update_importance(LOANS, None, "permutation", 5, None, None, user=ANALYST)
    assert again is first and other is not first
    assert len(drawn(other).data[0].y) == 5


def test_impurity_of_a_model_without_it_says_so(app):
    fig, _, note = C.update_importance(MLP, None, "impurity", 10, None, None, user=ANALYST)
    assert empty(fig) and "only tree-based" in str(fig)


def test_mean_abs_shap_per_class_for_multiclass(app):
    fig, _, note = C.update_importance(FLOWERS, None, "shap", 10, "virginica", None, user=ANALYST)
    assert "virginica" in note
    payload = cached(app, FLOWERS, "shap")
    keep = [i for i, t in enumerate(payload["target_label"]) if t == "virginica"]
    expected = np.abs(np.asarray(payload["values"])[keep]).mean(axis=0)
    fig = drawn(fig)
    shown = dict(zip(fig.data[0].y, fig.data[0].x))
    assert [shown[f] for f in payload["features"]] == pytest.approx(expected.tolist())


@pytest.mark.parametrize("bad", FORGED)
def test_importance_forged_values_give_messages(app, bad):
    for args in ((bad, 10, None), ("permutation", bad, None)):
        fig, _, message = C.update_importance(LOANS, None, *args, None, user=ANALYST)
        assert message is not None and "warning" in str(message)
    if bad is not None:
        _, _, message = C.update_importance(FLOWERS, None, "shap", 10, bad, None, user=ANALYST)
        assert message is not None


# -- partial dependence ------------------------------------------------------------------------------

def test_pdp_reads_the_cache_and_centres(app):
    payload = cached(app, LOANS, "pdp")
    feature = payload["features"][0]
    fig, note = C.update_pdp(LOANS, None, feature, False, None, None, user=ANALYST)
    average = drawn(fig).data[-1]
    assert list(average.y) == pytest.approx(payload["grids"]["yes"][feature]["average"])
    assert "computed now" not in note
    centred, _ = C.update_pdp(LOANS, None, feature, True, None, None, user=ANALYST)
    assert drawn(centred).data[-1].y[0] == pytest.approx(0.0)


def test_pdp_of_an_uncached_feature_is_computed_and_says_so(app):
    payload = cached(app, LOANS, "pdp")
    other = next(f for f in get_version_features(app, LOANS) if f not in payload["features"])
    fig, note = C.update_pdp(LOANS, None, other, False, None, None, user=ANALYST)
    assert drawn(fig) and "computed now" in note


def test_categorical_pdp_is_drawn_as_bars(app):
    fig, _ = C.update_pdp(LOANS, None, "employment_type", False, None, None, user=ANALYST)
    bars = [t for t in drawn(fig).data if isinstance(t, go.Bar)]
    assert bars and set(bars[0].x) == {"salaried", "self-employed", "unemployed"}


def test_multiclass_pdp_follows_the_class(app):
    payload = cached(app, FLOWERS, "pdp")
    feature = payload["features"][0]
    for klass in ("setosa", "virginica"):
        fig, _ = C.update_pdp(FLOWERS, None, feature, False, klass, None, user=ANALYST)
        assert list(drawn(fig).data[-1].y) == pytest.approx(payload["grids"][klass][feature]["average"])


@pytest.mark.parametrize("bad", FORGED + ["not_a_feature"])
def test_pdp_forged_feature_gives_a_message(app, bad):
    fig, message = C.update_pdp(LOANS, None, bad, False, None, None, user=ANALYST)
    assert message is not None and empty(fig)


def test_pdp2d_reads_the_cache_and_refuses_one_feature_twice(app):
    payload = cached(app, HOUSES, "pdp_2d")
    fx, fy = payload["features"]
    fig, note = C.update_pdp2d(HOUSES, None, fx, fy, None, None, user=ANALYST)
    assert np.asarray(drawn(fig).data[0].z).tolist() == pytest.approx(np.asarray(payload["grids"]["value"]["values"]).T)
    fig, note = C.update_pdp2d(HOUSES, None, fx, fx, None, None, user=ANALYST)
    assert "different" in note and empty(fig)
    fig, note = C.update_pdp2d(HOUSES, None, fx, "nope", None, None, user=ANALYST)
    assert empty(fig)


# -- SHAP dependence --------------------------------------------------------------------------------

def test_dependence_scatter_uses_the_cached_sample(app):
    payload = cached(app, LOANS, "shap")
    feature, colour = "credit_score", "annual_income"
    fig, note = C.update_dependence(LOANS, None, feature, colour, None, None, user=ANALYST)
    j = payload["features"].index(feature)
    fig = drawn(fig)
    assert list(fig.data[0].y) == pytest.approx([row[j] for row in payload["values"]])
    assert fig.data[0].marker.colorbar.title.text == colour and fig.layout.showlegend is False
    same, _ = C.update_dependence(LOANS, None, feature, feature, None, None, user=ANALYST)
    assert drawn(same).data[0].marker.showscale is not True  # colouring by itself says nothing


def test_dependence_refuses_a_model_the_user_may_not_open(app):
    fig, message = C.update_dependence(LOANS, None, "credit_score", None, None, None, user=SCOPED)
    assert empty(fig) and "You do not have access" in str(message)


@pytest.mark.parametrize("bad", FORGED)
def test_dependence_forged_values(app, bad):
    fig, message = C.update_dependence(LOANS, None, bad, None, None, None, user=ANALYST)
    assert message is not None
    fig, message = C.update_dependence(LOANS, None, "credit_score", bad, None, None, user=ANALYST)
    assert message is not None or bad is None


# -- access through the gate -------------------------------------------------------------------------

def outputs(app):
    return [k for k in app.extensions["glassbox.policy"].permissions if k.lstrip(".").startswith("features-")]


def test_viewer_gets_403_from_every_features_callback(app):
    client = app.test_client()
    sign_in(client, app.extensions["glassbox.db"], "viewer")
    keys = outputs(app)
    assert len(keys) == 7
    for key in keys:
        assert post_to(client, app, key).status_code == 403, key


def test_analyst_scoped_to_another_model_gets_only_the_message(app):
    client = app.test_client()
    sign_in(client, app.extensions["glassbox.db"], "scoped")
    key = "..features-importance.figure...features-method-help.children...features-importance-note.children.."
    response = post_to(client, app, key, {"features-model.value": LOANS, "features-method.value": "permutation",
                                          "features-top-k.value": 10})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "You do not have access" in body and "credit_score" not in body
    allowed = post_to(client, app, key, {"features-model.value": HOUSES, "features-method.value": "permutation",
                                         "features-top-k.value": 10})
    assert allowed.status_code == 200 and "living_area_m2" in allowed.get_data(as_text=True)
