"""Headless Chromium against a live Glassbox server running in this process.

The server is a threaded Werkzeug server on a free loopback port, backed by a
fresh SQLite database with one user per role. Browser: Debian's
/usr/bin/chromium driven by Playwright (no browser download).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app.security.users import create_user
from tests.conftest import TEST_PASSWORD, _test_hash, build_test_app

CHROMIUM = os.environ.get("GLASSBOX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROLES = ("viewer", "analyst", "admin")
SCREENSHOTS = Path(__file__).parent / "screenshots"


class LiveServer:
    """A running server: its URL, app and database."""

    def __init__(self, app):
        self.app = app
        self.db = app.extensions["glassbox.db"]
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self.db.dispose()


def seed_browser_world(app) -> None:
    """Create one user per role (same test password); feature suites add their models."""
    with app.extensions["glassbox.db"].session() as s:
        for role in ROLES:
            user = create_user(s, role, "placeholder-Pass-987", role=role)
            user.password_hash = _test_hash()


def _seeders():
    """Return ``seed(app)`` of every ``tests/browser/seed_*.py``, in name order."""
    import importlib

    folder = Path(__file__).parent
    return [importlib.import_module(f"tests.browser.{path.stem}").seed
            for path in sorted(folder.glob("seed_*.py"))]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """Start Glassbox once for the browser tests."""
    tmp = tmp_path_factory.mktemp("live")
    app = build_test_app(tmp, GLASSBOX_LOGIN_LIMIT_IP=10_000)
    seed_browser_world(app)
    for seeder in _seeders():
        seeder(app)
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make test` installs it with apt-get")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) and page per test; CSP violations fail the test."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    # Generous: CI machines have 2 cores, and a first request may load a model and its explainer.
    context.set_default_timeout(45_000)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" and
          "Content Security Policy" in msg.text else None)
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    yield pg
    context.close()
    assert not problems, problems


def login(page, server: LiveServer, username: str, password: str = TEST_PASSWORD, *, path: str = "/"):
    """Sign in through the real form and wait for the Dash shell."""
    page.goto(f"{server.url}/login?next={path}")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_selector("#shell-content .gb-page-header", state="attached")
    return page


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under tests/browser/screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
