"""The analysis cache: expensive analyses computed once per model version, shared by every worker.

Each row is one analysis of one version with one set of parameters, moving
queued -> running -> ready | failed. Any process may run the queue:
:func:`claim_next` takes a row with a compare-and-set UPDATE, so two workers
(threads, gunicorn processes or hosts, on SQLite or PostgreSQL) never run the
same row. A "running" row whose worker died is taken again after
:data:`STALE_AFTER`. Payloads are JSON, zlib-compressed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint, and_, or_, select, update)
from sqlalchemy.orm import Mapped, Session, mapped_column

from data.db import Base, Database, utcnow

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "ready", "failed")
#: A running row older than this is assumed abandoned (its worker died) and is claimed again.
STALE_AFTER = dt.timedelta(minutes=10)
#: A row that failed this many claims in a row (crashes, kills) is marked failed instead of retried forever.
MAX_ATTEMPTS = 3


class AnalysisResult(Base):
    """One analysis of one model version with one set of parameters."""

    __tablename__ = "analysis_results"
    __table_args__ = (
        UniqueConstraint("version_id", "kind", "params_hash", name="uq_analysis_results_version_kind_params"),
        Index("ix_analysis_results_status", "status", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    params_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    params: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    payload_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Last on purpose: SQLite reads a row's columns in order, so every column above is read
    # without walking the overflow pages of a large payload.
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


@dataclass(frozen=True)
class Claim:
    """A row this worker owns until it finishes it."""

    id: int
    version_id: int
    kind: str
    params: dict
    token: str


# -- encoding ------------------------------------------------------------------

def params_hash(params: dict | None) -> str:
    """Return the key of a parameter set: SHA-256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(params or {}, sort_keys=True, default=_json_default).encode()).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def encode_payload(payload: Any) -> bytes:
    """Return ``payload`` as compressed JSON (numpy values converted).

    NaN and infinities are kept (Python's json reads them back; drift bins use
    infinite outer edges): convert them before shipping a payload to a browser.
    """
    text = json.dumps(payload, default=_json_default, allow_nan=True)
    return zlib.compress(text.encode(), 6)


def decode_payload(blob: bytes) -> Any:
    """Return the JSON value stored by :func:`encode_payload`."""
    return json.loads(zlib.decompress(blob))


# -- queueing ------------------------------------------------------------------

def enqueue(session: Session, version_id: int, kind: str, params: dict | None = None) -> AnalysisResult:
    """Queue one analysis (or return the existing row for the same version, kind and parameters)."""
    from data.analyses import ANALYSES

    if kind not in ANALYSES:
        raise ValueError(f"unknown analysis kind {kind!r}")
    params = dict(params or {})
    key = params_hash(params)
    row = session.scalar(select(AnalysisResult).where(AnalysisResult.version_id == version_id,
                                                      AnalysisResult.kind == kind,
                                                      AnalysisResult.params_hash == key))
    if row is None:
        row = AnalysisResult(version_id=version_id, kind=kind, params_hash=key, params=params, status="queued")
        session.add(row)
        session.flush()
    return row


def enqueue_all(session: Session, version) -> list[AnalysisResult]:
    """Queue every default analysis that applies to the version's task; return the rows."""
    from data.analyses import analyses_for

    return [enqueue(session, version.id, spec.name) for spec in analyses_for(version.task)]


def claim_next(db: Database, *, stale_after: dt.timedelta = STALE_AFTER, worker: str | None = None) -> Claim | None:
    """Atomically take the oldest queued (or abandoned running) row; return it, or None if there is none.

    A compare-and-set UPDATE (``WHERE id = ? AND status = ? AND claim_token IS ?``)
    makes the claim: of two workers that picked the same row, exactly one
    updates it. Works the same on SQLite and PostgreSQL.
    """
    token = f"{worker or _worker_name()}:{uuid.uuid4().hex[:12]}"
    for _ in range(20):
        now = utcnow()
        with db.session() as session:
            row = session.execute(
                select(AnalysisResult.id, AnalysisResult.status, AnalysisResult.claim_token,
                       AnalysisResult.attempts, AnalysisResult.version_id, AnalysisResult.kind,
                       AnalysisResult.params)
                .where(or_(AnalysisResult.status == "queued",
                           and_(AnalysisResult.status == "running", AnalysisResult.started_at < now - stale_after)))
                .order_by(AnalysisResult.id).limit(1)).first()
            if row is None:
                return None
            same_token = (AnalysisResult.claim_token.is_(None) if row.claim_token is None
                          else AnalysisResult.claim_token == row.claim_token)
            if row.status == "running" and row.attempts >= MAX_ATTEMPTS:
                result = session.execute(
                    update(AnalysisResult)
                    .where(AnalysisResult.id == row.id, AnalysisResult.status == "running", same_token)
                    .values(status="failed", claim_token=None, finished_at=now,
                            error=f"abandoned {row.attempts} times (the worker stopped before finishing)"))
                continue
            result = session.execute(
                update(AnalysisResult)
                .where(AnalysisResult.id == row.id, AnalysisResult.status == row.status, same_token)
                .values(status="running", claim_token=token, started_at=now, finished_at=None,
                        attempts=AnalysisResult.attempts + 1))
            if result.rowcount == 1:
                if row.status == "running":
                    log.warning("reclaimed abandoned analysis %s (%s of version %s)", row.id, row.kind,
                                row.version_id)
                return Claim(id=row.id, version_id=row.version_id, kind=row.kind, params=dict(row.params or {}),
                             token=token)
    return None


def _worker_name() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}"


