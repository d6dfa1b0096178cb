"""``glassbox`` commands for models and analyses: register, models, demo, analyses.

Added to the ``glassbox`` group by :mod:`app.cli` through :data:`COMMANDS`.
"""

from __future__ import annotations

import getpass
import json
import logging

import click
from flask import current_app
from flask.cli import with_appcontext

from data.db import get_db

log = logging.getLogger(__name__)


def _audit(action: str, target: str, detail: str | None = None, outcome: str = "success") -> None:
    from app.audit import record_event

    record_event(action, target=target, detail=detail, outcome=outcome, username="cli")


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:  # no login name (containers without a passwd entry)
        return "cli"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


# -- register --------------------------------------------------------------------

@click.command("register")
@click.option("--name", required=True, help="Model name (letters, digits, '.', '_', '-'); an existing name gets a new version.")
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="Fitted estimator: a .skops file (pickle/joblib only with --trust-pickle).")
@click.option("--train", "train_path", required=True, type=click.Path(dir_okay=False), help="Train data, CSV or Parquet.")
@click.option("--test", "test_path", required=True, type=click.Path(dir_okay=False), help="Test data, CSV or Parquet.")
@click.option("--target", required=True, help="The target column.")
@click.option("--positive-class", default=None, help="Binary models: the positive class (default: the second class).")
@click.option("--group-column", "group_columns", multiple=True,
              help="A column kept for fairness views and not fed to the model (repeatable).")
@click.option("--description", default="", help="What this version is.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), default=None,
              help="Override the detected task.")
@click.option("--trust-pickle", is_flag=True,
              help="Allow a pickle/joblib model file. Loading a pickle runs code from the file: only for files you trust.")
@click.option("--run-analyses", is_flag=True, help="Compute the analyses now instead of leaving them to the server.")
@click.option("--max-size-mb", type=click.IntRange(1, 100_000), default=None,
              help="Largest accepted file in MB (default: GLASSBOX_MAX_UPLOAD_MB, 200).")
