"""The call actor: one per call, the conversation's owner.

It listens to the call's events (speech, transcripts, playout reports), keeps the conversation
state (listening, thinking, speaking), the history and the turn and generation ids, asks an LLM
worker for each answer, sends the answer to TTS clause by clause as tokens stream in, and
publishes an event for every step. Its durable state lives in the ``voxbus_calls`` key-value
bucket: a restarted actor resumes the conversation.

Turn-taking. A turn that the STT worker keeps open at an unfinished pause (``stt.tentative``)
starts a *speculative* generation: the LLM thinks, its clauses are held back from TTS; when the
turn ends with the same words the clauses go out at once, and if the caller goes on the
generation is dropped without a trace (no history, no audio). Caller speech over the agent
(``speech.started`` while a generation is current) holds the agent's audio at the gateway
(``ctl hold``) and is then judged: speech longer than ``turn.barge_in_min_speech_ms``, or words
that are more than a backchannel, a noise or the agent's own echo, interrupt (cancel + flush; the
history keeps only the words the caller heard, marked interrupted); anything else resumes the
audio where it stopped.

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
from voxbus.actors.turns import heard_part, judge_barge_in, words
from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage
from voxbus.bus.connection import Bus
from voxbus.config import AgentSettings, TurnSettings
from voxbus.logs import get_logger
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import (
    BargeIn,
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
    PlayoutHeld,
    PlayoutStarted,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    StateChanged,
    SttFinal,
    SttTentative,
    ToolCalled,
    TtsClauseDone,
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
    speculative: bool = False  # the caller's turn is still open: clauses wait in ``held``
    held_back: bool = False  # it was speculative: the LLM started before the turn ended
    held: list[tuple[str, bool]] = field(default_factory=list)
    clause_texts: dict[int, str] = field(default_factory=dict)
    clause_frames: dict[int, int] = field(default_factory=dict)
    history_index: int | None = None  # where its answer sits in the history, once complete
    turn_end: str = ""
    bus_s: float = 0.0

    def spoken(self) -> list[tuple[str, int]]:
        """(clause, frames) of every clause synthesised so far, in order."""
        return [
            (self.clause_texts[i], f) for i, f in sorted(self.clause_frames.items()) if i in self.clause_texts
        ]


@dataclass
class Barge:
    """Caller speech over a generation, being judged while its audio is held."""

    gen: int
    onset_ts: float
    held_ts: float | None = None
    played_ms: int | None = None
    paused: bool = False  # the caller is pausing
    voiced_since: float = 0.0  # start of the caller's current stretch of speech (epoch s)
    started: float = field(default_factory=time.monotonic)


TOOL_ACTIONS = {"transfer_to_human": "transfer", "hang_up": "hangup"}
SHORT_INTERRUPTION_WORDS = 3  # "Stop.", "Wait, sorry.": more is coming, most likely
INTERRUPTED_MARK = " —"  # the default system prompt says what it means


class CallActor(Actor):
    def __init__(
        self,
        bus: Bus,
        kv: KeyValue,
        settings: AgentSettings,
        turns: TurnSettings,
        call_id: str,
        owner: str,
        resume: bool = False,
        caller: str = "",
        source: str = "file",
    ) -> None:
        super().__init__()
        self.name = f"call/{call_id}"
        self.bus, self.kv, self.settings, self.turns = bus, kv, settings, turns
        self.lexicon = turns.lexicon()
        self.call_id, self.owner, self.resume = call_id, owner, resume
        self.state = CallState(call_id=call_id, owner=owner, caller=caller, source=source)
        self.conversation = "listening"
        self.current: Generation | None = None
        self.speech_end: SpeechEnded | None = None
        self.last_pause: SpeechPaused | None = None
        self.barge: Barge | None = None
        self.ignored_turn = False  # the caller's current words were judged not to interrupt
        self.continued = ""  # words of a turn withdrawn because the caller went on
        self.just_interrupted = False
        self.short_interruption: tuple[SttFinal, float] | None = None  # "Stop.", answered at the deadline
        self.caller_speaking = False
        self.stt_worker: str | None = None
        self.ready = asyncio.Event()
        self._subs: list[Subscription] = []
        self._ticker: asyncio.Task[None] | None = None
        for message_type, handler in [
            (SttFinal, self._on_final),
            (SttTentative, self._on_tentative),
            (SpeechStarted, self._on_speech_started),
            (SpeechPaused, self._on_speech_paused),
            (SpeechResumed, self._on_speech_resumed),
            (SpeechEnded, self._on_speech_ended),
            (TtsClauseDone, self._on_clause_done),
            (PlayoutHeld, self._on_playout_held),
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

    async def _cancel(
        self, generation: Generation, reason: str, heard: str | None = None, trace: bool = True
    ) -> None:
        """Stop a generation everywhere. ``heard``: what the caller heard of it (a barge-in); the
        history keeps only that, marked interrupted. A speculative generation, or one cancelled
        with ``trace=False``, leaves no trace."""
        await self.bus.publish(
            subjects.cancel(self.call_id), Cancel(call_id=self.call_id, gen=generation.gen, reason=reason)
        )
        if self.current is generation:
            self.current = None
        if generation.clauses:  # audio was asked for: drop whatever of it is queued or late
            await self._control("flush", generation.gen)
        if generation.speculative or not trace:
            return  # nothing was said, nothing was recorded
        if heard is None:
            heard = generation.text
        if generation.history_index is not None:
            del self.state.history[generation.history_index]
        if heard:
            self.state.history.append(ChatMessage(role="assistant", content=heard, interrupted=True))
        if generation.kind == "answer":
            self.bus.emit(self._metrics(generation, interrupted=True))
        self._set_conversation("listening")
        await self._save()

    # --- hearing --------------------------------------------------------------------------------
    async def _on_speech_ended(self, event: SpeechEnded) -> None:
        self.speech_end = event
        self.caller_speaking = False

    async def _on_speech_paused(self, event: SpeechPaused) -> None:
        self.last_pause = event
        self.caller_speaking = False
        if self.barge is not None:
            self.barge.paused = True

    async def _on_speech_resumed(self, event: SpeechResumed) -> None:
        self.caller_speaking = True
        if self.barge is not None:
            self.barge.paused, self.barge.voiced_since = False, event.ts
        if self.current is not None and self.current.speculative:
            await self._cancel(self.current, "the caller went on")
        else:
            await self._hold_for(event.ts)

    async def _on_speech_started(self, event: SpeechStarted) -> None:
        self.caller_speaking = True
        await self._hold_for(event.at_ts or event.ts)

    async def _hold_for(self, onset_ts: float) -> None:
        """The caller speaks while the agent speaks or is about to: hold its audio, then judge."""
        self.ignored_turn = False
        generation = self.current
        if generation is None or generation.speculative or self.barge is not None:
            return
        if generation.kind == "answer" and "first_audio" not in generation.marks:
            await self._withdraw(generation)
            return
        self.barge = Barge(gen=generation.gen, onset_ts=onset_ts, voiced_since=onset_ts)
        await self._control("hold", generation.gen)

    async def _withdraw(self, generation: Generation) -> None:
        """The caller went on before hearing a word of the answer: the turn was not over after
        all. The answer goes without a trace, and the caller's words join their next turn."""
        if self.state.history and self.state.history[-1].role == "user":
            self.state.history.pop()
            self.state.turn -= 1
        self.continued = f"{self.continued} {generation.user_text}".strip()
        await self._cancel(generation, "the caller went on", trace=False)
        self._set_conversation("listening")
        await self._save()

    async def _on_playout_held(self, event: PlayoutHeld) -> None:
        if self.barge is not None and event.gen == self.barge.gen:
            self.barge.held_ts, self.barge.played_ms = event.ts, event.played_ms

    async def _judge_barge_in(self, text: str | None) -> bool:
        """Decide a held barge-in on the caller's words (None: on its length alone). True when
        the agent was interrupted, False when it goes on or no decision is due yet."""
        barge, generation = self.barge, self.current
        if barge is None:
            return False
        if generation is None or generation.gen != barge.gen:
            self.barge = None  # its generation ended meanwhile
            return False
        if text is None:
            reason = f"spoke over the agent for {self.turns.barge_in_min_speech_ms} ms"
            await self._interrupt(generation, barge, reason, "")
            return True
        agent_said = " ".join([generation.text, *(m.content for m in self.state.history[-1:])])
        why_not = judge_barge_in(
            text, agent_said, self.lexicon, self.turns.barge_in_min_words, self.turns.echo_overlap
        )
        if why_not is None:
            await self._interrupt(generation, barge, "words over the agent", text)
            return True
        self.barge = None
        self.ignored_turn = True
        self.bus.emit(self._barge_event(barge, generation, "ignored", why_not, text))
        await self._control("resume", generation.gen)
        return False

    async def _interrupt(self, generation: Generation, barge: Barge, reason: str, text: str) -> None:
        self.barge = None
        self.just_interrupted = True
        played_frames = (barge.played_ms or 0) // 20
        heard = heard_part(generation.spoken(), played_frames)
        self.bus.emit(self._barge_event(barge, generation, "interrupt", reason, text, heard))
        await self._cancel(generation, "barge-in", heard=heard)

    def _barge_event(
        self,
        barge: Barge,
        generation: Generation,
        decision: str,
        reason: str,
        text: str,
        heard: str | None = None,
    ) -> BargeIn:
        held = None if barge.held_ts is None else round((barge.held_ts - barge.onset_ts) * 1000, 1)
        return BargeIn(
            call_id=self.call_id,
            turn=generation.turn,
            gen=generation.gen,
            decision=decision,  # type: ignore[arg-type]
            reason=reason,
            text=text,
            onset_ts=barge.onset_ts,
            held_ms=held,
            played_ms=barge.played_ms,
            heard_text=heard,
        )

    async def _control(self, action: str, gen: int) -> None:
        await self.bus.publish(
            subjects.control(self.call_id),
            CallControl(call_id=self.call_id, action=action, gen=gen),  # type: ignore[arg-type]
        )

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
                end_reason="dtmf",
            )
        )

    async def _on_tentative(self, event: SttTentative) -> None:
        """The caller paused mid-phrase: think about it already, speak only once the turn ends."""
        text = f"{self.continued} {event.text.strip()}".strip()
        if self.barge is not None and not await self._judge_barge_in(text):
            return  # a backchannel, a noise or an echo over the agent (which goes on), or undecided
        if self.current is not None and self.current.speculative:
            await self._cancel(self.current, "the caller went on")
        if self.current is not None or not text:
            return
        generation = self._new_generation("answer")
        generation.speculative = generation.held_back = True
        generation.user_text = text
        generation.turn = self.state.turn + 1
        await self._request_llm(generation)

    async def _on_final(self, event: SttFinal) -> None:
        self.short_interruption = None  # if one was waiting, the caller went on: it joins this turn
        text = event.text.strip()
        if self.continued and text:
            text, self.continued = f"{self.continued} {text}", ""
            event = event.model_copy(update={"text": text})
        arrived = time.time()
        if self.barge is not None and not await self._judge_barge_in(text):
            return  # not an interruption: the agent's audio resumes
        if self.ignored_turn and self.current is not None:
            self.ignored_turn = False
            return  # the end of words already judged not to interrupt the agent
        if not text:
            return
        interrupted, self.just_interrupted = self.just_interrupted, False
        if interrupted and len(words(text)) <= SHORT_INTERRUPTION_WORDS:
            # "Stop." or "Wait, sorry.": the caller cut in to say something; listen before answering
            self.continued = text
            self.short_interruption = (event, time.monotonic() + self.turns.unfinished_wait_ms / 1000)
            return
        generation = self.current
        if generation is not None and generation.speculative and generation.user_text == text:
            self._begin_turn(generation, event, arrived)
            await self._save()
            for clause, last in generation.held:
                await self._speak(generation, clause, last)
            generation.held.clear()
            if generation.llm_done:
                await self._answer_complete(generation)
            return
        if generation is not None:
            await self._cancel(generation, "superseded by a new caller turn")
        generation = self._new_generation("answer")
        self._begin_turn(generation, event, arrived)
        await self._save()
        await self._request_llm(generation)

    def _begin_turn(self, generation: Generation, event: SttFinal, arrived: float) -> None:
        """The caller's turn is over: it enters the history and ``generation`` answers it."""
        self.state.turn += 1
        self.state.history.append(ChatMessage(role="user", content=event.text.strip()))
        generation.turn, generation.user_text = self.state.turn, event.text.strip()
        generation.speculative = False
        generation.turn_end = event.end_reason
        if self.speech_end is not None:
            generation.speech_end_ts = self.speech_end.at_ts
            decided = self.last_pause if event.end_reason == "complete" else self.speech_end
            generation.marks["vad_decision"] = decided.ts if decided is not None else self.speech_end.ts
        generation.marks["stt_final"] = event.ts
        generation.bus_s += max(arrived - event.ts, 0.0)
        generation.compute["stt"] = event.compute_s
        self._set_conversation("thinking")

    # --- thinking -------------------------------------------------------------------------------
    def _prompt(self, generation: Generation | None) -> list[ChatMessage]:
        history = list(self.state.history)
        if generation is not None and generation.speculative:  # the turn is not in the history yet
            history.append(ChatMessage(role="user", content=generation.user_text))
        history = history[history_start(len(history), self.settings.history_messages) :]
        # an interrupted answer ends with a dash where the caller cut in (see agent.system_prompt)
        shown = [
            m.model_copy(update={"content": m.content + INTERRUPTED_MARK}) if m.interrupted else m
            for m in history
        ]
        # the system prompt never changes within a call: the LLM worker keeps it evaluated
        return [ChatMessage(role="system", content=self.settings.system_prompt), *shown]

    async def _request_llm(self, generation: Generation) -> None:
        request = LlmRequest(
            call_id=self.call_id,
            gen=generation.gen,
            turn=generation.turn,
            messages=self._prompt(generation),
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
        await self._check_barge_in()
        await self._check_short_interruption()
        await self._check_llm()

    async def _check_short_interruption(self) -> None:
        """A short interruption the caller did not follow up: answer it after all."""
        if self.short_interruption is None or self.caller_speaking:
            return
        event, deadline = self.short_interruption
        if time.monotonic() >= deadline:
            self.short_interruption, self.continued = None, ""
            await self._on_final(event)

    async def _check_barge_in(self) -> None:
        """Speech over the agent that goes on without a pause interrupts it (a string of short
        backchannels does not); a hold that stays undecided (no words came) ends by resuming."""
        barge = self.barge
        if barge is None:
            return
        turns = self.turns
        speaking_s = time.time() - barge.voiced_since - turns.pause_ms / 1000  # a pause shows this late
        if (
            not barge.paused
            and turns.barge_in_min_words == 0
            and speaking_s * 1000 >= turns.barge_in_min_speech_ms
        ):
            await self._judge_barge_in(None)
        elif (time.monotonic() - barge.started) * 1000 > turns.hold_max_ms and self.current is not None:
            self.barge = None
            self.bus.emit(self._barge_event(barge, self.current, "ignored", "no words came", ""))
            await self._control("resume", barge.gen)

    async def _check_llm(self) -> None:
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
            self.current.bus_s += max(time.time() - event.ts, 0.0)

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
            if not generation.speculative:
                await self._answer_complete(generation)

    async def _answer_complete(self, generation: Generation) -> None:
        generation.history_index = len(self.state.history)
        self.state.history.append(ChatMessage(role="assistant", content=generation.text))
        await self._save()
        await self._warm_llm()

    async def _warm_llm(self) -> None:
        """Have the conversation so far evaluated while the agent speaks: the next turn's request
        then evaluates only the caller's words (the LLM worker skips this if it has real work)."""
        warm = LlmRequest(
            call_id=self.call_id,
            gen=self.state.gen,
            turn=self.state.turn,
            messages=self._prompt(None),
            tools=CALL_TOOLS if self.settings.tools else [],
            warm_only=True,
        )
        await self.bus.publish(subjects.LLM_GENERATE, warm)

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
        generation.text = self.settings.greeting
        generation.history_index = len(self.state.history)
        self.state.history.append(ChatMessage(role="assistant", content=self.settings.greeting))
        await self._speak(generation, speakable(self.settings.greeting), last=True)
        await self._save()

    async def _speak(self, generation: Generation, text: str, last: bool) -> None:
        if generation.speculative:
            generation.held.append((text, last))  # said only if the turn ends with these words
            return
        generation.clause_texts[generation.clauses] = text
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
            self.current.bus_s += max(time.time() - event.ts, 0.0)

    async def _on_clause_done(self, event: TtsClauseDone) -> None:
        if self.current and event.gen == self.current.gen:
            self.current.clause_frames[event.index] = event.frames

    async def _on_playout_started(self, event: PlayoutStarted) -> None:
        if self.current and event.gen == self.current.gen:
            self.current.marks.setdefault("first_audio", event.ts)
            self.current.bus_s += max(time.time() - event.ts, 0.0)
            self._set_conversation("speaking")

    async def _on_playout_done(self, event: PlayoutDone) -> None:
        generation = self.current
        if generation is None or event.gen != generation.gen:
            return
        if not generation.llm_done and event.complete:
            return  # played all audio so far, more is coming
        self.current = None
        if self.barge is not None and self.barge.gen == generation.gen:
            self.barge = None  # it played to its end before the caller's words were judged
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
        # a speculative answer did its thinking before the turn ended: no critical path to split
        known = first_audio is not None and vad is not None and not generation.held_back
        overhead = round(first_audio - vad - compute_ms, 1) if known else None  # type: ignore[operator]
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
            turn_end=generation.turn_end,
            speculative=generation.held_back,
            bus_ms=round(generation.bus_s * 1000, 1),
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


def history_start(length: int, keep: int) -> int:
    """Where the prompt's history starts when at most ``keep`` messages go to the LLM. Old
    messages are dropped half a window at a time, not one by one: the prompt's prefix then stays
    the same from turn to turn, so the LLM worker's cache keeps it evaluated (a window sliding by
    one message would change the whole prompt every turn)."""
    if keep == 0:
        return length
    if length <= keep:
        return 0
    step = max(2, keep // 2)
    return -(-(length - keep) // step) * step  # the next multiple of step at or above the excess


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
