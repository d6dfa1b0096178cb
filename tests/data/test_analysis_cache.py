"""The analysis cache: queueing, atomic claims across processes, stale reclaim, results, retry."""

from __future__ import annotations

import datetime as dt
import multiprocessing

import numpy as np
import pytest
from sqlalchemy import func, select, update

from data import analyses, analysis_cache
from data.analyses import analyses_for
from data.analysis_cache import (AnalysisResult, claim_next, decode_payload, encode_payload, enqueue, enqueue_all,
                                 finish, get_result, params_hash, retry, run_pending, status_for)
from data.db import Database, utcnow
from data.registry import get_version, register_model


@pytest.fixture
def registered(store, binary_case):
    db, artifact_dir = store
    model, train, test = binary_case
    version = register_model(model, train, test, name="churn", target="label", created_by="a",
                             group_columns=["region"], db=db, artifact_dir=artifact_dir)
    return db, version


def test_payload_round_trip_keeps_numpy_values_and_infinities():
    payload = {"a": np.float32(0.5), "b": np.arange(3), "edges": [-np.inf, 0.0, np.inf], "n": np.int64(7),
               "nan": float("nan")}
    back = decode_payload(encode_payload(payload))
    assert back["a"] == 0.5 and back["b"] == [0, 1, 2] and back["n"] == 7
    assert back["edges"] == [-np.inf, 0.0, np.inf] and np.isnan(back["nan"])


def test_params_hash_is_canonical():
    assert params_hash({"a": 1, "b": [1, 2]}) == params_hash({"b": [1, 2], "a": 1})
    assert params_hash(None) == params_hash({})
    assert params_hash({"a": 1}) != params_hash({"a": 2})


def test_enqueue_all_is_idempotent_and_per_task(registered):
    db, version = registered
    with db.session() as s:
        again = enqueue_all(s, version)
        assert len(again) == len(analyses_for("binary"))
        count = s.scalar(select(func.count()).select_from(AnalysisResult))
    assert count == len(analyses_for("binary"))
    assert {k.name for k in analyses_for("regression")}.isdisjoint({"sweep_test", "curves_test", "calibration"})
    with db.session() as s, pytest.raises(ValueError, match="unknown analysis kind 'nope'"):
        enqueue(s, version.id, "nope")


def test_claims_are_exclusive_and_in_order(registered):
    db, version = registered
    first, second = claim_next(db), claim_next(db)
    assert first.id < second.id and first.kind == "metrics_test"
    with db.session() as s:
        rows = {r.id: r for r in s.scalars(select(AnalysisResult))}
    assert rows[first.id].status == "running" and rows[first.id].claim_token == first.token
    assert rows[first.id].attempts == 1


def _claim_all(url: str, queue) -> None:
    db = Database(url)
    ids = []
    while (claim := claim_next(db)) is not None:
        ids.append(claim.id)
        finish(db, claim, payload={"ok": True}, duration_s=0.0)
    db.dispose()
    queue.put(ids)


