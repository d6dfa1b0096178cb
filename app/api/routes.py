"""Routes of the prediction-log API: log predictions, attach ground truth, describe a model.

Every route except the OpenAPI document needs ``Authorization: Bearer <token>``
with an active token of the model named in the URL. Answers are JSON:
401 no/unknown/revoked token, 403 a token of another model, 404 unknown
model, 413 body too large, 415 not JSON, 400 malformed JSON, 422 invalid
records (with a per-record error list; nothing written), 429 too many
requests (with ``Retry-After``), 503 the model's reference data is still
being computed (with ``Retry-After``).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from app.api.openapi import openapi_document
from app.audit import client_ip, record_event
from data.db import get_db

log = logging.getLogger("glassbox.api")

bp = Blueprint("api_v1", __name__)

DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_RECORDS = 1000
DEFAULT_RATE_PER_MINUTE = 120
DEFAULT_AUTH_FAILURES_PER_MINUTE = 20
#: Endpoints reachable without a token (documentation only).
PUBLIC_ENDPOINTS = frozenset({"api_v1.openapi"})


def _setting(name: str, default: int) -> int:
    raw = current_app.config.get(name)
    if raw is None:
        import os

        raw = os.environ.get(name)
    try:
        return int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        return default


def error(status: int, message: str, **extra: Any):
    """Return a JSON error answer."""
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


# -- authentication (deny by default) -------------------------------------------------

def _deny(status: int, message: str, reason: str, *, who: str = "anonymous"):
    record_event("api.auth", target=request.path[:200], outcome="denied", detail=reason, username=who)
    response = error(status, message)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="glassbox-api"'
    return response


@bp.before_request
def authenticate():
    """Require an active bearer token of the model in the URL on every route but the public ones."""
    from data.monitoring import authenticate_token, hit_rate_limit

    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    db = get_db()
    with db.session() as s:
        found = authenticate_token(s, token) if token else None
        if found is None:
            wait = hit_rate_limit(s, f"authfail:{client_ip() or '?'}",
                                  limit=_setting("GLASSBOX_API_AUTH_FAILURES_PER_MINUTE",
                                                 DEFAULT_AUTH_FAILURES_PER_MINUTE))
        else:
            row, model_name = found
            g.api_token_id, g.api_token_prefix, g.api_model = row.id, row.prefix, model_name
            wait = hit_rate_limit(s, f"token:{row.id}",
                                  limit=_setting("GLASSBOX_API_RATE_PER_MINUTE", DEFAULT_RATE_PER_MINUTE))
    if found is None:
        if wait is not None:
            return _too_many(wait)
        if not token:
            return _deny(401, "Send an API token: 'Authorization: Bearer <token>'.", "no token")
        return _deny(401, "The API token is not valid (unknown or revoked).", "unknown or revoked token")
    if wait is not None:
        return _too_many(wait)
    name = (request.view_args or {}).get("name")
    if name is None or name != g.api_model:
        return _deny(403, "This token is for another model.", f"token for {g.api_model} used on {str(name)[:80]}",
                     who=f"token:{g.api_token_prefix}")
    return None


def _too_many(wait: int):
    response = error(429, f"Too many requests; try again in {wait} s.")
    response.headers["Retry-After"] = str(wait)
    return response


# -- body -----------------------------------------------------------------------------

class _BadBody(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _reject_constant(value: str):
    raise ValueError(f"{value} is not valid JSON")


def _json_body(key: str) -> Any:
    """Return body[key] of a JSON object body read within the size limit, or raise _BadBody."""
    limit = _setting("GLASSBOX_API_MAX_BYTES", DEFAULT_MAX_BYTES)
    if request.mimetype != "application/json":
        raise _BadBody(415, "Send the body as JSON (Content-Type: application/json).")
    length = request.content_length
    if length is not None and length > limit:
        raise _BadBody(413, f"The body is larger than {limit:,} bytes; send smaller batches.")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise _BadBody(413, f"The body is larger than {limit:,} bytes; send smaller batches.")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _BadBody(400, f"The body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(body, dict):
        raise _BadBody(400, f"The body must be a JSON object with a '{key}' list.")
    unknown = sorted(set(body) - {key})
    if unknown:
        raise _BadBody(400, f"Unknown top-level fields: {', '.join(str(u)[:40] for u in unknown[:5])}.")
    if key not in body:
        raise _BadBody(400, f"The body needs a '{key}' list.")
    return body[key]


# -- after ingestion: alerts ------------------------------------------------------------

def _after_ingestion(model_name: str, version_ids: set[int]) -> int:
    """Evaluate the model's rules on the versions just written and send notifications; return new events."""
    from data.alerts import evaluate_rules
    from data.notify import deliver_pending, load_settings

    db = get_db()
    try:
        fired = evaluate_rules(db, model_name=model_name, version_ids=version_ids)
    except Exception:
        # The batch is stored already; the scheduled evaluation will catch up.
        log.exception("alert evaluation after ingestion failed for %s", model_name)
        return 0
    if fired:
        settings = load_settings()
        if settings.channels:
            if current_app.testing:
                deliver_pending(db, settings=settings)
            else:
                threading.Thread(target=_deliver_quietly, args=(db, settings), daemon=True,
                                 name="glassbox-notify").start()
    return len(fired)


