"""Figures for production monitoring: timeline, drift, anomalies, score distribution.

Inputs are the plain structures produced by :mod:`app.ml.timeseries`,
:mod:`app.ml.drift` and :mod:`app.ml.anomaly` (column-oriented dicts keyed by
``time``, lists of drift rows, reference bins), never records. Points on time
axes carry the bucket start as an ISO string in ``customdata`` so a click can
open that bucket's records. Missing data gives an empty-state figure that
says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures.common import PALETTE, SEQUENCE, SEQUENTIAL, TRAIN_COLOR, empty_figure, style

__all__ = [
    "SEVERITY_COLORS",
    "anomaly_timeline_figure",
    "drift_bar_figure",
    "histogram_compare_figure",
    "score_distribution_over_time_figure",
    "timeline_figure",
]

#: Drift severity colours (stable, moderate, significant), Okabe-Ito.
SEVERITY_COLORS = {"stable": PALETTE["green"], "moderate": PALETTE["orange"], "significant": PALETTE["vermillion"]}
_PSI_LINES = ((0.1, "moderate"), (0.25, "significant"))
_ALERT = PALETTE["vermillion"]
_COMMENT = PALETTE["pink"]
_CURRENT = PALETTE["orange"]

_ANOMALY_LABELS = {
    "below_min": "Below reference minimum",
    "above_max": "Above reference maximum",
    "out_of_range": "Outside reference range",
    "unseen": "Unseen category",
    "unseen_category": "Unseen category",
    "missing": "Missing value",
    "non_numeric": "Not a number",
    "outliers": "Outlier score above 1",
}


# ----------------------------------------------------------------- helpers

def _times(values: Sequence[Any]) -> tuple[list[pd.Timestamp], list[str]]:
    """Parse bucket starts; return plot values and ISO strings for customdata."""
    try:
        parsed = [pd.Timestamp(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bucket times must be datetimes or ISO strings: {exc}") from None
    if any(pd.isna(t) for t in parsed):
        raise ValueError("bucket times must not be missing")
    iso = [v if isinstance(v, str) else t.isoformat() for v, t in zip(values, parsed)]
    return parsed, iso


def _column(buckets: Mapping, key: str, n: int, *, default: Any = None) -> list:
    values = buckets.get(key)
    if values is None:
        return [default] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"buckets[{key!r}] has {len(values)} values but there are {n} buckets")
    return values


def _num_or_none(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nearest(times: list[pd.Timestamp], when: pd.Timestamp) -> int:
    gaps = [abs((t - when).total_seconds()) for t in times]
    return int(np.argmin(gaps))


def _ts(value: Any, what: str) -> pd.Timestamp:
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} time {value!r} is not a datetime or ISO string") from None
    if pd.isna(t):
        raise ValueError(f"{what} time is missing")
    return t


def _align_tz(t: pd.Timestamp, ref: pd.Timestamp) -> pd.Timestamp:
    # Compare like with like: naive bucket times are read as UTC.
    if (t.tzinfo is None) == (ref.tzinfo is None):
        return t
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC").tz_localize(None)


# ---------------------------------------------------------------- timeline

def timeline_figure(buckets: Mapping[str, Sequence], *, metric: str, metric_label: str,
                    alerts: Sequence[Mapping[str, Any]] = (),
                    comments: Sequence[Mapping[str, Any]] = ()) -> go.Figure:
    """Volume and one performance metric over time, with alerts and comments.

    Parameters
    ----------
    buckets : dict of lists
        :func:`app.ml.timeseries.bucket_performance` output (``time``, ``n``,
        ``n_labelled`` and the ``metric`` column; a missing metric column
        counts as no values).
    metric : str
        Key of the metric column, e.g. ``"accuracy"`` or ``"rmse"``.
    metric_label : str
        Axis label with unit, e.g. ``"Accuracy (share correct)"``.
    alerts : list of dict
        ``{"time", "message"}``: vermillion markers on the metric row.
    comments : list of dict
        ``{"start", "end", "author", "text"}``: a shaded range (or a line
        when ``end`` is missing or equal to ``start``) with a hoverable note.

    Returns
    -------
    go.Figure
        Row 1: stacked bars of labelled and not-yet-labelled predictions.
        Row 2: the metric line. Bars and points carry the bucket start in
        ``customdata``.
    """
    title = f"{metric_label} and volume over time"
    if not isinstance(buckets, Mapping):
        raise ValueError(f"buckets must be a dict of lists, got {type(buckets).__name__}")
    raw_times = list(buckets.get("time") or [])
    if not raw_times:
        return empty_figure("No predictions were logged in this time range.", title=title)
    times, iso = _times(raw_times)
    k = len(times)
    n = [int(v or 0) for v in _column(buckets, "n", k, default=0)]
    labelled = [int(v or 0) for v in _column(buckets, "n_labelled", k, default=0)]
    if sum(n) == 0:
        return empty_figure("No predictions were logged in this time range.", title=title)
    values = [_num_or_none(v) for v in _column(buckets, metric, k)]
    unlabelled = [max(a - b, 0) for a, b in zip(n, labelled)]
    share = [f"{b / a:.0%}" if a else "n/a" for a, b in zip(n, labelled)]

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.35, 0.65])
    fig.add_trace(go.Bar(
        x=times, y=labelled, name="Labelled", marker=dict(color=PALETTE["blue"]), customdata=iso,
        text=share, hovertemplate="%{x}<br>labelled %{y:,} (%{text} of predictions)<extra></extra>",
        textposition="none",
    ), row=1, col=1)
    fig.add_trace(go.Bar(
        x=times, y=unlabelled, name="Awaiting label", marker=dict(color=PALETTE["sky"], opacity=0.55),
        customdata=iso, hovertemplate="%{x}<br>awaiting label %{y:,}<extra></extra>",
    ), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=times, y=values, name=metric_label, mode="lines+markers", connectgaps=False,
        line=dict(color=PALETTE["black"], width=2), marker=dict(size=7, color=PALETTE["black"]),
        customdata=iso, hovertemplate="%{x}<br>" + metric_label + " %{y:.3f}<extra></extra>",
    ), row=2, col=1)
    known = [v for v in values if v is not None]
    if not known:
        fig.add_annotation(text=f"No labelled records yet: {metric_label} needs ground truth.",
                           x=0.5, y=0.3, xref="paper", yref="paper", showarrow=False,
                           font=dict(color=PALETTE["grey"]))

    if alerts:
        a_x, a_y, a_text, a_iso = [], [], [], []
        fallback = max(known) if known else 0.0
        for alert in alerts:
            when = _align_tz(_ts(alert.get("time"), "alert"), times[0])
            v = values[_nearest(times, when)]
            a_x.append(when)
            a_y.append(v if v is not None else fallback)
            a_text.append(_short(alert.get("message") or "alert", 120))
            a_iso.append(when.isoformat())
        fig.add_trace(go.Scatter(
            x=a_x, y=a_y, name="Alert", mode="markers", customdata=a_iso, hovertext=a_text,
            marker=dict(symbol="triangle-down", size=14, color=_ALERT, line=dict(color="white", width=1)),
            hovertemplate="%{x}<br>alert: %{hovertext}<extra></extra>",
        ), row=2, col=1)

    for comment in comments:
        start = _align_tz(_ts(comment.get("start"), "comment"), times[0])
        end = comment.get("end")
        end = _align_tz(_ts(end, "comment"), times[0]) if end is not None else None
        note = f"{comment.get('author') or 'someone'}: {_short(comment.get('text') or '', 200)}"
        if end is not None and end > start:
            fig.add_vrect(x0=start, x1=end, row="all", col=1, fillcolor=_COMMENT, opacity=0.12,
                          line_width=0, layer="below")
        else:
            fig.add_vline(x=start, row="all", col=1, line=dict(color=_COMMENT, width=1.5, dash="dot"))
        fig.add_annotation(x=start, y=1.0, xref="x2", yref="y2 domain", yanchor="top", xanchor="left",
                           text=f"Comment: {_short(comment.get('author') or 'someone', 20)}", hovertext=note,
                           showarrow=False, font=dict(size=11, color=_COMMENT))

    fig.update_layout(barmode="stack", hovermode="closest", clickmode="event")
    style(fig, title=title, height=460)
    fig.update_xaxes(title_text="Time (bucket start)", row=2, col=1)
    fig.update_yaxes(title_text="Predictions (count)", row=1, col=1)
    fig.update_yaxes(title_text=metric_label, row=2, col=1)
    return fig


# ------------------------------------------------------------------- drift

def drift_bar_figure(table: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Horizontal PSI bars per feature, largest on top, coloured by severity.

    ``table`` is :func:`app.ml.drift.feature_drift_table` output. Dashed
    lines mark PSI 0.1 (moderate) and 0.25 (significant); features without
    current data are named under the chart. Bars carry the feature name in
    ``customdata`` so a click can open its histograms.
    """
    title = "Input drift per feature (PSI against reference data)"
    rows = [r for r in (table or []) if r.get("psi") is not None]
    no_data = [str(r.get("feature")) for r in (table or []) if r.get("psi") is None]
    if not rows:
        why = "No current data to compare with the reference." if no_data else "No features to compare."
        return empty_figure(why, title=title)
    rows = sorted(rows, key=lambda r: (-float(r["psi"]), str(r["feature"])))
    fig = go.Figure()
    for sev, color in SEVERITY_COLORS.items():
        group = [r for r in rows if r.get("severity") == sev]
        if not group:
            continue
        hover = [
            f"{r.get('test') or 'test'} statistic {_fmt(r.get('statistic'))}, p = {_fmt(r.get('p_value'), '.3g')}"
            f"<br>{int(r.get('n_current') or 0):,} current records" for r in group
        ]
        fig.add_trace(go.Bar(
            x=[float(r["psi"]) for r in group], y=[str(r["feature"]) for r in group], orientation="h",
            name=sev.capitalize(), marker=dict(color=color), customdata=[str(r["feature"]) for r in group],
            hovertext=hover, hovertemplate="%{y}<br>PSI %{x:.3f}<br>%{hovertext}<extra></extra>",
        ))
    for x, label in _PSI_LINES:
        fig.add_vline(x=x, line=dict(color=PALETTE["grey"], dash="dash", width=1),
                      annotation_text=f"{label} ({x})", annotation_position="top")
    order = [str(r["feature"]) for r in rows]
    fig.update_yaxes(categoryorder="array", categoryarray=order[::-1], automargin=True)
    height = max(300, 26 * len(rows) + 140)
    style(fig, title=title, x_title="PSI (population stability index, unitless)", y_title="Feature",
          height=height)
    if no_data:
        shown = ", ".join(no_data[:8]) + (f" and {len(no_data) - 8} more" if len(no_data) > 8 else "")
        fig.add_annotation(text=f"No current data: {shown}", x=0, y=0, yshift=-62, xref="paper", yref="paper",
                           xanchor="left", yanchor="top", showarrow=False, font=dict(size=11, color=PALETTE["grey"]))
        fig.update_layout(margin=dict(b=90))
    return fig


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(float(value), spec)


