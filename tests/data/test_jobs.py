"""The per-process analysis runner: off by setting, started by the first request, woken by registrations."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from app import jobs
from data.analysis_cache import status_for
from data.registry import register_model
from tests.conftest import build_test_app


def _register(app, name="tiny"):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=160), "b": rng.normal(size=160)})
    frame["y"] = (frame["a"] > 0).astype(int)
    train, test = frame.iloc[:120], frame.iloc[120:].reset_index(drop=True)
    model = LogisticRegression().fit(train[["a", "b"]], train["y"])
    return register_model(model, train, test, name=name, target="y", created_by="t",
                          db=app.extensions["glassbox.db"], artifact_dir=app.config["GLASSBOX_ARTIFACT_DIR"])


def _state(app, version_id):
    with app.extensions["glassbox.db"].session() as s:
        return status_for(s, version_id)["state"]


def test_no_runner_when_jobs_are_off(tmp_path):
    app = build_test_app(tmp_path)
    assert jobs.EXTENSION not in app.extensions
    jobs.wake(app)  # a no-op, not an error
    app.extensions["glassbox.db"].dispose()


def test_run_now_computes_the_queue(tmp_path):
    app = build_test_app(tmp_path)
    version = _register(app)
    assert _state(app, version.id) == "computing"
    assert jobs.run_now(app, limit=2) == 2
    assert jobs.run_now(app) > 0
    assert _state(app, version.id) == "ready"
    app.extensions["glassbox.db"].dispose()


def test_the_first_request_starts_the_runner_which_computes_new_registrations(tmp_path):
    app = build_test_app(tmp_path, GLASSBOX_RUN_JOBS=True)
    runner = app.extensions[jobs.EXTENSION]
    assert not runner.running
    try:
        app.test_client().get("/healthz")
        assert runner.running
        version = _register(app)
        jobs.wake(app)
        deadline = time.monotonic() + 90
        while _state(app, version.id) != "ready" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _state(app, version.id) == "ready"
    finally:
        runner.stop()
        app.extensions["glassbox.db"].dispose()
    assert not runner.running


def test_a_forked_process_starts_its_own_thread(tmp_path):
    app = build_test_app(tmp_path, GLASSBOX_RUN_JOBS=True)
    runner = app.extensions[jobs.EXTENSION]
    try:
        runner.ensure_started()
        first = runner._thread
        # After a fork the recorded pid is the parent's: the child must not trust the parent's thread.
        runner._pid = os.getpid() + 1
        assert not runner.running
        runner._stop.set()
        first.join(5)
        runner.ensure_started()
        assert runner.running and runner._thread is not first
    finally:
        runner.stop()
        app.extensions["glassbox.db"].dispose()
