"""pjsua2's side of the gateway: the objects pjsua calls back, each handing its work to the gateway.

Threads: :class:`VoxCall`, :class:`VoxAccount`, :class:`VoxEndpoint` and :class:`PjLog` run on the
pjsua thread (the audio ports, on pjmedia's clock thread, are in :mod:`voxbus.sip.media_ports`).
None of them touches the bus: they pass their work to the event loop (``gateway.to_loop``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from voxbus.logs import get_logger
from voxbus.schemas.events import LineQuality, TransferResult
from voxbus.sip.legs import CallLeg
from voxbus.sip.media_ports import BusAudioPort

if TYPE_CHECKING:
    from voxbus.sip.gateway import SipGateway

log = get_logger(__name__)
DTMF_METHODS = {0: "rfc2833", 1: "sip-info"}


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
        self.disconnected = False
        self.transfer_target = ""
        self.media_index = -1  # the audio stream's index, once its media is up

    def rtp_received(self) -> int | None:
        """RTP packets received from the peer so far; None while the call's audio is not active
        (not yet up, or on hold)."""
        if not self.confirmed or self.media_index < 0:
            return None
        try:
            info = self.getInfo()  # held: a member of a temporary SWIG object reads freed memory
            if info.media[self.media_index].status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                return None
            return int(self.getStreamStat(self.media_index).rtcp.rxStat.pkt)
        except pj.Error:
            return None

    def keep_line_quality(self, media_index: int) -> None:
        """The caller's RTP statistics, read while the audio stream still exists."""
        if media_index < 0 or self.leg.line is not None:
            return
        with contextlib.suppress(pj.Error):  # no stream (it never started): the call ends without them
            self.leg.line = line_quality(self.getStreamStat(media_index))

    def onStreamDestroyed(self, prm: Any) -> None:  # noqa: N802
        self.keep_line_quality(prm.streamIdx)

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            self.gateway.to_loop(self.gateway.call_confirmed, self)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            # the stream may end before or after this callback: whichever comes first reads it
            self.keep_line_quality(self.media_index)
            self.disconnected = True  # counted out of the gateway's calls at once (it is forgotten later)
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
            self.media_index = index
            self.leg.codec = self.getStreamInfo(index).codecName
            self.port = self.gateway.ports.attach(self.leg)
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


def line_quality(stat: Any) -> LineQuality:  # noqa: ANN401 - pjsua2's StreamStat
    received, buffer = stat.rtcp.rxStat, stat.jbuf
    return LineQuality(
        packets=int(received.pkt),
        lost=int(received.loss),
        jitter_ms=round(received.jitterUsec.mean / 1000, 1),
        jitter_buffer_ms=float(buffer.avgDelayMsec),
        jitter_buffer_max_ms=float(buffer.maxDelayMsec),
        discarded=int(buffer.discard),
    )


class VoxAccount(pj.Account):
    def __init__(self, gateway: SipGateway) -> None:
        super().__init__()
        self.gateway = gateway

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        self.gateway.incoming(self, prm)

    def onRegState(self, prm: Any) -> None:  # noqa: N802 - the trunk account's registration
        self.gateway.to_loop(self.gateway.registered, int(prm.code), str(prm.reason), int(prm.expiration))


class VoxEndpoint(pj.Endpoint):
    def __init__(self, gateway: SipGateway) -> None:
        super().__init__()
        self.gateway = gateway

    def onRejectedIncomingCall(self, prm: Any) -> None:  # noqa: N802
        self.gateway.rejected(prm.remoteInfo or "unknown", prm.statusCode, prm.reason or "rejected")


class PjLog(pj.LogWriter):
    """pjsip's log, as structured log lines; a SIP message pjsip could not parse (and therefore
    drops without an answer) also becomes a ``sip.rejected`` event."""

    def __init__(self, gateway: SipGateway) -> None:
        super().__init__()
        self.gateway = gateway
        self.seen: dict[str, None] = {}

    def write(self, entry: Any) -> None:
        text = " ".join(entry.msg.split())
        # a refused call is reported once, rate-limited, by onRejectedIncomingCall: not here too
        if entry.level <= 2 and not text.startswith("Request verification failed"):
            log.warning("pjsip", detail=text)
        else:
            log.debug("pjsip", detail=text)
        if text.startswith("Dropping") and "packet from" in text and text not in self.seen:
            self.seen[text] = None  # retransmissions of one bad message make one event
            while len(self.seen) > 64:
                self.seen.pop(next(iter(self.seen)))
            remote = text.split("packet from", 1)[1].split()[1]
            reason = f"malformed message dropped: {text.split(' : ', 1)[-1]}"[:300]
            self.gateway.rejected(remote, 400, reason)
