"""One SIP call's life on the bus: the event-loop side of a call leg.

Caller audio from pjmedia's clock thread arrives in an inbox and is published on ``audio.in`` in
order; agent audio from ``audio.out`` goes into the playout queue that the clock thread plays from;
``ctl`` commands are carried out through the gateway's pjsua thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from voxbus.bus import subjects
from voxbus.bus.connection import Bus, acknowledge
from voxbus.logs import get_logger
from voxbus.media.frames import FRAME_BYTES, SILENCE
from voxbus.media.playout import PlayoutQueue
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import CallEnded, DtmfReceived, ErrorEvent, Event, LineQuality
from voxbus.schemas.messages import AudioFrame, CallControl, CallStart

log = get_logger(__name__)
AGENT_ATTACH_S = 30.0


@dataclass
class CallLeg:
    bus: Bus
    call_id: str
    direction: str  # "inbound" or "outbound"
    remote: str
    emit: Callable[[Event], None]  # thread-safe: hands the event to the loop
    control: Callable[[str, CallControl], None]  # runs a ctl command on the pjsua thread
    codec: str = ""
    called: str = ""  # the request URI's user: which number (which agent profile) was called
    agent: str = ""  # outbound: the agent profile that talks
    context: str = ""  # outbound: why the call is placed, for the agent
    voicemail: str = ""  # outbound: what to leave on an answering machine
    started: float = field(default_factory=time.monotonic)
    hangup_by: str = ""
    inbox: asyncio.Queue[tuple[bytes, float | None]] = field(default_factory=asyncio.Queue)
    frames_in: int = 0
    frames_out: int = 0
    short_frames: int = 0
    line: LineQuality | None = None  # set on the pjsua thread as the call's audio stream ends

    def __post_init__(self) -> None:
        self.playout = PlayoutQueue(self.emit, self.call_id)
        self._subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.attached = False

    # --- from pjmedia's clock thread (through loop.call_soon_threadsafe) ----------------------------
    def caller_audio(self, pcm: bytes, far_db: float | None, echo_db: float | None) -> None:
        self.inbox.put_nowait((pcm, far_db, echo_db))

    # --- event loop -----------------------------------------------------------------------------
    async def connect(self) -> None:
        """Media is up: start moving audio and attach an agent."""
        self._subs = [
            await self.bus.subscribe(subjects.audio_out(self.call_id), AudioFrame, self._on_audio),
            await self.bus.subscribe(subjects.control(self.call_id), CallControl, self._on_ctl),
        ]
        self._tasks.append(asyncio.create_task(self._pump_in()))
        self._tasks.append(asyncio.create_task(self._attach()))

    async def _pump_in(self) -> None:
        subject = subjects.audio_in(self.call_id)
        seq = 0
        while True:
            pcm, far_db, echo_db = await self.inbox.get()
            if len(pcm) != FRAME_BYTES:  # pjmedia hands over empty frames now and then
                self.short_frames += 1
                pcm = SILENCE
            frame = AudioFrame(call_id=self.call_id, seq=seq, pcm=pcm, far_db=far_db, echo_db=echo_db)
            await self.bus.publish_audio(subject, frame)
            seq += 1
            self.frames_in = seq

    async def _attach(self) -> None:
        request = CallStart(
            call_id=self.call_id,
            source="sip",
            caller=self.remote,
            called=self.called,
            agent=self.agent,
            context=self.context,
            outbound=self.direction == "outbound",
            voicemail=self.voicemail,
        )
        taken = await self.bus.request_until_taken(
            subjects.AGENT_CALLS, request, Accepted, within_s=AGENT_ATTACH_S, per_try_s=15.0, pause_s=0.25
        )
        if taken is not None:
            self.attached = True
            return
        message = f"no agent took call {self.call_id} within {AGENT_ATTACH_S:.0f} s"
        log.error(message, call_id=self.call_id)
        self.bus.emit(ErrorEvent(call_id=self.call_id, code="no_agent", message=message))

    async def _on_audio(self, frame: AudioFrame, _msg: Msg) -> None:
        self.playout.push(frame)

    async def _on_ctl(self, command: CallControl, msg: Msg) -> None:
        if not self.playout.apply(command):
            if command.action == "hangup":
                self.hangup_by = self.hangup_by or "agent"
            self.control(self.call_id, command)
        await acknowledge(msg, self.bus.source, "sip")  # a hang-up or transfer asks to know

    def dtmf(self, digit: str, method: str) -> None:
        self.bus.emit(DtmfReceived(call_id=self.call_id, digit=digit, method=method))  # type: ignore[arg-type]

    async def ended(self, cause: str) -> None:
        for task in self._tasks:
            task.cancel()
        for sub in self._subs:
            await sub.unsubscribe()
        self.bus.emit(
            CallEnded(
                call_id=self.call_id,
                duration_s=round(time.monotonic() - self.started, 3),
                cause=cause,
                codec=self.codec,
                hangup_by=self.hangup_by or "caller",  # type: ignore[arg-type]
                frames_in=self.frames_in,
                frames_empty=self.short_frames,
                playout_underruns=self.playout.underruns,
                line=self.line,
            )
        )
