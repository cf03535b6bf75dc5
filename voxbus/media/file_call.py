"""A file call: a caller WAV played into the bus as a phone call would be, the answer recorded.

It stands where the SIP gateway stands: it asks an agent to take the call, sends the caller's audio
as real-time 20 ms frames on ``audio.in`` (silence after the WAV ends, as a phone line does), plays
``audio.out`` through a playout queue on the same 20 ms clock, obeys ``ctl`` (flush, hang up) and
reports playout. The recording's timeline is the call's timeline. The caller is a WAV with a fixed
timeline, or a reacting one (a :class:`~voxbus.media.dialogue.DialoguePlayer`, which speaks when
it has heard the agent's answer end, or cuts in during it).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.connection import Bus, acknowledge
from voxbus.logs import get_logger
from voxbus.media.frames import FRAME_MS, SILENCE, is_loud
from voxbus.media.playout import PlayoutQueue
from voxbus.media.wav import TimelineSink
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import (
    CallEnded,
    Event,
    SpeechEnded,
    SpeechStarted,
    StateChanged,
    SttFinal,
)
from voxbus.schemas.messages import AudioFrame, CallControl, CallStart

log = get_logger(__name__)


class NoAgent(RuntimeError):
    pass


class CallerAudio(Protocol):
    """The caller's side, frame by frame: what it says, what it hears, when it is done."""

    def frame(self, index: int) -> bytes | None: ...
    def heard(self, index: int, loud: bool) -> None: ...
    def finished(self, index: int) -> bool: ...


@dataclass
class FileCallResult:
    call_id: str
    events: list[Event] = field(default_factory=list)
    frames: int = 0
    cause: str = "hangup"
    dropped_frames: int = 0
    start_ts: float = 0.0  # wall time of call-timeline frame 0


class FileCall:
    def __init__(
        self,
        bus: Bus,
        source: CallerAudio,
        call_id: str | None = None,
        settle_s: float = 2.0,
        max_s: float = 300.0,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.bus, self.source = bus, source
        self.call_id = call_id or f"file-{uuid.uuid4().hex[:12]}"
        self.settle_frames = int(settle_s * 1000 / FRAME_MS)
        self.max_frames = int(max_s * 1000 / FRAME_MS)
        self.on_event = on_event
        self.playout = PlayoutQueue(bus.emit, self.call_id)
        self.sink = TimelineSink()
        self.result = FileCallResult(self.call_id)
        self.conversation = "listening"
        self.caller_speaking = False
        self.pending_finals = 0
        self.hangup = False

    async def run(self, agent_timeout_s: float = 60.0) -> FileCallResult:
        subs = [
            await self.bus.subscribe(subjects.audio_out(self.call_id), AudioFrame, self._on_audio),
            await self.bus.subscribe(subjects.control(self.call_id), CallControl, self._on_ctl),
            await self.bus.subscribe(subjects.call_events(self.call_id), None, self._on_event),
        ]
        try:
            await self._attach_agent(agent_timeout_s)
            started = time.monotonic()
            await self._clock()
            self.bus.emit(
                CallEnded(
                    call_id=self.call_id,
                    duration_s=round(time.monotonic() - started, 3),
                    cause=self.result.cause,
                )
            )
            await self.bus.flush_events()
            await asyncio.sleep(0.3)  # let the last events reach our subscription
        finally:
            for sub in subs:
                await sub.unsubscribe()
        self.result.frames = self.sink.length
        self.result.dropped_frames = self.playout.dropped
        return self.result

    async def _attach_agent(self, timeout_s: float) -> None:
        caller = str(getattr(self.source, "path", "dialogue"))
        request = CallStart(call_id=self.call_id, source="file", caller=caller)
        taken = await self.bus.request_until_taken(
            subjects.AGENT_CALLS, request, Accepted, within_s=timeout_s, per_try_s=15.0, pause_s=0.25
        )
        if taken is None:
            raise NoAgent(f"no agent took the call within {timeout_s:.0f} s: is `voxbus up` running?")

    async def _clock(self) -> None:
        """One loop, one clock: caller frame k goes out and agent frame k is played at 20 ms * k."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        self.result.start_ts = time.time()
        idle_since = None
        audio_in = subjects.audio_in(self.call_id)
        for k in range(self.max_frames):
            delay = t0 + k * FRAME_MS / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            pcm = self.source.frame(k) or SILENCE
            await self.bus.publish_audio(audio_in, AudioFrame(call_id=self.call_id, seq=k, pcm=pcm))
            out = self.playout.next(k)
            if out is not None:
                self.sink.put(k, out)
            self.source.heard(k, out is not None and is_loud(out))
            self.sink.extend_to(k + 1)
            if self.hangup:
                self.result.cause = "agent hung up"
                return
            idle = (
                self.source.finished(k)
                and self.playout.idle
                and not self.caller_speaking
                and self.pending_finals == 0
                and self.conversation == "listening"
            )
            idle_since = (idle_since if idle_since is not None else k) if idle else None
            if idle_since is not None and k - idle_since >= self.settle_frames:
                return
        self.result.cause = "time limit"

    async def _on_audio(self, frame: AudioFrame, _msg: Msg) -> None:
        self.playout.push(frame)

    async def _on_ctl(self, command: CallControl, msg: Msg) -> None:
        if self.playout.apply(command):
            pass
        elif command.action == "hangup":
            self.hangup = True
        else:
            log.warning("control not supported by a file call", action=command.action)
        await acknowledge(msg, self.bus.source, "file")

    async def _on_event(self, event: Event, _msg: Msg) -> None:
        self.result.events.append(event)
        if isinstance(event, StateChanged):
            self.conversation = event.state
        elif isinstance(event, SpeechStarted):
            self.caller_speaking = True
        elif isinstance(event, SpeechEnded):
            self.caller_speaking = False
            self.pending_finals += 1
        elif isinstance(event, SttFinal):
            self.pending_finals = max(0, self.pending_finals - 1)
        if self.on_event:
            self.on_event(event)

    def save(self, path: Path) -> None:
        self.sink.save(path)
