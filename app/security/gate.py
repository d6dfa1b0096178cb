"""The one gate every request passes: deny by default.

Anonymous requests reach only the login page, its static files and the
health checks. Dash callback POSTs are authorised on their ``output`` key
alone, looked up in the access policy; inputs, state and pathname are never
consulted because the browser can forge them.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, jsonify, redirect, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from app.audit import record_event
from app.security.permissions import Permission

log = logging.getLogger("glassbox.gate")

PUBLIC_PATHS = frozenset({"/login", "/healthz", "/readyz", "/favicon.ico"})
PUBLIC_PREFIXES = ("/auth-static/", "/bootstrap/static/")


def _is_public(path: str) -> bool:
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return True
    return any(path.startswith(p) for p in current_app.extensions.get("glassbox.public_prefixes", ()))


def _wants_page(path: str) -> bool:
    return (request.method == "GET" and not path.startswith("/_")
            and "text/html" in request.headers.get("Accept", ""))


def json_error(status: int, message: str):
    """Return a small JSON error response (never a traceback)."""
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _valid_dependency(item: Any) -> bool:
    if isinstance(item, list):  # pattern-matching ALL / ALLSMALLER
        return all(_valid_dependency(i) for i in item)
    return isinstance(item, dict) and "id" in item and isinstance(item.get("property"), str)


def malformed_callback(body: Any) -> str | None:
    """Return why a callback body is malformed, or None if its shape is right."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    if not isinstance(body.get("output"), str):
        return "'output' must be a string"
    for key in ("inputs", "state"):
        value = body.get(key, [])
        if not isinstance(value, list) or not all(_valid_dependency(i) for i in value):
            return f"'{key}' must be a list of {{id, property}} objects"
    outputs = body.get("outputs")
    if outputs is not None and not (_valid_dependency(outputs) or
                                    (isinstance(outputs, list) and all(_valid_dependency(o) for o in outputs))):
        return "'outputs' is malformed"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "'changedPropIds' must be a list of strings"
    return None


def authorize_callback(policy) -> Any:
    """Refuse a callback POST unless its output is known and the user holds its permission."""
    body = request.get_json(silent=True)
    problem = malformed_callback(body)
    if problem:
        return json_error(400, f"Bad callback request: {problem}.")
    output = body["output"]
    permission = policy.permission_for(output)
    if permission is None:
        record_event("callback", target=output[:200], outcome="denied", detail="unknown callback output")
        return json_error(403, "This action is not available.")
    if not current_user.can(permission):
        record_event("callback", target=output[:200], outcome="denied",
                     detail=f"missing permission {permission.value}")
        return json_error(403, f"You need the permission '{permission.label}' for this action.")
    return None


def install_gate(server, dash_app, policy) -> None:
    """Install the gate as the server's first before-request hook."""
    update_path = f"{dash_app.config.routes_pathname_prefix}_dash-update-component"

    def gate():
        path = request.path
        if _is_public(path):
            return None
        if path == "/logout" and request.method != "POST":
            return json_error(405, "Log out with the button (a POST with its CSRF token).")
        if not current_user.is_authenticated:
            if _wants_page(path):
                return redirect(f"/login?next={request.full_path.rstrip('?')}"
                                if path != "/" else "/login")
            return json_error(401, "Sign in first.")
        if path == update_path:
            if request.method != "POST":
                return json_error(405, "Method not allowed.")
            return authorize_callback(policy)
        return None

    server.before_request_funcs.setdefault(None, []).insert(0, gate)

    @server.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/_") or request.path.startswith("/api/") or \
                "application/json" in request.headers.get("Accept", ""):
            return json_error(exc.code or 500, exc.description or exc.name)
        from flask import render_template

        return render_template("error.html", title=exc.name, message=exc.description), exc.code

    @server.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if request.path == update_path:
            # Dash raises on bodies that do not match the callback; answer as a bad request.
            return json_error(400, "The request could not be processed.")
        if request.path.startswith("/_") or request.path.startswith("/api/"):
            return json_error(500, "Something went wrong on our side; it has been logged.")
        from flask import render_template

        return render_template("error.html", title="Something went wrong",
                               message="The error has been logged. Try again, or tell your administrator."), 500


__all__ = ["install_gate", "json_error", "Permission"]
