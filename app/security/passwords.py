"""Password hashing with argon2id (argon2-cffi), rehashed when parameters change."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# RFC 9106 "second recommended" profile, sized for a 2-core web worker.
_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=2)
MIN_PASSWORD_LENGTH = 12
# Verified against when the user does not exist, so both paths cost the same.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """Return an argon2id hash of ``password``."""
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Return whether ``password`` matches; take the same time when there is no user."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Return whether the hash was made with other parameters than the current ones."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def password_problem(password: str, *, username: str = "") -> str | None:
    """Return why ``password`` is too weak, or None if it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Passwords must have at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 1024:
        return "Passwords must have at most 1024 characters."
    if username and username.lower() in password.lower():
        return "The password must not contain the username."
    if len(set(password)) < 5:
        return "The password is too repetitive."
    return None


def generate_password() -> str:
    """Return a random password for a new account (printed once)."""
    return secrets.token_urlsafe(15)
