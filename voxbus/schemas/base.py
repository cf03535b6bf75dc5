"""The base of every message on the bus.

Every message is a pydantic model, serialised as a msgpack map. ``v`` is the schema version of the
message family: a consumer that sees a version it does not know rejects the message with an error
event instead of guessing.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


def now() -> float:
    """Wall-clock time in seconds since the epoch, the time base of every timestamp on the bus."""
    return time.time()


class Message(BaseModel):
    """Base of every bus message: strict about unknown fields so that typos surface as errors."""

    # bytes (audio) travel as msgpack bin; in JSON (schemas, `voxbus events --json`) as base64
    model_config = ConfigDict(extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    v: Literal[1] = Field(default=SCHEMA_VERSION, description="schema version")


class Accepted(Message):
    """Reply to a queue-group request: which worker took the work."""

    kind: Literal["accepted"] = "accepted"
    worker_id: str
    role: str


class Rejected(Message):
    """Reply to a request that could not be served; ``reason`` says why in one line."""

    kind: Literal["rejected"] = "rejected"
    worker_id: str
    reason: str
