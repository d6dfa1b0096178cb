"""The analysis runner: one daemon thread per process that computes queued analyses.

With ``GLASSBOX_RUN_JOBS`` on, every process (each gunicorn worker) starts
its runner lazily on its first request, so the thread is born after
gunicorn's fork. Runners share nothing but the database: claims there are
atomic, so any number of workers and hosts can run the queue together.
"""

from __future__ import annotations

import logging
import os
import threading

from flask import Flask

from data.analysis_cache import claim_next, run_claim, run_pending

log = logging.getLogger(__name__)

#: Seconds to sleep when the queue is empty (a registration in this process wakes the runner at once).
IDLE_SECONDS = 2.0
#: Seconds to wait after an unexpected error (database unreachable, ...) before trying again.
ERROR_SECONDS = 10.0
EXTENSION = "glassbox.jobs"


class JobRunner:
    """Runs queued analyses on a daemon thread of the current process."""

    def __init__(self, app: Flask, *, idle_seconds: float = IDLE_SECONDS):
        self.app = app
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    @property
    def running(self) -> bool:
        """Return True when this process's thread is alive."""
        return self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()

    def ensure_started(self) -> None:
        """Start the thread in this process unless it runs already (cheap; called on every request)."""
        if self.running:
            return
        with self._lock:
            if self.running:
                return
            # After a fork the parent's thread does not exist here: start a fresh one.
            self._stop.clear()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name=f"glassbox-jobs-{self._pid}", daemon=True)
            self._thread.start()
            log.info("analysis runner started in process %s", self._pid)

    def wake(self) -> None:
        """Make the thread look at the queue now instead of after its idle sleep."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop after its current analysis and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout)

    def _loop(self) -> None:
        from data.analyses import release_contexts

        while not self._stop.is_set():
            try:
                with self.app.app_context():
                    db = self.app.extensions["glassbox.db"]
                    claim = claim_next(db)
                    if claim is not None:
                        run_claim(db, claim)
                        continue
                # Nothing queued: let go of estimators, frames and predictions held for the analyses.
                release_contexts()
                self._wake.wait(self.idle_seconds)
                self._wake.clear()
            except Exception:
                log.exception("analysis runner error; retrying in %.0f s", ERROR_SECONDS)
                self._stop.wait(ERROR_SECONDS)


def init_app(app: Flask) -> None:
    """Install the runner when ``GLASSBOX_RUN_JOBS`` is true; it starts on the first request of each process."""
    if not app.config.get("GLASSBOX_RUN_JOBS"):
        return
    runner = JobRunner(app)
    app.extensions[EXTENSION] = runner
    app.before_request(runner.ensure_started)


def wake(app: Flask) -> None:
    """Wake this process's runner (after queueing analyses); a no-op when jobs are off."""
    runner = app.extensions.get(EXTENSION)
    if runner is not None:
        runner.ensure_started()
        runner.wake()


def run_now(app: Flask, *, limit: int | None = None) -> int:
    """Run queued analyses in the calling thread until none is left (the CLI); return how many ran."""
    with app.app_context():
        return run_pending(app.extensions["glassbox.db"], limit=limit)
