"""The prediction-log API: auth, per-record validation, all-or-nothing writes, duplicates, limits."""

from __future__ import annotations

import copy
import io
import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from data.db import utcnow
from data.models import AuditEvent
from data.monitoring import MonitoringHour, PredictionLog, create_token, revoke_token
from tests.api.helpers import binary_record, iso
from tests.conftest import build_test_app

URL = "/api/v1/models/churn/predictions"
LABELS = "/api/v1/models/churn/labels"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One app with 'churn' and three stored, unlabelled records (r0..r2), for cases that must write nothing."""
    from tests.api.helpers import register_binary

    tmp = tmp_path_factory.mktemp("api-world")
    app = build_test_app(tmp)
    db = app.extensions["glassbox.db"]
    register_binary(db, tmp / "artifacts")
    with db.session() as s:
        _, token = create_token(s, "churn", name="tests", created_by="tests")
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    assert client.post(URL, json={"records": _batch(3)}, headers=headers).status_code == 200
    yield client, db, headers
    db.dispose()


def _unchanged(db) -> bool:
    with db.session() as s:
        labelled = s.scalar(select(func.count()).select_from(PredictionLog).where(PredictionLog.label.is_not(None)))
        return _rows(db) == 3 and labelled == 0 and s.scalar(select(func.sum(MonitoringHour.n))) == 3


def _rows(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(PredictionLog))


def _batch(n: int = 3, start: int = 0) -> list[dict]:
    now = utcnow()
    return [binary_record(start + i, now - dt.timedelta(hours=i)) for i in range(n)]


# -- authentication ------------------------------------------------------------------

def test_openapi_is_public_and_describes_the_routes(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")
    assert {"/models/{name}/predictions", "/models/{name}/labels"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_no_token_is_401_and_audited(client, db, churn):
    response = client.post(URL, json={"records": _batch()})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "api.auth",
                                                                            AuditEvent.outcome == "denied")) == 1
    assert _rows(db) == 0


@pytest.mark.parametrize("header", ["Bearer gbx_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "gbx_abc"])
def test_wrong_token_is_401(world, header):
    client, db, _ = world
    response = client.post(URL, json={"records": _batch(start=100)}, headers={"Authorization": header})
    assert response.status_code == 401
    assert _unchanged(db)


def test_revoked_token_is_401(client, db, churn, token, auth):
    assert client.post(URL, json={"records": _batch(1)}, headers=auth).status_code == 200
    with db.session() as s:
        from data.monitoring import ApiToken

        row = s.scalar(select(ApiToken))
        revoke_token(s, row.id, revoked_by="tests")
    response = client.post(URL, json={"records": _batch(1, start=50)}, headers=auth)
    assert response.status_code == 401
    assert _rows(db) == 1


def test_token_for_another_model_is_403(client, db, churn, price):
    with db.session() as s:
        _, other = create_token(s, "price", name="pricing service", created_by="tests")
    response = client.post(URL, json={"records": _batch()}, headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 403
    # Same answer for a model that does not exist: no probing of names with a valid token.
    response = client.post("/api/v1/models/nope/predictions", json={"records": _batch()},
                           headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 403
    assert _rows(db) == 0


def test_only_the_hash_is_stored(db, churn, token):
    from data.monitoring import ApiToken, hash_token

    with db.session() as s:
        row = s.scalar(select(ApiToken))
        assert row.token_hash == hash_token(token) and token not in (row.token_hash, row.prefix)
        assert token.startswith(row.prefix)


def test_session_cookie_does_not_authenticate(client, db, make_user, login_as, churn):
    make_user("admin", "admin")
    login_as(client, "admin")
    assert client.post(URL, json={"records": _batch()}).status_code == 401


# -- happy path, duplicates ------------------------------------------------------------

def test_valid_batch_is_stored_and_duplicates_are_reported(client, db, churn, auth):
    batch = _batch(5)
    response = client.post(URL, json={"records": batch}, headers=auth)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["accepted"] == 5 and response.get_json()["duplicates"] == []
    again = client.post(URL, json={"records": batch[:2] + _batch(1, start=10)}, headers=auth)
    body = again.get_json()
    assert again.status_code == 200
    assert body["accepted"] == 1 and sorted(body["duplicates"]) == ["r0", "r1"]
    assert _rows(db) == 6
    with db.session() as s:
        assert s.scalar(select(func.sum(MonitoringHour.n))) == 6  # roll-ups count each record once


def test_repeated_id_within_a_batch_is_a_duplicate(client, db, churn, auth):
    batch = _batch(2)
    batch.append(copy.deepcopy(batch[0]))
    body = client.post(URL, json={"records": batch}, headers=auth).get_json()
    assert body["accepted"] == 2 and body["duplicates"] == ["r0"]
    assert _rows(db) == 2


def test_integer_ids_and_null_features_are_accepted(client, db, churn, auth):
    rec = binary_record(0, utcnow())
    rec["id"] = 12345
    rec["features"]["income"] = None
    assert client.post(URL, json={"records": [rec]}, headers=auth).status_code == 200
    with db.session() as s:
        row = s.scalar(select(PredictionLog))
        assert row.record_id == "12345" and row.anomalies & 1  # missing value flagged


# -- per-record validation ---------------------------------------------------------------

def _mutate(rec: dict, how: str) -> dict:
    rec = copy.deepcopy(rec)
    future = utcnow() + dt.timedelta(days=3)
    changes = {
        "missing feature": lambda r: r["features"].pop("plan"),
        "unknown feature": lambda r: r["features"].update(colour="red"),
        "text for a number": lambda r: r["features"].update(age="forty"),
        "boolean for a number": lambda r: r["features"].update(age=True),
        "dict for a category": lambda r: r["features"].update(plan={"a": 1}),
        "features not an object": lambda r: r.update(features=[1, 2, 3]),
        "bad timestamp": lambda r: r.update(timestamp="yesterday"),
        "numeric timestamp": lambda r: r.update(timestamp=1700000000),
        "future timestamp": lambda r: r.update(timestamp=iso(future)),
        "ancient timestamp": lambda r: r.update(timestamp="1999-12-31T23:00:00Z"),
        "unknown version": lambda r: r.update(version=7),
        "version as text": lambda r: r.update(version="1"),
        "unknown class": lambda r: r["prediction"].update(label="maybe"),
        "score above 1": lambda r: r["prediction"].update(score=1.5),
        "score as text": lambda r: r["prediction"].update(score="high"),
        "scores with unknown class": lambda r: r["prediction"].update(scores={"perhaps": 0.3}),
        "prediction missing": lambda r: r.pop("prediction"),
        "regression prediction on a classifier": lambda r: r.update(prediction={"value": 3.0}),
        "missing id": lambda r: r.pop("id"),
        "empty id": lambda r: r.update(id=""),
        "boolean id": lambda r: r.update(id=True),
        "id too long": lambda r: r.update(id="x" * 129),
        "unknown field": lambda r: r.update(extra=1),
        "long category": lambda r: r["features"].update(plan="p" * 300),
    }
    changes[how](rec)
    return rec


CASES = ["missing feature", "unknown feature", "text for a number", "boolean for a number", "dict for a category",
         "features not an object", "bad timestamp", "numeric timestamp", "future timestamp", "ancient timestamp",
         "unknown version", "version as text", "unknown class", "score above 1", "score as text",
         "scores with unknown class", "prediction missing", "regression prediction on a classifier", "missing id",
         "empty id", "boolean id", "id too long", "unknown field", "long category"]


@pytest.mark.parametrize("how", CASES)
def test_each_invalid_record_is_422_and_nothing_is_written(world, how):
    client, db, auth = world
    batch = _batch(3, start=100)
    batch[1] = _mutate(batch[1], how)
    response = client.post(URL, json={"records": batch}, headers=auth)
    assert response.status_code == 422, (how, response.get_json())
    body = response.get_json()
    assert [e["index"] for e in body["errors"]] == [1]
    assert body["errors"][0]["errors"], how
    assert _unchanged(db)  # the two valid records were not written either


def test_every_invalid_record_is_listed(world):
    client, db, auth = world
    batch = _batch(4, start=100)
    batch[0] = _mutate(batch[0], "unknown class")
    batch[3] = _mutate(batch[3], "bad timestamp")
    batch[3] = _mutate(batch[3], "missing feature")
    body = client.post(URL, json={"records": batch}, headers=auth).get_json()
    assert [e["index"] for e in body["errors"]] == [0, 3]
    assert len(body["errors"][1]["errors"]) == 2
    assert body["errors"][0]["id"] == "r100"
    assert _unchanged(db)


@pytest.mark.parametrize("records", [[], "nope", {"a": 1}, [1, 2]])
def test_batch_shape_errors_are_422(world, records):
    client, db, auth = world
    response = client.post(URL, json={"records": records}, headers=auth)
    assert response.status_code == 422
    assert _unchanged(db)


# -- body checks and limits ----------------------------------------------------------------

def test_non_json_is_415(world):
    client, db, auth = world
    response = client.post(URL, data="id=1", headers={**auth, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '{"records": [], "extra": 1}', '{"rows": []}',
                                 '{"records": [{"id": "a", "timestamp": NaN}]}'])
def test_malformed_bodies_are_400(world, raw):
    client, db, auth = world
    response = client.post(URL, data=raw, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 400, raw
    assert "error" in response.get_json()
    assert _unchanged(db)


def test_oversize_body_is_413(tmp_path):
    from tests.api.helpers import register_binary

    app = build_test_app(tmp_path, GLASSBOX_API_MAX_BYTES=2000)
    db = app.extensions["glassbox.db"]
    register_binary(db, tmp_path / "artifacts")
    with db.session() as s:
        _, token = create_token(s, "churn", name="t", created_by="tests")
    client = app.test_client()
    response = client.post(URL, json={"records": _batch(40)}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 413
    # Also when the client does not announce the length (a chunked upload, as gunicorn passes it on).
    body = json.dumps({"records": _batch(40)}).encode()
    response = client.post(URL, input_stream=io.BytesIO(body), environ_overrides={"wsgi.input_terminated": True},
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                    "Transfer-Encoding": "chunked"})
    assert response.status_code == 413
    assert _rows(db) == 0
    db.dispose()


def test_too_many_records_is_422(tmp_path):
    from tests.api.helpers import register_binary

    app = build_test_app(tmp_path, GLASSBOX_API_MAX_RECORDS=5)
    db = app.extensions["glassbox.db"]
    register_binary(db, tmp_path / "artifacts")
    with db.session() as s:
        _, token = create_token(s, "churn", name="t", created_by="tests")
    response = app.test_client().post(URL, json={"records": _batch(6)}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422
    assert "at most 5" in response.get_json()["errors"][0]["errors"][0]
    db.dispose()


def test_rate_limit_is_shared_and_answers_429(tmp_path):
    from tests.api.helpers import register_binary

    app = build_test_app(tmp_path, GLASSBOX_API_RATE_PER_MINUTE=3)
    db = app.extensions["glassbox.db"]
    register_binary(db, tmp_path / "artifacts")
    with db.session() as s:
        _, token = create_token(s, "churn", name="t", created_by="tests")
    headers = {"Authorization": f"Bearer {token}"}
    # Two clients (think: two workers) share the counter because it lives in the database.
    first, second = app.test_client(), app.test_client()
    codes = [c.get("/api/v1/models/churn", headers=headers).status_code for c in (first, second, first, second)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    response = second.get("/api/v1/models/churn", headers=headers)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    db.dispose()


def test_failed_authentication_is_rate_limited(tmp_path):
    app = build_test_app(tmp_path, GLASSBOX_API_AUTH_FAILURES_PER_MINUTE=2)
    client = app.test_client()
    codes = [client.get("/api/v1/models/x", headers={"Authorization": "Bearer gbx_wrong"}).status_code
             for _ in range(4)]
    assert codes == [401, 401, 429, 429]
    app.extensions["glassbox.db"].dispose()


# -- labels -----------------------------------------------------------------------------------

def test_labels_attach_and_repeat_as_duplicates(client, db, churn, auth):
    client.post(URL, json={"records": _batch(3)}, headers=auth)
    response = client.post(LABELS, json={"labels": [{"id": "r0", "label": "yes"}, {"id": "r1", "label": "no"}]},
                           headers=auth)
    assert response.status_code == 200 and response.get_json()["accepted"] == 2
    again = client.post(LABELS, json={"labels": [{"id": "r0", "label": "no"}, {"id": "r2", "label": "no"}]},
                        headers=auth).get_json()
    assert again["accepted"] == 1 and again["duplicates"] == ["r0"]
    with db.session() as s:
        rows = {r.record_id: r for r in s.scalars(select(PredictionLog))}
        assert rows["r0"].label == "yes" and rows["r0"].correct == 1  # the first label stays
        assert rows["r1"].correct == 0 and rows["r1"].label_pos == 0
        hour = s.scalar(select(func.sum(MonitoringHour.n_labelled)))
        assert hour == 3
        assert s.scalar(select(func.sum(MonitoringHour.tp))) == 1  # r0: predicted yes, truly yes
        assert s.scalar(select(func.sum(MonitoringHour.fp))) == 2  # r1, r2: predicted yes, truly no


@pytest.mark.parametrize("labels", [
    [{"id": "r0", "label": "yes"}, {"id": "unknown", "label": "yes"}],
    [{"id": "r0", "label": "yes"}, {"id": "r1", "label": "maybe"}],
    [{"id": "r0", "label": "yes"}, {"id": "r1"}],
    [{"id": "r0", "label": "yes"}, {"id": "r1", "label": "no", "extra": True}],
    [{"id": "r0", "label": "yes"}, "r1"],
])
def test_invalid_labels_are_422_and_nothing_is_written(world, labels):
    client, db, auth = world
    response = client.post(LABELS, json={"labels": labels}, headers=auth)
    assert response.status_code == 422
    assert [e["index"] for e in response.get_json()["errors"]] == [1]
    assert _unchanged(db)
    with db.session() as s:
        assert s.scalar(select(func.sum(MonitoringHour.n_labelled))) == 0


def test_regression_records_and_labels(client, db, price):
    with db.session() as s:
        _, token = create_token(s, "price", name="t", created_by="tests")
    headers = {"Authorization": f"Bearer {token}"}
    now = utcnow()
    recs = [{"id": f"p{i}", "timestamp": iso(now), "version": 1, "features": {"x1": 0.1 * i, "x2": 5.0},
             "prediction": {"value": float(i)}} for i in range(4)]
    assert client.post("/api/v1/models/price/predictions", json={"records": recs}, headers=headers).status_code == 200
    bad = [dict(recs[0], id="q", prediction={"label": "yes"})]
    assert client.post("/api/v1/models/price/predictions", json={"records": bad}, headers=headers).status_code == 422
    response = client.post("/api/v1/models/price/labels",
                           json={"labels": [{"id": "p1", "label": 3.0}, {"id": "p2", "label": 0.0}]}, headers=headers)
    assert response.status_code == 200
    with db.session() as s:
        hour = s.scalar(select(MonitoringHour))
        assert hour.n_labelled == 2
        assert hour.sum_sq_err == pytest.approx((1 - 3) ** 2 + (2 - 0) ** 2)
        assert hour.sum_err == pytest.approx((1 - 3) + (2 - 0))
    assert client.post("/api/v1/models/price/labels", json={"labels": [{"id": "p3", "label": "high"}]},
                       headers=headers).status_code == 422


def test_describe_model(client, churn, auth):
    body = client.get("/api/v1/models/churn", headers=auth).get_json()
    assert body["versions"][0]["task"] == "binary"
    assert {f["name"] for f in body["versions"][0]["features"]} == {"age", "income", "plan"}
