"""Callbacks of the monitoring page.

Change detection drives the page: a cheap callback on a pausable interval
computes a stamp of the version's data, alerts and comments and writes it
only when it changed (``no_update`` otherwise, so nothing is sent and nothing
redraws). The figure callbacks listen to that stamp and to the filters; when
only the stamp moved for the same selection they answer with ``dash.Patch``
objects that replace the traces (and the timeline's marks) but keep the
layout, zoom and legend state. Everything comes from SQL aggregates
(:mod:`app.monitoring.views`); the records grid pages on the server.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, Patch, State, ctx, html, no_update

from app.audit import record_event
from app.figures.common import empty_figure
from app.monitoring import views as V
from app.security.permissions import Permission
from callbacks.model_select import register_selector, resolve
from callbacks.validate import InvalidInput, choice, error_alert, flag, number, text
from data import alerts as A
from data import monitoring as M
from data.db import get_db
from layouts import monitoring as L
from layouts.model_views import fmt

log = logging.getLogger(__name__)

NOT_READY = ("The reference bins of this model version are still being computed; the page fills in by itself "
             "when they are ready.")
NO_TRAFFIC = ("No predictions have been logged for {label} yet. Services send them through the prediction-log API "
              "(see the API guide); `glassbox simulate --model {name}` sends example traffic.")
SEE_ABOVE = "Nothing to show: see the message above."


# -- shared checks ---------------------------------------------------------------------------

def _ref(model, version, user, permission=Permission.VIEW_MONITORING) -> M.VersionRef:
    """Return the monitoring reference of the requested version, or raise InvalidInput saying why not."""
    found = resolve(model, version, user=user, permission=permission)
    with get_db().session() as s:
        ref = M.reference_if_ready(s, found)
        logged = M.state_of(s, found.id)["n_logged"] if ref is None else None
    if ref is None:
        raise InvalidInput(NO_TRAFFIC.format(label=found.label, name=found.name) if not logged else NOT_READY)
    return ref


def _empty(title: str):
    return empty_figure(SEE_ABOVE, title=title)


def _window(ref: M.VersionRef, range_key, bucket, seg_feature, seg_bins) -> M.Window:
    range_key = choice(range_key, name="Time range", options=list(V.RANGES))
    bucket = choice(bucket, name="Bucket", options=list(M.BUCKETS))
    try:
        segment = V.make_segment(ref, seg_feature, seg_bins)
        with get_db().session() as s:
            return V.make_window(ref, s, range_key=range_key, bucket=bucket, segment=segment)
    except ValueError as exc:
        raise InvalidInput(str(exc)[:300]) from None


def _refresh_only(stamp) -> bool:
    """True when the only trigger is the stamp and it moved for the same selection (patch, do not redraw)."""
    return ctx.triggered_id == L.STAMP and isinstance(stamp, dict) and stamp.get("refresh") is True


def _patch(fig, *, marks: bool = False) -> Patch:
    """Return a Patch replacing the traces (and shapes/annotations) of a figure, keeping the rest of its layout."""
    spec = fig.to_plotly_json()
    patch = Patch()
    patch["data"] = spec["data"]
    if marks:
        patch["layout"]["shapes"] = spec["layout"].get("shapes", [])
        patch["layout"]["annotations"] = spec["layout"].get("annotations", [])
    return patch


def _keep_view(fig, key: str):
    fig.update_layout(uirevision=key)
    return fig


# -- filters ----------------------------------------------------------------------------------

def filter_options(model, version, seg_feature, metric, *, user):
    """Return segment feature options and value, metric options and value for the chosen version."""
    try:
        found = resolve(model, version, user=user, permission=Permission.VIEW_MONITORING)
    except InvalidInput:
        return [], None, [], None
    features = [{"label": f, "value": f} for f in found.features]
    metrics = V.performance_options(found.task)
    seg = seg_feature if seg_feature in found.features else None
    keep = metric if metric in [m["value"] for m in metrics] else (metrics[0]["value"] if metrics else None)
    return features, seg, metrics, keep


def segment_values(seg_feature, model, version, current, *, user):
    """Return the reference bins of the segment feature as options, and the still-valid chosen ones."""
    if not seg_feature:
        return [], []
    try:
        ref = _ref(model, version, user)
        if seg_feature not in ref.features:
            raise InvalidInput("Choose a segment feature from the list.")
    except InvalidInput:
        return [], []
    options = V.segment_options(ref, seg_feature)
    valid = {o["value"] for o in options}
    kept = [b for b in (current or []) if isinstance(b, int) and b in valid] if isinstance(current, list) else []
    return options, kept


# -- change detection ---------------------------------------------------------------------------

def check_stamp(_n, model, version, current, *, user, trigger=None):
    """Return (stamp, "checked at" text): the stamp only when something changed, else no_update."""
    try:
        ref = _ref(model, version, user)
    except InvalidInput:
        return None if current else no_update, ""
    with get_db().session() as s:
        value = V.stamp(s, ref)
    checked = f"Checked {M.utcnow():%H:%M:%S} UTC"
    key = f"{ref.id}"
    if isinstance(current, dict) and current.get("key") == key and current.get("value") == value:
        return no_update, checked
    refresh = trigger == L.INTERVAL and isinstance(current, dict) and current.get("key") == key
    return {"key": key, "value": value, "refresh": refresh}, checked


# -- the timeline and headline numbers ----------------------------------------------------------------

def _stat(label: str, value: str, *, stat_id: str, tone: str = "") -> dbc.Col:
    return dbc.Col(html.Div([html.Div(label, className="gb-stat-label"),
                             html.Div(value, className=f"gb-stat {tone}".strip(), id=stat_id)],
                            className="gb-card p-3 h-100"), xs=6, md=4, xl=True, className="mb-2")


def _pct(value) -> str:
    return "\u2013" if value is None else f"{value:.1%}"


def stats_row(summary: V.Summary, metric: str, ref: M.VersionRef, window: M.Window) -> Any:
    """Return the row of headline numbers."""
    value = summary.metrics.get(metric)
    label = A.metric_label(metric).split(" (")[0]
    span = f"{M.hour_start(window.start):%Y-%m-%d} to {M.hour_start(window.end) - dt.timedelta(seconds=1):%Y-%m-%d}"
    seg = V.segment_text(window.segment, ref)
    return html.Div([
        dbc.Row([
            _stat("Predictions", f"{summary.n:,}", stat_id="mon-stat-n"),
            _stat("With ground truth", _pct(summary.label_share), stat_id="mon-stat-labelled"),
            _stat(label, fmt(value), stat_id="mon-stat-metric"),
            _stat("Records with an anomaly", _pct(summary.anomaly_share), stat_id="mon-stat-anomalies"),
            _stat("Open alerts", str(summary.open_alerts), stat_id="mon-stat-alerts",
                  tone="text-danger" if summary.open_alerts else ""),
        ], className="g-2"),
        html.Div(f"{ref.label} · {span} (UTC) · by {window.bucket}" + (f" · segment: {seg}" if seg else ""),
                 className="gb-help small mb-2"),
    ])


def update_timeline(stamp, range_key, bucket, seg_feature, seg_bins, metric, _local, model, version, *, user,
                    refresh: bool = False):
    """Return (timeline figure, headline numbers, message)."""
    try:
        ref = _ref(model, version, user)
        window = _window(ref, range_key, bucket, seg_feature, seg_bins)
        metric = choice(metric, name="Metric", options=V.PERFORMANCE[ref.task])
    except InvalidInput as exc:
        return _empty("Volume and performance over time"), None, error_alert(str(exc))
    with get_db().session() as s:
        rows = V.bucket_rows(s, ref, window)
        events = A.list_events(s, ref.model_id, version_id=ref.id, start=M.hour_start(window.start),
                               end=M.hour_start(window.end))
        comments = M.list_comments(s, ref.model_id, version_id=ref.id, start=M.hour_start(window.start),
                                   end=M.hour_start(window.end))
        open_alerts = M.open_alert_counts(s, [ref.model])[ref.model]
    perf = V.performance(rows, ref.task)
    fig = _keep_view(V.timeline(perf, ref, metric=metric, events=events, comments=comments, window=window),
                     f"{ref.id}:{range_key}:{bucket}:{metric}")
    summary = V.summary(rows, perf, [], open_alerts)
    message = None
    if not rows:
        message = dbc.Alert("No predictions were logged for this version in this time range. Services log them "
                            "through the API (see the API guide); `glassbox simulate` sends example traffic.",
                            color="light", className="mb-2")
    if refresh:
        return _patch(fig, marks=True), stats_row(summary, metric, ref, window), no_update
    return fig, stats_row(summary, metric, ref, window), message


def update_distributions(stamp, range_key, bucket, seg_feature, seg_bins, model, version, *, user,
                         refresh: bool = False):
    """Return (prediction distribution heatmap, anomaly counts) over time."""
    try:
        ref = _ref(model, version, user)
        window = _window(ref, range_key, bucket, seg_feature, seg_bins)
    except InvalidInput as exc:
        return _empty("Prediction distribution over time"), _empty("Input anomalies over time")
    with get_db().session() as s:
        scores = V.score_distribution(s, ref, window)
        rows = M.bucket_stats(s, window, columns=M.STATS_FOR["anomalies"])
    for row in rows:
        row["time"] = M.hour_start(row["bucket"]).isoformat()
    anomalies = V.anomalies(rows)
    key = f"{ref.id}:{range_key}:{bucket}"
    if refresh:
        return _patch(scores), _patch(anomalies)
    return _keep_view(scores, key), _keep_view(anomalies, key)


def _grid_options(prediction_rows: list[dict]) -> dict:
    return {**L.DRIFT_GRID_OPTIONS, "pinnedBottomRowData": prediction_rows}


def update_drift(stamp, range_key, bucket, seg_feature, seg_bins, model, version, *, user, refresh: bool = False):
    """Return (PSI bars, feature rows of the drift grid, grid options with the prediction row pinned, note)."""
    try:
        ref = _ref(model, version, user)
        window = _window(ref, range_key, bucket, seg_feature, seg_bins)
    except InvalidInput:
        return _empty("Input drift per feature"), [], _grid_options([]), None
    with get_db().session() as s:
        counts = V.drift_counts(s, ref, window)
    rows = V.drift_table(ref, counts)
    if not any(r["n_current"] for r in rows):
        return _keep_view(V.drift_bars(rows), f"{ref.id}"), [], _grid_options([]), "No predictions in this time range."
    features = [r for r in rows if r["feature"] != V.PREDICTION_ROW]
    prediction = [r for r in rows if r["feature"] == V.PREDICTION_ROW]
    drifting = [r["feature"] for r in features if r["severity"] == "significant"]
    note = (f"Significant drift (PSI above 0.25): {', '.join(drifting)}." if drifting
            else "No feature drifts significantly in this time range.")
    bars = V.drift_bars(rows)
    grid = V.drift_grid_rows(features)
    options = _grid_options(V.drift_grid_rows(prediction))
    if refresh:
        return _patch(bars), grid, options, note
    return _keep_view(bars, f"{ref.id}:{range_key}:{bucket}"), grid, options, note


def update_histogram(bar_click, selected_rows, cell_click, stamp, range_key, bucket, seg_feature, seg_bins, model,
                     version, chosen, *, user, trigger=None):
    """Return (histogram of the chosen feature, chosen feature); defaults to the most drifted feature."""
    feature = chosen if isinstance(chosen, str) else None
    if trigger == L.DRIFT_GRID and isinstance(cell_click, dict) and cell_click.get("value") == V.PREDICTION_ROW:
        feature = V.PREDICTION_ROW
    elif trigger == L.DRIFT_BARS and isinstance(bar_click, dict):
        points = bar_click.get("points") or [{}]
        picked = points[0].get("customdata") if isinstance(points[0], dict) else None
        feature = picked if isinstance(picked, str) else feature
    elif trigger == L.DRIFT_GRID and isinstance(selected_rows, list) and selected_rows:
        picked = selected_rows[0].get("feature") if isinstance(selected_rows[0], dict) else None
        feature = picked if isinstance(picked, str) else feature
    try:
        ref = _ref(model, version, user)
        window = _window(ref, range_key, bucket, seg_feature, seg_bins)
    except InvalidInput as exc:
        return _empty("Reference vs current"), no_update
    with get_db().session() as s:
        counts = V.drift_counts(s, ref, window)
    if feature not in ref.features and feature != V.PREDICTION_ROW:
        feature = V.most_drifted(ref, counts)
    if feature is None:
        return empty_figure("No current data to compare with the reference.", title="Reference vs current"), None
    return V.histogram(ref, counts, feature), feature


# -- records of a bucket --------------------------------------------------------------------------

def _clicked_time(click) -> str | None:
    if not isinstance(click, dict):
        return None
    points = click.get("points")
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        return None
    value = points[0].get("customdata")
    if isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) and len(value) <= 40 else None


def select_bucket(timeline_click, scores_click, anomalies_click, bucket, *, trigger=None):
    """Return the selected bucket {"start", "bucket"} from a click on a time chart (no_update otherwise)."""
    click = {L.TIMELINE: timeline_click, L.SCORES: scores_click, L.ANOMALIES: anomalies_click}.get(trigger)
    when = _clicked_time(click)
    if when is None or bucket not in M.BUCKETS:
        return no_update
    try:
        start = M.parse_timestamp(when)
    except ValueError:
        return no_update
    return {"start": M.hour_start(M.bucket_floor(M.hour_of(start), bucket)).isoformat(), "bucket": bucket}


def page_records(selected, _prev, _next, anomalous, seg_feature, seg_bins, page, model, version, *, user,
                 trigger=None):
    """Return (rows, columns, "rows a-b of n", title, page) of the selected bucket's records."""
    empty = [], no_update, "", "Click a bar or point on a time chart to list the records of that bucket.", 0
    if not isinstance(selected, dict):
        return empty
    try:
        ref = _ref(model, version, user, permission=Permission.VIEW_ROWS)
        bucket = choice(selected.get("bucket"), name="Bucket", options=list(M.BUCKETS))
        start = M.hour_of(M.parse_timestamp(str(selected.get("start"))[:40]))
        page = number(page if page is not None else 0, name="Page", lo=0, hi=1e6, integer=True)
        only_anomalous = flag(anomalous, name="Only anomalous")
        segment = V.make_segment(ref, seg_feature, seg_bins)
    except (InvalidInput, ValueError) as exc:
        return [], no_update, "", error_alert(str(exc)[:300]), 0
    start = M.bucket_floor(start, bucket)
    window = M.Window(ref.id, start, start + M.BUCKET_HOURS[bucket], bucket, segment)
    if trigger == L.RECORDS_NEXT:
        page += 1
    elif trigger == L.RECORDS_PREV:
        page = max(0, page - 1)
    else:
        page = 0
    with get_db().session() as s:
        where_total = M.count_records(s, window, anomalous_only=only_anomalous)
        last_page = max(0, (where_total - 1) // L.PAGE_SIZE)
        page = min(page, last_page)
        records = M.records_page(s, window, offset=page * L.PAGE_SIZE, limit=L.PAGE_SIZE,
                                 anomalous_only=only_anomalous)
    first = page * L.PAGE_SIZE + 1 if records else 0
    info = f"Rows {first:,}–{page * L.PAGE_SIZE + len(records):,} of {where_total:,}"
    label = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "week": "week of %Y-%m-%d"}[bucket]
    title = f"Records of {M.hour_start(start):{label}} (UTC)" + (
        f", segment {V.segment_text(segment, ref)}" if segment else "") + ". Open a record's explanation from its row."
    return V.record_rows(records, ref), V.record_columns(ref), info, title, page