def finish(db: Database, claim: Claim, *, payload: Any = None, error: str | None = None,
           duration_s: float | None = None) -> bool:
    """Store the outcome of a claimed row; return False if the claim was lost (reclaimed as stale)."""
    now = utcnow()
    values: dict[str, Any] = {"finished_at": now, "duration_s": duration_s, "claim_token": None}
    if error is None:
        blob = encode_payload(payload)
        values.update(status="ready", payload=blob, payload_bytes=len(blob), error=None)
    else:
        values.update(status="failed", payload=None, payload_bytes=None, error=error[:4000])
    with db.session() as session:
        result = session.execute(update(AnalysisResult)
                                 .where(AnalysisResult.id == claim.id, AnalysisResult.claim_token == claim.token)
                                 .values(**values))
        return result.rowcount == 1


def run_claim(db: Database, claim: Claim) -> bool:
    """Compute a claimed analysis and store its result or its error; return True when it is ready."""
    from data.analyses import ANALYSES, run_analysis

    started = time.perf_counter()
    try:
        if claim.kind not in ANALYSES:
            raise ValueError(f"unknown analysis kind {claim.kind!r}")
        payload = run_analysis(db, claim.version_id, claim.kind, claim.params)
    except Exception as exc:
        elapsed = time.perf_counter() - started
        log.warning("analysis %s of version %s failed after %.1f s: %s", claim.kind, claim.version_id, elapsed,
                    exc, exc_info=log.isEnabledFor(logging.DEBUG))
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        finish(db, claim, error=detail, duration_s=elapsed)
        return False
    elapsed = time.perf_counter() - started
    if not finish(db, claim, payload=payload, duration_s=elapsed):
        log.warning("analysis %s of version %s finished after its claim was taken over", claim.kind,
                    claim.version_id)
        return False
    log.info("analysis %s of version %s ready in %.2f s", claim.kind, claim.version_id, elapsed)
    _after_ready(db, claim, payload)
    return True


def _after_ready(db: Database, claim: Claim, payload: Any) -> None:
    from data.analyses import ANALYSES

    hook = ANALYSES[claim.kind].on_ready
    if hook is not None:
        try:
            hook(db, claim.version_id, payload)
        except Exception:
            log.exception("after-ready step of %s for version %s failed", claim.kind, claim.version_id)


def run_pending(db: Database, *, limit: int | None = None) -> int:
    """Run queued analyses until none is left (or ``limit`` ran); return how many ran."""
    ran = 0
    while limit is None or ran < limit:
        claim = claim_next(db)
        if claim is None:
            break
        run_claim(db, claim)
        ran += 1
    return ran


# -- reading -------------------------------------------------------------------

class _PayloadCache:
    """A small thread-safe LRU of decoded payloads, keyed by (row id, finished_at).

    A ready row never changes (a retry gives it a new finished_at), so entries never go stale.
    """

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._items: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Any | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_PAYLOADS = _PayloadCache(maxsize=48)


def get_result(session: Session, version_id: int, kind: str, params: dict | None = None) -> Any | None:
    """Return the payload of a ready analysis, or None when it is not ready (or not queued).

    Decoded payloads are cached per process (a ready row never changes); treat
    the returned value as read-only.
    """
    key = params_hash(params)
    row = session.execute(select(AnalysisResult.id, AnalysisResult.finished_at)
                          .where(AnalysisResult.version_id == version_id, AnalysisResult.kind == kind,
                                 AnalysisResult.params_hash == key, AnalysisResult.status == "ready")).first()
    if row is None:
        return None
    cache_key = (row.id, version_id, row.finished_at)
    cached = _PAYLOADS.get(cache_key)
    if cached is not None:
        return cached
    blob = session.scalar(select(AnalysisResult.payload).where(AnalysisResult.id == row.id))
    payload = decode_payload(blob)
    _PAYLOADS.put(cache_key, payload)
    return payload


def clear_payload_cache() -> None:
    """Forget the decoded payloads of this process (tests, memory pressure)."""
    _PAYLOADS.clear()


def status_for(session: Session, version_id: int) -> dict:
    """Return the analysis status of a version.

    ``{"state": "ready"|"computing"|"failed"|"none", "total", "ready", "running",
    "queued", "failed", "progress" (0..1), "items": [{"kind", "status", "error",
    "duration_s", "finished_at", "params"}]}``.
    """
    rows = session.execute(select(AnalysisResult.id, AnalysisResult.kind, AnalysisResult.status,
                                  AnalysisResult.error, AnalysisResult.duration_s, AnalysisResult.finished_at,
                                  AnalysisResult.params)
                           .where(AnalysisResult.version_id == version_id).order_by(AnalysisResult.id)).all()
    counts = {s: 0 for s in STATUSES}
    items = []
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
        items.append({"id": r.id, "kind": r.kind, "status": r.status, "error": r.error,
                      "duration_s": r.duration_s, "params": r.params or {},
                      "finished_at": r.finished_at.isoformat(timespec="seconds") if r.finished_at else None})
    total = len(rows)
    if total == 0:
        state = "none"
    elif counts["queued"] or counts["running"]:
        state = "computing"
    elif counts["failed"]:
        state = "failed"
    else:
        state = "ready"
    done = counts["ready"] + counts["failed"]
    return {"state": state, "total": total, **counts, "progress": (done / total) if total else 1.0, "items": items}


def retry(session: Session, version_id: int, kind: str | None = None) -> int:
    """Queue failed analyses of a version again (one kind, or all failed when None); return how many."""
    query = update(AnalysisResult).where(AnalysisResult.version_id == version_id, AnalysisResult.status == "failed")
    if kind is not None:
        query = query.where(AnalysisResult.kind == kind)
    result = session.execute(query.values(status="queued", error=None, attempts=0, claim_token=None,
                                          started_at=None, finished_at=None, duration_s=None,
                                          queued_at=utcnow()))
    return result.rowcount
