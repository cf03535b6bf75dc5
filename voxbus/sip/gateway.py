"""The SIP gateway: pjsua2 calls in and out, their audio and events on the bus.

Threads: pjsua runs on :class:`PjThread` (SIP signalling and every pjsua call); pjmedia's clock
thread runs the audio ports (50 times a second per call); the event loop talks to NATS. Callbacks
from either thread hand their work to the loop with ``call_soon_threadsafe``; the loop hands pjsua
work to the pjsua thread with ``PjThread.submit``.

The wheel is compiled for at most 4 calls per process: a fifth INVITE gets 486 Busy Here. More
calls means more gateway processes behind a SIP front such as Kamailio (see ``deploy/kamailio``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from pathlib import Path
from typing import Any

import pjsua2 as pj
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.codec import encode
from voxbus.bus.connection import Bus, reply_rejected
from voxbus.config import SipSettings
from voxbus.logs import get_logger
from voxbus.media.frames import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, SILENCE, FarEndLevel
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import DialResult, ErrorEvent, Event, SipRejected, TransferResult
from voxbus.schemas.messages import CallControl, DialRequest
from voxbus.sip.echo import make_canceller
from voxbus.sip.frames import read_vector, write_vector
from voxbus.sip.legs import CallLeg
from voxbus.sip.pjthread import PjThread

log = get_logger(__name__)
MAX_CALLS = 4  # compiled into the pjsua2 wheel
CODEC_IDS = {"G722": "G722/16000", "PCMU": "PCMU/8000", "PCMA": "PCMA/8000"}
DTMF_METHODS = {0: "rfc2833", 1: "sip-info"}


def _host_of(address: str) -> str:
    """'127.0.0.1:5071' or '[::1]:5071' -> the host part."""
    if address.startswith("["):
        return address[1 : address.index("]")]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


class BusAudioPort(pj.AudioMediaPort):
    """The bridge between a call's audio and the bus, run by pjmedia's clock thread."""

    def __init__(self, gateway: SipGateway, leg: CallLeg) -> None:
        super().__init__()
        self.gateway, self.leg = gateway, leg
        self.played = 0
        self.far = FarEndLevel()
        settings = gateway.settings
        self.echo = make_canceller(settings.echo_canceller, settings.echo_tail_ms)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802 - pjsua2's name
        pcm = read_vector(frame.buf) if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO else b""
        if self.echo is not None and pcm:
            pcm = self.echo.cancel(pcm)
        self.gateway.to_loop(self.leg.caller_audio, pcm, self.far.db())

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802
        pcm = self.leg.playout.next(self.played) or SILENCE
        self.played += 1
        self.far.played(pcm)
        if self.echo is not None:
            self.echo.played(pcm)
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        write_vector(frame.buf, pcm)
        frame.size = FRAME_BYTES


class VoxCall(pj.Call):
    """pjsua's side of one call; every method runs on the pjsua thread."""

    def __init__(
        self, gateway: SipGateway, account: pj.Account, leg: CallLeg, pj_call_id: int = pj.PJSUA_INVALID_ID
    ) -> None:
        super().__init__(account, pj_call_id)
        self.gateway, self.leg = gateway, leg
        self.port: BusAudioPort | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.confirmed = False
        self.transfer_target = ""

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            self.gateway.to_loop(self.gateway.call_confirmed, self)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.recorder = None  # closing the recorder writes the WAV header: do it now
            cause = f"{info.lastStatusCode} {info.lastReason}".strip()
            self.gateway.to_loop(self.gateway.call_disconnected, self, info.lastStatusCode, cause)

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            if self.port is not None:
                continue
            call_audio = self.getAudioMedia(index)
            self.leg.codec = self.getStreamInfo(index).codecName
            fmt = pj.MediaFormatAudio()
            fmt.type = pj.PJMEDIA_TYPE_AUDIO
            fmt.clockRate, fmt.channelCount, fmt.bitsPerSample = SAMPLE_RATE, 1, 16
            fmt.frameTimeUsec = FRAME_MS * 1000
            self.port = BusAudioPort(self.gateway, self.leg)
            self.port.createPort(f"bus-{self.leg.call_id}", fmt)
            call_audio.startTransmit(self.port)
            self.port.startTransmit(call_audio)
            if self.gateway.settings.record_dir is not None:
                self.recorder = pj.AudioMediaRecorder()
                path = Path(self.gateway.settings.record_dir) / f"{self.leg.call_id}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                self.recorder.createRecorder(str(path))
                call_audio.startTransmit(self.recorder)
                self.port.startTransmit(self.recorder)

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        method = DTMF_METHODS.get(prm.method, "")
        self.gateway.to_loop(self.leg.dtmf, prm.digit, method)

    def onCallTransferStatus(self, prm: Any) -> None:  # noqa: N802
        final = bool(prm.finalNotify)
        self.gateway.to_loop(
            self.gateway.emit,
            TransferResult(
                call_id=self.leg.call_id,
                target=self.transfer_target,
                code=prm.statusCode,
                reason=prm.reason,
                final=final,
            ),
        )
        if final and 200 <= prm.statusCode < 300:
            # the human queue has the caller: our leg is done (pjsua leaves hanging up to us)
            prm.cont = False
            self.leg.hangup_by = "agent"
            self.hangup(pj.CallOpParam(True))