def worst_records(stamp, range_key, bucket, seg_feature, seg_bins, model, version, *, user):
    """Return a small table of the records with the highest outlier scores in the window."""
    try:
        ref = _ref(model, version, user, permission=Permission.VIEW_ROWS)
        window = _window(ref, range_key, bucket, seg_feature, seg_bins)
    except InvalidInput:
        return None
    with get_db().session() as s:
        worst = M.worst_records(s, window, limit=8)
    if not worst:
        return None
    rows = V.record_rows(worst, ref)
    head = html.Thead(html.Tr([html.Th("Time (UTC)"), html.Th("Record"), html.Th("Outlier score"),
                               html.Th("Anomalies"), html.Th("Prediction"), html.Th("")]))
    body = html.Tbody([html.Tr([html.Td(r["time"]), html.Td(r["id"]), html.Td(fmt(r["outlier"], ".2f")),
                                html.Td(r["anomalies"] or "\u2013"), html.Td(r["prediction"]),
                                html.Td(html.A("Explain", href=r["explain"][len("[Explain]("):-1]))])
                       for r in rows])
    return html.Div([html.H2("Most unusual records in this time range", className="h6 mb-1"),
                     html.P("Outlier score above 1: stranger than 99 % of the training rows.",
                            className="gb-help small mb-2"),
                     dbc.Table([head, body], size="sm", hover=True, responsive=True, className="gb-table mb-0")],
                    className="gb-card p-3 mb-3", id="mon-worst-table")