def _bin_labels(bins: Mapping[str, Any], k: int) -> list[str]:
    labels = bins.get("labels")
    if labels is not None and len(labels) == k:
        return [str(x) for x in labels]
    if bins.get("levels") is not None and len(bins["levels"]) + 1 == k:
        return [*(str(x) for x in bins["levels"]), "(other)"]
    edges = bins.get("edges")
    if edges is not None and len(edges) == k + 1:
        return [f"[{float(a):.4g}, {float(b):.4g})" for a, b in zip(edges[:-1], edges[1:])]
    raise ValueError(f"bins describe a different number of bins than the {k} counts given")


def histogram_compare_figure(feature: str, bins: Mapping[str, Any], ref_counts: Sequence[float],
                             cur_counts: Sequence[float]) -> go.Figure:
    """Reference and current shares per bin, side by side.

    ``bins`` is the :func:`app.ml.drift.reference_bins` dict of the feature
    (its ``labels`` name the bars); counts are compared as proportions so
    samples of different sizes line up.
    """
    title = f"{feature}: reference vs current"
    ref = np.asarray(ref_counts, dtype=float)
    cur = np.asarray(cur_counts, dtype=float)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise ValueError(f"ref_counts has {ref.size} bins but cur_counts has {cur.size}")
    if ref.size == 0 or ref.sum() <= 0:
        return empty_figure(f"No reference data for {feature}.", title=title)
    if cur.sum() <= 0:
        return empty_figure(f"No current values of {feature} in this time range.", title=title)
    labels = _bin_labels(bins, ref.size)
    fig = go.Figure()
    for name, counts, color in (("Reference", ref, TRAIN_COLOR), ("Current", cur, _CURRENT)):
        total = counts.sum()
        fig.add_trace(go.Bar(
            x=labels, y=counts / total, name=f"{name} ({int(total):,} records)", marker=dict(color=color),
            customdata=counts, hovertemplate="%{x}<br>" + name + " share %{y:.1%}<br>%{customdata:,.0f} records"
                                             "<extra></extra>",
        ))
    fig.update_layout(barmode="group", bargap=0.15)
    kind = bins.get("kind")
    x_title = f"{feature} ({'category' if kind == 'categorical' else 'value range, reference quantile bins'})"
    style(fig, title=title, x_title=x_title, y_title="Share of records (%)")
    fig.update_yaxes(tickformat=".0%")
    fig.update_xaxes(type="category")
    return fig


