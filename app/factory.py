"""Build the Flask server with Dash, security and the data layer mounted.

The factory is a sequence of small ``register_*`` steps. Only ``wsgi.py`` and
tests call it (through :func:`app.create_app`).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import dash
from flask import Flask, jsonify
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect, generate_csrf
from sqlalchemy import text
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import PROJECT_ROOT, load_config
from app.security.auth import bp as auth_bp
from app.security.gate import install_gate
from app.security.headers import install_headers
from app.security.policy import AccessPolicy
from app.security.users import load_session_user
from data.db import Database, get_db
from layouts import shell as shell_layout
from layouts.page import Page, discover_pages

log = logging.getLogger("glassbox")

BOOTSTRAP_CSS = "/bootstrap/static/css/bootstrap.min.css"
BOOTSTRAP_ICONS = "/bootstrap/static/css/font/bootstrap-icons.min.css"


def build_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Return a configured Flask server with the Dash app mounted on it."""
    config = load_config(overrides)
    server = Flask("glassbox", instance_path=config["GLASSBOX_INSTANCE_PATH"],
                   root_path=str(PROJECT_ROOT / "app"))
    server.config.update(config)
    register_logging(server)
    register_proxy(server)
    register_database(server)
    register_login(server)
    CSRFProtect(server)
    Bootstrap5(server)  # serves Bootstrap 5 css and icons from the installed package
    server.register_blueprint(auth_bp)
    register_health(server)
    register_optional_blueprints(server)
    dash_app, policy = register_dash(server)
    install_gate(server, dash_app, policy)
    install_headers(server, dash_app)
    register_jobs(server)
    return server


def register_logging(server: Flask) -> None:
    """Log to stderr at INFO (gunicorn collects it)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def register_proxy(server: Flask) -> None:
    """Trust X-Forwarded-* from the configured number of proxies only."""
    hops = server.config["GLASSBOX_TRUSTED_PROXIES"]
    if hops > 0:
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def register_database(server: Flask) -> None:
    """Attach the application's Database (one engine per process)."""
    server.extensions["glassbox.db"] = Database(server.config["GLASSBOX_DATABASE_URL"])


def register_login(server: Flask) -> None:
    """Load the user, with grants, from the database on every request."""
    manager = LoginManager()
    manager.session_protection = "basic"
    manager.login_view = "auth.login"
    manager.init_app(server)

    @manager.user_loader
    def load_user(session_id: str):
        with get_db().session() as session:
            return load_session_user(session, session_id)


def register_health(server: Flask) -> None:
    """``/healthz`` says the process is alive; ``/readyz`` that the database answers."""

    @server.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    @server.get("/readyz")
    def readyz():
        try:
            with get_db().engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            log.exception("readiness check failed")
            return jsonify({"status": "unavailable", "database": "unreachable"}), 503
        return jsonify({"status": "ok", "database": "ok"})


def register_optional_blueprints(server: Flask) -> None:
    """Mount the REST API when its package is present; it brings its own token auth."""
    try:
        api = importlib.import_module("app.api")
    except ModuleNotFoundError as exc:
        if exc.name not in {"app.api"}:
            raise
        return
    api.init_app(server)


def register_dash(server: Flask) -> tuple[dash.Dash, AccessPolicy]:
    """Create the Dash app, the page registry and every callback through the policy."""
    dash_app = dash.Dash(
        "glassbox",
        server=server,
        title="Glassbox",
        update_title=None,
        assets_folder=str(PROJECT_ROOT / "assets"),
        external_stylesheets=[BOOTSTRAP_CSS, BOOTSTRAP_ICONS],
        serve_locally=True,
        compress=True,
        suppress_callback_exceptions=True,
        enable_mcp=False,
        on_error=_on_error,
    )
    pages = discover_pages()
    policy = AccessPolicy(dash_app)
    server.extensions["glassbox.dash"] = dash_app
    server.extensions["glassbox.policy"] = policy
    server.extensions["glassbox.pages"] = pages

    def serve_layout():
        from flask_login import current_user

        if not current_user.is_authenticated:
            return shell_layout.shell(username="", role="", pages=[], csrf_token="")
        visible = [p for p in pages if current_user.can(p.spec.permission)]
        return shell_layout.shell(username=current_user.username, role=current_user.role,
                                  pages=visible, csrf_token=generate_csrf())

    dash_app.layout = serve_layout
    register_callbacks(dash_app, policy, pages)
    return dash_app, policy


def _on_error(exc: Exception):
    from callbacks.shell import show_error

    show_error(exc)


def register_callbacks(dash_app: dash.Dash, policy: AccessPolicy, pages: list[Page]) -> None:
    """Register the shell's router and each page's callback module of the same stem."""
    from callbacks import shell as shell_callbacks

    shell_callbacks.register(dash_app, policy, pages=pages)
    for page in pages:
        try:
            module = importlib.import_module(f"callbacks.{page.stem}")
        except ModuleNotFoundError as exc:
            if exc.name != f"callbacks.{page.stem}":
                raise
            continue
        module.register(dash_app, policy)


def register_jobs(server: Flask) -> None:
    """Start the analysis runner when the jobs module is present and enabled."""
    try:
        jobs = importlib.import_module("app.jobs")
    except ModuleNotFoundError as exc:
        if exc.name != "app.jobs":
            raise
        return
    jobs.init_app(server)
