"""The wire codec: pydantic models <-> msgpack maps.

Decoding is the boundary check: bytes that are not msgpack, or a map that fails its schema, raise
:class:`BadMessage` with a one-line reason, which the bus turns into an error event.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgpack
from pydantic import BaseModel, TypeAdapter, ValidationError

from voxbus.schemas.events import EVENT_ADAPTER, Event

M = TypeVar("M", bound=BaseModel)


class BadMessage(ValueError):
    """A message that could not be decoded into its schema."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"bad message on {subject}: {reason}")
        self.subject = subject
        self.reason = reason


def encode(message: BaseModel) -> bytes:
    return msgpack.packb(message.model_dump(mode="python"), use_bin_type=True)


def _unpack(subject: str, data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated exception types
        raise BadMessage(subject, f"not msgpack ({type(exc).__name__}: {exc})") from None


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "message"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"schema: {where}: {first['msg']}{more}"


def decode(subject: str, data: bytes, model: type[M]) -> M:
    raw = _unpack(subject, data)
    if not isinstance(raw, dict):
        raise BadMessage(subject, f"expected a map, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BadMessage(subject, f"{model.__name__} {_one_line(exc)}") from None


def decode_event(subject: str, data: bytes) -> Event:
    raw = _unpack(subject, data)
    if not isinstance(raw, dict):
        raise BadMessage(subject, f"expected a map, got {type(raw).__name__}")
    try:
        return EVENT_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise BadMessage(subject, f"event {_one_line(exc)}") from None


def decode_with(subject: str, data: bytes, adapter: TypeAdapter[Any]) -> Any:
    raw = _unpack(subject, data)
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        raise BadMessage(subject, _one_line(exc)) from None
