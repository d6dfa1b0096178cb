"""Model administration: table, retry, archive/delete with confirmation, upload registration; forged input."""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import plotly
import pytest
import skops.io as sio
from dash import no_update
from sklearn.linear_model import LogisticRegression
from sqlalchemy import func, select, update

from callbacks import admin_models as C
from data.analysis_cache import AnalysisResult
from data.models import AuditEvent
from data.registry import ModelRecord, ModelVersion, get_model, register_model
from layouts import admin_models as L
from tests.conftest import post_callback

TABLE_OUTPUT = f"..{L.TABLE}.children...{L.MANAGE_MODEL}.options...{L.REFRESH}.disabled.."
TABLE_OUTPUTS = [{"id": L.TABLE, "property": "children"}, {"id": L.MANAGE_MODEL, "property": "options"},
                 {"id": L.REFRESH, "property": "disabled"}]
TABLE_INPUTS = [{"id": L.REFRESH, "property": "n_intervals", "value": 0},
                {"id": L.CHANGED, "property": "data", "value": 0},
                {"id": L.REGISTERED, "property": "data", "value": 0},
                {"id": L.RETRIED, "property": "data", "value": 0}]


def _frames(n=200, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"tenure": rng.integers(1, 60, n).astype(float), "spend": rng.gamma(2.0, 30.0, n)})
    frame["churned"] = np.where(frame["tenure"] + rng.normal(scale=10, size=n) < 25, "yes", "no")
    return frame.iloc[:150].reset_index(drop=True), frame.iloc[150:].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted():
    train, test = _frames()
    model = LogisticRegression().fit(train[["tenure", "spend"]], train["churned"])
    return model, train, test


def _encode(data: bytes) -> str:
    return "data:application/octet-stream;base64," + base64.b64encode(data).decode()


@pytest.fixture
def uploads(tmp_path, fitted):
    model, train, test = fitted
    sio.dump(model, tmp_path / "churn.skops")
    return {
        "model": (_encode((tmp_path / "churn.skops").read_bytes()), "churn.skops"),
        "train": (_encode(train.to_csv(index=False).encode()), "train.csv"),
        "test": (_encode(test.to_parquet(index=False)), "test.parquet"),
        "pickle": _encode(pickle.dumps(model)),
    }


def upload(app, uploads, *, name="churn", target="churned", positive="yes", groups="", description="", tags="",
           model=None, train=None, test=None, limit=None, clicks=1):
    model = model or uploads["model"]
    train = train or uploads["train"]
    test = test or uploads["test"]
    with app.app_context():
        return C.register_upload(clicks, model[0], model[1], train[0], train[1], test[0], test[1], name, target,
                                 positive, groups, description, tags, actor="root", limit=limit)


def text_of(component) -> str:
    """Return the visible text of a component tree (children strings, concatenated)."""
    if component is None or component is no_update:
        return ""
    if isinstance(component, str):
        return component
    if isinstance(component, (int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return "".join(text_of(c) for c in component)
    return text_of(getattr(component, "children", None))


def json_of(component) -> str:
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder)


def counts(db):
    with db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (ModelRecord, ModelVersion,
                                                                            AnalysisResult))


