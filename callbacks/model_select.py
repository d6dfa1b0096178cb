"""Fill the shared model selector from the user's grants and keep the URL in step.

Page callbacks call :func:`resolve` with the model and version the browser
sent: it checks the user's permission on that model (never trusting the
browser) and returns the registered version, or raises InvalidInput with a
message the page shows instead of data.
"""

from __future__ import annotations

from urllib.parse import urlencode

from dash import Input, Output, State, html, no_update

from app.security.permissions import Permission
from callbacks.validate import InvalidInput
from data.db import get_db
from data.registry import ModelVersion, get_version, list_models
from layouts.model_select import SelectorIds

TASK_LABELS = {"binary": "binary classifier", "multiclass": "multiclass classifier", "regression": "regressor"}


def visible_models(user, permission: Permission, *, tasks: tuple[str, ...] | None = None) -> list:
    """Return the (non-archived) models the user may open with ``permission``, latest version's task first."""
    with get_db().session() as s:
        models = list_models(s, visible=user.visible_models(permission))
        return [m for m in models if tasks is None or m.latest.task in tasks]


def resolve(name, version, *, user, permission: Permission, tasks: tuple[str, ...] | None = None) -> ModelVersion:
    """Return the registered version the user asked for, or raise InvalidInput saying why not."""
    if not isinstance(name, str) or not name or len(name) > 128:
        raise InvalidInput("Choose a model.")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise InvalidInput("The version must be a positive whole number.")
    if not user.can(permission, model=name):
        # The same message whether the model exists or not: no probing of names.
        raise InvalidInput(f"You do not have access to a model called '{name[:60]}'. "
                           f"Ask an administrator for the permission '{permission.label}' on it.")
    with get_db().session() as s:
        found = get_version(s, name, version)
        if found is None or found.model.archived:
            raise InvalidInput(f"There is no version {version} of '{name[:60]}'." if version
                               else f"There is no model called '{name[:60]}'.")
    if tasks is not None and found.task not in tasks:
        kinds = " or ".join(TASK_LABELS[t] + "s" for t in tasks)
        raise InvalidInput(f"'{name}' is a {TASK_LABELS.get(found.task, found.task)}; this view is for {kinds}.")
    return found


def fill_selector(_pathname, model, version, *, user, permission: Permission, tasks=None):
    """Return (model options, model, version options, version, info) for the selector."""
    models = visible_models(user, permission, tasks=tasks)
    if not models:
        kinds = "" if tasks is None else " (" + " or ".join(TASK_LABELS[t] + "s" for t in tasks) + ")"
        return [], None, [], None, html.Span(f"No model you may open is registered{kinds}.",
                                             className="text-danger")
    names = [m.name for m in models]
    options = [{"label": m.name, "value": m.name} for m in models]
    if model not in names:
        model = names[0]
    record = models[names.index(model)]
    numbers = [v.number for v in record.versions]
    version_options = [{"label": f"v{v.number}" + (" (latest)" if v.number == numbers[-1] else ""),
                        "value": v.number} for v in reversed(record.versions)]
    if version not in numbers:
        version = numbers[-1]
    chosen = record.versions[numbers.index(version)]
    info = [html.Span(TASK_LABELS.get(chosen.task, chosen.task), className="badge text-bg-light me-2"),
            f"{chosen.train_rows:,} train / {chosen.test_rows:,} test rows · registered "
            f"{chosen.created_at:%Y-%m-%d} by {chosen.created_by}"]
    return options, model, version_options, version, info


def url_search(model, version, split) -> str:
    """Return the query string that reopens this selection."""
    params = {}
    if isinstance(model, str) and model:
        params["model"] = model
    if isinstance(version, int) and not isinstance(version, bool):
        params["version"] = version
    if split in ("train", "test"):
        params["split"] = split
    return "?" + urlencode(params) if params else ""


def register_selector(policy, prefix: str, *, permission: Permission, tasks: tuple[str, ...] | None = None,
                      split: bool = True) -> None:
    """Register the two selector callbacks of one page."""
    ids = SelectorIds(prefix)

    def fill(pathname, model, version):
        return fill_selector(pathname, model, version, user=policy.current_user(), permission=permission,
                             tasks=tasks)

    policy.callback(Output(ids.model, "options"), Output(ids.model, "value"), Output(ids.version, "options"),
                    Output(ids.version, "value"), Output(ids.info, "children"),
                    Input(ids.url, "pathname"), Input(ids.model, "value"), State(ids.version, "value"),
                    permission=permission)(fill)

    def sync(model, version, split, current):
        search = url_search(model, version, split)
        return search if search != current else no_update

    policy.callback(Output(ids.url, "search"), Input(ids.model, "value"), Input(ids.version, "value"),
                    Input(ids.split, "value" if split else "data"), State(ids.url, "search"),
                    prevent_initial_call=True, permission=permission)(sync)

