"""Labs: the decision-boundary explorer (every control refits a classifier)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.ml.boundary import DATASETS, DEFAULTS, KERNELS, LIMITS, MODELS
from app.security.permissions import Permission
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/labs/boundary", title="Decision boundary", permission=Permission.USE_LABS,
                section="Labs", order=60, icon="bi-bounding-box",
                description="Fit a classifier to two-feature toy data and watch its decision regions, "
                            "train and test accuracy change as you move C, gamma, k or the tree depth.")

URL = "boundary-url"
DATASET = "boundary-dataset"
N_SAMPLES = "boundary-n-samples"
NOISE = "boundary-noise"
SEED = "boundary-seed"
TEST_FRACTION = "boundary-test-fraction"
MODEL = "boundary-model"
KERNEL = "boundary-kernel"
LOG_C = "boundary-log-c"
LOG_GAMMA = "boundary-log-gamma"
DEGREE = "boundary-degree"
K = "boundary-k"
MAX_DEPTH = "boundary-max-depth"
COMPARE = "boundary-compare"
GRAPH = "boundary-graph"
STATS = "boundary-stats"
READING = "boundary-reading"
MESSAGE = "boundary-message"
STORE = "boundary-store"
# Groups shown or hidden with the model, and the live value next to each slider label.
GROUP_KERNEL = "boundary-group-kernel"
GROUP_C = "boundary-group-c"
GROUP_GAMMA = "boundary-group-gamma"
GROUP_DEGREE = "boundary-group-degree"
GROUP_K = "boundary-group-k"
GROUP_DEPTH = "boundary-group-depth"
SLIDER_VALUES = {  # slider id -> id of the span showing its current value
    N_SAMPLES: "boundary-n-samples-value",
    NOISE: "boundary-noise-value",
    TEST_FRACTION: "boundary-test-fraction-value",
    LOG_C: "boundary-log-c-value",
    LOG_GAMMA: "boundary-log-gamma-value",
    DEGREE: "boundary-degree-value",
    K: "boundary-k-value",
    MAX_DEPTH: "boundary-max-depth-value",
}
#: Sliders whose value is log10 of the real value (the label shows 10**value).
LOG_SLIDERS = (LOG_C, LOG_GAMMA)

LOG_STEP = 0.1
N_STEP = 10
NOISE_STEP = 0.05
FRACTION_STEP = 0.05
C_LOG_RANGE = (math.log10(LIMITS["C"][0]), math.log10(LIMITS["C"][1]))
GAMMA_LOG_RANGE = (math.log10(LIMITS["gamma"][0]), math.log10(LIMITS["gamma"][1]))


# ---------------------------------------------------------------------------
# Control state <-> URL query. The query is untrusted: every field is parsed
# on its own and falls back to its default when it is missing or invalid.
# ---------------------------------------------------------------------------

def _snap(value: float, step: float, lo: float, hi: float) -> float:
    return round(min(hi, max(lo, round(value / step) * step)), 6)


def _number(query: dict, key: str, default: float, lo: float, hi: float) -> float:
    raw = query.get(key)
    if not isinstance(raw, str) or len(raw) > 24:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    if not math.isfinite(value) or not lo <= value <= hi:
        return default
    return value


def _option(query: dict, key: str, default: str, options) -> str:
    raw = query.get(key)
    return raw if isinstance(raw, str) and raw in options else default


def values_from_query(query: Any) -> dict[str, Any]:
    """Return the initial control values (slider units) from an untrusted URL query."""
    query = query if isinstance(query, dict) else {}
    d = DEFAULTS
    c = _number(query, "C", d.C, *LIMITS["C"])
    gamma = _number(query, "gamma", d.gamma, *LIMITS["gamma"])
    return {
        "dataset": _option(query, "dataset", d.dataset, DATASETS),
        "n_samples": int(_snap(_number(query, "n", d.n_samples, *LIMITS["n_samples"]), 1, *LIMITS["n_samples"])),
        "noise": _snap(_number(query, "noise", d.noise, *LIMITS["noise"]), NOISE_STEP / 5, *LIMITS["noise"]),
        "seed": int(_snap(_number(query, "seed", d.seed, *LIMITS["seed"]), 1, *LIMITS["seed"])),
        "test_fraction": _snap(_number(query, "test", d.test_fraction, *LIMITS["test_fraction"]),
                               FRACTION_STEP / 5, *LIMITS["test_fraction"]),
        "model": _option(query, "model", d.model, MODELS),
        "kernel": _option(query, "kernel", d.kernel, KERNELS),
        "log_c": _snap(math.log10(c), LOG_STEP, *C_LOG_RANGE),
        "log_gamma": _snap(math.log10(gamma), LOG_STEP, *GAMMA_LOG_RANGE),
        "degree": int(_snap(_number(query, "degree", d.degree, *LIMITS["degree"]), 1, *LIMITS["degree"])),
        "k": int(_snap(_number(query, "k", d.k, *LIMITS["k"]), 1, *LIMITS["k"])),
        "max_depth": int(_snap(_number(query, "depth", d.max_depth, *LIMITS["max_depth"]), 1,
                               *LIMITS["max_depth"])),
    }


def search_string(settings) -> str:
    """Return the URL query (``?...``) that reproduces ``settings`` (a BoundarySettings)."""
    s = settings
    return "?" + urlencode({
        "dataset": s.dataset, "n": s.n_samples, "noise": f"{s.noise:g}", "seed": s.seed,
        "test": f"{s.test_fraction:g}", "model": s.model, "kernel": s.kernel,
        "C": f"{s.C:.4g}", "gamma": f"{s.gamma:.4g}", "degree": s.degree, "k": s.k, "depth": s.max_depth,
    })


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
    # updatemode="mouseup": the model refits when the handle is released, not on every pixel;
    # drag_value feeds only the live label next to the slider (in the browser).
    return dcc.Slider(id=control_id, min=lo, max=hi, step=step, value=value, marks=marks,
                      updatemode="mouseup", allow_direct_input=False, included=False,
                      className="mb-2")


def _fmt_pow10(value: float) -> str:
    return f"{10 ** value:.3g}"


def _log_marks(lo: float, hi: float) -> dict:
    return {int(e): f"{10 ** e:g}" for e in range(int(math.ceil(lo)), int(math.floor(hi)) + 1)}


def _group(group_id: str, children: list, visible: bool) -> html.Div:
    return html.Div(children, id=group_id, className="mb-3", style=None if visible else {"display": "none"})


def _stat(label: str, value: str) -> dbc.Col:
    return dbc.Col(dbc.Card(dbc.CardBody([
        html.Div(label, className="gb-stat-label"),
        html.Div(value, className="gb-stat"),
    ], className="py-2 px-3")), xs=6, md=3, className="mb-2")


def stat_cards(*, train_accuracy=None, test_accuracy=None, n_support=None, fit_ms=None,
               n_train: int | None = None) -> dbc.Row:
    """Return the row of headline numbers (dashes for missing values)."""
    def pct(v):
        return "–" if v is None else f"{v:.1%}"
    return dbc.Row([
        _stat("Train accuracy", pct(train_accuracy)),
        _stat("Test accuracy", pct(test_accuracy)),
        _stat("Support vectors", "–" if n_support is None else
              (f"{n_support} / {n_train}" if n_train else str(n_support))),
        _stat("Fit time", "–" if fit_ms is None else f"{fit_ms:.1f} ms"),
    ], className="g-2")


def visible_groups(model: str, kernel: str) -> dict[str, bool]:
    """Return which model-specific control groups are shown for ``model`` and ``kernel``."""
    svm = model == "svm"
    return {
        GROUP_KERNEL: svm,
        GROUP_C: model in ("svm", "logreg"),
        GROUP_GAMMA: svm and kernel != "linear",
        GROUP_DEGREE: svm and kernel == "poly",
        GROUP_K: model == "knn",
        GROUP_DEPTH: model == "tree",
    }


_HELP = [
    html.P([
        "Each dot is a generated example with two measurements (x1, x2) and one of two classes. ",
        "Circles are the training points the model learns from; diamonds are held-out test points it never sees. ",
        "The shading shows what the model would predict anywhere on the plane, and the black line is where it "
        "switches class.",
    ], className="mb-1"),
    html.P([
        html.Strong("What to try: "),
        "with the SVM, raise C and gamma together. The boundary starts to wrap around single training points: "
        "training accuracy climbs to 100% while test accuracy falls. That gap is memorising (overfitting). "
        "Lower them and the boundary becomes too simple for both (underfitting). Switch on ",
        html.Em("Compare"), " to keep the previous boundary as a dotted pink outline.",
    ], className="mb-0"),
]


def layout(ctx: PageContext):
    """Return the boundary lab: controls on the left, the regions and numbers on the right."""
    v = values_from_query(getattr(ctx, "query", {}))
    shown = visible_groups(v["model"], v["kernel"])
    data_controls = [
        html.H6("Data", className="text-uppercase gb-stat-label mb-2"),
        html.Div([dbc.Label("Data set", html_for=DATASET),
                  dbc.Select(id=DATASET, value=v["dataset"],
                             options=[{"label": lab, "value": key} for key, lab in DATASETS.items()])],
                 className="mb-3"),
        html.Div([_label("Samples", N_SAMPLES, value=str(v["n_samples"])),
                  _slider(N_SAMPLES, *LIMITS["n_samples"], N_STEP, v["n_samples"],
                          {20: "20", 250: "250", 500: "500", 750: "750", 1000: "1000"})], className="mb-3"),
        html.Div([_label("Noise", NOISE, value=f"{v['noise']:g}"),
                  _slider(NOISE, *LIMITS["noise"], NOISE_STEP, v["noise"], {0: "0", 0.5: "0.5", 1: "1"})],
                 className="mb-3"),
        html.Div([_label("Test fraction", TEST_FRACTION, value=f"{v['test_fraction']:.0%}"),
                  _slider(TEST_FRACTION, *LIMITS["test_fraction"], FRACTION_STEP, v["test_fraction"],
                          {0.1: "10%", 0.3: "30%", 0.5: "50%"})], className="mb-3"),
        html.Div([dbc.Label("Seed", html_for=SEED),
                  dbc.Input(id=SEED, type="number", min=LIMITS["seed"][0], max=LIMITS["seed"][1], step=1,
                            value=v["seed"], debounce=True)], className="mb-3"),
    ]
    model_controls = [
        html.H6("Model", className="text-uppercase gb-stat-label mb-2 mt-2"),
        html.Div([dbc.Label("Classifier", html_for=MODEL),
                  dbc.Select(id=MODEL, value=v["model"],
                             options=[{"label": lab, "value": key} for key, lab in MODELS.items()])],
                 className="mb-3"),
        _group(GROUP_KERNEL, [dbc.Label("Kernel", html_for=KERNEL),
                              dbc.Select(id=KERNEL, value=v["kernel"],
                                         options=[{"label": lab, "value": key} for key, lab in KERNELS.items()])],
               shown[GROUP_KERNEL]),
        _group(GROUP_C, [_label("C (log scale)", LOG_C, value=_fmt_pow10(v["log_c"]),
                                help_text="High C: fewer training errors allowed, tighter fit."),
                         _slider(LOG_C, *C_LOG_RANGE, LOG_STEP, v["log_c"], _log_marks(*C_LOG_RANGE))],
               shown[GROUP_C]),
        _group(GROUP_GAMMA, [_label("Gamma (log scale)", LOG_GAMMA, value=_fmt_pow10(v["log_gamma"]),
                                    help_text="High gamma: each point's influence reaches less far."),
                             _slider(LOG_GAMMA, *GAMMA_LOG_RANGE, LOG_STEP, v["log_gamma"],
                                     _log_marks(*GAMMA_LOG_RANGE))],
               shown[GROUP_GAMMA]),
        _group(GROUP_DEGREE, [_label("Polynomial degree", DEGREE, value=str(v["degree"])),
                              _slider(DEGREE, *LIMITS["degree"], 1, v["degree"], {i: str(i) for i in range(2, 6)})],
               shown[GROUP_DEGREE]),
        _group(GROUP_K, [_label("Neighbours k", K, value=str(v["k"]),
                                help_text="Small k: jagged boundary; large k: smooth."),
                         _slider(K, *LIMITS["k"], 1, v["k"], {1: "1", 10: "10", 25: "25", 50: "50"})],
               shown[GROUP_K]),
        _group(GROUP_DEPTH, [_label("Maximum depth", MAX_DEPTH, value=str(v["max_depth"])),
                             _slider(MAX_DEPTH, *LIMITS["max_depth"], 1, v["max_depth"],
                                     {1: "1", 5: "5", 10: "10", 15: "15", 20: "20"})],
               shown[GROUP_DEPTH]),
        dbc.Switch(id=COMPARE, label="Compare: keep the previous boundary as an outline", value=False,
                   className="mt-2"),
    ]
    controls = dbc.Card([dbc.CardHeader("Controls"), dbc.CardBody(data_controls + model_controls)])
    results = [
        html.Div(stat_cards(), id=STATS),
        dbc.Alert(id=READING, color="info", className="py-2 mb-2", children="Fitting…"),
        html.Div(id=MESSAGE),
        dbc.Card(dbc.CardBody(dcc.Loading(dcc.Graph(
            id=GRAPH, style={"width": "100%", "height": "560px"},
            config={"displaylogo": False, "responsive": True,
                    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}),
            type="circle", delay_show=400), className="p-2"), className="mb-3"),
        dbc.Card(dbc.CardBody(_HELP, className="gb-help"), className="mb-3"),
    ]
    return html.Div([
        dcc.Location(id=URL, refresh=False),
        dcc.Store(id=STORE, storage_type="memory"),
        dbc.Row([dbc.Col(controls, lg=3, md=4, className="mb-3"), dbc.Col(results, lg=9, md=8)]),
    ])
