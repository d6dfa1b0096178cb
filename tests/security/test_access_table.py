"""Role x page and role x callback tables, generated from the registry and the callback map."""

from __future__ import annotations

import pytest

from app.security.permissions import ROLES, Permission
from data.models import AuditEvent
from tests.conftest import build_test_app, csrf_headers, post_callback, sign_in

ROLE_NAMES = list(ROLES)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One app with a user per role (module scope: the tables below are read-only)."""
    from app.security.users import create_user
    from tests.conftest import _test_hash

    app = build_test_app(tmp_path_factory.mktemp("access"))
    db = app.extensions["glassbox.db"]
    with db.session() as s:
        for role in ROLE_NAMES:
            user = create_user(s, role, "placeholder-Pass-987", role=role)
            user.password_hash = _test_hash()
    yield app
    db.dispose()


def _client(app, role):
    client = app.test_client()
    sign_in(client, app.extensions["glassbox.db"], role)
    return client


def _render(client, path):
    router = "..shell-content.children...shell-nav.children.."
    return post_callback(client, router,
                         inputs=[{"id": "url", "property": "pathname", "value": path}],
                         state=[{"id": "url", "property": "search", "value": ""}])


def _cases_pages(app):
    return [(p, r) for p in app.extensions["glassbox.pages"] for r in ROLE_NAMES]


def test_every_page_is_in_the_table(world):
    pages = world.extensions["glassbox.pages"]
    assert {p.stem for p in pages} >= {"admin_users", "audit_log"}
    for page in pages:
        assert isinstance(page.spec.permission, Permission)


def test_role_by_page(world):
    """Each role sees each page exactly when its role holds the page's permission."""
    for page, role in _cases_pages(world):
        client = _client(world, role)
        response = _render(client, page.spec.path)
        assert response.status_code == 200, (page.stem, role, response.data[:200])
        body = response.get_data(as_text=True)
        allowed = page.spec.permission in ROLES[role]
        assert ("shell-forbidden" not in body) == allowed, (page.stem, role)
        # The navigation lists the page exactly when it may be opened.
        assert (f'"{page.nav_id}"' in body) == allowed, (page.stem, role)


def test_role_by_callback(world):
    """Every registered callback output answers 403 to a role without its permission."""
    policy = world.extensions["glassbox.policy"]
    assert len(policy.permissions) >= 5
    for role in ROLE_NAMES:
        client = _client(world, role)
        headers = csrf_headers(client)
        for output, permission in policy.permissions.items():
            response = post_callback(client, output, headers=headers)
            allowed = permission in ROLES[role]
            if allowed:
                assert response.status_code not in (401, 403), (role, output, response.status_code)
                assert response.status_code != 500, (role, output)
            else:
                assert response.status_code == 403, (role, output, response.status_code)


def test_every_dash_callback_has_a_permission(world):
    """A server callback registered without the policy would be missing from its map."""
    dash_app = world.extensions["glassbox.dash"]
    policy = world.extensions["glassbox.policy"]
    server_side = {k for k, v in dash_app.callback_map.items() if v.get("callback") is not None}
    assert server_side == set(policy.permissions)


@pytest.mark.parametrize("path", ["/_dash-layout", "/_dash-dependencies", "/_dash-update-component",
                                  "/_dash-component-suites/dash/dash-renderer/build/dash_renderer.min.js",
                                  "/_reload-hash", "/admin/users", "/"])
def test_anonymous_gets_401_or_login(world, path):
    client = world.test_client()
    response = client.post(path, json={}) if path == "/_dash-update-component" else client.get(path)
    if path in ("/admin/users", "/"):
        page = client.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    else:
        assert response.status_code == 401


def test_unknown_output_is_refused_and_audited(world):
    client = _client(world, "admin")
    response = post_callback(client, "made-up.children")
    assert response.status_code == 403
    with world.extensions["glassbox.db"].session() as s:
        events = s.query(AuditEvent).filter_by(action="callback", outcome="denied").all()
        assert any(e.target == "made-up.children" for e in events)


def test_viewer_cannot_reach_admin_callback_with_forged_pathname(world):
    client = _client(world, "viewer")
    forged_inputs = [{"id": "url", "property": "pathname", "value": "/admin/users"},
                     {"id": "admin-users-create", "property": "n_clicks", "value": 1}]
    response = post_callback(client, "admin-users-create-message.children", inputs=forged_inputs,
                             state=[{"id": "admin-users-new-username", "property": "value", "value": "mallory"},
                                    {"id": "admin-users-new-role", "property": "value", "value": "admin"},
                                    {"id": "admin-users-new-model", "property": "value", "value": ""}])
    assert response.status_code == 403
    with world.extensions["glassbox.db"].session() as s:
        from app.security.users import find_user

        assert find_user(s, "mallory") is None
        denied = s.query(AuditEvent).filter_by(action="callback", outcome="denied", username="viewer").all()
        assert any(e.target == "admin-users-create-message.children" for e in denied)


@pytest.mark.parametrize("body", [
    "not json", [], {"output": 5}, {"output": "x.children", "inputs": "nope"},
    {"output": "x.children", "inputs": [1, 2]}, {"output": "x.children", "inputs": [{"id": "a"}]},
    {"output": "x.children", "changedPropIds": [{}]},
])
def test_malformed_callback_bodies_get_400(world, body):
    client = _client(world, "admin")
    headers = csrf_headers(client)
    if isinstance(body, str):
        response = client.post("/_dash-update-component", data=body, headers={**headers,
                                                                              "Content-Type": "application/json"})
    else:
        response = client.post("/_dash-update-component", json=body, headers=headers)
    assert response.status_code == 400
    assert b"Traceback" not in response.data


def test_known_output_with_mismatched_inputs_gets_400_not_500(world):
    client = _client(world, "admin")
    response = post_callback(client, "admin-users-create-message.children",
                             inputs=[{"id": "nothing", "property": "value", "value": {"$gt": 1}}])
    assert response.status_code == 400
    assert b"Traceback" not in response.data
