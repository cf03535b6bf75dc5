"""The subject catalogue: every NATS subject voxbus uses, in one place.

This module is the public contract (see README, "Subjects"). Call ids are single subject tokens:
``[A-Za-z0-9_-]``, at most 64 characters.
"""

from __future__ import annotations

import re

PREFIX = "voxbus"

# queue groups: a free worker of the role takes the request
AGENT_CALLS = f"{PREFIX}.agent.calls"
STT_SESSIONS = f"{PREFIX}.stt.sessions"
LLM_GENERATE = f"{PREFIX}.llm.generate"
TTS_SPEAK = f"{PREFIX}.tts.speak"
SIP_DIAL = f"{PREFIX}.sip.dial"
# a gateway's call count, for the machine's other gateways (admission control across shards)
SIP_LOAD = f"{PREFIX}.sip.load"

# the JetStream stream that records every event, and the key-value bucket of call state
EVENTS_STREAM = "VOXBUS_EVENTS"
EVENTS_STREAM_SUBJECTS = [f"{PREFIX}.call.*.evt.>", f"{PREFIX}.sys.evt.>"]
CALL_STATE_BUCKET = "voxbus_calls"

ALL_CALL_EVENTS = f"{PREFIX}.call.*.evt.>"
ALL_SYSTEM_EVENTS = f"{PREFIX}.sys.evt.>"
ALL_HEALTH = f"{PREFIX}.sys.health.>"

_CALL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class BadCallId(ValueError):
    pass


def sip_load(machine: str) -> str:
    """Where the gateways of ``machine`` say how many calls they hold."""
    return f"{SIP_LOAD}.{machine}"


def check_call_id(call_id: str) -> str:
    if not _CALL_ID.match(call_id):
        raise BadCallId(f"call id {call_id!r} must match [A-Za-z0-9_-]{{1,64}}")
    return call_id


def audio_in(call_id: str) -> str:
    return f"{PREFIX}.call.{call_id}.audio.in"


def stt_vocabulary(call_id: str) -> str:
    """Words learnt during a call that its caller may say, to the STT session of the call."""
    return f"{PREFIX}.call.{call_id}.stt.vocabulary"


def stt_said(call_id: str) -> str:
    """What the agent has just said to the caller, to the STT session of the call."""
    return f"{PREFIX}.call.{call_id}.stt.said"


def audio_out(call_id: str) -> str:
    return f"{PREFIX}.call.{call_id}.audio.out"


def control(call_id: str) -> str:
    return f"{PREFIX}.call.{call_id}.ctl"


def operator(call_id: str) -> str:
    """Requests from the operator console to the call actor (hang up, transfer, say, guide)."""
    return f"{PREFIX}.call.{call_id}.op"


def cancel(call_id: str) -> str:
    return f"{PREFIX}.call.{call_id}.cancel"


def llm_chunks(call_id: str) -> str:
    return f"{PREFIX}.call.{call_id}.llm"


def call_event(call_id: str, event_type: str) -> str:
    return f"{PREFIX}.call.{call_id}.evt.{event_type}"


def call_events(call_id: str) -> str:
    return f"{PREFIX}.call.{call_id}.evt.>"


def system_event(event_type: str) -> str:
    return f"{PREFIX}.sys.evt.{event_type}"


def tts_worker(worker_id: str) -> str:
    return f"{PREFIX}.tts.worker.{worker_id}"


def health(role: str, worker_id: str) -> str:
    return f"{PREFIX}.sys.health.{role}.{worker_id}"


def tool(name: str) -> str:
    return f"{PREFIX}.tool.{name}"


def is_event(subject: str) -> bool:
    """A subject of the events stream (``voxbus.call.<id>.evt.…`` or ``voxbus.sys.evt.…``): what is
    published there is a JetStream publish, whose reply only the stream may send."""
    parts = subject.split(".")
    if parts[0] != PREFIX:
        return False
    return parts[1:3] == ["sys", "evt"] or (parts[1:2] == ["call"] and parts[3:4] == ["evt"])


def call_id_of(subject: str) -> str | None:
    """The call id inside a ``voxbus.call.<id>.…`` subject, else None."""
    parts = subject.split(".")
    if len(parts) >= 3 and parts[0] == PREFIX and parts[1] == "call":
        return parts[2]
    return None
