"""Monitoring: ingestion throughput on SQLite, and monitoring callbacks at 100k and 1M logged predictions.

Run with ``python -m benchmarks.bench_monitoring`` (``--quick``: 20k and 100k rows, fewer repeats;
``--sizes 100000 1000000`` to choose). A binary model with 20 numeric features and one categorical
feature is registered in a fresh SQLite database (WAL) under a temporary folder.

* Ingestion: records per second through the HTTP API (Flask test client, bearer token, batches of 500,
  one alert rule evaluated after every batch), through :func:`data.monitoring.ingest_predictions`
  directly (batches of 500 and 5,000), and labels through :func:`data.monitoring.ingest_labels`.
* Load: the 100k / 1M rows are generated in bulk (vectorised binning and roll-ups, ``executemany``
  inserts of 20,000 rows; no HTTP), spread over 90 days with one feature drifting in the last 30; 60 % of
  them get a label through ``ingest_labels`` in batches of 10,000.
* Callbacks: the page's module-level callback functions (validation, SQL, figures) timed over repeated
  calls after a warm-up, plus the JSON encoding Dash does before answering; p50 and p95 in ms. The
  "SQL only" rows time the aggregate queries behind the figures, without building figures.

The Markdown tables go to stdout and to ``benchmarks/out/monitoring.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from plotly.io.json import to_json_plotly
from sqlalchemy import func, select

OUT = Path(__file__).parent / "out" / "monitoring.md"
N_FEATURES = 20
SPAN_DAYS = 90
CHUNK = 20_000
LABEL_SHARE = 0.6


# -- set-up ---------------------------------------------------------------------------------

def _model_frames(seed: int = 0):
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = make_classification(n_samples=6000, n_features=N_FEATURES, n_informative=8, weights=[0.85, 0.15],
                               random_state=seed)
    features = [f"f{i:02d}" for i in range(N_FEATURES)]
    frame = pd.DataFrame(X, columns=features)
    rng = np.random.default_rng(seed)
    frame["channel"] = rng.choice(["web", "app", "branch", "partner"], len(frame), p=[0.5, 0.3, 0.15, 0.05])
    frame["target"] = y
    pre = ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ["channel"]),
                             ("n", StandardScaler(), features)])
    model = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(frame[features + ["channel"]], frame["target"])
    return model, frame.iloc[:4500].reset_index(drop=True), frame.iloc[4500:].reset_index(drop=True)


def build_world(folder: Path):
    """Return (app, db, version ref) with the model registered and its monitoring reference computed."""
    from app import create_app
    from data import monitoring as M
    from data.alerts import create_rule
    from data.db import Base
    from data.registry import register_model
    from data.tables import import_all_tables

    app = create_app({"GLASSBOX_INSTANCE_PATH": str(folder / "instance"), "GLASSBOX_RUN_JOBS": False,
                      "GLASSBOX_DATABASE_URL": f"sqlite:///{folder / 'bench.db'}", "TESTING": True,
                      "GLASSBOX_ARTIFACT_DIR": str(folder / "artifacts"), "GLASSBOX_API_RATE_PER_MINUTE": 10**6})
    import_all_tables()
    db = app.extensions["glassbox.db"]
    Base.metadata.create_all(db.engine)
    model, train, test = _model_frames()
    version = register_model(model, train, test, name="bench", target="target", positive_class=1,
                             created_by="bench", db=db, artifact_dir=folder / "artifacts")
    ref = M.load_reference(db, version.id)
    with app.app_context():
        with db.session() as s:
            create_rule(s, model_name="bench", name="Drift f03", metric="psi:f03", comparison=">", threshold=0.25,
                        bucket="day", min_samples=100, created_by="bench")
    return app, db, ref, model


def traffic(n: int, *, model, start: dt.datetime, days: int, seed: int, drift_from: dt.datetime | None,
            id_prefix: str) -> list[dict]:
    """Return n clean records (the shape validate_records returns) spread over ``days`` from ``start``."""
    rng = np.random.default_rng(seed)
    features = [f"f{i:02d}" for i in range(N_FEATURES)]
    X = np.round(rng.normal(0, 1.6, size=(n, N_FEATURES)), 4)
    seconds = np.sort(rng.integers(0, days * 86400, size=n))
    stamps = [start + dt.timedelta(seconds=int(s)) for s in seconds]
    if drift_from is not None:
        drifted = np.array([t >= drift_from for t in stamps])
        X[drifted, 3] += 2.0
    channel = rng.choice(["web", "app", "branch", "partner", "kiosk"], n, p=[0.48, 0.3, 0.14, 0.05, 0.03])
    frame = pd.DataFrame(X, columns=features)
    frame["channel"] = channel
    score = model.predict_proba(frame[features + ["channel"]])[:, 1]
    records = []
    for i in range(n):
        feats = dict(zip(features, X[i].tolist()))
        feats["channel"] = str(channel[i])
        records.append({"id": f"{id_prefix}{i}", "ts": stamps[i], "version": 1, "features": feats,
                        "prediction": {"label": str(int(score[i] >= 0.5)), "score": round(float(score[i]), 5)}})
    return records


def api_payload(records: list[dict]) -> list[dict]:
    """Return records as an API client sends them."""
    return [{"id": r["id"], "timestamp": r["ts"].isoformat(timespec="seconds") + "Z", "version": 1,
             "features": r["features"], "prediction": {"label": int(r["prediction"]["label"]),
                                                       "score": r["prediction"]["score"]}} for r in records]


# -- measurement helpers ----------------------------------------------------------------------

def _pct(samples: list[float]) -> tuple[float, float]:
    arr = np.asarray(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def _timed(fn: Callable[[], object], repeats: int, *, encode: bool) -> tuple[list[float], list[float]]:
    fn()
    plain, encoded = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        t1 = time.perf_counter()
        if encode:
            to_json_plotly(out)
        t2 = time.perf_counter()
        plain.append(t1 - t0)
        encoded.append(t2 - t0)
    return plain, encoded


def ingestion(app, db, ref, model, *, n_api: int, n_direct: int) -> list[tuple[str, int, float]]:
    """Return (path, records, records per second) rows."""
    from data import monitoring as M

    now = M.utcnow()
    rows = []
    with app.app_context():
        with db.session() as s:
            _, token = M.create_token(s, "bench", name="bench", created_by="bench")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    recs = api_payload(traffic(n_api, model=model, start=now - dt.timedelta(days=2), days=2, seed=91, drift_from=None,
                               id_prefix="api-"))
    t0 = time.perf_counter()
    for i in range(0, len(recs), 500):
        response = client.post("/api/v1/models/bench/predictions", json={"records": recs[i:i + 500]}, headers=headers)
        assert response.status_code == 200, response.get_json()
    rows.append(("HTTP API, batches of 500 (validation, auth, rate limit, alert evaluation)", len(recs),
                 len(recs) / (time.perf_counter() - t0)))
    for batch in (500, 5000):
        recs = api_payload(traffic(n_direct, model=model, start=now - dt.timedelta(days=2), days=2, seed=batch,
                                   drift_from=None, id_prefix=f"direct{batch}-"))
        t0 = time.perf_counter()
        for i in range(0, len(recs), batch):
            assert M.ingest_predictions(db, "bench", recs[i:i + batch], max_records=batch).ok
        rows.append((f"ingest_predictions(), batches of {batch:,}", len(recs), len(recs) / (time.perf_counter() - t0)))
    labels = [{"id": f"direct5000-{i}", "label": int(i % 7 == 0)} for i in range(n_direct)]
    t0 = time.perf_counter()
    for i in range(0, len(labels), 5000):
        assert M.ingest_labels(db, "bench", labels[i:i + 5000], max_records=5000).ok
    rows.append(("ingest_labels(), batches of 5,000", len(labels), len(labels) / (time.perf_counter() - t0)))
    return rows


def bulk_load(db, ref, model, n: int) -> tuple[float, float]:
    """Insert n rows over SPAN_DAYS in bulk (prepared, executemany), then label 60 %; return (load s, label s)."""
    from data import monitoring as M

    now = M.utcnow()
    start = now - dt.timedelta(days=SPAN_DAYS)
    drift_from = now - dt.timedelta(days=30)
    t0 = time.perf_counter()
    per_chunk_days = SPAN_DAYS * CHUNK / n
    done = 0
    while done < n:
        k = min(CHUNK, n - done)
        chunk_start = start + dt.timedelta(days=SPAN_DAYS * done / n)
        recs = traffic(k, model=model, start=chunk_start, days=max(1, int(np.ceil(per_chunk_days))), seed=done,
                       drift_from=drift_from, id_prefix=f"bulk-{done}-")
        recs = [r for r in recs if r["ts"] <= now]
        prepared = M.prepare_predictions(ref, recs, received_at=now)
        with db.session() as s:
            M.write_prepared(s, ref.id, prepared)
        done += k
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(5)
    t0 = time.perf_counter()
    with db.session() as s:
        ids = [r for (r,) in s.execute(select(M.PredictionLog.record_id).where(M.PredictionLog.record_id
                                                                             .like("bulk-%")))]
    chosen = [ids[i] for i in np.flatnonzero(rng.random(len(ids)) < LABEL_SHARE)]
    for i in range(0, len(chosen), 10_000):
        labels = [{"id": rid, "label": int(rng.random() < 0.2)} for rid in chosen[i:i + 10_000]]
        assert M.ingest_labels(db, "bench", labels, max_records=10_000).ok
    return load_s, time.perf_counter() - t0


def callbacks(app, db, repeats: int) -> list[tuple[str, float, float, float, float]]:
    """Return (case, p50, p95, p50 with JSON, p95 with JSON) for the page's callbacks."""
    from app.monitoring import views as V
    from app.security.permissions import ROLES
    from app.security.users import CurrentUser
    from callbacks import monitoring as C
    from data import monitoring as M
    from layouts import monitoring as L

    user = CurrentUser(id=1, username="bench", session_version=1, active=True,
                       global_permissions=frozenset(ROLES["admin"]), roles=("admin",))
    out = []
    with app.test_request_context():
        stamp, _ = C.check_stamp(0, "bench", None, None, user=user)
        day = (M.utcnow() - dt.timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
        selected = {"start": day.isoformat(), "bucket": "day"}
        ref = C._ref("bench", None, user)
        seg_bins = [0, 1]
        cases = [
            ("refresh check (stamp)", lambda: C.check_stamp(1, "bench", None, stamp, user=user, trigger=L.INTERVAL),
             True),
            ("timeline + numbers, 30 days by day", lambda: C.update_timeline(stamp, "30d", "day", None, None,
                                                                             "roc_auc", 0, "bench", None, user=user),
             True),
            ("timeline + numbers, 90 days by day", lambda: C.update_timeline(stamp, "90d", "day", None, None,
                                                                             "roc_auc", 0, "bench", None, user=user),
             True),
            ("timeline + numbers, 7 days by hour", lambda: C.update_timeline(stamp, "7d", "hour", None, None,
                                                                             "roc_auc", 0, "bench", None, user=user),
             True),
            ("timeline, refresh as Patch, 30 days", lambda: C.update_timeline(
                stamp, "30d", "day", None, None, "roc_auc", 0, "bench", None, user=user, refresh=True), True),
            ("score + anomaly timelines, 30 days by day", lambda: C.update_distributions(
                stamp, "30d", "day", None, None, "bench", None, user=user), True),
            ("drift bars + table, 30 days", lambda: C.update_drift(stamp, "30d", "day", None, None, "bench", None,
                                                                  user=user), True),
            ("drift bars + table, 90 days", lambda: C.update_drift(stamp, "90d", "day", None, None, "bench", None,
                                                                  user=user), True),
            ("histogram of the top feature, 30 days", lambda: C.update_histogram(
                None, None, None, stamp, "30d", "day", None, None, "bench", None, None, user=user), True),
            ("records of one day, first page", lambda: C.page_records(selected, None, None, False, None, None, 0,
                                                                      "bench", None, user=user), True),
            ("records of one day, page 20", lambda: C.page_records(selected, None, 1, False, None, None, 19, "bench",
                                                                   None, user=user, trigger=L.RECORDS_NEXT), True),
            ("most unusual records, 30 days", lambda: C.worst_records(stamp, "30d", "day", None, None, "bench", None,
                                                                      user=user), True),
            ("alerts list, 30 days", lambda: C.alerts_list(stamp, "30d", "day", 0, "bench", None, user=user), True),
            ("segment (channel in 2 values): timeline, 30 days", lambda: C.update_timeline(
                stamp, "30d", "day", "channel", seg_bins, "roc_auc", 0, "bench", None, user=user), True),
            ("segment (channel in 2 values): drift, 30 days", lambda: C.update_drift(
                stamp, "30d", "day", "channel", seg_bins, "bench", None, user=user), True),
        ]
        for name, fn, encode in cases:
            plain, encoded = _timed(fn, repeats, encode=encode)
            out.append((name, *_pct(plain), *_pct(encoded)))
        with db.session() as s:
            window = V.make_window(ref, s, range_key="30d", bucket="day")
            sql_cases = [
                ("SQL only: bucket sums, 30 days by day", lambda: M.bucket_stats(s, window)),
                ("SQL only: drift counts, 30 days", lambda: V.drift_counts(s, ref, window)),
                ("SQL only: score histogram per day, 30 days", lambda: M.bin_counts_by_bucket(s, window, M.VAR_SCORE)),
            ]
            for name, fn in sql_cases:
                plain, _ = _timed(fn, repeats, encode=False)
                out.append((name, *_pct(plain), float("nan"), float("nan")))
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k and 100k rows, fewer repeats")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    sizes = args.sizes or ([20_000, 100_000] if args.quick else [100_000, 1_000_000])
    repeats = args.repeats or (5 if args.quick else 15)
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    sections = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                f"load average {os.getloadavg()[0]:.1f} at start; Python {platform.python_version()}, "
                f"SQLite {__import__('sqlite3').sqlite_version}. Times in milliseconds.\n"]
    root = Path(tempfile.mkdtemp(prefix="glassbox-bench-mon-"))
    try:
        app, db, ref, model = build_world(root / "ingest")
        rows = ingestion(app, db, ref, model, n_api=5000, n_direct=20_000 if not args.quick else 5000)
        sections.append("### Ingestion on SQLite\n\n" + _table(
            ["Path", "Records", "Records / s"], [[p, f"{n:,}", f"{r:,.0f}"] for p, n, r in rows]))
        db.dispose()
        for n in sizes:
            app, db, ref, model = build_world(root / f"n{n}")
            load_s, label_s = bulk_load(db, ref, model, n)
            size_mb = (root / f"n{n}" / "bench.db").stat().st_size / 1e6
            with db.session() as s:
                from data import monitoring as M

                counts = {t.__tablename__: s.scalar(select(func.count()).select_from(t))
                          for t in (M.PredictionLog, M.MonitoringHour, M.MonitoringBin, M.MonitoringBinDay)}
            results = callbacks(app, db, repeats)
            sections.append(
                f"### {n:,} logged predictions over {SPAN_DAYS} days\n\n"
                f"Bulk load {load_s:.0f} s ({n / load_s:,.0f} rows/s, prepared + executemany), labels for 60 % in "
                f"{label_s:.0f} s ({LABEL_SHARE * n / label_s:,.0f} labels/s); database {size_mb:,.0f} MB; roll-up "
                f"rows: {counts['monitoring_hours']:,} hourly sums, {counts['monitoring_bins']:,} hourly bins, "
                f"{counts['monitoring_bin_days']:,} daily bins.\n\n"
                + _table(["Callback", "p50", "p95", "p50 + JSON", "p95 + JSON"],
                         [[name, f"{a:.1f}", f"{b:.1f}", "" if np.isnan(c) else f"{c:.1f}",
                           "" if np.isnan(d) else f"{d:.1f}"] for name, a, b, c, d in results]))
            print(sections[-1], flush=True)
            db.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = "\n\n".join(sections) + "\n"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
