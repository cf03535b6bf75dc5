"""The call actor: one per call, the conversation's owner.

It listens to the call's events (speech, transcripts, playout reports), keeps the conversation
state (listening, thinking, speaking), the history and the turn and generation ids, asks an LLM
worker for each answer, sends the answer to TTS clause by clause as tokens stream in, and
publishes an event for every step. Its durable state lives in the ``voxbus_calls`` key-value
bucket: a restarted actor resumes the conversation.

A generation whose LLM worker goes quiet for ``agent.request_timeout_s`` (a dead or hung worker)
is asked again, of any worker, continuing after the text already received; chunks from the
abandoned worker are ignored, so the retry is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from voxbus.actors.base import Actor
from voxbus.actors.clauses import ClauseSplitter, speakable
from voxbus.actors.tools import CALL_TOOLS, ToolCall, ToolCallFilter
from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage
from voxbus.bus.connection import Bus
from voxbus.config import AgentSettings
from voxbus.logs import get_logger
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import (
    CallEnded,
    CallResumed,
    CallStarted,
    DtmfReceived,
    ErrorEvent,
    Event,
    LlmFirstToken,
    LlmRequested,
    LlmRetried,
    PlayoutDone,
    PlayoutStarted,
    SpeechEnded,
    StateChanged,
    SttFinal,
    ToolCalled,
    TtsFirstFrame,
    TtsRequested,
    TurnMetrics,
    WorkerStarted,
)
from voxbus.schemas.messages import (
    CallControl,
    CallState,
    Cancel,
    ChatMessage,
    LlmChunk,
    LlmRequest,
    SttSession,
    TtsRequest,
)

log = get_logger(__name__)
TICK_S = 0.1


class Tick:
    """Timer message: lets the actor check its watchdogs between other messages."""


@dataclass
class Generation:
    gen: int
    turn: int
    kind: str  # "answer" or "greeting"
    splitter: ClauseSplitter
    speech_end_ts: float | None = None
    text: str = ""
    clauses: int = 0
    llm_worker: str | None = None
    tts_worker: str | None = None
    attempt: int = 1
    llm_done: bool = False
    last_progress: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)
    user_text: str = ""
    raw: str = ""  # everything the LLM said, tool calls included: a retry continues after it
    tools: ToolCallFilter = field(default_factory=ToolCallFilter)
    after_playout: list[CallControl] = field(default_factory=list)


TOOL_ACTIONS = {"transfer_to_human": "transfer", "hang_up": "hangup"}


class CallActor(Actor):
    def __init__(
        self,
        bus: Bus,
        kv: KeyValue,
        settings: AgentSettings,
        call_id: str,
        owner: str,
        resume: bool = False,
        caller: str = "",
        source: str = "file",
    ) -> None:
        super().__init__()
        self.name = f"call/{call_id}"
        self.bus, self.kv, self.settings = bus, kv, settings
        self.call_id, self.owner, self.resume = call_id, owner, resume
        self.state = CallState(call_id=call_id, owner=owner, caller=caller, source=source)
        self.conversation = "listening"
        self.current: Generation | None = None
        self.speech_end: SpeechEnded | None = None
        self.stt_worker: str | None = None
        self.ready = asyncio.Event()
        self._subs: list[Subscription] = []
        self._ticker: asyncio.Task[None] | None = None
        for message_type, handler in [
            (SttFinal, self._on_final),
            (SpeechEnded, self._on_speech_ended),
            (LlmChunk, self._on_chunk),
            (LlmFirstToken, self._on_first_token),
            (TtsFirstFrame, self._on_tts_first_frame),
            (PlayoutStarted, self._on_playout_started),
            (PlayoutDone, self._on_playout_done),
            (CallEnded, self._on_call_ended),
            (WorkerStarted, self._on_worker_started),
            (DtmfReceived, self._on_dtmf),
            (Tick, self._on_tick),
            (Event, self._ignore),
        ]:
            self.on(message_type, handler)

    # --- lifecycle ----------------------------------------------------------------------------
    async def on_start(self) -> None:
        resumed = await self._load() if self.resume else False
        tell = self._tell_decoded
        self._subs = [
            await self.bus.subscribe(subjects.call_events(self.call_id), None, tell),
            await self.bus.subscribe(subjects.llm_chunks(self.call_id), LlmChunk, tell),
            await self.bus.subscribe(subjects.system_event("worker.started"), None, tell),
        ]
        self._ticker = asyncio.create_task(self._tick())
        await self._open_stt()
        if resumed:
            self.bus.emit(
                CallResumed(
                    call_id=self.call_id,
                    turn=self.state.turn,
                    gen=self.state.gen,
                    history_len=len(self.state.history),
                )
            )
            log.info("call resumed", call_id=self.call_id, history=len(self.state.history))
        else:
            self.bus.emit(
                CallStarted(call_id=self.call_id, caller=self.state.caller, transport=self.state.source)
            )
            await self._save()
            if self.settings.greeting:
                await self._speak_greeting()
        self.ready.set()

    async def on_stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        for sub in self._subs:
            with contextlib.suppress(Exception):  # the connection may be closing already
                await sub.unsubscribe()

    async def _tell_decoded(self, message: object, _msg: Msg) -> None:
        self.tell(message)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.tell(Tick())

    async def _load(self) -> bool:
        try:
            entry = await self.kv.get(self.call_id)
        except KeyNotFoundError:
            return False
        try:
            saved = CallState.model_validate_json(entry.value or b"")
        except ValueError as exc:
            self.bus.report_bad(
                BadMessage(f"kv {subjects.CALL_STATE_BUCKET}.{self.call_id}", str(exc).splitlines()[0])
            )
            return False
        self.state = saved.model_copy(update={"owner": self.owner})
        return True

    async def _save(self) -> None:
        await self.kv.put(self.call_id, self.state.model_dump_json().encode())

    async def _open_stt(self) -> None:
        request = SttSession(call_id=self.call_id)
        reply = await self.bus.request_until_taken(
            subjects.STT_SESSIONS, request, Accepted, within_s=45, per_try_s=2.0, pause_s=0.1, pause_max_s=1.0
        )
        if reply is None:
            self._error("stt_unavailable", "no STT worker took the call's audio")
        else:
            self.stt_worker = reply.worker_id

    # --- conversation state ---------------------------------------------------------------------
    def _set_conversation(self, state: str) -> None:
        if state != self.conversation:
            self.conversation = state
            self.bus.emit(
                StateChanged(call_id=self.call_id, turn=self.state.turn, gen=self.state.gen, state=state)
            )  # type: ignore[arg-type]

    def _error(self, code: str, message: str) -> None:
        log.error(message, call_id=self.call_id, code=code)
        self.bus.emit(ErrorEvent(call_id=self.call_id, code=code, message=message))

    def _new_generation(self, kind: str) -> Generation:
        self.state.gen += 1
        self.current = Generation(
            gen=self.state.gen,
            turn=self.state.turn,
            kind=kind,
            splitter=ClauseSplitter(self.settings.min_clause_chars),
        )
        return self.current

    async def _cancel(self, generation: Generation, reason: str) -> None:
        await self.bus.publish(
            subjects.cancel(self.call_id), Cancel(call_id=self.call_id, gen=generation.gen, reason=reason)
        )
        await self.bus.publish(
            subjects.control(self.call_id),
            CallControl(call_id=self.call_id, action="flush", gen=generation.gen),
        )
        if generation.kind == "answer":
            if generation.text and not generation.llm_done:
                self.state.history.append(
                    ChatMessage(role="assistant", content=generation.text, interrupted=True)
                )
            self.bus.emit(self._metrics(generation, interrupted=True))
        if self.current is generation:
            self.current = None

    # --- hearing --------------------------------------------------------------------------------
    async def _on_speech_ended(self, event: SpeechEnded) -> None:
        self.speech_end = event

    async def _on_dtmf(self, event: DtmfReceived) -> None:
        """A key press is a turn of its own: the agent hears it as a short note in the history."""
        self.speech_end = None  # no speech to measure this turn's latency from
        await self._on_final(
            SttFinal(
                call_id=self.call_id,
                text=f"(the caller pressed the key {event.digit})",
                start_ms=0,
                end_ms=0,
                compute_s=0.0,
                ts=event.ts,
            )
        )

    async def _on_final(self, event: SttFinal) -> None:
        text = event.text.strip()
        if not text:
            return
        if self.current is not None:
            await self._cancel(self.current, "superseded by a new caller turn")
        self.state.turn += 1
        self.state.history.append(ChatMessage(role="user", content=text))
        generation = self._new_generation("answer")
        generation.user_text = text
        if self.speech_end is not None:
            generation.speech_end_ts = self.speech_end.at_ts
            generation.marks["vad_decision"] = self.speech_end.ts
        generation.marks["stt_final"] = event.ts
        generation.compute["stt"] = event.compute_s
        self._set_conversation("thinking")
        await self._save()
        await self._request_llm(generation)

    # --- thinking -------------------------------------------------------------------------------
    def _prompt(self) -> list[ChatMessage]:
        history = (
            self.state.history[-self.settings.history_messages :] if self.settings.history_messages else []
        )
        return [ChatMessage(role="system", content=self.settings.system_prompt), *history]

    async def _request_llm(self, generation: Generation) -> None:
        request = LlmRequest(
            call_id=self.call_id,
            gen=generation.gen,
            turn=generation.turn,
            messages=self._prompt(),
            continue_from=generation.raw,
            tools=CALL_TOOLS if self.settings.tools else [],
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
        )
        generation.last_progress = time.monotonic()
        try:
            reply = await self.bus.request(subjects.LLM_GENERATE, request, Accepted, 1.0)
        except (NoRespondersError, NatsTimeout, BadMessage) as exc:
            log.warning(
                "no LLM worker took the generation yet",
                call_id=self.call_id,
                gen=generation.gen,
                reason=type(exc).__name__,
            )
            generation.llm_worker = None
            return  # the watchdog asks again
        generation.llm_worker = reply.worker_id
        self.bus.emit(
            LlmRequested(
                call_id=self.call_id,
                turn=generation.turn,
                gen=generation.gen,
                worker_id=reply.worker_id,
                attempt=generation.attempt,
            )
        )

    async def _on_tick(self, _tick: Tick) -> None:
        generation = self.current
        if generation is None or generation.kind != "answer" or generation.llm_done:
            return
        quiet = time.monotonic() - generation.last_progress
        if generation.llm_worker is None and quiet > 0.25 or quiet > self.settings.request_timeout_s:
            generation.attempt += 1
            reason = (
                "no worker accepted"
                if generation.llm_worker is None
                else f"worker {generation.llm_worker} silent for {quiet:.1f} s"
            )
            self.bus.emit(
                LlmRetried(
                    call_id=self.call_id,
                    turn=generation.turn,
                    gen=generation.gen,
                    reason=reason,
                    attempt=generation.attempt,
                    received_chars=len(generation.text),
                )
            )
            await self._request_llm(generation)

    async def _on_first_token(self, event: LlmFirstToken) -> None:
        if self.current and event.gen == self.current.gen:
            self.current.marks.setdefault("llm_first_token", event.ts)
            self.current.compute.setdefault("llm", event.latency_s)

    async def _on_chunk(self, chunk: LlmChunk) -> None:
        generation = self.current
        if (
            generation is None
            or chunk.gen != generation.gen
            or generation.llm_done
            or chunk.worker_id != generation.llm_worker
        ):
            return  # a cancelled generation, or a worker this generation gave up on
        generation.last_progress = time.monotonic()
        if chunk.finish_reason and chunk.finish_reason.startswith("error"):
            self._error("llm_failed", f"LLM worker {chunk.worker_id}: {chunk.finish_reason}")
        generation.raw += chunk.text
        spoken, calls = generation.tools.push(chunk.text)
        if chunk.done:
            spoken += generation.tools.flush()
        for call in calls:
            self._use_tool(generation, call)
        for problem in generation.tools.errors:
            self._error("bad_tool_call", f"gen {generation.gen}: {problem}")
        generation.tools.errors.clear()
        generation.text += spoken
        for clause in generation.splitter.push(spoken):
            await self._speak(generation, clause, last=False)
        if chunk.done:
            generation.llm_done = True
            await self._speak(generation, generation.splitter.flush(), last=True)
            self.state.history.append(ChatMessage(role="assistant", content=generation.text))
            await self._save()

    def _use_tool(self, generation: Generation, call: ToolCall) -> None:
        """Call control waits until what the agent said before it has been played."""
        self.bus.emit(
            ToolCalled(
                call_id=self.call_id,
                turn=generation.turn,
                gen=generation.gen,
                name=call.name,
                arguments=call.arguments,
            )
        )
        generation.after_playout.append(
            CallControl(call_id=self.call_id, action=TOOL_ACTIONS[call.name])  # type: ignore[arg-type]
        )

    # --- speaking -------------------------------------------------------------------------------
    async def _speak_greeting(self) -> None:
        generation = self._new_generation("greeting")
        generation.llm_done = True
        self.state.history.append(ChatMessage(role="assistant", content=self.settings.greeting))
        await self._speak(generation, speakable(self.settings.greeting), last=True)
        await self._save()

    async def _speak(self, generation: Generation, text: str, last: bool) -> None:
        request = TtsRequest(
            call_id=self.call_id,
            gen=generation.gen,
            turn=generation.turn,
            index=generation.clauses,
            text=text,
            last=last,
        )
        if generation.clauses == 0:
            generation.marks["first_clause"] = time.time()
        generation.clauses += 1
        if text:
            self.bus.emit(
                TtsRequested(
                    call_id=self.call_id,
                    turn=generation.turn,
                    gen=generation.gen,
                    index=request.index,
                    text=text,
                )
            )
        if generation.tts_worker is not None:
            await self.bus.publish(subjects.tts_worker(generation.tts_worker), request)
            return
        reply = await self.bus.request_until_taken(
            subjects.TTS_SPEAK, request, Accepted, within_s=8, per_try_s=1.0, pause_s=0.05, pause_max_s=0.5
        )
        if reply is None:
            where = f"clause {request.index} of gen {generation.gen}"
            self._error("tts_unavailable", f"no TTS worker took {where}")
        else:
            generation.tts_worker = reply.worker_id

    async def _on_tts_first_frame(self, event: TtsFirstFrame) -> None:
        if self.current and event.gen == self.current.gen:
            self.current.marks.setdefault("tts_first_frame", event.ts)
            self.current.compute.setdefault("tts", event.latency_s)

    async def _on_playout_started(self, event: PlayoutStarted) -> None:
        if self.current and event.gen == self.current.gen:
            self.current.marks.setdefault("first_audio", event.ts)
            self._set_conversation("speaking")

    async def _on_playout_done(self, event: PlayoutDone) -> None:
        generation = self.current
        if generation is None or event.gen != generation.gen:
            return
        if not generation.llm_done and event.complete:
            return  # played all audio so far, more is coming
        self.current = None
        self._set_conversation("listening")
        if generation.kind == "answer":
            self.bus.emit(self._metrics(generation, interrupted=not event.complete))
        if event.complete:
            for command in generation.after_playout:
                await self.bus.publish(subjects.control(self.call_id), command)

    def _metrics(self, generation: Generation, interrupted: bool) -> TurnMetrics:
        base = generation.speech_end_ts

        def since_end(mark: str) -> float | None:
            at = generation.marks.get(mark)
            return None if at is None or base is None else round((at - base) * 1000, 1)

        first_audio = since_end("first_audio")
        vad = since_end("vad_decision")
        # engine time on the critical path: whisper on the final, LLM prefill, LLM decoding of the
        # first clause, piper on the first clause; what remains is bus hops, queues and clocks
        token, clause = generation.marks.get("llm_first_token"), generation.marks.get("first_clause")
        decode_s = clause - token if token is not None and clause is not None else 0.0
        compute_ms = (sum(generation.compute.values()) + max(decode_s, 0.0)) * 1000
        overhead = None if first_audio is None or vad is None else round(first_audio - vad - compute_ms, 1)
        return TurnMetrics(
            call_id=self.call_id,
            turn=generation.turn,
            gen=generation.gen,
            user_text=generation.user_text,
            agent_text=generation.text,
            vad_decision_ms=vad,
            stt_final_ms=since_end("stt_final"),
            llm_first_token_ms=since_end("llm_first_token"),
            first_clause_ms=since_end("first_clause"),
            tts_first_frame_ms=since_end("tts_first_frame"),
            first_audio_ms=first_audio,
            stt_compute_ms=_ms(generation.compute.get("stt")),
            llm_compute_ms=_ms(generation.compute.get("llm")),
            tts_compute_ms=_ms(generation.compute.get("tts")),
            orchestration_ms=overhead,
            interrupted=interrupted,
            retries=generation.attempt - 1,
        )

    # --- the rest -------------------------------------------------------------------------------
    async def _on_worker_started(self, event: WorkerStarted) -> None:
        if event.role == "stt" and event.worker_id == self.stt_worker:
            log.info("stt worker restarted, reopening the session", call_id=self.call_id)
            await self._open_stt()

    async def _on_call_ended(self, event: CallEnded) -> None:
        if self.current is not None:
            await self._cancel(self.current, "call ended")
        self.state.ended = True
        await self._save()
        self.stop()

    async def _ignore(self, _event: Event) -> None:
        pass


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
