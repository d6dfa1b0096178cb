"""Monitoring commands: API tokens, simulated traffic, alert evaluation, scheduled reports, demo content.

``glassbox`` adds :data:`COMMANDS` to its group and calls :func:`seed_demo`
from ``glassbox bootstrap`` after the demo models are registered. The alert
and report commands are meant for cron, e.g.::

    */10 * * * *  glassbox alerts evaluate
    5 0 * * *     glassbox report --model fraud-imbalanced --period daily --out /srv/reports
    10 0 * * 1    glassbox report --model fraud-imbalanced --period weekly --out /srv/reports
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from data.db import get_db

#: The demo model that gets a month of simulated traffic (the imbalanced binary one).
DEMO_MODEL = "fraud-imbalanced"
DEMO_TOKEN_NAME = "demo client"
DEMO_DAYS = 30
DEMO_PER_DAY = 350


def _audit(action: str, target: str, detail: str | None = None) -> None:
    from app.audit import record_event

    record_event(action, target=target, detail=detail, username="cli")


# -- tokens ------------------------------------------------------------------------------

@click.group("token")
def token() -> None:
    """Create, list and revoke API tokens of the prediction-log API."""


@token.command("create")
@click.option("--model", "model_name", required=True, help="The model the token may log predictions for.")
@click.option("--name", default="cli", show_default=True, help="Who or what uses the token.")
@with_appcontext
def token_create(model_name: str, name: str) -> None:
    """Create a token for one model; it is shown once, only its hash is stored."""
    from data.monitoring import create_token

    try:
        with get_db().session() as s:
            row, text = create_token(s, model_name, name=name, created_by="cli")
            token_id, prefix = row.id, row.prefix
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    _audit("token.create", f"{model_name}:{prefix}", f"id={token_id} name={name}")
    click.echo(f"token {token_id} for {model_name} (shown once, store it safely):")
    click.echo(text)


@token.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def token_revoke(token_id: int) -> None:
    """Revoke the token with id TOKEN_ID (see `glassbox token list`)."""
    from data.monitoring import revoke_token

    try:
        with get_db().session() as s:
            row = revoke_token(s, token_id, revoked_by="cli")
            prefix = row.prefix
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    _audit("token.revoke", prefix, f"id={token_id}")
    click.echo(f"revoked token {token_id} ({prefix}…)")


@token.command("list")
@with_appcontext
def token_list() -> None:
    """List tokens: id, model, name, prefix, status, last use."""
    from data.monitoring import list_tokens

    with get_db().session() as s:
        rows = list_tokens(s)
    if not rows:
        click.echo("no API tokens")
    for t in rows:
        status = "active" if t["active"] else f"revoked {t['revoked_at']:%Y-%m-%d}"
        used = f"{t['last_used_at']:%Y-%m-%d %H:%M}" if t["last_used_at"] else "never"
        click.echo(f"{t['id']:>4}  {t['model']:24} {t['name']:20} {t['prefix']}…  {status:18} last used {used}")


# -- simulation ----------------------------------------------------------------------------

def run_simulation(model_name: str, *, days: int, drift: str | None, per_day: int, seed: int,
                   version: int | None = None, url: str | None = None, api_token: str | None = None):
    """Send simulated traffic for a model through the API (in process, or to ``url``); return the result."""
    from app.monitoring.simulator import flask_sender, http_sender, simulate
    from data.monitoring import create_token, revoke_token
    from data.registry import get_version, load_estimator, load_frames

    db = get_db()
    with db.session() as s:
        found = get_version(s, model_name, version)
        if found is None:
            raise click.ClickException(f"there is no model called {model_name!r}" if version is None
                                       else f"{model_name!r} has no version {version}")
        estimator, frames = load_estimator(found), load_frames(found)
    temporary = None
    if url is not None:
        if not api_token:
            raise click.ClickException("--url needs --token (create one with `glassbox token create`)")
        send = http_sender(url, api_token)
    else:
        if api_token is None:
            with db.session() as s:
                row, api_token = create_token(s, model_name, name="simulator (temporary)", created_by="cli")
                temporary = row.id
        send = flask_sender(current_app._get_current_object(), api_token)
    try:
        return simulate(found, estimator, frames, send, days=days, per_day=per_day, drift_feature=drift, seed=seed)
    finally:
        if temporary is not None:
            with db.session() as s:
                revoke_token(s, temporary, revoked_by="cli")


@click.command("simulate")
@click.option("--model", "model_name", required=True, help="Registered model to send traffic for.")
@click.option("--days", type=click.IntRange(1, 366), default=30, show_default=True, help="Days of traffic up to now.")
@click.option("--drift", "drift", default=None, help="Feature whose values shift from the middle of the period.")
@click.option("--per-day", type=click.IntRange(1, 100_000), default=400, show_default=True,
              help="Average predictions per weekday.")
@click.option("--version", type=int, default=None, help="Version number (default: latest).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same traffic).")
@click.option("--url", default=None, help="Post to a running Glassbox at this address instead of in process.")
@click.option("--token", "api_token", default=None, help="API token for --url.")
@with_appcontext
def simulate_command(model_name, days, drift, per_day, version, seed, url, api_token) -> None:
    """Send realistic predictions and delayed ground truth for MODEL through the prediction-log API."""
    from app.monitoring.simulator import SimulationError

    try:
        result = run_simulation(model_name, days=days, drift=drift, per_day=per_day, seed=seed, version=version,
                                url=url, api_token=api_token)
    except (SimulationError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{result.model} v{result.version}: {result.accepted:,} predictions stored "
               f"({result.duplicates:,} duplicates), {result.labels_accepted:,} labels, "
               f"{result.alerts} alert(s) fired"
               + (f"; {result.drift_feature} drifts from {result.drift_start:%Y-%m-%d}" if result.drift_feature
                  else ""))


# -- alerts --------------------------------------------------------------------------------------

@click.group("alerts")
def alerts() -> None:
    """Evaluate alert rules and deliver notifications (run `alerts evaluate` from cron)."""


@alerts.command("evaluate")
@click.option("--model", "model_name", default=None, help="Only this model's rules.")
@with_appcontext
def alerts_evaluate(model_name: str | None) -> None:
    """Evaluate every enabled rule, record new events, and send pending notifications."""
    from data.alerts import evaluate_rules
    from data.notify import deliver_pending

    db = get_db()
    fired = evaluate_rules(db, model_name=model_name)
    for event in fired:
        click.echo(f"fired: {event.message}")
    counts = deliver_pending(db)
    click.echo(f"{len(fired)} new alert(s); notifications sent {counts['sent']}, to retry {counts['retry']}, "
               f"given up {counts['failed']}")


@alerts.command("list")
@click.option("--model", "model_name", default=None, help="Only this model.")
@with_appcontext
def alerts_list(model_name: str | None) -> None:
    """List alert rules."""
    from data.alerts import list_rules

    with get_db().session() as s:
        rules = list_rules(s)
    for r in rules:
        if model_name is None or r["model"] == model_name:
            click.echo(f"{r['id']:>4}  {r['model']:24} {'on ' if r['enabled'] else 'off'}  {r['name']}: {r['text']}")


# -- reports -------------------------------------------------------------------------------------------

@click.command("report")
@click.option("--model", "model_name", required=True, help="The model to report on.")
@click.option("--period", type=click.Choice(["daily", "weekly"]), required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write the HTML file to (created if missing).")
@click.option("--end", "end_day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Period ends at 00:00 UTC of this day (default: today).")
@click.option("--version", type=int, default=None, help="Version number (default: latest).")
@with_appcontext
def report_command(model_name: str, period: str, out_dir: Path, end_day, version) -> None:
    """Write a self-contained HTML report of MODEL for the last complete day or week (cron-ready)."""
    from data.reports import ReportError, generate_report, report_content

    try:
        made = generate_report(get_db(), model_name, period=period, created_by="cli", version=version,
                               end=end_day.date() if end_day else None)
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None
    with get_db().session() as s:
        _, filename, text = report_content(s, made["id"])
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / filename
    path.write_text(text, encoding="utf-8")
    _audit("report.generate", f"{model_name}:{made['id']}", f"{period} {made['start']:%Y-%m-%d}")
    click.echo(f"wrote {path} ({made['size_bytes'] / 1e6:.1f} MB)")


COMMANDS = (token, simulate_command, alerts, report_command)


# -- demo content for `glassbox bootstrap` -----------------------------------------------------------------

def seed_demo() -> None:
    """Give the imbalanced demo model a token, a drift alert rule, a month of traffic, a comment and a report.

    Idempotent: each piece is made only when missing, so running bootstrap again changes nothing.
    """
    from app.monitoring.simulator import default_drift_feature
    from data import monitoring as M
    from data.alerts import create_rule
    from data.registry import get_version, load_estimator

    db = get_db()
    with db.session() as s:
        version = get_version(s, DEMO_MODEL)
        if version is None:
            click.echo(f"monitoring demo skipped: no model called {DEMO_MODEL}")
            return
        model_id = version.model_id
        drift = default_drift_feature(load_estimator(version), list(version.features), list(version.feature_meta))
        has_token = s.scalar(select(M.ApiToken.id).where(M.ApiToken.model_id == model_id,
                                                         M.ApiToken.name == DEMO_TOKEN_NAME)) is not None
        has_rules = s.scalar(select(M.AlertRule.id).where(M.AlertRule.model_id == model_id)) is not None
        logged = M.state_of(s, version.id)["n_logged"]
    new_token = None
    if not has_token:
        with db.session() as s:
            row, new_token = M.create_token(s, DEMO_MODEL, name=DEMO_TOKEN_NAME, created_by="bootstrap")
            prefix = row.prefix
        _audit("token.create", f"{DEMO_MODEL}:{prefix}", "demo client (bootstrap)")
        click.echo(f"  API token for {DEMO_MODEL} (shown once; see docs/api.md):")
        click.echo(f"    {new_token}")
    if not has_rules:
        with db.session() as s:
            create_rule(s, model_name=DEMO_MODEL, name=f"Input drift in {drift}", metric=f"psi:{drift}",
                        comparison=">", threshold=0.25, window=1, bucket="day", min_samples=100,
                        created_by="bootstrap")
            create_rule(s, model_name=DEMO_MODEL, name="ROC AUC below 0.85", metric="roc_auc", comparison="<",
                        threshold=0.85, window=3, bucket="day", min_samples=300, created_by="bootstrap")
    if logged == 0:
        result = run_simulation(DEMO_MODEL, days=DEMO_DAYS, drift=drift, per_day=DEMO_PER_DAY, seed=7,
                                api_token=new_token)
        click.echo(f"monitoring demo: {result.accepted:,} predictions and {result.labels_accepted:,} labels for "
                   f"{DEMO_MODEL}; {drift} drifts from {result.drift_start:%Y-%m-%d}; "
                   f"{result.alerts} alert(s) fired")
        _seed_comment(model_id, version.id, result.drift_start)
    else:
        click.echo(f"monitoring demo: {DEMO_MODEL} has {logged:,} logged predictions already")
    _seed_report(model_id)


def _seed_comment(model_id: int, version_id: int, drift_start: dt.datetime | None) -> None:
    from app.security.users import find_user
    from data import monitoring as M

    db = get_db()
    with db.session() as s:
        if s.scalar(select(M.Comment.id).where(M.Comment.model_id == model_id)) is not None:
            return
        author = "viewer" if find_user(s, "viewer") is not None else "admin"
        start = (drift_start or M.utcnow() - dt.timedelta(days=14)).replace(hour=0, minute=0, second=0,
                                                                          microsecond=0)
        M.add_comment(s, model_id=model_id, version_id=version_id, author=author, start=start,
                      end=start + dt.timedelta(days=3), chart="timeline",
                      text="The partner channel went live this week, so the transaction mix changed. Is the "
                           "drop in ROC AUC that, or a problem with the new feed? Please check before Friday.")


def _seed_report(model_id: int) -> None:
    from data.monitoring import run_analysis_now
    from data.registry import ModelRecord
    from data.reports import ReportError, generate_report, model_has_report

    db = get_db()
    with db.session() as s:
        if model_has_report(s, model_id, "weekly"):
            return
        version_id = s.get(ModelRecord, model_id).latest.id
    # The report shows test metrics and influence: compute the two cheap analyses behind them now.
    for kind in ("metrics_test", "impurity_importance"):
        run_analysis_now(db, version_id, kind)
    try:
        made = generate_report(db, DEMO_MODEL, period="weekly", created_by="bootstrap", include_today=True)
    except ReportError as exc:
        click.echo(f"monitoring demo: no weekly report yet ({exc})")
        return
    click.echo(f"monitoring demo: weekly report {made['filename']} is on the Reports page")
