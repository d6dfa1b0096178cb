"""Callbacks of the model administration page (all need 'manage models')."""

from __future__ import annotations

import base64
import binascii
import logging
import tempfile
from pathlib import Path

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, html, no_update
from flask import current_app, has_app_context
from werkzeug.utils import secure_filename

from app.audit import record_event
from app.security.permissions import Permission
from callbacks.validate import InvalidInput, error_alert, text
from data.analysis_cache import retry, status_for
from data.db import get_db
from data.registry import archive_model, delete_model, get_version_by_id, list_models, register_files
from data.validation import RegistrationError
from layouts import admin_models as L

log = logging.getLogger(__name__)

STATE_COLORS = {"ready": "success", "computing": "info", "failed": "danger", "none": "secondary"}
MODEL_SUFFIXES = (".skops",)
DATA_SUFFIXES = (".csv", ".parquet", ".pq")


def _success(*children) -> dbc.Alert:
    return dbc.Alert(list(children), color="success", className="py-2 mb-0")


# -- the table -------------------------------------------------------------------------

def _status_cell(status: dict, version_id: int):
    state = status["state"]
    cell = [dbc.Badge(state, color=STATE_COLORS[state], className="me-2"),
            html.Span(f"{status['ready']}/{status['total']}", className="gb-help")]
    if status["failed"]:
        errors = "; ".join(f"{i['kind']}: {i['error']}" for i in status["items"] if i["status"] == "failed")
        cell += [html.Div(errors[:300], className="small text-danger mt-1"),
                 dbc.Button("Retry failed", id={"type": L.RETRY, "version": version_id}, size="sm",
                            color="warning", outline=True, className="mt-1")]
    return cell


def models_table(*_triggers):
    """Return (versions table, model options, refresh disabled): every version of every model."""
    with get_db().session() as s:
        records = list_models(s, include_archived=True)
        rows, computing = [], False
        for record in records:
            for version in reversed(record.versions):
                status = status_for(s, version.id)
                computing = computing or status["state"] == "computing"
                threshold = version.threshold
                rows.append(html.Tr([
                    html.Td([html.Strong(record.name), " ",
                             dbc.Badge("archived", color="dark") if record.archived else None]),
                    html.Td(f"v{version.number}" + (" (latest)" if version is record.latest else "")),
                    html.Td(version.task),
                    html.Td(f"{version.created_at:%Y-%m-%d %H:%M} by {version.created_by}"),
                    html.Td(f"{version.train_rows:,} / {version.test_rows:,}"),
                    html.Td(f"{threshold['value']:.3f} ({threshold['set_by']})" if threshold else "–"),
                    html.Td(_status_cell(status, version.id)),
                ]))
        options = [{"label": r.name + (" (archived)" if r.archived else ""), "value": r.name} for r in records]
    if not rows:
        table = html.P("No model is registered yet. Upload one below, run `glassbox register`, or "
                       "`glassbox demo seed` for the demo models.", className="gb-help mb-0", id="admin-models-empty")
    else:
        table = dbc.Table([html.Thead(html.Tr([html.Th(h) for h in ("Model", "Version", "Task", "Registered",
                                                                   "Train / test rows", "Threshold",
                                                                   "Analyses")])),
                           html.Tbody(rows)], hover=True, responsive=True, className="gb-table mb-0",
                          id="admin-models-versions")
    return table, options, not computing


def version_options(model):
    """Return (options, value) of the version picker for ``model``: every version, or one."""
    if not isinstance(model, str) or not model:
        return [], L.ALL_VERSIONS
    with get_db().session() as s:
        record = next((r for r in list_models(s, include_archived=True) if r.name == model), None)
        numbers = [v.number for v in record.versions] if record else []
    options = [{"label": "Every version", "value": L.ALL_VERSIONS}]
    options += [{"label": f"v{n}", "value": n} for n in reversed(numbers)]
    return options, L.ALL_VERSIONS


# -- retry -----------------------------------------------------------------------------

