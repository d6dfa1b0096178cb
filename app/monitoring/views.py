"""Monitoring views: SQL aggregates of :mod:`data.monitoring` turned into the structures the figures take.

Shared by the monitoring page's callbacks and by the HTML reports, so both
show the same numbers. Every function reads roll-ups (or, with a segment,
aggregates of the raw rows) through SQL ``GROUP BY`` queries; none loads the
logged records.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.figures.common import empty_figure
from app.figures.monitoring import (anomaly_timeline_figure, drift_bar_figure, histogram_compare_figure,
                                    score_distribution_over_time_figure, timeline_figure)
from app.ml.drift import feature_drift_table, prediction_drift, psi
from app.ml.timeseries import bucket_performance
from data import alerts as A
from data import monitoring as M

#: Time ranges offered by the page: key -> (label, hours; None = everything logged).
RANGES = {"24h": ("Last 24 hours", 24), "7d": ("Last 7 days", 7 * 24), "30d": ("Last 30 days", 30 * 24),
          "90d": ("Last 90 days", 90 * 24), "365d": ("Last 12 months", 365 * 24), "all": ("Everything logged", None)}
BUCKET_LABELS = {"hour": "Hour", "day": "Day", "week": "Week"}
#: Performance metrics per task, first one is the default.
PERFORMANCE = {"binary": ("roc_auc", "accuracy", "f1", "precision", "recall"), "multiclass": ("accuracy",),
               "regression": ("rmse", "mae")}
ANOMALY_TYPES = ("below_min", "above_max", "unseen", "missing", "outliers")
PREDICTION_ROW = "(prediction)"
MAX_BUCKETS = 2500


def performance_options(task: str) -> list[dict]:
    """Return dropdown options of the performance metrics of a task."""
    return [{"label": A.metric_label(k), "value": k} for k in PERFORMANCE.get(task, ())]


def make_window(ref: M.VersionRef, session: Session, *, range_key: str, bucket: str,
                segment: M.Segment | None = None, now: dt.datetime | None = None) -> M.Window:
    """Return the window for a range key ending at the bucket holding ``now`` (UTC)."""
    if range_key not in RANGES:
        raise ValueError(f"range must be one of {list(RANGES)}")
    if bucket not in M.BUCKETS:
        raise ValueError(f"bucket must be one of {M.BUCKETS}")
    now_h = M.hour_of(now or M.utcnow())
    state = M.state_of(session, ref.id)
    last = max(now_h, state["last_hour"] or now_h)
    end = M.bucket_floor(last, bucket) + M.BUCKET_HOURS[bucket]
    hours = RANGES[range_key][1]
    if hours is None:
        first = state["first_hour"] if state["first_hour"] is not None else end - 30 * 24
        start = M.bucket_floor(first, bucket)
    else:
        start = M.bucket_floor(end - hours, bucket)
    # Keep the number of buckets bounded (an hourly view of a year would be unreadable anyway).
    if (end - start) // M.BUCKET_HOURS[bucket] > MAX_BUCKETS:
        raise ValueError(f"that is more than {MAX_BUCKETS:,} {bucket}s; choose a larger bucket or a shorter range")
    return M.Window(ref.id, start, end, bucket, segment)


def make_segment(ref: M.VersionRef, feature: Any, bins: Any) -> M.Segment | None:
    """Return the segment "feature in these bins", None when no feature or no bin is chosen."""
    if feature in (None, "") or not bins:
        return None
    if feature not in ref.features:
        raise ValueError(f"{str(feature)[:60]!r} is not a feature of this model")
    n = len(ref.bins[feature]["counts"])
    if not isinstance(bins, list) or len(bins) > n or \
            any(isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < n for b in bins):
        raise ValueError("choose segment values from the list")
    return M.Segment(feature, ref.features.index(feature), tuple(sorted(set(bins))))


def segment_options(ref: M.VersionRef, feature: str) -> list[dict]:
    """Return the reference bins of a feature as dropdown options (value = bin index)."""
    bins = ref.bins[feature]
    return [{"label": str(label), "value": i} for i, label in enumerate(bins["labels"])]


def segment_text(segment: M.Segment | None, ref: M.VersionRef) -> str:
    """Return "plan in basic, pro" or "" for no segment."""
    if segment is None:
        return ""
    labels = ref.bins[segment.feature]["labels"]
    return f"{segment.feature} in {', '.join(str(labels[b]) for b in segment.bins)}"


# -- numbers per bucket ----------------------------------------------------------------

def bucket_rows(session: Session, ref: M.VersionRef, window: M.Window) -> list[dict]:
    """Return per-bucket rows (``time`` ISO string plus every count; binary: score histograms by label)."""
    columns = M.STATS_FOR[ref.task]
    if ref.task == "binary":
        rows, pos, neg = M.bucket_stats_and_scores(session, window, columns=columns)
    else:
        rows = M.bucket_stats(session, window, columns=columns)
    out = []
    for row in rows:
        item = dict(row)
        item["time"] = M.hour_start(row["bucket"]).isoformat()
        if ref.task == "binary":
            item["pos_hist"] = M.counts_list(pos.get(row["bucket"], {}), M.SCORE_BINS)
            item["neg_hist"] = M.counts_list(neg.get(row["bucket"], {}), M.SCORE_BINS)
        out.append(item)
    return out


def performance(rows: Sequence[Mapping], task: str) -> dict:
    """Return :func:`app.ml.timeseries.bucket_performance` of bucket rows (columns plus ``overall``)."""
    return bucket_performance(list(rows), task=task)


@dataclasses.dataclass
class Summary:
    """Headline numbers of a window."""

    n: int
    n_labelled: int
    label_share: float | None
    metrics: dict
    anomaly_share: float | None
    outlier_share: float | None
    open_alerts: int
    drifting: list[str]


def summary(rows: Sequence[Mapping], perf: Mapping, drift_rows: Sequence[Mapping], open_alerts: int) -> Summary:
    """Return the headline numbers from bucket rows, their performance and the drift table."""
    n = sum(r["n"] for r in rows)
    anomalous = sum(r["n_anomalous"] for r in rows)
    outliers = sum(r["n_outliers"] for r in rows)
    overall = dict(perf.get("overall", {}))
    return Summary(n=n, n_labelled=int(overall.get("n_labelled", 0)), label_share=overall.get("label_share"),
                   metrics=overall, anomaly_share=anomalous / n if n else None,
                   outlier_share=outliers / n if n else None, open_alerts=open_alerts,
                   drifting=[r["feature"] for r in drift_rows
                             if r["severity"] == "significant" and r["feature"] != PREDICTION_ROW])


# -- figures ---------------------------------------------------------------------------

def legend_below(fig: go.Figure, *, rows: int = 1) -> go.Figure:
    """Move a figure's legend under the plot so it never covers the title (many series, narrow cards)."""
    extra = 24 * rows
    # Grow the plot area too, so a long y-axis title stays clear of the figure title.
    height = (fig.layout.height or 360) + extra + 40
    # Paper coordinates: put the legend's top below the x-axis title.
    fig.update_layout(height=height, margin=dict(b=80 + extra),
                      legend=dict(orientation="h", yanchor="top", y=-(80 / (height - 130)), x=0, xanchor="left"))
    return fig


