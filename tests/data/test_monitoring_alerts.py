"""Alert rules fire exactly when their condition holds; notifications are retried and recorded."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import smtplib
import threading

import numpy as np
import pytest
from sqlalchemy import select

from app.ml.drift import psi
from data import alerts as A
from data import monitoring as M
from data import notify as N
from tests.api.helpers import binary_record, register_binary

DAY = dt.datetime(2026, 11, 2)
NOW = DAY + dt.timedelta(days=6)


@pytest.fixture
def world(store):
    db, artifacts = store
    version = register_binary(db, artifacts)
    return db, M.load_reference(db, version.id)


def _day(day: int, n: int, *, correct: int, start_id: int, age: float = 40.0) -> tuple[list[dict], list[dict]]:
    """n records on DAY + day, all predicted 'yes'; the first ``correct`` are truly 'yes'."""
    records, labels = [], []
    for i in range(n):
        rid = start_id + i
        when = DAY + dt.timedelta(days=day, minutes=i)
        records.append(binary_record(rid, when, age=age + (i % 7), label="yes", score=0.8))
        labels.append({"id": f"r{rid}", "label": "yes" if i < correct else "no"})
    return records, labels


def _load(db, days):
    records, labels = [], []
    start = 0
    for day, (n, correct) in enumerate(days):
        r, lab = _day(day, n, correct=correct, start_id=start)
        records += r
        labels += lab
        start += n
    assert M.ingest_predictions(db, "churn", records, max_records=10_000, now=NOW).ok
    assert M.ingest_labels(db, "churn", labels, max_records=10_000, now=NOW).ok


def _rule(db, **kw):
    args = dict(model_name="churn", name="Accuracy drop", metric="accuracy", comparison="<", threshold=0.6,
                window=1, bucket="day", min_samples=50, created_by="tests")
    args.update(kw)
    with db.session() as s:
        return A.create_rule(s, **args).id


def _events(db):
    with db.session() as s:
        return s.execute(select(M.AlertEvent.bucket_start, M.AlertEvent.value, M.AlertEvent.n)
                         .order_by(M.AlertEvent.bucket_start)).all()


def test_accuracy_rule_fires_exactly_where_the_condition_holds(world):
    db, ref = world
    # day 0: 90/100 correct; day 1: 50/100 (fires); day 2: 8/20 (too few); day 3: 45/100 (fires again: new episode
    # after day 2 did not fire); day 4: 40/100 (still firing: same episode, no new event).
    _load(db, [(100, 90), (100, 50), (20, 8), (100, 45), (100, 40)])
    _rule(db)
    fired = A.evaluate_rules(db, now=NOW)
    assert [(e.time.date().day, round(e.value, 3), e.n) for e in fired] == [(3, 0.5, 100), (5, 0.45, 100)]
    assert [(t.day, round(v, 3), n) for t, v, n in _events(db)] == [(3, 0.5, 100), (5, 0.45, 100)]
    # Evaluating again records nothing new.
    assert A.evaluate_rules(db, now=NOW) == []
    assert len(_events(db)) == 2


def test_pooling_window_uses_the_pooled_sample(world):
    db, ref = world
    _load(db, [(100, 90), (100, 50), (20, 8)])
    _rule(db, window=2, threshold=0.72)
    fired = A.evaluate_rules(db, now=NOW)
    # Pooled: day0 90/100 = .90; day0+1 140/200 = .70 (fires); day1+2 58/120 = .483 (still firing).
    assert [(e.time.day, round(e.value, 4), e.n) for e in fired] == [(3, 0.7, 200)]
    with db.session() as s:
        series = A.metric_series(s, ref, metric="accuracy", bucket="day", start=M.hour_of(DAY),
                                 end=M.hour_of(NOW), pool=2)
    assert [round(p["value"], 4) for p in series] == [0.9, 0.7, round(58 / 120, 4)]


@pytest.mark.parametrize("comparison, threshold, expected_days", [
    ("<", 0.5, []),            # 0.5 is not below 0.5
    ("<=", 0.5, [3]),
    (">", 0.85, [2]),
    (">=", 0.9, [2]),
])
def test_comparisons_are_exact(world, comparison, threshold, expected_days):
    db, ref = world
    _load(db, [(100, 90), (100, 50)])
    _rule(db, comparison=comparison, threshold=threshold)
    assert [e.time.day for e in A.evaluate_rules(db, now=NOW)] == expected_days


def test_drift_rule_fires_on_the_drifted_day_with_its_psi(world):
    db, ref = world
    rng = np.random.default_rng(0)
    records = []
    for day, shift in enumerate([0, 0, 30, 30]):
        for i in range(120):
            rid = day * 1000 + i
            records.append(binary_record(rid, DAY + dt.timedelta(days=day, minutes=i),
                                         age=float(rng.integers(18, 80) + shift), plan="basic"))
    assert M.ingest_predictions(db, "churn", records, max_records=10_000, now=NOW).ok
    _rule(db, name="Age drift", metric="psi:age", comparison=">", threshold=0.25, min_samples=100)
    fired = A.evaluate_rules(db, now=NOW)
    assert [e.time.day for e in fired] == [4]
    day2 = [r["features"]["age"] for r in records if 2000 <= int(r["id"][1:]) < 3000]
    from app.ml.drift import bin_counts

    assert fired[0].value == pytest.approx(psi(ref.bins["age"]["counts"], bin_counts(day2, ref.bins["age"])))
    assert fired[0].n == 120


def test_rule_validation(world):
    db, ref = world
    with db.session() as s:
        for bad in [dict(metric="rmse"), dict(metric="psi:nope"), dict(comparison="=="), dict(threshold=float("nan")),
                    dict(window=0), dict(bucket="month"), dict(min_samples=-1), dict(name=""),
                    dict(model_name="unknown")]:
            args = dict(model_name="churn", name="r", metric="accuracy", comparison="<", threshold=0.5,
                        window=1, bucket="day", min_samples=0, created_by="t")
            args.update(bad)
            with pytest.raises(ValueError):
                A.create_rule(s, **args)


def test_acknowledge_once(world):
    db, ref = world
    _load(db, [(100, 90), (100, 50)])
    _rule(db)
    event = A.evaluate_rules(db, now=NOW)[0]
    with db.session() as s:
        assert M.open_alert_counts(s, ["churn", "other"]) == {"churn": 1, "other": 0}
        A.acknowledge(s, event.id, username="ann")
    with db.session() as s:
        assert M.open_alert_counts(s, ["churn"]) == {"churn": 0}
        with pytest.raises(ValueError):
            A.acknowledge(s, event.id, username="bob")
        with pytest.raises(ValueError):
            A.acknowledge(s, 999, username="bob")


# -- notifications --------------------------------------------------------------------------

class _Stub(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(json.loads(body))
        code = self.server.codes.pop(0) if self.server.codes else 200
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Stub)
    server.codes, server.bodies = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _settings(url=None, **kw):
    base = dict(webhook_url=url, smtp_host=None, smtp_port=25, smtp_user=None, smtp_password=None,
                smtp_from="glassbox@example.org", smtp_starttls=False, smtp_ssl=False, email_to=(), max_attempts=6)
    base.update(kw)
    return N.Settings(**base)


def _fire(db, settings):
    _load(db, [(100, 90), (100, 50)])
    _rule(db)
    assert len(A.evaluate_rules(db, now=NOW, settings=settings)) == 1
    assert len(_notifications(db)) == len(settings.channels)


def _notifications(db):
    with db.session() as s:
        return s.scalars(select(M.Notification).order_by(M.Notification.id)).all()


def test_webhook_failure_is_retried_then_sent_and_recorded(world, stub):
    db, _ = world
    url = f"http://127.0.0.1:{stub.server_port}/hooks/secret-path"
    settings = _settings(url)
    _fire(db, settings)
    stub.codes = [500, 503]
    pauses = []
    counts = N.deliver_pending(db, settings=settings, sleep=pauses.append)
    assert counts == {"sent": 1, "retry": 0, "failed": 0}
    (row,) = _notifications(db)
    assert row.status == "sent" and row.attempts == 3 and row.sent_at is not None
    assert row.target.endswith("/…") and "secret-path" not in row.target
    assert pauses == [0.5, 1.0]
    assert len(stub.bodies) == 3
    assert "Accuracy drop" in stub.bodies[-1]["text"] and stub.bodies[-1]["blocks"][0]["type"] == "section"


def test_webhook_that_keeps_failing_is_kept_then_given_up(world, stub):
    db, _ = world
    settings = _settings(f"http://127.0.0.1:{stub.server_port}/hook", max_attempts=6)
    _fire(db, settings)
    stub.codes = [500] * 10
    counts = N.deliver_pending(db, settings=settings, sleep=lambda _: None)
    assert counts == {"sent": 0, "retry": 1, "failed": 0}
    (row,) = _notifications(db)
    assert row.status == "pending" and row.attempts == 3 and "HTTP 500" in row.last_error
    assert row.next_attempt_at > M.utcnow()
    # Not due yet: a second run right away sends nothing.
    assert N.deliver_pending(db, settings=settings, sleep=lambda _: None) == {"sent": 0, "retry": 0, "failed": 0}
    later = M.utcnow() + dt.timedelta(hours=1)
    assert N.deliver_pending(db, settings=settings, now=later, sleep=lambda _: None)["failed"] == 1
    (row,) = _notifications(db)
    assert row.status == "failed" and row.attempts == 6
    with db.session() as s:
        N.retry_notification(s, row.id)
    assert _notifications(db)[0].status == "pending"


def test_unreachable_webhook_is_recorded(world):
    db, _ = world
    settings = _settings("http://127.0.0.1:9/unreachable", max_attempts=3)
    _fire(db, settings)
    assert N.deliver_pending(db, settings=settings, sleep=lambda _: None)["failed"] == 1
    (row,) = _notifications(db)
    assert row.status == "failed" and "unreachable" in row.last_error


class _FakeSMTP:
    sent: list = []
    fail_times = 0

    def __init__(self, host, port, timeout=None):
        self.host, self.port = host, port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def starttls(self, context=None):
        pass

    def login(self, user, password):
        pass

    def send_message(self, msg):
        if _FakeSMTP.fail_times > 0:
            _FakeSMTP.fail_times -= 1
            raise smtplib.SMTPServerDisconnected("connection dropped")
        _FakeSMTP.sent.append(msg)


def test_email_is_retried_and_sent(world, monkeypatch):
    db, _ = world
    monkeypatch.setattr(smtplib, "SMTP", _FakeSMTP)
    _FakeSMTP.sent, _FakeSMTP.fail_times = [], 1
    settings = _settings(smtp_host="mail.example.org", email_to=("ops@example.org", "ml@example.org"))
    _fire(db, settings)
    assert N.deliver_pending(db, settings=settings, sleep=lambda _: None)["sent"] == 1
    (row,) = _notifications(db)
    assert row.channel == "email" and row.attempts == 2 and row.status == "sent"
    (msg,) = _FakeSMTP.sent
    assert msg["To"] == "ops@example.org, ml@example.org" and "Accuracy drop" in msg["Subject"]


def test_no_channel_configured_queues_nothing(world):
    db, _ = world
    _fire(db, _settings())
    assert _notifications(db) == []


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GLASSBOX_ALERT_WEBHOOK_URL", "https://hooks.example.org/T000/B000/XXXX")
    monkeypatch.setenv("GLASSBOX_SMTP_HOST", "mail.example.org")
    monkeypatch.setenv("GLASSBOX_ALERT_EMAIL_TO", "a@example.org, b@example.org")
    settings = N.load_settings()
    assert settings.channels == [("webhook", "https://hooks.example.org/…"), ("email", "a@example.org, b@example.org")]