# --------------------------------------------------------------- anomalies

def anomaly_timeline_figure(buckets: Mapping[str, Sequence], *, types: Sequence[str] | None = None) -> go.Figure:
    """Counts of each anomaly type per time bucket.

    ``buckets`` is a dict of lists: ``time`` plus one list of counts per
    anomaly type (e.g. ``below_min``, ``above_max``, ``unseen``, ``missing``,
    ``outliers``); ``n`` (volume), if present, is not drawn but shown on
    hover. ``types`` picks and orders the series (default: every other key).
    """
    title = "Input anomalies over time"
    if not isinstance(buckets, Mapping):
        raise ValueError(f"buckets must be a dict of lists, got {type(buckets).__name__}")
    raw_times = list(buckets.get("time") or [])
    if not raw_times:
        return empty_figure("No predictions were logged in this time range.", title=title)
    times, iso = _times(raw_times)
    k = len(times)
    keys = list(types) if types is not None else [key for key in buckets if key not in ("time", "n")]
    if not keys:
        return empty_figure("No anomaly counts to show.", title=title)
    volume = _column(buckets, "n", k)
    fig = go.Figure()
    for i, key in enumerate(keys):
        if key not in buckets:
            raise ValueError(f"anomaly type {key!r} is not in buckets")
        counts = [int(v or 0) for v in _column(buckets, key, k)]
        label = _ANOMALY_LABELS.get(key, str(key).replace("_", " ").capitalize())
        hover = [f"of {int(v):,} records" if v is not None else "" for v in volume]
        fig.add_trace(go.Scatter(
            x=times, y=counts, name=label, mode="lines+markers", customdata=iso, hovertext=hover,
            line=dict(color=SEQUENCE[i % len(SEQUENCE)], width=2),
            hovertemplate="%{x}<br>" + label + " %{y:,} %{hovertext}<extra></extra>",
        ))
    style(fig, title=title, x_title="Time (bucket start)", y_title="Records with the anomaly (count)")
    fig.update_yaxes(rangemode="tozero")
    return fig