def test_claims_across_processes_never_overlap(registered):
    db, version = registered
    # Plenty of rows for four processes to fight over.
    with db.session() as s:
        for i in range(60):
            enqueue(s, version.id, "metrics_test", {"n": i})
    total = len(analyses_for("binary")) + 60
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_claim_all, args=(db.url, queue)) for _ in range(4)]
    for w in workers:
        w.start()
    claimed = [queue.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    everything = [i for ids in claimed for i in ids]
    assert len(everything) == total
    assert len(set(everything)) == total
    with db.session() as s:
        assert set(s.scalars(select(AnalysisResult.status))) == {"ready"}


def test_a_stale_running_row_is_reclaimed_and_the_old_worker_loses(registered):
    db, version = registered
    old = claim_next(db)
    with db.session() as s:
        s.execute(update(AnalysisResult).where(AnalysisResult.id == old.id)
                  .values(started_at=utcnow() - dt.timedelta(minutes=11)))
    new = claim_next(db)
    assert new.id == old.id and new.token != old.token
    assert finish(db, old, payload={"late": True}) is False
    assert finish(db, new, payload={"fresh": True}) is True
    with db.session() as s:
        assert get_result(s, version.id, old.kind) == {"fresh": True}


def test_a_recent_running_row_is_not_reclaimed(registered):
    db, version = registered
    first = claim_next(db)
    assert claim_next(db).id != first.id


def test_a_row_abandoned_too_often_fails(registered):
    db, version = registered
    claim = claim_next(db)
    with db.session() as s:
        s.execute(update(AnalysisResult).where(AnalysisResult.id == claim.id)
                  .values(started_at=utcnow() - dt.timedelta(hours=1), attempts=analysis_cache.MAX_ATTEMPTS))
    assert claim_next(db).id != claim.id
    with db.session() as s:
        row = s.get(AnalysisResult, claim.id)
        assert row.status == "failed" and "abandoned" in row.error


def test_run_pending_computes_everything_and_status_reports_it(registered):
    db, version = registered
    with db.session() as s:
        before = status_for(s, version.id)
    assert before["state"] == "computing" and before["queued"] == before["total"] and before["progress"] == 0.0
    ran = run_pending(db)
    assert ran == len(analyses_for("binary"))
    with db.session() as s:
        after = status_for(s, version.id)
        metrics = get_result(s, version.id, "metrics_test")
        assert get_result(s, version.id, "metrics_test") is metrics  # decoded once per process
        assert get_result(s, version.id, "metrics_test", {"other": 1}) is None
        v = get_version(s, "churn")
    assert after["state"] == "ready", [i for i in after["items"] if i["status"] != "ready"]
    assert after["ready"] == after["total"] and after["progress"] == 1.0
    assert all(i["duration_s"] is not None for i in after["items"])
    assert metrics["n"] == 100
    # The headline test metrics are copied onto the version for the overview.
    assert v.metrics["accuracy"] == metrics["metrics"]["accuracy"] and v.metrics["n"] == 100


def test_a_failing_analysis_is_recorded_and_can_be_retried(registered, monkeypatch):
    db, version = registered
    real = analyses.run_analysis

    def sweep_fails(db_, version_id, kind, params):
        if kind == "sweep_test":
            raise RuntimeError("out of memory in the sweep")
        return real(db_, version_id, kind, params)

    monkeypatch.setattr(analyses, "run_analysis", sweep_fails)
    run_pending(db)
    with db.session() as s:
        st = status_for(s, version.id)
    failed = [i for i in st["items"] if i["status"] == "failed"]
    assert st["state"] == "failed" and [i["kind"] for i in failed] == ["sweep_test"]
    assert failed[0]["error"] == "RuntimeError: out of memory in the sweep"
    with db.session() as s:
        assert get_result(s, version.id, "sweep_test") is None
        assert retry(s, version.id, "sweep_test") == 1
        assert retry(s, version.id, "sweep_test") == 0
    monkeypatch.setattr(analyses, "run_analysis", real)
    assert run_pending(db) == 1
    with db.session() as s:
        assert status_for(s, version.id)["state"] == "ready"
        assert get_result(s, version.id, "sweep_test")["n"] == 100


def test_an_exception_in_an_analysis_is_stored_as_its_error(registered, monkeypatch):
    db, version = registered

    def explode(db_, version_id, kind, params):
        raise ValueError(f"cannot compute {kind}")

    monkeypatch.setattr("data.analyses.run_analysis", explode)
    claim = claim_next(db)
    assert analysis_cache.run_claim(db, claim) is False
    with db.session() as s:
        row = s.get(AnalysisResult, claim.id)
    assert row.status == "failed" and row.error == f"ValueError: cannot compute {claim.kind}"
    assert row.claim_token is None and row.duration_s is not None


def test_status_of_a_version_without_analyses(store):
    db, _ = store
    with db.session() as s:
        assert status_for(s, 12345)["state"] == "none"
