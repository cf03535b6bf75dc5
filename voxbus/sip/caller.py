"""A SIP caller of voxbus's own (pjsua2): calls a URI, speaks as the caller on the call's 20 ms
clock (a WAV, or a :class:`~voxbus.media.dialogue.DialoguePlayer` that reacts to the agent) and
records what it hears on the same clock. It can also play the part of a phone with echo: what it
hears comes back, delayed and attenuated, mixed into what it sends.

Used by ``voxbus demo``, the SIP tests and the latency benchmark: what it records is what a phone
would have heard, SIP/RTP leg included. pjsua is one per process, so a process holds one caller or
one gateway, not both.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pjsua2 as pj

from voxbus.bus.embedded import free_port
from voxbus.media.frames import FRAME_BYTES, FRAME_MS, HEARD_LEVEL, SAMPLE_RATE, SILENCE, is_loud
from voxbus.media.wav import TimelineSink
from voxbus.sip.frames import read_vector, write_vector
from voxbus.sip.pjsetup import destroy_flags, quiet_pjlib
from voxbus.sip.pjthread import PjThread
from voxbus.sip.port_life import destroy_port, port_format


class Voice(Protocol):
    """What the caller says, tick by tick (driven from pjmedia's clock thread)."""

    def heard(self, tick: int, loud: bool) -> None: ...
    def frame(self, tick: int) -> bytes: ...
    def finished(self, tick: int) -> bool: ...


class WavVoice:
    """A fixed recording; over once it has been said and the agent has been quiet for settle."""

    def __init__(self, frames: list[bytes], settle_s: float) -> None:
        self.frames = frames
        self.settle_ticks = int(settle_s * 1000 / FRAME_MS)
        self.last_loud = 0

    def heard(self, tick: int, loud: bool) -> None:
        if loud:
            self.last_loud = tick

    def frame(self, tick: int) -> bytes:
        return self.frames[tick] if tick < len(self.frames) else SILENCE

    def finished(self, tick: int) -> bool:
        return tick - max(self.last_loud, len(self.frames)) > self.settle_ticks


@dataclass
class CallerResult:
    heard: TimelineSink
    confirmed: bool = False
    status: int = 0
    reason: str = ""
    ticks: int = 0
    hung_up_by: str = ""
    timeline: list[int] = field(default_factory=list)
    first_tick_ts: float | None = None  # wall time of tick 0: maps ticks to event timestamps
    # transfers the agent asked for (REFER), each: the target and how the call to it ended
    # (0: still up when the caller hung up; 200: answered)
    transfers: list[tuple[str, int]] = field(default_factory=list)

    def onsets_after(self, times_s: list[float]) -> list[float | None]:
        """For each time, when agent audio was first heard after it (seconds), or None."""
        loud = self.loud_frames()
        out: list[float | None] = []
        for t in times_s:
            start = int(t * 1000 / FRAME_MS)
            later = loud[loud >= start]
            out.append(float(later[0]) * FRAME_MS / 1000 if len(later) else None)
        return out

    def loud_frames(self) -> np.ndarray:
        pcm = np.frombuffer(self.heard.pcm(), dtype=np.int16)
        frames = pcm[: len(pcm) // 320 * 320].reshape(-1, 320)
        return np.flatnonzero(np.abs(frames.astype(np.int32)).max(axis=1) > HEARD_LEVEL)


class _Port(pj.AudioMediaPort):
    caller: SipCaller | None = None  # None once the call is over: the callbacks do nothing

    def __init__(self, caller: SipCaller) -> None:
        super().__init__()
        self.caller = caller

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802 - pjsua2's name
        caller = self.caller
        pcm = caller.next_frame() if caller is not None else SILENCE
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        write_vector(frame.buf, pcm)
        frame.size = FRAME_BYTES

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802
        caller = self.caller
        if caller is not None:
            caller.heard(read_vector(frame.buf) if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO else b"")


class _Call(pj.Call):
    def __init__(self, caller: SipCaller, account: pj.Account) -> None:
        super().__init__(account)
        self.caller, self.account = caller, account
        self.port: _Port | None = None

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.caller.result.confirmed = True
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.caller.result.status = info.lastStatusCode
            self.caller.result.reason = info.lastReason
            if not self.caller.result.hung_up_by:
                self.caller.result.hung_up_by = "remote"
            self.caller.done.set()

    def onCallTransferRequest(self, prm: Any) -> None:  # noqa: N802
        """A blind transfer (REFER): accepted, and the call to the target placed by pjsua, which
        reports its progress to the agent (NOTIFY); our call to the agent stays up meanwhile."""
        result = self.caller.result
        result.transfers.append((prm.dstUri, 0))
        leg = _TransferLeg(self.caller, self.account, len(result.transfers) - 1)
        self.caller.transfer_legs.append(leg)
        prm.newCall = leg

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if (
                media.type == pj.PJMEDIA_TYPE_AUDIO
                and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                and self.port is None
            ):
                audio = self.getAudioMedia(index)
                fmt = port_format()
                self.port = _Port(self.caller)
                self.port.createPort("caller", fmt)
                audio.startTransmit(self.port)
                self.port.startTransmit(audio)


class _TransferLeg(pj.Call):
    """The call a REFER makes the caller place to the transfer target, as a phone does; no audio
    is connected (the test peers at the target play none): only its outcome is kept."""

    def __init__(self, caller: SipCaller, account: pj.Account, index: int) -> None:
        super().__init__(account)
        self.caller, self.index = caller, index

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        target = self.caller.result.transfers[self.index][0]
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.caller.result.transfers[self.index] = (target, 200)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED and info.lastStatusCode >= 300:
            self.caller.result.transfers[self.index] = (target, info.lastStatusCode)


class SipCaller:
    def __init__(
        self,
        voice: Voice | list[bytes],
        settle_s: float = 4.0,
        max_s: float = 300.0,
        codecs: tuple[str, ...] = ("PCMU/8000",),
        echo_gain: float = 0.0,
        echo_delay_ms: int = 60,
        user: str = "caller",
    ) -> None:
        self.user = user  # the From URI's user: the caller's number as the agent sees it
        self.voice: Voice = WavVoice(voice, settle_s) if isinstance(voice, list) else voice
        self.max_ticks = int(max_s * 1000 / FRAME_MS)
        self.echo_gain = echo_gain
        self.echo: deque[np.ndarray] = deque(
            [np.zeros(FRAME_BYTES // 2, np.float32)] * max(1, echo_delay_ms // FRAME_MS),
            maxlen=max(1, echo_delay_ms // FRAME_MS),
        )
        self.codecs = codecs
        self.result = CallerResult(heard=TimelineSink())
        self.done = threading.Event()
        self._tick = 0
        self._rx = 0
        self._hangup_requested = False
        self.pj = PjThread("pjsua-caller")
        self._ep: pj.Endpoint | None = None
        self._account: pj.Account | None = None
        self._call: _Call | None = None
        self.transfer_legs: list[_TransferLeg] = []

    # --- clock thread -------------------------------------------------------------------------
    def next_frame(self) -> bytes:
        k = self._tick
        self._tick += 1
        if k == 0:
            self.result.first_tick_ts = time.time()
        pcm = self.voice.frame(k)
        if self.echo_gain:
            mixed = np.frombuffer(pcm, np.int16) + self.echo_gain * self.echo[0]
            pcm = np.clip(mixed, -32768, 32767).astype(np.int16).tobytes()
        if (self.voice.finished(k) or k >= self.max_ticks) and not self._hangup_requested:
            self._hangup_requested = True
            self.pj.submit(self._hangup)
        return pcm

    def heard(self, pcm: bytes) -> None:
        k = self._rx
        self._rx += 1
        loud = False
        if len(pcm) == FRAME_BYTES:
            self.result.heard.put(k, pcm)
            samples = np.frombuffer(pcm, np.int16)
            loud = is_loud(pcm)
            self.echo.append(samples.astype(np.float32))
        else:
            self.result.heard.extend_to(k + 1)
            self.echo.append(np.zeros(FRAME_BYTES // 2, np.float32))
        self.voice.heard(k, loud)

    # --- pjsua thread ---------------------------------------------------------------------------
    def _setup(self) -> Any:
        quiet_pjlib()
        ep = self._ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = False
        cfg.medConfig.clockRate = SAMPLE_RATE
        cfg.medConfig.sndClockRate = SAMPLE_RATE
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.logConfig.level = 1
        cfg.logConfig.consoleLevel = 1
        ep.libInit(cfg)
        tc = pj.TransportConfig()
        tc.port = free_port()
        tc.boundAddress = "127.0.0.1"
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        ep.libStart()
        ep.audDevManager().setNullDev()
        for info in ep.codecEnum2():
            wanted = any(info.codecId.startswith(c) for c in self.codecs)
            ep.codecSetPriority(info.codecId, 200 if wanted else 0)
        self._account = pj.Account()
        ac = pj.AccountConfig()
        ac.idUri = f"sip:{self.user}@127.0.0.1:{tc.port}"
        ac.mediaConfig.transportConfig.boundAddress = "127.0.0.1"  # RTP on loopback only
        ac.mediaConfig.transportConfig.port = 20000 + free_port() % 20000 // 2 * 2
        ac.mediaConfig.transportConfig.portRange = 100
        self._account.create(ac, True)
        return ep.libHandleEvents

    def _dial(self, uri: str) -> None:
        assert self._account is not None
        self._call = _Call(self, self._account)
        self._call.makeCall(uri, pj.CallOpParam(True))

    def _hangup(self) -> None:
        if self._call is not None and not self.done.is_set():
            self.result.hung_up_by = self.result.hung_up_by or "caller"
            self._call.hangup(pj.CallOpParam(True))

    def _teardown(self) -> None:
        # The port is destroyed here, while pjsua lives, and before its Python object is
        # dropped (voxbus.sip.port_life): pjmedia's clock is still calling it
        call, self._call = self._call, None
        if call is not None:
            if call.port is not None:
                call.port.caller = None
                destroy_port(call.port)
                call.port = None
            call.caller = None  # type: ignore[assignment]
            del call
        for leg in self.transfer_legs:
            with contextlib.suppress(pj.Error):  # already over
                if leg.isActive():
                    leg.hangup(pj.CallOpParam(True))
        self.transfer_legs.clear()
        gc.collect()
        if self._account is not None:
            self._account.shutdown()
            self._account = None
        if self._ep is not None:
            self._ep.libDestroy(destroy_flags(registered=False))
            self._ep = None

    # --- the event loop ---------------------------------------------------------------------------
    async def call(self, uri: str) -> CallerResult:
        """Place the call, play the WAV, hang up when it is over; returns what was heard."""
        self.pj.start(self._setup)  # blocks the loop for the ~100 ms pjsua takes to start
        self.pj.register_current("caller-loop")
        try:
            await asyncio.wrap_future(self.pj.submit(lambda: self._dial(uri)))
            deadline = asyncio.get_running_loop().time() + self.max_ticks * FRAME_MS / 1000 + 30
            while not self.done.is_set() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        finally:
            self.result.ticks = self._tick
            self.pj.stop(self._teardown)
        return self.result
