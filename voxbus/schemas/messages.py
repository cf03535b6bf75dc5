"""Work messages: audio, requests to workers, their streamed results, control and health."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from voxbus.schemas.base import Message, now

FRAME_BYTES = 640  # 20 ms of 16-bit mono PCM at 16 kHz
VOCABULARY_MAX_WORDS = 40  # whisper's prompt holds ~220 tokens, fillers included
VOCABULARY_MAX_CHARS = 40
AGENT_SAID_MAX_CHARS = 2000  # the STT session keeps the last 240 characters of it
VocabularyWord = Annotated[str, StringConstraints(max_length=VOCABULARY_MAX_CHARS)]


class AudioFrame(Message):
    """20 ms of PCM16 LE mono 16 kHz audio, on ``audio.in`` (caller) or ``audio.out`` (agent)."""

    call_id: str
    seq: int = Field(ge=0, description="frame index on the call timeline (20 ms per step)")
    ts: float = Field(default_factory=now, description="capture or synthesis time, epoch seconds")
    pcm: bytes
    gen: int | None = Field(default=None, description="generation id of agent audio")
    last: bool = Field(default=False, description="last frame of its generation")
    far_db: float | None = Field(
        default=None,
        description="caller audio: level (dBFS) of the agent audio whose echo may be in this frame (the "
        "agent's frames at the echo's measured delay, else the loudest of the echo window), so that the "
        "VAD can tell the caller's voice from the agent's echo; None: the agent was silent",
    )
    echo_db: float | None = Field(
        default=None,
        description="caller audio: level (dBFS) at which the agent's echo is expected in this frame (far_db "
        "plus the line's measured echo loss); None until the gateway has measured the line's echo",
    )

    @field_validator("pcm")
    @classmethod
    def _one_frame(cls, pcm: bytes) -> bytes:
        if len(pcm) != FRAME_BYTES:
            raise ValueError(f"pcm must be {FRAME_BYTES} bytes (20 ms at 16 kHz), got {len(pcm)}")
        return pcm


class ChatMessage(Message):
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    interrupted: bool = False


class CallStart(Message):
    """Request (queue group ``voxbus.agent.calls``): attach a call actor to a call."""

    call_id: str
    source: str = "file"
    caller: str = ""
    called: str = Field(default="", description="the number called: the SIP request URI's user")
    resume: bool = Field(default=False, description="the call exists: resume its saved state")
    agent: str = Field(default="", max_length=64, description="the agent profile (outbound); '': by number")
    context: str = Field(default="", max_length=2000, description="why voxbus placed this call (outbound)")
    outbound: bool = Field(default=False, description="voxbus placed the call: who answers is judged first")
    voicemail: str = Field(default="", max_length=1000, description="left on an answering machine")


class SttSession(Message):
    """Request (queue group ``voxbus.stt.sessions``): transcribe a call's ``audio.in``."""

    call_id: str
    start_seq: int = 0
    language: str = Field(
        default="en", pattern=r"^(auto|[a-z]{2,3})$", description="the call's language, or 'auto'"
    )
    vocabulary: list[VocabularyWord] = Field(
        default_factory=list,
        max_length=VOCABULARY_MAX_WORDS,
        description="words the agent's callers say (staff names, services): whisper expects them",
    )


class SttVocabulary(Message):
    """On ``voxbus.call.<id>.stt.vocabulary``: words this caller may say, learnt during the call
    (the start tool's answer names the caller, their dentist): whisper expects them from now on,
    after the agent's own ``vocabulary``."""

    call_id: str
    words: list[VocabularyWord] = Field(max_length=VOCABULARY_MAX_WORDS)


class SttAgentSaid(Message):
    """On ``voxbus.call.<id>.stt.said``: what the agent has just said to the caller (an answer
    played to its end). Whisper reads it before the caller's next words, as it reads the text that
    precedes speech in a long recording, so that a reply to "Monday at ten or Wednesday at two?"
    is written with those words (``stt.prompt_agent_words``)."""

    call_id: str
    text: str = Field(max_length=AGENT_SAID_MAX_CHARS)


