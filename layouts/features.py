"""Feature influence: which inputs the model relies on, and how its output moves with them.

Every chart reads the analysis cache (importances, partial dependence, a
SHAP sample per model version); while the analyses are computing the page
shows their progress and polls until they are ready.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.security.permissions import Permission
from data.explain_views import METHOD_MEANINGS, METHODS
from layouts.model_select import SelectorIds, selector
from layouts.model_views import POLL_MS, card, graph
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/features", title="Feature influence", permission=Permission.VIEW_INFLUENCE,
                section="Model", order=40, icon="bi-bar-chart-steps",
                description="Which inputs the model relies on overall, and how its prediction changes as one "
                            "or two of them change.")

PREFIX = "features"
STATUS = "features-status"
INTERVAL = "features-interval"
READY = "features-ready"
MESSAGE = "features-message"
CLASS = "features-class"
CLASS_ROW = "features-class-row"
METHOD = "features-method"
TOP_K = "features-top-k"
METHOD_HELP = "features-method-help"
IMPORTANCE = "features-importance"
IMPORTANCE_NOTE = "features-importance-note"
PDP_FEATURE = "features-pdp-feature"
PDP_CENTERED = "features-pdp-centered"
PDP_GRAPH = "features-pdp"
PDP_NOTE = "features-pdp-note"
PDP2D_X = "features-pdp2d-x"
PDP2D_Y = "features-pdp2d-y"
PDP2D_GRAPH = "features-pdp2d"
PDP2D_NOTE = "features-pdp2d-note"
DEP_FEATURE = "features-dep-feature"
DEP_COLOR = "features-dep-color"
DEP_GRAPH = "features-dep"
DEP_NOTE = "features-dep-note"

DEFAULT_TOP_K = 15
TOP_K_RANGE = (3, 40)
DEFAULT_METHOD = "permutation"
HIDDEN = {"display": "none"}


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, (list, tuple)) else [children]:
        if child is not None and hasattr(child, "to_plotly_json"):
            yield from _walk(child)


def url_selector(prefix: str, ctx: PageContext, *, split: bool = True):
    """Return the shared selector with the URL's model and version already among the dropdowns' options.

    Dash 4's Dropdown clears a value that is not among its options as soon
    as it mounts; the shared selector starts with no options, so a link's
    ``?model=`` raced with the callback that fills them and was sometimes
    lost (the first model was shown instead). Seeding the options with the
    requested values keeps the link's choice; the fill callback still
    decides what the user may open.
    """
    bar = selector(prefix, ctx, split=split)
    ids = SelectorIds(prefix)
    for component in _walk(bar):
        if getattr(component, "id", None) in (ids.model, ids.version):
            value = getattr(component, "value", None)
            label = value if component.id == ids.model else f"v{value}"
            component.options = [{"label": label, "value": value}] if value is not None else []
    return bar


def method_options() -> list[dict]:
    """Return the importance methods for the switch."""
    return [{"label": label, "value": key} for key, (label, _) in METHODS.items()]


def _label(text: str, control_id: str) -> dbc.Label:
    return dbc.Label(text, html_for=control_id, className="mb-1")


def _note(note_id: str) -> html.Div:
    return html.Div(id=note_id, className="gb-help small mt-1")


def _dropdown(control_id: str, placeholder: str) -> dcc.Dropdown:
    return dcc.Dropdown(id=control_id, options=[], value=None, clearable=False, placeholder=placeholder,
                        optionHeight=44, maxHeight=320)


def layout(ctx: PageContext):
    """Return the feature-influence page: importance, partial dependence, two-way PDP, SHAP dependence."""
    importance = card(
        "Which features matter",
        html.Div([
            dbc.Row([
                dbc.Col([_label("Method", METHOD),
                         dbc.RadioItems(id=METHOD, options=method_options(), value=DEFAULT_METHOD, inline=True)],
                        md=8),
                dbc.Col([_label("Features shown", TOP_K),
                         dcc.Slider(id=TOP_K, min=TOP_K_RANGE[0], max=TOP_K_RANGE[1], step=1, value=DEFAULT_TOP_K,
                                    marks={3: "3", 10: "10", 20: "20", 30: "30", 40: "40"},
                                    allow_direct_input=False, included=True, updatemode="mouseup")], md=4),
            ], className="g-3 mb-2"),
            html.P(METHOD_MEANINGS[DEFAULT_METHOD], id=METHOD_HELP, className="gb-help mb-2"),
            graph(IMPORTANCE, title="Feature importance", height=300),
            _note(IMPORTANCE_NOTE),
        ]),
        help_text="Three ways of ranking the inputs; they answer different questions, so they need not agree.")
    pdp = card(
        "How one feature changes the prediction",
        html.Div([
            dbc.Row([
                dbc.Col([_label("Feature", PDP_FEATURE), _dropdown(PDP_FEATURE, "Choose a feature")], md=7),
                dbc.Col(dbc.Switch(id=PDP_CENTERED, value=False,
                                   label="Centre the lines (each starts at 0: shows shape, not level)"),
                        md=5, className="pt-md-4"),
            ], className="g-3 mb-2"),
            graph(PDP_GRAPH, title="Partial dependence", height=420),
            _note(PDP_NOTE),
        ]),
        help_text="Partial dependence: the average prediction when the feature is set to each value for every row "
                  "(thick line); each thin line (ICE) is one row.")
    pdp2d = card(
        "Two features together",
        html.Div([
            dbc.Row([
                dbc.Col([_label("Across", PDP2D_X), _dropdown(PDP2D_X, "First feature")], md=6),
                dbc.Col([_label("Up", PDP2D_Y), _dropdown(PDP2D_Y, "Second feature")], md=6),
            ], className="g-3 mb-2"),
            graph(PDP2D_GRAPH, title="Two-way partial dependence", height=440),
            _note(PDP2D_NOTE),
        ]),
        help_text="The average prediction with both features set to each pair of values: shows interactions "
                  "that one-feature plots hide.")
    dependence = card(
        "SHAP dependence",
        html.Div([
            dbc.Row([
                dbc.Col([_label("Feature", DEP_FEATURE), _dropdown(DEP_FEATURE, "Choose a feature")], md=6),
                dbc.Col([_label("Colour by", DEP_COLOR), _dropdown(DEP_COLOR, "Second feature")], md=6),
            ], className="g-3 mb-2"),
            graph(DEP_GRAPH, title="SHAP dependence", height=420),
            _note(DEP_NOTE),
        ]),
        help_text="Each point is one sampled row: its value of the feature against how much that value pushed "
                  "its prediction; colour shows a second feature, so interactions stand out.")
    class_row = html.Div(
        dbc.Row([dbc.Col([_label("Class to explain", CLASS), _dropdown(CLASS, "Choose a class")], md=4, lg=3),
                 dbc.Col(html.Div("This model has several classes: the charts below show influence on the "
                                  "predicted probability of the class you pick.", className="gb-help pt-md-4"))],
                className="g-3"),
        id=CLASS_ROW, className="gb-card p-3 mb-3", style=HIDDEN)
    return html.Div([
        url_selector(PREFIX, ctx, split=False),
        dcc.Interval(id=INTERVAL, interval=POLL_MS, disabled=True),
        dcc.Store(id=READY),
        html.Div(id=MESSAGE),
        html.Div(id=STATUS),
        class_row,
        importance,
        pdp,
        dependence,
        pdp2d,
    ])