def retry_failed(trigger, clicks):
    """Queue the failed analyses of the version whose button was clicked; return (message, change token)."""
    if not isinstance(trigger, dict) or trigger.get("type") != L.RETRY or not any(c for c in (clicks or [])
                                                                                    if isinstance(c, int)):
        return no_update, no_update
    version_id = trigger.get("version")
    if isinstance(version_id, bool) or not isinstance(version_id, int):
        return error_alert("Unknown model version."), no_update
    with get_db().session() as s:
        version = get_version_by_id(s, version_id)
        if version is None:
            return error_alert("That model version no longer exists."), no_update
        label = version.label
        count = retry(s, version_id)
    record_event("analysis.retry", target=label, detail=f"count={count}")
    _wake()
    return _success(f"Queued {count} failed analyses of {label} again."), version_id


# -- archive and delete ------------------------------------------------------------------

def _check_target(model, version) -> tuple[str, int | None]:
    name = text(model, name="Model", max_length=128, required=True)
    if version in (None, L.ALL_VERSIONS):
        number = None
    elif isinstance(version, int) and not isinstance(version, bool) and version > 0:
        number = version
    else:
        raise InvalidInput("Choose a version, or every version.")
    with get_db().session() as s:
        record = next((r for r in list_models(s, include_archived=True) if r.name == name), None)
        if record is None:
            raise InvalidInput(f"There is no model called '{name[:60]}'.")
        if number is not None and number not in [v.number for v in record.versions]:
            raise InvalidInput(f"'{name}' has no version {number}.")
    return name, number


def ask(trigger, model, version):
    """Return (show dialog, its message, the pending action, message) for a clicked action button."""
    action = {L.ARCHIVE: "archive", L.UNARCHIVE: "unarchive", L.DELETE: "delete"}.get(trigger)
    if action is None:
        return False, no_update, None, None
    try:
        name, number = _check_target(model, version)
        if action != "delete" and number is not None:
            raise InvalidInput("Archiving applies to a whole model: choose every version.")
    except InvalidInput as exc:
        return False, no_update, None, error_alert(str(exc))
    what = f"{name} v{number}" if number else name
    message = {
        "archive": f"Archive {what}? It disappears from every view; its versions and files are kept.",
        "unarchive": f"Show {what} again in every view?",
        "delete": f"Delete {what}" + ("" if number else " and every version")
                  + " with its data, analyses and files? This cannot be undone.",
    }[action]
    return True, message, {"action": action, "model": name, "version": number}, None


def apply(submitted, pending):
    """Carry out a confirmed action; return (message, change token). The pending action is re-checked."""
    if not submitted or not isinstance(pending, dict):
        return no_update, no_update
    action = pending.get("action")
    if action not in ("archive", "unarchive", "delete"):
        return error_alert("Unknown action."), no_update
    try:
        name, number = _check_target(pending.get("model"), pending.get("version"))
        if action != "delete" and number is not None:
            raise InvalidInput("Archiving applies to a whole model.")
        if action == "delete":
            labels = delete_model(get_db(), name, version=number)
            done = f"Deleted {', '.join(labels)}."
        else:
            with get_db().session() as s:
                archive_model(s, name, archived=action == "archive")
            done = f"{'Archived' if action == 'archive' else 'Unarchived'} {name}."
    except (InvalidInput, KeyError) as exc:
        message = str(exc) if isinstance(exc, InvalidInput) else exc.args[0]
        record_event(f"model.{action}", target=str(pending.get("model"))[:128], outcome="failure", detail=message)
        return error_alert(message), no_update
    target = f"{name} v{number}" if number else name
    record_event(f"model.{action}", target=target)
    return _success(done), f"{action}:{target}"


# -- upload and register ---------------------------------------------------------------------

