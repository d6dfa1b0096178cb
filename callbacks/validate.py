"""Validation of values posted by the browser.

Dash passes whatever the client posts (1e9 for a 0..1 slider, dicts, strings).
Every callback validates its inputs with these helpers and turns
:class:`InvalidInput` into a message for the user, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import dash_bootstrap_components as dbc
from dash import html


class InvalidInput(ValueError):
    """A value from the browser that the callback refuses, with a message for the user."""


def number(value: Any, *, name: str, lo: float, hi: float, integer: bool = False) -> float | int:
    """Return ``value`` as a finite number in ``[lo, hi]`` or raise :class:`InvalidInput`."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput(f"{name} must be a number between {lo:g} and {hi:g}.")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidInput(f"{name} must be a number, not {value[:40]!r}.") from None
    if not isinstance(value, (int, float)):
        raise InvalidInput(f"{name} must be a number between {lo:g} and {hi:g}.")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number.")
    if value < lo or value > hi:
        raise InvalidInput(f"{name} must be between {lo:g} and {hi:g}; got {value:g}.")
    if integer:
        if value != int(value):
            raise InvalidInput(f"{name} must be a whole number; got {value:g}.")
        return int(value)
    return value


def choice(value: Any, *, name: str, options: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``options`` or raise :class:`InvalidInput`."""
    options = list(options)
    if isinstance(value, (list, dict)) or value not in options:
        shown = ", ".join(str(o) for o in options[:12])
        raise InvalidInput(f"{name} must be one of: {shown}.")
    return value


def flag(value: Any, *, name: str) -> bool:
    """Return a boolean from a checkbox/switch value (bool or list of checked values)."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, list):
        return len(value) > 0
    raise InvalidInput(f"{name} must be on or off.")


def text(value: Any, *, name: str, max_length: int = 2000, required: bool = False) -> str:
    """Return ``value`` as stripped text of bounded length or raise :class:`InvalidInput`."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text.")
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{name} is required.")
    if len(value) > max_length:
        raise InvalidInput(f"{name} must be at most {max_length} characters.")
    return value


def error_alert(message: str) -> dbc.Alert:
    """Return the standard inline message for refused input."""
    return dbc.Alert([html.I(className="bi bi-exclamation-triangle me-2"), message],
                     color="warning", className="mb-2 py-2", dismissable=False)