class VoxAccount(pj.Account):
    def __init__(self, gateway: SipGateway) -> None:
        super().__init__()
        self.gateway = gateway

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        self.gateway.incoming(self, prm)


class VoxEndpoint(pj.Endpoint):
    def __init__(self, gateway: SipGateway) -> None:
        super().__init__()
        self.gateway = gateway

    def onRejectedIncomingCall(self, prm: Any) -> None:  # noqa: N802
        remote = prm.remoteInfo or "unknown"
        self.gateway.to_loop(
            self.gateway.emit,
            SipRejected(
                gateway=self.gateway.gateway_id,
                remote=remote,
                code=prm.statusCode,
                reason=prm.reason or "rejected",
            ),
        )


class PjLog(pj.LogWriter):
    """pjsip's log, as structured log lines; a SIP message pjsip could not parse (and therefore
    drops without an answer) also becomes a ``sip.rejected`` event."""

    def __init__(self, gateway: SipGateway) -> None:
        super().__init__()
        self.gateway = gateway
        self.seen: dict[str, None] = {}

    def write(self, entry: Any) -> None:
        text = " ".join(entry.msg.split())
        if entry.level <= 2:
            log.warning("pjsip", detail=text)
        else:
            log.debug("pjsip", detail=text)
        if text.startswith("Dropping") and "packet from" in text and text not in self.seen:
            self.seen[text] = None  # retransmissions of one bad message make one event
            while len(self.seen) > 64:
                self.seen.pop(next(iter(self.seen)))
            self.gateway.emit_threadsafe(
                SipRejected(
                    gateway=self.gateway.gateway_id,
                    remote=text.split("packet from", 1)[1].split()[1],
                    code=400,
                    reason=f"malformed message dropped: {text.split(' : ', 1)[-1]}"[:300],
                )
            )