# -- alerts ------------------------------------------------------------------------------------------

def alerts_list(stamp, range_key, bucket, _local, model, version, *, user):
    """Return the alert events of the time range, newest first, with acknowledge buttons for open ones."""
    try:
        ref = _ref(model, version, user)
        window = _window(ref, range_key, bucket, None, None)
    except InvalidInput:
        return html.P("\u2013", className="text-muted small mb-0")
    with get_db().session() as s:
        events = A.list_events(s, ref.model_id, version_id=ref.id, start=M.hour_start(window.start),
                               end=M.hour_start(window.end), limit=50)
    if not events:
        return html.P("No alert fired in this time range.", className="text-muted small mb-0", id="mon-no-alerts")
    items = []
    for e in events:
        if e["acknowledged_at"] is None:
            action = dbc.Button("Acknowledge", id={"type": L.ACK, "index": e["id"]}, size="sm", color="danger",
                                outline=True, className="mt-1")
            badge = dbc.Badge("open", color="danger", className="me-2")
        else:
            action = html.Div(f"Acknowledged by {e['acknowledged_by']} on {e['acknowledged_at']:%Y-%m-%d %H:%M} UTC",
                              className="gb-help small")
            badge = dbc.Badge("acknowledged", color="secondary", className="me-2")
        items.append(html.Li([html.Div([badge, html.Strong(e["rule"]),
                                        html.Span(f" · {e['time']:%Y-%m-%d %H:%M} UTC", className="gb-help small")]),
                              html.Div(e["message"], className="small"), action],
                             className="list-group-item", id=f"mon-alert-{e['id']}"))
    return html.Ul(items, className="list-group list-group-flush gb-alert-list")


