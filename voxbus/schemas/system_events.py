"""System events, published on ``voxbus.sys.evt.<type>``: errors, the SIP door's refusals and
registrations, and supervision (workers started, restarted, exited; escalations)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voxbus.schemas.event_base import Event


class ErrorEvent(Event):
    """Something was wrong; ``message`` says what in one line. ``call_id`` is set when known."""

    type: Literal["error"] = "error"
    call_id: str | None = None
    subject: str | None = None
    code: str
    message: str


class SipRegistered(Event):
    """The gateway's registration to a trunk or PBX (``sip.registration``) succeeded (``ok``, good for
    ``expires_s``), was refused or lapsed (``code`` and ``reason`` say why); sent at each change."""

    type: Literal["sip.registered"] = "sip.registered"
    gateway: str
    aor: str = Field(description="the address of record registered, sip:user@domain")
    ok: bool
    code: int
    reason: str = ""
    expires_s: int = 0


class SipRejected(Event):
    """An inbound call or request refused at the door (source not allowed, codecs, capacity...)."""

    type: Literal["sip.rejected"] = "sip.rejected"
    gateway: str
    remote: str = Field(description="source address or URI of the caller")
    code: int
    reason: str


class WorkerStarted(Event):
    type: Literal["worker.started"] = "worker.started"
    role: str
    worker_id: str
    pid: int | None = None


class WorkerRestarted(Event):
    type: Literal["worker.restarted"] = "worker.restarted"
    role: str
    worker_id: str
    reason: str
    restarts: int


class WorkerExited(Event):
    type: Literal["worker.exited"] = "worker.exited"
    role: str
    worker_id: str
    reason: str


class SupervisorEscalated(Event):
    type: Literal["supervisor.escalated"] = "supervisor.escalated"
    supervisor: str
    reason: str