def _deliver_quietly(db, settings) -> None:
    from data.notify import deliver_pending

    try:
        deliver_pending(db, settings=settings)
    except Exception:
        log.exception("notification delivery failed; rows stay pending for the next run")


# -- routes ------------------------------------------------------------------------------

@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API (public)."""
    return jsonify(openapi_document(request.host_url.rstrip("/") + "/api/v1"))


def _ingest(kind: str, name: str):
    from data.monitoring import ReferenceNotReady, ingest_labels, ingest_predictions

    key = "records" if kind == "predictions" else "labels"
    try:
        items = _json_body(key)
    except _BadBody as exc:
        return error(exc.status, exc.message)
    max_records = _setting("GLASSBOX_API_MAX_RECORDS", DEFAULT_MAX_RECORDS)
    db = get_db()
    try:
        if kind == "predictions":
            result = ingest_predictions(db, name, items, max_records=max_records)
        else:
            result = ingest_labels(db, name, items, max_records=max_records)
    except LookupError:
        return error(404, f"There is no model called {name!r}.")
    except ReferenceNotReady as exc:
        response = error(503, f"{exc}; try again shortly.")
        response.headers["Retry-After"] = "10"
        return response
    if not result.ok:
        return error(422, f"{len(result.errors)} record(s) are invalid; nothing was stored.",
                     errors=[e.to_dict() for e in result.errors[:1000]])
    body = result.to_dict()
    body["alerts"] = _after_ingestion(name, result.version_ids) if result.version_ids else 0
    log.info("api %s for %s: %d accepted, %d duplicates (token %s)", kind, name, len(result.accepted),
             len(result.duplicates), g.api_token_prefix)
    return jsonify(body)


@bp.post("/models/<name>/predictions")
def log_predictions(name: str):
    """Log a batch of predictions."""
    return _ingest("predictions", name)


@bp.post("/models/<name>/labels")
def log_labels(name: str):
    """Attach ground truth to logged predictions."""
    return _ingest("labels", name)


@bp.get("/models/<name>")
def describe_model(name: str):
    """Describe the model's versions: task, features and classes (what a record must carry)."""
    from data.registry import get_model

    with get_db().session() as s:
        model = get_model(s, name)
        if model is None:
            return error(404, f"There is no model called {name!r}.")
        versions = [{"version": v.number, "task": v.task, "classes": v.classes, "positive_class": v.positive_class,
                     "features": [{"name": m["name"], "kind": m["kind"],
                                   **({"levels": m.get("levels")} if m["kind"] == "categorical" else {})}
                                  for m in v.feature_meta]} for v in model.versions]
    return jsonify({"name": name, "versions": versions})
