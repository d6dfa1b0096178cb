"""Explain a prediction: why one row got its answer, what would change it, which known rows are like it.

A row is chosen by its number in the train or test data (``?row=`` in the
URL: the confusion-matrix drill-down links here with
``/explain?model=..&version=..&split=..&row=..``), from the model's most
confident mistakes, or by entering feature values (``?values=<json>``, laid
over the row or the typical row). Row-level data needs the row-level
permission on the model; entered values do not.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.security.permissions import Permission
from layouts.features import url_selector
from layouts.model_views import card, graph
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/explain", title="Explain a prediction", permission=Permission.VIEW_INFLUENCE,
                section="Model", order=50, icon="bi-lightbulb",
                description="Why the model gave one row its answer, the smallest change that would alter it, "
                            "and the known rows most like it.")

PREFIX = "explain"
REQUEST = "explain-request"
EXPLANATION = "explain-explanation"
MESSAGE = "explain-message"
# Choosing a row.
SOURCE_TABS = "explain-source-tabs"
INDEX = "explain-index"
INDEX_GO = "explain-index-go"
INDEX_HELP = "explain-index-help"
MISTAKES = "explain-mistakes"
MISTAKE = "explain-mistake"  # pattern id type: {"type": MISTAKE, "row": n}
VALUES_FORM = "explain-values-form"
VALUE = "explain-value"  # pattern id type: {"type": VALUE, "feature": name}
VALUES_GO = "explain-values-go"
TYPICAL_GO = "explain-typical-go"
# The explanation.
SUMMARY = "explain-summary"
ROW_TABLE = "explain-row-table"
TOP_K = "explain-top-k"
WATERFALL = "explain-waterfall"
WHATIF_LINK = "explain-whatif-link"
# Counterfactual.
LOCKS = "explain-locks"
DESIRED = "explain-desired"
DESIRED_ROW = "explain-desired-row"
TARGET = "explain-target"
TARGET_ROW = "explain-target-row"
CF_GO = "explain-cf-go"
CF_RESULT = "explain-cf-result"
CF_MESSAGE = "explain-cf-message"
CF_APPLY = "explain-cf-apply"
# Nearest rows.
NEAREST = "explain-nearest"

DEFAULT_TOP_K = 8
TOP_K_RANGE = (3, 25)
HIDDEN = {"display": "none"}
MAX_INDEX = 10**9


def initial_request(ctx: PageContext) -> dict:
    """Return the row asked for in the (untrusted) URL; the callbacks validate it.

    ``?row=12&split=test`` asks for a row by number, ``?values=<json>`` for
    entered values (laid over ``row`` when both are given); without either the
    typical row is explained.
    """
    query = ctx.query if isinstance(ctx.query, dict) else {}
    split = query.get("split") if query.get("split") in ("train", "test") else "test"
    raw_row = query.get("row", "")
    row = int(raw_row) if isinstance(raw_row, str) and raw_row.isdigit() and len(raw_row) < 10 else None
    request: dict = {"model": query.get("model") or None, "split": split}
    if query.get("values"):
        request.update(source="values", values=query["values"], base_row=row)
    elif row is not None:
        request.update(source="index", row=row)
    else:
        request.update(source="typical")
    return request


def _choose(ctx: PageContext, request: dict) -> html.Div:
    by_index = dbc.Tab(label="By row number", tab_id="index", children=html.Div([
        dbc.Row([
            dbc.Col([dbc.Label("Row number", html_for=INDEX),
                     dbc.Input(id=INDEX, type="number", min=0, step=1, max=MAX_INDEX,
                               value=request.get("row") if request.get("source") == "index" else None,
                               placeholder="e.g. 12")], md=4),
            dbc.Col(dbc.Button("Explain this row", id=INDEX_GO, color="primary", className="mt-md-4"), md="auto"),
            dbc.Col(dbc.Button("Explain a typical row", id=TYPICAL_GO, color="secondary", outline=True,
                               className="mt-md-4"), md="auto"),
        ], className="g-2 align-items-start"),
        html.Div(id=INDEX_HELP, className="gb-help small mt-2",
                 children="Rows of the data chosen above (test or train), numbered from 0."),
    ], className="pt-3"))
    mistakes = dbc.Tab(label="Most confident mistakes", tab_id="mistakes", children=html.Div(
        html.Div(id=MISTAKES, className="pt-3", children=html.Div("Choose a model above.", className="gb-help")),
    ))
    values = dbc.Tab(label="Enter values", tab_id="values", children=html.Div([
        html.Div(id=VALUES_FORM, className="pt-3", children=html.Div("Choose a model above.", className="gb-help")),
        dbc.Button("Explain these values", id=VALUES_GO, color="primary", className="mt-2"),
    ]))
    active = {"index": "index", "values": "values"}.get(request.get("source"), "index")
    return card("Choose a row", dbc.Tabs([by_index, mistakes, values], id=SOURCE_TABS, active_tab=active),
                help_text="Pick a row of the reference data, one of the model's most confident wrong answers, "
                          "or type in a case of your own.")


def _explanation() -> html.Div:
    controls = dbc.Row([
        dbc.Col(html.Div(id=SUMMARY), md=8),
        dbc.Col([dbc.Label("Contributions shown", html_for=TOP_K, className="mb-0"),
                 dcc.Slider(id=TOP_K, min=TOP_K_RANGE[0], max=TOP_K_RANGE[1], step=1, value=DEFAULT_TOP_K,
                            marks={3: "3", 8: "8", 15: "15", 25: "25"}, allow_direct_input=False,
                            updatemode="mouseup")], md=4),
    ], className="g-3 mb-2")
    return card("Why this prediction", html.Div([
        controls,
        graph(WATERFALL, title="Why this prediction", height=320, message="Choose a row above."),
        html.Div([
            dcc.Link([html.I(className="bi bi-sliders me-1"), "Open this row in the what-if form"], id=WHATIF_LINK,
                     href="/what-if", className="btn btn-outline-primary btn-sm me-2"),
        ], className="mt-2"),
        html.Details([html.Summary("All feature values of this row", className="gb-help"),
                      html.Div(id=ROW_TABLE, className="mt-2")], className="mt-3"),
    ]), help_text="SHAP contributions: starting from the model's average prediction, each feature's value pushes "
                  "this prediction up or down; together they add up exactly to the prediction.")


def _counterfactual() -> html.Div:
    return card("What would change the answer", html.Div([
        dbc.Row([
            dbc.Col([dbc.Label("Keep these features fixed", html_for=LOCKS),
                     dcc.Dropdown(id=LOCKS, options=[], value=[], multi=True,
                                  placeholder="None: every feature may change")], md=12),
        ], className="g-2 mb-2"),
        dbc.Row([
            dbc.Col([dbc.Label("Class to reach", html_for=DESIRED),
                     dcc.Dropdown(id=DESIRED, options=[], value=None, clearable=False)],
                    id=DESIRED_ROW, style=HIDDEN, md=4),
            dbc.Col([dbc.Label("Prediction to reach", html_for=TARGET),
                     dbc.Input(id=TARGET, type="number", value=None, placeholder="a value")],
                    id=TARGET_ROW, style=HIDDEN, md=4),
            dbc.Col(dbc.Button("Find the smallest change", id=CF_GO, color="primary"), md="auto",
                    className="align-self-end"),
        ], className="g-2"),
        html.Div(id=CF_MESSAGE, className="mt-2"),
        dcc.Loading(html.Div(id=CF_RESULT, className="mt-2"), type="circle", delay_show=300, color="#0072B2"),
        dcc.Link([html.I(className="bi bi-box-arrow-in-right me-1"), "Apply to the what-if form"], id=CF_APPLY,
                 href="/what-if", className="btn btn-primary btn-sm mt-2", style=HIDDEN),
    ]), help_text="A counterfactual: the closest case, within the ranges seen in the data, for which the model "
                  "answers differently. Lock what cannot change in reality (age, history...).")


def _nearest() -> html.Div:
    return card("Most similar known rows", html.Div(id=NEAREST, children=html.Div("Choose a row above.",
                                                                                  className="gb-help")),
                help_text="The rows of the chosen data closest to this one (numbers scaled by their typical "
                          "spread; a differing category counts as one), with what really happened.")


def layout(ctx: PageContext):
    """Return the explain page: choose a row, its SHAP waterfall, a counterfactual, the nearest rows."""
    request = initial_request(ctx)
    return html.Div([
        url_selector(PREFIX, ctx, split=True),
        dcc.Store(id=REQUEST, data=request),
        dcc.Store(id=EXPLANATION),
        html.Div(id=MESSAGE),
        _choose(ctx, request),
        _explanation(),
        _counterfactual(),
        _nearest(),
    ])


# ---------------------------------------------------------------------------
# Pieces the callbacks fill in
# ---------------------------------------------------------------------------

def waiting() -> html.Div:
    """Return the neutral text shown before a model is chosen."""
    return html.Div("Choose a model above.", className="gb-help")


def show(value) -> str:
    """Return a value for a table cell (4 significant digits for floats)."""
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, float):
        if value == value and abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return str(value)


def pct(p: float | None) -> str:
    """Return a probability as a percentage."""
    return "–" if p is None else f"{100 * p:.0f}%"


def summary(info: dict, prediction: dict, *, threshold_note: str = "") -> html.Div:
    """Return the headline of an explanation: which row, what the model says, what was true."""
    parts: list = [html.Div(info["label"], className="gb-stat-label mb-1")]
    if "value" in prediction:
        said = f"Predicted {show(prediction['value'])}"
        if prediction.get("interval"):
            lo, hi = prediction["interval"]
            said += f" (interval {show(lo)} to {show(hi)})"
    elif prediction.get("proba") is not None:
        said = (f"Predicted {prediction['predicted']} with {pct(max(prediction['proba']))} "
                f"(runner-up {prediction['runner_up']}: {pct(sorted(prediction['proba'])[-2])})")
    else:
        said = f"Predicted {prediction.get('predicted')}"
    parts.append(html.Div(said, className="fw-semibold"))
    if "true" in info:
        true = info["true"]
        if "value" in prediction:
            error = prediction["value"] - float(true)
            parts.append(html.Div(f"True value {show(true)}: the prediction is off by {error:+.4g}."))
        else:
            right = str(true) == str(prediction.get("predicted"))
            icon = "bi bi-check-circle text-success me-1" if right else "bi bi-x-circle text-danger me-1"
            parts.append(html.Div([html.I(className=icon),
                                   f"True class {true}: the model is {'right' if right else 'wrong'}."]))
    if threshold_note:
        parts.append(html.Div(threshold_note, className="gb-help small"))
    return html.Div(parts)


def row_table(row: dict) -> dbc.Table:
    """Return every feature value of a row as a two-column table."""
    body = [html.Tr([html.Td(name, style={"wordBreak": "break-word"}), html.Td(show(value))])
            for name, value in row.items()]
    return dbc.Table([html.Thead(html.Tr([html.Th("Feature"), html.Th("Value")])), html.Tbody(body)],
                     size="sm", striped=True, className="gb-table mb-0")


def mistakes_list(items: list[dict], *, task: str, split: str) -> html.Div:
    """Return the list of most confident mistakes (or largest errors), each a button that explains it."""
    if not items:
        return html.Div(f"The model makes no mistake on the {split} data.", className="gb-help")
    head = ["Row", "True", "Predicted", "Error" if task == "regression" else "Confidence", ""]
    rows = []
    for item in items:
        last = f"{item['error']:+.4g}" if task == "regression" else pct(item["confidence"])
        rows.append(html.Tr([html.Td(str(item["row"])), html.Td(show(item["true"])), html.Td(show(item["predicted"])),
                             html.Td(last),
                             html.Td(dbc.Button("Explain", id={"type": MISTAKE, "row": item["row"]}, size="sm",
                                                color="primary", outline=True))]))
    what = ("The rows the model predicts worst" if task == "regression"
            else "Wrong answers the model was most sure of")
    return html.Div([
        html.Div(f"{what} ({split} data).", className="gb-help mb-2"),
        dbc.Table([html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)], size="sm", hover=True,
                  className="gb-table mb-0"),
    ])


def values_form(meta: list[dict], row: dict) -> html.Div:
    """Return one input per feature, prefilled with ``row``; full names wrap, never truncated."""
    fields = []
    for m in meta:
        name = m["name"]
        control_id = {"type": VALUE, "feature": name}
        if m["kind"] == "categorical":
            control = dcc.Dropdown(id=control_id, options=[{"label": str(v), "value": v} for v in m["levels"]],
                                   value=row.get(name), clearable=False)
        else:
            step = 1 if m.get("integer") else "any"
            control = dbc.Input(id=control_id, type="number", min=m["min"], max=m["max"], step=step,
                                value=row.get(name), debounce=True)
        hint = (f"{show(m['min'])} to {show(m['max'])}" if m["kind"] == "numeric"
                else f"{len(m['levels'])} categories")
        fields.append(dbc.Col([
            html.Label(name, htmlFor=str(name), className="form-label mb-0", style={"wordBreak": "break-word"}),
            html.Div(hint, className="gb-help small mb-1"),
            control,
        ], xs=12, sm=6, lg=4, className="mb-2"))
    return html.Div([
        html.Div("Start from a typical row (median values, most common categories) and change what you like.",
                 className="gb-help mb-2"),
        dbc.Row(fields, className="g-2"),
    ])


def counterfactual_block(result: dict, rows: list[dict]) -> html.Div:
    """Return the before/after table of a counterfactual and what it means."""
    head = html.Thead(html.Tr([html.Th("Feature"), html.Th("Now"), html.Th("Would need to be"), html.Th("Change")]))
    body = []
    for r in rows:
        style = {"fontWeight": 600, "borderTop": "2px solid #7F7F7F"} if r["kind"] == "prediction" else None
        body.append(html.Tr([html.Td(r["feature"], style={"wordBreak": "break-word"}), html.Td(r["before"]),
                             html.Td(r["after"]), html.Td(r["change"])], style=style))
    table = dbc.Table([head, html.Tbody(body)], size="sm", className="gb-table mb-1")
    found = result.get("found")
    icon = "bi bi-check2-circle me-2" if found else "bi bi-exclamation-circle me-2"
    note = result.get("message", "")
    extra = ("" if found else " It is shown so you can see how far the search got; "
             "unlock features or raise the budget to look further.")
    return html.Div([
        dbc.Alert([html.I(className=icon), note + extra], color="success" if found else "warning",
                  className="py-2 mb-2"),
        table,
        html.Div(f"{result.get('n_evals', 0):,} candidate rows were tried; distance {result.get('distance', 0):.3g} "
                 "(in typical spreads of the changed numbers, plus one per changed category).",
                 className="gb-help small"),
    ])


def nearest_table(items: list[dict], row: dict, *, task: str, split: str) -> html.Div:
    """Return the nearest rows with their true labels, next to the explained row."""
    if not items:
        return html.Div(f"The {split} data has no other row.", className="gb-help")
    features = list(row)
    head = ["Row", "Distance", "True", "Predicted"] + features
    this = html.Tr([html.Td("This row"), html.Td("0"), html.Td("–"), html.Td("–")]
                   + [html.Td(show(row[f])) for f in features], className="table-active")
    body = [this]
    for item in items:
        confidence = item.get("confidence")
        predicted = show(item["predicted"]) + ("" if confidence is None else f" ({pct(confidence)})")
        body.append(html.Tr([html.Td(str(item["row"])), html.Td(f"{item['distance']:.3g}"),
                             html.Td(show(item["true"])), html.Td(predicted, style={"whiteSpace": "nowrap"})]
                            + [html.Td(show(item["values"][f]),
                                       className="fw-semibold" if item["values"][f] != row[f] else None)
                               for f in features]))
    header = html.Thead(html.Tr([html.Th(h, style={"whiteSpace": "nowrap", "textTransform": "none"}) for h in head]))
    return html.Div([
        html.Div(f"From the {split} data; values that differ from this row are in bold.", className="gb-help mb-2"),
        html.Div(dbc.Table([header, html.Tbody(body)], size="sm", className="gb-table mb-0"),
                 style={"overflowX": "auto"}),
    ])