def audits(db):
    with db.session() as s:
        return [(e.action, e.target, e.outcome) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_upload_registers_and_is_audited(app, db, uploads):
    message, token = upload(app, uploads, groups="", description="uploaded", tags="a, b")
    assert "Registered churn v1" in text_of(message) and isinstance(token, int)
    with db.session() as s:
        record = get_model(s, "churn")
        assert record.latest.created_by == "root" and record.latest.tags == ["a", "b"]
        assert record.latest.positive_class == "yes"
    assert ("model.register", "churn v1", "success") in audits(db)
    assert len(list(Path(app.config["GLASSBOX_ARTIFACT_DIR"]).rglob("model.skops"))) == 1
    message, _ = upload(app, uploads)
    assert "Registered churn v2" in text_of(message)


@pytest.mark.parametrize("change, expected", [
    ({"target": "nope"}, "Registration refused: the target column 'nope' is missing from the train data"),
    ({"positive": "maybe"}, "positive class 'maybe' is not one of the model's classes: no, yes"),
    ({"groups": "region"}, "group column 'region' is missing from the train data"),
    ({"name": "bad name"}, "model name 'bad name' is not valid"),
    ({"name": ""}, "Model name is required."),
    ({"name": {"forged": True}}, "Model name must be text."),
    ({"target": 12}, "Target column must be text."),
    ({"groups": ["x"]}, "Group columns must be text."),
    ({"model": (None, None)}, "Choose the model file."),
    ({"model": ("not an upload", "churn.skops")}, "did not arrive as an upload"),
    ({"model": ("data:x;base64,@@@@", "churn.skops")}, "could not be decoded"),
    ({"model": ({"x": 1}, "churn.skops")}, "did not arrive as an upload"),
    ({"model": ("pickle", "churn.pkl")}, "The model file must end with .skops; got 'churn.pkl'."),
    ({"model": ("pickle", "churn.skops")}, "named as skops but its content is a pickle"),
    ({"train": ("model", "train.csv")}, "train.csv is named as csv but its content is a zip archive (skops)"),
    ({"test": ("train", "test.exe")}, "The test file must end with .csv or .parquet or .pq"),
    ({"limit": 64}, "larger than the upload limit"),
])
def test_bad_uploads_get_the_exact_message_and_write_nothing(app, db, uploads, change, expected):
    options = dict(change)
    for key in ("model", "train", "test"):
        if key in options and isinstance(options[key][0], str) and options[key][0] in uploads:
            source = uploads[options[key][0]]
            options[key] = (source if isinstance(source, str) else source[0], options[key][1])
    message, token = upload(app, uploads, **options)
    assert token is no_update
    assert expected in text_of(message)
    assert counts(db) == (0, 0, 0)
    assert not list(Path(app.config["GLASSBOX_ARTIFACT_DIR"]).rglob("*.skops"))


def test_no_click_does_nothing(app, uploads):
    assert upload(app, uploads, clicks=None) == (no_update, no_update)


def test_table_lists_versions_and_offers_retry_for_failures(app, db, uploads):
    with app.app_context():
        table, options, disabled = C.models_table(0)
    assert "No model is registered yet" in text_of(table) and options == [] and disabled is True
    upload(app, uploads)
    with db.session() as s:
        version_id = get_model(s, "churn").latest.id
        s.execute(update(AnalysisResult).where(AnalysisResult.kind == "shap").values(status="failed",
                                                                                    error="ValueError: boom"))
    with app.app_context():
        table, options, disabled = C.models_table(0)
    rendered = text_of(table)
    assert "churn" in rendered and "v1 (latest)" in rendered and "shap: ValueError: boom" in rendered
    assert json.dumps({"type": L.RETRY, "version": version_id}) in json_of(table)
    assert options == [{"label": "churn", "value": "churn"}] and disabled is False
    with app.app_context():
        message, token = C.retry_failed({"type": L.RETRY, "version": version_id}, [1])
    assert "Queued 1 failed analyses of churn v1 again" in text_of(message) and token == version_id
    assert ("analysis.retry", "churn v1", "success") in audits(db)


@pytest.mark.parametrize("trigger, clicks, expected", [
    (None, [1], None),
    ({"type": "other", "version": 1}, [1], None),
    ({"type": L.RETRY, "version": 1}, [None], None),
    ({"type": L.RETRY, "version": "1; drop"}, [1], "Unknown model version."),
    ({"type": L.RETRY, "version": True}, [1], "Unknown model version."),
    ({"type": L.RETRY, "version": 99999}, [1], "no longer exists"),
])
def test_forged_retry(app, trigger, clicks, expected):
    with app.app_context():
        message, token = C.retry_failed(trigger, clicks)
    assert token is no_update
    if expected is None:
        assert message is no_update
    else:
        assert expected in text_of(message)


def test_archive_and_delete_need_confirmation_and_are_audited(app, db, uploads):
    upload(app, uploads)
    upload(app, uploads)
    with app.app_context():
        shown, message, pending, note = C.ask(L.ARCHIVE, "churn", L.ALL_VERSIONS)
        assert shown is True and "Archive churn?" in message and note is None
        assert counts(db)[0] == 1 and not get_model_archived(db)
        result, token = C.apply(1, pending)
        assert "Archived churn." in text_of(result) and token
        assert get_model_archived(db)
        shown, message, pending, _ = C.ask(L.DELETE, "churn", 1)
        assert "Delete churn v1 with its data" in message
        result, _ = C.apply(1, pending)
        assert "Deleted churn v1." in text_of(result)
        shown, message, pending, _ = C.ask(L.DELETE, "churn", L.ALL_VERSIONS)
        result, _ = C.apply(1, pending)
        assert "Deleted churn v2." in text_of(result)
    assert counts(db) == (0, 0, 0)
    actions = audits(db)
    assert ("model.archive", "churn", "success") in actions
    assert ("model.delete", "churn v1", "success") in actions and ("model.delete", "churn", "success") in actions


def get_model_archived(db) -> bool:
    with db.session() as s:
        return get_model(s, "churn").archived


@pytest.mark.parametrize("trigger, model, version, expected", [
    ("something-else", "churn", "all", None),
    (L.DELETE, None, "all", "Model is required."),
    (L.DELETE, {"x": 1}, "all", "Model must be text."),
    (L.DELETE, "ghost", "all", "There is no model called 'ghost'."),
    (L.DELETE, "churn", 7, "'churn' has no version 7."),
    (L.DELETE, "churn", "1e9", "Choose a version, or every version."),
    (L.ARCHIVE, "churn", 1, "Archiving applies to a whole model"),
])
def test_forged_ask(app, db, uploads, trigger, model, version, expected):
    upload(app, uploads)
    with app.app_context():
        shown, _message, pending, note = C.ask(trigger, model, version)
    assert shown is False and pending is None
    if expected is None:
        assert note is None
    else:
        assert expected in text_of(note)


@pytest.mark.parametrize("pending, expected", [
    ("delete churn", None),
    ({"action": "drop-table", "model": "churn"}, "Unknown action."),
    ({"action": "delete", "model": "ghost", "version": None}, "There is no model called"),
    ({"action": "delete", "model": "churn", "version": "all; drop"}, "Choose a version"),
    ({"action": "archive", "model": "churn", "version": 1}, "Archiving applies to a whole model."),
])
def test_forged_pending_actions(app, db, uploads, pending, expected):
    upload(app, uploads)
    with app.app_context():
        message, token = C.apply(1, pending)
    assert token is no_update
    if expected is None:
        assert message is no_update
    else:
        assert expected in text_of(message)
    assert counts(db)[:2] == (1, 1)


def test_version_options(app, db, uploads):
    upload(app, uploads)
    upload(app, uploads)
    with app.app_context():
        options, value = C.version_options("churn")
        assert [o["value"] for o in options] == [L.ALL_VERSIONS, 2, 1] and value == L.ALL_VERSIONS
        assert C.version_options({"forged": 1}) == ([], L.ALL_VERSIONS)
        assert C.version_options("ghost")[0] == [{"label": "Every version", "value": L.ALL_VERSIONS}]


@pytest.mark.parametrize("role, status", [("admin", 200), ("analyst", 403), ("viewer", 403)])
def test_only_model_managers_reach_the_callbacks(app, client, make_user, login_as, role, status):
    make_user("someone", role=role)
    login_as(client, "someone")
    response = post_callback(client, TABLE_OUTPUT, TABLE_INPUTS, outputs=TABLE_OUTPUTS)
    assert response.status_code == status


def test_an_admin_of_one_model_cannot_manage_models(app, client, make_user, login_as):
    make_user("scoped", role="admin", model="churn")
    login_as(client, "scoped")
    assert post_callback(client, TABLE_OUTPUT, TABLE_INPUTS, outputs=TABLE_OUTPUTS).status_code == 403


def test_registered_model_from_python_appears_in_the_table(app, db, fitted):
    model, train, test = fitted
    register_model(model, train, test, name="py-model", target="churned", created_by="nb", db=db,
                   artifact_dir=app.config["GLASSBOX_ARTIFACT_DIR"])
    with app.app_context():
        table, options, _ = C.models_table(0)
    assert "py-model" in text_of(table) and "by nb" in text_of(table) and options[0]["value"] == "py-model"


def test_upload_through_the_gate_registers_for_an_admin_only(app, client, db, make_user, login_as, uploads):
    output = f"..{L.REGISTER_MESSAGE}.children...{L.REGISTERED}.data.."
    outputs = [{"id": L.REGISTER_MESSAGE, "property": "children"}, {"id": L.REGISTERED, "property": "data"}]
    state = [{"id": L.UPLOAD_MODEL, "property": "contents", "value": uploads["model"][0]},
             {"id": L.UPLOAD_MODEL, "property": "filename", "value": "churn.skops"},
             {"id": L.UPLOAD_TRAIN, "property": "contents", "value": uploads["train"][0]},
             {"id": L.UPLOAD_TRAIN, "property": "filename", "value": "train.csv"},
             {"id": L.UPLOAD_TEST, "property": "contents", "value": uploads["test"][0]},
             {"id": L.UPLOAD_TEST, "property": "filename", "value": "test.parquet"},
             {"id": L.NAME, "property": "value", "value": "churn"},
             {"id": L.TARGET, "property": "value", "value": "churned"},
             {"id": L.POSITIVE, "property": "value", "value": None},
             {"id": L.GROUPS, "property": "value", "value": None},
             {"id": L.DESCRIPTION, "property": "value", "value": "via the page"},
             {"id": L.TAGS, "property": "value", "value": None}]
    inputs = [{"id": L.REGISTER, "property": "n_clicks", "value": 1}]
    make_user("ana", role="analyst")
    login_as(client, "ana")
    assert post_callback(client, output, inputs, state, outputs=outputs).status_code == 403
    assert counts(db) == (0, 0, 0)
    make_user("root", role="admin")
    login_as(client, "root")
    response = post_callback(client, output, inputs, state, outputs=outputs)
    assert response.status_code == 200
    assert "Registered churn v1" in response.get_data(as_text=True)
    with db.session() as s:
        assert get_model(s, "churn").latest.created_by == "root"


def test_layout_builds_with_the_configured_limit(app):
    from layouts.page import PageContext

    with app.app_context():
        body = L.layout(PageContext(username="root", role="admin"))
    text = json_of(body)
    assert L.UPLOAD_MODEL in text and L.CONFIRM in text
    assert f"{app.config['GLASSBOX_MAX_UPLOAD_BYTES'] // 4 / 1024 / 1024:.0f} MB" in text_of(body)
