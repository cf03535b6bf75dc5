"""Garbage and schema-invalid payloads for a bus subject, made from one valid message of its schema:
random bytes, msgpack that is not a map, truncated or deeply nested msgpack, fields dropped, of the
wrong type or with hostile values, audio frames of the wrong size, and oversized payloads.
Deterministic for a seed; none of them passes the schema (checked by the unit tests)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import msgpack
from pydantic import BaseModel

from tests.unit.samples import SAMPLES
from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage, decode, decode_event
from voxbus.schemas import events as ev
from voxbus.schemas import messages as m
from voxbus.schemas.event_base import Event

NATS_MAX_PAYLOAD = 1024 * 1024  # the server's default max_payload
HOSTILE: tuple[Any, ...] = (
    None,
    -1,
    2**63,
    -(2**63),
    1e308,
    float("nan"),
    "",
    "x" * 100_000,
    "\x00\ud7ff\n\r",
    b"\xff" * 3,
    [],
    {},
    [[[[[]]]]],
    {"$gt": ""},
    True,
)
Raw = dict[str, Any]


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def random_bytes(rng: random.Random, _valid: Raw) -> bytes:
    return rng.randbytes(rng.choice((0, 1, 7, 320, 641, 4096)))


def not_a_map(rng: random.Random, valid: Raw) -> bytes:
    return _pack(rng.choice((list(valid.values()), 42, "call", None, True, 3.5)))


def truncated(rng: random.Random, valid: Raw) -> bytes:
    data = _pack(valid)
    return data[: rng.randrange(1, len(data))]


def nested_deep(rng: random.Random, _valid: Raw) -> bytes:
    depth = rng.choice((200, 2000, 20000))
    return b"\x91" * depth + b"\xc0"  # arrays of one element, nested, around a nil


def field_dropped(rng: random.Random, valid: Raw) -> bytes:
    out = dict(valid)
    del out[rng.choice(sorted(out))]
    return _pack(out)


def wrong_type(rng: random.Random, valid: Raw) -> bytes:
    out = dict(valid)
    key = rng.choice(sorted(out))
    original = out[key]
    out[key] = rng.choice([v for v in HOSTILE if type(v) is not type(original)])
    return _pack(out)


def hostile_values(rng: random.Random, valid: Raw) -> bytes:
    out = dict(valid)
    for key in rng.sample(sorted(out), k=min(len(out), rng.randint(1, 3))):
        out[key] = rng.choice(HOSTILE)
    return _pack(out)


def wrong_size_audio(rng: random.Random, valid: Raw) -> bytes:
    out = dict(valid)
    if "pcm" not in out:
        return hostile_values(rng, valid)
    out["pcm"] = bytes(rng.choice((0, 1, 319, 321, 639, 641, 1280, 64_000)))
    return _pack(out)


def oversized(rng: random.Random, valid: Raw) -> bytes:
    out = dict(valid)
    key = rng.choice(sorted(out))
    out[key] = rng.randbytes(rng.choice((200_000, NATS_MAX_PAYLOAD - 1024)))
    return _pack(out)


KINDS: tuple[Callable[[random.Random, Raw], bytes], ...] = (
    random_bytes,
    not_a_map,
    truncated,
    nested_deep,
    field_dropped,
    wrong_type,
    hostile_values,
    wrong_size_audio,
)


def garbage(
    valid: BaseModel,
    count: int,
    seed: int = 7,
    oversized_every: int = 100,
    accepts: Callable[[bytes], bool] | None = None,
) -> list[tuple[str, bytes]]:
    """``count`` payloads that the subject's schema refuses (``accepts``: default, decoding into
    ``type(valid)``, or into any event for an event): (the kind, the payload); one in
    ``oversized_every`` is near the server's payload limit. One that happens to pass is drawn again."""
    rng = random.Random(seed)
    raw = valid.model_dump(mode="python")
    if accepts is None:
        accepts = _is_an_event if isinstance(valid, Event) else (lambda data: _decodes(data, type(valid)))
    out: list[tuple[str, bytes]] = []
    while len(out) < count:
        n = len(out)
        kind = (
            oversized if oversized_every and n % oversized_every == oversized_every - 1 else rng.choice(KINDS)
        )
        payload = kind(rng, raw)
        if not accepts(payload):
            out.append((kind.__name__, payload))
    return out


def _decodes(data: bytes, model: type[BaseModel]) -> bool:
    try:
        decode("fuzz", data, model)
    except BadMessage:
        return False
    return True


def sample(kind: type) -> object:
    return next(s for s in SAMPLES if type(s) is kind)


def subject_templates(call_id: str) -> list[tuple[str, object, bool]]:
    """(subject, a valid message of its schema, whether it is a request) for every subject a
    process of voxbus subscribes to during a call."""
    event = ev.SttFinal(call_id=call_id, text="what is it", start_ms=0, end_ms=900, compute_s=0.3)
    return [
        (subjects.AGENT_CALLS, sample(m.CallStart), True),
        (subjects.STT_SESSIONS, sample(m.SttSession), True),
        (subjects.LLM_GENERATE, sample(m.LlmRequest), True),
        (subjects.TTS_SPEAK, sample(m.TtsRequest), True),
        (subjects.SIP_DIAL, sample(m.DialRequest), True),
        (subjects.tts_worker("tts-1"), sample(m.TtsRequest), False),
        (subjects.cancel(call_id), sample(m.Cancel), False),
        (subjects.audio_in(call_id), sample(m.AudioFrame), False),
        (subjects.audio_out(call_id), sample(m.AudioFrame), False),
        (subjects.control(call_id), sample(m.CallControl), False),
        (subjects.operator(call_id), sample(m.OperatorCommand), False),
        (subjects.llm_chunks(call_id), sample(m.LlmChunk), False),
        (subjects.call_event(call_id, "stt.final"), event, False),
        (subjects.system_event("worker.started"), sample(ev.WorkerStarted), False),
        (subjects.health("llm", "llm-1"), sample(m.Heartbeat), False),
    ]


def _is_an_event(data: bytes) -> bool:
    try:
        decode_event("fuzz", data)
    except BadMessage:
        return False
    return True
