"""Monitoring data for the browser tests: ten days of traffic for ``cancer`` with its top feature drifting.

Runs after ``seed_models.py`` (which registers ``cancer`` and computes its analyses). The traffic goes
through the real prediction-log API in process; a drift rule fires on the drifted days and a viewer's
comment marks when the drift began.
"""

from __future__ import annotations

import datetime as dt

MODEL = "cancer"
DAYS = 10
PER_DAY = 120


def drift_feature(app) -> str:
    """Return the feature the seeder makes drift (the model's most influential numeric feature)."""
    from app.monitoring.simulator import default_drift_feature
    from data.registry import get_version, load_estimator

    with app.app_context():
        with app.extensions["glassbox.db"].session() as s:
            version = get_version(s, MODEL)
            return default_drift_feature(load_estimator(version), list(version.features), list(version.feature_meta))


def seed(app) -> None:
    """Create a drift rule, send the traffic through the API, and add a comment."""
    from app.monitoring.simulator import flask_sender, simulate
    from data import monitoring as M
    from data.alerts import create_rule
    from data.registry import get_version, load_estimator, load_frames

    db = app.extensions["glassbox.db"]
    feature = drift_feature(app)
    with app.app_context():
        with db.session() as s:
            create_rule(s, model_name=MODEL, name=f"Input drift in {feature}", metric=f"psi:{feature}",
                        comparison=">", threshold=0.25, bucket="day", min_samples=60, created_by="admin")
            _, token = M.create_token(s, MODEL, name="browser tests", created_by="admin")
            version = get_version(s, MODEL)
            estimator, frames = load_estimator(version), load_frames(version)
        result = simulate(version, estimator, frames, flask_sender(app, token), days=DAYS, per_day=PER_DAY,
                          drift_feature=feature, seed=11)
        with db.session() as s:
            version = get_version(s, MODEL)
            start = result.drift_start.replace(hour=0, minute=0, second=0, microsecond=0)
            M.add_comment(s, model_id=version.model_id, version_id=version.id, author="viewer",
                          text="New referral clinic from this day on.", start=start,
                          end=start + dt.timedelta(days=1), chart="timeline")
