"""The monitoring store: bins at ingestion, roll-ups, SQL buckets, drift statistics against scipy, segments."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from app.ml import drift
from app.ml.timeseries import bucket_performance
from data import monitoring as M
from tests.api.helpers import binary_record, register_binary

DAY = dt.datetime(2026, 11, 2)  # a Monday


@pytest.fixture
def world(store):
    """A registered binary model and its monitoring reference."""
    db, artifacts = store
    version = register_binary(db, artifacts)
    ref = M.load_reference(db, version.id)
    return db, ref


def _records(n, *, start=DAY, seed=0, age_shift=0.0, plan_p=(0.5, 0.3, 0.2), hours=24):
    rng = np.random.default_rng(seed)
    ages = np.round(rng.integers(18, 80, n) + age_shift, 1)
    incomes = rng.gamma(3.0, 20.0, n)
    plans = rng.choice(["basic", "plus", "pro"], n, p=list(plan_p))
    scores = rng.random(n)
    out = []
    for i in range(n):
        when = start + dt.timedelta(minutes=int(i * hours * 60 / n))
        out.append(binary_record(i, when, age=float(ages[i]), income=float(incomes[i]), plan=str(plans[i]),
                                 label="yes" if scores[i] >= 0.5 else "no", score=float(scores[i])))
    return out


def _ingest(db, records):
    result = M.ingest_predictions(db, "churn", records, max_records=10_000, now=DAY + dt.timedelta(days=40))
    assert result.ok, result.errors[:3]
    return result


def test_sql_bin_counts_equal_drift_bin_counts(world):
    db, ref = world
    records = _records(300, age_shift=12.0)
    _ingest(db, records)
    window = M.Window(ref.id, M.hour_of(DAY), M.hour_of(DAY) + 24, "day")
    with db.session() as s:
        totals = M.bin_totals(s, window, range(len(ref.features)))
    for i, name in enumerate(ref.features):
        bins = ref.bins[name]
        expected = drift.bin_counts([r["features"][name] for r in records], bins)
        assert M.counts_list(totals[i], len(bins["counts"])) == expected, name


def test_drift_statistics_match_scipy(world):
    db, ref = world
    records = _records(400, age_shift=15.0, plan_p=(0.2, 0.3, 0.5))
    _ingest(db, records)
    window = M.Window(ref.id, M.hour_of(DAY), M.hour_of(DAY) + 24, "day")
    with db.session() as s:
        totals = M.bin_totals(s, window, range(len(ref.features)))
    counts = {name: M.counts_list(totals[i], len(ref.bins[name]["counts"])) for i, name in enumerate(ref.features)}
    table = {row["feature"]: row for row in drift.feature_drift_table(ref.bins, counts)}

    plan_ref, plan_cur = np.array(ref.bins["plan"]["counts"]), np.array(counts["plan"])
    keep = (plan_ref + plan_cur) > 0
    chi2 = stats.chi2_contingency(np.vstack([plan_ref[keep], plan_cur[keep]]))
    assert table["plan"]["test"] == "chi-square"
    assert table["plan"]["statistic"] == pytest.approx(chi2.statistic)
    assert table["plan"]["p_value"] == pytest.approx(chi2.pvalue)

    # KS on counts is the exact KS of the binned values: compare with scipy on bin indices.
    age_ref, age_cur = np.array(ref.bins["age"]["counts"]), np.array(counts["age"])
    ks = stats.ks_2samp(np.repeat(np.arange(age_ref.size), age_ref), np.repeat(np.arange(age_cur.size), age_cur))
    assert table["age"]["statistic"] == pytest.approx(ks.statistic)

    p, q = age_ref / age_ref.sum(), age_cur / age_cur.sum()
    p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    assert table["age"]["psi"] == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    # The shifted feature drifts more than the untouched one.
    assert table["age"]["psi"] > 0.25 > table["income"]["psi"]


def test_segment_over_every_bin_equals_the_rollups(world):
    db, ref = world
    records = _records(250, hours=72)
    _ingest(db, records)
    labels = [{"id": r["id"], "label": "yes" if i % 3 else "no"} for i, r in enumerate(records) if i % 2]
    assert M.ingest_labels(db, "churn", labels).ok
    plan = ref.features.index("plan")
    every_bin = tuple(range(len(ref.bins["plan"]["counts"])))
    start = M.hour_of(DAY)
    for bucket in ("hour", "day", "week"):
        rolled = M.Window(ref.id, start, start + 96, bucket)
        raw = M.Window(ref.id, start, start + 96, bucket, M.Segment("plan", plan, every_bin))
        with db.session() as s:
            assert M.bucket_stats(s, rolled) == M.bucket_stats(s, raw), bucket
            both = M.bucket_stats_and_scores(s, rolled)
            assert both == M.bucket_stats_and_scores(s, raw), bucket
            for view, wanted in M.STATS_FOR.items():
                if view == "anomalies" or view == "binary":
                    subset = M.bucket_stats(s, raw, columns=wanted)
                    keys = set(wanted) | ({"correct"} if view == "binary" else set())
                    assert [{k: r[k] for k in keys} for r in subset] == \
                        [{k: r[k] for k in keys} for r in M.bucket_stats(s, rolled)], (bucket, view)
            assert sum(sum(h.values()) for h in both[1].values()) + sum(sum(h.values()) for h in both[2].values()) \
                == len(labels)
            for var in (0, 1, 2, M.VAR_PREDICTION, M.VAR_SCORE):
                assert M.bin_counts_by_bucket(s, rolled, var) == M.bin_counts_by_bucket(s, raw, var), (bucket, var)


def test_segment_filters_records(world):
    db, ref = world
    records = _records(200)
    _ingest(db, records)
    plan = ref.features.index("plan")
    basic = ref.bins["plan"]["levels"].index("basic")
    window = M.Window(ref.id, M.hour_of(DAY), M.hour_of(DAY) + 24, "day", M.Segment("plan", plan, (basic,)))
    with db.session() as s:
        stats_ = M.bucket_stats(s, window)
        assert sum(b["n"] for b in stats_) == sum(r["features"]["plan"] == "basic" for r in records)
        assert M.count_records(s, window) == stats_[0]["n"]
        page = M.records_page(s, window, offset=0, limit=500)
        assert {r["features"]["plan"] for r in page} == {"basic"}


@pytest.mark.parametrize("bucket, times, starts", [
    ("day", ["2026-11-22T23:59:00Z", "2026-11-23T00:00:00Z"], ["2026-11-22T00:00:00", "2026-11-23T00:00:00"]),
    ("week", ["2026-11-22T23:59:00Z", "2026-11-23T00:00:00Z"], ["2026-11-16T00:00:00", "2026-11-23T00:00:00"]),
    ("week", ["2026-11-23T00:00:00Z", "2026-11-29T23:59:00+00:00"], ["2026-11-23T00:00:00"]),
    ("hour", ["2026-11-23T10:59:59Z", "2026-11-23T13:00:00+02:00"], ["2026-11-23T10:00:00", "2026-11-23T11:00:00"]),
])
def test_sql_buckets_start_at_utc_midnight_and_monday(world, bucket, times, starts):
    db, ref = world
    records = [binary_record(i, DAY) for i in range(len(times))]
    for rec, when in zip(records, times):
        rec["timestamp"] = when
    _ingest(db, records)
    window = M.Window(ref.id, M.hour_of(dt.datetime(2026, 11, 1)), M.hour_of(dt.datetime(2026, 12, 1)), bucket)
    with db.session() as s:
        got = [M.hour_start(b["bucket"]).isoformat() for b in M.bucket_stats(s, window)]
    assert got == starts
    for b, start in zip(got, starts):
        assert M.hour_start(M.bucket_floor(M.hour_of(dt.datetime.fromisoformat(b)), bucket)).isoformat() == start


def test_performance_from_rollups_matches_sklearn(world):
    db, ref = world
    rng = np.random.default_rng(3)
    records = _records(300)
    truth = []
    for rec in records:
        score = rec["prediction"]["score"]
        truth.append("yes" if rng.random() < 0.25 + 0.5 * score else "no")
    _ingest(db, records)
    labelled = list(range(0, 300, 3)) + list(range(1, 300, 3))  # two thirds get labels
    result = M.ingest_labels(db, "churn", [{"id": records[i]["id"], "label": truth[i]} for i in labelled])
    assert result.ok and len(result.accepted) == len(labelled)
    window = M.Window(ref.id, M.hour_of(DAY), M.hour_of(DAY) + 24, "day")
    with db.session() as s:
        row = dict(M.bucket_stats(s, window)[0])
        pos = M.bin_counts_by_bucket(s, window, M.VAR_SCORE_POS)[row["bucket"]]
        neg = M.bin_counts_by_bucket(s, window, M.VAR_SCORE_NEG)[row["bucket"]]
    row.update(time="d", pos_hist=M.counts_list(pos, M.SCORE_BINS), neg_hist=M.counts_list(neg, M.SCORE_BINS))
    perf = bucket_performance([row], task="binary")
    y = [truth[i] for i in labelled]
    pred = [records[i]["prediction"]["label"] for i in labelled]
    assert perf["n"] == [300] and perf["n_labelled"] == [len(labelled)]
    assert perf["accuracy"][0] == pytest.approx(accuracy_score(y, pred))
    assert perf["precision"][0] == pytest.approx(precision_score(y, pred, pos_label="yes"))
    assert perf["recall"][0] == pytest.approx(recall_score(y, pred, pos_label="yes"))
    assert perf["f1"][0] == pytest.approx(f1_score(y, pred, pos_label="yes"))
    binned = np.minimum(np.floor(np.array([records[i]["prediction"]["score"] for i in labelled]) * M.SCORE_BINS),
                        M.SCORE_BINS - 1)
    assert perf["roc_auc"][0] == pytest.approx(roc_auc_score(np.array(y) == "yes", binned))


def test_anomalies_are_flagged_and_rolled_up(world):
    db, ref = world
    age_max = next(m["max"] for m in ref.feature_meta if m["name"] == "age")
    records = [binary_record(0, DAY, age=age_max + 50), binary_record(1, DAY, plan="platinum"),
               binary_record(2, DAY, income=None), binary_record(3, DAY)]
    _ingest(db, records)
    window = M.Window(ref.id, M.hour_of(DAY), M.hour_of(DAY) + 24, "day")
    with db.session() as s:
        row = M.bucket_stats(s, window)[0]
        flags = {r["id"]: r["anomalies"] for r in M.records_page(s, window, offset=0, limit=10)}
        worst = M.worst_records(s, window)
    assert (row["n_above_max"], row["n_unseen"], row["n_missing"]) == (1, 1, 1)
    assert row["n_anomalous"] >= 3
    assert "above_max" in flags["r0"] and "unseen" in flags["r1"] and "missing" in flags["r2"]
    assert flags["r3"] == []
    assert worst and worst[0]["id"] in {"r0", "r1", "r2"}
    assert all(w["outlier"] > 1 for w in worst)


def test_records_page_pages_in_time_order(world):
    db, ref = world
    _ingest(db, _records(30))
    window = M.Window(ref.id, M.hour_of(DAY), M.hour_of(DAY) + 24, "day")
    with db.session() as s:
        first = M.records_page(s, window, offset=0, limit=10)
        second = M.records_page(s, window, offset=10, limit=10)
        assert [r["id"] for r in first] == [f"r{i}" for i in range(10)]
        assert [r["id"] for r in second] == [f"r{i}" for i in range(10, 20)]
        assert M.count_records(s, window) == 30
        with pytest.raises(ValueError):
            M.records_page(s, window, offset=0, limit=10, sort="features; drop table")


def test_state_revision_moves_with_every_write(world):
    db, ref = world
    with db.session() as s:
        assert M.state_of(s, ref.id)["revision"] == 0
    _ingest(db, _records(5))
    M.ingest_labels(db, "churn", [{"id": "r0", "label": "yes"}])
    with db.session() as s:
        state = M.state_of(s, ref.id)
    assert state["revision"] == 2 and state["n_logged"] == 5 and state["n_labelled"] == 1
    assert state["first_hour"] == M.hour_of(DAY)


def test_comments_can_be_changed_by_their_author_only(world):
    db, ref = world
    with db.session() as s:
        c = M.add_comment(s, model_id=ref.model_id, version_id=ref.id, author="ann", text=" Campaign started ",
                          start=DAY, end=DAY + dt.timedelta(days=2), chart="timeline")
        cid = c.id
    with db.session() as s:
        with pytest.raises(PermissionError):
            M.edit_comment(s, cid, author="bob", text="mine now")
        with pytest.raises(PermissionError):
            M.delete_comment(s, cid, author="bob")
        M.edit_comment(s, cid, author="ann", text="Campaign started on Monday")
    with db.session() as s:
        rows = M.list_comments(s, ref.model_id, version_id=ref.id, start=DAY, end=DAY + dt.timedelta(days=1))
        assert [r["text"] for r in rows] == ["Campaign started on Monday"] and rows[0]["edited_at"] is not None
        assert M.list_comments(s, ref.model_id, start=DAY + dt.timedelta(days=5)) == []
        with pytest.raises(ValueError):
            M.add_comment(s, model_id=ref.model_id, version_id=None, author="ann", text="   ")
        M.delete_comment(s, cid, author="ann")
    with db.session() as s:
        assert M.list_comments(s, ref.model_id) == []


def test_tokens_authenticate_until_revoked(world):
    db, ref = world
    with db.session() as s:
        row, token = M.create_token(s, "churn", name="scoring service", created_by="admin")
        tid = row.id
    with db.session() as s:
        found = M.authenticate_token(s, token)
        assert found is not None and found[1] == "churn"
        assert M.authenticate_token(s, token + "x") is None
        M.revoke_token(s, tid, revoked_by="admin")
    with db.session() as s:
        assert M.authenticate_token(s, token) is None
        with pytest.raises(ValueError):
            M.revoke_token(s, tid, revoked_by="admin")
        assert M.list_tokens(s)[0]["active"] is False