def _decode(contents, filename, *, label: str, suffixes: tuple[str, ...], limit: int) -> tuple[str, bytes]:
    if not contents or not filename:
        raise InvalidInput(f"Choose the {label} file.")
    if not isinstance(contents, str) or not isinstance(filename, str) or "," not in contents[:200]:
        raise InvalidInput(f"The {label} file did not arrive as an upload; choose it again.")
    safe = secure_filename(filename)[:120] or f"{label}.bin"
    if not safe.lower().endswith(suffixes):
        raise InvalidInput(f"The {label} file must end with {' or '.join(suffixes)}; got {filename[:80]!r}.")
    encoded = contents.split(",", 1)[1]
    if len(encoded) * 3 // 4 > limit + 3:
        raise InvalidInput(f"The {label} file {filename[:80]} is larger than the upload limit of "
                           f"{limit / 1024 / 1024:.0f} MB; register it from the command line.")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"The {label} file could not be decoded; choose it again.") from None
    if len(data) > limit:
        raise InvalidInput(f"The {label} file {filename[:80]} is {len(data) / 1024 / 1024:.1f} MB; the upload "
                           f"limit is {limit / 1024 / 1024:.0f} MB.")
    return safe, data


def _names(value, *, label: str) -> list[str]:
    raw = text(value, name=label, max_length=1000)
    return [part.strip() for part in raw.split(",") if part.strip()]


def register_upload(n_clicks, model_contents, model_filename, train_contents, train_filename, test_contents,
                    test_filename, name, target, positive, groups, description, tags, *, actor: str,
                    limit: int | None = None, artifact_dir=None):
    """Validate the uploaded files and fields and register them; return (message, change token).

    Uploads never allow pickle: only .skops models, loaded against the trusted-types list.
    """
    if not n_clicks:
        return no_update, no_update
    limit = limit or L.file_limit()
    try:
        name = text(name, name="Model name", max_length=128, required=True)
        target = text(target, name="Target column", max_length=255, required=True)
        positive = text(positive, name="Positive class", max_length=255) or None
        group_columns = _names(groups, label="Group columns")
        tag_list = _names(tags, label="Tags")
        description = text(description, name="Description", max_length=2000)
        files = [_decode(model_contents, model_filename, label="model", suffixes=MODEL_SUFFIXES, limit=limit),
                 _decode(train_contents, train_filename, label="train", suffixes=DATA_SUFFIXES, limit=limit),
                 _decode(test_contents, test_filename, label="test", suffixes=DATA_SUFFIXES, limit=limit)]
    except InvalidInput as exc:
        return error_alert(str(exc)), no_update
    with tempfile.TemporaryDirectory(prefix="glassbox-upload-") as scratch:
        paths = []
        for role, (filename, data) in zip(("model", "train", "test"), files, strict=True):
            folder = Path(scratch) / role
            folder.mkdir()
            path = folder / filename
            path.write_bytes(data)
            paths.append(path)
        try:
            version = register_files(name=name, model_path=paths[0], train_path=paths[1], test_path=paths[2],
                                     target=target, created_by=actor, positive_class=positive,
                                     group_columns=group_columns, description=description, tags=tag_list,
                                     trust_pickle=False, max_bytes=limit, artifact_dir=artifact_dir)
        except RegistrationError as exc:
            record_event("model.register", target=name, outcome="failure", detail=str(exc))
            return dbc.Alert([html.Strong("Registration refused: "), str(exc)], color="danger",
                             className="py-2 mb-0", id="admin-models-refused"), no_update
        except Exception:
            log.exception("registration of %s from an upload failed", name)
            record_event("model.register", target=name, outcome="failure", detail="unexpected error")
            return error_alert("The registration failed unexpectedly; the error has been logged. Nothing was "
                               "saved."), no_update
    record_event("model.register", target=version.label, detail=f"upload task={version.task}")
    _wake()
    return _success(html.Strong(f"Registered {version.label}"),
                    f" ({version.task}, {version.train_rows:,} train / {version.test_rows:,} test rows). "
                    "Its analyses are computing; the table above and the overview show their progress."), version.id


def _wake() -> None:
    if has_app_context():
        from app.jobs import wake

        wake(current_app._get_current_object())


