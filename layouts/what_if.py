"""Live what-if: change a case's inputs and watch the model's answer move.

One control per model input, generated from the feature metadata: a slider
for numbers (on a log10 scale where the values span orders of magnitude) and
a dropdown for categories. The form starts from the typical row, a row of the
data (``?row=&split=``) or given values (``?values=<json>``, laid over the
row or the typical row; the explain page's counterfactual links here).
Sliders hold *positions* (the log10 of the value on a log slider); the server
turns positions into values and validates every one of them.
"""

from __future__ import annotations

import math
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.figures.common import PALETTE
from app.security.permissions import Permission
from layouts.features import url_selector
from layouts.model_views import card, graph
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/what-if", title="What-if", permission=Permission.USE_WHAT_IF,
                section="Model", order=60, icon="bi-sliders2-vertical",
                description="Change a case's inputs and watch the model's answer and its reasons move as you drag.")

PREFIX = "whatif"
START = "whatif-start"
SPEC = "whatif-spec"
CONTROLS = "whatif-controls"
SLIDER = "whatif-slider"  # pattern id type: {"type": SLIDER, "feature": name}
CHOICE = "whatif-choice"  # pattern id type: {"type": CHOICE, "feature": name}
SHOWN = "whatif-shown"  # pattern id type: the current value next to a slider's label
START_TYPICAL = "whatif-start-typical"
START_ROW = "whatif-start-row"
START_SPLIT = "whatif-start-split"
START_ROW_GO = "whatif-start-row-go"
START_NOTE = "whatif-start-note"
RESET = "whatif-reset"
BACK = "whatif-back"
HISTORY = "whatif-history"
HISTORY_LIST = "whatif-history-list"
JSON_TEXT = "whatif-json"
COPY = "whatif-copy"
PROBA = "whatif-proba"
FIGKEY = "whatif-figkey"
VERDICT = "whatif-verdict"
VALUES = "whatif-values"
EXPLAIN_LINK = "whatif-explain-link"
LOCAL = "whatif-local"
LOCAL_NOTE = "whatif-local-note"
EXPLAIN_GO = "whatif-explain-go"
MESSAGE = "whatif-message"

#: Slider positions across a numeric feature's range (the step is a round number near range / this).
SLIDER_POSITIONS = 200
#: Significant digits kept of a value read from a slider (removes float noise, keeps data values exact).
LINEAR_DIGITS = 10
LOG_DIGITS = 6
HISTORY_LENGTH = 10
LOCAL_TOP_K = 6
MAX_INDEX = 10**9
HIDDEN = {"display": "none"}
UP = PALETTE["blue"]
DOWN = PALETTE["vermillion"]


# ---------------------------------------------------------------------------
# Slider scales: value <-> position
# ---------------------------------------------------------------------------

def uses_log(meta: dict) -> bool:
    """Return True when a numeric feature gets a log10 slider (metadata hint and a positive range)."""
    return (meta.get("kind") == "numeric" and bool(meta.get("log_scale")) and float(meta["min"]) > 0
            and float(meta["max"]) > float(meta["min"]))


def nice_step(span: float, *, integer: bool) -> float:
    """Return a round step giving about :data:`SLIDER_POSITIONS` positions over ``span``."""
    if not math.isfinite(span) or span <= 0:
        return 1
    step = 10.0 ** math.floor(math.log10(span / SLIDER_POSITIONS))
    if integer:
        return max(1, int(step))
    return step


def slider_range(meta: dict) -> tuple[float, float, float]:
    """Return (min, max, step) of a numeric feature's slider, in positions."""
    lo, hi = float(meta["min"]), float(meta["max"])
    if uses_log(meta):
        a, b = math.log10(lo), math.log10(hi)
        return a, b, (b - a) / SLIDER_POSITIONS
    return lo, hi, nice_step(hi - lo, integer=bool(meta.get("integer")))


def position_of(meta: dict, value: Any) -> Any:
    """Return the control position that shows ``value``."""
    if meta.get("kind") != "numeric":
        return value
    if uses_log(meta):
        return math.log10(max(float(value), float(meta["min"])))
    return value


