"""The calls up now, as the console shows them, and the live feed its pages listen to.

A call is up while an agent process lists it in its heartbeat (every half second), so the list
heals itself: a call whose ``call.ended`` was lost disappears, and a console started in the middle
of calls finds them. Its details and state come from the call events as they are published.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from voxbus.console.records import CallSummary
from voxbus.schemas.events import CallEnded, CallStarted, Event, LanguageChosen, StateChanged, TurnMetrics
from voxbus.schemas.messages import Heartbeat

TEXT_FIELDS = ("text", "heard_text", "user_text", "agent_text", "summary")
HIDDEN_FIELDS = ("arguments", "result")  # tool payloads may carry personal data: the record has them
QUEUE_LIMIT = 1000  # a page that stops reading loses its feed, not the console's memory


class LiveCall(BaseModel):
    call_id: str
    caller: str = ""
    called: str = ""
    agent: str = ""
    transport: str = ""
    language: str = ""
    started: float
    state: str = "listening"
    turns: int = 0
    last_latency_ms: float | None = None


class LiveCalls:
    def __init__(
        self,
        redact: Callable[[str], str],
        lookup: Callable[[str], CallSummary | None],
        stale_s: float = 3.0,
    ) -> None:
        self.redact, self.lookup, self.stale_s = redact, lookup, stale_s
        self.calls: dict[str, LiveCall] = {}
        self.seen: dict[str, float] = {}
        self.ended: dict[str, float] = {}  # an agent may list a call for a moment after it ended
        self.listeners: set[asyncio.Queue[dict[str, Any]]] = set()

    def snapshot(self) -> list[LiveCall]:
        return sorted(self.calls.values(), key=lambda c: c.started)

    def on_event(self, event: Event, now: float) -> None:
        call_id = getattr(event, "call_id", None)
        if call_id:
            self._update(call_id, event, now)
        self._broadcast({"kind": "event", "event": self.shown(event)})

    def _update(self, call_id: str, event: Event, now: float) -> None:
        match event:
            case CallStarted():
                self.calls[call_id] = LiveCall(
                    call_id=call_id,
                    caller=event.caller,
                    called=event.called,
                    agent=event.agent,
                    transport=event.transport,
                    started=event.ts,
                )
                self.seen[call_id] = now
                self._calls_changed()
            case CallEnded():
                self.ended[call_id] = now
                self._gone(call_id)
            case StateChanged() if call_id in self.calls:
                self.calls[call_id].state = event.state
                self._calls_changed()
            case TurnMetrics() if call_id in self.calls:
                call = self.calls[call_id]
                call.turns += 1
                call.last_latency_ms = event.first_audio_ms
                self._calls_changed()
            case LanguageChosen() if call_id in self.calls:
                self.calls[call_id].language = event.language

    def on_heartbeat(self, beat: Heartbeat, now: float) -> None:
        if beat.role != "agent":
            return
        for call_id in beat.sessions:
            if call_id in self.ended:
                continue
            self.seen[call_id] = now
            if call_id not in self.calls:  # up before the console, or its call.started not seen
                known = self.lookup(call_id)
                fields = known.model_dump(include=set(LiveCall.model_fields)) if known else {}
                self.calls[call_id] = LiveCall.model_validate({"started": now, **fields, "call_id": call_id})
                self._calls_changed()

    def sweep(self, now: float) -> None:
        """Forget calls no agent has reported for ``stale_s``."""
        for call_id in [c for c, seen in self.seen.items() if now - seen > self.stale_s]:
            self._gone(call_id)
        for call_id in [c for c, at in self.ended.items() if now - at > 60 * self.stale_s]:
            del self.ended[call_id]

    def _gone(self, call_id: str) -> None:
        self.seen.pop(call_id, None)
        if self.calls.pop(call_id, None) is not None:
            self._calls_changed()

    def shown(self, event: Event) -> dict[str, Any]:
        """An event as a page may see it: texts redacted, tool payloads left to the record."""
        data = event.model_dump(mode="json", exclude=set(HIDDEN_FIELDS))
        for field in TEXT_FIELDS:
            if isinstance(data.get(field), str):
                data[field] = self.redact(data[field])
        return data

    # --- the feed ---------------------------------------------------------------------------------
    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self.listeners.add(queue)
        queue.put_nowait(self._calls_message())
        return queue

    def unlisten(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.listeners.discard(queue)

    def _calls_message(self) -> dict[str, Any]:
        return {"kind": "calls", "calls": [c.model_dump(mode="json") for c in self.snapshot()]}

    def _calls_changed(self) -> None:
        self._broadcast(self._calls_message())

    def _broadcast(self, message: dict[str, Any]) -> None:
        for queue in list(self.listeners):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(message)
