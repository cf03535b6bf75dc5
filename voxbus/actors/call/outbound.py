"""Everything a call actor sends: events, call control, and the requests of its generations to
the STT, LLM and TTS workers. The only part of the call actor that talks to the bus."""

from __future__ import annotations

from typing import Any

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from voxbus.actors.call.generation import Generation
from voxbus.actors.spoken import spoken_dates
from voxbus.actors.tools import CALL_TOOLS
from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage
from voxbus.bus.connection import Bus
from voxbus.clock import Clock
from voxbus.config import AgentSettings
from voxbus.logs import get_logger
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import ErrorEvent, Event, LlmRequested, TtsRequested
from voxbus.schemas.messages import (
    AGENT_SAID_MAX_CHARS,
    CallControl,
    Cancel,
    ChatMessage,
    LlmRequest,
    SttAgentSaid,
    SttSession,
    SttVocabulary,
)

log = get_logger(__name__)
ACKNOWLEDGED = ("hangup", "transfer")  # call control that is acknowledged and retried until it is
CONTROL_ACK_S = 2.0  # within the operator console's 3 s wait for the actor's answer
CONTROL_TRY_S = 0.5


class Outbound:
    def __init__(self, bus: Bus, clock: Clock, call_id: str, settings: AgentSettings) -> None:
        self.bus, self.clock, self.call_id, self.settings = bus, clock, call_id, settings
        self.language = "en" if settings.language == "auto" else settings.language  # what TTS speaks
        # offered to the LLM: call control if enabled; the served tools join when found
        self.tools: list[dict[str, Any]] = list(CALL_TOOLS) if settings.tools else []

    # --- events and call control -------------------------------------------------------------
    def emit(self, event: Event, at: float | None = None) -> None:
        """Publish the call's event, stamped now or ``at`` (a time already past: when it began)."""
        event.ts = self.clock.time() if at is None else at
        self.bus.emit(event)

    def error(self, code: str, message: str) -> None:
        log.error(message, call_id=self.call_id, code=code)
        self.emit(ErrorEvent(call_id=self.call_id, code=code, message=message))

    async def control(self, action: str, gen: int | None = None) -> bool:
        command = CallControl(call_id=self.call_id, action=action, gen=gen)  # type: ignore[arg-type]
        return await self.send(command)

    async def send(self, command: CallControl) -> bool:
        """Send call control to the gateway. Hold, resume and flush are fire-and-forget (a later
        one supersedes a lost one, and they are on the barge-in's critical path); a hang-up or a
        transfer lost on the way would leave the caller on the line, so it is acknowledged and
        retried, done once. False (and an error event) if the gateway never acknowledged it."""
        subject = subjects.control(self.call_id)
        if command.action not in ACKNOWLEDGED:
            await self.bus.publish(subject, command)
            return True
        if await self.bus.command(subject, command, within_s=CONTROL_ACK_S, per_try_s=CONTROL_TRY_S):
            return True
        self.error(
            "control_unacknowledged",
            f"the gateway did not acknowledge {command.action} of call {self.call_id}"
            f" within {CONTROL_ACK_S:.0f} s",
        )
        return False

    async def cancel(self, generation: Generation, reason: str) -> None:
        """Stop a generation at the LLM and TTS workers, and drop whatever of its audio the
        gateway has queued or will still receive."""
        cancel = Cancel(call_id=self.call_id, gen=generation.gen, reason=reason)
        await self.bus.publish(subjects.cancel(self.call_id), cancel)
        if generation.clauses:  # audio was asked for
            await self.control("flush", generation.gen)

    async def supersede_llm(self, generation: Generation, reason: str) -> None:
        """Before asking again: the worker that went quiet stops its request of the generation
        (the new one may go to another worker; TTS and the audio already made go on)."""
        superseded = Cancel(
            call_id=self.call_id,
            gen=generation.gen,
            reason=reason,
            requests_below=generation.llm.request_no + 1,
        )
        await self.bus.publish(subjects.cancel(self.call_id), superseded)

    async def cancel_gen(self, gen: int, reason: str) -> None:
        """Stop a request that produces no audio (a transfer summary) at the LLM worker."""
        await self.bus.publish(
            subjects.cancel(self.call_id), Cancel(call_id=self.call_id, gen=gen, reason=reason)
        )

    # --- workers ------------------------------------------------------------------------------
    async def open_stt(self, language: str, vocabulary: list[str]) -> str | None:
        """Have an STT worker take the call's audio; its id, or None (with an error event)."""
        request = SttSession(call_id=self.call_id, language=language, vocabulary=vocabulary)
        reply = await self.bus.request_until_taken(
            subjects.STT_SESSIONS, request, Accepted, within_s=45, per_try_s=2.0, pause_s=0.1, pause_max_s=1.0
        )
        if reply is None:
            self.error("stt_unavailable", "no STT worker took the call's audio")
            return None
        return reply.worker_id

    async def teach_stt(self, words: list[str]) -> None:
        """Words this caller may say (learnt during the call), to the call's STT session."""
        update = SttVocabulary(call_id=self.call_id, words=words)
        await self.bus.publish(subjects.stt_vocabulary(self.call_id), update)

    async def tell_stt_said(self, text: str) -> None:
        """What the agent has just said, whole, to the call's STT session: the caller's reply is
        heard after it (see ``SttAgentSaid``)."""
        said = SttAgentSaid(call_id=self.call_id, text=text[-AGENT_SAID_MAX_CHARS:])
        await self.bus.publish(subjects.stt_said(self.call_id), said)

    async def request_llm(self, generation: Generation, messages: list[ChatMessage]) -> None:
        """Ask a free LLM worker for the generation, continuing after what it already said. If no
        worker takes it, ``generation.llm.worker`` stays None and the watchdog asks again."""
        generation.llm.request_no += 1  # from now on, chunks of an earlier request are refused
        request = LlmRequest(
            call_id=self.call_id,
            gen=generation.gen,
            turn=generation.turn,
            messages=messages,
            continue_from=generation.llm.raw,
            request_no=generation.llm.request_no,
            tools=self.tools,
            max_tokens=self.settings.max_tokens,
            temperature=self.settings.temperature,
        )
        generation.llm.last_progress = self.clock.monotonic()
        generation.llm.streamed = False  # this request has not streamed yet
        # the event is stamped with the time the request went out, not the worker's acceptance: a
        # worker whose answer needs no step (its peek sampled the first token) publishes
        # llm.first_token before its acceptance reaches the call
        sent_at = self.clock.time()
        try:
            reply = await self.bus.request(subjects.LLM_GENERATE, request, Accepted, 1.0)
        except (NoRespondersError, NatsTimeout, BadMessage) as exc:
            log.warning(
                "no LLM worker took the generation yet",
                call_id=self.call_id,
                gen=generation.gen,
                reason=type(exc).__name__,
            )
            generation.llm.worker = None
            return
        generation.llm.worker = reply.worker_id
        self.emit(
            LlmRequested(
                call_id=self.call_id,
                turn=generation.turn,
                gen=generation.gen,
                worker_id=reply.worker_id,
                attempt=generation.llm.attempt,
            ),
            at=sent_at,
        )

    async def ask_llm(self, gen: int, turn: int, messages: list[ChatMessage], max_tokens: int) -> None:
        """A request whose text is not spoken (a transfer summary): no tools, streamed back on the
        call's LLM subject like any other; nobody taking it is the caller's timeout to handle."""
        request = LlmRequest(
            call_id=self.call_id, gen=gen, turn=turn, messages=messages, max_tokens=max_tokens
        )
        try:
            await self.bus.request(subjects.LLM_GENERATE, request, Accepted, 1.0)
        except (NoRespondersError, NatsTimeout, BadMessage) as exc:
            log.warning(
                "no LLM worker took the request", call_id=self.call_id, gen=gen, reason=type(exc).__name__
            )

    async def warm_llm(
        self,
        gen: int,
        turn: int,
        messages: list[ChatMessage],
        peek_tokens: int = 0,
        peek_for: tuple[str, ...] = (),
    ) -> None:
        """Have the conversation so far evaluated while the agent speaks: the next turn's request
        then evaluates only the caller's words (the LLM worker skips this if it has real work).
        ``peek_tokens``: then decode the answer's first words, while they may become one of
        ``peek_for`` (see ``early_opener``)."""
        warm = LlmRequest(
            call_id=self.call_id,
            gen=gen,
            turn=turn,
            messages=messages,
            tools=self.tools,
            warm_only=True,
            peek_tokens=peek_tokens,
            peek_for=list(peek_for),
        )
        await self.bus.publish(subjects.LLM_GENERATE, warm)

    async def speak(self, generation: Generation, text: str, last: bool) -> None:
        """Send a clause to TTS: the first to any free worker, the rest to the one that took it
        (so that the clauses of a generation play in order)."""
        text = spoken_dates(text, self.language)
        request = generation.tts_request(self.call_id, text, last, self.clock.time())
        request.language = self.language
        if text:
            self.emit(
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
            self.error(
                "tts_unavailable", f"no TTS worker took clause {request.index} of gen {generation.gen}"
            )
        else:
            generation.tts_worker = reply.worker_id
