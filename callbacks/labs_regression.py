"""Callbacks of the regression lab (all server callbacks need 'use labs')."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Input, Output, callback_context, html, no_update

from app.figures.labs import coefficient_figure, regression_fit_figure, validation_curve_figure
from app.ml.regression_lab import (
    LIMITS,
    MIN_X_SPAN,
    PENALTIES,
    PRESETS,
    RegressionSettings,
    preset_for,
    run_regression_lab,
)
from app.security.permissions import Permission
from callbacks.validate import InvalidInput, choice, error_alert, number
from layouts import labs_regression as L

_N_COEFFICIENTS = len(L.COEFFICIENTS)


def settings_from_controls(coefficients, x_range, noise, n_samples, seed, degree, penalty, log_alpha,
                           test_fraction) -> RegressionSettings:
    """Validate the posted control values and return the settings (raise InvalidInput)."""
    if not isinstance(coefficients, (list, tuple)) or len(coefficients) != _N_COEFFICIENTS:
        raise InvalidInput(f"Expected {_N_COEFFICIENTS} coefficients a0 to a5.")
    lo_c, hi_c = LIMITS["coefficient"]
    coefs = tuple(number(0 if c in (None, "") else c, name=f"Coefficient a{i}", lo=lo_c, hi=hi_c)
                  for i, c in enumerate(coefficients))
    if not isinstance(x_range, (list, tuple)) or len(x_range) != 2:
        raise InvalidInput("The x range must be two numbers.")
    x_min = number(x_range[0], name="x range start", lo=LIMITS["x_min"][0], hi=LIMITS["x_min"][1])
    x_max = number(x_range[1], name="x range end", lo=LIMITS["x_max"][0], hi=LIMITS["x_max"][1])
    if x_max - x_min < MIN_X_SPAN:
        raise InvalidInput(f"The x range must be at least {MIN_X_SPAN:g} wide.")
    lo_a, hi_a = L.ALPHA_LOG_RANGE
    log_alpha = number(log_alpha, name="Alpha (log10)", lo=lo_a, hi=hi_a)
    values = dict(
        coefficients=coefs, x_min=x_min, x_max=x_max,
        noise=number(noise, name="Noise", lo=LIMITS["noise"][0], hi=LIMITS["noise"][1]),
        n_samples=number(n_samples, name="Samples", lo=LIMITS["n_samples"][0], hi=LIMITS["n_samples"][1],
                         integer=True),
        seed=number(seed, name="Seed", lo=LIMITS["seed"][0], hi=LIMITS["seed"][1], integer=True),
        degree=number(degree, name="Polynomial degree", lo=LIMITS["degree"][0], hi=LIMITS["degree"][1],
                      integer=True),
        penalty=choice(penalty, name="Regularisation", options=PENALTIES),
        # Four significant digits: the URL then names exactly the alpha that was fitted.
        alpha=min(LIMITS["alpha"][1], max(LIMITS["alpha"][0], float(f"{10 ** log_alpha:.4g}"))),
        test_fraction=number(test_fraction, name="Test fraction", lo=LIMITS["test_fraction"][0],
                             hi=LIMITS["test_fraction"][1]),
    )
    try:
        return RegressionSettings(**values)
    except ValueError as exc:  # the helpers above should have caught it; never let it escape
        raise InvalidInput(str(exc)) from None


def update_regression(a0, a1, a2, a3, a4, a5, x_range, noise, n_samples, seed, degree, penalty, log_alpha,
                      test_fraction):
    """Refit on committed control values: three figures, stats, diagnosis, notes, URL query."""
    try:
        settings = settings_from_controls([a0, a1, a2, a3, a4, a5], x_range, noise, n_samples, seed, degree,
                                          penalty, log_alpha, test_fraction)
    except InvalidInput as exc:
        return (no_update,) * 5 + (error_alert(str(exc)), no_update)
    result = run_regression_lab(settings)
    data = result.to_dict()
    stats = L.stat_cards(train_r2=result.train_r2, test_r2=result.test_r2, train_rmse=result.train_rmse,
                         test_rmse=result.test_rmse)
    notes = None
    if result.notes:
        notes = dbc.Alert([html.I(className="bi bi-info-circle me-2"), " ".join(result.notes)],
                          color="secondary", className="py-2 mb-2")
    return (
        regression_fit_figure(data),
        validation_curve_figure(data["validation"], degree=settings.degree, noise=settings.noise),
        coefficient_figure(data["coefficients"], penalty=settings.penalty),
        stats,
        L.diagnosis_alert(result.diagnosis, result.reading),
        notes,
        L.search_string(settings),
    )


def preset_or_coefficients(triggered, preset, coefficients):
    """Keep the preset menu and the coefficient boxes in step.

    Choosing a preset fills the boxes; editing a box selects the preset the
    coefficients now match, or "Custom". Returns (preset, a0..a5) with
    ``no_update`` for anything that does not change.
    """
    keep = (no_update,) * (1 + _N_COEFFICIENTS)
    if not isinstance(coefficients, (list, tuple)) or len(coefficients) != _N_COEFFICIENTS:
        return keep
    if triggered == L.PRESET:
        if not isinstance(preset, str) or preset not in PRESETS:
            return keep
        return (no_update,) + tuple(PRESETS[preset][1])
    if triggered in L.COEFFICIENTS:
        try:
            lo, hi = LIMITS["coefficient"]
            coefs = [number(0 if c in (None, "") else c, name="Coefficient", lo=lo, hi=hi) for c in coefficients]
        except InvalidInput:
            return keep  # the refit callback reports the bad box
        name = preset_for(coefs) or L.CUSTOM
        return ((name if name != preset else no_update),) + (no_update,) * _N_COEFFICIENTS
    return keep


def sync_preset(preset, a0, a1, a2, a3, a4, a5):
    """Callback wrapper of :func:`preset_or_coefficients` (reads which control fired)."""
    return preset_or_coefficients(callback_context.triggered_id, preset, [a0, a1, a2, a3, a4, a5])


def register(dash_app, policy) -> None:
    """Register the lab's callbacks: preset sync, one refit on release, browser-only label helpers."""
    policy.callback(
        Output(L.PRESET, "value"), *(Output(c, "value") for c in L.COEFFICIENTS),
        Input(L.PRESET, "value"), *(Input(c, "value") for c in L.COEFFICIENTS),
        permission=Permission.USE_LABS, prevent_initial_call=True,
    )(sync_preset)
    policy.callback(
        Output(L.FIT_GRAPH, "figure"), Output(L.VALIDATION_GRAPH, "figure"), Output(L.COEF_GRAPH, "figure"),
        Output(L.STATS, "children"), Output(L.DIAGNOSIS, "children"), Output(L.MESSAGE, "children"),
        Output(L.URL, "search"),
        *(Input(c, "value") for c in L.COEFFICIENTS),
        Input(L.X_RANGE, "value"), Input(L.NOISE, "value"), Input(L.N_SAMPLES, "value"), Input(L.SEED, "value"),
        Input(L.DEGREE, "value"), Input(L.PENALTY, "value"), Input(L.LOG_ALPHA, "value"),
        Input(L.TEST_FRACTION, "value"),
        permission=Permission.USE_LABS,
    )(update_regression)

    formats = {L.X_RANGE: "range", L.NOISE: "plain", L.N_SAMPLES: "plain", L.DEGREE: "plain",
               L.LOG_ALPHA: "pow10", L.TEST_FRACTION: "percent"}
    for slider, label in L.SLIDER_VALUES.items():
        policy.clientside_callback(ClientsideFunction("labs", formats[slider]), Output(label, "children"),
                                   Input(slider, "drag_value"), Input(slider, "value"))
    policy.clientside_callback(ClientsideFunction("labs", "noPenalty"), Output(L.LOG_ALPHA, "disabled"),
                               Input(L.PENALTY, "value"))

