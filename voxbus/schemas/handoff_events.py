"""Call events of an outbound call's answer and of handing a call over: the dial's outcome, who
answered (a person or a machine), the voicemail left, a transfer's summary, result and return, and
an operator's action from the console. Published on ``voxbus.call.<call_id>.evt.<type>`` like every
call event; re-exported by :mod:`voxbus.schemas.events`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voxbus.schemas.event_base import CallEvent


class DialResult(CallEvent):
    """The outcome of an outbound call placed by the gateway."""

    type: Literal["dial.result"] = "dial.result"
    uri: str
    result: Literal["answered", "busy", "no_answer", "failed"]
    code: int = 0
    reason: str = ""


class TransferResult(CallEvent):
    type: Literal["transfer.result"] = "transfer.result"
    target: str
    code: int
    reason: str = ""
    final: bool = True


class AnsweredBy(CallEvent):
    """Who answered an outbound call, judged before the agent speaks (``agent.answering_machine``):
    ``human`` (the agent greets them) or ``machine`` (it waits for the beep, then leaves the
    voicemail); ``reason`` says what decided it."""

    type: Literal["call.answered_by"] = "call.answered_by"
    answered_by: Literal["human", "machine"]
    reason: str
    speech_ms: int = Field(description="the callee's speech before the verdict")


class VoicemailLeft(CallEvent):
    """The agent left ``text`` on an answering machine and hung up."""

    type: Literal["voicemail.left"] = "voicemail.left"
    text: str


class TransferSummary(CallEvent):
    """A warm transfer is about to hand the call to a person: who calls, what they want, what was
    done, for the colleague taking over (published before the SIP transfer starts). ``source``:
    ``llm`` (written by the LLM while the caller heard the holding phrase) or ``transcript`` (the
    caller's last words, when the LLM did not answer in ``agent.transfer_summary_timeout_s``)."""

    type: Literal["transfer.summary"] = "transfer.summary"
    target: str = Field(description="where the call goes ('' : the gateway's sip.transfer_target)")
    caller: str = ""
    called: str = ""
    summary: str
    source: Literal["llm", "transcript"]
    requested_by: str = Field(description="'agent' (the LLM's transfer tool) or the operator's name")


class TransferReturned(CallEvent):
    """A transfer did not reach a person (refused, unanswered, or no outcome within
    ``agent.transfer_answer_timeout_s``): the call is the agent's again and it says so."""

    type: Literal["transfer.returned"] = "transfer.returned"
    target: str
    code: int = Field(description="the SIP status the transfer ended with; 0: no outcome in time")
    reason: str = ""


class OperatorActed(CallEvent):
    """An operator stepped into the call from the console: ``hangup``, ``transfer``, ``say`` (the
    agent speaks ``text`` next) or ``guide`` (a note the LLM sees and the caller never hears).
    ``ok`` false: the call actor refused it and ``reason`` says why."""

    type: Literal["operator.acted"] = "operator.acted"
    operator: str = Field(description="the console user who acted")
    action: Literal["hangup", "transfer", "say", "guide"]
    text: str = ""
    ok: bool = True
    reason: str = ""
