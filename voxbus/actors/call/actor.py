"""The call actor: one per call, a small coordinator over named parts.

It subscribes to the call's events and hands each to the part that owns it; the decisions of
turn-taking go to the agent's side, which carries them out. The parts, in the order a caller turn
flows through them:

- :mod:`~voxbus.actors.call.turn_taking` (:class:`TurnTaking`): who has the floor; when the
  caller's turn is over; speculative starts, withdrawals, short interruptions;
- :mod:`~voxbus.actors.call.barge_in` (:class:`BargeInJudge`): caller speech over the agent, held
  and judged;
- :mod:`~voxbus.actors.call.agent_side` (:class:`AgentSide`): carries the decisions out; owns the
  generation in flight, feeds it the LLM's chunks, sends its clauses to TTS;
- :mod:`~voxbus.actors.call.generation` (:class:`Generation`): one answer or greeting in flight,
  from LLM text to TTS clauses and what the caller heard of them;
- :mod:`~voxbus.actors.call.conversation` (:class:`Conversation`, :class:`CallStore`): the history
  and the prompt, kept in the ``voxbus_calls`` bucket so that a restarted actor resumes;
- :mod:`~voxbus.actors.call.metrics`: ``turn.metrics`` from a generation's timeline;
- :mod:`~voxbus.actors.call.outbound` (:class:`Outbound`): everything sent to the bus.

Only :class:`Outbound` talks to the bus; the deciding parts (turn-taking, barge-in, generation,
conversation, metrics) are plain objects. All of them read time only from the injected
:class:`~voxbus.clock.Clock`.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.kv import KeyValue

from voxbus.actors.base import Actor
from voxbus.actors.call.agent_side import AgentSide
from voxbus.actors.call.answering import AnsweringJudge
from voxbus.actors.call.barge_in import BargeInJudge
from voxbus.actors.call.callee import Callee
from voxbus.actors.call.conversation import CallStore, Conversation, call_context, with_language
from voxbus.actors.call.handoff import Handoff
from voxbus.actors.call.operator import OperatorDesk, OperatorRequest
from voxbus.actors.call.outbound import Outbound
from voxbus.actors.call.tool_use import ToolFinished, ToolUse
from voxbus.actors.call.turn_taking import Decision, TurnTaking
from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage
from voxbus.bus.connection import Bus
from voxbus.clock import Clock, SystemClock
from voxbus.config import AgentSettings, TurnSettings
from voxbus.logs import get_logger
from voxbus.schemas.events import (
    CallEnded,
    CallResumed,
    CallStarted,
    DtmfReceived,
    Event,
    LanguageChosen,
    LlmFirstToken,
    PlayoutDone,
    PlayoutHeld,
    PlayoutStarted,
    SpeechEnded,
    SpeechLasting,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SttFinal,
    SttPartial,
    SttTentative,
    TransferResult,
    TtsClauseDone,
    TtsFirstFrame,
    WorkerStarted,
)
from voxbus.schemas.messages import CallState, LlmChunk, OperatorCommand
from voxbus.tools.invoke import CallContext

log = get_logger(__name__)
TICK_S = 0.1


class Tick:
    """Timer message: lets the actor check its deadlines between other messages."""


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
        called: str = "",
        profile: str = "",
        clock: Clock | None = None,
        purpose: str = "",
        outbound: bool = False,
        voicemail: str = "",
    ) -> None:
        super().__init__()
        self.name = f"call/{call_id}"
        self.clock = clock or SystemClock()
        self.bus, self.settings, self.call_id, self.owner, self.resume = bus, settings, call_id, owner, resume
        self.store = CallStore(kv)
        self.profile = profile  # the agent profile answering (voxbus.profiles); "" for [agent]
        state = CallState(
            call_id=call_id,
            owner=owner,
            caller=caller,
            called=called,
            source=source,
            language=settings.language,
            purpose=purpose,
            outbound=outbound,
        )
        self.voicemail = voicemail or settings.voicemail_message
        self.callee: Callee | None = None  # an outbound call's answerer, while being judged
        self.conversation = Conversation(state, settings)
        self.out = Outbound(bus, self.clock, call_id, settings)
        self.turns = turns
        judge = BargeInJudge(call_id, turns, turns.lexicon(settings.language), self.clock)
        self.turn_taking = TurnTaking(judge, turns, self.clock)
        self.agent = AgentSide(self.conversation, self.store, self.out, settings, self.clock)
        self.agent.group_starts = turns.lexicon(settings.language).word_group_starts()
        self.agent.opener.lexicon = turns.lexicon(settings.language)
        context = CallContext(call_id=call_id, caller=caller, called=called)
        self.tools = ToolUse(bus, self.out, settings, context, self.tell)
        self.agent.tools = self.tools
        self.desk = OperatorDesk(self.agent, self.out, settings)
        self.handoff = Handoff(self.conversation, self.desk, self.out, settings, self.clock)
        self.desk.transfer = self.agent.transfer = self.handoff.start
        self.stt_worker: str | None = None
        self.ready = asyncio.Event()
        self._subs: list[Subscription] = []
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._time_up = False
        for message_type, handler in [
            (SpeechStarted, self._on_speech_started),
            (SpeechPaused, self._on_speech_paused),
            (SpeechResumed, self._on_speech_resumed),
            (SpeechLasting, self._on_speech_lasting),
            (SpeechEnded, self._on_speech_ended),
            (SttPartial, self._on_partial),
            (SttTentative, self._on_tentative),
            (SttFinal, self._on_final),
            (DtmfReceived, self._on_dtmf),
            (PlayoutHeld, self._on_playout_held),
            (PlayoutDone, self._on_playout_done),
            (LlmChunk, self._on_llm_chunk),
            (LlmFirstToken, self.agent.first_token),
            (TtsFirstFrame, self.agent.tts_first_frame),
            (TtsClauseDone, self.agent.clause_done),
            (PlayoutStarted, self.agent.playout_started),
            (ToolFinished, self.agent.tool_finished),
            (TransferResult, self.handoff.result),
            (OperatorRequest, self._on_operator),
            (CallEnded, self._on_call_ended),
            (WorkerStarted, self._on_worker_started),
            (Tick, self._on_tick),
            (Event, self._ignore),
        ]:
            self.on(message_type, handler)

    @property
    def state(self) -> CallState:
        return self.conversation.state

    # --- lifecycle ----------------------------------------------------------------------------
    async def on_start(self) -> None:
        resumed = await self._load() if self.resume else False
        tell = self._tell_decoded
        self._subs = [
            await self.bus.subscribe(subjects.call_events(self.call_id), None, tell),
            await self.bus.subscribe(subjects.llm_chunks(self.call_id), LlmChunk, tell),
            await self.bus.subscribe(subjects.system_event("worker.started"), None, tell),
            await self.bus.subscribe(subjects.operator(self.call_id), OperatorCommand, self._tell_operator),
        ]
        self._ticker = asyncio.create_task(self._tick())
        if resumed:
            self._language_known(self.state.language)
        self.stt_worker = await self.out.open_stt(self.state.language, self.settings.vocabulary)
        if resumed:
            history_len = len(self.state.history)
            self.out.emit(
                CallResumed(
                    call_id=self.call_id, turn=self.state.turn, gen=self.state.gen, history_len=history_len
                )
            )
            log.info("call resumed", call_id=self.call_id, history=history_len)
            self.tools.start_discovery()
        else:
            started = CallStarted(
                call_id=self.call_id,
                caller=self.state.caller,
                called=self.state.called,
                agent=self.profile,
                transport=self.state.source,
            )
            self.out.emit(started)
            self.tools.start_discovery()  # after call.started: a call's events begin with it
            self.state.context = call_context(self.clock.time(), self.state)
            await self.agent.save()
            if self.state.outbound and self.settings.answering_machine:  # a person, or a machine?
                judge = AnsweringJudge(self.settings, self.clock.monotonic())
                self.callee = Callee(judge, self.agent, self.out, self.clock, self.voicemail)
            elif self.settings.greeting:
                await self.agent.greet(warm=False)  # warmed with the call's tools, once known
            self._tasks.add(asyncio.create_task(self._warm_with_tools()))
        self.ready.set()

    async def on_stop(self) -> None:
        await self.tools.close()
        await self.store.close()  # a state the bucket could not take yet is written now, if it can be
        for task in self._tasks:
            task.cancel()
        if self._ticker:
            self._ticker.cancel()
        for sub in self._subs:
            with contextlib.suppress(Exception):  # the connection may be closing already
                await sub.unsubscribe()

    async def _hang_up_if_too_long(self) -> None:
        limit = self.settings.max_call_s
        if limit and not self._time_up and self.clock.time() - self.state.started_ts > limit:
            self._time_up = True
            log.info("call longer than agent.max_call_s: hanging up", call_id=self.call_id, limit_s=limit)
            await self.out.control("hangup")

    async def _warm_with_tools(self) -> None:
        """Once the call's tools are known (none, maybe), have the LLM evaluate the prompt with
        them while the greeting plays: the caller's first turn then costs only its own words."""
        await self.tools.ready()
        self.tools.enrich(self.state)
        await self.out.warm_llm(self.state.gen, self.state.turn, self.conversation.prompt())

    async def _tell_decoded(self, message: object, _msg: Msg) -> None:
        self.tell(message)

    async def _tell_operator(self, command: OperatorCommand, msg: Msg) -> None:
        self.tell(OperatorRequest(command, msg))

    async def _on_operator(self, request: OperatorRequest) -> None:
        await self.desk.handle(request, self.owner)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.tell(Tick())

    async def _load(self) -> bool:
        try:
            saved = await self.store.load(self.call_id)
        except BadMessage as exc:
            self.bus.report_bad(exc)
            return False
        if saved is None:
            return False
        self.conversation.state = saved.model_copy(update={"owner": self.owner})
        return True

    # --- the caller: turn-taking decides, the actor carries out ---------------------------------
    async def _on_speech_started(self, event: SpeechStarted) -> None:
        if self.callee is not None and await self.callee.took(event):
            return
        await self._carry_out(self.turn_taking.speech_started(event, self.agent.current))

    async def _on_speech_paused(self, event: SpeechPaused) -> None:
        if self.callee is not None and await self.callee.took(event):
            return
        await self._carry_out(self.turn_taking.speech_paused(event))

    async def _on_speech_resumed(self, event: SpeechResumed) -> None:
        if self.callee is not None and await self.callee.took(event):
            return
        await self._carry_out(self.turn_taking.speech_resumed(event, self.agent.current))

    async def _on_speech_lasting(self, event: SpeechLasting) -> None:
        await self._carry_out(self.turn_taking.speech_lasting(event, self.agent.current))

    async def _on_speech_ended(self, event: SpeechEnded) -> None:
        if self.callee is not None and await self.callee.took(event):
            return
        await self._carry_out(self.turn_taking.speech_ended(event))

    async def _on_partial(self, event: SttPartial) -> None:
        if self.callee is not None and await self.callee.took(event):
            return
        await self._carry_out(self.turn_taking.partial(event, self.agent.current))

    async def _on_tentative(self, event: SttTentative) -> None:
        if self.callee is not None and await self.callee.took(event):
            return
        await self._carry_out(self.turn_taking.tentative(event, self.agent.current))

    async def _on_final(self, event: SttFinal) -> None:
        if self.callee is not None and await self.callee.took(event):
            return
        if self.state.language == "auto" and event.language:
            self.state.language = event.language
            self._language_known(event.language)
            self.out.emit(LanguageChosen(call_id=self.call_id, turn=self.state.turn, language=event.language))
        await self._carry_out(self.turn_taking.final(event, self.agent.current))

    def _language_known(self, language: str) -> None:
        """The call's language is known (chosen by the caller's words, or saved): the voice, the
        barge-in word lists and the LLM's instructions follow it."""
        if language == "auto":
            return
        self.out.language = language
        self.turn_taking.barge_in.lexicon = self.turns.lexicon(language)
        self.agent.group_starts = self.turns.lexicon(language).word_group_starts()
        self.agent.opener.lexicon = self.turns.lexicon(language)
        self.state.context = with_language(self.state.context, language)

    async def _on_dtmf(self, event: DtmfReceived) -> None:
        """A key press is a turn: the agent hears it as a short note in the history."""
        text = f"(the caller pressed the key {event.digit})"
        final = SttFinal(
            call_id=self.call_id,
            text=text,
            start_ms=0,
            end_ms=0,
            compute_s=0.0,
            ts=event.ts,
            end_reason="dtmf",
        )
        await self._carry_out(self.turn_taking.key_pressed(final, self.agent.current))

    async def _on_playout_held(self, event: PlayoutHeld) -> None:
        await self._carry_out(self.turn_taking.playout_held(event))

    async def _on_tick(self, _tick: Tick) -> None:
        if self.callee is not None:
            await self.callee.tick()
        await self._carry_out(self.turn_taking.tick(self.agent.current))
        await self.agent.retry_llm_if_quiet()
        await self.agent.hold_if_tool_slow()
        await self.handoff.tick()
        await self._hang_up_if_too_long()

    async def _on_playout_done(self, event: PlayoutDone) -> None:
        ended = await self.agent.playout_done(event)
        if ended is not None:
            self.turn_taking.playout_ended(ended)
            await self.agent.answer_turn_after_words()
            await self.desk.say_next()

    async def _on_llm_chunk(self, chunk: LlmChunk) -> None:
        if chunk.peek_of is not None:  # a warm-up's peek: the answer's first words, said early maybe
            self.agent.opener.peeked(chunk.peek_of, chunk.text)
            return
        await (self.handoff.chunk(chunk) if self.handoff.owns(chunk) else self.agent.chunk(chunk))

    async def _carry_out(self, decisions: list[Decision]) -> None:
        await self.agent.carry_out(decisions)

    # --- the rest -------------------------------------------------------------------------------
    async def _on_worker_started(self, event: WorkerStarted) -> None:
        if event.role == "stt" and event.worker_id == self.stt_worker:
            log.info("stt worker restarted, reopening the session", call_id=self.call_id)
            self.stt_worker = (
                await self.out.open_stt(self.state.language, self.settings.vocabulary) or self.stt_worker
            )
            if self.tools.start_vocabulary:  # the new session learns the call's own words again
                await self.out.teach_stt(self.tools.start_vocabulary)

    async def _on_call_ended(self, event: CallEnded) -> None:
        await self.agent.end_call()
        self.stop()

    async def _ignore(self, _event: Event) -> None:
        pass
