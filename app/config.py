"""Settings from ``GLASSBOX_*`` environment variables.

Development generates a secret key into the instance folder (0600) so every
gunicorn worker shares it; production refuses to start without a strong one.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_SECRET_LENGTH = 32
WEAK_SECRETS = {"dev", "secret", "changeme", "change-me", "you-will-never-guess", "development", "glassbox"}


class ConfigError(RuntimeError):
    """The settings are unsafe or inconsistent; the app must not start."""


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def write_private_file(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    os.chmod(path, 0o600)


def _dev_secret(instance: Path) -> str:
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    try:
        # O_EXCL: if two workers race, the loser reads the winner's key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def load_config(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the Flask config mapping built from the environment and ``overrides``."""
    env = dict(os.environ if env is None else env)
    overrides = dict(overrides or {})
    mode = overrides.get("GLASSBOX_ENV") or env.get("GLASSBOX_ENV", "development")
    if mode not in {"production", "development"}:
        raise ConfigError(f"GLASSBOX_ENV must be 'production' or 'development', got {mode!r}")
    instance = Path(overrides.get("GLASSBOX_INSTANCE_PATH") or env.get("GLASSBOX_INSTANCE_PATH")
                    or PROJECT_ROOT / "instance").resolve()
    instance.mkdir(parents=True, exist_ok=True)

    secret = overrides.get("SECRET_KEY") or env.get("GLASSBOX_SECRET_KEY", "")
    if mode == "production":
        if len(secret) < MIN_SECRET_LENGTH or secret.lower() in WEAK_SECRETS or len(set(secret)) < 10:
            raise ConfigError(
                "GLASSBOX_SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_LENGTH} characters in production "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
    elif not secret:
        secret = _dev_secret(instance)

    https = _bool(env.get("GLASSBOX_HTTPS"), mode == "production")
    session_hours = min(_int(env, "GLASSBOX_SESSION_HOURS", 8), 8)
    config: dict[str, Any] = {
        "GLASSBOX_ENV": mode,
        "GLASSBOX_INSTANCE_PATH": str(instance),
        "GLASSBOX_DATABASE_URL": env.get("GLASSBOX_DATABASE_URL") or f"sqlite:///{instance / 'glassbox.db'}",
        "GLASSBOX_ARTIFACT_DIR": env.get("GLASSBOX_ARTIFACT_DIR") or str(instance / "artifacts"),
        "GLASSBOX_RUN_JOBS": _bool(env.get("GLASSBOX_RUN_JOBS"), True),
        "GLASSBOX_MAX_UPLOAD_BYTES": _int(env, "GLASSBOX_MAX_UPLOAD_MB", 200) * 1024 * 1024,
        "GLASSBOX_LOGIN_LIMIT_IP": _int(env, "GLASSBOX_LOGIN_LIMIT_IP", 20),
        "GLASSBOX_LOGIN_LIMIT_USER": _int(env, "GLASSBOX_LOGIN_LIMIT_USER", 5),
        "GLASSBOX_LOGIN_WINDOW_SECONDS": _int(env, "GLASSBOX_LOGIN_WINDOW_SECONDS", 300),
        "GLASSBOX_TRUSTED_PROXIES": _int(env, "GLASSBOX_TRUSTED_PROXIES", 0),
        "GLASSBOX_ADMIN_CONTACT": env.get("GLASSBOX_ADMIN_CONTACT", "your Glassbox administrator"),
        "SECRET_KEY": secret,
        "SESSION_COOKIE_NAME": "glassbox_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "PERMANENT_SESSION_LIFETIME": dt.timedelta(hours=session_hours),
        "REMEMBER_COOKIE_DURATION": dt.timedelta(hours=session_hours),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": session_hours * 3600,
        "WTF_CSRF_SSL_STRICT": https,
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        "MAX_CONTENT_LENGTH": _int(env, "GLASSBOX_MAX_UPLOAD_MB", 200) * 1024 * 1024 + 1024 * 1024,
        "PROPAGATE_EXCEPTIONS": False,
        "TESTING": False,
    }
    config.update(overrides)
    return config
