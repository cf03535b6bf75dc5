"""JSON Schema export of every bus message and event, for third parties building on voxbus."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from voxbus.schemas import base, messages
from voxbus.schemas.events import ALL_EVENTS, EVENT_ADAPTER

MESSAGES: tuple[type[BaseModel], ...] = (
    messages.AudioFrame,
    messages.ChatMessage,
    messages.CallStart,
    messages.SttSession,
    messages.SttVocabulary,
    messages.SttAgentSaid,
    messages.LlmRequest,
    messages.LlmChunk,
    messages.TtsRequest,
    messages.Cancel,
    messages.DialRequest,
    messages.CallControl,
    messages.OperatorCommand,
    messages.Heartbeat,
    messages.GatewayLoad,
    messages.CallState,
    base.Accepted,
    base.Rejected,
)


def all_models() -> dict[str, type[BaseModel]]:
    named: dict[str, type[BaseModel]] = {m.__name__: m for m in MESSAGES}
    named.update({e.__name__: e for e in ALL_EVENTS})
    return named


def write_schemas(out: Path) -> list[Path]:
    """One ``<Model>.json`` per message and event, plus ``Event.json``, the tagged union."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in all_models().items():
        path = out / f"{name}.json"
        path.write_text(json.dumps(model.model_json_schema(mode="validation"), indent=2))
        written.append(path)
    union = out / "Event.json"
    union.write_text(json.dumps(EVENT_ADAPTER.json_schema(), indent=2))
    written.append(union)
    return written
