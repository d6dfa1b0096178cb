"""Callbacks of the decision-boundary lab (all server callbacks need 'use labs')."""

from __future__ import annotations

import math
from typing import Any

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, State, html, no_update

from app.figures.labs import boundary_figure
from app.ml.boundary import DATASETS, KERNELS, LIMITS, MODELS, BoundarySettings, run_boundary
from app.security.permissions import Permission
from callbacks.validate import InvalidInput, choice, error_alert, flag, number
from layouts import labs_boundary as L

#: Largest boundary outline kept for "compare" (points, NaN gaps included).
MAX_OUTLINE_POINTS = 20_000
_MAX_KEY_LENGTH = 400


def settings_from_controls(dataset, n_samples, noise, seed, test_fraction, model, kernel,
                           log_c, log_gamma, degree, k, max_depth) -> BoundarySettings:
    """Validate the posted control values and return the settings (raise InvalidInput)."""
    lo_c, hi_c = L.C_LOG_RANGE
    lo_g, hi_g = L.GAMMA_LOG_RANGE
    log_c = number(log_c, name="C (log10)", lo=lo_c, hi=hi_c)
    log_gamma = number(log_gamma, name="Gamma (log10)", lo=lo_g, hi=hi_g)
    values = dict(
        dataset=choice(dataset, name="Data set", options=DATASETS),
        n_samples=number(n_samples, name="Samples", lo=LIMITS["n_samples"][0], hi=LIMITS["n_samples"][1],
                         integer=True),
        noise=number(noise, name="Noise", lo=LIMITS["noise"][0], hi=LIMITS["noise"][1]),
        seed=number(seed, name="Seed", lo=LIMITS["seed"][0], hi=LIMITS["seed"][1], integer=True),
        test_fraction=number(test_fraction, name="Test fraction", lo=LIMITS["test_fraction"][0],
                             hi=LIMITS["test_fraction"][1]),
        model=choice(model, name="Classifier", options=MODELS),
        kernel=choice(kernel, name="Kernel", options=KERNELS),
        # Four significant digits: the URL then names exactly the C and gamma that were fitted.
        C=min(LIMITS["C"][1], max(LIMITS["C"][0], float(f"{10 ** log_c:.4g}"))),
        gamma=min(LIMITS["gamma"][1], max(LIMITS["gamma"][0], float(f"{10 ** log_gamma:.4g}"))),
        degree=number(degree, name="Polynomial degree", lo=LIMITS["degree"][0], hi=LIMITS["degree"][1],
                      integer=True),
        k=number(k, name="Neighbours k", lo=LIMITS["k"][0], hi=LIMITS["k"][1], integer=True),
        max_depth=number(max_depth, name="Maximum depth", lo=LIMITS["max_depth"][0], hi=LIMITS["max_depth"][1],
                         integer=True),
    )
    try:
        return BoundarySettings(**values)
    except ValueError as exc:  # the helpers above should have caught it; never let it escape
        raise InvalidInput(str(exc)) from None


def _outline(line: Any) -> dict | None:
    """Return a boundary polyline fit for the store (rounded), or None if unusable."""
    if not isinstance(line, dict):
        return None
    xs, ys = line.get("x"), line.get("y")
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        return None
    if not xs or len(xs) > MAX_OUTLINE_POINTS:
        return None
    out_x, out_y = [], []
    for a, b in zip(xs, ys):
        if a is None or b is None:
            out_x.append(None)
            out_y.append(None)
            continue
        if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) \
                or not isinstance(b, (int, float)) or not math.isfinite(a) or not math.isfinite(b):
            return None
        out_x.append(round(float(a), 4))
        out_y.append(round(float(b), 4))
    return {"x": out_x, "y": out_y}


