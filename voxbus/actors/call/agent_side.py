"""The agent's side of a call: the generation in flight, from the LLM request to the last frame played.

:class:`AgentSide` carries out what turn-taking decides (hold, resume, interrupt, withdraw, start
a speculative answer, answer a turn), keeps the current :class:`Generation`, feeds it the LLM's
chunks and sends its clauses to TTS, records what the workers and the gateway report about it,
asks the LLM again when a worker goes quiet, and keeps the conversation saved. Its I/O goes
through :class:`Outbound`; its time comes from the injected clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from voxbus.actors.call.conversation import CallStore, Conversation
from voxbus.actors.call.early_opener import PEEK_TOKENS, EarlyOpener
from voxbus.actors.call.generation import Generation, Kind
from voxbus.actors.call.metrics import turn_metrics
from voxbus.actors.call.outbound import Outbound
from voxbus.actors.call.repeats import first_sentence
from voxbus.actors.call.tool_flow import ServedToolFlow
from voxbus.actors.call.tool_use import ToolUse
from voxbus.actors.call.turn_taking import (
    Decision,
    DropSpeculative,
    EndTurn,
    HoldAudio,
    Interrupt,
    Prefill,
    ResumeAudio,
    StartSpeculative,
    Withdraw,
)
from voxbus.actors.clauses import speakable
from voxbus.clock import Clock
from voxbus.config import AgentSettings
from voxbus.lexicons import Lexicon
from voxbus.logs import get_logger
from voxbus.schemas.events import (
    Event,
    LlmFirstToken,
    LlmRetried,
    PlayoutDone,
    PlayoutStarted,
    StateChanged,
    TtsClauseDone,
    TtsFirstFrame,
)
from voxbus.schemas.messages import CallState, LlmChunk

log = get_logger(__name__)


class AgentSide(ServedToolFlow):
    def __init__(
        self,
        conversation: Conversation,
        store: CallStore,
        out: Outbound,
        settings: AgentSettings,
        clock: Clock,
    ) -> None:
        self.conversation = conversation
        self.store = store
        self.out = out
        self.settings = settings
        self.clock = clock
        self.call_id = out.call_id
        self.tools: ToolUse | None = None  # set by the actor: the call's served tools
        self.transfer: Callable[[str], Awaitable[str | None]] | None = None  # set by the actor: handoff
        self.current: Generation | None = None
        self.state_name = "listening"  # listening, thinking or speaking (state.changed)
        self.prefilled = ""  # the caller's words last evaluated ahead (Prefill)
        self.opener = EarlyOpener(Lexicon(), settings.early_opener)  # its lexicon: set by the actor
        self.group_starts: frozenset[str] = frozenset()  # words a first clause may be cut before
        # a caller's turn that ended while set words (the greeting, an operator's sentence) were
        # still to be said: answered once they have been, so that they are never cut unheard
        self.turn_after_words: EndTurn | None = None

    @property
    def state(self) -> CallState:
        return self.conversation.state

    async def save(self) -> None:
        await self.store.save(self.state)

    def _set_state(self, state: str) -> None:
        if state != self.state_name:
            self.state_name = state
            turn, gen = self.state.turn, self.state.gen
            self.out.emit(StateChanged(call_id=self.call_id, turn=turn, gen=gen, state=state))  # type: ignore[arg-type]

    async def carry_out(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            match decision:
                case HoldAudio(gen=gen):
                    await self.out.control("hold", gen)
                case ResumeAudio(gen=gen, event=event):
                    self.out.emit(event)
                    await self.out.control("resume", gen)
                case Interrupt(generation=generation, event=event, heard=heard):
                    self.out.emit(event)
                    await self.cancel(generation, "barge-in", heard=heard)
                    await self.answer_turn_after_words()  # the words that cut in may supersede it
                case DropSpeculative(generation=generation):
                    await self.cancel(generation, "the caller went on")
                case Withdraw(generation=generation):
                    await self._withdraw(generation)
                case StartSpeculative(text=text):
                    await self._start_speculative(text)
                case Prefill(text=text):
                    await self._prefill(text)
                case EndTurn():
                    await self._answer(decision)

    # --- generations --------------------------------------------------------------------------
    async def _withdraw(self, generation: Generation) -> None:
        """The caller went on before hearing a word of the answer: the answer goes unheard and
        their turn leaves the history (turn-taking carries its words into the next one)."""
        self.conversation.withdraw_turn()
        await self.cancel(generation, "the caller went on", trace=False)
        self._set_state("listening")
        await self.save()

    def _new_generation(self, kind: Kind) -> Generation:
        gen = self.conversation.next_gen()
        self.current = Generation.start(
            gen,
            self.state.turn,
            kind,
            self.settings.min_clause_chars,
            self.clock.monotonic(),
            self.settings.opener_clauses,
            first_sentence(self.settings.greeting) if kind != "greeting" else "",
            self.settings.first_clause_words,
            self.group_starts,
        )
        return self.current

    async def _prefill(self, text: str) -> None:
        """The LLM evaluates the conversation with the caller's words so far as their turn: the
        prompt of the answer then differs only from where those words end (a prefix it keeps)."""
        if text != self.prefilled:
            self.prefilled = text
            peek = PEEK_TOKENS if self.opener.enabled else 0
            prompt = self.conversation.prompt(text)
            await self.out.warm_llm(self.state.gen, self.state.turn, prompt, peek, self.opener.wanted())

    async def _start_speculative(self, text: str) -> None:
        generation = self._new_generation("answer")
        generation.speculative = generation.held_back = True
        generation.user_text = text
        generation.turn = self.state.turn + 1
        await self._request_llm(generation)

    async def _answer(self, end: EndTurn) -> None:
        peek = self.opener.peek
        opening = self.opener.for_turn(end.final.text, self._early_holding_phrase())
        # for whoever measures how often it applies: the peek, the words it was decoded on
        log.debug("early opener", call_id=self.call_id, opener=opening, peek=peek, final=end.final.text)
        if end.speculative is not None:  # already thinking about exactly these words
            generation = end.speculative
            self._begin_turn(generation, end)
            await self.save()
            for clause, last in generation.release():
                await self._speak(generation, clause, last)
            for call in generation.tools_deferred:  # a tool is used only once the turn is over
                self._use_tool(generation, call)
            generation.tools_deferred.clear()
            if generation.llm.done:
                await self._llm_finished(generation)
            return
        greeting = end.superseded is not None and end.superseded.kind == "greeting"
        if greeting or (end.awaited is not None and end.awaited is self.current):
            self._answer_after_words(end)  # the greeting is said whole, a tool's answer awaited
            return
        if end.superseded is not None:
            await self.cancel(end.superseded, "superseded by a new caller turn")
        generation = self._new_generation("answer")
        self._begin_turn(generation, end)
        await self.save()
        if opening is not None and opening.holding:  # a tool call to come: its holding phrase now
            generation.holding_said = generation.early_hold = True
            await self._speak(generation, opening.text, last=False)
        elif opening is not None:  # said now; the LLM goes on after it
            generation.say_opener(opening.text)
            await self._speak(generation, speakable(opening.text), last=False)
        await self._request_llm(generation)

    def _early_holding_phrase(self) -> str:
        """The holding phrase to say as the turn ends if the answer opens with a tool call: only
        where this call has served tools (a calendar, not only a transfer)."""
        served = self.tools is not None and bool(self.tools.specs)
        return self.settings.tool_holding_phrase if served and self.settings.early_hold else ""

    def _answer_after_words(self, end: EndTurn) -> None:
        """The caller's turn ended before set words were said (an operator typed a sentence while
        whisper was still writing the caller's last words), or while the agent was silent waiting
        on a tool ("Friday at eleven thirty." said again after "One moment, let me check."): the
        words are said whole, the tool's answer awaited, and the turn is answered after them. Two
        such turns are one."""
        waiting = self.turn_after_words
        if waiting is not None:
            text = f"{waiting.final.text.strip()} {end.final.text.strip()}"
            end = replace(end, final=end.final.model_copy(update={"text": text}))
        self.turn_after_words = replace(end, superseded=None, awaited=None)

    async def answer_turn_after_words(self) -> None:
        """Answer the turn that waited for set words, once they are said (or cut by the caller)."""
        end, self.turn_after_words = self.turn_after_words, None
        if end is not None and self.current is None and not self.state.ended:
            await self._answer(end)

    def _begin_turn(self, generation: Generation, end: EndTurn) -> None:
        """The caller's turn is over: it enters the history and ``generation`` answers it."""
        turn = self.conversation.open_turn(end.final.text.strip())
        generation.commit(turn, end.final, end.arrived)
        if end.speech_end_ts is not None and end.vad_decision_ts is not None:
            generation.speech_end_ts = end.speech_end_ts
            generation.timeline.marks["vad_decision"] = end.vad_decision_ts
        self._set_state("thinking")

    async def cancel(
        self, generation: Generation, reason: str, heard: str | None = None, trace: bool = True
    ) -> None:
        """Stop a generation everywhere. ``heard``: what the caller heard of it (a barge-in); the
        history keeps only that, marked interrupted. A speculative generation, or one cancelled
        with ``trace=False``, leaves no trace."""
        await self.out.cancel(generation, reason)
        if self.current is generation:
            self.current = None
        if generation.speculative or not trace:
            return  # nothing was said, nothing was recorded
        self.conversation.cut_answer(
            generation.history_index, generation.heard_at_end() if heard is None else heard
        )
        if generation.kind == "answer":
            self.out.emit(turn_metrics(self.call_id, generation, interrupted=True))
        self._set_state("listening")
        await self.save()
        if generation.kind == "answer":
            # the history now ends with the answer cut where the caller stopped it, not as the LLM
            # evaluated it: evaluated again while they go on speaking, not after (the turn after
            # an interruption waited 1.6-1.8 s for its first token, others 0.6)
            await self.out.warm_llm(self.state.gen, self.state.turn, self.conversation.prompt())

    async def _request_llm(self, generation: Generation) -> None:
        if self.tools is not None:
            await self.tools.ready()
            self.tools.enrich(self.state)
        pending = generation.user_text if generation.speculative else None  # the turn is still open
        await self.out.request_llm(generation, self.conversation.prompt(pending))

    async def retry_llm_if_quiet(self) -> None:
        generation = self.current
        if generation is None or generation.kind != "answer" or generation.llm.done:
            return
        reason = generation.llm.retry_reason(
            self.clock.monotonic(), self.settings.request_timeout_s, self.settings.first_token_timeout_s
        )
        if reason is None:
            return
        generation.llm.attempt += 1
        self.out.emit(
            LlmRetried(
                call_id=self.call_id,
                turn=generation.turn,
                gen=generation.gen,
                reason=reason,
                attempt=generation.llm.attempt,
                received_chars=len(generation.text),
            )
        )
        if generation.llm.worker is not None:  # a worker took it and went quiet
            await self.out.supersede_llm(generation, f"asked again: {reason}")
        await self._request_llm(generation)

    async def chunk(self, chunk: LlmChunk) -> None:
        generation = self.current
        if generation is None or chunk.gen != generation.gen or not generation.llm.accepts(chunk):
            return  # a cancelled generation, or a worker this generation gave up on
        if chunk.finish_reason and chunk.finish_reason.startswith("error"):
            self.out.error("llm_failed", f"LLM worker {chunk.worker_id}: {chunk.finish_reason}")
        taken = generation.take(chunk, self.clock.monotonic())
        for call in taken.tool_calls:
            self._use_tool(generation, call)
        for problem in taken.errors:
            self.out.error("bad_tool_call", f"gen {generation.gen}: {problem}")
        for clause, last in generation.wait_for_tools(taken.clauses, self.clock.monotonic()):
            await self._speak(generation, clause, last)
        if chunk.done and not generation.speculative:
            await self._llm_finished(generation)

    async def _llm_finished(self, generation: Generation) -> None:
        if not generation.awaiting_tools:
            await self._answer_complete(generation)
            return
        self.conversation.add_tool_calls(generation.round_text())
        for response in generation.early_responses:
            self.conversation.add_tool_response(response)
        generation.early_responses.clear()
        await self.save()
        await self._after_tools(generation)

    async def _answer_complete(self, generation: Generation) -> None:
        generation.history_index = self.conversation.add_answer(generation.text[generation.answer_from :])
        await self.save()
        await self.out.warm_llm(self.state.gen, self.state.turn, self.conversation.prompt())

    async def greet(self, warm: bool = True) -> None:
        """``warm`` False: the call actor has the prompt evaluated once the call's tools are known
        (a prompt without them shares only the system prompt's first lines with the agent's,
        which is evaluated with them: ~4 s of the LLM's time at each clinic call's start, wasted)."""
        await self.say(self.settings.greeting, warm)

    async def say(self, text: str, warm: bool = True) -> None:
        """Speak ``text`` as the agent's words, not written by the LLM (the greeting, a sentence
        an operator typed); it enters the history as said."""
        generation = self._new_generation("greeting")
        generation.llm.done = True
        generation.text = text
        generation.history_index = self.conversation.add_answer(text)
        await self._speak(generation, speakable(text), last=True)
        await self.save()
        # evaluated while it is said: otherwise the first answer of every call evaluates the call's
        # context and the greeting first (with llm.parallel > 1, into the call's own KV sequence)
        if warm:
            await self.out.warm_llm(self.state.gen, self.state.turn, self.conversation.prompt())

    async def _speak(self, generation: Generation, text: str, last: bool) -> None:
        if not generation.hold(text, last):
            await self.out.speak(generation, text, last)

    # --- what the workers and the gateway report about the current generation ------------------
    def _of_current(self, event: Event) -> Generation | None:
        generation = self.current
        return generation if generation is not None and event.gen == generation.gen else None

    async def first_token(self, event: LlmFirstToken) -> None:
        if generation := self._of_current(event):
            generation.timeline.reached("llm_first_token", event.ts, self.clock.time())
            generation.timeline.computed("llm", event.latency_s)

    async def tts_first_frame(self, event: TtsFirstFrame) -> None:
        if generation := self._of_current(event):
            generation.timeline.reached("tts_first_frame", event.ts, self.clock.time())
            generation.timeline.computed("tts", event.latency_s)

    async def clause_done(self, event: TtsClauseDone) -> None:
        if generation := self._of_current(event):
            generation.clause_frames[event.index] = event.frames

    async def playout_started(self, event: PlayoutStarted) -> None:
        if generation := self._of_current(event):
            generation.timeline.reached("first_audio", event.ts, self.clock.time())
            self._set_state("speaking")

    async def playout_done(self, event: PlayoutDone) -> int | None:
        """The gateway played a generation's audio to its end (or stopped): the generation id
        when that ended it."""
        generation = self._of_current(event)
        waiting = not generation.llm.done or generation.awaiting_tools if generation else False
        if generation is None or (waiting and event.complete):
            return None  # not ours, or it played all audio so far and more is coming
        self.current = None
        self._set_state("listening")
        if generation.kind == "answer":
            self.out.emit(turn_metrics(self.call_id, generation, interrupted=not event.complete))
        if event.complete:
            if generation.text.strip():  # the caller's reply is heard after these words
                await self.out.tell_stt_said(generation.text)
            for command in generation.after_playout:
                if command.action == "transfer" and self.transfer is not None:
                    await self.transfer("agent")  # a warm transfer: summary first
                else:
                    await self.out.send(command)
        return generation.gen

    async def end_call(self) -> None:
        self.turn_after_words = None
        if self.current is not None:
            await self.cancel(self.current, "call ended")
        self.state.ended = True
        await self.save()
