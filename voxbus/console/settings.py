"""``[console]``: the operator console's address, its users, retention and cost figures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

# spoken card numbers, phone numbers and e-mail addresses, as whisper writes them
DEFAULT_REDACT = [
    r"\b\d(?:[ -]?\d){12,18}\b",  # 13 to 19 digits, spaced or not: a card number
    r"(?<!\w)\+?\d(?:[ .-]?\d){8,14}\b",  # nine digits or more: not a date
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
]


class ConsoleUser(BaseModel):
    """One operator: a bcrypt hash of their password (``voxbus console hash-password``) and what
    they may do: a viewer watches; a supervisor may also step in."""

    password_hash: str = Field(pattern=r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
    role: Literal["viewer", "supervisor"] = "viewer"


class ConsoleToken(BaseModel):
    """An API token for a program (a wallboard, a CRM): the SHA-256 of the token, never the token
    (``voxbus console --new-token NAME`` prints both once), and what its holder may do."""

    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Literal["viewer", "supervisor"] = "viewer"


class ConsoleSettings(BaseModel):
    enabled: bool = Field(default=True, description="voxbus up serves the console")
    address: str = Field(default="127.0.0.1", description="where the web console listens")
    port: int = Field(default=8089, ge=0, le=65535, description="0: any free port")
    users: dict[str, ConsoleUser] = Field(
        default_factory=dict,
        description="operators by name; none: voxbus up creates a supervisor 'admin' whose password "
        "it writes, 0600, to <data_dir>/auth/console-admin.txt",
    )
    tokens: dict[str, ConsoleToken] = Field(
        default_factory=dict,
        description="API tokens by name, sent as 'Authorization: Bearer <token>'; acts as 'token:<name>'",
    )
    store: Path | None = Field(default=None, description="the call records; unset: <data_dir>/console.sqlite")
    retention_days: float = Field(
        default=30.0, gt=0, description="transcripts, records and events older than this are erased"
    )
    redact: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REDACT),
        description="regular expressions whose matches are replaced by [redacted] in stored transcripts",
    )
    listen_in: bool = Field(
        default=True,
        description="supervisors may listen to a live call (both sides) in the browser; the console's "
        "bus credential then reads the calls' audio. Off: it never can",
    )
    redact_events: bool = Field(
        default=False,
        description="also redact the events as they are published (the stream, third parties and the "
        "agent's LLM then see [redacted]: a number the caller says cannot reach a tool)",
    )
    price_per_core_hour: float = Field(default=0.04, ge=0, description="for the cost per call KPI")
    session_hours: float = Field(default=12.0, gt=0, description="how long a login lasts")

    @field_validator("redact")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redact pattern {pattern!r} is not a regular expression: {exc}") from exc
        return patterns

    @field_validator("users", "tokens")
    @classmethod
    def _names(cls, users: dict[str, BaseModel]) -> dict[str, BaseModel]:
        for name in users:
            if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name):
                raise ValueError(f"console name {name!r} (a user or a token): letters, digits and _.@- only")
        return users
