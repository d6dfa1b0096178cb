"""Overview: one card per model the user may see, with its headline numbers and links to each view."""

from __future__ import annotations

from dash import dcc, html

from app.security.permissions import Permission
from layouts.page import PageContext, PageSpec

PAGE = PageSpec(path="/", title="Overview", permission=Permission.VIEW_OVERVIEW, section="Main", order=0,
                icon="bi-grid-1x2",
                description="Every model you may see: what it predicts, how well it did on held-out data, "
                            "whether its analyses are ready, and the way into each view.")

CARDS = "overview-cards"
REFRESH = "overview-refresh"
#: How often the cards refresh while analyses are computing (milliseconds).
REFRESH_MS = 3000

#: The model views a card links to: (path, label, icon, permission, tasks it applies to or None for all).
VIEWS = (
    ("/performance", "Performance", "bi-speedometer2", Permission.VIEW_METRICS, None),
    ("/threshold", "Threshold", "bi-sliders", Permission.VIEW_METRICS, ("binary",)),
    ("/confusion-matrix", "Confusion matrix", "bi-grid-3x3", Permission.VIEW_CONFUSION_MATRIX,
     ("binary", "multiclass")),
    ("/features", "Feature influence", "bi-bar-chart-steps", Permission.VIEW_INFLUENCE, None),
    ("/explain", "Explain a prediction", "bi-search", Permission.VIEW_INFLUENCE, None),
    ("/what-if", "What-if", "bi-joystick", Permission.USE_WHAT_IF, None),
    ("/monitoring", "Monitoring", "bi-activity", Permission.VIEW_MONITORING, None),
)


def layout(ctx: PageContext):
    """Return the overview; the cards are filled by a callback that applies the user's grants."""
    return html.Div([
        # Fires once on load, then every few seconds only while some analyses are still computing.
        dcc.Interval(id=REFRESH, interval=REFRESH_MS, n_intervals=0, disabled=False, max_intervals=-1),
        dcc.Loading(html.Div(id=CARDS, className="row g-3"), type="circle", delay_show=400, color="#0072B2"),
    ])
