"""Monitoring page callbacks: good, edge and forged values; model-scoped access; audited actions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from dash import Patch, no_update
from sqlalchemy import select

from app.security.users import find_user, snapshot
from callbacks import monitoring as C
from data import alerts as A
from data import monitoring as M
from data.db import utcnow
from data.models import AuditEvent
from layouts import monitoring as L
from tests.api.helpers import binary_record, register_binary
from tests.conftest import post_callback, sign_in

NOW = utcnow()
FILTERS = ("30d", "day", None, None)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One app: 'churn' with 10 days of traffic (age drifts in the last 4), labels, an alert, a comment."""
    from tests.conftest import _test_hash, build_test_app
    from tests.api.helpers import register_regression

    tmp = tmp_path_factory.mktemp("mon-callbacks")
    app = build_test_app(tmp)
    db = app.extensions["glassbox.db"]
    register_binary(db, tmp / "artifacts")
    register_regression(db, tmp / "artifacts", name="other")
    from app.security.users import create_user, grant_role

    with db.session() as s:
        for name, role, model in (("ann", "analyst", None), ("vic", "viewer", None), ("sam", "analyst", "other"),
                                  ("bob", "analyst", None)):
            user = create_user(s, name, "placeholder-Pass-987", role=role, model=model)
            user.password_hash = _test_hash()
        grant_role(s, find_user(s, "sam"), "viewer", model="other")
    rng = np.random.default_rng(0)
    start = (NOW - dt.timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    records, labels = [], []
    for i in range(600):
        when = start + dt.timedelta(minutes=24 * i)
        shift = 35.0 if when > NOW - dt.timedelta(days=4) else 0.0
        score = float(rng.random())
        records.append(binary_record(i, when, age=float(rng.integers(18, 80) + shift), income=float(rng.gamma(3, 20)),
                                     plan=str(rng.choice(["basic", "plus", "pro"])),
                                     label="yes" if score >= 0.5 else "no", score=score))
        if i % 2 == 0:
            labels.append({"id": f"r{i}", "label": "yes" if rng.random() < score else "no"})
    assert M.ingest_predictions(db, "churn", records, max_records=5000).ok
    assert M.ingest_labels(db, "churn", labels, max_records=5000).ok
    with db.session() as s:
        A.create_rule(s, model_name="churn", name="Age drift", metric="psi:age", comparison=">", threshold=0.25,
                      window=1, bucket="day", min_samples=20, created_by="tests")
    fired = A.evaluate_rules(db, model_name="churn")
    assert fired, "the drift rule should fire on the drifted days"
    with db.session() as s:
        from data.registry import get_version

        v = get_version(s, "churn")
        M.add_comment(s, model_id=v.model_id, version_id=v.id, author="bob", text="Campaign started",
                      start=NOW - dt.timedelta(days=4), end=NOW - dt.timedelta(days=3))
    yield app
    db.dispose()


def _user(app, name):
    with app.extensions["glassbox.db"].session() as s:
        return snapshot(find_user(s, name))


@pytest.fixture
def ctx(world):
    with world.test_request_context():
        yield world


def test_timeline_figure_and_numbers(ctx):
    fig, stats, message = C.update_timeline(None, *FILTERS, "roc_auc", 0, "churn", None, user=_user(ctx, "ann"))
    assert message is None
    names = [t.name for t in fig.data]
    assert {"Labelled", "Awaiting label", "Alert"} <= set(names)
    assert sum(sum(t.y) for t in fig.data if t.name in ("Labelled", "Awaiting label")) == 600
    assert "600" in str(stats)


@pytest.mark.parametrize("args", [
    ("1e9", "day", None, None, "roc_auc"), ("30d", {"x": 1}, None, None, "roc_auc"),
    ("30d", "day", None, None, "'; drop table users; --"), ("30d", "day", "age", "abc", "roc_auc"),
    ("30d", "day", "nope", [0], "roc_auc"), ("30d", "day", "age", [99], "roc_auc"), ("30d", "day", "age", [True], "roc_auc"),
    ("all", "hour", None, None, "rmse"), (None, None, None, None, None),
])
def test_timeline_forged_filters_give_a_message(ctx, args):
    fig, stats, message = C.update_timeline(None, *args[:4], args[4], 0, "churn", 1, user=_user(ctx, "ann"))
    assert message is not None and stats is None


@pytest.mark.parametrize("model, version", [(None, None), ("", 1), ({"a": 1}, 1), ("churn", "1"), ("churn", 99),
                                            ("churn", -1), ("x" * 500, 1), ("unknown", None)])
def test_forged_model_or_version_gives_a_message(ctx, model, version):
    user = _user(ctx, "ann")
    _, _, message = C.update_timeline(None, *FILTERS, "roc_auc", 0, model, version, user=user)
    assert message is not None
    bars, rows, options, note = C.update_drift(None, *FILTERS, model, version, user=user)
    assert rows == [] and note is None and options["pinnedBottomRowData"] == []
    rows, _, info, title, page = C.page_records({"start": NOW.isoformat(), "bucket": "day"}, None, None, False,
                                                None, None, 0, model, version, user=user)
    assert rows == [] and page == 0


def test_user_with_a_grant_on_another_model_gets_the_permission_message(ctx):
    sam = _user(ctx, "sam")
    _, stats, message = C.update_timeline(None, *FILTERS, "roc_auc", 0, "churn", None, user=sam)
    assert stats is None and "do not have access" in str(message)
    bars, rows, options, note = C.update_drift(None, *FILTERS, "churn", None, user=sam)
    assert rows == []
    assert "Age drift" not in str(C.alerts_list(None, "30d", "day", 0, "churn", None, user=sam))
    assert "Campaign" not in str(C.comments_thread(None, 0, "churn", None, user=sam))
    rows, *_ = C.page_records({"start": NOW.isoformat(), "bucket": "day"}, None, None, False, None, None, 0,
                              "churn", None, user=sam)
    assert rows == []


def test_drift_table_puts_the_drifted_feature_first(ctx):
    bars, rows, options, note = C.update_drift(None, "7d", "day", None, None, "churn", None, user=_user(ctx, "vic"))
    assert [r["feature"] for r in options["pinnedBottomRowData"]] == ["(prediction)"]
    assert "(prediction)" not in [r["feature"] for r in rows]
    assert rows[0]["feature"] == "age" and rows[0]["severity"] == "significant"
    assert bars.data[0].y[0] == "age" or "age" in bars.layout.yaxis.categoryarray[-1:]
    assert "age" in note
    assert [r["psi"] for r in rows if r["psi"] is not None] == sorted([r["psi"] for r in rows if r["psi"] is not None],
                                                                       reverse=True)


def test_histogram_defaults_to_the_worst_feature_and_follows_clicks(ctx):
    user = _user(ctx, "vic")
    fig, feature = C.update_histogram(None, None, None, None, "7d", "day", None, None, "churn", None, None, user=user)
    assert feature == "age" and "age" in fig.layout.title.text
    click = {"points": [{"customdata": "plan"}]}
    fig, feature = C.update_histogram(click, None, None, None, "7d", "day", None, None, "churn", None, "age",
                                      user=user, trigger=L.DRIFT_BARS)
    assert feature == "plan"
    fig, feature = C.update_histogram(None, [{"feature": "income"}], None, None, "7d", "day", None, None, "churn",
                                      None, "age", user=user, trigger=L.DRIFT_GRID)
    assert feature == "income"
    fig, feature = C.update_histogram(None, [], {"value": "(prediction)", "colId": "feature"}, None, "7d", "day",
                                      None, None, "churn", None, "age", user=user, trigger=L.DRIFT_GRID)
    assert feature == "(prediction)" and "Predicted probability" in fig.layout.title.text
    # Forged clicks fall back to the chosen feature.
    for forged in ({"points": "x"}, {"points": [{"customdata": {"$gt": 1}}]}, "junk"):
        _, feature = C.update_histogram(forged, None, forged, None, "7d", "day", None, None, "churn", None, "age",
                                        user=user, trigger=L.DRIFT_BARS)
        assert feature == "age"


def test_segment_narrows_every_view(ctx):
    user = _user(ctx, "ann")
    options, kept = C.segment_values("plan", "churn", None, [0, 99, "x"], user=user)
    basic = next(o["value"] for o in options if o["label"] == "basic")
    assert kept == [0]
    _, stats_all, _ = C.update_timeline(None, *FILTERS, "roc_auc", 0, "churn", None, user=user)
    _, stats_seg, _ = C.update_timeline(None, "30d", "day", "plan", [basic], "roc_auc", 0, "churn", None, user=user)
    assert "segment: plan in basic" in str(stats_seg) and "segment" not in str(stats_all)


def test_stamp_changes_only_when_data_changes(ctx):
    user = _user(ctx, "vic")
    first, _ = C.check_stamp(0, "churn", None, None, user=user)
    assert first["refresh"] is False
    again, checked = C.check_stamp(1, "churn", None, first, user=user, trigger=L.INTERVAL)
    assert again is no_update and checked.startswith("Checked")
    db = ctx.extensions["glassbox.db"]
    assert M.ingest_predictions(db, "churn", [binary_record(10_000, NOW)]).ok
    moved, _ = C.check_stamp(2, "churn", None, first, user=user, trigger=L.INTERVAL)
    assert moved["value"] != first["value"] and moved["refresh"] is True


def test_refresh_answers_with_patches(ctx):
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    stamp = {"key": "1", "value": "x", "refresh": True}
    context_value.set(AttributeDict(triggered_inputs=[{"prop_id": f"{L.STAMP}.data", "value": stamp}]))
    assert C._refresh_only(stamp)
    fig, stats, message = C.update_timeline(stamp, *FILTERS, "roc_auc", 0, "churn", None, user=_user(ctx, "ann"),
                                            refresh=True)
    assert isinstance(fig, Patch) and message is no_update
    scores, anomalies = C.update_distributions(stamp, *FILTERS, "churn", None, user=_user(ctx, "ann"), refresh=True)
    assert isinstance(scores, Patch) and isinstance(anomalies, Patch)


def test_clicking_a_bucket_pages_its_records(ctx):
    user = _user(ctx, "ann")
    day = (NOW - dt.timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    selected = C.select_bucket({"points": [{"customdata": day.isoformat()}]}, None, None, "day", trigger=L.TIMELINE)
    assert selected == {"start": day.isoformat(), "bucket": "day"}
    rows, columns, info, title, page = C.page_records(selected, None, None, False, None, None, 0, "churn", None,
                                                      user=user)
    assert len(rows) == 50 and page == 0 and info.startswith("Rows 1–50 of 60")
    assert rows[0]["explain"].startswith("[Explain](/explain?model=churn&version=1&record=r")
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(rows[0]["explain"][len("[Explain]("):-1]).query)
    import json

    assert set(json.loads(query["values"][0])) == {"age", "income", "plan"}
    with ctx.extensions["glassbox.db"].session() as s:
        version, features = M.record_features(s, "churn", query["record"][0])
    assert version == 1 and features == json.loads(query["values"][0])
    assert {c["headerName"] for c in columns} >= {"age", "income", "plan"}
    rows2, _, info2, _, page2 = C.page_records(selected, None, 1, False, None, None, 0, "churn", None, user=user,
                                               trigger=L.RECORDS_NEXT)
    assert page2 == 1 and len(rows2) == 10 and info2 == "Rows 51–60 of 60"
    assert not {r["id"] for r in rows} & {r["id"] for r in rows2}
    # Past the last page stays on the last page.
    _, _, _, _, page3 = C.page_records(selected, None, 2, False, None, None, 5, "churn", None, user=user,
                                       trigger=L.RECORDS_NEXT)
    assert page3 == 1


@pytest.mark.parametrize("click", [None, "x", {"points": []}, {"points": [{"customdata": "not a time"}]},
                                   {"points": [{"customdata": ["2026-01-01T00:00:00"] * 3}]},
                                   {"points": [{"customdata": 12}]}])
def test_forged_clicks_select_nothing(ctx, click):
    out = C.select_bucket(click, None, None, "day", trigger=L.TIMELINE)
    assert out is no_update or isinstance(out, dict)


@pytest.mark.parametrize("selected, page", [({"start": "garbage", "bucket": "day"}, 0),
                                            ({"start": NOW.isoformat(), "bucket": "month"}, 0),
                                            ({"start": NOW.isoformat(), "bucket": "day"}, "1e9"),
                                            ({"start": NOW.isoformat(), "bucket": "day"}, -3),
                                            ("junk", 0)])
def test_forged_record_requests_give_a_message(ctx, selected, page):
    rows, _, info, title, out_page = C.page_records(selected, None, None, False, None, None, page, "churn", None,
                                                    user=_user(ctx, "ann"))
    assert rows == [] and out_page == 0


def test_records_need_row_permission_on_the_model(ctx):
    rows, *_ = C.page_records({"start": NOW.isoformat(), "bucket": "day"}, None, None, False, None, None, 0,
                              "churn", None, user=_user(ctx, "vic"))
    assert rows == []
    assert C.worst_records(None, *FILTERS, "churn", None, user=_user(ctx, "vic")) is None


def test_worst_records_for_analysts(ctx):
    table = C.worst_records(None, *FILTERS, "churn", None, user=_user(ctx, "ann"))
    assert table is not None and "Explain" in str(table)


def test_acknowledge_is_audited_and_scoped(ctx):
    db = ctx.extensions["glassbox.db"]
    with db.session() as s:
        event_id = s.scalar(select(M.AlertEvent.id))
    user = _user(ctx, "vic")
    assert C.acknowledge([None], "churn", None, 0, user=user, trigger={"type": L.ACK, "index": event_id}) == \
        (no_update, no_update)
    message, local = C.acknowledge([1], "churn", None, 0, user=_user(ctx, "sam"),
                                   trigger={"type": L.ACK, "index": event_id})
    assert local is no_update and "do not have access" in str(message)
    message, local = C.acknowledge([1], "churn", None, 3, user=user, trigger={"type": L.ACK, "index": "1; drop"})
    assert local is no_update
    message, local = C.acknowledge([1], "churn", None, 3, user=user, trigger={"type": L.ACK, "index": event_id})
    assert message is None and local == 4
    with db.session() as s:
        assert s.get(M.AlertEvent, event_id).acknowledged_by == "vic"
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "alert.acknowledge",
                                                 AuditEvent.outcome == "success")).username == "vic"
    message, local = C.acknowledge([1], "churn", None, 4, user=user, trigger={"type": L.ACK, "index": event_id})
    assert local is no_update and "already" in str(message)
    assert "acknowledged" in str(C.alerts_list(None, "30d", "day", 0, "churn", None, user=user))