def value_of(meta: dict, position: Any) -> Any:
    """Return the value a control position stands for (the caller validates it).

    A log slider's position must lie in its range (ValueError otherwise); its
    value is rounded to :data:`LOG_DIGITS` significant digits (to a whole
    number for an integer feature) and kept in the feature's range. Anything
    that is not a finite number is returned as is, for the row validation to
    refuse with its message.
    """
    if meta.get("kind") != "numeric" or isinstance(position, bool) or not isinstance(position, (int, float)):
        return position
    if not math.isfinite(position):
        return position
    if uses_log(meta):
        lo, hi, step = slider_range(meta)
        if not lo - step / 2 <= position <= hi + step / 2:
            raise ValueError(f"{meta['name']}: the slider position {position:g} is outside the slider "
                             f"({lo:.4g} to {hi:.4g}, log10 of {fmt(meta['min'])} to {fmt(meta['max'])}).")
        value = min(max(float(f"{10.0 ** position:.{LOG_DIGITS}g}"), float(meta["min"])), float(meta["max"]))
        if meta.get("integer"):
            # A log slider's positions fall between whole numbers: take the nearest one in range.
            value = float(min(max(round(value), math.ceil(float(meta["min"]))), math.floor(float(meta["max"]))))
    else:
        value = float(f"{float(position):.{LINEAR_DIGITS}g}")
    if meta.get("integer") and value == round(value):
        return int(round(value))
    return value


def spec(meta: list[dict], row: dict, *, model: str, version: int, start: dict) -> dict:
    """Return what the browser needs: each control's scale and starting position, and the start."""
    features = []
    for m in meta:
        features.append({"name": m["name"], "kind": m["kind"], "log": uses_log(m), "integer": bool(m.get("integer")),
                         "base": position_of(m, row[m["name"]]), "value": row[m["name"]]})
    return {"model": model, "version": version, "features": features, "start": start}


# ---------------------------------------------------------------------------
# Controls
# ---------------------------------------------------------------------------