def next_store(store: Any, key: str, boundary: Any) -> tuple[Any, dict | None]:
    """Advance the compare store; return (new store or no_update, outline of the previous boundary).

    The store holds the boundary of the current controls and the one before.
    A request with the same controls (the compare switch itself, a reload)
    leaves it alone, so the outline stays the boundary before the last change.
    The store comes from the browser: anything malformed is treated as empty.
    """
    valid = (isinstance(store, dict) and isinstance(store.get("key"), str)
             and len(store["key"]) <= _MAX_KEY_LENGTH)
    if valid and store["key"] == key:
        return no_update, _outline(store.get("previous"))
    previous = _outline(store.get("current")) if valid else None
    return {"key": key, "current": _outline(boundary), "previous": previous}, previous


def _notes(notes: list[str]) -> Any:
    if not notes:
        return None
    return dbc.Alert([html.I(className="bi bi-info-circle me-2"), " ".join(notes)],
                     color="secondary", className="py-2 mb-2")


def update_boundary(dataset, n_samples, noise, seed, test_fraction, model, kernel, log_c, log_gamma,
                    degree, k, max_depth, compare, store):
    """Refit on committed control values: figure, stats, reading, notes, store, URL query."""
    try:
        settings = settings_from_controls(dataset, n_samples, noise, seed, test_fraction, model, kernel,
                                          log_c, log_gamma, degree, k, max_depth)
        compare_on = flag(compare, name="Compare")
    except InvalidInput as exc:
        return no_update, no_update, no_update, error_alert(str(exc)), no_update, no_update
    result = run_boundary(settings)
    data = result.to_dict()
    search = L.search_string(settings)
    new_store, previous = next_store(store, search, data.get("boundary"))
    figure = boundary_figure(data, previous=previous if compare_on else None)
    stats = L.stat_cards(train_accuracy=result.train_accuracy, test_accuracy=result.test_accuracy,
                         n_support=result.n_support, fit_ms=result.fit_ms, n_train=int(result.y_train.size))
    if result.error:
        return figure, stats, result.error, error_alert(result.error), new_store, search
    return figure, stats, result.reading, _notes(result.notes), new_store, search


def register(dash_app, policy) -> None:
    """Register the lab's callbacks: one refit on release, browser-only helpers for labels."""
    policy.callback(
        Output(L.GRAPH, "figure"), Output(L.STATS, "children"), Output(L.READING, "children"),
        Output(L.MESSAGE, "children"), Output(L.STORE, "data"), Output(L.URL, "search"),
        Input(L.DATASET, "value"), Input(L.N_SAMPLES, "value"), Input(L.NOISE, "value"),
        Input(L.SEED, "value"), Input(L.TEST_FRACTION, "value"), Input(L.MODEL, "value"),
        Input(L.KERNEL, "value"), Input(L.LOG_C, "value"), Input(L.LOG_GAMMA, "value"),
        Input(L.DEGREE, "value"), Input(L.K, "value"), Input(L.MAX_DEPTH, "value"),
        Input(L.COMPARE, "value"), State(L.STORE, "data"),
        permission=Permission.USE_LABS,
    )(update_boundary)

    formats = {L.N_SAMPLES: "plain", L.NOISE: "plain", L.TEST_FRACTION: "percent", L.LOG_C: "pow10",
               L.LOG_GAMMA: "pow10", L.DEGREE: "plain", L.K: "plain", L.MAX_DEPTH: "plain"}
    for slider, label in L.SLIDER_VALUES.items():
        policy.clientside_callback(ClientsideFunction("labs", formats[slider]), Output(label, "children"),
                                   Input(slider, "drag_value"), Input(slider, "value"))
    policy.clientside_callback(
        ClientsideFunction("labs", "boundaryGroups"),
        Output(L.GROUP_KERNEL, "style"), Output(L.GROUP_C, "style"), Output(L.GROUP_GAMMA, "style"),
        Output(L.GROUP_DEGREE, "style"), Output(L.GROUP_K, "style"), Output(L.GROUP_DEPTH, "style"),
        Input(L.MODEL, "value"), Input(L.KERNEL, "value"),
    )