def score_distribution_over_time_figure(times: Sequence[Any], counts: Sequence[Sequence[float]], *,
                                        bin_edges: Sequence[float] | None = None, normalise: bool = True,
                                        score_label: str = "Predicted score") -> go.Figure:
    """Heatmap of the score histogram per time bucket.

    Parameters
    ----------
    times : list
        Bucket starts.
    counts : list of lists, shape (n_times, n_bins)
        Score histogram per bucket, bins ordered by increasing score.
    bin_edges : list of float, optional
        ``n_bins + 1`` edges; rows are labelled by bin centre (else by index).
    normalise : bool, default=True
        Show each bucket's share per bin (columns sum to 1) instead of counts.
    score_label : str
        Axis label of the score.
    """
    title = f"{score_label} distribution over time"
    times = list(times or [])
    if not times:
        return empty_figure("No predictions were logged in this time range.", title=title)
    parsed, iso = _times(times)
    z = np.asarray(counts, dtype=float)
    if z.ndim != 2 or z.shape[0] != len(times):
        raise ValueError(f"counts must have one row per time bucket ({len(times)}), got shape {z.shape}")
    if z.size == 0 or z.sum() <= 0:
        return empty_figure("No scores were logged in this time range.", title=title)
    if (z < 0).any():
        raise ValueError("counts must be non-negative")
    n_bins = z.shape[1]
    if bin_edges is not None:
        edges = np.asarray(bin_edges, dtype=float)
        if edges.shape != (n_bins + 1,):
            raise ValueError(f"bin_edges must have {n_bins + 1} values, got {edges.size}")
        y = ((edges[:-1] + edges[1:]) / 2).tolist()
        y_title = score_label
    else:
        y = list(range(n_bins))
        y_title = f"{score_label} (bin)"
    totals = z.sum(axis=1, keepdims=True)
    if normalise:
        with np.errstate(invalid="ignore", divide="ignore"):
            shown = np.where(totals > 0, z / totals, np.nan)
        bar_title, fmt = "Share of bucket", ".1%"
    else:
        shown, bar_title, fmt = z, "Records", ",.0f"
    # Heatmap z is (rows = y bins, columns = x times).
    cells = [[None if np.isnan(v) else float(v) for v in row] for row in shown.T]
    fig = go.Figure(go.Heatmap(
        x=parsed, y=y, z=cells, colorscale=SEQUENTIAL, colorbar=dict(title=bar_title),
        customdata=[iso] * n_bins, hoverongaps=False,
        hovertemplate="%{x}<br>" + score_label + " %{y}<br>" + bar_title + " %{z:" + fmt + "}<extra></extra>",
    ))
    style(fig, title=title, x_title="Time (bucket start)", y_title=y_title, legend=False)
    return fig