def fmt(value: Any) -> str:
    """Return a value as shown next to its control (4 significant digits)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if value != value or abs(value) >= 1e15:
            return f"{value:.4g}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)


def signed(value: float) -> str:
    """Return a contribution with its sign: 3 significant digits, separators from 1,000."""
    if abs(value) >= 1000:
        return f"{value:+,.0f}"
    return f"{value:+.3g}"


def _label(meta: dict, value: Any, *, slider: bool) -> html.Div:
    name = meta["name"]
    children: list = [html.Span(name, className="form-label mb-0 me-2",
                                style={"wordBreak": "break-word", "overflowWrap": "anywhere", "whiteSpace": "normal"})]
    if slider:
        children.append(dbc.Badge(fmt(value), id={"type": SHOWN, "feature": name}, color="light", text_color="dark",
                                  className="border ms-auto", style={"fontSize": ".85rem"}))
    return html.Div(children, className="d-flex align-items-start justify-content-between mb-1")


def _range_text(meta: dict) -> str:
    text = f"{fmt(meta['min'])} to {fmt(meta['max'])}"
    return text + " (log scale)" if uses_log(meta) else text


def control(meta: dict, value: Any) -> html.Div:
    """Return one labelled control for a feature: slider for numbers, dropdown for categories."""
    name = meta["name"]
    if meta["kind"] == "categorical":
        return html.Div([
            _label(meta, value, slider=False),
            dcc.Dropdown(id={"type": CHOICE, "feature": name}, value=value, clearable=False,
                         options=[{"label": str(v), "value": v} for v in meta["levels"]], optionHeight=40),
        ], className="mb-3")
    lo, hi, step = slider_range(meta)
    disabled = hi <= lo
    return html.Div([
        _label(meta, value, slider=True),
        dcc.Slider(id={"type": SLIDER, "feature": name}, min=lo, max=hi if not disabled else lo + 1, step=step,
                   value=position_of(meta, value), marks=None, updatemode="mouseup", allow_direct_input=False,
                   included=False, disabled=disabled, className="mb-0"),
        html.Div(_range_text(meta), className="gb-help small", style={"marginTop": "-0.2rem"}),
    ], className="mb-3")


def controls(meta: list[dict], row: dict) -> list:
    """Return the controls of every feature, starting at ``row``."""
    return [control(m, row[m["name"]]) for m in meta]


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

CONFIDENCE_STYLE = {"a close call": ("warning", "bi-exclamation-triangle"),
                    "fairly confident": ("info", "bi-info-circle"),
                    "confident": ("success", "bi-check-circle")}


def verdict(prediction: dict, words: str | None = None) -> Any:
    """Return the one-line verdict: winner, margin to the runner-up (in points), how sure."""
    if "value" in prediction:
        text = f"Predicted {fmt(prediction['value'])}"
        if prediction.get("interval"):
            lo, hi = prediction["interval"]
            text += f", likely between {fmt(lo)} and {fmt(hi)}"
        return html.Div(text, className="fw-semibold")
    if prediction.get("proba") is None:
        return html.Div(f"Predicted {prediction['predicted']} (this model gives no probabilities)")
    p = sorted(prediction["proba"], reverse=True)
    margin = 100 * (p[0] - (p[1] if len(p) > 1 else 0.0))
    color, icon = CONFIDENCE_STYLE.get(words or "", ("secondary", "bi-info-circle"))
    return html.Div([
        html.Span(f"{prediction['predicted']}", className="fw-semibold me-1"),
        html.Span(f"leads {prediction['runner_up']} by {margin:.0f} percentage points "
                  f"({100 * p[0]:.0f}% vs {100 * p[1]:.0f}%)" if len(p) > 1 else "", className="me-2"),
        dbc.Badge([html.I(className=f"bi {icon} me-1"), words or ""], color=color,
                  text_color="dark" if color in ("warning", "info") else None),
    ], className="d-flex flex-wrap align-items-center")


def contributions(explanation: dict, *, top_k: int = LOCAL_TOP_K) -> html.Div:
    """Return the largest SHAP contributions of a row as labelled bars (blue up, vermillion down)."""
    features = explanation["features"]
    values = explanation["values"]
    data = explanation.get("data") or [None] * len(features)
    order = sorted(range(len(values)), key=lambda i: -abs(values[i]))
    top = order[:top_k]
    rest = sum(values[i] for i in order[top_k:])
    largest = max([abs(values[i]) for i in top] + [abs(rest), 1e-12])
    rows = []
    for i in top:
        rows.append(_bar(f"{features[i]} = {fmt(data[i])}", values[i], largest))
    if len(order) > top_k:
        n = len(order) - top_k
        rows.append(_bar(f"{n} other feature{'s' if n != 1 else ''}", rest, largest, muted=True))
    space = explanation.get("output_space") or "raw"
    unit = {"probability": "probability", "log-odds": "log-odds", "raw": "model output"}.get(space, space)
    target = explanation.get("target_label")
    towards = f" of {target}" if target is not None else ""
    head = html.Div([
        f"From the average {unit}{towards} ", html.Strong(fmt(explanation["base_value"])),
        " to ", html.Strong(fmt(explanation["output"])), " for this case:",
    ], className="gb-help mb-2")
    return html.Div([head] + rows)


def _bar(label: str, value: float, largest: float, *, muted: bool = False) -> html.Div:
    width = max(1.0, 100 * abs(value) / largest)
    color = "#C8C8C8" if muted else (UP if value >= 0 else DOWN)
    return html.Div([
        html.Div(label, style={"flex": "0 0 45%", "wordBreak": "break-word", "fontSize": ".85rem"}),
        html.Div(html.Div(style={"width": f"{width:.1f}%", "height": "0.9rem", "background": color,
                                 "borderRadius": "2px"}), style={"flex": "1 1 auto", "padding": "0 .5rem"}),
        html.Div(signed(value), style={"flex": "0 0 4.5rem", "textAlign": "right", "fontSize": ".85rem",
                                         "fontVariantNumeric": "tabular-nums"}),
    ], className="d-flex align-items-center mb-1")


# ---------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------

def initial_start(ctx: PageContext) -> dict:
    """Return where the form starts, from the (untrusted) URL; the callbacks validate it."""
    query = ctx.query if isinstance(ctx.query, dict) else {}
    raw_row = query.get("row", "")
    row = int(raw_row) if isinstance(raw_row, str) and raw_row.isdigit() and len(raw_row) < 10 else None
    return {"model": query.get("model") or None,
            "split": query.get("split") if query.get("split") in ("train", "test") else "test",
            "row": row, "values": query.get("values") or None}


def layout(ctx: PageContext):
    """Return the what-if page: inputs on the left, the answer and its reasons on the right."""
    start = initial_start(ctx)
    start_bar = html.Div([
        dbc.Row([
            dbc.Col(dbc.Button("Typical row", id=START_TYPICAL, color="secondary", outline=True, size="sm",
                               title="Median of every number, most common category"), width="auto"),
            dbc.Col(dbc.InputGroup([
                dbc.InputGroupText("Row"),
                dbc.Input(id=START_ROW, type="number", min=0, step=1, max=MAX_INDEX, value=start["row"],
                          placeholder="number", style={"maxWidth": "7rem"}),
                dbc.Select(id=START_SPLIT, value=start["split"],
                           options=[{"label": "test", "value": "test"}, {"label": "train", "value": "train"}],
                           style={"maxWidth": "6rem"}),
                dbc.Button("Load", id=START_ROW_GO, color="secondary", outline=True),
            ], size="sm"), width="auto"),
        ], className="g-2 align-items-center"),
        html.Div(id=START_NOTE, className="gb-help small mt-2"),
    ], className="mb-3")
    tools = html.Div([
        dbc.Button([html.I(className="bi bi-arrow-counterclockwise me-1"), "Reset"], id=RESET, color="secondary",
                   outline=True, size="sm", className="me-2", title="Back to the starting row"),
        dbc.Button([html.I(className="bi bi-arrow-left me-1"), "Step back"], id=BACK, color="secondary",
                   outline=True, size="sm", className="me-2", disabled=True, title="Undo the last change"),
        # The copy runs in the browser; where the page is not served over https (or localhost) browsers
        # offer no clipboard and the button hides itself: the JSON box below can still be copied by hand.
        dcc.Clipboard(id=COPY, content="", title="Copy the current values as JSON",
                      children=html.Span([html.I(className="bi bi-clipboard me-1"), "Copy as JSON"]),
                      copied_children=html.Span([html.I(className="bi bi-clipboard-check me-1"), "Copied"]),
                      className="btn btn-outline-secondary btn-sm"),
    ], className="d-flex flex-wrap align-items-center mb-2")
    inputs = card("Inputs", html.Div([
        start_bar,
        tools,
        html.Div(id=CONTROLS, children=html.Div("Choose a model above.", className="gb-help")),
        html.Details([html.Summary("The values as JSON", className="gb-help"),
                      html.Pre(id=JSON_TEXT, className="small bg-light p-2 mt-2 mb-0",
                               style={"whiteSpace": "pre-wrap", "wordBreak": "break-all"})], className="mt-2"),
    ]), help_text="Drag a slider or pick a category: the answer on the right follows.")
    answer = card("The model's answer", html.Div([
        html.Div(id=VERDICT, className="mb-2"),
        graph(PROBA, title="Prediction", height=220, message="The prediction for the inputs appears here.",
              loading=False),
    ]), help_text="For a classifier the predicted class is highlighted and the gap to the runner-up says how "
                  "close the call is; for a regression, the value with its likely range where the model gives one.")
    local = card("Why, for this case", html.Div([
        html.Div(id=LOCAL_NOTE, className="gb-help small mb-2"),
        dbc.Button([html.I(className="bi bi-lightbulb me-1"), "Explain this case"], id=EXPLAIN_GO, color="primary",
                   size="sm", className="mb-2", style=HIDDEN),
        dcc.Loading(html.Div(id=LOCAL), type="circle", delay_show=250, color=UP),
        dcc.Link([html.I(className="bi bi-box-arrow-up-right me-1"), "Open the full explanation"], id=EXPLAIN_LINK,
                 href="/explain", className="btn btn-outline-primary btn-sm mt-2"),
    ]), help_text="The features that push this case's prediction up (blue) or down (vermillion) the most.")
    history = card("Recent changes", html.Div([
        html.Ol(id=HISTORY_LIST, reversed=True, className="small mb-0 ps-4",
                children=html.Li("No change yet.", className="gb-help", style={"listStyle": "none"})),
    ]), help_text=f"The last {HISTORY_LENGTH} changes, newest first; 'Step back' undoes them one by one.")
    return html.Div([
        url_selector(PREFIX, ctx, split=False),
        dcc.Store(id=START, data=start),
        dcc.Store(id=SPEC),
        dcc.Store(id=FIGKEY),
        dcc.Store(id=VALUES),
        dcc.Store(id=HISTORY, data=[]),
        html.Div(id=MESSAGE),
        dbc.Row([
            dbc.Col(inputs, lg=5),
            # Sticky: the answer stays in view while the user drags a slider far down the form.
            dbc.Col(html.Div([answer, local, history], style={"position": "sticky", "top": "64px"}), lg=7),
        ], className="g-3"),
    ])
