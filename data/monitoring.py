"""Production monitoring store: API tokens, the prediction log, hourly roll-ups, alerts, comments, reports.

Every table of the monitoring feature is declared here (``data.tables``
imports this module so ``Base.metadata`` is complete).

How aggregates stay fast
------------------------
A logged prediction is validated, binned and scored once, at ingestion:

* its raw inputs are kept (``features`` JSON) with the bin index of every
  feature on the reference bins of its model version (``codes``: two hex
  characters per feature, ``zz`` for a missing value), the prediction, an
  outlier score and a bitmask of input anomalies;
* the same batch adds to two roll-up tables keyed by model version and hour
  (hours since the Unix epoch, UTC): :class:`MonitoringHour` (volume,
  labelled counts, confusion counts, error sums, anomaly counts) and
  :class:`MonitoringBin` (counts per feature bin and per score bin), the
  latter also per day (:class:`MonitoringBinDay`) because with many
  features and bins an hourly table of a quiet model holds about as many
  rows as values logged.

Ground truth arriving later adds to the same roll-ups. Monitoring views read
the roll-ups with ``GROUP BY bucket`` queries, where a day is
``hour / 24 * 24`` and a week starts on Monday: plain integer arithmetic that
runs unchanged on SQLite and PostgreSQL. Their cost grows with the time span
shown, not with the number of logged predictions. A segment filter (a
feature's value range or categories) cannot use the roll-ups; it aggregates
the time range's rows in SQL through a covering index (``substr`` on the
codes), so it costs one index scan of the range rather than reading rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary,
                        SmallInteger, String, Text, UniqueConstraint, bindparam, func, insert, select, update)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from data.db import Base, Database, utcnow

log = logging.getLogger(__name__)

_ID = BigInteger().with_variant(Integer, "sqlite")

#: Uniform bins on [0, 1] for binary scores: the score distribution and ROC AUC from histograms.
SCORE_BINS = 20
#: Roll-up series other than the features (features use their index 0..F-1).
VAR_PREDICTION = -1     # prediction on the version's reference prediction bins
VAR_SCORE = -2          # binary score, uniform bins, every record
VAR_SCORE_POS = -3      # binary score of records labelled positive
VAR_SCORE_NEG = -4      # binary score of records labelled negative
#: Anomaly bits of a logged record.
MISSING, BELOW_MIN, ABOVE_MAX, UNSEEN, OUTLIER = 1, 2, 4, 8, 16
ANOMALY_BITS = {"missing": MISSING, "below_min": BELOW_MIN, "above_max": ABOVE_MAX, "unseen": UNSEEN,
                "outliers": OUTLIER}
BUCKETS = ("hour", "day", "week")
BUCKET_HOURS = {"hour": 1, "day": 24, "week": 168}
MAX_RECORD_ID = 128
MAX_CATEGORY_LENGTH = 200
#: Records accepted per request unless GLASSBOX_API_MAX_RECORDS says otherwise.
DEFAULT_MAX_RECORDS = 1000
EARLIEST = dt.datetime(2000, 1, 1)
FUTURE_SLACK = dt.timedelta(days=1)
TOKEN_PREFIX = "gbx_"
EPOCH = dt.datetime(1970, 1, 1)


# =============================================================================
# Tables
# =============================================================================

class ApiToken(Base):
    """A bearer token for the prediction-log API, scoped to one model; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ApiRateCounter(Base):
    """Requests per key and minute, shared by every worker (the rate limit's store)."""

    __tablename__ = "api_rate_counters"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    window: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class PredictionLog(Base):
    """One logged prediction with its bins, anomaly flags and (later) its ground truth."""

    __tablename__ = "prediction_logs"
    __table_args__ = (
        UniqueConstraint("model_id", "record_id", name="uq_prediction_logs_model_record"),
        Index("ix_prediction_logs_version_hour", "version_id", "hour"),
        Index("ix_prediction_logs_version_outlier", "version_id", "outlier"),
        # Covers every column a segment aggregate reads, so those queries never touch the wide rows.
        Index("ix_prediction_logs_segment", "version_id", "hour", "codes", "pred_pos", "label_pos", "correct",
              "err", "anomalies", "score_bin", "pred_bin", "labelled_at"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), nullable=False)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False)
    record_id: Mapped[str] = mapped_column(String(MAX_RECORD_ID), nullable=False)
    ts: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    hour: Mapped[int] = mapped_column(Integer, nullable=False)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    features: Mapped[dict] = mapped_column(JSON, nullable=False)
    #: Each feature's bin on the version's reference bins as fixed-width hex, two characters per feature
    #: ("zz" when missing): cheap to filter on in SQL (``substr``) and to count from (:func:`decode_codes`).
    codes: Mapped[str] = mapped_column(Text, nullable=False)
    prediction: Mapped[dict] = mapped_column(JSON, nullable=False)
    pred_label: Mapped[str | None] = mapped_column(String(MAX_CATEGORY_LENGTH), nullable=True)
    pred_pos: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_bin: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    pred_bin: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    outlier: Mapped[float | None] = mapped_column(Float, nullable=True)
    anomalies: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    label: Mapped[str | None] = mapped_column(String(MAX_CATEGORY_LENGTH), nullable=True)
    label_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    label_pos: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    correct: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    err: Mapped[float | None] = mapped_column(Float, nullable=True)
    labelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class MonitoringHour(Base):
    """Per version and hour: volume, labels, confusion counts, error sums and anomaly counts."""

    __tablename__ = "monitoring_hours"

    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    n_labelled: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    correct: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    tp: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    fp: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    tn: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    fn: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sum_sq_err: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    sum_abs_err: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    sum_err: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    n_missing: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    n_below_min: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    n_above_max: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    n_unseen: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    n_outliers: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    n_anomalous: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class MonitoringBin(Base):
    """Per version, series (feature index or score series), hour and bin: how many records fell there."""

    __tablename__ = "monitoring_bins"

    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    var: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    bin: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class MonitoringBinDay(Base):
    """The same counts as :class:`MonitoringBin` per day (``hour`` is the hour index of 00:00 UTC)."""

    __tablename__ = "monitoring_bin_days"

    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    var: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    bin: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class MonitoringState(Base):
    """Per version: a revision bumped by every write, so pages refresh only when something changed."""

    __tablename__ = "monitoring_state"

    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    n_logged: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    n_labelled: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    first_hour: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_hour: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class AlertRule(Base):
    """A condition on a monitoring metric of one model, evaluated per time bucket."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    metric: Mapped[str] = mapped_column(String(160), nullable=False)
    comparison: Mapped[str] = mapped_column(String(2), nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    window: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    bucket: Mapped[str] = mapped_column(String(8), nullable=False, default="day")
    min_samples: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_evaluated_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class AlertEvent(Base):
    """A rule started firing in a bucket: the value and sample size that fired it."""

    __tablename__ = "alert_events"
    __table_args__ = (
        UniqueConstraint("rule_id", "version_id", "bucket_start", name="uq_alert_events_rule_version_bucket"),
        Index("ix_alert_events_model_ack", "model_id", "acknowledged_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), nullable=False)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False)
    bucket_start: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    n: Mapped[int] = mapped_column(Integer, nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Notification(Base):
    """One delivery of an alert event through one channel; attempts and the last error are kept."""

    __tablename__ = "alert_notifications"
    __table_args__ = (Index("ix_alert_notifications_status", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"), nullable=False,
                                          index=True)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    target: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(40), nullable=True)


class Comment(Base):
    """A stakeholder's note on a model version, optionally tied to a time range or a chart."""

    __tablename__ = "monitoring_comments"
    __table_args__ = (Index("ix_monitoring_comments_model_time", "model_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), nullable=False)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"),
                                                   nullable=True)
    author: Mapped[str] = mapped_column(String(64), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    start: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    end: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    chart: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    edited_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Report(Base):
    """A generated, self-contained HTML report (stored compressed, so every host can serve it)."""

    __tablename__ = "monitoring_reports"
    __table_args__ = (Index("ix_monitoring_reports_model_time", "model_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), nullable=False)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False)
    period: Mapped[str] = mapped_column(String(8), nullable=False)
    period_start: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    period_end: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


# =============================================================================
# Time
# =============================================================================

def hour_of(when: dt.datetime) -> int:
    """Return the hour index (hours since 1970-01-01 UTC) of a naive-UTC datetime."""
    return int((when - EPOCH).total_seconds() // 3600)


def hour_start(hour: int) -> dt.datetime:
    """Return the naive-UTC datetime at which hour index ``hour`` starts."""
    return EPOCH + dt.timedelta(hours=int(hour))


def bucket_floor(hour: int, bucket: str) -> int:
    """Return the first hour of the bucket holding ``hour`` (days at 00:00 UTC, weeks on Monday)."""
    if bucket == "hour":
        return int(hour)
    day = int(hour) // 24
    if bucket == "day":
        return day * 24
    if bucket == "week":
        return ((day + 3) // 7 * 7 - 3) * 24  # 1970-01-01 was a Thursday
    raise ValueError(f"bucket must be one of {BUCKETS}, got {bucket!r}")


def bucket_expr(hour_col, bucket: str):
    """Return the SQL expression of the bucket start (an hour index) for an integer hour column."""
    if bucket == "hour":
        return hour_col
    if bucket == "day":
        return (hour_col // 24) * 24
    if bucket == "week":
        return (((hour_col // 24) + 3) // 7 * 7 - 3) * 24
    raise ValueError(f"bucket must be one of {BUCKETS}, got {bucket!r}")


def to_utc_naive(when: dt.datetime) -> dt.datetime:
    """Return ``when`` as naive UTC (naive input is taken to be UTC already)."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def parse_timestamp(value: Any) -> dt.datetime:
    """Parse an ISO 8601 timestamp (``Z`` or an offset; none means UTC); raise ValueError saying why."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("timestamp must be an ISO 8601 string such as 2026-11-20T14:03:00Z")
    text = value.strip()
    if len(text) > 40:
        raise ValueError("timestamp is too long for an ISO 8601 time")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not an ISO 8601 time") from None
    return to_utc_naive(parsed)


# =============================================================================
# API tokens
# =============================================================================

def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored (tokens are 256-bit random)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, model_name: str, *, name: str, created_by: str) -> tuple[ApiToken, str]:
    """Create a token for one model; return the row and the token text (shown once, never stored)."""
    from data.registry import get_model

    model = get_model(session, model_name)
    if model is None:
        raise ValueError(f"there is no model called {model_name!r}")
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ValueError("a token needs a name of 1 to 64 characters (who or what uses it)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(model_id=model.id, name=name, prefix=token[:12], token_hash=hash_token(token),
                   created_by=created_by)
    session.add(row)
    session.flush()
    return row, token


def revoke_token(session: Session, token_id: int, *, revoked_by: str) -> ApiToken:
    """Revoke a token at once; raise ValueError if it does not exist or is revoked already."""
    row = session.get(ApiToken, token_id) if isinstance(token_id, int) else None
    if row is None:
        raise ValueError(f"there is no API token with id {token_id!r}")
    if row.revoked_at is not None:
        raise ValueError(f"API token {row.prefix}… was revoked already")
    row.revoked_at = utcnow()
    row.revoked_by = revoked_by
    return row


def list_tokens(session: Session) -> list[dict]:
    """Return every token (newest first) as plain dicts with the model name; never the hash."""
    from data.registry import ModelRecord

    rows = session.execute(select(ApiToken, ModelRecord.name).join(ModelRecord, ModelRecord.id == ApiToken.model_id)
                           .order_by(ApiToken.id.desc())).all()
    return [{"id": t.id, "model": model, "name": t.name, "prefix": t.prefix, "created_by": t.created_by,
             "created_at": t.created_at, "last_used_at": t.last_used_at, "revoked_at": t.revoked_at,
             "revoked_by": t.revoked_by, "active": t.revoked_at is None} for t, model in rows]


def authenticate_token(session: Session, token: str) -> tuple[ApiToken, str] | None:
    """Return (token row, model name) for an active token, or None. Marks it used (at most once a minute)."""
    from data.registry import ModelRecord

    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    found = session.execute(select(ApiToken, ModelRecord.name).join(ModelRecord, ModelRecord.id == ApiToken.model_id)
                            .where(ApiToken.token_hash == hash_token(token))).first()
    if found is None or found[0].revoked_at is not None:
        return None
    row, model_name = found
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=1):
        row.last_used_at = now
    return row, model_name


def hit_rate_limit(session: Session, key: str, *, limit: int, now: float | None = None) -> int | None:
    """Count one request for ``key`` in the current minute; return seconds to wait if over ``limit``, else None.

    The counter lives in the database so every worker and host shares it.
    """
    now = time.time() if now is None else now
    window = int(now // 60)
    _upsert_add(session, ApiRateCounter.__table__, ["key", "window"], [{"key": key[:96], "window": window,
                                                                        "count": 1}], ["count"])
    count = session.scalar(select(ApiRateCounter.count).where(ApiRateCounter.key == key[:96],
                                                              ApiRateCounter.window == window))
    if window % 10 == 0:
        session.execute(ApiRateCounter.__table__.delete().where(ApiRateCounter.window < window - 5))
    if count is not None and count > limit:
        return max(1, int(60 - now % 60))
    return None


# =============================================================================
# Reference of a model version (bins and outlier scorer)
# =============================================================================

class ReferenceNotReady(RuntimeError):
    """The drift bins or the outlier scorer of a version are not computed yet (or failed)."""


@dataclasses.dataclass(frozen=True)
class VersionRef:
    """What ingestion and the views need about one model version."""

    id: int
    model_id: int
    model: str
    number: int
    task: str
    classes: tuple[str, ...] | None
    positive: str | None
    features: tuple[str, ...]
    feature_meta: tuple[dict, ...]
    bins: Mapping[str, dict]
    prediction_bins: dict
    prediction_kind: str
    scorer_state: dict
    #: Feature name -> "numeric" | "categorical".
    kinds: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        """Return "name v3"."""
        return f"{self.model} v{self.number}"


def run_analysis_now(db: Database, version_id: int, kind: str) -> None:
    """Run one analysis of a version now in this process, unless it is done or another worker is on it."""
    from data.analysis_cache import AnalysisResult, Claim, enqueue, run_claim

    with db.session() as s:
        row = enqueue(s, version_id, kind)
        row_id = row.id
    token = f"monitoring:{secrets.token_hex(6)}"
    with db.session() as s:
        taken = s.execute(update(AnalysisResult)
                          .where(AnalysisResult.id == row_id, AnalysisResult.status == "queued")
                          .values(status="running", claim_token=token, started_at=utcnow(), finished_at=None,
                                  attempts=AnalysisResult.attempts + 1)).rowcount
    if taken == 1:
        run_claim(db, Claim(id=row_id, version_id=version_id, kind=kind, params={}, token=token))


def load_reference(db: Database, version_id: int, *, wait_s: float = 20.0) -> VersionRef:
    """Return the monitoring reference of a version, computing its bins and scorer now if needed.

    Raise :class:`ReferenceNotReady` when another worker is still computing
    them after ``wait_s`` seconds, or when they failed.
    """
    from data.analysis_cache import AnalysisResult, get_result
    from data.registry import ModelVersion

    deadline = time.monotonic() + wait_s
    ran = False
    while True:
        with db.session() as s:
            version = s.get(ModelVersion, version_id)
            if version is None:
                raise ValueError(f"model version {version_id} does not exist")
            drift = get_result(s, version_id, "drift_reference")
            scorer = get_result(s, version_id, "outlier_scorer")
            if drift is not None and scorer is not None:
                return _version_ref(version, drift, scorer)
            failed = s.execute(select(AnalysisResult.kind, AnalysisResult.error)
                               .where(AnalysisResult.version_id == version_id,
                                      AnalysisResult.kind.in_(("drift_reference", "outlier_scorer")),
                                      AnalysisResult.status == "failed")).first()
        if failed is not None:
            raise ReferenceNotReady(f"the {failed.kind.replace('_', ' ')} of this version failed: {failed.error}")
        if not ran:
            for kind in ("drift_reference", "outlier_scorer"):
                run_analysis_now(db, version_id, kind)
            ran = True
            continue
        if time.monotonic() > deadline:
            raise ReferenceNotReady("the reference bins of this model version are still being computed")
        time.sleep(0.25)


def _version_ref(version, drift: dict, scorer: dict) -> VersionRef:
    classes = None if version.classes is None else tuple(str(c) for c in version.classes)
    positive = str(version.positive_class) if version.task == "binary" else None
    return VersionRef(id=version.id, model_id=version.model_id, model=version.model.name, number=version.number,
                      task=version.task, classes=classes, positive=positive, features=tuple(version.features),
                      feature_meta=tuple(version.feature_meta), bins=drift["features"],
                      prediction_bins=drift["prediction"], prediction_kind=drift.get("prediction_kind", ""),
                      scorer_state=scorer["scorer"], kinds={m["name"]: m["kind"] for m in version.feature_meta})


def reference_if_ready(session: Session, version) -> VersionRef | None:
    """Return the monitoring reference of a version row when its analyses are ready, else None (no compute)."""
    from data.analysis_cache import get_result

    drift = get_result(session, version.id, "drift_reference")
    scorer = get_result(session, version.id, "outlier_scorer")
    if drift is None or scorer is None:
        return None
    return _version_ref(version, drift, scorer)


# =============================================================================
# Validation of incoming records
# =============================================================================

@dataclasses.dataclass
class RecordError:
    """Why one record of a batch was refused."""

    index: int
    id: Any
    errors: list[str]

    def to_dict(self) -> dict:
        """Return the JSON shape of the API's per-record error."""
        return {"index": self.index, "id": self.id, "errors": self.errors}


@dataclasses.dataclass
class IngestResult:
    """Outcome of one batch: what was stored, what was seen before, and per-record errors."""

    accepted: list[str] = dataclasses.field(default_factory=list)
    duplicates: list[str] = dataclasses.field(default_factory=list)
    errors: list[RecordError] = dataclasses.field(default_factory=list)
    version_ids: set[int] = dataclasses.field(default_factory=set)

    @property
    def ok(self) -> bool:
        """Return True when the batch was valid (and so written)."""
        return not self.errors

    def to_dict(self) -> dict:
        """Return the JSON body of the API's answer."""
        out: dict[str, Any] = {"accepted": len(self.accepted), "duplicates": self.duplicates}
        if self.errors:
            out["errors"] = [e.to_dict() for e in self.errors]
        return out


def _record_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("id must be a string (or an integer) chosen by the caller")
    text = str(value)
    if not text or len(text) > MAX_RECORD_ID:
        raise ValueError(f"id must have 1 to {MAX_RECORD_ID} characters")
    return text


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _check_features(features: Any, ref: VersionRef, errors: list[str]) -> dict | None:
    if not isinstance(features, Mapping):
        errors.append("features must be an object of feature name -> value")
        return None
    unknown = [str(k)[:60] for k in features if k not in ref.kinds]
    missing = [f for f in ref.features if f not in features]
    if unknown:
        errors.append(f"unknown features: {', '.join(unknown[:5])}" + (" …" if len(unknown) > 5 else ""))
    if missing:
        errors.append(f"missing features: {', '.join(missing[:5])}" + (" …" if len(missing) > 5 else "")
                      + " (send null for a value that is not known)")
    clean = {}
    for name in ref.features:
        if name not in features:
            continue
        value = features[name]
        if value is None:
            clean[name] = None
        elif ref.kinds[name] == "numeric":
            f = _number(value)
            if f is None:
                errors.append(f"feature {name!r} must be a finite number or null, got {str(value)[:40]!r}")
            else:
                clean[name] = value if isinstance(value, int) else f
        else:
            if isinstance(value, (dict, list)) or (isinstance(value, float) and not math.isfinite(value)):
                errors.append(f"feature {name!r} must be a category (text, number or boolean) or null")
            elif isinstance(value, str) and len(value) > MAX_CATEGORY_LENGTH:
                errors.append(f"feature {name!r} is longer than {MAX_CATEGORY_LENGTH} characters")
            else:
                clean[name] = value
    return clean


def _check_prediction(prediction: Any, ref: VersionRef, errors: list[str]) -> dict | None:
    if not isinstance(prediction, Mapping):
        errors.append("prediction must be an object: {\"label\": ..., \"score\": ...} for classifiers, "
                      "{\"value\": ...} for regressors")
        return None
    if ref.task == "regression":
        value = _number(prediction.get("value"))
        if value is None:
            errors.append("prediction.value must be a finite number")
            return None
        return {"value": value}
    label = prediction.get("label")
    if label is None or isinstance(label, (dict, list)) or str(label) not in ref.classes:
        errors.append(f"prediction.label must be one of the model's classes {list(ref.classes)[:10]}, "
                      f"got {str(label)[:40]!r}")
        return None
    out: dict[str, Any] = {"label": str(label)}
    scores = prediction.get("scores")
    score = prediction.get("score")
    if scores is not None:
        if not isinstance(scores, Mapping) or not scores:
            errors.append("prediction.scores must be an object of class -> probability")
            return None
        clean = {}
        for key, val in scores.items():
            f = _number(val)
            if str(key) not in ref.classes:
                errors.append(f"prediction.scores has an unknown class {str(key)[:40]!r}")
                return None
            if f is None or not 0.0 <= f <= 1.0:
                errors.append(f"prediction.scores[{str(key)[:40]!r}] must be a probability between 0 and 1")
                return None
            clean[str(key)] = f
        out["scores"] = clean
        if ref.task == "binary" and ref.positive in clean:
            out["score"] = clean[ref.positive]
    if score is not None:
        f = _number(score)
        if ref.task != "binary":
            errors.append("prediction.score applies to binary models; send prediction.scores instead")
            return None
        if f is None or not 0.0 <= f <= 1.0:
            errors.append("prediction.score must be the positive class's probability, between 0 and 1")
            return None
        out["score"] = f
    return out


def validate_records(records: Any, versions: Mapping[int, VersionRef | None], *, now: dt.datetime,
                     max_records: int) -> tuple[list[dict], list[RecordError]]:
    """Check a batch record by record; return (clean records, errors).

    ``versions`` maps each registered version number to its reference (None
    when the reference is not loaded: the caller loads the numbers that occur).
    """
    if not isinstance(records, list):
        return [], [RecordError(-1, None, ["'records' must be a list of prediction records"])]
    if not records:
        return [], [RecordError(-1, None, ["'records' is empty"])]
    if len(records) > max_records:
        return [], [RecordError(-1, None, [f"at most {max_records} records per request; got {len(records)}"])]
    clean, errors = [], []
    latest = now + FUTURE_SLACK
    for i, rec in enumerate(records):
        problems: list[str] = []
        if not isinstance(rec, Mapping):
            errors.append(RecordError(i, None, ["each record must be an object"]))
            continue
        raw_id = rec.get("id")
        try:
            record_id = _record_id(raw_id)
        except ValueError as exc:
            problems.append(str(exc))
            record_id = None
        extra = sorted(set(rec) - {"id", "timestamp", "version", "features", "prediction"})
        if extra:
            problems.append(f"unknown fields: {', '.join(str(e)[:40] for e in extra[:5])}")
        try:
            ts = parse_timestamp(rec.get("timestamp"))
            if ts < EARLIEST or ts > latest:
                problems.append(f"timestamp {rec.get('timestamp')!r} is outside {EARLIEST:%Y-%m-%d} .. now + 1 day")
        except ValueError as exc:
            problems.append(str(exc))
            ts = None
        number = rec.get("version")
        ref = None
        if isinstance(number, bool) or not isinstance(number, int) or number not in versions:
            problems.append(f"version must be a registered version number of this model "
                            f"({', '.join(str(n) for n in sorted(versions))}), got {str(number)[:20]!r}")
        else:
            ref = versions[number]
        features = prediction = None
        if ref is not None:
            features = _check_features(rec.get("features"), ref, problems)
            prediction = _check_prediction(rec.get("prediction"), ref, problems)
        if problems:
            errors.append(RecordError(i, raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool)
                                      else None, problems))
            continue
        clean.append({"id": record_id, "ts": ts, "version": number, "features": features,
                      "prediction": prediction})
    return clean, errors


# =============================================================================
# Deriving bins, anomalies and roll-up deltas (vectorised per version)
# =============================================================================

def bin_indices(values: Sequence[Any], bins: Mapping[str, Any]) -> np.ndarray:
    """Return the bin of each value on reference bins (``-1`` for missing), as :func:`app.ml.drift.bin_counts` counts."""
    n = len(values)
    if bins["kind"] == "numeric":
        x = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        inner = np.asarray([float(e) for e in bins["edges"][1:-1]], dtype=float)
        out = np.searchsorted(inner, x, side="right").astype(np.int64)
        out[np.isnan(x)] = -1
        return out
    index = {str(level): i for i, level in enumerate(bins["levels"])}
    other = len(index)
    return np.fromiter((-1 if v is None else index.get(str(v), other) for v in values), dtype=np.int64, count=n)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def bin_codes(feature_bins: np.ndarray) -> list[str]:
    """Return each row's bins as fixed-width hex text, two characters per feature, "zz" for missing."""
    n, k = feature_bins.shape
    if k == 0:
        return [""] * n
    b = np.clip(feature_bins, -1, 255)
    chars = np.empty((n, k, 2), dtype=np.uint8)
    chars[:, :, 0] = _HEX[np.maximum(b, 0) // 16]
    chars[:, :, 1] = _HEX[np.maximum(b, 0) % 16]
    chars[b < 0] = ord("z")
    flat = chars.reshape(n, 2 * k).tobytes()
    return [flat[i * 2 * k:(i + 1) * 2 * k].decode("ascii") for i in range(n)]


def decode_codes(codes: Sequence[str], n_features: int) -> np.ndarray:
    """Return the (n, n_features) bin indices of :func:`bin_codes` text (-1 for missing)."""
    if not codes:
        return np.zeros((0, n_features), dtype=np.int64)
    raw = np.array(codes, dtype=f"S{2 * n_features}").view(np.uint8).reshape(len(codes), n_features, 2)
    lookup = np.full(256, -1, dtype=np.int64)
    lookup[_HEX] = np.arange(16)
    hi, lo = lookup[raw[:, :, 0]], lookup[raw[:, :, 1]]
    return np.where((hi < 0) | (lo < 0), -1, hi * 16 + lo)


def _anomaly_bits(frame: pd.DataFrame, ref: VersionRef, scores: np.ndarray) -> np.ndarray:
    bits = np.zeros(len(frame), dtype=np.int64)
    for meta in ref.feature_meta:
        col = frame[meta["name"]]
        missing = col.isna().to_numpy()
        bits |= np.where(missing, MISSING, 0)
        if meta["kind"] == "numeric":
            x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                if meta.get("min") is not None:
                    bits |= np.where(x < float(meta["min"]), BELOW_MIN, 0)
                if meta.get("max") is not None:
                    bits |= np.where(x > float(meta["max"]), ABOVE_MAX, 0)
        elif meta.get("levels") is not None:
            known = {str(v) for v in meta["levels"]}
            unseen = np.fromiter((v is not None and str(v) not in known for v in col.tolist()), dtype=bool,
                                 count=len(col))
            bits |= np.where(unseen, UNSEEN, 0)
    bits |= np.where(scores > 1.0, OUTLIER, 0)
    return bits


def _score_bin(score: np.ndarray) -> np.ndarray:
    out = np.clip(np.floor(score * SCORE_BINS), 0, SCORE_BINS - 1)
    return np.where(np.isnan(score), -1, out).astype(np.int64)


def _count_pairs(hours: np.ndarray, bins: np.ndarray) -> list[tuple[int, int, int]]:
    keep = bins >= 0
    if not keep.any():
        return []
    key = hours[keep].astype(np.int64) * 4096 + bins[keep]
    uniq, counts = np.unique(key, return_counts=True)
    return [(int(k // 4096), int(k % 4096), int(c)) for k, c in zip(uniq, counts)]


@dataclasses.dataclass
class Prepared:
    """Rows to insert and roll-up increments for one version's part of a batch."""

    rows: list[dict]
    hours: dict[int, dict]
    bins: list[dict]


def prepare_predictions(ref: VersionRef, records: list[dict], *, received_at: dt.datetime) -> Prepared:
    """Bin, score and flag validated records of one version; return rows and roll-up increments."""
    from app.ml.anomaly import OutlierScorer

    n = len(records)
    frame = pd.DataFrame.from_records([r["features"] for r in records], columns=list(ref.features))
    frame = frame.astype(object).where(frame.notna(), None)
    hours = np.fromiter((hour_of(r["ts"]) for r in records), dtype=np.int64, count=n)
    feature_bins = np.column_stack([bin_indices(frame[f].tolist(), ref.bins[f]) for f in ref.features]) \
        if ref.features else np.zeros((n, 0), dtype=np.int64)
    scorer = OutlierScorer.from_dict(ref.scorer_state)
    outlier = scorer.score(frame)
    bits = _anomaly_bits(frame, ref, outlier)

    if ref.task == "regression":
        value = np.array([r["prediction"]["value"] for r in records], dtype=float)
        pred_bin = bin_indices(value.tolist(), ref.prediction_bins)
        score = value
        score_bin = np.full(n, -1, dtype=np.int64)
        pred_label = [None] * n
        pred_pos = [None] * n
    else:
        pred_label = [r["prediction"]["label"] for r in records]
        if ref.task == "binary":
            score = np.array([r["prediction"].get("score", np.nan) for r in records], dtype=float)
            pred_bin = bin_indices(score.tolist(), ref.prediction_bins)
            score_bin = _score_bin(score)
            pred_pos = [int(lab == ref.positive) for lab in pred_label]
        else:
            score = np.array([max(r["prediction"]["scores"].values()) if r["prediction"].get("scores") else np.nan
                              for r in records], dtype=float)
            pred_bin = bin_indices(pred_label, ref.prediction_bins)
            score_bin = np.full(n, -1, dtype=np.int64)
            pred_pos = [None] * n

    codes = bin_codes(feature_bins)
    rows = []
    for i, rec in enumerate(records):
        rows.append({
            "model_id": ref.model_id, "version_id": ref.id, "record_id": rec["id"], "ts": rec["ts"],
            "hour": int(hours[i]), "received_at": received_at, "features": rec["features"],
            "codes": codes[i], "prediction": rec["prediction"],
            "pred_label": pred_label[i], "pred_pos": pred_pos[i],
            "score": None if math.isnan(score[i]) else float(score[i]),
            "score_bin": None if score_bin[i] < 0 else int(score_bin[i]),
            "pred_bin": None if pred_bin[i] < 0 else int(pred_bin[i]),
            "outlier": float(outlier[i]) if math.isfinite(outlier[i]) else None, "anomalies": int(bits[i]),
        })
    return Prepared(rows=rows, hours={}, bins=[]) if n == 0 else _rollups(ref, rows, hours, feature_bins,
                                                                        pred_bin, score_bin, bits)


def _rollups(ref: VersionRef, rows: list[dict], hours: np.ndarray, feature_bins: np.ndarray, pred_bin: np.ndarray,
             score_bin: np.ndarray, bits: np.ndarray) -> Prepared:
    """Compute the roll-up increments of the given rows (used again when duplicates are dropped)."""
    uniq, inverse = np.unique(hours, return_inverse=True)
    k = len(uniq)
    columns = {"n": np.bincount(inverse, minlength=k), "n_anomalous": np.bincount(inverse, weights=bits > 0,
                                                                                  minlength=k)}
    for name, bit in (("n_missing", MISSING), ("n_below_min", BELOW_MIN), ("n_above_max", ABOVE_MAX),
                      ("n_unseen", UNSEEN), ("n_outliers", OUTLIER)):
        columns[name] = np.bincount(inverse, weights=(bits & bit) > 0, minlength=k)
    per_hour = {int(h): {name: int(values[j]) for name, values in columns.items()} for j, h in enumerate(uniq)}
    bins: list[dict] = []
    series = [(i, feature_bins[:, i]) for i in range(feature_bins.shape[1])]
    series.append((VAR_PREDICTION, pred_bin))
    if ref.task == "binary":
        series.append((VAR_SCORE, score_bin))
    for var, column in series:
        for hour, b, count in _count_pairs(hours, column):
            bins.append({"version_id": ref.id, "var": var, "hour": hour, "bin": b, "count": count})
    return Prepared(rows=rows, hours=per_hour, bins=bins)


def _without(prepared: Prepared, ref: VersionRef, skip: set[str]) -> Prepared:
    rows = [r for r in prepared.rows if r["record_id"] not in skip]
    if not rows:
        return Prepared(rows=[], hours={}, bins=[])
    hours = np.array([r["hour"] for r in rows], dtype=np.int64)
    fb = decode_codes([r["codes"] for r in rows], len(ref.features))
    pb = np.array([-1 if r["pred_bin"] is None else r["pred_bin"] for r in rows], dtype=np.int64)
    sb = np.array([-1 if r["score_bin"] is None else r["score_bin"] for r in rows], dtype=np.int64)
    bits = np.array([r["anomalies"] for r in rows], dtype=np.int64)
    return _rollups(ref, rows, hours, fb, pb, sb, bits)


# =============================================================================
# Writing
# =============================================================================

_HOUR_SUMS = ("n", "n_labelled", "correct", "tp", "fp", "tn", "fn", "sum_sq_err", "sum_abs_err", "sum_err",
              "n_missing", "n_below_min", "n_above_max", "n_unseen", "n_outliers", "n_anomalous")


def _upsert_add(session: Session, table, keys: list[str], rows: list[dict], add: Iterable[str]) -> None:
    """INSERT rows, or add their values to the existing row with the same key (SQLite and PostgreSQL)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:  # pragma: no cover - the two supported databases
        raise RuntimeError(f"monitoring roll-ups need SQLite or PostgreSQL, not {dialect}")
    stmt = dialect_insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=keys,
                                      set_={c: table.c[c] + stmt.excluded[c] for c in add})
    session.execute(stmt, rows)


def _add_hours(session: Session, version_id: int, hours: Mapping[int, Mapping[str, float]]) -> None:
    rows = []
    for hour, values in hours.items():
        row = {c: 0 for c in _HOUR_SUMS}
        row.update(values)
        row.update(version_id=version_id, hour=hour)
        rows.append(row)
    _upsert_add(session, MonitoringHour.__table__, ["version_id", "hour"], rows, _HOUR_SUMS)


def _add_bins(session: Session, rows: list[dict]) -> None:
    keys = ["version_id", "var", "hour", "bin"]
    _upsert_add(session, MonitoringBin.__table__, keys, rows, ["count"])
    days: dict[tuple, int] = {}
    for r in rows:
        key = (r["version_id"], r["var"], r["hour"] // 24 * 24, r["bin"])
        days[key] = days.get(key, 0) + r["count"]
    _upsert_add(session, MonitoringBinDay.__table__, keys,
                [dict(zip(keys, k), count=c) for k, c in days.items()], ["count"])


def _bin_table(window: "Window", *, per_bucket: bool):
    """Return the daily roll-up when the window (and, per bucket, the bucket) is whole days, else the hourly one."""
    whole_days = window.start % 24 == 0 and window.end % 24 == 0
    if whole_days and (not per_bucket or window.bucket != "hour"):
        return MonitoringBinDay
    return MonitoringBin


def _bump_state(session: Session, version_id: int, *, logged: int = 0, labelled: int = 0,
                hours: Iterable[int] = ()) -> None:
    hours = list(hours)
    row = {"version_id": version_id, "revision": 1, "n_logged": logged, "n_labelled": labelled,
           "first_hour": min(hours) if hours else None, "last_hour": max(hours) if hours else None,
           "updated_at": utcnow()}
    _upsert_add(session, MonitoringState.__table__, ["version_id"], [row], ["revision", "n_logged", "n_labelled"])
    if hours:
        state = session.get(MonitoringState, version_id, populate_existing=True)
        state.first_hour = min(hours) if state.first_hour is None else min(state.first_hour, min(hours))
        state.last_hour = max(hours) if state.last_hour is None else max(state.last_hour, max(hours))
        state.updated_at = utcnow()


def _versions_of(session: Session, model_name: str) -> tuple[Any, dict[int, Any]]:
    from data.registry import get_model

    model = get_model(session, model_name)
    if model is None:
        raise LookupError(f"there is no model called {model_name!r}")
    return model, {v.number: v for v in model.versions}


def _existing_ids(session: Session, model_id: int, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found.update(session.scalars(select(PredictionLog.record_id).where(PredictionLog.model_id == model_id,
                                                                           PredictionLog.record_id.in_(chunk))))
    return found


def ingest_predictions(db: Database, model_name: str, records: Any, *, max_records: int = DEFAULT_MAX_RECORDS,
                       now: dt.datetime | None = None) -> IngestResult:
    """Validate and store a batch of predictions for a model, all or nothing.

    Invalid records make the whole batch fail with per-record errors (nothing
    is written). A valid batch is written in one transaction; ids already
    stored for this model (or repeated in the batch) are reported as
    duplicates and not stored again. Raise LookupError for an unknown model
    and :class:`ReferenceNotReady` when a version's reference is not ready.
    """
    now = now or utcnow()
    with db.session() as s:
        model, versions = _versions_of(s, model_name)
        model_id = model.id
        version_ids = {number: v.id for number, v in versions.items()}
    numbers = set()
    if isinstance(records, list):
        numbers = {r.get("version") for r in records if isinstance(r, Mapping)
                   and isinstance(r.get("version"), int) and not isinstance(r.get("version"), bool)}
    refs = {n: (load_reference(db, version_ids[n]) if n in numbers else None) for n in version_ids}
    clean, errors = validate_records(records, refs, now=now, max_records=max_records)
    result = IngestResult()
    if errors:
        result.errors = errors
        return result
    seen: set[str] = set()
    batch_dups: list[str] = []
    unique = []
    for rec in clean:
        if rec["id"] in seen:
            batch_dups.append(rec["id"])
        else:
            seen.add(rec["id"])
            unique.append(rec)
    by_version: dict[int, list[dict]] = {}
    for rec in unique:
        by_version.setdefault(rec["version"], []).append(rec)
    prepared = {number: prepare_predictions(refs[number], recs, received_at=now)
                for number, recs in by_version.items()}
    for attempt in range(3):
        try:
            with db.session() as s:
                stored_before = _existing_ids(s, model_id, [r["id"] for r in unique])
                accepted = []
                for number, prep in prepared.items():
                    ref = refs[number]
                    part = _without(prep, ref, stored_before) if stored_before else prep
                    write_prepared(s, ref.id, part)
                    accepted.extend(r["record_id"] for r in part.rows)
                    if part.rows:
                        result.version_ids.add(ref.id)
            result.accepted = accepted
            result.duplicates = sorted(stored_before) + batch_dups
            return result
        except IntegrityError:
            # Another request stored some of these ids between our check and our insert: check again.
            if attempt == 2:
                raise
            result.version_ids.clear()
            log.info("concurrent write of the same record ids for %s; retrying the batch", model_name)
    return result


def write_prepared(session: Session, version_id: int, prepared: Prepared) -> None:
    """Insert prepared rows and add their roll-ups, in the caller's transaction."""
    if not prepared.rows:
        return
    session.execute(insert(PredictionLog.__table__), prepared.rows)
    _add_hours(session, version_id, prepared.hours)
    _add_bins(session, prepared.bins)
    _bump_state(session, version_id, logged=len(prepared.rows), hours=prepared.hours.keys())


# -- labels --------------------------------------------------------------------

def _check_label(value: Any, task: str, classes: tuple[str, ...] | None) -> tuple[str | None, float | None]:
    if task == "regression":
        f = _number(value)
        if f is None:
            raise ValueError("label must be a finite number for a regressor")
        return None, f
    if value is None or isinstance(value, (dict, list)) or str(value) not in classes:
        raise ValueError(f"label must be one of the model's classes {list(classes)[:10]}, got {str(value)[:40]!r}")
    return str(value), None


def ingest_labels(db: Database, model_name: str, labels: Any, *, max_records: int = DEFAULT_MAX_RECORDS,
                  now: dt.datetime | None = None) -> IngestResult:
    """Attach ground truth to logged predictions by id, all or nothing.

    Unknown ids and labels of the wrong type are per-record errors (nothing is
    written). Ids labelled before (or twice in the batch) are reported as
    duplicates and keep their first label.
    """
    from data.registry import ModelVersion

    now = now or utcnow()
    result = IngestResult()
    if not isinstance(labels, list) or not labels:
        result.errors = [RecordError(-1, None, ["'labels' must be a non-empty list of {\"id\", \"label\"} objects"])]
        return result
    if len(labels) > max_records:
        result.errors = [RecordError(-1, None, [f"at most {max_records} labels per request; got {len(labels)}"])]
        return result
    with db.session() as s:
        model, _ = _versions_of(s, model_name)
        model_id = model.id
    parsed: list[tuple[int, str, Any]] = []
    for i, item in enumerate(labels):
        if not isinstance(item, Mapping):
            result.errors.append(RecordError(i, None, ["each label must be an object with 'id' and 'label'"]))
            continue
        problems = []
        extra = sorted(set(item) - {"id", "label"})
        if extra:
            problems.append(f"unknown fields: {', '.join(str(e)[:40] for e in extra[:5])}")
        try:
            record_id = _record_id(item.get("id"))
        except ValueError as exc:
            problems.append(str(exc))
            record_id = None
        if "label" not in item:
            problems.append("label is missing")
        if problems:
            result.errors.append(RecordError(i, item.get("id") if isinstance(item.get("id"), (str, int)) else None,
                                             problems))
            continue
        parsed.append((i, record_id, item["label"]))
    if result.errors:
        return result

    for attempt in range(3):
        updated_ids: list[str] = []
        duplicates: list[str] = []
        try:
            with db.session() as s:
                ids = list(dict.fromkeys(rid for _, rid, _ in parsed))
                found = {}
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    for row in s.execute(select(PredictionLog.id, PredictionLog.record_id, PredictionLog.version_id,
                                                PredictionLog.hour, PredictionLog.pred_label, PredictionLog.pred_pos,
                                                PredictionLog.score, PredictionLog.score_bin,
                                                PredictionLog.labelled_at)
                                         .where(PredictionLog.model_id == model_id,
                                                PredictionLog.record_id.in_(chunk))):
                        found[row.record_id] = row
                tasks = {}
                for vid in {r.version_id for r in found.values()}:
                    v = s.get(ModelVersion, vid)
                    tasks[vid] = (v.task, None if v.classes is None else tuple(str(c) for c in v.classes),
                                  str(v.positive_class) if v.task == "binary" else None)
                errors = []
                updates, seen = [], set()
                hour_delta: dict[tuple[int, int], dict] = {}
                bin_delta: dict[tuple[int, int, int, int], int] = {}
                for i, rid, value in parsed:
                    row = found.get(rid)
                    if row is None:
                        errors.append(RecordError(i, rid, [f"no prediction with id {rid!r} was logged for "
                                                           f"{model_name!r}"]))
                        continue
                    task, classes, positive = tasks[row.version_id]
                    try:
                        label, label_value = _check_label(value, task, classes)
                    except ValueError as exc:
                        errors.append(RecordError(i, rid, [str(exc)]))
                        continue
                    if row.labelled_at is not None or rid in seen:
                        duplicates.append(rid)
                        continue
                    seen.add(rid)
                    up = {"row_id": row.id, "label": label, "label_value": label_value, "label_pos": None,
                          "correct": None, "err": None, "labelled_at": now}
                    d = hour_delta.setdefault((row.version_id, row.hour), {"n_labelled": 0})
                    d["n_labelled"] += 1
                    if task == "regression":
                        pred = row.score
                        err = float(pred - label_value)
                        up["err"] = err
                        for k, v in (("sum_sq_err", err * err), ("sum_abs_err", abs(err)), ("sum_err", err)):
                            d[k] = d.get(k, 0.0) + v
                    else:
                        correct = int(row.pred_label == label)
                        up["correct"] = correct
                        d["correct"] = d.get("correct", 0) + correct
                        if task == "binary":
                            pos = int(label == positive)
                            up["label_pos"] = pos
                            key = {(1, 1): "tp", (1, 0): "fp", (0, 0): "tn", (0, 1): "fn"}[(row.pred_pos, pos)]
                            d[key] = d.get(key, 0) + 1
                            if row.score_bin is not None:
                                var = VAR_SCORE_POS if pos else VAR_SCORE_NEG
                                k4 = (row.version_id, var, row.hour, row.score_bin)
                                bin_delta[k4] = bin_delta.get(k4, 0) + 1
                    updates.append(up)
                    updated_ids.append(rid)
                if errors:
                    result.errors = errors
                    s.rollback()
                    return result
                if updates:
                    _apply_labels(s, updates)
                    by_version: dict[int, dict[int, dict]] = {}
                    for (vid, hour), delta in hour_delta.items():
                        by_version.setdefault(vid, {})[hour] = delta
                    for vid, hours in by_version.items():
                        _add_hours(s, vid, hours)
                        _bump_state(s, vid, labelled=sum(h["n_labelled"] for h in hours.values()))
                        result.version_ids.add(vid)
                    _add_bins(s, [{"version_id": k[0], "var": k[1], "hour": k[2], "bin": k[3], "count": c}
                                  for k, c in bin_delta.items()])
            result.accepted = updated_ids
            result.duplicates = duplicates
            return result
        except _LabelRace:
            result.version_ids.clear()
            if attempt == 2:
                raise RuntimeError("labels for the same records kept arriving concurrently; try again") from None
    return result


class _LabelRace(Exception):
    """Another request labelled some of the same records first."""


_LABEL_UPDATE = (update(PredictionLog.__table__)
                 .where(PredictionLog.__table__.c.id == bindparam("b_id"),
                        PredictionLog.__table__.c.labelled_at.is_(None))
                 .values(label=bindparam("b_label"), label_value=bindparam("b_label_value"),
                         label_pos=bindparam("b_label_pos"), correct=bindparam("b_correct"), err=bindparam("b_err"),
                         labelled_at=bindparam("b_labelled_at")))


def _apply_labels(session: Session, updates: list[dict]) -> None:
    """Write labels only onto rows still unlabelled; raise _LabelRace if another request got there first."""
    params = [{f"b_{k}" if k != "row_id" else "b_id": v for k, v in u.items()} for u in updates]
    if session.get_bind().dialect.supports_sane_multi_rowcount:
        if session.execute(_LABEL_UPDATE, params).rowcount != len(params):
            raise _LabelRace()
        return
    for p in params:
        if session.execute(_LABEL_UPDATE, p).rowcount != 1:
            raise _LabelRace()


# =============================================================================
# Reading: windows, buckets, aggregates
# =============================================================================

@dataclasses.dataclass(frozen=True)
class Segment:
    """Records whose feature ``feature`` (index ``index``) falls in the reference bins ``bins``."""

    feature: str
    index: int
    bins: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Window:
    """What a monitoring view shows: one version, hours [start, end), a bucket size and an optional segment."""

    version_id: int
    start: int
    end: int
    bucket: str = "day"
    segment: Segment | None = None

    def __post_init__(self):
        if self.bucket not in BUCKETS:
            raise ValueError(f"bucket must be one of {BUCKETS}, got {self.bucket!r}")
        if self.end <= self.start:
            raise ValueError("the time window is empty")


def _raw_where(window: Window) -> list:
    p = PredictionLog
    where = [p.version_id == window.version_id, p.hour >= window.start, p.hour < window.end]
    if window.segment is not None:
        i = window.segment.index
        where.append(func.substr(p.codes, 2 * i + 1, 2).in_([f"{b:02x}" for b in window.segment.bins]))
    return where


def _bit(column, bit: int):
    # (flags & bit) // bit is 0 or 1: integer arithmetic, cheaper than CASE and the same on SQLite and PostgreSQL.
    return column.op("&")(bit) // bit


def _raw_stat_columns(names: Iterable[str] | None = None) -> dict:
    columns = _all_raw_stat_columns()
    if names is None:
        return columns
    wanted = set(names)
    return {k: v for k, v in columns.items() if k in wanted}


def _all_raw_stat_columns() -> dict:
    p = PredictionLog
    pos, lab = p.pred_pos, p.label_pos
    return {
        "n": func.count(), "n_labelled": func.count(p.labelled_at), "correct": func.sum(p.correct),
        "tp": func.sum(pos * lab), "fp": func.sum(pos * (1 - lab)), "tn": func.sum((1 - pos) * (1 - lab)),
        "fn": func.sum((1 - pos) * lab), "sum_sq_err": func.sum(p.err * p.err), "sum_abs_err": func.sum(func.abs(p.err)),
        "sum_err": func.sum(p.err), "n_missing": func.sum(_bit(p.anomalies, MISSING)),
        "n_below_min": func.sum(_bit(p.anomalies, BELOW_MIN)), "n_above_max": func.sum(_bit(p.anomalies, ABOVE_MAX)),
        "n_unseen": func.sum(_bit(p.anomalies, UNSEEN)), "n_outliers": func.sum(_bit(p.anomalies, OUTLIER)),
        "n_anomalous": func.count(func.nullif(p.anomalies, 0)),
    }


#: The sums each view needs (a segment aggregates raw rows, so asking for fewer is cheaper).
STATS_FOR = {
    "binary": ("n", "n_labelled", "tp", "fp", "tn", "fn", "n_anomalous"),
    "multiclass": ("n", "n_labelled", "correct", "n_anomalous"),
    "regression": ("n", "n_labelled", "sum_sq_err", "sum_abs_err", "sum_err", "n_anomalous"),
    "anomalies": ("n", "n_missing", "n_below_min", "n_above_max", "n_unseen", "n_outliers"),
}


def bucket_stats(session: Session, window: Window, *, columns: Iterable[str] | None = None) -> list[dict]:
    """Return per-bucket sums (``bucket`` hour index plus every roll-up count), in time order.

    With a segment only ``columns`` are computed (the others are 0; binary ``correct`` is ``tp + tn``).
    """
    if window.segment is None:
        h = MonitoringHour
        b = bucket_expr(h.hour, window.bucket).label("bucket")
        cols = [func.sum(getattr(h, c)).label(c) for c in _HOUR_SUMS]
        query = (select(b, *cols).where(h.version_id == window.version_id, h.hour >= window.start,
                                        h.hour < window.end).group_by(b).order_by(b))
    else:
        b = bucket_expr(PredictionLog.hour, window.bucket).label("bucket")
        cols = [expr.label(name) for name, expr in _raw_stat_columns(columns).items()]
        query = select(b, *cols).where(*_raw_where(window)).group_by(b).order_by(b)
    out = []
    for row in session.execute(query):
        item = {"bucket": int(row.bucket)}
        for c in _HOUR_SUMS:
            v = getattr(row, c, None)
            item[c] = (v or 0.0) if c.startswith("sum_") else int(v or 0)
        if window.segment is not None and columns is not None and "correct" not in columns and "tp" in columns:
            item["correct"] = item["tp"] + item["tn"]
        out.append(item)
    return out


def bucket_stats_and_scores(session: Session, window: Window, *,
                            columns: Iterable[str] | None = None) -> tuple[list[dict], dict, dict]:
    """Return (bucket sums, {bucket: {bin: n}} of labelled positives' scores, the same of negatives).

    From the roll-ups this is three small queries; with a segment it is one scan of the covering index,
    grouped by bucket, label and score bin, folded here.
    """
    if window.segment is None:
        return (bucket_stats(session, window), bin_counts_by_bucket(session, window, VAR_SCORE_POS),
                bin_counts_by_bucket(session, window, VAR_SCORE_NEG))
    p = PredictionLog
    b = bucket_expr(p.hour, window.bucket).label("bucket")
    wanted = set(columns) | {"n_labelled"} if columns is not None else None
    cols = [expr.label(name) for name, expr in _raw_stat_columns(wanted).items()]
    query = (select(b, p.label_pos, p.score_bin, *cols).where(*_raw_where(window))
             .group_by(b, p.label_pos, p.score_bin))
    stats: dict[int, dict] = {}
    pos: dict[int, dict[int, int]] = {}
    neg: dict[int, dict[int, int]] = {}
    for row in session.execute(query):
        bucket = int(row.bucket)
        item = stats.setdefault(bucket, {"bucket": bucket, **{c: 0.0 if c.startswith("sum_") else 0
                                                               for c in _HOUR_SUMS}})
        for c in _HOUR_SUMS:
            value = getattr(row, c, None)
            item[c] += (value or 0.0) if c.startswith("sum_") else int(value or 0)
        if row.score_bin is not None and row.label_pos in (0, 1):
            target = pos if row.label_pos == 1 else neg
            target.setdefault(bucket, {})[int(row.score_bin)] = int(row.n_labelled)
    if columns is not None and "correct" not in columns and "tp" in columns:
        for item in stats.values():
            item["correct"] = item["tp"] + item["tn"]
    return [stats[k] for k in sorted(stats)], pos, neg


def _raw_var_column(var: int):
    p = PredictionLog
    if var >= 0:
        return func.substr(p.codes, 2 * var + 1, 2)
    if var == VAR_PREDICTION:
        return p.pred_bin
    return p.score_bin


def _bin_value(var: int, value) -> int | None:
    if var >= 0:
        return int(value, 16) if value not in (None, "zz") else None
    return None if value is None or value < 0 else int(value)


def bin_counts_by_bucket(session: Session, window: Window, var: int) -> dict[int, dict[int, int]]:
    """Return {bucket hour: {bin: count}} of one series over the window."""
    out: dict[int, dict[int, int]] = {}
    if window.segment is None:
        m = _bin_table(window, per_bucket=True)
        b = bucket_expr(m.hour, window.bucket).label("bucket")
        query = (select(b, m.bin, func.sum(m.count).label("count"))
                 .where(m.version_id == window.version_id, m.var == var, m.hour >= window.start,
                        m.hour < window.end).group_by(b, m.bin))
    else:
        column = _raw_var_column(var)
        b = bucket_expr(PredictionLog.hour, window.bucket).label("bucket")
        where = _raw_where(window) + [column.is_not(None)]
        if var == VAR_SCORE_POS:
            where.append(PredictionLog.label_pos == 1)
        elif var == VAR_SCORE_NEG:
            where.append(PredictionLog.label_pos == 0)
        query = select(b, column.label("bin"), func.count().label("count")).where(*where).group_by(b, column)
        for row in session.execute(query):
            value = _bin_value(var, row.bin)
            if value is not None:
                out.setdefault(int(row.bucket), {})[value] = int(row.count)
        return out
    for row in session.execute(query):
        out.setdefault(int(row.bucket), {})[int(row.bin)] = int(row.count)
    return out


def bin_totals(session: Session, window: Window, variables: Iterable[int]) -> dict[int, dict[int, int]]:
    """Return {var: {bin: count}} summed over the whole window (drift counts)."""
    variables = list(variables)
    out: dict[int, dict[int, int]] = {v: {} for v in variables}
    if not variables:
        return out
    if window.segment is None:
        m = _bin_table(window, per_bucket=False)
        query = (select(m.var, m.bin, func.sum(m.count).label("count"))
                 .where(m.version_id == window.version_id, m.var.in_(variables), m.hour >= window.start,
                        m.hour < window.end).group_by(m.var, m.bin))
        for row in session.execute(query):
            out[int(row.var)][int(row.bin)] = int(row.count)
        return out
    features = [v for v in variables if v >= 0]
    if features:
        # One scan of the covering index returns the segment's bin codes; they are counted per feature here
        # (small integers; no feature value is read).
        codes = [row[0] for row in _fetch_plain(session, select(PredictionLog.codes).where(*_raw_where(window)))]
        if codes:
            decoded = decode_codes(codes, len(codes[0]) // 2)
            for var in features:
                column = decoded[:, var]
                counts = np.bincount(column[column >= 0])
                out[var] = {int(b): int(c) for b, c in enumerate(counts) if c}
    for var in (v for v in variables if v < 0):
        column = _raw_var_column(var)
        where = _raw_where(window) + [column.is_not(None), column >= 0]
        if var == VAR_SCORE_POS:
            where.append(PredictionLog.label_pos == 1)
        elif var == VAR_SCORE_NEG:
            where.append(PredictionLog.label_pos == 0)
        for row in session.execute(select(column.label("bin"), func.count().label("count")).where(*where)
                                   .group_by(column)):
            out[var][int(row.bin)] = int(row.count)
    return out


def _fetch_plain(session: Session, stmt) -> list[tuple]:
    """Return the rows of a Core select as plain tuples straight from the driver.

    For bulk fetches of a few small columns: building SQLAlchemy row objects costs three times the
    query itself at hundreds of thousands of rows. Runs in the session's transaction.
    """
    compiled = stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    params = [compiled.params[k] for k in compiled.positiontup] if compiled.positiontup else compiled.params
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return cursor.fetchall()
    finally:
        cursor.close()


def counts_list(counts: Mapping[int, int], n_bins: int) -> list[int]:
    """Return a dense list of ``n_bins`` counts from a sparse {bin: count}."""
    dense = [0] * n_bins
    for b, c in counts.items():
        if 0 <= b < n_bins:
            dense[b] += int(c)
    return dense


def state_of(session: Session, version_id: int) -> dict:
    """Return the monitoring state of a version: revision, counts and the hours with data (zeros if none)."""
    row = session.get(MonitoringState, version_id)
    if row is None:
        return {"revision": 0, "n_logged": 0, "n_labelled": 0, "first_hour": None, "last_hour": None}
    return {"revision": row.revision, "n_logged": row.n_logged, "n_labelled": row.n_labelled,
            "first_hour": row.first_hour, "last_hour": row.last_hour}


# -- records ---------------------------------------------------------------------

RECORD_SORTS = {"time": (PredictionLog.ts, PredictionLog.id), "outlier": (PredictionLog.outlier,),
                "score": (PredictionLog.score,)}


def count_records(session: Session, window: Window, *, anomalous_only: bool = False) -> int:
    """Return how many records the window holds (only those with an anomaly, if asked)."""
    where = _raw_where(window)
    if anomalous_only:
        where.append(PredictionLog.anomalies > 0)
    return int(session.scalar(select(func.count()).select_from(PredictionLog).where(*where)) or 0)


def records_page(session: Session, window: Window, *, offset: int, limit: int, sort: str = "time",
                 descending: bool = False, anomalous_only: bool = False) -> list[dict]:
    """Return one page of the window's records as plain dicts (features included)."""
    if sort not in RECORD_SORTS:
        raise ValueError(f"sort must be one of {sorted(RECORD_SORTS)}, got {sort!r}")
    p = PredictionLog
    order = [c.desc() if descending else c.asc() for c in RECORD_SORTS[sort]]
    if sort != "time":
        order.append(p.id.asc())
    where = _raw_where(window)
    if anomalous_only:
        where.append(p.anomalies > 0)
    query = (select(p.record_id, p.ts, p.features, p.prediction, p.pred_label, p.score, p.outlier, p.anomalies,
                    p.label, p.label_value, p.labelled_at, p.correct, p.err)
             .where(*where).order_by(*order).offset(max(0, int(offset))).limit(max(1, min(int(limit), 500))))
    return [_record_dict(r) for r in session.execute(query)]


def worst_records(session: Session, window: Window, *, limit: int = 10) -> list[dict]:
    """Return the records with the highest outlier scores above 1 in the window."""
    p = PredictionLog
    query = (select(p.record_id, p.ts, p.features, p.prediction, p.pred_label, p.score, p.outlier, p.anomalies,
                    p.label, p.label_value, p.labelled_at, p.correct, p.err)
             .where(*_raw_where(window), p.outlier > 1.0).order_by(p.outlier.desc()).limit(limit))
    return [_record_dict(r) for r in session.execute(query)]


def record_features(session: Session, model_name: str, record_id: str) -> tuple[int, dict] | None:
    """Return (version number, logged feature values) of one logged prediction, or None (for ``/explain?record=``)."""
    from data.registry import ModelRecord, ModelVersion

    if not isinstance(record_id, str) or not record_id or len(record_id) > MAX_RECORD_ID:
        return None
    row = session.execute(select(ModelVersion.number, PredictionLog.features)
                          .join(ModelVersion, ModelVersion.id == PredictionLog.version_id)
                          .join(ModelRecord, ModelRecord.id == PredictionLog.model_id)
                          .where(ModelRecord.name == model_name, PredictionLog.record_id == record_id)).first()
    return None if row is None else (int(row.number), dict(row.features))


def anomaly_names(bits: int) -> list[str]:
    """Return the anomaly kinds set in a record's bitmask."""
    return [name for name, bit in ANOMALY_BITS.items() if bits & bit]


def _record_dict(r) -> dict:
    return {"id": r.record_id, "time": r.ts.isoformat(timespec="seconds"), "features": r.features,
            "prediction": r.prediction, "pred_label": r.pred_label, "score": r.score, "outlier": r.outlier,
            "anomalies": anomaly_names(r.anomalies or 0),
            "label": r.label if r.label is not None else r.label_value,
            "labelled": r.labelled_at is not None, "correct": r.correct, "error": r.err}


def confusion_counts(session: Session, window: Window) -> dict[tuple[str, str], int]:
    """Return {(true label, predicted label): count} of the window's labelled records."""
    p = PredictionLog
    query = (select(p.label, p.pred_label, func.count().label("n")).where(*_raw_where(window), p.label.is_not(None))
             .group_by(p.label, p.pred_label))
    return {(r.label, r.pred_label): int(r.n) for r in session.execute(query)}


def last_data_hour(session: Session, version_id: int) -> int | None:
    """Return the latest hour with logged data for a version, or None."""
    return state_of(session, version_id)["last_hour"]


# =============================================================================
# Comments
# =============================================================================

MAX_COMMENT = 2000


def _clean_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a comment needs some text")
    text = text.strip()
    if len(text) > MAX_COMMENT:
        raise ValueError(f"a comment can have at most {MAX_COMMENT} characters")
    return text


def add_comment(session: Session, *, model_id: int, version_id: int | None, author: str, text: str,
                start: dt.datetime | None = None, end: dt.datetime | None = None,
                chart: str | None = None) -> Comment:
    """Add a comment (optionally on a time range and a chart) and return it."""
    text = _clean_text(text)
    if start is not None and end is not None and end < start:
        raise ValueError("the comment's time range ends before it starts")
    if chart is not None and (not isinstance(chart, str) or len(chart) > 64):
        raise ValueError("chart must be a short name")
    row = Comment(model_id=model_id, version_id=version_id, author=author, text=text, start=start, end=end,
                  chart=chart)
    session.add(row)
    session.flush()
    return row


def _own_comment(session: Session, comment_id: Any, author: str) -> Comment:
    row = session.get(Comment, comment_id) if isinstance(comment_id, int) and not isinstance(comment_id, bool) \
        else None
    if row is None:
        raise ValueError("that comment does not exist any more")
    if row.author != author:
        raise PermissionError("you can only change your own comments")
    return row


def edit_comment(session: Session, comment_id: int, *, author: str, text: str) -> Comment:
    """Change the text of one's own comment; raise PermissionError for someone else's."""
    row = _own_comment(session, comment_id, author)
    row.text = _clean_text(text)
    row.edited_at = utcnow()
    return row


def delete_comment(session: Session, comment_id: int, *, author: str) -> None:
    """Delete one's own comment; raise PermissionError for someone else's."""
    session.delete(_own_comment(session, comment_id, author))


def list_comments(session: Session, model_id: int, *, version_id: int | None = None,
                  start: dt.datetime | None = None, end: dt.datetime | None = None, limit: int = 200) -> list[dict]:
    """Return a model's comments (of one version or unversioned) overlapping [start, end), newest first."""
    c = Comment
    where = [c.model_id == model_id]
    if version_id is not None:
        where.append((c.version_id == version_id) | c.version_id.is_(None))
    if end is not None:
        where.append(func.coalesce(c.start, c.created_at) < end)
    if start is not None:
        where.append(func.coalesce(c.end, c.start, c.created_at) >= start)
    rows = session.scalars(select(c).where(*where).order_by(c.created_at.desc(), c.id.desc()).limit(limit))
    return [{"id": r.id, "author": r.author, "text": r.text, "start": r.start, "end": r.end, "chart": r.chart,
             "created_at": r.created_at, "edited_at": r.edited_at, "version_id": r.version_id} for r in rows]


# =============================================================================
# Alerts (the overview's badge reads this)
# =============================================================================

def open_alert_counts(session: Session, names: Iterable[str]) -> dict[str, int]:
    """Return model name -> number of alert events not acknowledged yet (0 for none)."""
    from data.registry import ModelRecord

    names = [n for n in names if isinstance(n, str)]
    out = {n: 0 for n in names}
    if not names:
        return out
    query = (select(ModelRecord.name, func.count(AlertEvent.id))
             .join(AlertEvent, AlertEvent.model_id == ModelRecord.id)
             .where(ModelRecord.name.in_(names), AlertEvent.acknowledged_at.is_(None))
             .group_by(ModelRecord.name))
    for name, count in session.execute(query):
        out[name] = int(count)
    return out


__all__ = [
    "ApiToken", "AlertEvent", "AlertRule", "Comment", "IngestResult", "MonitoringBin", "MonitoringBinDay",
    "MonitoringHour",
    "MonitoringState", "Notification", "PredictionLog", "Report", "ReferenceNotReady", "Segment", "VersionRef",
    "Window", "add_comment", "authenticate_token", "bin_counts_by_bucket", "bin_indices", "bin_totals",
    "bucket_expr", "bucket_floor", "bucket_stats", "confusion_counts", "count_records", "create_token",
    "delete_comment", "edit_comment", "hash_token", "hit_rate_limit", "hour_of", "hour_start", "ingest_labels",
    "ingest_predictions", "list_comments", "list_tokens", "load_reference", "open_alert_counts",
    "parse_timestamp", "prepare_predictions", "records_page", "revoke_token", "state_of", "worst_records",
    "write_prepared",
]
