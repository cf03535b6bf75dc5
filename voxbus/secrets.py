"""Secrets (API keys, webhook signing keys) come from an environment variable or a file, never
from the configuration in clear, and are never logged."""

from __future__ import annotations

import os
from pathlib import Path


class SecretMissing(ValueError):
    """The named variable or file holds no secret; the message says which and why."""


def read_secret(what: str, env: str | None = None, file: Path | None = None) -> str:
    """The secret in environment variable ``env`` or else in ``file`` (stripped)."""
    if env:
        value = os.environ.get(env, "")
        if not value:
            raise SecretMissing(f"{what}: environment variable {env} is empty or unset")
        return value
    if file is None:
        raise SecretMissing(f"{what}: name an environment variable or a file")
    try:
        value = file.read_text().strip()
    except OSError as exc:
        raise SecretMissing(f"{what}: file {file}: {exc.strerror}") from None
    if not value:
        raise SecretMissing(f"{what}: file {file} is empty")
    return value
