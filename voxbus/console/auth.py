"""Who may use the console: operators log in with a password (bcrypt hashes in the
configuration) and get a signed session cookie (itsdangerous, the signer Flask and Starlette use:
a session cannot be forged or stretched past ``console.session_hours`` without the server's key).

A viewer watches; a supervisor may also step in. With no users configured, ``voxbus up`` makes
one supervisor, ``admin``, whose password it writes to a 0600 file in the data directory: the
console works with no configuration and no password ever sits in a config file or a log.

Programs (a wallboard, a CRM) use an API token instead: ``Authorization: Bearer <token>``, whose
SHA-256 and role are in ``[console.tokens]``; they act as ``token:<name>``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Literal

import bcrypt
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from pydantic import BaseModel

from voxbus.console.settings import ConsoleToken, ConsoleUser

COOKIE = "voxbus_console"
# checked when the user name is unknown, so that a wrong name costs the same time as a wrong password
_DUMMY_HASH = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=10))


class Operator(BaseModel):
    name: str
    role: Literal["viewer", "supervisor"]

    @property
    def may_act(self) -> bool:
        return self.role == "supervisor"


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12)).decode()


def _private_file(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(content)


def session_key(auth_dir: Path) -> str:
    """The key that signs session cookies, made once per data directory (0600)."""
    path = auth_dir / "console-secret"
    if not path.exists():
        _private_file(path, secrets.token_hex(32) + "\n")
    return path.read_text().strip()


def default_users(auth_dir: Path) -> dict[str, ConsoleUser]:
    """The ``admin`` supervisor used when no users are configured; its password in a 0600 file."""
    path = auth_dir / "console-admin.txt"
    if not path.exists():
        _private_file(path, f"admin {secrets.token_urlsafe(12)}\n")
    _name, password = path.read_text().split()
    return {"admin": ConsoleUser(password_hash=hash_password(password), role="supervisor")}


def new_token() -> tuple[str, str]:
    """A fresh API token and its SHA-256 (the configuration keeps only the hash). A token is 256
    random bits: a fast hash is enough, unlike a password, which needs bcrypt."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


class ConsoleAuth:
    def __init__(
        self,
        users: dict[str, ConsoleUser],
        key: str,
        session_hours: float,
        tokens: dict[str, ConsoleToken] | None = None,
    ) -> None:
        self.users = users
        self.tokens = {t.token_sha256: (name, t.role) for name, t in (tokens or {}).items()}
        self.signer = URLSafeTimedSerializer(key, salt="voxbus-console-session")
        self.max_age_s = int(session_hours * 3600)

    def log_in(self, name: str, password: str) -> Operator | None:
        user = self.users.get(name)
        hashed = user.password_hash.encode() if user else _DUMMY_HASH
        ok = bcrypt.checkpw(password.encode(), hashed)
        return Operator(name=name, role=user.role) if ok and user else None

    def session(self, operator: Operator) -> str:
        return self.signer.dumps({"name": operator.name})

    def operator(self, cookie: str | None) -> Operator | None:
        """The operator a session cookie belongs to; None if absent, forged, expired, or the user
        is no longer configured (the role is read from the configuration, not the cookie)."""
        if not cookie:
            return None
        try:
            data = self.signer.loads(cookie, max_age=self.max_age_s)
        except (BadSignature, SignatureExpired):
            return None
        user = self.users.get(data.get("name", "")) if isinstance(data, dict) else None
        return Operator(name=data["name"], role=user.role) if user else None

    def bearer(self, authorization: str | None) -> Operator | None:
        """The program an ``Authorization: Bearer`` token belongs to, as ``token:<name>``."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        for known, (name, role) in self.tokens.items():
            if hmac.compare_digest(known, digest):
                return Operator(name=f"token:{name}", role=role)
        return None


class LoginThrottle:
    """Wrong passwords from one address: after ``attempts`` within ``window_s``, that address is
    refused for ``window_s`` without a bcrypt check (which costs CPU on purpose)."""

    def __init__(self, attempts: int = 5, window_s: float = 60.0) -> None:
        self.attempts, self.window_s = attempts, window_s
        self.failures: dict[str, list[float]] = {}

    def blocked(self, address: str, now: float) -> bool:
        recent = [t for t in self.failures.get(address, []) if now - t < self.window_s]
        if recent:
            self.failures[address] = recent
        else:
            self.failures.pop(address, None)
        return len(recent) >= self.attempts

    def failed(self, address: str, now: float) -> None:
        self.failures.setdefault(address, []).append(now)

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)
