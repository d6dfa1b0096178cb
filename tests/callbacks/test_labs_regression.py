"""Regression lab callbacks: good, edge and forged values; preset sync; URL state; roles."""

from __future__ import annotations

from urllib.parse import parse_qsl

import plotly.graph_objects as go
import pytest
from dash import no_update

from app.ml.regression_lab import PRESETS, RegressionSettings, run_regression_lab
from callbacks import labs_regression as C
from layouts import labs_regression as L
from layouts.page import PageContext

GOOD = dict(a0=0.0, a1=-2.0, a2=0.0, a3=0.3, a4=0.0, a5=0.0, x_range=[-3.0, 3.0], noise=0.5, n_samples=60,
            seed=0, degree=3, penalty="none", log_alpha=-2.0, test_fraction=0.3)
ORDER = list(GOOD)


def call(**changes):
    values = {**GOOD, **changes}
    return C.update_regression(*(values[k] for k in ORDER))


def test_good_values_give_three_figures_stats_and_diagnosis():
    fit, validation, coefs, stats, diagnosis, message, search = call()
    assert all(isinstance(f, go.Figure) for f in (fit, validation, coefs))
    expected = run_regression_lab(RegressionSettings())
    assert diagnosis.children == expected.reading and diagnosis.color == "success"
    assert f"{expected.test_r2:.3g}" in str(stats.to_plotly_json())
    assert message is None
    query = dict(parse_qsl(search[1:]))
    assert query == {"coef": "0,-2,0,0.3", "xmin": "-3", "xmax": "3", "noise": "0.5", "n": "60", "seed": "0",
                     "degree": "3", "penalty": "none", "alpha": "0.01", "test": "0.3"}


def test_raising_the_degree_shows_overfitting():
    labels = [call(degree=d)[4].color for d in (1, 3, 15)]
    assert labels == ["warning", "success", "danger"]
    validation = call(degree=15)[1]
    marker = [s for s in validation.layout.shapes if s.x0 == 15]
    assert marker, "the current degree is marked on the validation curve"


def test_alpha_at_both_ends_and_every_penalty():
    for penalty in ("ridge", "lasso", "elasticnet"):
        for log_alpha in L.ALPHA_LOG_RANGE:
            out = call(penalty=penalty, log_alpha=log_alpha, degree=12)
            assert isinstance(out[0], go.Figure), (penalty, log_alpha)
    # Lasso with a large alpha zeroes every coefficient, and the bars say so.
    coefs = call(penalty="lasso", log_alpha=3.0, degree=12)[2]
    assert "12 of 12 exactly 0" in coefs.layout.title.text


def test_degree_above_the_training_sample_count_is_a_note():
    out = call(n_samples=20, test_fraction=0.5, degree=15)
    assert "10 training points" in str(out[5].to_plotly_json())
    assert out[4].color == "danger"


def test_zero_noise_is_fine():
    out = call(noise=0.0)
    assert out[4].color == "success"


@pytest.mark.parametrize("name,value", [
    ("a0", 11), ("a1", "x"), ("a2", {"a": 1}), ("a3", [1]), ("a5", 1e9), ("a4", float("nan")),
    ("x_range", None), ("x_range", [1]), ("x_range", [2, 1]), ("x_range", [0, 0.2]), ("x_range", "a,b"),
    ("x_range", [-1e9, 3]), ("x_range", {"a": 1}), ("noise", -1), ("noise", None), ("noise", 1e9),
    ("n_samples", 5), ("n_samples", 1e9), ("n_samples", 50.5), ("seed", "abc"), ("degree", 0), ("degree", 16),
    ("degree", 1e9), ("degree", None), ("penalty", "l3"), ("penalty", None), ("penalty", ["ridge"]),
    ("log_alpha", 9), ("log_alpha", "1e9"), ("test_fraction", 0.0), ("test_fraction", True),
])
def test_forged_values_give_a_message_not_an_exception(name, value):
    out = call(**{name: value})
    assert out[0] is no_update and out[6] is no_update
    assert "alert" in type(out[5]).__name__.lower()


def test_empty_coefficient_box_counts_as_zero():
    assert isinstance(call(a5=None)[0], go.Figure)
    assert isinstance(call(a5="")[0], go.Figure)


# ---------------------------------------------------------------------------
# Preset menu <-> coefficient boxes.
# ---------------------------------------------------------------------------

def test_choosing_a_preset_fills_the_coefficients():
    out = C.preset_or_coefficients(L.PRESET, "sine", [0] * 6)
    assert out[0] is no_update and list(out[1:]) == list(PRESETS["sine"][1])


def test_editing_a_coefficient_selects_the_matching_preset_or_custom():
    out = C.preset_or_coefficients(L.COEFFICIENTS[1], "sine", [0, -2, 0, 0.3, 0, 0])
    assert out[0] == "cubic" and all(o is no_update for o in out[1:])
    out = C.preset_or_coefficients(L.COEFFICIENTS[1], "cubic", [0, -2.5, 0, 0.3, 0, 0])
    assert out[0] == L.CUSTOM
    out = C.preset_or_coefficients(L.COEFFICIENTS[1], "cubic", [0, -2, 0, 0.3, 0, 0])
    assert out[0] is no_update


