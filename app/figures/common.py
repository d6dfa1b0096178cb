"""Shared look for every figure: palette, fonts, empty states."""

from __future__ import annotations

import plotly.graph_objects as go

#: Okabe-Ito, safe for the common forms of colour blindness.
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "pink": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
    "grey": "#7F7F7F",
}
SEQUENCE = [
    PALETTE["blue"],
    PALETTE["orange"],
    PALETTE["green"],
    PALETTE["vermillion"],
    PALETTE["pink"],
    PALETTE["sky"],
    PALETTE["yellow"],
    PALETTE["black"],
]
TRAIN_COLOR = PALETTE["sky"]
TEST_COLOR = PALETTE["blue"]
#: Sequential scale for heatmaps (light to dark blue), readable in greyscale.
SEQUENTIAL = [[0.0, "#f7fbff"], [0.5, "#6baed6"], [1.0, "#08306b"]]
#: Diverging scale for signed values (orange negative, blue positive).
DIVERGING = [[0.0, PALETTE["vermillion"]], [0.5, "#f7f7f7"], [1.0, PALETTE["blue"]]]

FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif", size=13)


def style(fig: go.Figure, *, title: str, x_title: str | None = None, y_title: str | None = None,
          height: int | None = 360, legend: bool = True) -> go.Figure:
    """Apply the house layout: title, axis titles, font, tight margins."""
    fig.update_layout(
        template="plotly_white",
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)),
        font=FONT,
        margin=dict(l=60, r=20, t=50, b=50),
        showlegend=legend,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
        colorway=SEQUENCE,
    )
    if height is not None:
        fig.update_layout(height=height)
    if x_title is not None:
        fig.update_xaxes(title_text=x_title)
    if y_title is not None:
        fig.update_yaxes(title_text=y_title)
    return fig


def empty_figure(message: str, *, title: str = "", height: int | None = 360) -> go.Figure:
    """Return a blank figure that says why it is empty."""
    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color=PALETTE["grey"]))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return style(fig, title=title, height=height, legend=False)