def acknowledge(clicks, model, version, local, *, user, trigger=None):
    """Acknowledge the clicked alert (audited); return (message, bumped local revision)."""
    if not isinstance(trigger, dict) or not any(isinstance(c, int) and c > 0 for c in (clicks or [])):
        return no_update, no_update
    event_id = trigger.get("index")
    try:
        ref = _ref(model, version, user)
        event_id = number(event_id, name="Alert", lo=1, hi=2**31, integer=True)
        with get_db().session() as s:
            A.acknowledge(s, event_id, username=user.username, model_id=ref.model_id)
    except (InvalidInput, ValueError) as exc:
        record_event("alert.acknowledge", target=f"{str(model)[:60]}:{event_id}", outcome="failure",
                     detail=str(exc)[:200], username=user.username)
        return error_alert(str(exc)), no_update
    record_event("alert.acknowledge", target=f"{ref.model}:{event_id}", username=user.username)
    return None, (local or 0) + 1


# -- comments ----------------------------------------------------------------------------------------

def comments_thread(stamp, _local, model, version, *, user):
    """Return the comments of the version (and model-wide ones), newest first."""
    try:
        ref = _ref(model, version, user)
    except InvalidInput:
        return html.P("\u2013", className="text-muted small mb-0")
    with get_db().session() as s:
        comments = M.list_comments(s, ref.model_id, version_id=ref.id, limit=100)
    if not comments:
        return html.P("No comments yet.", className="text-muted small mb-0")
    may_comment = user.can(Permission.COMMENT, model=ref.model)
    items = []
    for c in comments:
        about = ""
        if c["start"] is not None:
            about = f"about {c['start']:%Y-%m-%d %H:%M}" + (f" to {c['end']:%Y-%m-%d %H:%M}" if c["end"] else "") \
                    + " UTC"
        own = may_comment and c["author"] == user.username
        tools = html.Div([
            dbc.Button("Edit", id={"type": L.COMMENT_EDIT, "index": c["id"]}, size="sm", color="link",
                       className="p-0 me-3"),
            dbc.Button("Delete", id={"type": L.COMMENT_DELETE, "index": c["id"]}, size="sm", color="link",
                       className="p-0 text-danger"),
        ]) if own else None
        items.append(html.Li([
            html.Div([html.Strong(c["author"]),
                      html.Span(f" · {c['created_at']:%Y-%m-%d %H:%M} UTC" + (" (edited)" if c["edited_at"] else ""),
                                className="gb-help small")]),
            html.Div(about, className="gb-help small") if about else None,
            html.Div(c["text"], className="gb-comment-text"),
            tools,
        ], className="list-group-item", id=f"mon-comment-{c['id']}"))
    return html.Ul(items, className="list-group list-group-flush")


