"""The SIP gateway: pjsua2 calls in and out, their audio and events on the bus.

Threads: pjsua runs on :class:`PjThread` (SIP signalling and every pjsua call); pjmedia's clock
thread runs the audio ports (50 times a second per call); the event loop talks to NATS. Callbacks
from either thread hand their work to the loop with ``call_soon_threadsafe``; the loop hands pjsua
work to the pjsua thread with ``PjThread.submit``.

The wheel is compiled for at most 4 calls per process: a fifth INVITE gets 503 from the front. More
calls means more gateway processes behind a SIP front such as Kamailio (see ``deploy/kamailio``).
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from pathlib import Path
from typing import Any

import pjsua2 as pj

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import SipSettings
from voxbus.logs import get_logger
from voxbus.schemas.events import DialResult, Event, SipRegistered, SipRejected
from voxbus.schemas.messages import CallControl, DialRequest
from voxbus.secrets import read_secret
from voxbus.sip.call_release import release
from voxbus.sip.callbacks import PjLog, VoxAccount, VoxCall, VoxEndpoint
from voxbus.sip.commands import CallCommands, Dialer
from voxbus.sip.digest import nonce_key
from voxbus.sip.door import Door, codec_priorities, host_of
from voxbus.sip.front_policy import Decision, FrontPolicy, Request
from voxbus.sip.invite_checks import request_user
from voxbus.sip.legs import CallLeg
from voxbus.sip.machine_load import MachineLoad
from voxbus.sip.media_ports import PortPool
from voxbus.sip.media_watch import CallWatch
from voxbus.sip.pjsetup import (
    account_config,
    create_transports,
    destroy_flags,
    endpoint_config,
    quiet_pjlib,
    trunk_account_config,
)
from voxbus.sip.pjsip_front import PjsipFront
from voxbus.sip.pjthread import PjThread
from voxbus.sip.readiness import WorkerReadiness
from voxbus.sip.settings import OutboundLimits

log = get_logger(__name__)


class SipGateway:
    def __init__(
        self,
        bus: Bus,
        settings: SipSettings,
        gateway_id: str,
        nonce_key_path: Path | None = None,
        agents: dict[str, OutboundLimits] | None = None,
    ) -> None:
        self.bus, self.settings, self.gateway_id = bus, settings, gateway_id
        self.agents = agents or {}  # the agent profiles an outbound call may name, and their limits
        self.loop = asyncio.get_running_loop()
        self.pj = PjThread(f"pjsua-{gateway_id}")
        self.calls: dict[str, VoxCall] = {}  # by voxbus call id; touched on the pjsua thread
        self.reap: list[VoxCall] = []
        self.door = Door(settings, nonce_key(nonce_key_path) if nonce_key_path else b"")
        self.front_policy = FrontPolicy(self.door, settings.new_calls_per_s, settings.machine_max_calls)
        self.machine_load = MachineLoad(bus, gateway_id, settings.machine, lambda: len(self.calls))
        self.readiness = WorkerReadiness(bus, gateway_id, settings.wait_for_roles, settings.roles_stale_s)
        self.front = PjsipFront(self._judge, self.rejected)
        self.ports = PortPool(settings, self.to_loop)  # touched on the pjsua thread
        self.call_watch = CallWatch(self)
        self.commands = CallCommands(self)
        self.dialer = Dialer(self)
        self.ep: VoxEndpoint | None = None
        self.account: VoxAccount | None = None
        self.trunk: VoxAccount | None = None  # registered to sip.registration's registrar, if any
        registration = settings.registration
        self._trunk_password = (
            read_secret("sip.registration", registration.password_env, registration.password_file)
            if registration is not None
            else ""
        )

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self.pj.start(self._setup)  # blocks the loop for the ~100 ms pjsua takes to start
        self.pj.register_current(f"{self.gateway_id}-loop")
        if self.settings.machine_max_calls:
            await self.machine_load.start()
        await self.readiness.start()
        await self.bus.subscribe(subjects.SIP_DIAL, DialRequest, self.dialer.on_dial, queue="sip")
        log.info(
            "sip gateway listening",
            address=self.settings.address,
            port=self.settings.port,
            transports=self.settings.transports,
            codecs=self.settings.codecs,
        )

    def session_ids(self) -> list[str]:
        return sorted(self.calls)

    def admitting(self) -> bool:
        """Whether calls are admitted now: every role of ``sip.wait_for_roles`` serving."""
        return not self.readiness.missing()

    async def stop(self, grace_s: float = 3.0) -> None:
        """Hang up every call, wait for them to end (bounded), then destroy pjsua in order."""
        if self.settings.machine_max_calls:
            await self.machine_load.stop()
        await self.readiness.stop()
        for call_id in list(self.calls):
            self.commands.run(call_id, CallControl(call_id=call_id, action="hangup"), by="system")
        deadline = time.monotonic() + grace_s
        while self.calls and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.pj.stop(self._teardown)

    def _setup(self) -> Any:
        quiet_pjlib()
        ep = self.ep = VoxEndpoint(self)
        ep.libCreate()
        self._log_writer = PjLog(self)  # kept: pjsua calls it until libDestroy
        ep.libInit(endpoint_config(self.settings, self._log_writer))
        create_transports(ep, self.settings)
        ep.libStart()
        settings = self.settings
        self.front.install(settings.address, settings.port, settings.transports[0], ep.libHandleEvents)
        ep.audDevManager().setNullDev()
        available = [info.codecId for info in ep.codecEnum2()]
        for codec_id, priority in codec_priorities(available, self.settings.codecs).items():
            ep.codecSetPriority(codec_id, priority)
        account = self.account = VoxAccount(self)
        account.create(account_config(self.settings), True)
        if self.settings.registration is not None:  # calls to the trunk's numbers come in through it
            trunk = self.trunk = VoxAccount(self)
            trunk.create(trunk_account_config(self.settings, self._trunk_password), True)

        def poll(ms: int) -> None:
            ep.libHandleEvents(ms)
            self._release_reaped()  # pjsua is done with calls that ended before this poll
            self.call_watch.check(time.monotonic())

        return poll

    def _release_reaped(self) -> None:
        """Destroy the pjsua2 objects of calls that ended (see voxbus.sip.call_release)."""
        while self.reap:
            release(self.reap.pop())

    def _teardown(self) -> None:
        self.calls.clear()
        self._release_reaped()
        self.ports.close()
        gc.collect()  # no pjsua2 object may outlive libDestroy and be collected later
        flags = destroy_flags(registered=self.trunk is not None)
        for account in (self.trunk, self.account):  # the trunk's shutdown unregisters
            if account is not None:
                account.shutdown()
        self.account = self.trunk = None
        if self.ep is not None:
            self.front.uninstall()
            self.ep.libDestroy(flags)
            self.ep = None

    # --- threads -> loop ----------------------------------------------------------------------
    def to_loop(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the event loop (a coroutine function becomes a task)."""
        if asyncio.iscoroutinefunction(fn):
            self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(fn(*args)))
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def load_changed(self) -> None:
        """A call came or went (pjsua thread): the machine's other gateways learn it now."""
        if self.settings.machine_max_calls:
            self.to_loop(self.machine_load.publish)

    def emit(self, event: Event) -> None:
        self.bus.emit(event)

    def emit_threadsafe(self, event: Event) -> None:
        self.loop.call_soon_threadsafe(self.bus.emit, event)

    def rejected(self, remote: str, code: int, reason: str, blocks: bool = True) -> None:
        """A request refused or dropped at the door (any thread): a log line and a ``sip.rejected``
        event, a few per source per window; a source refused too often is blocked for a while."""
        verdict = self.door.counter.refused(host_of(remote), time.monotonic(), blocks)
        if not verdict.publish:
            return
        if verdict.suppressed:
            reason = f"{reason} ({verdict.suppressed} more from this source not reported)"
        log.warning("sip request refused", remote=remote, code=code, reason=reason)
        self.emit_threadsafe(SipRejected(gateway=self.gateway_id, remote=remote, code=code, reason=reason))

    # --- inbound (pjsua thread) -----------------------------------------------------------------
    def _judge(self, request: Request, now: float) -> Decision:
        """The front's decision on a request, before pjsip allocates anything for it."""
        calls = len(self.calls)
        machine_calls = self.machine_load.machine_calls(calls)
        return self.front_policy.judge(request, calls, now, machine_calls, self.readiness.missing())

    def new_leg(self, direction: str, remote: str, call_id: str | None = None) -> CallLeg:
        return CallLeg(
            bus=self.bus,
            call_id=call_id or f"sip-{uuid.uuid4().hex[:12]}",
            direction=direction,
            remote=remote,
            emit=self.emit_threadsafe,
            control=self.commands.run,
        )

    def registered(self, code: int, reason: str, expires_s: int) -> None:
        """The trunk registration's state changed (loop): an event, and an error line if it failed."""
        assert self.settings.registration is not None
        aor, ok = self.settings.registration.aor, code == 200 and expires_s > 0
        if ok:
            log.info("registered to the trunk", aor=aor, expires_s=expires_s)
        else:
            log.error("trunk registration failed", aor=aor, code=code, reason=reason)
        self.emit(
            SipRegistered(
                gateway=self.gateway_id, aor=aor, ok=ok, code=code, reason=reason[:200], expires_s=expires_s
            )
        )

    def incoming(self, account: pj.Account, prm: Any) -> None:
        source = prm.rdata.srcAddress
        leg = self.new_leg("inbound", source)
        call = VoxCall(self, account, leg, prm.callId)
        leg.remote = call.getInfo().remoteUri or source
        leg.called = request_user(prm.rdata.wholeMsg)
        # the front refused bad INVITEs already; this is the second line, should it be off
        refusal = self.door.admit(source, prm.rdata.wholeMsg, time.monotonic())
        op = pj.CallOpParam()
        if refusal is not None:
            op.statusCode, op.reason = refusal.code, refusal.reason
            for name, value in refusal.headers.items():
                header = pj.SipHeader()
                header.hName, header.hValue = name, value
                op.txOption.headers.append(header)
            call.answer(op)
            self.reap.append(call)
            self.rejected(source, refusal.code, refusal.reason)
            return
        self.calls[leg.call_id] = call
        self.load_changed()
        op.statusCode = 200
        call.answer(op)

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
            jitter_buffer_ms=leg.line.jitter_buffer_ms if leg.line else None,
            rtp_lost=leg.line.lost if leg.line else None,
        )

        self.pj.submit(lambda: self.forget(call))

    def forget(self, call: VoxCall) -> None:
        """On the pjsua thread: drop a call that ended, free its audio port; the pjsua2 object is
        released after pjsua's next poll, not inside its callback."""
        if self.calls.pop(call.leg.call_id, None) is not None:
            self.load_changed()
        if call.port is not None:
            self.ports.release(call.port)
            call.port = None
        self.reap.append(call)
