"""Admin > Monitoring: tokens shown once and revocable, rules validated, notifications retried; all audited."""

from __future__ import annotations

import pytest
from dash import no_update
from sqlalchemy import select

from app.security.users import find_user, snapshot
from callbacks import admin_monitoring as C
from data import monitoring as M
from data.models import AuditEvent
from layouts import admin_monitoring as L
from tests.api.helpers import register_binary
from tests.conftest import post_callback, sign_in


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One app for the module: 'churn', an admin and a viewer. Tests compare counts, not absolute states."""
    from app.security.users import create_user
    from tests.conftest import _test_hash, build_test_app

    tmp = tmp_path_factory.mktemp("admin-mon")
    app = build_test_app(tmp)
    db = app.extensions["glassbox.db"]
    register_binary(db, tmp / "artifacts")
    with db.session() as s:
        for name, role in (("root", "admin"), ("vic", "viewer")):
            create_user(s, name, "placeholder-Pass-987", role=role).password_hash = _test_hash()
    yield app, db
    db.dispose()


@pytest.fixture
def world(shared):
    app, db = shared
    with app.test_request_context():
        with db.session() as s:
            user = snapshot(find_user(s, "root"))
        yield app, db, user


def _count(db, table) -> int:
    from sqlalchemy import func

    with db.session() as s:
        return s.scalar(select(func.count()).select_from(table))


def _audit(db, action):
    with db.session() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_token_is_shown_once_and_works_until_revoked(world):
    app, db, root = world
    message, local = C.create_token(1, "churn", "scoring service", 0, user=root)
    assert local == 1
    token = message.children[1].children
    assert token.startswith("gbx_")
    table = str(C.tokens_table(1))
    assert "scoring service" in table and token not in table and token[:12] in table
    client = app.test_client()
    assert client.get("/api/v1/models/churn", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with db.session() as s:
        token_id = s.scalar(select(M.ApiToken.id).order_by(M.ApiToken.id.desc()))
    message, local = C.revoke_token([1], 1, user=root, trigger={"type": L.TOKEN_REVOKE, "index": token_id})
    assert local == 2 and "revoked" in str(message)
    assert client.get("/api/v1/models/churn", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert {e.username for e in _audit(db, "token.create")} == {"root"}
    assert {e.username for e in _audit(db, "token.revoke")} == {"root"}
    message, local = C.revoke_token([1], 2, user=root, trigger={"type": L.TOKEN_REVOKE, "index": token_id})
    assert local is no_update and "already" in str(message)


@pytest.mark.parametrize("model, name", [(None, "x"), ("churn", ""), ("unknown", "x"), ("churn", "n" * 65),
                                         ({"a": 1}, "x"), ("churn", ["x"])])
def test_forged_token_requests_give_a_message(world, model, name):
    _, db, root = world
    before = _count(db, M.ApiToken)
    message, local = C.create_token(1, model, name, 0, user=root)
    assert local is no_update and message is not None
    assert _count(db, M.ApiToken) == before


def test_rules_are_validated_created_toggled_deleted(world):
    _, db, root = world
    options, default = C.metric_options("churn")
    values = [o["value"] for o in options]
    assert "roc_auc" in values and "psi:age" in values and "rmse" not in values and default == values[0]
    message, local = C.create_rule(1, "churn", "Age drift", "psi:age", ">", 0.25, 1, "day", 100, 0, user=root)
    assert local == 1, message
    assert "PSI of age > 0.25" in str(C.rules_table(1))
    with db.session() as s:
        rule_id = s.scalar(select(M.AlertRule.id).order_by(M.AlertRule.id.desc()))
    message, local = C.rule_action([1], [None], 1, user=root, trigger={"type": L.RULE_TOGGLE, "index": rule_id})
    assert local == 2 and "off" in str(message)
    with db.session() as s:
        assert s.get(M.AlertRule, rule_id).enabled is False
    message, local = C.rule_action([None], [1], 2, user=root, trigger={"type": L.RULE_DELETE, "index": rule_id})
    assert local == 3
    with db.session() as s:
        assert s.get(M.AlertRule, rule_id) is None
    assert {e.action for e in _audit(db, "alert.rule.create") + _audit(db, "alert.rule.disable")
            + _audit(db, "alert.rule.delete")} == {"alert.rule.create", "alert.rule.disable", "alert.rule.delete"}


@pytest.mark.parametrize("args", [
    ("churn", "r", "rmse", "<", 1.0, 1, "day", 0), ("churn", "r", "psi:nope", ">", 0.2, 1, "day", 0),
    ("churn", "r", "accuracy", "=", 0.5, 1, "day", 0), ("churn", "r", "accuracy", "<", "1e999", 1, "day", 0),
    ("churn", "r", "accuracy", "<", 0.5, 0, "day", 0), ("churn", "r", "accuracy", "<", 0.5, 1, "month", 0),
    ("churn", "r", "accuracy", "<", 0.5, 1.5, "day", 0), ("churn", "r", "accuracy", "<", 0.5, 1, "day", -5),
    ("churn", "", "accuracy", "<", 0.5, 1, "day", 0), (None, "r", "accuracy", "<", 0.5, 1, "day", 0),
    ("churn", "r", {"$ne": 1}, "<", 0.5, 1, "day", 0),
])
def test_forged_rules_give_a_message(world, args):
    _, db, root = world
    before = _count(db, M.AlertRule)
    message, local = C.create_rule(1, *args, 0, user=root)
    assert local is no_update and message is not None
    assert _count(db, M.AlertRule) == before


def test_notifications_view_and_retry(world):
    _, db, root = world
    channels, table = C.notifications_view(0)
    assert "No notification channel is configured" in str(channels)
    message, local = C.evaluate_now(1, 0, user=root)
    assert local == 1 and "new alert" in str(message)
    assert _audit(db, "alerts.evaluate")[-1].username == "root"
    message, local = C.retry_notification([1], 0, user=root, trigger={"type": L.RETRY, "index": 12345})
    assert local is no_update


def test_viewer_is_refused_at_the_gate(world):
    app, db, _ = world
    before = _count(db, M.ApiToken)
    client = app.test_client()
    sign_in(client, db, "vic")
    response = post_callback(client, f"..{L.TOKEN_MESSAGE}.children...{L.LOCAL}.data..",
                             inputs=[{"id": L.TOKEN_CREATE, "property": "n_clicks", "value": 1}],
                             state=[{"id": L.TOKEN_MODEL, "property": "value", "value": "churn"},
                                    {"id": L.TOKEN_NAME, "property": "value", "value": "mallory"},
                                    {"id": L.LOCAL, "property": "data", "value": 0}])
    assert response.status_code == 403
    assert _count(db, M.ApiToken) == before