_SHOW_FILE = "function(name){ return name ? '\u2713 ' + name : 'No file chosen'; }"


def register(dash_app, policy):
    """Bind the model administration controls; every callback needs 'manage models'."""
    for upload, label in ((L.UPLOAD_MODEL, L.MODEL_FILE), (L.UPLOAD_TRAIN, L.TRAIN_FILE),
                          (L.UPLOAD_TEST, L.TEST_FILE)):
        policy.clientside_callback(_SHOW_FILE, Output(label, "children"), Input(upload, "filename"),
                                   prevent_initial_call=True)

    policy.callback(Output(L.TABLE, "children"), Output(L.MANAGE_MODEL, "options"), Output(L.REFRESH, "disabled"),
                    Input(L.REFRESH, "n_intervals"), Input(L.CHANGED, "data"), Input(L.REGISTERED, "data"),
                    Input(L.RETRIED, "data"), permission=Permission.MANAGE_MODELS)(models_table)

    policy.callback(Output(L.MANAGE_VERSION, "options"), Output(L.MANAGE_VERSION, "value"),
                    Input(L.MANAGE_MODEL, "value"), permission=Permission.MANAGE_MODELS)(version_options)

    def on_retry(clicks):
        return retry_failed(ctx.triggered_id, clicks)

    policy.callback(Output(L.RETRY_MESSAGE, "children"), Output(L.RETRIED, "data"),
                    Input({"type": L.RETRY, "version": ALL}, "n_clicks"), prevent_initial_call=True,
                    permission=Permission.MANAGE_MODELS)(on_retry)

    def on_ask(_a, _u, _d, model, version):
        return ask(ctx.triggered_id, model, version)

    policy.callback(Output(L.CONFIRM, "displayed"), Output(L.CONFIRM, "message"), Output(L.PENDING, "data"),
                    Output(L.ASK_MESSAGE, "children"),
                    Input(L.ARCHIVE, "n_clicks"), Input(L.UNARCHIVE, "n_clicks"), Input(L.DELETE, "n_clicks"),
                    State(L.MANAGE_MODEL, "value"), State(L.MANAGE_VERSION, "value"),
                    prevent_initial_call=True, permission=Permission.MANAGE_MODELS)(on_ask)

    policy.callback(Output(L.ACTION_MESSAGE, "children"), Output(L.CHANGED, "data"),
                    Input(L.CONFIRM, "submit_n_clicks"), State(L.PENDING, "data"),
                    prevent_initial_call=True, permission=Permission.MANAGE_MODELS)(apply)

    def on_register(n_clicks, mc, mf, trc, trf, tec, tef, name, target, positive, groups, description, tags):
        return register_upload(n_clicks, mc, mf, trc, trf, tec, tef, name, target, positive, groups, description,
                               tags, actor=policy.current_user().username)

    policy.callback(Output(L.REGISTER_MESSAGE, "children"), Output(L.REGISTERED, "data"),
                    Input(L.REGISTER, "n_clicks"),
                    State(L.UPLOAD_MODEL, "contents"), State(L.UPLOAD_MODEL, "filename"),
                    State(L.UPLOAD_TRAIN, "contents"), State(L.UPLOAD_TRAIN, "filename"),
                    State(L.UPLOAD_TEST, "contents"), State(L.UPLOAD_TEST, "filename"),
                    State(L.NAME, "value"), State(L.TARGET, "value"), State(L.POSITIVE, "value"),
                    State(L.GROUPS, "value"), State(L.DESCRIPTION, "value"), State(L.TAGS, "value"),
                    running=[(Output(L.REGISTER, "disabled"), True, False),
                             (Output(L.REGISTER, "children"),
                              [dbc.Spinner(size="sm", spinner_class_name="me-2"), "Validating…"],
                              [html.I(className="bi bi-check2-circle me-2"), "Validate and register"])],
                    prevent_initial_call=True, permission=Permission.MANAGE_MODELS)(on_register)
