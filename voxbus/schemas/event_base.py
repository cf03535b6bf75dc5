"""What every event is: a ``type``, a ``ts`` (epoch seconds, set by the publisher) and a
``source`` (the publishing role and id); a call event also names its call, turn and generation."""

from __future__ import annotations

from pydantic import Field

from voxbus.schemas.base import Message, now


class Event(Message):
    type: str
    ts: float = Field(default_factory=now)
    source: str = ""


class CallEvent(Event):
    call_id: str
    turn: int | None = None
    gen: int | None = None
