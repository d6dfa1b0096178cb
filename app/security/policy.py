"""The access policy: every Dash callback is registered here with its permission.

The gate looks a callback up by the ``output`` key the browser posts and
nothing else; an output key that was never registered here is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from flask_login import current_user

from app.security.permissions import Permission

# Options that would expose a callback outside the gated update route.
_REFUSED_OPTIONS = ("api_endpoint", "mcp_enabled", "websocket", "background")


class AccessPolicy:
    """Registers callbacks on one Dash app and remembers which permission each needs."""

    def __init__(self, dash_app):
        self.dash_app = dash_app
        self._permissions: dict[str, Permission] = {}

    def callback(self, *dependencies: Any, permission: Permission, **options: Any) -> Callable:
        """Return a decorator registering ``func`` as a Dash callback that needs ``permission``."""
        if not isinstance(permission, Permission):
            raise TypeError(f"permission must be a Permission, got {permission!r}")
        for option in _REFUSED_OPTIONS:
            if options.get(option):
                raise ValueError(f"callbacks may not use {option}=...: it bypasses the access gate")

        def decorator(func: Callable) -> Callable:
            before = set(self.dash_app.callback_map)
            self.dash_app.callback(*dependencies, **options)(func)
            added = set(self.dash_app.callback_map) - before
            if not added:
                raise RuntimeError(f"registering {func.__qualname__} added no callback")
            for key in added:
                self._permissions[key] = permission
            return func

        return decorator

    def clientside_callback(self, clientside_function: Any, *dependencies: Any, **options: Any) -> None:
        """Register a browser-only callback; the server never runs it, so it needs no permission."""
        self.dash_app.clientside_callback(clientside_function, *dependencies, **options)

    def permission_for(self, output_key: Any) -> Permission | None:
        """Return the permission a posted output key needs, or None if it is unknown."""
        if not isinstance(output_key, str):
            return None
        return self._permissions.get(output_key)

    @property
    def permissions(self) -> Mapping[str, Permission]:
        """Return the read-only map output key -> permission."""
        return MappingProxyType(self._permissions)

    @staticmethod
    def current_user():
        """Return the signed-in user of the request (a :class:`CurrentUser`)."""
        return current_user._get_current_object()
