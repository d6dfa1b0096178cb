"""The prediction-log REST API at ``/api/v1``: bearer tokens scoped to one model, no session, no CSRF.

The factory calls :func:`init_app` when this package exists. The session
gate lets ``/api/v1/`` through; every route of the blueprint authenticates
its own bearer token first (deny by default; only the OpenAPI document is
public).
"""

from __future__ import annotations

from flask import Flask

PREFIX = "/api/v1"


def init_app(server: Flask) -> None:
    """Mount the API blueprint, exempt it from CSRF and from the session gate."""
    from app.api.routes import bp

    server.register_blueprint(bp, url_prefix=PREFIX)
    server.extensions["csrf"].exempt(bp)
    prefixes = server.extensions.setdefault("glassbox.public_prefixes", [])
    if PREFIX + "/" not in prefixes:
        prefixes.append(PREFIX + "/")