def _scope_times(scope, selected, range_key, bucket, ref) -> tuple[dt.datetime | None, dt.datetime | None]:
    if scope == "model":
        return None, None
    if scope == "bucket":
        if not isinstance(selected, dict):
            raise InvalidInput("Click a point in time on a chart first, or choose another 'About'.")
        b = choice(selected.get("bucket"), name="Bucket", options=list(M.BUCKETS))
        try:
            start = M.parse_timestamp(str(selected.get("start"))[:40])
        except ValueError:
            raise InvalidInput("The selected point in time is not valid.") from None
        return start, start + dt.timedelta(hours=M.BUCKET_HOURS[b])
    window = _window(ref, range_key, bucket, None, None)
    return M.hour_start(window.start), M.hour_start(window.end)


def post_comment(_n, body, scope, editing, selected, range_key, bucket, model, version, local, *, user):
    """Post a new comment or save the one being edited (audited); return (message, text, editing, local, cancel)."""
    if not _n:
        return no_update, no_update, no_update, no_update, no_update
    hidden = {"display": "none"}
    try:
        ref = _ref(model, version, user, permission=Permission.COMMENT)
        body = text(body, name="Comment", max_length=M.MAX_COMMENT, required=True)
        if editing is not None:
            comment_id = number(editing, name="Comment", lo=1, hi=2**31, integer=True)
            with get_db().session() as s:
                M.edit_comment(s, comment_id, author=user.username, text=body)
            record_event("comment.edit", target=f"{ref.model}:{comment_id}", username=user.username)
            done = "Comment updated."
        else:
            scope = choice(scope, name="About", options=[o["value"] for o in L.SCOPE_OPTIONS])
            start, end = _scope_times(scope, selected, range_key, bucket, ref)
            with get_db().session() as s:
                row = M.add_comment(s, model_id=ref.model_id, version_id=ref.id, author=user.username, text=body,
                                    start=start, end=end, chart="timeline" if start else None)
                comment_id = row.id
            record_event("comment.create", target=f"{ref.model}:{comment_id}", username=user.username)
            done = "Comment posted."
    except (InvalidInput, ValueError, PermissionError) as exc:
        return error_alert(str(exc)), no_update, no_update, no_update, no_update
    return (dbc.Alert(done, color="success", className="py-1 mb-0", duration=4000), "", None, (local or 0) + 1,
            hidden)


