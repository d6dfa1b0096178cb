"""Overview cards: grants respected everywhere, links per permission and task, status and refresh."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from app.security.users import find_user, snapshot
from callbacks import overview as C
from data.analysis_cache import run_pending
from data.registry import archive_model, get_version, register_model, save_threshold
from layouts import overview as L
from tests.conftest import post_callback

OUTPUT = f"..{L.CARDS}.children...{L.REFRESH}.disabled.."
OUTPUTS = [{"id": L.CARDS, "property": "children"}, {"id": L.REFRESH, "property": "disabled"}]
INPUTS = [{"id": L.REFRESH, "property": "n_intervals", "value": 0}]


def _frames(n=240, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["label"] = np.where(frame["a"] + rng.normal(scale=0.5, size=n) > 0, "yes", "no")
    frame["value"] = 2 * frame["a"] - frame["b"] + rng.normal(scale=0.1, size=n)
    return frame.iloc[:180].reset_index(drop=True), frame.iloc[180:].reset_index(drop=True)


@pytest.fixture
def models(app, db):
    """Register 'alpha.v2' (binary) and 'beta' (regression); analyses queued, not run."""
    train, test = _frames()
    clf = LogisticRegression().fit(train[["a", "b"]], train["label"])
    reg = LinearRegression().fit(train[["a", "b"]], train["value"])
    root = app.config["GLASSBOX_ARTIFACT_DIR"]
    register_model(clf, train.drop(columns="value"), test.drop(columns="value"), name="alpha.v2", target="label",
                   created_by="admin", db=db, artifact_dir=root, description="Churn in the north")
    register_model(reg, train.drop(columns="label"), test.drop(columns="label"), name="beta", target="value",
                   created_by="admin", db=db, artifact_dir=root)
    return db


def user(app, db, make_user, username, role, model=None):
    make_user(username, role=role, model=model)
    with db.session() as s:
        return snapshot(find_user(s, username))


def render(app, who, available=None):
    with app.app_context():
        cards, disabled = C.overview_cards(who, available=available)
    return json.dumps(cards, cls=plotly.utils.PlotlyJSONEncoder), disabled


def test_empty_state_for_admin_and_viewer(app, db, make_user):
    text, disabled = render(app, user(app, db, make_user, "root", "admin"))
    assert "No model is registered yet" in text and "glassbox register" in text and "/admin/models" in text
    assert disabled is True
    text, _ = render(app, user(app, db, make_user, "vera", "viewer"))
    assert "none is shared with you" in text and "/admin/models" not in text


def test_admin_sees_every_model_with_links_per_task(app, models, make_user):
    text, disabled = render(app, user(app, models, make_user, "root", "admin"))
    assert "alpha.v2" in text and "beta" in text and "Churn in the north" in text
    assert disabled is False  # analyses are queued: keep refreshing
    assert "/threshold?model=alpha.v2" in text and "/confusion-matrix?model=alpha.v2" in text
    assert "/threshold?model=beta" not in text and "/confusion-matrix?model=beta" not in text
    for path in ("/performance", "/features", "/explain", "/what-if", "/monitoring"):
        assert f"{path}?model=beta" in text
    assert "analyses computing" in text and "0 of" in text
    assert "overview-card-alpha_v2" in text  # ids never hold a '.'


def test_a_grant_on_one_model_shows_only_that_model(app, models, make_user):
    text, _ = render(app, user(app, models, make_user, "vera", "viewer", model="alpha.v2"))
    assert "alpha.v2" in text
    assert "beta" not in text
    # A viewer has metrics, confusion matrix and monitoring, not influence, explanations or what-if.
    assert "/performance?model=alpha.v2" in text and "/monitoring?model=alpha.v2" in text
    for path in ("/features", "/explain", "/what-if"):
        assert f"{path}?model=alpha.v2" not in text
    text, _ = render(app, user(app, models, make_user, "ana", "analyst", model="beta"))
    assert "beta" in text and "alpha" not in text and "/what-if?model=beta" in text


def test_links_only_to_pages_that_exist(app, models, make_user):
    text, _ = render(app, user(app, models, make_user, "root", "admin"), available={"/performance"})
    assert "/performance?model=beta" in text and "/monitoring?model=beta" not in text


def test_metrics_status_and_threshold_after_analyses(app, models, make_user):
    from sqlalchemy import update

    from data.analysis_cache import AnalysisResult

    # Compute only the test metrics of both models (they fill the cards); mark the rest ready to keep this quick.
    with models.session() as s:
        s.execute(update(AnalysisResult).where(AnalysisResult.kind != "metrics_test").values(status="ready"))
    assert run_pending(models) == 2
    with models.session() as s:
        version = get_version(s, "alpha.v2")
        save_threshold(s, version.id, value=0.42, reason="fewer missed churners", set_by="ana")
        metrics = get_version(s, "alpha.v2").metrics
    text, disabled = render(app, user(app, models, make_user, "root", "admin"))
    assert disabled is True
    assert "analyses ready" in text and "ROC AUC" in text and f"{metrics['roc_auc']:,.3f}" in text
    assert "Threshold 0.420" in text and "set by ana" in text and "fewer missed churners" in text
    assert "RMSE" in text  # the regressor's card


def test_failed_analyses_point_admins_to_retry(app, models, make_user):
    from sqlalchemy import update

    from data.analysis_cache import AnalysisResult

    with models.session() as s:
        s.execute(update(AnalysisResult).values(status="failed", error="boom"))
    text, disabled = render(app, user(app, models, make_user, "root", "admin"))
    assert "some analyses failed" in text and "Retry failed analyses" in text and disabled is True
    text, _ = render(app, user(app, models, make_user, "vera", "viewer"))
    assert "some analyses failed" in text and "Retry failed analyses" not in text


def test_archived_models_are_hidden(app, models, make_user):
    with models.session() as s:
        archive_model(s, "beta")
    text, _ = render(app, user(app, models, make_user, "root", "admin"))
    assert "alpha.v2" in text and "beta" not in text


@pytest.mark.parametrize("username, role, model, status, sees_alpha, sees_beta", [
    ("root", "admin", None, 200, True, True),
    ("vera", "viewer", None, 200, True, True),
    ("olga", "viewer", "alpha.v2", 200, True, False),
    ("bob", "analyst", "beta", 200, False, True),
])
def test_the_callback_over_http_respects_grants(app, client, models, make_user, login_as, username, role, model,
                                               status, sees_alpha, sees_beta):
    make_user(username, role=role, model=model)
    login_as(client, username)
    response = post_callback(client, OUTPUT, INPUTS, outputs=OUTPUTS)
    assert response.status_code == status
    body = response.get_data(as_text=True)
    assert ("alpha.v2" in body) is sees_alpha
    assert ("beta" in body) is sees_beta


def test_anonymous_cannot_read_the_cards(client, models):
    response = client.post("/_dash-update-component", json={"output": OUTPUT, "outputs": OUTPUTS,
                                                            "inputs": INPUTS, "state": []})
    assert response.status_code in (302, 401, 403)
    assert "alpha" not in response.get_data(as_text=True)


def test_a_model_without_a_grant_is_absent_from_selectors_and_refused_by_model_callbacks(app, models, make_user):
    from app.security.permissions import Permission
    from callbacks.model_select import fill_selector, resolve
    from callbacks.validate import InvalidInput

    olga = user(app, models, make_user, "olga", "viewer", model="alpha.v2")
    with app.app_context():
        options, value, *_ = fill_selector(None, "beta", None, user=olga, permission=Permission.VIEW_METRICS)
        assert [o["value"] for o in options] == ["alpha.v2"] and value == "alpha.v2"
        with pytest.raises(InvalidInput, match="do not have access to a model called 'beta'"):
            resolve("beta", None, user=olga, permission=Permission.VIEW_METRICS)
        # The same answer for a name that does not exist: no probing of model names.
        with pytest.raises(InvalidInput, match="do not have access to a model called 'ghost'"):
            resolve("ghost", None, user=olga, permission=Permission.VIEW_METRICS)
        assert resolve("alpha.v2", None, user=olga, permission=Permission.VIEW_METRICS).name == "alpha.v2"


def test_layout_holds_no_model_data(app):
    from layouts.page import PageContext

    body = L.layout(PageContext(username="x", role="viewer", query={"model": "beta"}))
    text = json.dumps(body, cls=plotly.utils.PlotlyJSONEncoder)
    assert L.CARDS in text and L.REFRESH in text and "beta" not in text