# the call id of a warm-up of an agent's prompt (instructions and tools) for all of its calls
PREWARM_CALL_ID = "prewarm"


def agent_prompt_session(system_prompt: str) -> str:
    """The LLM session (a KV sequence of its own) that one agent's prompt is warmed on: every
    agent's warm-up comes under ``PREWARM_CALL_ID``, and on one sequence the clinic's prompt
    warmed after the front desk's replaced it, so that the front desk's first call evaluated its
    several hundred tokens again."""
    return f"{PREWARM_CALL_ID}:{hashlib.sha1(system_prompt.encode()).hexdigest()[:12]}"


def is_agent_prompt_session(session: str) -> bool:
    """Whether ``session`` warms an agent's prompt for all of its calls (not one call's words)."""
    return session == PREWARM_CALL_ID or session.startswith(f"{PREWARM_CALL_ID}:")


class LlmRequest(Message):
    """Request (queue group ``voxbus.llm.generate``): generate an answer, streamed as LlmChunk."""

    call_id: str
    gen: int = Field(ge=0)
    turn: int = Field(ge=0)
    messages: list[ChatMessage]
    continue_from: str = Field(default="", description="text already received: continue after it")
    request_no: int = Field(
        default=1,
        ge=1,
        description="the call actor's request number within this generation (retries and tool "
        "rounds count up): a worker drops an earlier request of the generation, and chunks carry it",
    )
    tools: list[dict[str, Any]] = Field(
        default_factory=list, description="tools offered to the model (OpenAI function format)"
    )
    max_tokens: int = Field(default=160, gt=0, le=4096)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    warm_only: bool = Field(
        default=False,
        description="only evaluate the prompt into the worker's cache (no reply, no chunks): sent "
        "while the agent speaks, so that the next turn evaluates only the caller's new words",
    )
    peek_tokens: int = Field(
        default=0,
        ge=0,
        le=8,
        description="with warm_only and a conversation ending with the caller's words so far: then "
        "decode up to this many tokens of the answer (greedy, to its first punctuation) and send "
        "them back as an LlmChunk with peek_of set (the answer's opening word, said early)",
    )
    peek_for: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="with peek_tokens: decode on only while the answer so far begins one of these "
        "(the openers the call actor would say early); empty: up to the first punctuation",
    )


class LlmChunk(Message):
    """A piece of generated text on ``voxbus.call.<id>.llm``. One with no text that is not
    ``done`` says only that the worker is still at it (evaluating a long prompt, say)."""

    call_id: str
    gen: int
    seq: int
    text: str
    request_no: int = Field(default=1, ge=1, description="the LlmRequest.request_no it answers")
    done: bool = False
    finish_reason: str | None = None
    worker_id: str = ""
    peek_of: str | None = Field(
        default=None,
        description="a warm-up's peek (LlmRequest.peek_tokens), not part of any answer: the first "
        "words the LLM would answer to these caller's words so far",
    )
    ts: float = Field(default_factory=now)


class TtsRequest(Message):
    """Request: speak one clause. The first clause of a generation goes to the queue group
    ``voxbus.tts.speak``; the rest go to the worker that took it (``voxbus.tts.worker.<id>``) so that
    clauses of one generation are spoken in order by one voice."""

    call_id: str
    gen: int
    turn: int = 0
    index: int = Field(ge=0, description="clause index within the generation")
    text: str
    last: bool = Field(default=False, description="no more clauses follow in this generation")
    start_seq: int = Field(default=0, ge=0, description="first audio.out sequence number to use")
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}$", description="picks the voice (tts.voices)")


