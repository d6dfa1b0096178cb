"""The monitoring commands: tokens, simulated traffic through the API, alert evaluation, reports, demo seeding."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import cli_monitoring as cli
from app.monitoring.simulator import build_traffic, default_drift_feature
from data import monitoring as M
from data.models import AuditEvent
from data.registry import get_version, load_estimator, load_frames
from tests.api.helpers import register_binary


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    from tests.conftest import build_test_app

    tmp = tmp_path_factory.mktemp("cli-mon")
    app = build_test_app(tmp)
    register_binary(app.extensions["glassbox.db"], tmp / "artifacts")
    yield app, tmp
    app.extensions["glassbox.db"].dispose()


def _run(app, command, args):
    result = app.test_cli_runner().invoke(command, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_token_create_list_revoke(shared):
    app, _ = shared
    out = _run(app, cli.token, ["create", "--model", "churn", "--name", "batch job"])
    token = out.strip().splitlines()[-1]
    assert token.startswith("gbx_")
    listing = _run(app, cli.token, ["list"])
    assert "batch job" in listing and token not in listing and "active" in listing
    token_id = listing.split()[0]
    _run(app, cli.token, ["revoke", token_id])
    assert "revoked" in _run(app, cli.token, ["list"])
    failed = app.test_cli_runner().invoke(cli.token, ["create", "--model", "nope"])
    assert failed.exit_code != 0 and "no model" in failed.output
    with app.app_context():
        db = app.extensions["glassbox.db"]
        with db.session() as s:
            actions = {e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.username == "cli"))}
    assert {"token.create", "token.revoke"} <= actions


def test_simulated_traffic_drifts_and_labels_arrive_late(shared):
    app, _ = shared
    with app.app_context():
        db = app.extensions["glassbox.db"]
        with db.session() as s:
            version = get_version(s, "churn")
            traffic, info = build_traffic(version, load_estimator(version), load_frames(version), days=10,
                                          per_day=100, drift_feature="age", seed=3)
            drift = default_drift_feature(load_estimator(version), list(version.features),
                                          list(version.feature_meta))
    assert drift in ("age", "income")
    before = traffic[traffic["ts"] < info["drift_start"]]["age"].mean()
    after = traffic[traffic["ts"] > info["drift_start"] + __import__("datetime").timedelta(days=4)]["age"].mean()
    assert after - before > 15  # 0.8 x 1.5 reference standard deviations after four days
    late = traffic["label_at"].dropna()
    assert ((late - traffic.loc[late.index, "ts"]).dt.total_seconds() >= 86400).all()
    assert 700 < len(traffic) < 1100 and traffic["ts"].is_monotonic_increasing


def test_simulate_sends_through_the_api_and_fires_alerts(shared):
    app, _ = shared
    with app.app_context():
        db = app.extensions["glassbox.db"]
        from data.alerts import create_rule

        with db.session() as s:
            # PSI of small samples is biased upwards (about bins / n): ask for 100 records per day.
            create_rule(s, model_name="churn", name="Age drift", metric="psi:age", comparison=">", threshold=0.25,
                        bucket="day", min_samples=100, created_by="tests")
    out = _run(app, cli.simulate_command, ["--model", "churn", "--days", "8", "--drift", "age", "--per-day", "170"])
    assert "predictions stored" in out and "age drifts from" in out
    drift_start = __import__("datetime").datetime.strptime(out.split("drifts from ")[1][:10], "%Y-%m-%d")
    with app.app_context():
        with db.session() as s:
            logged = s.scalar(select(func.count()).select_from(M.PredictionLog))
            labelled = s.scalar(select(func.count()).select_from(M.PredictionLog)
                                .where(M.PredictionLog.labelled_at.is_not(None)))
            events = s.scalars(select(M.AlertEvent)).all()
            tokens = M.list_tokens(s)
    assert logged > 900 and 0 < labelled < logged
    assert len(events) == 1 and "age" in events[0].message and events[0].bucket_start >= drift_start
    # The temporary token the simulator used is revoked afterwards.
    assert all(not t["active"] for t in tokens if t["name"] == "simulator (temporary)")
    again = _run(app, cli.simulate_command, ["--model", "churn", "--days", "2", "--per-day", "30", "--seed", "5"])
    assert "predictions stored" in again
    out = _run(app, cli.alerts, ["evaluate"])
    assert "0 new alert(s)" in out
    assert "Age drift" in _run(app, cli.alerts, ["list"])


def test_report_command_writes_a_file(shared, tmp_path):
    app, _ = shared
    out = _run(app, cli.report_command, ["--model", "churn", "--period", "weekly", "--out", str(tmp_path / "r")])
    files = list((tmp_path / "r").glob("glassbox-churn-v1-weekly-*.html"))
    assert len(files) == 1 and str(files[0]) in out
    assert files[0].read_text().startswith("<!DOCTYPE html>")
    failed = app.test_cli_runner().invoke(cli.report_command, ["--model", "churn", "--period", "monthly", "--out",
                                                               str(tmp_path)])
    assert failed.exit_code != 0


def test_seed_demo_is_idempotent(tmp_path, monkeypatch):
    from tests.conftest import build_test_app

    app = build_test_app(tmp_path)
    db = app.extensions["glassbox.db"]
    register_binary(db, tmp_path / "artifacts", name="demo-churn")
    monkeypatch.setattr(cli, "DEMO_MODEL", "demo-churn")
    monkeypatch.setattr(cli, "DEMO_DAYS", 6)
    monkeypatch.setattr(cli, "DEMO_PER_DAY", 170)
    with app.app_context():
        cli.seed_demo()
        with db.session() as s:
            counts = {t.__tablename__: s.scalar(select(func.count()).select_from(t))
                      for t in (M.PredictionLog, M.ApiToken, M.AlertRule, M.Comment, M.Report)}
            events = s.scalar(select(func.count()).select_from(M.AlertEvent))
        assert counts["prediction_logs"] > 600 and counts["api_tokens"] >= 1
        assert counts["alert_rules"] == 2 and counts["monitoring_comments"] == 1 and counts["monitoring_reports"] == 1
        assert events >= 1
        cli.seed_demo()
        with db.session() as s:
            again = {t.__tablename__: s.scalar(select(func.count()).select_from(t))
                     for t in (M.PredictionLog, M.ApiToken, M.AlertRule, M.Comment, M.Report)}
    assert again == counts
    db.dispose()
