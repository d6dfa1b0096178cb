"""Login, logout, sessions, redirects, CSRF, rate limits, cookies and headers."""

from __future__ import annotations

import re

import pytest

from app.config import ConfigError, load_config
from app.security.users import find_user, grant_role, set_active, set_password
from data.models import AuditEvent
from tests.conftest import TEST_PASSWORD, csrf_headers


def _login_form(client, next_path=None):
    page = client.get("/login" + (f"?next={next_path}" if next_path else ""))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    return token


def login(client, username, password=TEST_PASSWORD, next_path="/"):
    token = _login_form(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": next_path})


def _events(db, action):
    with db.session() as s:
        return [(e.username, e.outcome, e.detail) for e in s.query(AuditEvent).filter_by(action=action)]


def test_login_page_is_server_rendered_with_the_right_fields(client):
    page = client.get("/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for name in ("username", "password", "csrf_token"):
        assert f'name="{name}"' in html
    assert "/bootstrap/static/css/bootstrap.min.css" in html
    assert client.get("/bootstrap/static/css/bootstrap.min.css").status_code == 200


def test_login_success_and_failure_are_audited(client, db, make_user):
    make_user("alice", "analyst")
    bad = login(client, "alice", "wrong-password-1")
    assert bad.status_code == 401 and b"Unknown username or wrong password" in bad.data
    unknown = login(client, "nobody", "wrong-password-1")
    assert unknown.status_code == 401 and unknown.data.count(b"Unknown username") == 1
    good = login(client, "alice")
    assert good.status_code == 302 and good.headers["Location"] == "/"
    assert client.get("/_dash-layout").status_code == 200
    outcomes = [o for _, o, _ in _events(db, "login")]
    assert outcomes.count("failure") == 2 and outcomes.count("success") == 1


def test_login_without_csrf_is_refused(client, make_user):
    make_user("alice")
    response = client.post("/login", data={"username": "alice", "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert client.get("/_dash-layout").status_code == 401


@pytest.mark.parametrize("target", ["//evil.example", "/\\evil.example", "javascript:alert(1)",
                                    "https://evil.example/", "\\\\evil.example", "/\r\nLocation: x", "http:/x"])
def test_open_redirects_land_on_root(client, make_user, target):
    make_user("alice")
    response = login(client, "alice", next_path=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_local_next_is_kept(client, make_user):
    make_user("alice")
    response = login(client, "alice", next_path="/admin/audit?user=bob")
    assert response.headers["Location"] == "/admin/audit?user=bob"


def test_rate_limit_per_username_gives_429(app, client, db, make_user):
    make_user("alice")
    limit = app.config["GLASSBOX_LOGIN_LIMIT_USER"]
    for _ in range(limit):
        assert login(client, "alice", "wrong-password-1").status_code == 401
    blocked = login(client, "alice")  # even the right password waits
    assert blocked.status_code == 429
    assert ("alice", "denied", "rate limited") in _events(db, "login")


def test_rate_limit_per_ip_gives_429(app, client, make_user):
    app.config["GLASSBOX_LOGIN_LIMIT_IP"] = 3
    for i in range(3):
        login(client, f"user{i}", "wrong-password-1")
    make_user("alice")
    assert login(client, "alice").status_code == 429


def test_session_cookie_flags(app, client, make_user):
    make_user("alice")
    response = login(client, "alice")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("glassbox_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development over http
    expires = re.search(r"Expires=([^;]+)", cookie)
    assert expires, "the session must expire"
    assert app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() <= 8 * 3600
    assert not any(c.startswith("remember_token=") for c in response.headers.getlist("Set-Cookie"))


def test_secure_cookies_when_https(tmp_path, make_user, monkeypatch):
    from tests.conftest import build_test_app

    monkeypatch.setenv("GLASSBOX_HTTPS", "true")
    app = build_test_app(tmp_path / "https")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def _end_session_case(client, db, make_user, action):
    make_user("alice", "analyst")
    make_user("root", "admin")
    assert login(client, "alice").status_code == 302
    assert client.get("/_dash-layout").status_code == 200
    if action == "logout":
        response = client.post("/logout", data={"csrf_token": _csrf_from_layout(client)})
        assert response.status_code == 302
        return
    with db.session() as s:
        user = find_user(s, "alice")
        if action == "disable":
            set_active(user, False)
        elif action == "password":
            set_password(user, "another-Strong-pass-77")
        elif action == "role":
            grant_role(s, user, "viewer", model="iris")


def _csrf_from_layout(client):
    layout = client.get("/_dash-layout").get_data(as_text=True)
    match = re.search(r'\{"props":\{[^{}]*"name":"csrf_token"[^{}]*\}', layout)
    return re.search(r'"value":"([^"]+)"', match.group(0)).group(1)


@pytest.mark.parametrize("action", ["logout", "disable", "password", "role"])
def test_session_ends_at_once(client, db, make_user, action):
    captured = client.get_cookie("glassbox_session")
    _end_session_case(client, db, make_user, action)
    assert client.get("/_dash-layout").status_code == 401
    del captured


def test_captured_cookie_is_dead_after_logout(app, client, db, make_user):
    make_user("alice")
    login(client, "alice")
    stolen = client.get_cookie("glassbox_session").value
    client.post("/logout", data={"csrf_token": _csrf_from_layout(client)})
    attacker = app.test_client()
    attacker.set_cookie("glassbox_session", stolen)
    assert attacker.get("/_dash-layout").status_code == 401
    assert ("alice", "success", None) in _events(db, "logout")


def test_logout_needs_post_and_csrf(client, make_user):
    make_user("alice")
    login(client, "alice")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/_dash-layout").status_code == 200


def test_callback_without_csrf_header_is_refused(client, make_user, login_as):
    make_user("alice", "admin")
    login_as(client, "alice")
    body = {"output": "admin-users-create-message.children", "inputs": [], "state": [], "changedPropIds": []}
    assert client.post("/_dash-update-component", json=body).status_code == 400
    forged = client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": "forged"})
    assert forged.status_code == 400
    ok = client.post("/_dash-update-component", json=body, headers=csrf_headers(client))
    assert ok.status_code != 400 or b"CSRF" not in ok.data


def test_security_headers_and_csp(client, make_user, login_as):
    make_user("alice")
    login_as(client, "alice")
    response = client.get("/", headers={"Accept": "text/html"})
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in csp and "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert re.search(r"script-src 'self' 'sha256-", csp)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "_dash-config" in response.get_data(as_text=True)
    assert b"dev_tools" not in response.data or b'"dev_tools_hot_reload": false' in response.data


def test_mcp_is_off(client, make_user, login_as):
    make_user("alice", "admin")
    login_as(client, "alice")
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = client.post("/_mcp", json=rpc, headers=csrf_headers(client))
    assert response.status_code in (400, 404, 405)
    assert b"tools" not in response.data


def test_health_checks_answer_without_login(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json()["database"] == "ok"


def test_production_refuses_to_start_without_a_strong_key(tmp_path):
    env = {"GLASSBOX_ENV": "production", "GLASSBOX_INSTANCE_PATH": str(tmp_path)}
    with pytest.raises(ConfigError):
        load_config(env=env)
    with pytest.raises(ConfigError):
        load_config(env={**env, "GLASSBOX_SECRET_KEY": "dev"})
    with pytest.raises(ConfigError):
        load_config(env={**env, "GLASSBOX_SECRET_KEY": "a" * 64})
    config = load_config(env={**env, "GLASSBOX_SECRET_KEY": "x9!Kq2#pL0vR8sT4wY6zA1bC3dE5fG7hJ"})
    assert config["SESSION_COOKIE_SECURE"] is True


def test_development_key_is_generated_once_and_private(tmp_path):
    env = {"GLASSBOX_INSTANCE_PATH": str(tmp_path)}
    first = load_config(env=env)["SECRET_KEY"]
    second = load_config(env=env)["SECRET_KEY"]
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_denied_page_is_audited_and_names_the_permission(client, db, make_user, login_as):
    from tests.conftest import post_callback

    make_user("vic", "viewer")
    login_as(client, "vic")
    response = post_callback(client, "..shell-content.children...shell-nav.children..",
                             inputs=[{"id": "url", "property": "pathname", "value": "/admin/users"}],
                             state=[{"id": "url", "property": "search", "value": ""}])
    body = response.get_data(as_text=True)
    assert "manage users" in body and "shell-forbidden" in body
    assert ("vic", "denied", "missing permission manage_users") in _events(db, "page")


def test_unknown_page_is_a_friendly_404(client, make_user, login_as):
    from tests.conftest import post_callback

    make_user("vic", "viewer")
    login_as(client, "vic")
    response = post_callback(client, "..shell-content.children...shell-nav.children..",
                             inputs=[{"id": "url", "property": "pathname", "value": "/nowhere"}],
                             state=[{"id": "url", "property": "search", "value": ""}])
    assert "shell-not-found" in response.get_data(as_text=True)