@with_appcontext
def register(name, model_path, train_path, test_path, target, positive_class, group_columns, description, tags, task,
             trust_pickle, run_analyses, max_size_mb) -> None:
    """Register a fitted model with its train and test data as a new version."""
    from data.registry import register_files
    from data.validation import RegistrationError

    if trust_pickle:
        click.echo("warning: --trust-pickle loads the model with pickle, which runs code from the file", err=True)
    try:
        version = register_files(
            name=name, model_path=model_path, train_path=train_path, test_path=test_path, target=target,
            created_by=_operator(), positive_class=positive_class, group_columns=group_columns,
            description=description, tags=tags, task=task, trust_pickle=trust_pickle,
            max_bytes=(max_size_mb * 1024 * 1024 if max_size_mb
                       else current_app.config.get("GLASSBOX_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)))
    except RegistrationError as exc:
        _audit("model.register", name, detail=str(exc), outcome="failure")
        raise click.ClickException(f"registration refused: {exc}") from None
    _audit("model.register", version.label, detail=f"task={version.task} trust_pickle={trust_pickle}")
    click.echo(f"registered {version.label} ({version.task}, {version.train_rows} train / {version.test_rows} "
               f"test rows, {len(version.features)} features)")
    if run_analyses:
        _run_analyses()
    else:
        click.echo("analyses are queued: the running server computes them, or run `glassbox analyses run`")


# -- models ----------------------------------------------------------------------

@click.group("models")
def models() -> None:
    """List, describe, archive and delete registered models."""


@models.command("list")
@click.option("--all", "include_archived", is_flag=True, help="Include archived models.")
@with_appcontext
def models_list(include_archived: bool) -> None:
    """List models with their latest version and analysis status."""
    from data.analysis_cache import status_for
    from data.registry import list_models

    with get_db().session() as session:
        records = list_models(session, include_archived=include_archived)
        if not records:
            click.echo("no model is registered (glassbox register --help, or glassbox demo seed)")
            return
        click.echo(f"{'name':24} {'latest':>6} {'task':11} {'test rows':>10} {'analyses':12} archived")
        for record in records:
            latest = record.latest
            status = status_for(session, latest.id)
            analyses = f"{status['ready']}/{status['total']} {status['state']}"
            click.echo(f"{record.name:24} {'v' + str(latest.number):>6} {latest.task:11} {latest.test_rows:>10} "
                       f"{analyses:12} {'yes' if record.archived else ''}")


@models.command("describe")
@click.argument("name")
@click.option("--version", "number", type=int, default=None, help="Version number (default: latest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def models_describe(name: str, number: int | None, as_json: bool) -> None:
    """Show one version: task, data, features, metrics, threshold and analyses."""
    from data.analysis_cache import status_for
    from data.registry import get_version

    with get_db().session() as session:
        version = get_version(session, name, number)
        if version is None:
            raise click.ClickException(f"no model {name!r}" + (f" version {number}" if number else ""))
        status = status_for(session, version.id)
        info = {
            "name": version.name, "version": version.number, "versions": [v.number for v in version.model.versions],
            "archived": version.model.archived, "task": version.task, "target": version.target,
            "positive_class": version.positive_class, "classes": version.classes,
            "created_at": version.created_at.isoformat(timespec="seconds"), "created_by": version.created_by,
            "description": version.description, "tags": version.tags, "features": version.features,
            "group_columns": version.group_columns, "train_rows": version.train_rows, "test_rows": version.test_rows,
            "artifact_bytes": version.artifact_bytes, "artifact_sha256": version.artifact_sha256,
            "metrics": version.metrics, "threshold": version.threshold,
            "analyses": {i["kind"]: i["status"] + (f": {i['error']}" if i["error"] else "") for i in status["items"]},
        }
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    click.echo(f"{info['name']} v{info['version']} ({info['task']})  versions: {info['versions']}"
               + ("  [archived]" if info["archived"] else ""))
    click.echo(f"  created {info['created_at']} by {info['created_by']}")
    if info["description"]:
        click.echo(f"  {info['description']}")
    click.echo(f"  target {info['target']!r}" + (f", positive class {info['positive_class']!r}"
                                                   if info["positive_class"] is not None else ""))
    click.echo(f"  data: {info['train_rows']} train / {info['test_rows']} test rows; "
               f"{len(info['features'])} features; group columns: {', '.join(info['group_columns']) or '-'}")
    if info["metrics"]:
        click.echo("  test metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in info["metrics"].items()))
    if info["threshold"]:
        t = info["threshold"]
        click.echo(f"  threshold {t['value']:.3f} set by {t['set_by']} at {t['set_at']}: {t['reason']}")
    for kind, state in info["analyses"].items():
        click.echo(f"  analysis {kind:24} {state}")


@models.command("archive")
@click.argument("name")
@click.option("--undo", is_flag=True, help="Show the model again.")
@with_appcontext
def models_archive(name: str, undo: bool) -> None:
    """Hide a model from every view (its versions and files are kept)."""
    from data.registry import archive_model

    try:
        with get_db().session() as session:
            archive_model(session, name, archived=not undo)
    except KeyError as exc:
        raise click.ClickException(exc.args[0]) from None
    _audit("model.unarchive" if undo else "model.archive", name)
    click.echo(f"{'unarchived' if undo else 'archived'} {name}")


@models.command("delete")
@click.argument("name")
@click.option("--version", "number", type=int, default=None, help="Delete one version only.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def models_delete(name: str, number: int | None, yes: bool) -> None:
    """Delete a model (or one version) with its analyses and files. This cannot be undone."""
    from data.registry import delete_model

    what = f"{name} v{number}" if number else f"{name} (every version)"
    if not yes:
        click.confirm(f"Delete {what} with its data and analyses?", abort=True)
    try:
        labels = delete_model(get_db(), name, version=number)
    except KeyError as exc:
        raise click.ClickException(exc.args[0]) from None
    _audit("model.delete", what, detail=", ".join(labels))
    click.echo(f"deleted {', '.join(labels)}")


# -- demo --------------------------------------------------------------------------

@click.group("demo")
def demo() -> None:
    """Demo models."""


def seed_demo(*, run_analyses: bool = False) -> list[str]:
    """Train and register the demo models that are missing (called by ``glassbox bootstrap``)."""
    from data.demo import seed_demo_models

    names = seed_demo_models(get_db(), artifact_dir=current_app.config["GLASSBOX_ARTIFACT_DIR"], created_by="admin")
    for name in names:
        _audit("model.register", f"{name} v1", detail="demo model")
    click.echo(f"demo models registered: {', '.join(names)}" if names else "demo models exist already")
    if run_analyses:
        _run_analyses()
    return names


@demo.command("seed")
@click.option("--wait", is_flag=True, help="Compute the analyses now instead of leaving them to the server.")
@with_appcontext
def demo_seed(wait: bool) -> None:
    """Train and register the five demo models (models that exist are left alone)."""
    seed_demo(run_analyses=wait)


# -- analyses -------------------------------------------------------------------------

@click.group("analyses")
def analyses() -> None:
    """Run, inspect and retry the analyses of model versions."""


def _run_analyses(limit: int | None = None) -> int:
    from app.jobs import run_now

    ran = run_now(current_app._get_current_object(), limit=limit)
    click.echo(f"ran {ran} analyses")
    return ran


@analyses.command("run")
@click.option("--limit", type=int, default=None, help="Stop after this many.")
@with_appcontext
def analyses_run(limit: int | None) -> None:
    """Compute queued analyses now, in this process."""
    _run_analyses(limit)


def _version_or_fail(session, name: str, number: int | None):
    from data.registry import get_version

    version = get_version(session, name, number)
    if version is None:
        raise click.ClickException(f"no model {name!r}" + (f" version {number}" if number else ""))
    return version


@analyses.command("status")
@click.argument("name")
@click.option("--version", "number", type=int, default=None)
@with_appcontext
def analyses_status(name: str, number: int | None) -> None:
    """Show the analyses of a model version and their state."""
    from data.analysis_cache import status_for

    with get_db().session() as session:
        version = _version_or_fail(session, name, number)
        status = status_for(session, version.id)
    click.echo(f"{version.label}: {status['state']} ({status['ready']}/{status['total']} ready, "
               f"{status['failed']} failed)")
    for item in status["items"]:
        took = f"{item['duration_s']:.1f} s" if item["duration_s"] is not None else ""
        click.echo(f"  {item['kind']:24} {item['status']:8} {took:>9}  {item['error'] or ''}")


@analyses.command("retry")
@click.argument("name")
@click.option("--version", "number", type=int, default=None)
@click.option("--kind", default=None, help="Retry one analysis (default: every failed one).")
@with_appcontext
def analyses_retry(name: str, number: int | None, kind: str | None) -> None:
    """Queue failed analyses of a version again."""
    from data.analysis_cache import retry

    with get_db().session() as session:
        version = _version_or_fail(session, name, number)
        count = retry(session, version.id, kind)
    _audit("analysis.retry", version.label, detail=f"kind={kind or 'all failed'} count={count}")
    click.echo(f"queued {count} failed analyses of {version.label} again")


COMMANDS = [register, models, demo, analyses]