def edit_or_cancel(edit_clicks, _cancel, model, version, *, user, trigger=None):
    """Load one's own comment into the form for editing, or cancel; return (editing, text, button, cancel style)."""
    shown, hidden = {"display": "inline-block"}, {"display": "none"}
    if trigger == L.COMMENT_CANCEL:
        return None, "", "Post comment", hidden
    if not isinstance(trigger, dict) or not any(isinstance(c, int) and c > 0 for c in (edit_clicks or [])):
        return no_update, no_update, no_update, no_update
    try:
        ref = _ref(model, version, user, permission=Permission.COMMENT)
        comment_id = number(trigger.get("index"), name="Comment", lo=1, hi=2**31, integer=True)
        with get_db().session() as s:
            row = s.get(M.Comment, comment_id)
            if row is None or row.model_id != ref.model_id or row.author != user.username:
                raise InvalidInput("You can only edit your own comments.")
            body = row.text
    except InvalidInput:
        return None, no_update, "Post comment", hidden
    return comment_id, body, "Save changes", shown


def delete_own_comment(clicks, model, version, local, *, user, trigger=None):
    """Delete one's own clicked comment (audited); return (message, bumped local revision)."""
    if not isinstance(trigger, dict) or not any(isinstance(c, int) and c > 0 for c in (clicks or [])):
        return no_update, no_update
    try:
        ref = _ref(model, version, user, permission=Permission.COMMENT)
        comment_id = number(trigger.get("index"), name="Comment", lo=1, hi=2**31, integer=True)
        with get_db().session() as s:
            row = s.get(M.Comment, comment_id)
            if row is None or row.model_id != ref.model_id:
                raise InvalidInput("That comment does not exist any more.")
            M.delete_comment(s, comment_id, author=user.username)
    except (InvalidInput, ValueError, PermissionError) as exc:
        return error_alert(str(exc)), no_update
    record_event("comment.delete", target=f"{ref.model}:{comment_id}", username=user.username)
    return dbc.Alert("Comment deleted.", color="secondary", className="py-1 mb-0", duration=4000), (local or 0) + 1


