"""Monitoring figures built from small inputs: content, colours, clicks and empty states."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from app.figures import monitoring as mf
from app.figures.common import PALETTE
from app.ml import drift, timeseries

TIMES = ["2026-03-01T00:00:00", "2026-03-02T00:00:00", "2026-03-03T00:00:00"]


def _annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def _is_empty_state(fig: go.Figure, phrase: str) -> bool:
    return not fig.data and any(phrase in t for t in _annotation_texts(fig))


def _buckets():
    rows = [
        {"time": TIMES[0], "n": 10, "n_labelled": 8, "tp": 3, "fp": 1, "tn": 3, "fn": 1},
        {"time": TIMES[1], "n": 20, "n_labelled": 0},
        {"time": TIMES[2], "n": 5, "n_labelled": 5, "tp": 1, "fp": 2, "tn": 1, "fn": 1},
    ]
    return timeseries.bucket_performance(rows, task="binary")


# ---------------------------------------------------------------- timeline

def test_timeline_rows_volume_and_metric():
    fig = mf.timeline_figure(_buckets(), metric="accuracy", metric_label="Accuracy (share correct)")
    bars = [t for t in fig.data if t.type == "bar"]
    line = next(t for t in fig.data if t.type == "scatter" and t.name == "Accuracy (share correct)")
    labelled = next(b for b in bars if b.name == "Labelled")
    waiting = next(b for b in bars if b.name == "Awaiting label")
    assert list(labelled.y) == [8, 0, 5]
    assert list(waiting.y) == [2, 20, 0]
    assert list(line.y) == [0.75, None, 0.4]
    assert list(line.customdata) == TIMES  # a click opens that bucket
    assert list(labelled.customdata) == TIMES
    # Two stacked rows sharing x: bars on the top axis, the line below.
    assert labelled.yaxis == "y" and line.yaxis == "y2"
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"
    assert fig.layout.barmode == "stack"
    assert fig.layout.yaxis2.title.text == "Accuracy (share correct)"
    assert fig.layout.yaxis.title.text == "Predictions (count)"
    assert fig.layout.xaxis2.title.text == "Time (bucket start)"
    assert fig.layout.template.layout.paper_bgcolor is not None


def test_timeline_alerts_are_vermillion_markers_with_messages():
    fig = mf.timeline_figure(_buckets(), metric="accuracy", metric_label="Accuracy",
                             alerts=[{"time": TIMES[2], "message": "accuracy below 0.5"},
                                     {"time": "2026-03-02T06:00:00", "message": "no labels"}])
    alert = next(t for t in fig.data if t.name == "Alert")
    assert alert.marker.color == PALETTE["vermillion"]
    assert list(alert.hovertext) == ["accuracy below 0.5", "no labels"]
    # On the line where the bucket has a value; at the top of the range where it has none.
    assert list(alert.y) == [0.4, 0.75]
    assert alert.yaxis == "y2"


def test_timeline_comments_as_ranges_and_lines():
    fig = mf.timeline_figure(_buckets(), metric="accuracy", metric_label="Accuracy", comments=[
        {"start": TIMES[0], "end": TIMES[1], "author": "ann", "text": "new release"},
        {"start": TIMES[2], "end": None, "author": "bo", "text": "campaign started"},
    ])
    kinds = [s.type for s in fig.layout.shapes]
    assert kinds.count("rect") == 2 and kinds.count("line") == 2  # each spans both rows
    notes = [a for a in fig.layout.annotations if a.hovertext]
    assert [a.hovertext for a in notes] == ["ann: new release", "bo: campaign started"]
    assert all(a.text.startswith("Comment: ") for a in notes)


def test_timeline_without_labels_says_so():
    b = timeseries.bucket_performance([{"time": TIMES[0], "n": 4, "n_labelled": 0}], task="multiclass")
    fig = mf.timeline_figure(b, metric="accuracy", metric_label="Accuracy")
    assert any("No labelled records yet" in t for t in _annotation_texts(fig))
    assert any(t.type == "bar" for t in fig.data)


@pytest.mark.parametrize("buckets", [{}, {"time": []}, {"time": TIMES[:1], "n": [0], "n_labelled": [0]}])
def test_timeline_empty_state(buckets):
    fig = mf.timeline_figure(buckets, metric="accuracy", metric_label="Accuracy")
    assert _is_empty_state(fig, "No predictions were logged")


def test_timeline_rejects_misaligned_columns():
    with pytest.raises(ValueError, match="n_labelled"):
        mf.timeline_figure({"time": TIMES, "n": [1, 2, 3], "n_labelled": [1]}, metric="accuracy",
                           metric_label="Accuracy")


# ------------------------------------------------------------------- drift

def _table():
    rng = np.random.default_rng(1)
    ref = {"a": rng.normal(size=3000), "b": rng.normal(size=3000), "c": rng.normal(size=3000)}
    cur = {"a": rng.normal(size=2000), "b": rng.normal(0.5, size=2000), "c": rng.normal(1.5, size=2000)}
    bins = {k: drift.reference_bins(v, kind="numeric") for k, v in ref.items()}
    bins["d"] = drift.reference_bins(["x", "y"], kind="categorical")
    counts = {k: drift.bin_counts(v, bins[k]) for k, v in cur.items()}
    return drift.feature_drift_table(bins, counts)


def test_drift_bars_sorted_and_coloured_by_severity():
    table = _table()
    fig = mf.drift_bar_figure(table)
    assert [t.orientation for t in fig.data] == ["h"] * len(fig.data)
    by_name = {t.name: t for t in fig.data}
    assert by_name["Significant"].marker.color == PALETTE["vermillion"]
    assert "c" in by_name["Significant"].y
    assert "a" in by_name["Stable"].y
    # Largest PSI on top: plotly draws the last category of the array at the top.
    assert list(fig.layout.yaxis.categoryarray)[::-1] == [r["feature"] for r in table if r["psi"] is not None]
    lines = sorted(s.x0 for s in fig.layout.shapes if s.type == "line")
    assert lines == [0.1, 0.25]
    assert any("No current data: d" in t for t in _annotation_texts(fig))
    psi_by_feature = {y: x for t in fig.data for x, y in zip(t.x, t.y)}
    assert psi_by_feature == {r["feature"]: r["psi"] for r in table if r["psi"] is not None}
    assert {c for t in fig.data for c in t.customdata} == {"a", "b", "c"}


def test_drift_bars_empty_states():
    assert _is_empty_state(mf.drift_bar_figure([]), "No features")
    assert _is_empty_state(mf.drift_bar_figure([{"feature": "x", "psi": None, "severity": "no data"}]),
                           "No current data")


def test_histogram_compare_shows_proportions():
    bins = drift.reference_bins(["a"] * 6 + ["b"] * 4, kind="categorical")
    fig = mf.histogram_compare_figure("city", bins, bins["counts"], [1, 1, 2])
    ref, cur = fig.data
    assert list(ref.x) == ["a", "b", "(other)"]
    np.testing.assert_allclose(ref.y, [0.6, 0.4, 0.0])
    np.testing.assert_allclose(cur.y, [0.25, 0.25, 0.5])
    assert ref.name.startswith("Reference (10") and cur.name.startswith("Current (4")
    assert fig.layout.barmode == "group"
    assert fig.layout.yaxis.tickformat == ".0%"
    assert "city" in fig.layout.title.text


def test_histogram_compare_numeric_labels_from_edges_and_empty():
    bins = {"kind": "numeric", "edges": [float("-inf"), 1.0, float("inf")]}
    fig = mf.histogram_compare_figure("x", bins, [1, 1], [0, 2])
    assert list(fig.data[0].x) == ["[-inf, 1)", "[1, inf)"]
    assert _is_empty_state(mf.histogram_compare_figure("x", bins, [1, 1], [0, 0]), "No current values of x")
    with pytest.raises(ValueError, match="bins"):
        mf.histogram_compare_figure("x", bins, [1, 1], [1, 1, 1])


# --------------------------------------------------------------- anomalies

def test_anomaly_timeline_series_per_type():
    fig = mf.anomaly_timeline_figure({"time": TIMES, "n": [10, 20, 5], "missing": [1, 0, 2],
                                      "unseen": [0, 3, 0]})
    assert [t.name for t in fig.data] == ["Missing value", "Unseen category"]
    assert list(fig.data[1].y) == [0, 3, 0]
    assert list(fig.data[0].customdata) == TIMES
    assert fig.data[0].line.color != fig.data[1].line.color
    fig = mf.anomaly_timeline_figure({"time": TIMES, "missing": [1, 0, 2], "unseen": [0, 3, 0]},
                                     types=["unseen"])
    assert [t.name for t in fig.data] == ["Unseen category"]


def test_anomaly_timeline_empty_states():
    assert _is_empty_state(mf.anomaly_timeline_figure({"time": []}), "No predictions")
    assert _is_empty_state(mf.anomaly_timeline_figure({"time": TIMES, "n": [1, 2, 3]}), "No anomaly counts")


def test_score_heatmap_shares_per_bucket():
    fig = mf.score_distribution_over_time_figure(TIMES, [[1, 3], [0, 0], [2, 2]], bin_edges=[0, 0.5, 1])
    (hm,) = fig.data
    assert hm.type == "heatmap"
    assert list(hm.y) == [0.25, 0.75]
    # z is bins x times; an empty bucket is a gap, not zeros.
    assert [list(r) for r in hm.z] == [[0.25, None, 0.5], [0.75, None, 0.5]]
    counts = mf.score_distribution_over_time_figure(TIMES, [[1, 3], [0, 0], [2, 2]], normalise=False)
    assert [list(r) for r in counts.data[0].z] == [[1, 0, 2], [3, 0, 2]]
    assert counts.data[0].colorbar.title.text == "Records"


def test_score_heatmap_empty_and_bad_shapes():
    assert _is_empty_state(mf.score_distribution_over_time_figure([], []), "No predictions")
    assert _is_empty_state(mf.score_distribution_over_time_figure(TIMES[:1], [[0, 0]]), "No scores")
    with pytest.raises(ValueError, match="one row per time bucket"):
        mf.score_distribution_over_time_figure(TIMES, [[1, 2]])
    with pytest.raises(ValueError, match="bin_edges"):
        mf.score_distribution_over_time_figure(TIMES[:1], [[1, 2]], bin_edges=[0, 1])


@pytest.mark.parametrize("builder", [
    lambda: mf.timeline_figure(_buckets(), metric="f1", metric_label="F1 (harmonic mean)"),
    lambda: mf.drift_bar_figure(_table()),
    lambda: mf.anomaly_timeline_figure({"time": TIMES, "missing": [1, 0, 2]}),
    lambda: mf.score_distribution_over_time_figure(TIMES, [[1, 3], [0, 1], [2, 2]]),
])
def test_house_style(builder):
    fig = builder()
    assert fig.layout.title.text
    assert fig.layout.font.size == 13
    assert fig.layout.margin.t == 50
    fig.to_json()  # serialisable for the browser
