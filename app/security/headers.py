"""Security headers, the Content-Security-Policy, and the CSRF cookie for Dash."""

from __future__ import annotations

from flask import current_app, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

CSRF_COOKIE = "_csrf_token"  # Dash 4 sends this cookie back as the X-CSRFToken header


def content_security_policy(script_hashes: list[str]) -> str:
    """Return the CSP Dash runs under: no 'unsafe-eval', inline scripts by hash only."""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' " + " ".join(script_hashes),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ])


def install_headers(server, dash_app) -> None:
    """Add security headers to every response and hand Dash its CSRF cookie.

    Call after every callback is registered: the CSP carries the hashes of the
    renderer bootstrap and of the clientside callbacks.
    """
    csp = content_security_policy(list(dash_app.csp_hashes()))

    @server.after_request
    def secure(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if current_app.config.get("SESSION_COOKIE_SECURE"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        static = request.path.startswith(("/assets/", "/_dash-component-suites/", "/bootstrap/static/",
                                          "/auth-static/"))
        if not static:
            headers.setdefault("Cache-Control", "no-store")
        if (request.method == "GET" and response.mimetype == "text/html"
                and current_user.is_authenticated):
            response.set_cookie(
                CSRF_COOKIE, generate_csrf(), httponly=False, samesite="Lax",
                secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
                max_age=int(current_app.config["PERMANENT_SESSION_LIFETIME"].total_seconds()),
            )
        return response