# -- registration -------------------------------------------------------------------------------------

def register(dash_app, policy) -> None:
    """Register the monitoring page's callbacks, each with the permission it needs."""
    view = Permission.VIEW_MONITORING
    user = policy.current_user
    register_selector(policy, L.PREFIX, permission=view, split=False)
    selected = (State(f"{L.PREFIX}-model", "value"), State(f"{L.PREFIX}-version", "value"))
    filters = (Input(L.RANGE, "value"), Input(L.BUCKET, "value"), Input(L.SEG_FEATURE, "value"),
               Input(L.SEG_BINS, "value"))

    policy.callback(Output(L.SEG_FEATURE, "options"), Output(L.SEG_FEATURE, "value"), Output(L.METRIC, "options"),
                    Output(L.METRIC, "value"),
                    Input(f"{L.PREFIX}-model", "value"), Input(f"{L.PREFIX}-version", "value"),
                    State(L.SEG_FEATURE, "value"), State(L.METRIC, "value"), permission=view)(
        lambda m, v, f, metric: filter_options(m, v, f, metric, user=user()))
    policy.callback(Output(L.SEG_BINS, "options"), Output(L.SEG_BINS, "value"),
                    Input(L.SEG_FEATURE, "value"), *selected, State(L.SEG_BINS, "value"), permission=view)(
        lambda f, m, v, cur: segment_values(f, m, v, cur, user=user()))
    policy.clientside_callback("function(live){return !live;}", Output(L.INTERVAL, "disabled"), Input(L.LIVE, "value"))
    policy.callback(Output(L.STAMP, "data"), Output(L.UPDATED, "children"),
                    Input(L.INTERVAL, "n_intervals"), Input(f"{L.PREFIX}-model", "value"),
                    Input(f"{L.PREFIX}-version", "value"), State(L.STAMP, "data"), permission=view)(
        lambda n, m, v, cur: check_stamp(n, m, v, cur, user=user(), trigger=ctx.triggered_id))

    policy.callback(Output(L.TIMELINE, "figure"), Output(L.STATS, "children"), Output(L.MESSAGE, "children"),
                    Input(L.STAMP, "data"), *filters, Input(L.METRIC, "value"), Input(L.LOCAL, "data"), *selected,
                    permission=view)(
        lambda st, r, b, f, bins, metric, loc, m, v: update_timeline(
            st, r, b, f, bins, metric, loc, m, v, user=user(), refresh=_refresh_only(st)))
    policy.callback(Output(L.SCORES, "figure"), Output(L.ANOMALIES, "figure"),
                    Input(L.STAMP, "data"), *filters, *selected, permission=view)(
        lambda st, r, b, f, bins, m, v: update_distributions(st, r, b, f, bins, m, v, user=user(),
                                                             refresh=_refresh_only(st)))
    policy.callback(Output(L.DRIFT_BARS, "figure"), Output(L.DRIFT_GRID, "rowData"),
                    Output(L.DRIFT_GRID, "dashGridOptions"), Output(L.DRIFT_NOTE, "children"),
                    Input(L.STAMP, "data"), *filters, *selected, permission=view)(
        lambda st, r, b, f, bins, m, v: update_drift(st, r, b, f, bins, m, v, user=user(),
                                                     refresh=_refresh_only(st)))
    policy.callback(Output(L.HISTOGRAM, "figure"), Output(L.DRIFT_FEATURE, "data"),
                    Input(L.DRIFT_BARS, "clickData"), Input(L.DRIFT_GRID, "selectedRows"),
                    Input(L.DRIFT_GRID, "cellClicked"), Input(L.STAMP, "data"), *filters, *selected,
                    State(L.DRIFT_FEATURE, "data"), permission=view)(
        lambda click, rows, cell, st, r, b, f, bins, m, v, chosen: update_histogram(
            click, rows, cell, st, r, b, f, bins, m, v, chosen, user=user(), trigger=ctx.triggered_id))

    policy.callback(Output(L.BUCKET_SEL, "data"), Input(L.TIMELINE, "clickData"), Input(L.SCORES, "clickData"), Input(L.ANOMALIES, "clickData"),
                    State(L.BUCKET, "value"), prevent_initial_call=True, permission=view)(
        lambda a, b, c, bucket: select_bucket(a, b, c, bucket, trigger=ctx.triggered_id))
    policy.callback(Output(L.RECORDS, "rowData"), Output(L.RECORDS, "columnDefs"), Output(L.RECORDS_INFO, "children"),
                    Output(L.RECORDS_TITLE, "children"), Output(L.RECORDS_PAGE, "data"),
                    Input(L.BUCKET_SEL, "data"), Input(L.RECORDS_PREV, "n_clicks"), Input(L.RECORDS_NEXT, "n_clicks"),
                    Input(L.RECORDS_ANOMALOUS, "value"), Input(L.SEG_FEATURE, "value"), Input(L.SEG_BINS, "value"),
                    State(L.RECORDS_PAGE, "data"), *selected, permission=Permission.VIEW_ROWS)(
        lambda sel, p, n, anom, f, bins, page, m, v: page_records(
            sel, p, n, anom, f, bins, page, m, v, user=user(), trigger=ctx.triggered_id))
    policy.callback(Output(L.WORST, "children"), Input(L.STAMP, "data"), *filters, *selected,
                    permission=Permission.VIEW_ROWS)(
        lambda st, r, b, f, bins, m, v: worst_records(st, r, b, f, bins, m, v, user=user()))

    policy.callback(Output(L.ALERTS, "children"), Input(L.STAMP, "data"), Input(L.RANGE, "value"),
                    Input(L.BUCKET, "value"), Input(L.LOCAL, "data"), *selected, permission=view)(
        lambda st, r, b, loc, m, v: alerts_list(st, r, b, loc, m, v, user=user()))
    policy.callback(Output(L.ACK_MESSAGE, "children"), Output(L.LOCAL, "data"),
                    Input({"type": L.ACK, "index": ALL}, "n_clicks"), *selected, State(L.LOCAL, "data"),
                    prevent_initial_call=True, permission=view)(
        lambda clicks, m, v, loc: acknowledge(clicks, m, v, loc, user=user(), trigger=ctx.triggered_id))

    policy.callback(Output(L.COMMENTS, "children"), Input(L.STAMP, "data"), Input(L.LOCAL, "data"), *selected,
                    permission=view)(
        lambda st, loc, m, v: comments_thread(st, loc, m, v, user=user()))
    policy.callback(Output(L.COMMENT_MESSAGE, "children"), Output(L.COMMENT_TEXT, "value"),
                    Output(L.COMMENT_EDITING, "data"), Output(L.LOCAL, "data", allow_duplicate=True),
                    Output(L.COMMENT_CANCEL, "style"),
                    Input(L.COMMENT_POST, "n_clicks"), State(L.COMMENT_TEXT, "value"), State(L.COMMENT_SCOPE, "value"),
                    State(L.COMMENT_EDITING, "data"), State(L.BUCKET_SEL, "data"), State(L.RANGE, "value"),
                    State(L.BUCKET, "value"), *selected, State(L.LOCAL, "data"), prevent_initial_call=True,
                    permission=Permission.COMMENT)(
        lambda n, body, scope, editing, sel, r, b, m, v, loc: post_comment(
            n, body, scope, editing, sel, r, b, m, v, loc, user=user()))
    policy.callback(Output(L.COMMENT_EDITING, "data", allow_duplicate=True),
                    Output(L.COMMENT_TEXT, "value", allow_duplicate=True), Output(L.COMMENT_POST, "children"),
                    Output(L.COMMENT_CANCEL, "style", allow_duplicate=True),
                    Input({"type": L.COMMENT_EDIT, "index": ALL}, "n_clicks"), Input(L.COMMENT_CANCEL, "n_clicks"),
                    *selected, prevent_initial_call=True, permission=Permission.COMMENT)(
        lambda clicks, cancel, m, v: edit_or_cancel(clicks, cancel, m, v, user=user(), trigger=ctx.triggered_id))
    policy.callback(Output(L.COMMENT_MESSAGE, "children", allow_duplicate=True),
                    Output(L.LOCAL, "data", allow_duplicate=True),
                    Input({"type": L.COMMENT_DELETE, "index": ALL}, "n_clicks"), *selected, State(L.LOCAL, "data"),
                    prevent_initial_call=True, permission=Permission.COMMENT)(
        lambda clicks, m, v, loc: delete_own_comment(clicks, m, v, loc, user=user(), trigger=ctx.triggered_id))
