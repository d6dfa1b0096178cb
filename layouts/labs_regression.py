"""Labs: the polynomial regression lab (bias and variance by feel)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.ml.regression_lab import DEFAULTS, LIMITS, MAX_TRUE_DEGREE, MIN_X_SPAN, PENALTIES, PRESETS, preset_for
from app.security.permissions import Permission
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/labs/regression", title="Regression lab", permission=Permission.USE_LABS,
                section="Labs", order=70, icon="bi-graph-up",
                description="Fit polynomials of rising degree to noisy samples of a known curve and watch "
                            "the train and test errors part ways as the fit starts to follow the noise.")

URL = "reglab-url"
PRESET = "reglab-preset"
COEFFICIENTS = tuple(f"reglab-a{i}" for i in range(MAX_TRUE_DEGREE + 1))
X_RANGE = "reglab-x-range"
NOISE = "reglab-noise"
N_SAMPLES = "reglab-n-samples"
SEED = "reglab-seed"
DEGREE = "reglab-degree"
PENALTY = "reglab-penalty"
LOG_ALPHA = "reglab-log-alpha"
TEST_FRACTION = "reglab-test-fraction"
FIT_GRAPH = "reglab-fit-graph"
VALIDATION_GRAPH = "reglab-validation-graph"
COEF_GRAPH = "reglab-coef-graph"
STATS = "reglab-stats"
DIAGNOSIS = "reglab-diagnosis"
MESSAGE = "reglab-message"
SLIDER_VALUES = {
    X_RANGE: "reglab-x-range-value",
    NOISE: "reglab-noise-value",
    N_SAMPLES: "reglab-n-samples-value",
    DEGREE: "reglab-degree-value",
    LOG_ALPHA: "reglab-log-alpha-value",
    TEST_FRACTION: "reglab-test-fraction-value",
}
CUSTOM = "custom"

X_STEP = 0.25
NOISE_STEP = 0.05
N_STEP = 10
LOG_STEP = 0.1
FRACTION_STEP = 0.05
ALPHA_LOG_RANGE = (math.log10(LIMITS["alpha"][0]), math.log10(LIMITS["alpha"][1]))


# ---------------------------------------------------------------------------
# Control state <-> URL query (untrusted: each field falls back on its own).
# ---------------------------------------------------------------------------

def _number(query: dict, key: str, default: float, lo: float, hi: float) -> float:
    raw = query.get(key)
    if not isinstance(raw, str) or len(raw) > 24:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if math.isfinite(value) and lo <= value <= hi else default


def _snap(value: float, step: float, lo: float, hi: float) -> float:
    return round(min(hi, max(lo, round(value / step) * step)), 6)


def _coefficients(query: dict) -> tuple[float, ...]:
    raw = query.get("coef")
    default = DEFAULTS.coefficients
    if not isinstance(raw, str) or len(raw) > 200:
        return default
    parts = raw.split(",")
    if not 1 <= len(parts) <= MAX_TRUE_DEGREE + 1:
        return default
    lo, hi = LIMITS["coefficient"]
    out = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            return default
        if not math.isfinite(value) or not lo <= value <= hi:
            return default
        out.append(value)
    return tuple(out) + (0.0,) * (MAX_TRUE_DEGREE + 1 - len(out))


def values_from_query(query: Any) -> dict[str, Any]:
    """Return the initial control values (slider units) from an untrusted URL query."""
    query = query if isinstance(query, dict) else {}
    d = DEFAULTS
    x_min = _snap(_number(query, "xmin", d.x_min, *LIMITS["x_min"]), X_STEP / 5, *LIMITS["x_min"])
    x_max = _snap(_number(query, "xmax", d.x_max, *LIMITS["x_max"]), X_STEP / 5, *LIMITS["x_max"])
    if x_max - x_min < MIN_X_SPAN:
        x_min, x_max = d.x_min, d.x_max
    alpha = _number(query, "alpha", d.alpha, *LIMITS["alpha"])
    penalty = query.get("penalty")
    coefficients = _coefficients(query)
    return {
        "coefficients": coefficients,
        "preset": preset_for(coefficients) or CUSTOM,
        "x_range": [x_min, x_max],
        "noise": _snap(_number(query, "noise", d.noise, *LIMITS["noise"]), NOISE_STEP / 5, *LIMITS["noise"]),
        "n_samples": int(_snap(_number(query, "n", d.n_samples, *LIMITS["n_samples"]), 1, *LIMITS["n_samples"])),
        "seed": int(_snap(_number(query, "seed", d.seed, *LIMITS["seed"]), 1, *LIMITS["seed"])),
        "degree": int(_snap(_number(query, "degree", d.degree, *LIMITS["degree"]), 1, *LIMITS["degree"])),
        "penalty": penalty if isinstance(penalty, str) and penalty in PENALTIES else d.penalty,
        "log_alpha": _snap(math.log10(alpha), LOG_STEP, *ALPHA_LOG_RANGE),
        "test_fraction": _snap(_number(query, "test", d.test_fraction, *LIMITS["test_fraction"]),
                               FRACTION_STEP / 5, *LIMITS["test_fraction"]),
    }


def search_string(settings) -> str:
    """Return the URL query (``?...``) that reproduces ``settings`` (a RegressionSettings)."""
    s = settings
    coefs = list(s.coefficients)
    while len(coefs) > 1 and coefs[-1] == 0.0:
        coefs.pop()
    return "?" + urlencode({
        "coef": ",".join(f"{c:.6g}" for c in coefs), "xmin": f"{s.x_min:g}", "xmax": f"{s.x_max:g}",
        "noise": f"{s.noise:g}", "n": s.n_samples, "seed": s.seed, "degree": s.degree,
        "penalty": s.penalty, "alpha": f"{s.alpha:.4g}", "test": f"{s.test_fraction:g}",
    }, safe=",")


# ---------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------

def _label(text: str, control_id: str, *, value: str = "", help_text: str | None = None) -> html.Div:
    children = [dbc.Label(text, html_for=control_id, className="mb-0")]
    if control_id in SLIDER_VALUES:
        children.append(dbc.Badge(value, id=SLIDER_VALUES[control_id], color="light", text_color="dark",
                                  className="ms-2 border"))
    label = html.Div(children, className="d-flex align-items-center justify-content-between mb-1")
    if help_text:
        return html.Div([label, html.Div(help_text, className="gb-help mb-1")])
    return label


def _slider(control_id: str, lo: float, hi: float, step: float, value: float, marks: dict) -> dcc.Slider:
    # Refit on release (updatemode="mouseup"); drag_value only moves the label, in the browser.
    return dcc.Slider(id=control_id, min=lo, max=hi, step=step, value=value, marks=marks,
                      updatemode="mouseup", allow_direct_input=False, included=False, className="mb-2")


def _stat(label: str, value: str) -> dbc.Col:
    return dbc.Col(dbc.Card(dbc.CardBody([
        html.Div(label, className="gb-stat-label"),
        html.Div(value, className="gb-stat"),
    ], className="py-2 px-3")), xs=6, md=3, className="mb-2")


def stat_cards(*, train_r2=None, test_r2=None, train_rmse=None, test_rmse=None) -> dbc.Row:
    """Return the row of headline errors (dashes for missing values)."""
    def fmt(v):
        return "–" if v is None else f"{v:.3g}"
    return dbc.Row([
        _stat("Train R²", fmt(train_r2)),
        _stat("Test R²", fmt(test_r2)),
        _stat("Train RMSE", fmt(train_rmse)),
        _stat("Test RMSE", fmt(test_rmse)),
    ], className="g-2")


def diagnosis_alert(label: str | None, sentence: str) -> dbc.Alert:
    """Return the one-line diagnosis, coloured by its label."""
    color = {"underfitting": "warning", "good fit": "success", "overfitting": "danger"}.get(label or "", "info")
    return dbc.Alert(sentence, color=color, className="py-2 mb-2")


def _fmt(value: float) -> str:
    return f"{value:.3g}"


_HELP = [
    html.P([
        "The dashed black curve is the truth: a polynomial you choose. The dots are noisy samples of it; ",
        "circles train the model, diamonds test it. The red curve is the fitted polynomial.",
    ], className="mb-1"),
    html.P([
        html.Strong("What to try: "),
        "raise the degree. At first both errors fall (the curve was too stiff: underfitting). Past the "
        "true degree the training error keeps falling but the test error rises again: the curve is bending "
        "to fit the noise (overfitting). A penalty (ridge, lasso) with a larger alpha pulls it back; lasso "
        "sets some coefficients to exactly zero.",
    ], className="mb-0"),
]


def layout(ctx: PageContext):
    """Return the regression lab: controls on the left, fit, errors and curves on the right."""
    v = values_from_query(getattr(ctx, "query", {}))
    preset_options = [{"label": label, "value": key} for key, (label, _) in PRESETS.items()]
    preset_options.append({"label": "Custom", "value": CUSTOM})
    lo_c, hi_c = LIMITS["coefficient"]
    coefficient_inputs = dbc.Row([
        dbc.Col([
            dbc.Label(f"a{i}" if i else "a0", html_for=COEFFICIENTS[i], className="small mb-0"),
            dbc.Input(id=COEFFICIENTS[i], type="number", min=lo_c, max=hi_c, step="any", size="sm",
                      value=v["coefficients"][i], debounce=True),
        ], xs=4, className="mb-2")
        for i in range(MAX_TRUE_DEGREE + 1)
    ], className="g-2")
    truth = [
        html.H6("Ground truth", className="text-uppercase gb-stat-label mb-2"),
        html.Div([dbc.Label("Preset", html_for=PRESET),
                  dbc.Select(id=PRESET, value=v["preset"], options=preset_options)], className="mb-2"),
        html.Div([html.Div("Coefficients of a0 + a1·x + … + a5·x⁵", className="gb-help mb-1"),
                  coefficient_inputs], className="mb-3"),
        html.Div([_label("x range", X_RANGE, value=f"{_fmt(v['x_range'][0])} to {_fmt(v['x_range'][1])}"),
                  dcc.RangeSlider(id=X_RANGE, min=LIMITS["x_min"][0], max=LIMITS["x_max"][1], step=X_STEP,
                                  value=v["x_range"], pushable=MIN_X_SPAN, allowCross=False,
                                  marks={i: str(i) for i in range(-3, 4)}, updatemode="mouseup",
                                  allow_direct_input=False, className="mb-2")], className="mb-3"),
        html.Div([_label("Noise (standard deviation)", NOISE, value=_fmt(v["noise"])),
                  _slider(NOISE, *LIMITS["noise"], NOISE_STEP, v["noise"], {0: "0", 1: "1", 2: "2", 3: "3"})],
                 className="mb-3"),
        html.Div([_label("Samples", N_SAMPLES, value=str(v["n_samples"])),
                  _slider(N_SAMPLES, *LIMITS["n_samples"], N_STEP, v["n_samples"],
                          {20: "20", 250: "250", 500: "500", 750: "750", 1000: "1000"})], className="mb-3"),
        html.Div([_label("Test fraction", TEST_FRACTION, value=f"{v['test_fraction']:.0%}"),
                  _slider(TEST_FRACTION, *LIMITS["test_fraction"], FRACTION_STEP, v["test_fraction"],
                          {0.1: "10%", 0.3: "30%", 0.5: "50%"})], className="mb-3"),
        html.Div([dbc.Label("Seed", html_for=SEED),
                  dbc.Input(id=SEED, type="number", min=LIMITS["seed"][0], max=LIMITS["seed"][1], step=1,
                            value=v["seed"], debounce=True)], className="mb-3"),
    ]
    model = [
        html.H6("Model", className="text-uppercase gb-stat-label mb-2 mt-2"),
        html.Div([_label("Polynomial degree", DEGREE, value=str(v["degree"]),
                         help_text="Features x, x², …, x^degree, standardised."),
                  _slider(DEGREE, *LIMITS["degree"], 1, v["degree"], {1: "1", 3: "3", 5: "5", 10: "10", 15: "15"})],
                 className="mb-3"),
        html.Div([dbc.Label("Regularisation", html_for=PENALTY),
                  dbc.Select(id=PENALTY, value=v["penalty"],
                             options=[{"label": lab, "value": key} for key, lab in PENALTIES.items()])],
                 className="mb-3"),
        html.Div([_label("Alpha (log scale)", LOG_ALPHA, value=f"{10 ** v['log_alpha']:.3g}",
                         help_text="Penalty strength; larger alpha, simpler curve."),
                  dcc.Slider(id=LOG_ALPHA, min=ALPHA_LOG_RANGE[0], max=ALPHA_LOG_RANGE[1], step=LOG_STEP,
                             value=v["log_alpha"], updatemode="mouseup", allow_direct_input=False,
                             included=False, disabled=v["penalty"] == "none", className="mb-2",
                             marks={-5: "1e-5", -3: "0.001", -1: "0.1", 1: "10", 3: "1000"})],
                 className="mb-3"),
    ]
    controls = dbc.Card([dbc.CardHeader("Controls"), dbc.CardBody(truth + model)])
    graph_config = {"displaylogo": False, "responsive": True,
                    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}
    results = [
        html.Div(stat_cards(), id=STATS),
        html.Div(diagnosis_alert(None, "Fitting…"), id=DIAGNOSIS),
        html.Div(id=MESSAGE),
        dbc.Card(dbc.CardBody(dcc.Graph(id=FIT_GRAPH, style={"width": "100%", "height": "440px"},
                                        config=graph_config), className="p-2"), className="mb-3"),
        dbc.Row([
            dbc.Col(dbc.Card(dbc.CardBody(dcc.Graph(id=VALIDATION_GRAPH, style={"width": "100%", "height": "360px"},
                                                    config=graph_config), className="p-2")), xl=7, className="mb-3"),
            dbc.Col(dbc.Card(dbc.CardBody(dcc.Graph(id=COEF_GRAPH, style={"width": "100%", "height": "360px"},
                                                    config=graph_config), className="p-2")), xl=5, className="mb-3"),
        ], className="g-3"),
        dbc.Card(dbc.CardBody(_HELP, className="gb-help"), className="mb-3"),
    ]
    return html.Div([
        dcc.Location(id=URL, refresh=False),
        dbc.Row([dbc.Col(controls, lg=3, md=4, className="mb-3"), dbc.Col(results, lg=9, md=8)]),
    ])
