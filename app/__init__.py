"""Glassbox application core.

``create_app`` is the only factory. Its imports are deferred so that
importing a pure subpackage (``app.ml``, ``app.figures``) never pulls in
Flask or Dash.
"""

from __future__ import annotations

from typing import Any


def create_app(config: dict[str, Any] | None = None):
    """Build the Flask server with the Dash app, security and data layer mounted."""
    from app.factory import build_app

    return build_app(config)
