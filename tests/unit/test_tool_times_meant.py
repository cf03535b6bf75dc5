"""A small model that heard "Thursday at four" and wrote 14:00: the tool is sent the caller's
time (16:00), and ``tool.called`` shows both what was sent and the model's guess."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from tests.unit.test_heard import MOVE
from tests.unit.test_tool_flow import FakeOut
from voxbus.actors.call.generation import Generation
from voxbus.actors.call.tool_use import ToolUse
from voxbus.actors.tools import ToolCall
from voxbus.config import AgentSettings
from voxbus.schemas.events import ToolCalled
from voxbus.tools.contract import ToolSpec
from voxbus.tools.heard import Said
from voxbus.tools.invoke import CallContext

RESCHEDULE = ToolSpec(name="reschedule", description="Move an appointment", parameters=MOVE)


class Calendar:
    """Stands in for the NATS client: the tool's requests, each answered ok."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def request(self, subject: str, payload: bytes, timeout: float) -> SimpleNamespace:
        self.sent.append(json.loads(payload)["arguments"])
        return SimpleNamespace(data=b'{"ok": true, "result": "moved"}', headers=None)


async def called_with(turn: str, time: str) -> tuple[list[ToolCalled], list[dict[str, Any]]]:
    calendar, out, finished = Calendar(), FakeOut(), asyncio.Event()
    tools = ToolUse(
        SimpleNamespace(nc=calendar),  # type: ignore[arg-type]
        out,  # type: ignore[arg-type]
        AgentSettings(),
        CallContext(call_id="c"),
        lambda _done: finished.set(),
    )
    tools.specs = {"reschedule": RESCHEDULE}
    generation = Generation.start(1, 1, "answer", 12, 0.0)
    generation.user_text = turn
    call = ToolCall("reschedule", {"appointment_id": 12, "day": "Thursday", "time": time})
    words = f"Hello, I'd like to move my appointment. {turn}"
    tools.start(generation, call, said=Said(words, words))
    await asyncio.wait_for(finished.wait(), 5)
    return [e for e in out.events if isinstance(e, ToolCalled)], calendar.sent


async def test_the_callers_time_is_sent_and_the_guess_shown() -> None:
    [called], sent = await called_with("Thursday at four.", "14:00")
    assert sent == [{"appointment_id": 12, "day": "Thursday", "time": "16:00"}]
    assert called.arguments["time"] == "16:00" and called.guessed == {"time": "14:00"}


async def test_a_time_said_is_sent_as_written() -> None:
    [called], sent = await called_with("Thursday at four.", "16:00")
    assert sent[0]["time"] == "16:00" and called.guessed == {}
