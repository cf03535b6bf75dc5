"""Calls whose peer has gone without a word: no RTP for ``sip.media_timeout_s``.

A phone that crashed, a NAT binding that expired or a mangled dialog that no BYE can match leaves a
call that pjsip would hold, with one of the gateway's four slots, for ever (RFC 3261 has no
liveness check of its own). Session border controllers end such calls when their media stops
(rtpengine's ``timeout``, Asterisk's ``rtptimeout``); so does the gateway. A call on hold sends no
media either: only calls whose audio is active are watched.

An inbound call that never gets confirmed is ended too: pjsip leaves some INVITEs with mangled
dialog headers (a Call-ID of ``<<<>>>``) in their first state for ever, its 200 never sent or its
ACK never matched, and with them a gateway slot; past ``SETUP_TIMEOUT_S`` the gateway hangs up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pjsua2 as pj

from voxbus.logs import get_logger
from voxbus.schemas.events import ErrorEvent

if TYPE_CHECKING:
    from voxbus.sip.callbacks import VoxCall
    from voxbus.sip.gateway import SipGateway

log = get_logger(__name__)

CHECK_EVERY_S = 1.0
SETUP_TIMEOUT_S = 40.0  # an inbound call still not confirmed: past RFC 3261's 32 s for the ACK


class MediaWatch:
    """Decides which calls went silent; the gateway reads the RTP counters (on the pjsua thread)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._next_check = 0.0
        self._seen: dict[str, tuple[int, float]] = {}  # call id -> (RTP packets received, when it last grew)

    def due(self, now: float) -> bool:
        """Whether the calls should be looked at now (about once a second)."""
        if now < self._next_check:
            return False
        self._next_check = now + CHECK_EVERY_S
        return True

    def silent(self, received: dict[str, int | None], now: float) -> list[str]:
        """The calls (of ``received``: RTP packets received so far, None when the call's audio is not
        active) from which nothing has come for ``timeout_s``."""
        out: list[str] = []
        if self.timeout_s <= 0:
            return out
        for call_id, packets in received.items():
            last = self._seen.get(call_id)
            if packets is None or last is None or packets != last[0]:
                self._seen[call_id] = (packets if packets is not None else -1, now)
            elif now - last[1] >= self.timeout_s:
                out.append(call_id)
        for gone in set(self._seen) - set(received):
            del self._seen[gone]
        return out

    @staticmethod
    def unconfirmed(started: dict[str, float], now: float) -> list[str]:
        """The inbound calls (of ``started``: when each unconfirmed one came in) past SETUP_TIMEOUT_S."""
        return [call_id for call_id, at in started.items() if now - at >= SETUP_TIMEOUT_S]


class CallWatch:
    """The gateway's watch over its calls, from its poll on the pjsua thread: ends the calls whose
    media went silent and the inbound calls pjsip never confirmed."""

    def __init__(self, gateway: SipGateway) -> None:
        self.gateway = gateway
        self.media = MediaWatch(gateway.settings.media_timeout_s)

    def check(self, now: float) -> None:
        if not self.media.due(now):
            return
        calls = self.gateway.calls
        for call_id in self.media.silent(
            {call_id: call.rtp_received() for call_id, call in calls.items()}, now
        ):
            self._end_silent(call_id)
        pending = {
            call_id: call.leg.started
            for call_id, call in calls.items()
            if not call.confirmed and call.leg.direction == "inbound"
        }
        for call_id in self.media.unconfirmed(pending, now):
            self._end_unconfirmed(call_id)

    def _end_silent(self, call_id: str) -> None:
        """On the pjsua thread: hang up a call whose peer has sent nothing for sip.media_timeout_s."""
        call = self.gateway.calls.get(call_id)
        if call is None:
            return
        message = f"no RTP from the peer for {self.gateway.settings.media_timeout_s:.0f} s: call ended"
        log.warning(message, call_id=call_id)
        self.gateway.emit_threadsafe(ErrorEvent(call_id=call_id, code="no_media", message=message))
        call.leg.hangup_by = "system"
        _hang_up(call, pj.CallOpParam(True))

    def _end_unconfirmed(self, call_id: str) -> None:
        """On the pjsua thread: end an inbound call that pjsip never confirmed. The first time it is
        hung up; if it is still here at the next check, pjsip will never report it: it is dropped."""
        call = self.gateway.calls[call_id]
        if call.leg.hangup_by == "system":
            log.warning("call never set up, dropped", call_id=call_id)
            self.gateway.forget(call)
            return
        message = f"call not set up within {SETUP_TIMEOUT_S:.0f} s (no ACK, or a dialog pjsip left): ended"
        log.warning(message, call_id=call_id)
        self.gateway.emit_threadsafe(ErrorEvent(call_id=call_id, code="setup_timeout", message=message))
        call.leg.hangup_by = "system"
        op = pj.CallOpParam(True)
        op.statusCode = 500
        _hang_up(call, op)


def _hang_up(call: VoxCall, op: pj.CallOpParam) -> None:
    """Hang up from the gateway's poll, where an exception would stop the pjsua thread."""
    try:
        call.hangup(op)
    except pj.Error as exc:
        log.warning("hang-up failed", call_id=call.leg.call_id, error=exc.info().splitlines()[0])