def positive_label(ref: M.VersionRef) -> str:
    """Return "class 1" for a numeric positive class, else the class name itself."""
    pos = str(ref.positive)
    return f"class {pos}" if pos.lstrip("-").isdigit() else pos


def _events_for_figure(events: Sequence[Mapping]) -> list[dict]:
    return [{"time": e["time"], "message": e["message"]} for e in events]


def _comments_for_figure(comments: Sequence[Mapping], window: M.Window) -> list[dict]:
    out = []
    lo, hi = M.hour_start(window.start), M.hour_start(window.end)
    for c in comments:
        start = c["start"] or c["created_at"]
        end = c["end"]
        if start >= hi or (end or start) < lo:
            continue
        out.append({"start": max(start, lo), "end": min(end, hi) if end else None, "author": c["author"],
                    "text": c["text"]})
    return out


def timeline(perf: Mapping, ref: M.VersionRef, *, metric: str, events: Sequence[Mapping] = (),
             comments: Sequence[Mapping] = (), window: M.Window) -> go.Figure:
    """Return volume and one performance metric over time, with alert markers and comment ranges."""
    return timeline_figure(perf, metric=metric, metric_label=A.metric_label(metric),
                           alerts=_events_for_figure(events), comments=_comments_for_figure(comments, window))


