"""Fixtures: a fresh app and database per test, users per role, signed-in clients."""

from __future__ import annotations

import functools

import pytest

from app import create_app
from app.security.passwords import hash_password
from app.security.users import create_user, find_user, grant_role
from data.db import Base
from data.tables import import_all_tables

TEST_PASSWORD = "pw-Test-123456"


@functools.cache
def _test_hash() -> str:
    # argon2id costs ~0.3 s; hash the shared test password once per run.
    return hash_password(TEST_PASSWORD)


def build_test_app(tmp_path, **overrides):
    """Return an app on a fresh SQLite database in ``tmp_path``."""
    config = {
        "GLASSBOX_INSTANCE_PATH": str(tmp_path / "instance"),
        "GLASSBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'test.db'}",
        "GLASSBOX_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "GLASSBOX_RUN_JOBS": False,
        "GLASSBOX_ENV": "development",
        "TESTING": True,
    }
    config.update(overrides)
    app = create_app(config)
    import_all_tables()
    Base.metadata.create_all(app.extensions["glassbox.db"].engine)
    return app


@pytest.fixture
def app(tmp_path):
    """A fresh application with an empty database (CSRF on, as in production)."""
    app = build_test_app(tmp_path)
    yield app
    app.extensions["glassbox.db"].dispose()


@pytest.fixture
def db(app):
    """The app's Database."""
    return app.extensions["glassbox.db"]


@pytest.fixture
def client(app):
    """A test client."""
    return app.test_client()


@pytest.fixture
def make_user(app, db):
    """Create a user with a role (on one model or all) and the shared test password."""

    def make(username: str, role: str = "viewer", model: str | None = None, password: str = TEST_PASSWORD,
             extra: tuple[tuple[str, str | None], ...] = ()):
        with db.session() as s:
            user = find_user(s, username)
            if user is None:
                user = create_user(s, username, "placeholder-Pass-987", role=role, model=model)
                user.password_hash = _test_hash() if password == TEST_PASSWORD else hash_password(password)
            for extra_role, extra_model in extra:
                grant_role(s, user, extra_role, model=extra_model)
            return user.id

    return make


def sign_in(client, db, username: str) -> None:
    """Put a valid session for ``username`` on ``client`` without the password round trip."""
    with db.session() as s:
        user = find_user(s, username)
        session_id = f"{user.id}:{user.session_version}"
    with client.session_transaction() as sess:
        sess["_user_id"] = session_id
        sess["_fresh"] = True
        sess.permanent = True


@pytest.fixture
def login_as(db):
    """Sign a client in as a user (session set directly; the login form has its own tests)."""

    def login(client, username: str, password: str = TEST_PASSWORD):
        sign_in(client, db, username)
        return client

    return login


def csrf_headers(client) -> dict[str, str]:
    """Load a page so the CSRF cookie is set, and return the header Dash would send."""
    client.get("/", headers={"Accept": "text/html"})
    cookie = client.get_cookie("_csrf_token")
    assert cookie is not None, "no CSRF cookie was set for the signed-in client"
    return {"X-CSRFToken": cookie.value}


def outputs_for(output: str):
    """Return the ``outputs`` field the renderer sends for an output key."""
    def one(key: str) -> dict:
        component, prop = key.rsplit(".", 1)
        return {"id": component, "property": prop.split("@", 1)[0]}

    if output.startswith("..") and output.endswith(".."):
        return [one(part) for part in output[2:-2].split("...")]
    return one(output)


def post_callback(client, output: str, inputs: list | None = None, state: list | None = None,
                  headers: dict | None = None, outputs=None, changed: list | None = None):
    """POST a Dash callback body for ``output`` as the renderer would."""
    body = {"output": output, "inputs": inputs or [], "state": state or [],
            "changedPropIds": changed if changed is not None else
            [f"{i['id']}.{i['property']}" for i in (inputs or []) if isinstance(i, dict)][:1],
            "outputs": outputs if outputs is not None else outputs_for(output)}
    return client.post("/_dash-update-component", json=body,
                       headers=headers if headers is not None else csrf_headers(client))