class DialRequest(Message):
    """Request (queue group ``voxbus.sip.dial``): place an outbound call and attach an agent."""

    call_id: str
    uri: str = Field(description="sip: or sips: URI to call")
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    agent: str = Field(default="", max_length=64, description="the agent profile that talks ('': [agent])")
    context: str = Field(
        default="",
        max_length=2000,
        description="what the agent is told about this call: why it is placed (a reminder of tomorrow's "
        "10:30 cleaning for Ann Lee). Data, not instructions: it is given to the LLM as the call's facts",
    )
    voicemail: str = Field(
        default="",
        max_length=1000,
        description="what to leave on an answering machine (else the profile's agent.voicemail_message)",
    )

    @field_validator("uri")
    @classmethod
    def _sip_uri(cls, uri: str) -> str:
        if not uri.startswith(("sip:", "sips:")):
            raise ValueError("uri must start with sip: or sips:")
        return uri


class Cancel(Message):
    """On ``voxbus.call.<id>.cancel``: stop all work of a generation at once (barge-in). With
    ``requests_below`` only the LLM's requests of the generation numbered below it stop: the call
    actor asked again and the new request may have gone to another worker (TTS ignores it)."""

    call_id: str
    gen: int
    reason: str = "cancelled"
    requests_below: int | None = Field(default=None, ge=1)


class CallControl(Message):
    """On ``voxbus.call.<id>.ctl``: commands from the call actor to the gateway or file call."""

    call_id: str
    action: Literal["hangup", "transfer", "dtmf", "flush", "hold", "resume"]
    gen: int | None = None
    target: str | None = None
    digits: str | None = None


class OperatorCommand(Message):
    """A request on ``voxbus.call.<id>.op`` from the operator console to the call's actor; the
    reply is :class:`~voxbus.schemas.base.Accepted` or :class:`~voxbus.schemas.base.Rejected`."""

    call_id: str
    operator: str = Field(min_length=1, max_length=64)
    action: Literal["hangup", "transfer", "say", "guide"]
    text: str = Field(default="", max_length=1000, description="say: the sentence; guide: the note")

    @model_validator(mode="after")
    def _text_where_needed(self) -> OperatorCommand:
        if self.action in ("say", "guide") and not self.text.strip():
            raise ValueError(f"{self.action} needs a text")
        return self


class Heartbeat(Message):
    """On ``voxbus.sys.health.<role>.<id>``: a process is alive and its event loop is turning."""

    role: str
    worker_id: str
    pid: int
    ts: float = Field(default_factory=now)
    sessions: list[str] = Field(default_factory=list, description="call ids this process serves")
    cpu_s: float = Field(default=0.0, description="CPU seconds (user + system) the process has used")
    admitting: bool | None = Field(
        default=None,
        description="a SIP gateway: whether it admits calls now (every role of sip.wait_for_roles serving)",
    )


class GatewayLoad(Message):
    """On ``voxbus.sip.load.<machine>``: how many calls a gateway holds, when it changes and every
    second; the machine's gateways refuse calls beyond ``sip.machine_max_calls`` together."""

    gateway: str = Field(max_length=64)
    calls: int = Field(ge=0, le=64)
    ask: bool = Field(default=False, description="the others say their counts at once (a gateway starting)")
    leaving: bool = Field(default=False, description="the gateway stops: forget its count")
    answers: str = Field(default="", max_length=64, description="the gateway whose ask this answers")


class CallState(Message):
    """A call's durable state, kept in the JetStream key-value bucket ``voxbus_calls`` under the
    call id, so that a restarted call actor resumes the conversation where it was."""

    call_id: str
    owner: str = Field(description="id of the agent process that runs the call actor")
    caller: str = ""
    called: str = ""
    source: str = "file"
    started_ts: float = Field(default_factory=now)
    turn: int = 0
    gen: int = 0
    history: list[ChatMessage] = Field(default_factory=list)
    context: str = Field(default="", description="what the LLM knows of this call: date, caller")
    purpose: str = Field(default="", description="an outbound call's reason (DialRequest.context)")
    outbound: bool = False
    language: str = Field(default="en", description="the call's language; 'auto' until the caller speaks")
    ended: bool = False
