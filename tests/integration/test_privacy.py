"""Redacted events over a real system (``console.redact_events``): the agent says a phone number
(its greeting, from the configuration, so the words are known), the caller hears it, and the event
stream, the third parties' view, keeps ``[redacted]`` instead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import Settings, load_settings
from voxbus.media.file_call import FileCall
from voxbus.media.script import CallerScript, Line
from voxbus.media.wav import WavSource
from voxbus.privacy import REDACTED
from voxbus.schemas.events import TtsRequested
from voxbus.schemas.messages import TtsRequest
from voxbus.supervisors.system import System

from .helpers import of_call, stream_events, wait_all_serving

pytestmark = pytest.mark.integration
NUMBER = "020 7946 0958"


@pytest.fixture
def settings(test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("VOXBUS_CONSOLE__REDACT_EVENTS", "true")
    monkeypatch.setenv("VOXBUS_AGENT__GREETING", f"Hello, this is the clinic, our number is {NUMBER}.")
    return load_settings()


async def test_events_leave_every_process_redacted(system: System, client: Bus, caller) -> None:  # type: ignore[no-untyped-def]
    await wait_all_serving(client)
    spoken: list[TtsRequest] = []

    async def overhear(request: TtsRequest, _msg: Msg) -> None:
        spoken.append(request)

    await client.subscribe(subjects.TTS_SPEAK, TtsRequest, overhear)  # what TTS is asked to say
    wav, _ = caller(CallerScript(lines=[Line(text="Thank you.", pause_before_s=6.0)], tail_s=1.0))
    call = FileCall(client, WavSource(wav))
    await call.run()
    assert any("7946" in r.text for r in spoken if r.call_id == call.call_id)  # the caller hears it
    assert client.js is not None
    stored = [e for _seq, e in of_call(await stream_events(client.js), call.call_id)]
    greeting = next(e for e in stored if isinstance(e, TtsRequested))
    assert REDACTED in greeting.text and "7946" not in greeting.text
    leaked = [e.type for e in stored if any("7946" in text for text in words_in(e.model_dump()))]
    assert not leaked, leaked  # nor the LLM's answer repeating it (turn.metrics' agent_text: it did once)


def words_in(value: Any, key: str = "") -> Iterator[str]:
    """The text an event carries: its strings, not its numbers (a timestamp such as 1796157946.2
    holds the number's digits by chance) nor its identifiers."""
    if isinstance(value, str) and not (key.endswith("_id") or key == "source"):
        yield value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from words_in(item, name)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from words_in(item, key)
