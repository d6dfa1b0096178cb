"""Alert rules: metrics per time bucket from the roll-ups, evaluation, events and acknowledgement.

A rule watches one metric of one model, e.g. "ROC AUC below 0.75 over the last
3 days with at least 200 labelled records" or "PSI of ``income`` above 0.25 in
a day". For every bucket the metric is computed on the counts pooled over the
trailing ``window`` buckets (so F1 and PSI are those of the pooled sample, not
an average of per-bucket values), and :func:`app.ml.timeseries.evaluate_rule`
decides whether it fires. An event is recorded where a rule starts firing
(a rising edge), once per rule, version and bucket, with the value and sample
size that fired it. Rules are evaluated after every accepted API batch and
by ``glassbox alerts evaluate`` (cron).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.ml.drift import psi
from app.ml.timeseries import COMPARISONS, alert_events, bucket_performance, evaluate_rule
from data.db import Database, utcnow
from data.monitoring import (BUCKET_HOURS, VAR_PREDICTION, VAR_SCORE_NEG, VAR_SCORE_POS, AlertEvent, AlertRule,
                             MonitoringState, VersionRef, Window, bin_counts_by_bucket, bucket_floor, bucket_stats,
                             counts_list, hour_of, hour_start, reference_if_ready)

log = logging.getLogger(__name__)

#: Metric key -> (label with unit, tasks it applies to, whether it needs labels).
METRICS: dict[str, tuple[str, frozenset[str], bool]] = {
    "accuracy": ("Accuracy (share correct)", frozenset({"binary", "multiclass"}), True),
    "precision": ("Precision (share of predicted positives that are positive)", frozenset({"binary"}), True),
    "recall": ("Recall (share of positives found)", frozenset({"binary"}), True),
    "f1": ("F1 score", frozenset({"binary"}), True),
    "roc_auc": ("ROC AUC", frozenset({"binary"}), True),
    "rmse": ("RMSE (target units)", frozenset({"regression"}), True),
    "mae": ("MAE (target units)", frozenset({"regression"}), True),
    "volume": ("Predictions (count)", frozenset({"binary", "multiclass", "regression"}), False),
    "label_share": ("Share of predictions with ground truth", frozenset({"binary", "multiclass", "regression"}),
                    False),
    "anomaly_share": ("Share of records with an input anomaly", frozenset({"binary", "multiclass", "regression"}),
                      False),
    "outlier_share": ("Share of records with outlier score above 1",
                      frozenset({"binary", "multiclass", "regression"}), False),
    "psi_max": ("Largest feature PSI", frozenset({"binary", "multiclass", "regression"}), False),
    "prediction_psi": ("PSI of the predictions", frozenset({"binary", "multiclass", "regression"}), False),
}
PSI_PREFIX = "psi:"
#: Buckets looked back on when a rule is evaluated.
LOOKBACK = {"hour": 7 * 24, "day": 90, "week": 52}
RULE_BUCKETS = ("hour", "day", "week")
MAX_WINDOW = 60


def metric_label(metric: str) -> str:
    """Return the human label of a metric key (``psi:<feature>`` included)."""
    if metric.startswith(PSI_PREFIX):
        return f"PSI of {metric[len(PSI_PREFIX):]}"
    return METRICS.get(metric, (metric,))[0]


def metric_options(task: str, features: Iterable[str]) -> list[dict]:
    """Return the metrics a rule can watch for a model of ``task``: [{label, value}]."""
    options = [{"label": label, "value": key} for key, (label, tasks, _) in METRICS.items() if task in tasks]
    options += [{"label": f"PSI of {f}", "value": PSI_PREFIX + f} for f in features]
    return options


def check_metric(metric: Any, task: str, features: Iterable[str]) -> str:
    """Return ``metric`` if a rule on a ``task`` model may watch it; raise ValueError otherwise."""
    if not isinstance(metric, str):
        raise ValueError("choose a metric")
    if metric.startswith(PSI_PREFIX):
        if metric[len(PSI_PREFIX):] not in set(features):
            raise ValueError(f"{metric[len(PSI_PREFIX):][:60]!r} is not a feature of this model")
        return metric
    if metric not in METRICS or task not in METRICS[metric][1]:
        raise ValueError(f"{metric[:40]!r} is not a metric of a {task} model")
    return metric


# -- rules ------------------------------------------------------------------------

def create_rule(session: Session, *, model_name: str, name: str, metric: str, comparison: str, threshold: float,
                window: int = 1, bucket: str = "day", min_samples: int = 0, created_by: str) -> AlertRule:
    """Validate and add a rule for a model; raise ValueError naming the bad value."""
    from data.registry import get_model

    model = get_model(session, model_name)
    if model is None or not model.versions:
        raise ValueError(f"there is no model called {model_name!r}")
    latest = model.latest
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 128:
        raise ValueError("a rule needs a name of 1 to 128 characters")
    metric = check_metric(metric, latest.task, latest.features)
    if comparison not in COMPARISONS:
        raise ValueError(f"comparison must be one of {sorted(COMPARISONS)}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValueError("threshold must be a finite number")
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW:
        raise ValueError(f"window must be a whole number of buckets from 1 to {MAX_WINDOW}")
    if bucket not in RULE_BUCKETS:
        raise ValueError(f"bucket must be one of {RULE_BUCKETS}")
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or not 0 <= min_samples <= 10_000_000:
        raise ValueError("minimum sample size must be a whole number from 0 to 10,000,000")
    rule = AlertRule(model_id=model.id, name=name, metric=metric, comparison=comparison, threshold=float(threshold),
                     window=window, bucket=bucket, min_samples=min_samples, created_by=created_by)
    session.add(rule)
    session.flush()
    return rule


def rule_text(rule: AlertRule) -> str:
    """Return a one-line description of a rule."""
    pool = f"over {rule.window} {rule.bucket}s" if rule.window > 1 else f"in a {rule.bucket}"
    return (f"{metric_label(rule.metric)} {rule.comparison} {rule.threshold:g} {pool}"
            + (f", at least {rule.min_samples:,} records" if rule.min_samples else ""))


def list_rules(session: Session, *, model_ids: Iterable[int] | None = None) -> list[dict]:
    """Return rules (with their model's name) as plain dicts."""
    from data.registry import ModelRecord

    query = select(AlertRule, ModelRecord.name).join(ModelRecord, ModelRecord.id == AlertRule.model_id)
    if model_ids is not None:
        query = query.where(AlertRule.model_id.in_(list(model_ids)))
    rows = session.execute(query.order_by(ModelRecord.name, AlertRule.id)).all()
    return [{"id": r.id, "model": name, "name": r.name, "metric": r.metric, "comparison": r.comparison,
             "threshold": r.threshold, "window": r.window, "bucket": r.bucket, "min_samples": r.min_samples,
             "enabled": r.enabled, "text": rule_text(r), "created_by": r.created_by,
             "last_evaluated_at": r.last_evaluated_at} for r, name in rows]


def set_rule_enabled(session: Session, rule_id: int, enabled: bool) -> AlertRule:
    """Enable or disable a rule; raise ValueError if it does not exist."""
    rule = session.get(AlertRule, rule_id) if isinstance(rule_id, int) else None
    if rule is None:
        raise ValueError(f"there is no alert rule with id {rule_id!r}")
    rule.enabled = bool(enabled)
    return rule


def delete_rule(session: Session, rule_id: int) -> str:
    """Delete a rule and its events; return its name. Raise ValueError if it does not exist."""
    rule = session.get(AlertRule, rule_id) if isinstance(rule_id, int) else None
    if rule is None:
        raise ValueError(f"there is no alert rule with id {rule_id!r}")
    name = rule.name
    session.delete(rule)
    return name


# -- metric series -------------------------------------------------------------------

@dataclasses.dataclass
class _Pooled:
    stats: dict
    bins: dict[int, dict[int, int]]


def _pool(items: list[_Pooled]) -> _Pooled:
    stats: dict[str, float] = {}
    bins: dict[int, dict[int, int]] = {}
    for item in items:
        for k, v in item.stats.items():
            if k != "bucket":
                stats[k] = stats.get(k, 0) + v
        for var, counts in item.bins.items():
            target = bins.setdefault(var, {})
            for b, c in counts.items():
                target[b] = target.get(b, 0) + c
    return _Pooled(stats, bins)


def _vars_for(metric: str, ref: VersionRef) -> list[int]:
    if metric == "roc_auc":
        return [VAR_SCORE_POS, VAR_SCORE_NEG]
    if metric == "prediction_psi":
        return [VAR_PREDICTION]
    if metric == "psi_max":
        return list(range(len(ref.features)))
    if metric.startswith(PSI_PREFIX):
        return [ref.features.index(metric[len(PSI_PREFIX):])]
    return []


def _value(metric: str, pooled: _Pooled, ref: VersionRef) -> tuple[float | None, int]:
    """Return (value, sample size) of a metric on pooled counts."""
    from data.monitoring import SCORE_BINS

    s = pooled.stats
    n = int(s.get("n", 0))
    if metric == "volume":
        return float(n), n
    if metric in ("label_share", "anomaly_share", "outlier_share"):
        key = {"label_share": "n_labelled", "anomaly_share": "n_anomalous", "outlier_share": "n_outliers"}[metric]
        return (s.get(key, 0) / n if n else None), n
    if metric in ("psi_max", "prediction_psi") or metric.startswith(PSI_PREFIX):
        best, size = None, 0
        for var in _vars_for(metric, ref):
            bins = ref.prediction_bins if var == VAR_PREDICTION else ref.bins[ref.features[var]]
            cur = counts_list(pooled.bins.get(var, {}), len(bins["counts"]))
            if sum(cur) == 0 or sum(bins["counts"]) == 0:
                continue
            value = psi(bins["counts"], cur)
            if best is None or value > best:
                best, size = value, sum(cur)
        return best, size
    n_lab = int(s.get("n_labelled", 0))
    row = {"time": 0, "n": n, **{k: s.get(k, 0) for k in ("n_labelled", "correct", "tp", "fp", "tn", "fn",
                                                          "sum_sq_err", "sum_abs_err", "sum_err")}}
    if ref.task == "binary":
        row["pos_hist"] = counts_list(pooled.bins.get(VAR_SCORE_POS, {}), SCORE_BINS)
        row["neg_hist"] = counts_list(pooled.bins.get(VAR_SCORE_NEG, {}), SCORE_BINS)
    perf = bucket_performance([row], task=ref.task)
    value = perf.get(metric, [None])[0]
    return value, n_lab


def metric_series(session: Session, ref: VersionRef, *, metric: str, bucket: str, start: int, end: int,
                  pool: int = 1) -> list[dict]:
    """Return [{"time": bucket start (datetime), "value", "n"}] of a metric per bucket in [start, end).

    Each bucket's value is computed on the counts of the ``pool`` trailing
    buckets (this one included); buckets without any record are skipped.
    """
    size = BUCKET_HOURS[bucket]
    first = bucket_floor(start, bucket)
    window = Window(ref.id, first - (pool - 1) * size, end, bucket)
    stats = {row["bucket"]: row for row in bucket_stats(session, window)}
    per_var = {var: bin_counts_by_bucket(session, window, var) for var in _vars_for(metric, ref)}
    buckets = sorted(set(stats) | {b for counts in per_var.values() for b in counts})
    items = {b: _Pooled(stats.get(b, {"n": 0}), {var: counts.get(b, {}) for var, counts in per_var.items()})
             for b in buckets}
    out = []
    for b in buckets:
        if b < first:
            continue
        pooled = _pool([items[k] for k in buckets if b - (pool - 1) * size <= k <= b])
        value, n = _value(metric, pooled, ref)
        out.append({"time": hour_start(b), "value": value, "n": int(n)})
    return out


# -- evaluation ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FiredEvent:
    """A newly recorded alert event."""

    id: int
    rule: str
    model: str
    version: int
    time: dt.datetime
    value: float
    n: int
    message: str


def _message(rule: AlertRule, ref: VersionRef, when: dt.datetime, value: float, n: int) -> str:
    fmt = f"{value:,.0f}" if rule.metric == "volume" else f"{value:.3f}"
    span = f"{rule.window} {rule.bucket}s to" if rule.window > 1 else f"the {rule.bucket} of"
    return (f"{ref.label}: {rule.name}: {metric_label(rule.metric)} = {fmt} "
            f"({rule.comparison} {rule.threshold:g}) for {span} {when:%Y-%m-%d %H:%M} UTC, n = {n:,}")


def evaluate_rule_for_version(session: Session, rule: AlertRule, ref: VersionRef, *, now: dt.datetime) -> list[dict]:
    """Return the rising edges of ``rule`` on one version over its look-back, as evaluate_rule rows."""
    now_h = hour_of(now)
    size = BUCKET_HOURS[rule.bucket]
    start = bucket_floor(now_h - LOOKBACK[rule.bucket] * size, rule.bucket)
    series = metric_series(session, ref, metric=rule.metric, bucket=rule.bucket, start=start, end=now_h + 1,
                           pool=rule.window)
    if not series:
        return []
    evaluated = evaluate_rule(series, comparison=rule.comparison, threshold=rule.threshold, window=1,
                              min_samples=rule.min_samples)
    edges = alert_events(evaluated)
    state = session.get(MonitoringState, ref.id)
    older_data = state is not None and state.first_hour is not None and state.first_hour < start
    if older_data and edges and edges[0]["time"] == evaluated[0]["time"]:
        # Firing from the first bucket looked at: the episode may have begun earlier; not a new edge.
        edges = edges[1:]
    return edges


def evaluate_rules(db: Database, *, model_name: str | None = None, now: dt.datetime | None = None,
                   version_ids: Iterable[int] | None = None, settings=None) -> list[FiredEvent]:
    """Evaluate the enabled rules (of one model, or all) and record new events; return them.

    Notifications for new events are queued in the same transaction, one per
    channel of ``settings`` (default: :func:`data.notify.load_settings`);
    delivering them is a separate step (:func:`data.notify.deliver_pending`).
    """
    from data.notify import load_settings, queue_notifications
    from data.registry import ModelRecord, ModelVersion

    now = now or utcnow()
    settings = settings or load_settings()
    fired: list[FiredEvent] = []
    with db.session() as s:
        query = select(AlertRule, ModelRecord).join(ModelRecord, ModelRecord.id == AlertRule.model_id) \
            .where(AlertRule.enabled.is_(True), ModelRecord.archived.is_(False))
        if model_name is not None:
            query = query.where(ModelRecord.name == model_name)
        rules = s.execute(query.order_by(AlertRule.id)).all()
        only = set(version_ids) if version_ids is not None else None
        for rule, model in rules:
            lookback_start = hour_of(now) - LOOKBACK[rule.bucket] * BUCKET_HOURS[rule.bucket] - rule.window * 168
            states = s.scalars(select(MonitoringState).join(ModelVersion, ModelVersion.id == MonitoringState.version_id)
                               .where(ModelVersion.model_id == model.id,
                                      MonitoringState.last_hour >= lookback_start)).all()
            for state in states:
                if only is not None and state.version_id not in only:
                    continue
                version = s.get(ModelVersion, state.version_id)
                ref = reference_if_ready(s, version)
                if ref is None:
                    continue
                try:
                    check_metric(rule.metric, ref.task, ref.features)
                except ValueError:
                    continue  # a rule on a feature this version does not have
                for edge in evaluate_rule_for_version(s, rule, ref, now=now):
                    event = _record(s, rule, ref, edge)
                    if event is not None:
                        queue_notifications(s, event, settings=settings)
                        fired.append(FiredEvent(id=event.id, rule=rule.name, model=model.name, version=ref.number,
                                                time=event.bucket_start, value=event.value, n=event.n,
                                                message=event.message))
            rule.last_evaluated_at = now
    for event in fired:
        log.warning("alert fired: %s", event.message)
    return fired


def _record(session: Session, rule: AlertRule, ref: VersionRef, edge: Mapping[str, Any]) -> AlertEvent | None:
    when = edge["time"]
    exists = session.scalar(select(AlertEvent.id).where(AlertEvent.rule_id == rule.id,
                                                        AlertEvent.version_id == ref.id,
                                                        AlertEvent.bucket_start == when))
    if exists is not None:
        return None
    event = AlertEvent(rule_id=rule.id, model_id=ref.model_id, version_id=ref.id, bucket_start=when,
                       value=float(edge["value"]), n=int(edge["n"]),
                       message=_message(rule, ref, when, float(edge["value"]), int(edge["n"])))
    try:
        with session.begin_nested():
            session.add(event)
            session.flush()
    except IntegrityError:
        return None  # another worker recorded the same edge a moment ago
    return event


# -- events ------------------------------------------------------------------------------

def list_events(session: Session, model_id: int, *, version_id: int | None = None, start: dt.datetime | None = None,
                end: dt.datetime | None = None, open_only: bool = False, limit: int = 200) -> list[dict]:
    """Return a model's alert events, newest first, as plain dicts."""
    e = AlertEvent
    query = select(e, AlertRule.name, AlertRule.metric).join(AlertRule, AlertRule.id == e.rule_id) \
        .where(e.model_id == model_id)
    if version_id is not None:
        query = query.where(e.version_id == version_id)
    if start is not None:
        query = query.where(e.bucket_start >= start)
    if end is not None:
        query = query.where(e.bucket_start < end)
    if open_only:
        query = query.where(e.acknowledged_at.is_(None))
    rows = session.execute(query.order_by(e.bucket_start.desc(), e.id.desc()).limit(limit)).all()
    return [{"id": ev.id, "rule": name, "metric": metric, "time": ev.bucket_start, "value": ev.value, "n": ev.n,
             "message": ev.message, "created_at": ev.created_at, "acknowledged_at": ev.acknowledged_at,
             "acknowledged_by": ev.acknowledged_by, "version_id": ev.version_id} for ev, name, metric in rows]


def acknowledge(session: Session, event_id: int, *, username: str, model_id: int | None = None) -> AlertEvent:
    """Mark an event as seen by ``username``; raise ValueError if unknown (or of another model) or done already."""
    event = session.get(AlertEvent, event_id) if isinstance(event_id, int) and not isinstance(event_id, bool) \
        else None
    if event is None or (model_id is not None and event.model_id != model_id):
        raise ValueError("that alert does not exist")
    if event.acknowledged_at is not None:
        raise ValueError(f"this alert was acknowledged by {event.acknowledged_by} already")
    event.acknowledged_at = utcnow()
    event.acknowledged_by = username
    return event
