"""Reports: self-contained HTML content, generate and download (audited), model-scoped access, forged values."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
from dash import no_update
from sqlalchemy import select

from app.security.users import find_user, snapshot
from callbacks import reports as C
from data import monitoring as M
from data.db import utcnow
from data.models import AuditEvent
from data.reports import ReportError, generate_report, period_bounds, report_content
from layouts import reports as L
from tests.api.helpers import binary_record, register_binary, register_regression

NOW = utcnow()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """'churn' with 6 days of traffic (age drifts), labels, an alert and a comment with markup; 'other' without."""
    from app.security.users import create_user
    from data import alerts as A
    from tests.conftest import _test_hash, build_test_app

    tmp = tmp_path_factory.mktemp("reports")
    app = build_test_app(tmp)
    db = app.extensions["glassbox.db"]
    register_binary(db, tmp / "artifacts")
    register_regression(db, tmp / "artifacts", name="other")
    with db.session() as s:
        for name, role, model in (("vic", "viewer", None), ("sam", "viewer", "other")):
            create_user(s, name, "placeholder-Pass-987", role=role, model=model).password_hash = _test_hash()
    rng = np.random.default_rng(1)
    start = (NOW - dt.timedelta(days=6)).replace(hour=0, minute=0, second=0, microsecond=0)
    records = [binary_record(i, start + dt.timedelta(minutes=20 * i),
                             age=float(rng.integers(18, 80) + (30 if i > 250 else 0)),
                             income=float(rng.gamma(3.0, 20.0)), plan=str(rng.choice(["basic", "plus", "pro"])),
                             score=float(rng.random()))
               for i in range(400)]
    for r in records:
        r["prediction"]["label"] = "yes" if r["prediction"]["score"] >= 0.5 else "no"
    assert M.ingest_predictions(db, "churn", records, max_records=1000).ok
    assert M.ingest_labels(db, "churn", [{"id": f"r{i}", "label": "yes" if i % 3 else "no"} for i in range(0, 400, 2)],
                           max_records=1000).ok
    with db.session() as s:
        A.create_rule(s, model_name="churn", name="Age drift", metric="psi:age", comparison=">", threshold=0.25,
                      bucket="day", min_samples=10, created_by="tests")
        from data.registry import get_version

        v = get_version(s, "churn")
        M.add_comment(s, model_id=v.model_id, version_id=v.id, author="vic",
                      text="<script>alert('x')</script> Partner feed changed", start=NOW - dt.timedelta(days=2))
    assert A.evaluate_rules(db, model_name="churn")
    yield app
    db.dispose()


def _user(app, name):
    with app.extensions["glassbox.db"].session() as s:
        return snapshot(find_user(s, name))


@pytest.fixture
def ctx(world):
    with world.test_request_context():
        yield world


@pytest.fixture(scope="module")
def weekly(world):
    """One weekly report of 'churn' up to now, generated through the callback."""
    with world.test_request_context():
        message, local = C.generate(1, "weekly", True, "churn", None, 0, user=_user(world, "vic"))
    assert local == 1, message
    with world.extensions["glassbox.db"].session() as s:
        report_id = s.scalar(select(M.Report.id).order_by(M.Report.id.desc()))
        return report_id, report_content(s, report_id)


def test_report_is_self_contained_html(weekly):
    _, (model, filename, html) = weekly
    assert model == "churn" and re.fullmatch(r"glassbox-churn-v1-weekly-\d{8}\.html", filename)
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    # plotly.js is inlined once; nothing is fetched from the network.
    assert html.count("plotly.js v") >= 1 and len(html) > 3_000_000
    assert not re.search(r"<script[^>]+src=", html) and not re.search(r"<link[^>]+href=\"?https?:", html)
    for section in ("Summary", "Metrics", "Confusion matrix", "Feature influence", "Input drift", "Input anomalies",
                    "Alerts", "Comments"):
        assert f"<h2>{section}" in html, section


def test_report_numbers_and_escaping(weekly):
    _, (_, _, html) = weekly
    assert "<b>400</b>" in html  # predictions in the period
    assert "Age drift" in html and "class='sig'>significant" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Partner feed changed" in html
    assert "<script>alert('x')</script>" not in html
    drift_rows = html[html.index("<h2>Input drift"):html.index("<h2>Input anomalies")]
    names = [n for n in re.findall(r"<tr><td>([^<]+)</td>", drift_rows) if n != "(prediction)"]
    assert names[0] == "age" and set(names) == {"age", "income", "plan"}


def test_generate_is_audited_and_listed(ctx, weekly):
    report_id, _ = weekly
    table = str(C.reports_table("churn", None, 1, user=_user(ctx, "vic")))
    assert "Weekly" in table and f"'index': {report_id}" in table
    with ctx.extensions["glassbox.db"].session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "report.generate"))
        assert event.username == "vic" and event.target == f"churn:{report_id}"


def test_download_is_audited(ctx, weekly):
    report_id, (_, filename, html) = weekly
    data, message = C.download([1], user=_user(ctx, "vic"), trigger={"type": L.DOWNLOAD_BUTTON, "index": report_id})
    assert message is None and data["filename"] == filename and data["content"] == html
    assert data["type"] == "text/html"
    with ctx.extensions["glassbox.db"].session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "report.download",
                                                  AuditEvent.outcome == "success"))
        assert event.username == "vic" and event.detail == filename


def test_user_with_a_grant_on_another_model_cannot_list_or_download(ctx, weekly):
    report_id, _ = weekly
    sam = _user(ctx, "sam")
    assert "do not have access" in str(C.reports_table("churn", None, 0, user=sam))
    data, message = C.download([1], user=sam, trigger={"type": L.DOWNLOAD_BUTTON, "index": report_id})
    assert data is no_update and "do not have access" in str(message)
    message, local = C.generate(1, "daily", True, "churn", None, 0, user=sam)
    assert local is no_update
    with ctx.extensions["glassbox.db"].session() as s:
        denied = s.scalar(select(AuditEvent).where(AuditEvent.action == "report.download",
                                                   AuditEvent.outcome == "denied"))
        assert denied.username == "sam"


@pytest.mark.parametrize("clicks, trigger", [([None], {"type": L.DOWNLOAD_BUTTON, "index": 1}), ([1], None),
                                             ([1], {"type": L.DOWNLOAD_BUTTON, "index": "1 or 1=1"}),
                                             ([1], {"type": L.DOWNLOAD_BUTTON, "index": 10**12}),
                                             ([1], {"type": L.DOWNLOAD_BUTTON, "index": 99999}), ("x", "y")])
def test_forged_downloads_send_nothing(ctx, clicks, trigger):
    data, _ = C.download(clicks, user=_user(ctx, "vic"), trigger=trigger)
    assert data is no_update


@pytest.mark.parametrize("period, today, model", [("monthly", True, "churn"), ({"x": 1}, True, "churn"),
                                                  ("daily", "yes", "churn"), ("daily", True, None),
                                                  ("daily", True, "missing")])
def test_forged_generation_gives_a_message(ctx, period, today, model):
    message, local = C.generate(1, period, today, model, None, 0, user=_user(ctx, "vic"))
    assert local is no_update and message is not None


def test_model_without_traffic_gets_an_empty_but_valid_report(ctx):
    made = generate_report(ctx.extensions["glassbox.db"], "other", period="daily", created_by="tests")
    with ctx.extensions["glassbox.db"].session() as s:
        _, _, html = report_content(s, made["id"])
    assert "No predictions were logged in this period." in html
    assert "<h2>Confusion matrix" not in html  # a regressor has none


def test_period_bounds():
    start, end = period_bounds("weekly", end=dt.date(2026, 11, 23))
    assert (start, end) == (dt.datetime(2026, 11, 16), dt.datetime(2026, 11, 23))
    start, end = period_bounds("daily", end=dt.datetime(2026, 11, 23, 15, 30))
    assert (start, end) == (dt.datetime(2026, 11, 22), dt.datetime(2026, 11, 23))
    start, end = period_bounds("daily", include_today=True)
    assert end - start == dt.timedelta(days=1) and end > utcnow()
    with pytest.raises(ReportError):
        period_bounds("yearly")
