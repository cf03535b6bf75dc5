"""What the gateway does for the bus, on the pjsua thread: call-control commands (``ctl``: hang
up, transfer, DTMF) and outbound calls (``voxbus.sip.dial``), each checked by the door first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pjsua2 as pj
from nats.aio.msg import Msg

from voxbus.bus import subjects
from voxbus.bus.codec import encode
from voxbus.bus.connection import reply_rejected
from voxbus.logs import get_logger
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import DialResult, ErrorEvent
from voxbus.schemas.messages import CallControl, DialRequest
from voxbus.sip.callbacks import VoxCall

if TYPE_CHECKING:
    from voxbus.sip.gateway import SipGateway

log = get_logger(__name__)


class CallCommands:
    """Carries out the call actor's commands on the pjsua thread; a failure becomes an error event
    (hold, resume and flush never get here: the leg's playout queue carries them out)."""

    def __init__(self, gateway: SipGateway) -> None:
        self.gateway = gateway
        self.actions = self._actions()

    def run(self, call_id: str, command: CallControl, by: str = "") -> None:
        """Carry out a call-control command (on the pjsua thread); a failure becomes an error event."""

        def run() -> None:
            call = self.gateway.calls.get(call_id)
            if call is None:
                return
            if by:
                call.leg.hangup_by = by
            action = self.actions.get(command.action)
            if action is not None:
                action(call, command)

        def report(future: Any) -> None:
            exc = future.exception()
            if exc is not None:
                message = f"{command.action} failed: {exc}".splitlines()[0]
                self.gateway.emit_threadsafe(ErrorEvent(call_id=call_id, code="ctl_failed", message=message))

        self.gateway.pj.submit(run).add_done_callback(report)

    def _actions(self) -> dict[str, Callable[[VoxCall, CallControl], None]]:
        """What pjsua does for each call-control action."""
        return {"hangup": self._hang_up, "transfer": self._transfer, "dtmf": self._send_dtmf}

    @staticmethod
    def _hang_up(call: VoxCall, _command: CallControl) -> None:
        op = pj.CallOpParam(True)
        op.statusCode = 200 if call.confirmed else 603
        call.hangup(op)

    def _transfer(self, call: VoxCall, command: CallControl) -> None:
        target = command.target or self.gateway.settings.transfer_target
        if not target:
            raise ValueError("transfer: no target and no sip.transfer_target configured")
        refusal = self.gateway.door.transfer_refusal(target)
        if refusal is not None:
            raise ValueError(refusal)
        call.transfer_target = target
        call.xfer(target, pj.CallOpParam(True))

    @staticmethod
    def _send_dtmf(call: VoxCall, command: CallControl) -> None:
        if command.digits:
            call.dialDtmf(command.digits)


class Dialer:
    """Places the outbound calls asked on ``voxbus.sip.dial`` that the door allows, and gives up on
    one that rings past its ``timeout_s``."""

    def __init__(self, gateway: SipGateway) -> None:
        self.gateway = gateway

    async def on_dial(self, request: DialRequest, msg: Msg) -> None:
        try:
            subjects.check_call_id(request.call_id)
        except subjects.BadCallId as exc:
            await reply_rejected(msg, self.gateway.gateway_id, str(exc))
            return
        refusal = self._refusal(request)
        if refusal is not None:
            log.warning("dial refused", call_id=request.call_id, reason=refusal)
            await self._failed(request, msg, refusal)
            return
        try:
            await asyncio.wrap_future(self.gateway.pj.submit(lambda: self._place(request)))
        except ValueError as exc:
            await self._failed(request, msg, str(exc))
            return
        self.gateway.loop.call_later(request.timeout_s, self._give_up_ringing, request.call_id)
        if msg.reply:
            await msg.respond(encode(Accepted(worker_id=self.gateway.gateway_id, role="sip")))

    def _refusal(self, request: DialRequest) -> str | None:
        gateway = self.gateway
        if request.agent and request.agent not in gateway.agents:
            return f"unknown agent profile {request.agent!r}"
        # a copy (the pjsua thread changes the dict); a call that ended is out, though not yet forgotten,
        # so that whoever dials again on its dial.result is not refused for it
        calls = [call for call in list(gateway.calls.values()) if not call.disconnected]
        agent_calls = sum(c.leg.agent == request.agent for c in calls if c.leg.direction == "outbound")
        limits = gateway.agents.get(request.agent)
        return gateway.door.dial_refusal(
            request.uri, len(calls), time.monotonic(), request.agent, limits, agent_calls
        )

    async def _failed(self, request: DialRequest, msg: Msg, reason: str) -> None:
        """A dial that was not placed: its ``dial.result`` event and the requester's rejection."""
        self.gateway.emit(
            DialResult(call_id=request.call_id, uri=request.uri, result="failed", reason=reason)
        )
        await reply_rejected(msg, self.gateway.gateway_id, reason)

    def _place(self, request: DialRequest) -> None:
        """On the pjsua thread: the outbound leg and its INVITE."""
        gateway = self.gateway
        assert gateway.account is not None
        leg = gateway.new_leg("outbound", request.uri, request.call_id)
        leg.agent, leg.context, leg.voicemail = request.agent, request.context, request.voicemail
        call = VoxCall(gateway, gateway.account, leg)
        gateway.calls[leg.call_id] = call
        gateway.load_changed()
        op = pj.CallOpParam(True)
        op.opt.audioCount = 1
        try:
            call.makeCall(request.uri, op)
        except pj.Error as exc:
            gateway.calls.pop(leg.call_id, None)
            raise ValueError(exc.info().splitlines()[0]) from None

    def _give_up_ringing(self, call_id: str) -> None:
        def cancel() -> None:
            call = self.gateway.calls.get(call_id)
            if call is not None and not call.confirmed:
                op = pj.CallOpParam(True)
                op.statusCode = 487
                call.hangup(op)

        self.gateway.pj.submit(cancel)
