"""The glassbox command: users, grants, the database and bootstrap."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner

from app.cli import cli
from app.security.users import find_user
from data.db import Database
from data.models import AuditEvent


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("GLASSBOX_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("GLASSBOX_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    runner = CliRunner()
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    return runner, Database(f"sqlite:///{tmp_path / 'cli.db'}"), tmp_path


def _run(runner, args, stdin=None):
    result = runner.invoke(cli, args, input=stdin)
    return result


def test_user_create_with_password_stdin_and_grants(env):
    runner, db, _ = env
    result = _run(runner, ["user", "create", "Carol", "--role", "analyst", "--model", "iris", "--password-stdin"],
                  "a-Very-good-pass-42\n")
    assert result.exit_code == 0, result.output
    assert "password:" not in result.output
    with db.session() as s:
        user = find_user(s, "carol")
        assert [(g.role, g.model_name) for g in user.grants] == [("analyst", "iris")]
        version = user.session_version
    assert _run(runner, ["user", "grant", "carol", "--role", "viewer"]).exit_code == 0
    assert _run(runner, ["user", "revoke", "carol", "--role", "analyst", "--model", "iris"]).exit_code == 0
    assert _run(runner, ["user", "disable", "carol"]).exit_code == 0
    with db.session() as s:
        user = find_user(s, "carol")
        assert [(g.role, g.model_name) for g in user.grants] == [("viewer", None)]
        assert not user.is_active and user.session_version > version
    assert _run(runner, ["user", "enable", "carol"]).exit_code == 0
    with db.session() as s:
        actions = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions == ["user.create", "user.grant", "user.revoke", "user.disable", "user.enable"]


@pytest.mark.parametrize("args, stdin, message", [
    (["user", "create", "x", "--role", "viewer", "--password-stdin"], "short\n", "Usernames"),
    (["user", "create", "dave", "--role", "viewer", "--password-stdin"], "short\n", "at least 12"),
    (["user", "create", "dave", "--role", "boss", "--password-stdin"], "a-Very-good-pass-42\n", "boss"),
    (["user", "grant", "nobody", "--role", "viewer"], None, "no user called"),
    (["user", "create", "dave", "--role", "viewer", "--password-stdin"], "\n", "no password"),
])
def test_bad_input_gets_a_clear_message(env, args, stdin, message):
    runner, _, _ = env
    result = _run(runner, args, stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_last_admin_cannot_be_revoked(env):
    runner, _, _ = env
    _run(runner, ["user", "create", "root", "--role", "admin", "--password-stdin"], "a-Very-good-pass-42\n")
    result = _run(runner, ["user", "revoke", "root", "--role", "admin"])
    assert result.exit_code != 0 and "last active admin" in result.output


def test_generated_password_is_printed_once(env):
    runner, _, _ = env
    result = _run(runner, ["user", "create", "erin", "--role", "viewer"])
    assert result.exit_code == 0 and result.output.count("password: ") == 1


def test_bootstrap_creates_admin_and_demo_users_once(env):
    runner, db, tmp = env
    first = _run(runner, ["bootstrap", "--no-demo"])
    assert first.exit_code == 0, first.output
    assert "admin" in first.output
    password_file = tmp / "instance" / "initial_passwords.txt"
    assert stat.S_IMODE(os.stat(password_file).st_mode) == 0o600
    lines = password_file.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["admin"]
    password = lines[0].split("\t")[2]
    assert len(password) >= 16 and password in first.output
    second = _run(runner, ["bootstrap", "--no-demo"])
    assert second.exit_code == 0 and password not in second.output
    assert password_file.read_text().splitlines() == lines