class SipGateway:
    def __init__(self, bus: Bus, settings: SipSettings, gateway_id: str) -> None:
        self.bus, self.settings, self.gateway_id = bus, settings, gateway_id
        self.loop = asyncio.get_running_loop()
        self.pj = PjThread(f"pjsua-{gateway_id}")
        self.calls: dict[str, VoxCall] = {}  # by voxbus call id; touched on the pjsua thread
        self._reap: list[VoxCall] = []
        self._networks = [ipaddress.ip_network(n, strict=False) for n in settings.allow_from]
        self.ep: VoxEndpoint | None = None
        self.account: VoxAccount | None = None

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self.pj.start(self._setup)  # blocks the loop for the ~100 ms pjsua takes to start
        self.pj.register_current(f"{self.gateway_id}-loop")
        await self.bus.subscribe(subjects.SIP_DIAL, DialRequest, self._on_dial, queue="sip")
        log.info(
            "sip gateway listening",
            address=self.settings.address,
            port=self.settings.port,
            transports=self.settings.transports,
            codecs=self.settings.codecs,
        )

    def session_ids(self) -> list[str]:
        return sorted(self.calls)

    async def stop(self, grace_s: float = 3.0) -> None:
        """Hang up every call, wait for them to end (bounded), then destroy pjsua in order."""
        for call_id in list(self.calls):
            self.control(call_id, CallControl(call_id=call_id, action="hangup"), by="system")
        deadline = time.monotonic() + grace_s
        while self.calls and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.pj.stop(self._teardown)

    def _setup(self) -> Any:
        ep = self.ep = VoxEndpoint(self)
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.uaConfig.userAgent = "voxbus"
        cfg.medConfig.clockRate = SAMPLE_RATE
        cfg.medConfig.sndClockRate = SAMPLE_RATE
        cfg.medConfig.audioFramePtime = FRAME_MS
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.jbMinPre = self.settings.jitter_min_ms
        cfg.medConfig.jbMaxPre = self.settings.jitter_max_ms
        self._log_writer = PjLog(self)  # kept: pjsua calls it until libDestroy
        cfg.logConfig.writer = self._log_writer
        cfg.logConfig.level = 4
        cfg.logConfig.consoleLevel = 4
        cfg.logConfig.decor = 0
        ep.libInit(cfg)
        for transport in self.settings.transports:
            tc = pj.TransportConfig()
            tc.port = self.settings.port
            tc.boundAddress = self.settings.address
            kind = pj.PJSIP_TRANSPORT_UDP if transport == "udp" else pj.PJSIP_TRANSPORT_TCP
            ep.transportCreate(kind, tc)
        ep.libStart()
        ep.audDevManager().setNullDev()
        self._set_codecs(ep)
        account = self.account = VoxAccount(self)
        ac = pj.AccountConfig()
        ac.idUri = f"sip:voxbus@{self.settings.address}:{self.settings.port}"
        ac.mediaConfig.transportConfig.boundAddress = self.settings.address  # RTP where SIP is
        ac.mediaConfig.transportConfig.port = self.settings.rtp_port
        ac.mediaConfig.transportConfig.portRange = self.settings.rtp_port_range
        account.create(ac, True)

        def poll(ms: int) -> None:
            ep.libHandleEvents(ms)
            self._reap.clear()  # pjsua is done with calls that ended before this poll

        return poll

    def _set_codecs(self, ep: pj.Endpoint) -> None:
        wanted = [CODEC_IDS[c] for c in self.settings.codecs]
        for info in ep.codecEnum2():
            prefix = info.codecId.rsplit("/", 1)[0] if info.codecId.count("/") == 2 else info.codecId
            priority = 255 - wanted.index(prefix) if prefix in wanted else 0
            ep.codecSetPriority(info.codecId, priority)

    def _teardown(self) -> None:
        self.calls.clear()
        self._reap.clear()
        if self.account is not None:
            self.account.shutdown()
            self.account = None
        if self.ep is not None:
            self.ep.libDestroy()
            self.ep = None

    # --- threads -> loop ----------------------------------------------------------------------
    def to_loop(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the event loop (a coroutine function becomes a task)."""
        if asyncio.iscoroutinefunction(fn):
            self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(fn(*args)))
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def emit(self, event: Event) -> None:
        self.bus.emit(event)

    def emit_threadsafe(self, event: Event) -> None:
        self.loop.call_soon_threadsafe(self.bus.emit, event)

    # --- inbound (pjsua thread) -----------------------------------------------------------------
    def _new_leg(self, direction: str, remote: str, call_id: str | None = None) -> CallLeg:
        return CallLeg(
            bus=self.bus,
            call_id=call_id or f"sip-{uuid.uuid4().hex[:12]}",
            direction=direction,
            remote=remote,
            emit=self.emit_threadsafe,
            control=self.control,
        )

    def incoming(self, account: pj.Account, prm: Any) -> None:
        source = prm.rdata.srcAddress
        leg = self._new_leg("inbound", source)
        call = VoxCall(self, account, leg, prm.callId)
        leg.remote = call.getInfo().remoteUri or source
        refusal = self._refusal(source)
        op = pj.CallOpParam()
        if refusal is not None:
            op.statusCode, op.reason = refusal
            call.answer(op)
            self._reap.append(call)
            self.to_loop(
                self.emit,
                SipRejected(gateway=self.gateway_id, remote=source, code=refusal[0], reason=refusal[1]),
            )
            return
        self.calls[leg.call_id] = call
        op.statusCode = 200
        call.answer(op)

    def _refusal(self, source: str) -> tuple[int, str] | None:
        if not self._networks:
            return None
        try:
            host = ipaddress.ip_address(_host_of(source))
        except ValueError:
            return 403, "Forbidden: unknown source address"
        if not any(host in network for network in self._networks):
            return 403, "Forbidden: source not allowed"
        return None

    # --- call progress (loop) ---------------------------------------------------------------------
    async def call_confirmed(self, call: VoxCall) -> None:
        leg = call.leg
        log.info("call up", call_id=leg.call_id, direction=leg.direction, remote=leg.remote, codec=leg.codec)
        if leg.direction == "outbound":
            self.emit(DialResult(call_id=leg.call_id, uri=leg.remote, result="answered", code=200))
        await leg.connect()

    async def call_disconnected(self, call: VoxCall, code: int, cause: str) -> None:
        leg = call.leg
        if leg.direction == "outbound" and not call.confirmed:
            result = "busy" if code in (486, 600) else "no_answer" if code in (408, 480, 487) else "failed"
            self.emit(DialResult(call_id=leg.call_id, uri=leg.remote, result=result, code=code, reason=cause))
        if call.confirmed:
            await leg.ended(cause)
        log.info(
            "call ended",
            call_id=leg.call_id,
            cause=cause,
            frames_in=leg.frames_in,
            short_frames=leg.short_frames,
        )

        def forget() -> None:
            self.calls.pop(leg.call_id, None)
            if call.port is not None and call.port.echo is not None:
                call.port.echo.close()
            self._reap.append(call)  # released after pjsua's next poll, not inside its callback

        self.pj.submit(forget)

    # --- commands (loop -> pjsua thread) ----------------------------------------------------------
    def control(self, call_id: str, command: CallControl, by: str = "") -> None:
        def run() -> None:
            call = self.calls.get(call_id)
            if call is None:
                return
            if by:
                call.leg.hangup_by = by
            op = pj.CallOpParam(True)
            if command.action == "hangup":
                op.statusCode = 200 if call.confirmed else 603
                call.hangup(op)
            elif command.action == "transfer":
                target = command.target or self.settings.transfer_target
                if not target:
                    raise ValueError("transfer: no target and no sip.transfer_target configured")
                call.transfer_target = target
                call.xfer(target, op)
            elif command.action == "dtmf" and command.digits:
                call.dialDtmf(command.digits)

        def report(future: Any) -> None:
            exc = future.exception()
            if exc is not None:
                message = f"{command.action} failed: {exc}".splitlines()[0]
                self.emit_threadsafe(ErrorEvent(call_id=call_id, code="ctl_failed", message=message))

        self.pj.submit(run).add_done_callback(report)

    # --- outbound ---------------------------------------------------------------------------------
    async def _on_dial(self, request: DialRequest, msg: Msg) -> None:
        try:
            subjects.check_call_id(request.call_id)
        except subjects.BadCallId as exc:
            await reply_rejected(msg, self.gateway_id, str(exc))
            return
        if len(self.calls) >= MAX_CALLS:
            await reply_rejected(msg, self.gateway_id, f"gateway full ({MAX_CALLS} calls)")
            return

        def place() -> None:
            assert self.account is not None
            leg = self._new_leg("outbound", request.uri, request.call_id)
            call = VoxCall(self, self.account, leg)
            self.calls[leg.call_id] = call
            op = pj.CallOpParam(True)
            op.opt.audioCount = 1
            try:
                call.makeCall(request.uri, op)
            except pj.Error as exc:
                self.calls.pop(leg.call_id, None)
                raise ValueError(exc.info().splitlines()[0]) from None

        try:
            await asyncio.wrap_future(self.pj.submit(place))
        except ValueError as exc:
            self.emit(DialResult(call_id=request.call_id, uri=request.uri, result="failed", reason=str(exc)))
            await reply_rejected(msg, self.gateway_id, str(exc))
            return
        self.loop.call_later(request.timeout_s, self._give_up_ringing, request.call_id)
        if msg.reply:
            await msg.respond(encode(Accepted(worker_id=self.gateway_id, role="sip")))

    def _give_up_ringing(self, call_id: str) -> None:
        def cancel() -> None:
            call = self.calls.get(call_id)
            if call is not None and not call.confirmed:
                op = pj.CallOpParam(True)
                op.statusCode = 487
                call.hangup(op)

        self.pj.submit(cancel)