def score_distribution(session: Session, ref: M.VersionRef, window: M.Window) -> go.Figure:
    """Return the heatmap of the prediction distribution per bucket."""
    var = M.VAR_SCORE if ref.task == "binary" else M.VAR_PREDICTION
    counts = M.bin_counts_by_bucket(session, window, var)
    buckets = sorted(counts)
    times = [M.hour_start(b).isoformat() for b in buckets]
    if ref.task == "binary":
        edges = [i / M.SCORE_BINS for i in range(M.SCORE_BINS + 1)]
        z = [M.counts_list(counts[b], M.SCORE_BINS) for b in buckets]
        return score_distribution_over_time_figure(times, z, bin_edges=edges,
                                                   score_label=f"Predicted probability of {positive_label(ref)}")
    bins = ref.prediction_bins
    k = len(bins["counts"])
    z = [M.counts_list(counts[b], k) for b in buckets]
    label = "Predicted class" if ref.task == "multiclass" else "Predicted value"
    fig = score_distribution_over_time_figure(times, z, score_label=label)
    if buckets:
        fig.update_yaxes(title_text=label + (" (reference quantile bins)" if ref.task == "regression" else ""),
                         tickvals=list(range(k)), ticktext=[str(x) for x in bins["labels"]])
    return fig


def anomalies(rows: Sequence[Mapping]) -> go.Figure:
    """Return counts of each anomaly type per bucket."""
    buckets = {"time": [r["time"] for r in rows], "n": [r["n"] for r in rows]}
    for kind in ANOMALY_TYPES:
        buckets[kind] = [r[f"n_{kind}"] for r in rows]
    fig = anomaly_timeline_figure(buckets, types=list(ANOMALY_TYPES))
    return legend_below(fig, rows=2) if rows else fig


# -- drift ----------------------------------------------------------------------------------

def drift_counts(session: Session, ref: M.VersionRef, window: M.Window) -> dict[str, list[int]]:
    """Return current counts per feature (and the prediction) on the reference bins, over the window."""
    variables = list(range(len(ref.features))) + [M.VAR_PREDICTION]
    totals = M.bin_totals(session, window, variables)
    out = {name: M.counts_list(totals[i], len(ref.bins[name]["counts"])) for i, name in enumerate(ref.features)}
    out[PREDICTION_ROW] = M.counts_list(totals[M.VAR_PREDICTION], len(ref.prediction_bins["counts"]))
    return out


def drift_table(ref: M.VersionRef, counts: Mapping[str, list[int]]) -> list[dict]:
    """Return drift rows (PSI, KS or chi-square, severity) per feature and for the prediction, worst first."""
    rows = feature_drift_table(ref.bins, {f: counts[f] for f in ref.features})
    pred = prediction_drift(ref.prediction_bins, counts[PREDICTION_ROW], name=PREDICTION_ROW)
    rows.append(pred)
    return sorted(rows, key=lambda r: (r["psi"] is None, -(r["psi"] or 0.0), r["feature"]))


def most_drifted(ref: M.VersionRef, counts: Mapping[str, list[int]]) -> str | None:
    """Return the feature with the largest PSI (ranking only: no test statistics are computed), or None."""
    scored = [(psi(ref.bins[f]["counts"], counts[f]), f) for f in ref.features if sum(counts[f]) > 0]
    return max(scored)[1] if scored else None


def drift_grid_rows(rows: Sequence[Mapping]) -> list[dict]:
    """Return drift rows shaped for the sortable grid (rounded numbers, readable test names)."""
    out = []
    for r in rows:
        out.append({"feature": r["feature"], "kind": r["kind"], "psi": None if r["psi"] is None else round(r["psi"], 4),
                    "severity": r["severity"], "test": r["test"] + (" (binned)" if r.get("approximate") else ""),
                    "statistic": None if r["statistic"] is None else round(r["statistic"], 4),
                    "p_value": None if r["p_value"] is None else float(f"{r['p_value']:.3g}"),
                    "n_current": r["n_current"]})
    return out


def drift_bars(rows: Sequence[Mapping]) -> go.Figure:
    """Return PSI bars per feature (the prediction row is left out: it has its own row in the table)."""
    shown = [r for r in rows if r["feature"] != PREDICTION_ROW]
    fig = drift_bar_figure(shown)
    if any(r["psi"] is not None for r in shown):
        legend_below(fig)
        fig.update_layout(margin=dict(t=70))
    return fig