@pytest.mark.parametrize("triggered,preset,coefs", [
    (L.PRESET, "custom", [0] * 6), (L.PRESET, {"a": 1}, [0] * 6), (L.PRESET, "nope", [0] * 6),
    (L.COEFFICIENTS[0], "cubic", ["x"] * 6), (L.COEFFICIENTS[0], "cubic", [0] * 3), (None, "cubic", [0] * 6),
    ("elsewhere", "cubic", [0] * 6), (L.PRESET, "cubic", None),
])
def test_preset_sync_ignores_forged_values(triggered, preset, coefs):
    out = C.preset_or_coefficients(triggered, preset, coefs)
    assert all(o is no_update for o in out)


# ---------------------------------------------------------------------------
# URL state.
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


def _settings(v):
    return C.settings_from_controls(v["coefficients"], v["x_range"], v["noise"], v["n_samples"], v["seed"],
                                    v["degree"], v["penalty"], v["log_alpha"], v["test_fraction"])


def test_url_round_trip_reproduces_the_controls():
    settings = C.settings_from_controls([0.5, 1.25, -0.5, 0, 0.1, 0], [-2.0, 2.5], 1.2, 300, 42, 9, "lasso", -1.3,
                                        0.25)
    query = dict(parse_qsl(L.search_string(settings)[1:]))
    v = L.values_from_query(query)
    assert _settings(v) == settings
    page = L.layout(_ctx(query))
    assert _find(page, L.PRESET).value == L.CUSTOM
    assert _find(page, L.DEGREE).value == 9
    assert _find(page, L.LOG_ALPHA).disabled is False
    assert _find(page, L.COEFFICIENTS[1]).value == 1.25


@pytest.mark.parametrize("query", [
    {}, {"coef": "1,2,3,4,5,6,7"}, {"coef": "a,b"}, {"coef": "99"}, {"coef": "nan"}, {"coef": "1," * 200},
    {"degree": "99"}, {"alpha": "0"}, {"alpha": "1e99"}, {"xmin": "2", "xmax": "2.1"}, {"penalty": "<b>"},
    {"n": "-5"}, {"noise": "inf"},
])
def test_bad_query_values_fall_back_to_defaults(query):
    v = L.values_from_query(query)
    settings = _settings(v)
    d = RegressionSettings()
    assert settings.coefficients == d.coefficients or "coef" not in query
    assert settings.degree == d.degree and settings.alpha == d.alpha and settings.x_min == d.x_min
    page = L.layout(_ctx(query))
    assert _find(page, L.PRESET).value == "cubic"
    assert _find(page, L.LOG_ALPHA).disabled is True  # no penalty by default


def test_ids_share_the_page_prefix():
    ids = [v for k, v in vars(L).items() if k.isupper() and isinstance(v, str) and v.startswith("reglab")]
    ids += list(L.COEFFICIENTS)
    assert len(ids) > 15 and all(i.startswith("reglab-") for i in ids)
    assert L.PAGE.path == "/labs/regression" and L.PAGE.section == "Labs"


# ---------------------------------------------------------------------------
# Roles.
# ---------------------------------------------------------------------------

OUTPUT = ("..reglab-fit-graph.figure...reglab-validation-graph.figure...reglab-coef-graph.figure..."
          "reglab-stats.children...reglab-diagnosis.children...reglab-message.children...reglab-url.search..")
PRESET_OUTPUT = "..reglab-preset.value..." + "...".join(f"{c}.value" for c in L.COEFFICIENTS) + ".."


def _inputs():
    ids = [*L.COEFFICIENTS, L.X_RANGE, L.NOISE, L.N_SAMPLES, L.SEED, L.DEGREE, L.PENALTY, L.LOG_ALPHA,
           L.TEST_FRACTION]
    return [{"id": i, "property": "value", "value": GOOD[k]} for i, k in zip(ids, ORDER)]


@pytest.mark.parametrize("role,status", [("viewer", 403), ("analyst", 200), ("admin", 200)])
def test_role_table(app, make_user, role, status):
    from tests.conftest import post_callback, sign_in

    make_user(role, role=role)
    client = app.test_client()
    sign_in(client, app.extensions["glassbox.db"], role)
    response = post_callback(client, OUTPUT, inputs=_inputs())
    assert response.status_code == status, response.data[:300]
    if status == 200:
        body = response.get_json()["response"]
        assert body["reglab-url"]["search"].startswith("?coef=0,-2,0,0.3")
    preset_inputs = [{"id": L.PRESET, "property": "value", "value": "sine"}] + [
        {"id": c, "property": "value", "value": 0} for c in L.COEFFICIENTS]
    response = post_callback(client, PRESET_OUTPUT, inputs=preset_inputs, changed=[f"{L.PRESET}.value"])
    assert response.status_code == status, response.data[:300]
    if status == 200:
        body = response.get_json()["response"]
        assert body[L.COEFFICIENTS[5]]["value"] == PRESETS["sine"][1][5]
