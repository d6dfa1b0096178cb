"""Realistic prediction traffic for a registered model, sent through the prediction-log API.

Records are resampled from the version's test (and train) rows with a little
noise, spread over the days with a weekly and a daily rhythm, scored by the
model itself, and posted in batches to ``/api/v1/models/<name>/predictions``.
One feature can drift: from the middle of the period its values shift
gradually (numeric: up to 1.5 reference standard deviations; categorical:
towards its rarest level), so the model's inputs and outputs move while the
ground truth stays that of the original rows, which is how a real shift hurts
performance. Ground truth arrives with a delay of 1 to 6 days for most
records; labels whose arrival lies in the future are not sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: send(path, body) -> (HTTP status, JSON answer)
Sender = Callable[[str, dict], tuple[int, dict]]
BATCH = 500
HOUR_WEIGHTS = np.array([2, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 10, 9, 10, 10, 10, 9, 8, 7, 6, 5, 4, 3, 2], dtype=float)


@dataclasses.dataclass
class SimulationResult:
    """What was sent and accepted."""

    model: str
    version: int
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    labels_sent: int = 0
    labels_accepted: int = 0
    alerts: int = 0
    drift_feature: str | None = None
    drift_start: dt.datetime | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None


class SimulationError(RuntimeError):
    """The API refused a batch; the message has its answer."""


def default_drift_feature(estimator: Any, features: list[str], feature_meta: list[dict]) -> str:
    """Return the numeric feature the model leans on most (impurity or |coefficient|), else the first feature."""
    numeric = [m["name"] for m in feature_meta if m["kind"] == "numeric"]
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    weights = getattr(final, "feature_importances_", None)
    if weights is None and getattr(final, "coef_", None) is not None:
        weights = np.abs(np.atleast_2d(final.coef_)).sum(axis=0)
    if weights is not None and len(weights) == len(features):
        order = np.argsort(-np.asarray(weights, dtype=float))
        for i in order:
            if features[i] in numeric:
                return features[i]
    return numeric[0] if numeric else features[0]


def _daily_counts(days: int, per_day: int, rng: np.random.Generator, end: dt.datetime) -> list[int]:
    counts = []
    for d in range(days):
        day = (end - dt.timedelta(days=days - d)).weekday()
        factor = 0.6 if day >= 5 else 1.0
        counts.append(max(1, int(rng.normal(per_day * factor, per_day * 0.08))))
    return counts


def _timestamps(days: int, counts: list[int], rng: np.random.Generator, end: dt.datetime) -> np.ndarray:
    start_day = (end - dt.timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    stamps = []
    p = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
    for d, n in enumerate(counts):
        hours = rng.choice(24, size=n, p=p)
        seconds = rng.integers(0, 3600, size=n)
        base = start_day + dt.timedelta(days=d)
        stamps.extend(base + dt.timedelta(hours=int(h), seconds=int(s)) for h, s in zip(hours, seconds))
    # The last day is today: drop the hours that have not happened yet.
    return np.array(sorted(t for t in stamps if t <= end), dtype=object)


def build_traffic(version, estimator: Any, frames: tuple[pd.DataFrame, pd.DataFrame], *, days: int = 30,
                  per_day: int = 400, drift_feature: str | None = None, seed: int = 0,
                  end: dt.datetime | None = None, label_share: float = 0.85) -> tuple[pd.DataFrame, dict]:
    """Return (traffic frame with ``ts``, inputs, ``y_true``, ``label_at``; info) without sending anything."""
    if days < 1 or days > 366:
        raise ValueError("days must be between 1 and 366")
    rng = np.random.default_rng(seed)
    end = end or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    features = list(version.features)
    meta = {m["name"]: m for m in version.feature_meta}
    train, test = frames
    pool = pd.concat([test, train], ignore_index=True)
    counts = _daily_counts(days, per_day, rng, end)
    stamps = _timestamps(days, counts, rng, end)
    n = len(stamps)
    rows = pool.iloc[rng.integers(0, len(pool), size=n)].reset_index(drop=True)
    X = rows[features].copy()
    for name in features:
        m = meta[name]
        if m["kind"] != "numeric":
            continue
        values = pd.to_numeric(X[name], errors="coerce").astype(float)
        spread = float(pool[name].std() or 1.0)
        values = values + rng.normal(0, 0.05 * spread, size=n)
        if m.get("integer"):
            values = values.round()
        X[name] = values
    start = end - dt.timedelta(days=days)
    drift_start = start + dt.timedelta(days=days / 2)
    if drift_feature is not None:
        if drift_feature not in features:
            raise ValueError(f"{drift_feature!r} is not a feature of {version.model.name}")
        ramp = np.array([min(1.0, max(0.0, (t - drift_start).total_seconds() / (5 * 86400))) for t in stamps])
        if meta[drift_feature]["kind"] == "numeric":
            spread = float(pd.to_numeric(pool[drift_feature], errors="coerce").std() or 1.0)
            X[drift_feature] = X[drift_feature].astype(float) + 1.5 * spread * ramp
        else:
            levels = meta[drift_feature].get("levels") or []
            rare = levels[-1] if levels else "other"
            flip = rng.random(n) < 0.6 * ramp
            X.loc[flip, drift_feature] = rare
    delay_days = rng.uniform(1.0, 6.0, size=n)
    label_at = np.array([t + dt.timedelta(days=float(d)) for t, d in zip(stamps, delay_days)], dtype=object)
    has_label = rng.random(n) < label_share
    traffic = X.copy()
    traffic["ts"] = stamps
    traffic["y_true"] = rows[version.target].to_numpy()
    traffic["label_at"] = np.where(has_label, label_at, None)
    info = {"drift_start": drift_start if drift_feature else None, "start": start, "end": end}
    return traffic, info


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return None if np.isnan(f) else f
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def predictions_of(version, estimator: Any, X: pd.DataFrame) -> list[dict]:
    """Return the ``prediction`` objects the API expects, scored by the model."""
    if version.task == "regression":
        return [{"value": float(v)} for v in estimator.predict(X)]
    proba = np.asarray(estimator.predict_proba(X), dtype=float)
    classes = list(version.classes)
    if version.task == "binary":
        pos = classes.index(version.positive_class)
        neg = classes[1 - pos]
        threshold = (version.threshold or {}).get("value", 0.5)
        return [{"label": _plain(version.positive_class if p >= threshold else neg), "score": round(float(p), 6)}
                for p in proba[:, pos]]
    best = proba.argmax(axis=1)
    return [{"label": _plain(classes[i]), "scores": {str(c): round(float(p), 6) for c, p in zip(classes, row)}}
            for i, row in zip(best, proba)]


def _post(send: Sender, path: str, body: dict) -> dict:
    for _ in range(20):
        status, answer = send(path, body)
        if status == 200:
            return answer
        if status in (429, 503):
            wait = float(answer.get("retry_after", 2) if isinstance(answer, dict) else 2)
            time.sleep(min(wait, 10.0))
            continue
        raise SimulationError(f"the API answered {status}: {str(answer)[:500]}")
    raise SimulationError("the API kept answering 'try again later'")


def simulate(version, estimator: Any, frames: tuple[pd.DataFrame, pd.DataFrame], send: Sender, *, days: int = 30,
             per_day: int = 400, drift_feature: str | None = None, seed: int = 0, end: dt.datetime | None = None,
             id_prefix: str = "sim") -> SimulationResult:
    """Build traffic for a version and post it (predictions, then the labels that have arrived by ``end``)."""
    traffic, info = build_traffic(version, estimator, frames, days=days, per_day=per_day,
                                  drift_feature=drift_feature, seed=seed, end=end)
    features = list(version.features)
    preds = predictions_of(version, estimator, traffic[features])
    name = version.model.name
    result = SimulationResult(model=name, version=version.number, drift_feature=drift_feature,
                              drift_start=info["drift_start"], start=info["start"], end=info["end"])
    run = f"{id_prefix}-{seed}-{int(info['end'].timestamp())}"
    ids = [f"{run}-{i:06d}" for i in range(len(traffic))]
    records = []
    values = traffic[features].astype(object).where(traffic[features].notna(), None).to_dict("records")
    stamps = pd.to_datetime(traffic["ts"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
    for i, (row, pred) in enumerate(zip(values, preds)):
        records.append({"id": ids[i], "timestamp": stamps[i],
                        "version": version.number, "features": {k: _plain(v) for k, v in row.items()},
                        "prediction": pred})
    path = f"/api/v1/models/{name}"
    for start in range(0, len(records), BATCH):
        chunk = records[start:start + BATCH]
        answer = _post(send, f"{path}/predictions", {"records": chunk})
        result.sent += len(chunk)
        result.accepted += int(answer.get("accepted", 0))
        result.duplicates += len(answer.get("duplicates", []))
        result.alerts += int(answer.get("alerts", 0))
    end = info["end"]
    arrives = pd.to_datetime(traffic["label_at"])
    due = (arrives.notna() & (arrives <= pd.Timestamp(end))).to_numpy()
    truth = traffic["y_true"].to_numpy()
    labels = [{"id": ids[i], "label": _plain(truth[i])} for i in np.flatnonzero(due)]
    for start in range(0, len(labels), BATCH):
        chunk = labels[start:start + BATCH]
        answer = _post(send, f"{path}/labels", {"labels": chunk})
        result.labels_sent += len(chunk)
        result.labels_accepted += int(answer.get("accepted", 0))
        result.alerts += int(answer.get("alerts", 0))
    log.info("simulated %d predictions (%d labels) for %s v%d", result.sent, result.labels_sent, name,
             version.number)
    return result


def flask_sender(app, token: str) -> Sender:
    """Return a sender that posts through the app's own API in process (the same route, auth and checks)."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def send(path: str, body: dict) -> tuple[int, dict]:
        response = client.post(path, json=body, headers=headers)
        answer = response.get_json(silent=True) or {}
        if "Retry-After" in response.headers:
            answer["retry_after"] = response.headers["Retry-After"]
        return response.status_code, answer

    return send


def http_sender(base_url: str, token: str, *, timeout: float = 60.0) -> Sender:
    """Return a sender that posts to a running Glassbox over HTTP(S)."""
    import json
    import urllib.error
    import urllib.request

    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError("the URL must start with http:// or https://")

    def send(path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read() or b"{}")
            except ValueError:
                answer = {}
            if exc.headers.get("Retry-After"):
                answer["retry_after"] = exc.headers["Retry-After"]
            return exc.code, answer

    return send