def histogram(ref: M.VersionRef, counts: Mapping[str, list[int]], feature: str) -> go.Figure:
    """Return reference vs current shares on the bins of one feature (or of the prediction)."""
    if feature == PREDICTION_ROW:
        bins = ref.prediction_bins
        label = {"score": f"Predicted probability of {positive_label(ref)}", "class": "Predicted class",
                 "value": "Predicted value"}.get(ref.prediction_kind, "Prediction")
        return _legend_under_title(histogram_compare_figure(label, bins, bins["counts"], counts[PREDICTION_ROW]))
    if feature not in ref.features:
        return empty_figure("Click a feature in the drift chart or table to compare its histograms.",
                            title="Reference vs current")
    bins = ref.bins[feature]
    return _legend_under_title(histogram_compare_figure(feature, bins, bins["counts"], counts[feature]))


def _legend_under_title(fig: go.Figure) -> go.Figure:
    """Put a two-entry legend on its own line under the title (narrow cards otherwise overlap them)."""
    if fig.data:
        fig.update_layout(margin=dict(t=84), legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0,
                                                         xanchor="left"))
    return fig


# -- records -----------------------------------------------------------------------------------

#: The shell keeps at most this many characters of a query value; longer ``values`` are left out of links.
MAX_QUERY_VALUE = 500


def explain_link(ref: M.VersionRef, record_id: str, features: Mapping[str, Any]) -> str:
    """Return the explanation link of a logged record: ``record=<id>``, plus its values when they fit the URL."""
    import json
    from urllib.parse import urlencode

    params = {"model": ref.model, "version": ref.number, "record": record_id}
    values = json.dumps({k: v for k, v in features.items() if v is not None}, separators=(",", ":"))
    if len(values) <= MAX_QUERY_VALUE:
        params["values"] = values
    return "/explain?" + urlencode(params)


def record_rows(records: Sequence[Mapping], ref: M.VersionRef) -> list[dict]:
    """Return records flattened for a grid: fixed columns plus ``f0..fN`` feature values and an explain link."""
    out = []
    for r in records:
        pred = r["prediction"]
        if ref.task == "regression":
            shown = f"{pred.get('value'):.4g}"
        else:
            shown = str(pred.get("label"))
            if pred.get("score") is not None:
                shown += f" ({pred['score']:.2f})"
        link = explain_link(ref, r["id"], r["features"])
        row = {"id": r["id"], "time": r["time"].replace("T", " "), "prediction": shown,
               "label": "" if r["label"] is None else str(r["label"]),
               "correct": {1: "yes", 0: "no"}.get(r["correct"], ""),
               "outlier": None if r["outlier"] is None else round(r["outlier"], 2),
               "anomalies": ", ".join(a.replace("_", " ") for a in r["anomalies"]),
               "explain": f"[Explain]({link})"}
        for i, name in enumerate(ref.features):
            value = r["features"].get(name)
            row[f"f{i}"] = round(value, 4) if isinstance(value, float) else value
        out.append(row)
    return out


def record_columns(ref: M.VersionRef) -> list[dict]:
    """Return AG Grid column definitions for :func:`record_rows`."""
    cols = [{"field": "time", "headerName": "Time (UTC)", "minWidth": 165, "pinned": "left"},
            {"field": "id", "headerName": "Record id", "minWidth": 120},
            {"field": "explain", "headerName": "", "cellRenderer": "markdown", "maxWidth": 100, "sortable": False},
            {"field": "prediction", "headerName": "Prediction", "minWidth": 120},
            {"field": "label", "headerName": "Truth"}, {"field": "correct", "headerName": "Correct", "maxWidth": 100},
            {"field": "outlier", "headerName": "Outlier score", "maxWidth": 130},
            {"field": "anomalies", "headerName": "Anomalies", "minWidth": 140}]
    cols += [{"field": f"f{i}", "headerName": name, "minWidth": 110} for i, name in enumerate(ref.features)]
    return cols


# -- change detection ------------------------------------------------------------------------

def stamp(session: Session, ref: M.VersionRef) -> str:
    """Return a short string that changes whenever data, alerts or comments of the version change."""
    state = M.state_of(session, ref.id)
    events = session.execute(select(func.count(M.AlertEvent.id), func.max(M.AlertEvent.acknowledged_at))
                             .where(M.AlertEvent.model_id == ref.model_id)).first()
    comments = session.execute(select(func.count(M.Comment.id), func.max(M.Comment.id),
                                      func.max(M.Comment.edited_at))
                               .where(M.Comment.model_id == ref.model_id)).first()
    return "|".join(str(x) for x in (ref.id, state["revision"], *events, *comments))

