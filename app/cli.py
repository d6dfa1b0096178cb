"""The ``glassbox`` command: database, users, and set-up for ``make run``.

Model, analysis and monitoring commands live in their own modules and are
added to the group here.
"""

from __future__ import annotations

import importlib
import sys

import click
from flask import current_app
from sqlalchemy import select

from app.security.permissions import ROLES
from app.security.passwords import generate_password
from app.security.users import (AccountError, count_active_admins, create_user, find_user, grant_role,
                                require_user, revoke_role, set_active, set_password)
from data.db import get_db
from data.models import User

ROLE_CHOICE = click.Choice(list(ROLES))
DEMO_USERS = (("admin", "admin"), ("analyst", "analyst"), ("viewer", "viewer"))
PASSWORD_FILE = "initial_passwords.txt"


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Glassbox: an inspectable dashboard for machine-learning models."""
    from app import create_app

    if ctx.resilient_parsing:
        return
    app = create_app({"GLASSBOX_RUN_JOBS": False})
    ctx.with_resource(app.app_context())


def _audit(action: str, target: str, detail: str | None = None) -> None:
    from app.audit import record_event

    record_event(action, target=target, detail=detail, username="cli")


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _read_password(password_stdin: bool, username: str) -> tuple[str, bool]:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _fail("no password on standard input")
        return password, False
    return generate_password(), True


# -- database ---------------------------------------------------------------

@cli.group()
def db() -> None:
    """Create and migrate the database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from data.migrate import upgrade

    upgrade(current_app.config["GLASSBOX_DATABASE_URL"])
    click.echo("database is up to date")


# -- users -------------------------------------------------------------------

@cli.group()
def user() -> None:
    """Create users and manage their roles."""


@user.command("create")
@click.argument("username")
@click.option("--role", type=ROLE_CHOICE, required=True, help="Role to grant.")
@click.option("--model", default=None, help="Limit the role to one model (default: all models).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_create(username: str, role: str, model: str | None, password_stdin: bool) -> None:
    """Create USERNAME with ROLE; prints a generated password unless --password-stdin."""
    password, generated = _read_password(password_stdin, username)
    try:
        with get_db().session() as s:
            create_user(s, username, password, role=role, model=model, granted_by="cli")
    except AccountError as exc:
        _fail(str(exc))
    _audit("user.create", username.lower(), f"role={role} model={model or '*'}")
    click.echo(f"created {username.lower()} ({role} on {model or 'all models'})")
    if generated:
        click.echo(f"password: {password}")


def _with_user(username: str, change) -> None:
    try:
        with get_db().session() as s:
            change(s, require_user(s, username))
    except AccountError as exc:
        _fail(str(exc))


@user.command("grant")
@click.argument("username")
@click.option("--role", type=ROLE_CHOICE, required=True)
@click.option("--model", default=None, help="Limit the grant to one model.")
def user_grant(username: str, role: str, model: str | None) -> None:
    """Grant ROLE to USERNAME (on one model or all)."""
    _with_user(username, lambda s, u: grant_role(s, u, role, model=model, granted_by="cli"))
    _audit("user.grant", username.lower(), f"role={role} model={model or '*'}")
    click.echo(f"granted {role} on {model or 'all models'} to {username.lower()}")


@user.command("revoke")
@click.argument("username")
@click.option("--role", type=ROLE_CHOICE, required=True)
@click.option("--model", default=None)
def user_revoke(username: str, role: str, model: str | None) -> None:
    """Revoke ROLE from USERNAME."""
    def change(s, u):
        if role == "admin" and model is None and count_active_admins(s) <= 1 and \
                any(g.role == "admin" and g.model_name is None for g in u.grants):
            raise AccountError("refusing to revoke the last active admin")
        if not revoke_role(s, u, role, model=model):
            raise AccountError(f"{u.username} does not hold {role} on {model or 'all models'}")
    _with_user(username, change)
    _audit("user.revoke", username.lower(), f"role={role} model={model or '*'}")
    click.echo(f"revoked {role} on {model or 'all models'} from {username.lower()}")


@user.command("disable")
@click.argument("username")
def user_disable(username: str) -> None:
    """Disable USERNAME; their sessions end at once."""
    _with_user(username, lambda s, u: set_active(u, False))
    _audit("user.disable", username.lower())
    click.echo(f"disabled {username.lower()}")


@user.command("enable")
@click.argument("username")
def user_enable(username: str) -> None:
    """Enable USERNAME again."""
    _with_user(username, lambda s, u: set_active(u, True))
    _audit("user.enable", username.lower())
    click.echo(f"enabled {username.lower()}")


@user.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_set_password(username: str, password_stdin: bool) -> None:
    """Set a new password for USERNAME (generated unless --password-stdin); ends their sessions."""
    password, generated = _read_password(password_stdin, username)
    _with_user(username, lambda s, u: set_password(u, password))
    _audit("user.password", username.lower())
    click.echo(f"password changed for {username.lower()}")
    if generated:
        click.echo(f"password: {password}")


@user.command("list")
def user_list() -> None:
    """List users, their grants and status."""
    with get_db().session() as s:
        for u in s.scalars(select(User).order_by(User.username)):
            grants = ", ".join(f"{g.role}@{g.model_name or '*'}" for g in u.grants) or "-"
            click.echo(f"{u.username:20} {'active' if u.is_active else 'disabled':9} {grants}")


# -- set-up for make run -----------------------------------------------------

@cli.command("bootstrap")
@click.option("--demo/--no-demo", default=True, help="Seed demo users and content.")
def bootstrap(demo: bool) -> None:
    """Migrate, create the admin (and demo users), seed demo content. Safe to run again."""
    from pathlib import Path

    from app.config import write_private_file
    from data.migrate import upgrade

    upgrade(current_app.config["GLASSBOX_DATABASE_URL"])
    instance = Path(current_app.config["GLASSBOX_INSTANCE_PATH"])
    created: list[tuple[str, str, str]] = []
    wanted = DEMO_USERS if demo else DEMO_USERS[:1]
    with get_db().session() as s:
        for username, role in wanted:
            if find_user(s, username) is None:
                password = generate_password()
                create_user(s, username, password, role=role, granted_by="bootstrap")
                created.append((username, role, password))
    for username, role, _ in created:
        _audit("user.create", username, f"role={role} (bootstrap)")
    password_file = instance / PASSWORD_FILE
    if created:
        previous = password_file.read_text() if password_file.exists() else ""
        lines = "".join(f"{u}\t{r}\t{p}\n" for u, r, p in created)
        write_private_file(password_file, previous + lines)
        click.echo("")
        click.echo("  New accounts (passwords shown once; also in %s, mode 0600):" % password_file)
        for username, role, password in created:
            click.echo(f"    {username:10} {role:8} {password}")
        click.echo("")
    else:
        click.echo(f"accounts exist already; their first passwords are in {password_file}")
    if demo:
        _seed_demo_content()


def _seed_demo_content() -> None:
    """Run each feature's demo seeding command when that feature is installed."""
    for module_name, function in (("app.cli_models", "seed_demo"), ("app.cli_monitoring", "seed_demo")):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        getattr(module, function)()


def _add_feature_commands() -> None:
    for module_name in ("app.cli_models", "app.cli_monitoring"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        for command in getattr(module, "COMMANDS", ()):
            cli.add_command(command)


_add_feature_commands()


def main() -> None:
    """Entry point of the ``glassbox`` console script."""
    cli(prog_name="glassbox")


if __name__ == "__main__":
    main()
