"""Call and system events: the public record of everything that happens.

Call events are published on ``voxbus.call.<call_id>.evt.<type>``, system events on
``voxbus.sys.evt.<type>``; a JetStream stream keeps them all. Every event has ``type``, ``ts``
(epoch seconds, set by the publisher) and ``source`` (the publishing role and id).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter

from voxbus.schemas.event_base import CallEvent, Event  # noqa: E402  (re-exported)
from voxbus.schemas.handoff_events import (  # noqa: E402  (re-exported)
    AnsweredBy,
    DialResult,
    OperatorActed,
    TransferResult,
    TransferReturned,
    TransferSummary,
    VoicemailLeft,
)
from voxbus.schemas.system_events import (  # noqa: E402  (re-exported)
    ErrorEvent,
    SipRegistered,
    SipRejected,
    SupervisorEscalated,
    WorkerExited,
    WorkerRestarted,
    WorkerStarted,
)


# --- call lifecycle -------------------------------------------------------------------------------
class CallStarted(CallEvent):
    type: Literal["call.started"] = "call.started"
    caller: str = ""
    called: str = Field(default="", description="the number called (SIP request URI user)")
    agent: str = Field(default="", description="the agent profile that answers it ('' : [agent])")
    transport: str = "file"


class CallResumed(CallEvent):
    type: Literal["call.resumed"] = "call.resumed"
    history_len: int


class LineQuality(BaseModel):
    """The caller's RTP as the gateway received it, over the whole call (pjmedia's statistics)."""

    packets: int = Field(description="RTP packets received from the caller")
    lost: int = Field(description="packets missing in the sequence")
    jitter_ms: float = Field(description="mean interarrival jitter (RFC 3550)")
    jitter_buffer_ms: float = Field(
        description="mean time the caller's audio waited in the gateway's jitter buffer: it adds to "
        "every turn's latency"
    )
    jitter_buffer_max_ms: float
    discarded: int = Field(description="frames the jitter buffer dropped to shrink itself")


class CallEnded(CallEvent):
    type: Literal["call.ended"] = "call.ended"
    duration_s: float
    cause: str = "hangup"
    codec: str = ""
    hangup_by: Literal["caller", "agent", "system", ""] = ""
    frames_in: int = Field(default=0, description="caller frames published on audio.in")
    frames_empty: int = Field(
        default=0, description="ticks where pjmedia had no caller audio (lost or late RTP)"
    )
    playout_underruns: int = Field(
        default=0, description="ticks where agent audio was due but had not arrived"
    )
    line: LineQuality | None = Field(default=None, description="SIP calls: the caller's RTP")


class StateChanged(CallEvent):
    type: Literal["state.changed"] = "state.changed"
    state: Literal["listening", "thinking", "speaking"]


# --- hearing --------------------------------------------------------------------------------------
class SpeechStarted(CallEvent):
    type: Literal["speech.started"] = "speech.started"
    at_ms: int = Field(description="caller audio time of the onset, on the call timeline")
    at_ts: float | None = Field(default=None, description="capture time (epoch s) of the onset")
    over_agent: bool | None = Field(
        default=None,
        description="whether the agent's audio (or its echo) was on the line at the onset; false: the "
        "caller spoke into silence (after the holding phrase, while a tool works); null: not known",
    )


class SpeechEnded(CallEvent):
    type: Literal["speech.ended"] = "speech.ended"
    at_ms: int = Field(description="caller audio time where speech stopped (call timeline)")
    decided_ms: int = Field(description="call time at which the VAD decided it stopped")
    at_ts: float = Field(description="capture time (epoch s) of the caller audio at at_ms")


class SpeechPaused(CallEvent):
    """The caller stopped speaking for ``turn.pause_ms``: the words so far are being transcribed;
    the turn may end here or go on."""

    type: Literal["speech.paused"] = "speech.paused"
    at_ms: int = Field(description="caller audio time where speech stopped (call timeline)")
    at_ts: float = Field(description="capture time (epoch s) of the caller audio at at_ms")


class SpeechResumed(CallEvent):
    """The caller went on after a pause, before the turn ended: the same turn continues."""

    type: Literal["speech.resumed"] = "speech.resumed"
    at_ms: int


class SpeechLasting(CallEvent):
    """Over the agent's audio, the caller has spoken ``turn.barge_in_min_speech_ms`` without a
    pause (counted on the caller audio's own clock): long enough to interrupt the agent."""

    type: Literal["speech.lasting"] = "speech.lasting"
    at_ms: int = Field(description="caller audio time where this stretch of speech began")
    lasted_ms: int = Field(description="how long it had lasted when this was said")


class SttPartial(CallEvent):
    type: Literal["stt.partial"] = "stt.partial"
    text: str


class SttTentative(CallEvent):
    """The caller paused mid-phrase ("I'd like to book, um"): the turn stays open. The call actor
    may start thinking about it, and drops that work if the caller goes on."""

    type: Literal["stt.tentative"] = "stt.tentative"
    text: str
    compute_s: float = Field(description="transcription compute time")


class SttFinal(CallEvent):
    """The caller's turn ended; ``text`` is all of it."""

    type: Literal["stt.final"] = "stt.final"
    text: str
    start_ms: int
    end_ms: int
    compute_s: float = Field(description="transcription compute time")
    end_reason: Literal["complete", "unfinished_timeout", "dtmf", ""] = Field(
        default="",
        description="complete: the words read finished at the first pause; unfinished_timeout: "
        "they did not, and the caller stayed silent for turn.unfinished_wait_ms",
    )
    language: str = Field(default="", description="the language of the call's words, once known")


class LanguageChosen(CallEvent):
    """The call's language, chosen by the caller's first words (``agent.language = "auto"``)."""

    type: Literal["call.language"] = "call.language"
    language: str


# --- thinking -------------------------------------------------------------------------------------
class LlmRequested(CallEvent):
    type: Literal["llm.requested"] = "llm.requested"
    worker_id: str = ""
    attempt: int = 1


class LlmFirstToken(CallEvent):
    type: Literal["llm.first_token"] = "llm.first_token"
    latency_s: float
    queued_s: float = Field(
        default=0.0, description="of latency_s, the time waiting for the worker to be free (other calls)"
    )
    prompt_tokens: int | None = Field(
        default=None,
        description="prompt tokens evaluated before the first token: what the LLM's cache did not hold "
        "(a few: the caller's last words; hundreds: the call's prompt evaluated anew); unset where unknown",
    )


class LlmDone(CallEvent):
    type: Literal["llm.done"] = "llm.done"
    text: str
    finish_reason: str | None = None


class LlmCancelled(CallEvent):
    type: Literal["llm.cancelled"] = "llm.cancelled"
    reason: str
    tokens: int


class LlmFallback(CallEvent):
    """The remote LLM server failed (``reason``); the local model answers instead, going on after
    the ``received_chars`` the server had already sent."""

    type: Literal["llm.fallback"] = "llm.fallback"
    reason: str
    received_chars: int


class LlmRetried(CallEvent):
    type: Literal["llm.retried"] = "llm.retried"
    reason: str
    attempt: int
    received_chars: int


# --- speaking -------------------------------------------------------------------------------------
class TtsRequested(CallEvent):
    type: Literal["tts.requested"] = "tts.requested"
    index: int
    text: str


class TtsFirstFrame(CallEvent):
    type: Literal["tts.first_frame"] = "tts.first_frame"
    index: int
    latency_s: float = Field(description="from request received to first frame published")


class TtsClauseDone(CallEvent):
    """One clause synthesised: its length in 20 ms frames, to map played audio back to words."""

    type: Literal["tts.clause_done"] = "tts.clause_done"
    index: int
    frames: int


class TtsDone(CallEvent):
    type: Literal["tts.done"] = "tts.done"
    frames: int
    cancelled: bool = False


class PlayoutStarted(CallEvent):
    type: Literal["playout.started"] = "playout.started"
    at_ms: int = Field(description="call time of the first agent frame played")


class PlayoutDone(CallEvent):
    type: Literal["playout.done"] = "playout.done"
    played_ms: int
    dropped_frames: int = 0
    complete: bool = True


class PlayoutHeld(CallEvent):
    """The agent's audio of ``gen`` is paused (the caller started speaking over it)."""

    type: Literal["playout.held"] = "playout.held"
    played_ms: int


class PlayoutResumed(CallEvent):
    type: Literal["playout.resumed"] = "playout.resumed"


class BargeIn(CallEvent):
    """The caller spoke while the agent was speaking (or about to). ``decision`` says what the
    call actor made of it: ``interrupt`` (the generation is cancelled, the history keeps
    ``heard_text``) or ``ignored`` (a backchannel, a noise or the agent's own echo: the audio
    resumes where it was held)."""

    type: Literal["barge_in"] = "barge_in"
    decision: Literal["interrupt", "ignored"]
    reason: str
    text: str = Field(default="", description="what the caller said, when known")
    onset_ts: float = Field(description="when the caller's speech started (capture time, epoch s)")
    held_ms: float | None = Field(default=None, description="from onset to the agent's audio held")
    played_ms: int | None = Field(default=None, description="agent audio of gen played before it")
    heard_text: str | None = Field(default=None, description="interrupt: the part the caller heard")


class TurnMetrics(CallEvent):
    """Per-turn stage times in milliseconds, measured from the end of the caller's speech."""

    type: Literal["turn.metrics"] = "turn.metrics"
    user_text: str
    agent_text: str
    vad_decision_ms: float | None = None
    stt_final_ms: float | None = None
    llm_first_token_ms: float | None = None
    first_clause_ms: float | None = None
    tts_first_frame_ms: float | None = None
    first_audio_ms: float | None = Field(default=None, description="first agent frame played")
    stt_compute_ms: float | None = Field(default=None, description="whisper time on the final")
    llm_compute_ms: float | None = Field(default=None, description="request to first token")
    tts_compute_ms: float | None = Field(default=None, description="request to first frame")
    orchestration_ms: float | None = Field(
        default=None,
        description="first_audio - vad_decision - engine compute on the critical path (whisper, "
        "LLM prefill and first-clause decoding, piper): bus hops, queues and the playout clock",
    )
    interrupted: bool = False
    retries: int = 0
    turn_end: str = Field(default="", description="how the caller's turn ended (stt.final end_reason)")
    speculative: bool = Field(
        default=False, description="the LLM started before the turn ended (at an unfinished pause)"
    )
    early_opener: bool = Field(
        default=False,
        description="the answer's first words were the LLM's opener on the caller's words so far, "
        "said as the turn ended (agent.early_opener); the LLM continued after them",
    )
    early_hold: bool = Field(
        default=False,
        description="the holding phrase was said as the turn ended, the LLM's answer to the caller's "
        "words so far opening with a tool call (agent.early_hold)",
    )
    bus_ms: float | None = Field(
        default=None,
        description="transit on the bus of the critical path's messages (final, first chunk, first "
        "frame, playout report), from each publisher's timestamp to its arrival",
    )


class DtmfReceived(CallEvent):
    type: Literal["dtmf.received"] = "dtmf.received"
    digit: str
    method: Literal["rfc2833", "sip-info", "inband", ""] = ""


class ToolCalled(CallEvent):
    """The agent called one of its tools: call control (carried out once what it said before was
    played) or a tool served on ``voxbus.tool.<name>`` (``tool.result`` or ``tool.failed`` follows)."""

    type: Literal["tool.called"] = "tool.called"
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    call_key: str = Field(default="", description="the idempotency key of this tool call")
    guessed: dict[str, Any] = Field(
        default_factory=dict,
        description="the LLM's values that were replaced by what the caller said (14:00 written for "
        "'Thursday at four' sent as 16:00); ``arguments`` holds what was sent",
    )


class ToolResult(CallEvent):
    """A served tool answered ``ok: true``."""

    type: Literal["tool.result"] = "tool.result"
    name: str
    call_key: str
    result: Any = None
    latency_ms: float
    attempts: int


class ToolFailed(CallEvent):
    """A tool call that did not succeed, and why: ``refused`` (the tool said no, e.g. a slot
    taken), ``timeout``, ``unavailable`` (no service), ``bad_reply``, ``unknown_tool``,
    ``bad_arguments`` (checked against the tool's schema before any request), ``not_said`` (an
    argument the tool marks ``x-caller-said`` was not said in the call: the LLM's guess, not
    sent; the LLM is told to ask the caller)."""

    type: Literal["tool.failed"] = "tool.failed"
    name: str
    call_key: str
    failure: Literal[
        "refused", "timeout", "unavailable", "bad_reply", "unknown_tool", "bad_arguments", "not_said"
    ]
    error: str
    latency_ms: float
    attempts: int


class ToolsOffered(CallEvent):
    """The tools offered to the LLM for this call, found at its start (``$SRV.INFO``)."""

    type: Literal["tools.offered"] = "tools.offered"
    names: list[str]


CALL_EVENTS: tuple[type[CallEvent], ...] = (
    CallStarted, CallResumed, CallEnded, StateChanged, SpeechStarted, SpeechPaused, SpeechResumed,
    SpeechLasting, SpeechEnded, SttPartial, SttTentative, SttFinal, LanguageChosen, LlmRequested,
    LlmFirstToken, LlmDone, LlmCancelled, LlmRetried, LlmFallback, TtsRequested, TtsFirstFrame,
    TtsClauseDone, TtsDone, PlayoutStarted, PlayoutHeld, PlayoutResumed, PlayoutDone, BargeIn, TurnMetrics,
    DtmfReceived, DialResult, TransferResult, TransferSummary, TransferReturned, AnsweredBy, VoicemailLeft,
    ToolCalled, ToolResult, ToolFailed, ToolsOffered, OperatorActed,
)  # fmt: skip
SYSTEM_EVENTS: tuple[type[Event], ...] = (
    ErrorEvent, SipRejected, SipRegistered, WorkerStarted, WorkerRestarted, WorkerExited, SupervisorEscalated,
)  # fmt: skip
ALL_EVENTS = CALL_EVENTS + SYSTEM_EVENTS

# every event type, told apart by its ``type`` field
AnyEvent = Annotated[Union[ALL_EVENTS], Field(discriminator="type")]  # type: ignore[valid-type]  # noqa: UP007
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(AnyEvent)