def test_comments_post_edit_delete_own_only(ctx):
    vic, bob = _user(ctx, "vic"), _user(ctx, "bob")
    message, text, editing, local, _ = C.post_comment(1, "  Looks like the campaign  ", "range", None, None, "30d",
                                                      "day", "churn", None, 0, user=vic)
    assert text == "" and local == 1
    db = ctx.extensions["glassbox.db"]
    with db.session() as s:
        mine = s.scalar(select(M.Comment).where(M.Comment.author == "vic"))
        theirs = s.scalar(select(M.Comment).where(M.Comment.author == "bob"))
        assert mine.text == "Looks like the campaign" and mine.start is not None
    thread = str(C.comments_thread(None, 0, "churn", None, user=vic))
    assert "Looks like the campaign" in thread and "Campaign started" in thread
    assert f"'index': {mine.id}" in thread and f"'index': {theirs.id}" not in thread  # edit buttons on own only
    assert C.edit_or_cancel([1], None, "churn", None, user=vic, trigger={"type": L.COMMENT_EDIT, "index": theirs.id})[0] \
        is None
    editing, text, button, _ = C.edit_or_cancel([1], None, "churn", None, user=vic,
                                                trigger={"type": L.COMMENT_EDIT, "index": mine.id})
    assert editing == mine.id and text == "Looks like the campaign" and button == "Save changes"
    C.post_comment(2, "It was the campaign", "range", mine.id, None, "30d", "day", "churn", None, 1, user=vic)
    message, _, _, local, _ = C.post_comment(3, "hijack", "range", theirs.id, None, "30d", "day", "churn", None, 1,
                                             user=vic)
    assert local is no_update and "own" in str(message)
    message, local = C.delete_own_comment([1], "churn", None, 1, user=vic,
                                          trigger={"type": L.COMMENT_DELETE, "index": theirs.id})
    assert local is no_update
    with db.session() as s:
        assert s.get(M.Comment, theirs.id).text == "Campaign started"
        assert s.get(M.Comment, mine.id).text == "It was the campaign"
    message, local = C.delete_own_comment([1], "churn", None, 1, user=vic,
                                          trigger={"type": L.COMMENT_DELETE, "index": mine.id})
    assert local == 2
    with db.session() as s:
        assert s.get(M.Comment, mine.id) is None
        actions = {e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.username == "vic"))}
        assert {"comment.create", "comment.edit", "comment.delete"} <= actions


@pytest.mark.parametrize("body, scope, selected", [("", "range", None), ("x" * 3000, "range", None),
                                                   ({"a": 1}, "range", None), ("ok", "bucket", None),
                                                   ("ok", "everything", None), ("ok", "bucket", {"start": "x"})])
def test_forged_comments_give_a_message(ctx, body, scope, selected):
    message, _, _, local, _ = C.post_comment(1, body, scope, None, selected, "30d", "day", "churn", None, 0,
                                             user=_user(ctx, "vic"))
    assert local is no_update and message is not None


def test_through_the_gate_viewers_get_figures_but_not_records(world):
    client = world.test_client()
    sign_in(client, world.extensions["glassbox.db"], "vic")
    state = [{"id": "mon-model", "property": "value", "value": "churn"},
             {"id": "mon-version", "property": "value", "value": None}]
    inputs = [{"id": L.STAMP, "property": "data", "value": None},
              {"id": L.RANGE, "property": "value", "value": "30d"}, {"id": L.BUCKET, "property": "value", "value": "day"},
              {"id": L.SEG_FEATURE, "property": "value", "value": None},
              {"id": L.SEG_BINS, "property": "value", "value": None}]
    response = post_callback(client, f"..{L.DRIFT_BARS}.figure...{L.DRIFT_GRID}.rowData...{L.DRIFT_GRID}"
                                     f".dashGridOptions...{L.DRIFT_NOTE}.children..",
                             inputs=inputs, state=state)
    assert response.status_code == 200 and b'"age"' in response.data
    records = f"..{L.RECORDS}.rowData...{L.RECORDS}.columnDefs...{L.RECORDS_INFO}.children...{L.RECORDS_TITLE}" \
              f".children...{L.RECORDS_PAGE}.data.."
    assert post_callback(client, records, inputs=[], state=[]).status_code == 403


def test_alert_badge_for_the_overview(ctx):
    assert L.alert_badge("churn", 0) is None
    badge = L.alert_badge("fraud imbalanced", 2)
    assert badge.id == "overview-alerts-fraud-imbalanced"
    assert "2 open alerts" in str(badge) and "/monitoring?model=fraud%20imbalanced" in str(badge)
    assert "1 open alert'" in str(L.alert_badge("churn", 1)).replace('"', "'")
    with ctx.extensions["glassbox.db"].session() as s:
        counts = M.open_alert_counts(s, ["churn", "other"])
        open_events = len(s.scalars(select(M.AlertEvent).where(M.AlertEvent.acknowledged_at.is_(None))).all())
    assert counts == {"churn": open_events, "other": 0}
