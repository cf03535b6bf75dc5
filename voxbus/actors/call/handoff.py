"""A warm transfer: the person taking the call learns who calls and why before the call reaches them.

Whoever asks for the transfer (the LLM's ``transfer_to_human`` tool, or an operator), the call actor
hands it to :class:`Handoff`, which:

1. has the caller hear ``agent.transfer_holding_phrase``;
2. asks the LLM, in the same request shape as an answer (the conversation so far, whose prefix the
   worker has evaluated already, plus one instruction at the end), for a short handover summary,
   with a generation id of its own (at or above :data:`SUMMARY_GEN`, never an answer's);
3. publishes ``transfer.summary`` (the LLM's text, or the caller's last words when the LLM has not
   finished within ``agent.transfer_summary_timeout_s``), then sends the SIP transfer;
4. follows the gateway's ``transfer.result``: a 2xx ends the call on our side (the gateway hangs
   up); anything else final, or no outcome within ``agent.transfer_answer_timeout_s``, *returns* the
   call: ``transfer.returned``, ``agent.transfer_failed_phrase`` spoken, a note in the context so
   that the LLM knows the transfer failed, and the conversation goes on.

With ``agent.warm_transfer`` off, a transfer is sent at once (blind), as before.
The decisions are plain; only :class:`~voxbus.actors.call.outbound.Outbound` talks to the bus.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxbus.actors.call.conversation import Conversation
from voxbus.actors.call.operator import OperatorDesk
from voxbus.actors.call.outbound import Outbound
from voxbus.clock import Clock
from voxbus.config import AgentSettings
from voxbus.schemas.events import TransferResult, TransferReturned, TransferSummary
from voxbus.schemas.messages import CallControl, ChatMessage, LlmChunk

SUMMARY_GEN = 1_000_000  # summaries' generation ids: answers count up from 1 and never get here
SUMMARY_MAX_TOKENS = 70
SUMMARY_INSTRUCTION = (
    "(Not from the caller.) The call is now being handed to a human colleague. Write the handover "
    "note for that colleague in at most two short sentences: what the caller wants and what has been "
    "done so far. Write only the note; do not speak to the caller."
)
RETURNED_NOTE = "The transfer to a colleague failed (nobody answered); you are still talking with the caller."


@dataclass
class PendingTransfer:
    target: str  # '' : the gateway's sip.transfer_target
    requested_by: str
    gen: int
    asked_at: float  # monotonic s
    summary: str = ""
    sent_at: float | None = None  # monotonic s: the SIP transfer was sent


class Handoff:
    def __init__(
        self,
        conversation: Conversation,
        desk: OperatorDesk,
        out: Outbound,
        settings: AgentSettings,
        clock: Clock,
    ) -> None:
        self.conversation, self.desk, self.out, self.settings, self.clock = (
            conversation,
            desk,
            out,
            settings,
            clock,
        )
        self.pending: PendingTransfer | None = None
        self._summaries = 0

    @staticmethod
    def owns(chunk: LlmChunk) -> bool:
        return chunk.gen >= SUMMARY_GEN

    async def start(self, requested_by: str) -> str | None:
        """Begin a transfer to the agent's target; the reason when one cannot begin."""
        target = self.settings.transfer_target
        if self.pending is not None:
            return "a transfer is already under way"
        if not self.settings.warm_transfer:
            await self.out.send(
                CallControl(call_id=self.out.call_id, action="transfer", target=target or None)
            )
            return None
        self._summaries += 1
        gen = SUMMARY_GEN + self._summaries
        self.pending = PendingTransfer(target, requested_by, gen, self.clock.monotonic())
        self.desk.to_say.append(self.settings.transfer_holding_phrase)
        await self.desk.say_next()
        messages = [
            *self.conversation.prompt(),
            ChatMessage(role="user", content=SUMMARY_INSTRUCTION),
        ]
        await self.out.ask_llm(gen, self.conversation.turn, messages, SUMMARY_MAX_TOKENS)
        return None

    async def chunk(self, chunk: LlmChunk) -> None:
        pending = self.pending
        if pending is None or chunk.gen != pending.gen or pending.sent_at is not None:
            return  # a summary given up on, or one that arrives after the transfer was sent
        pending.summary += chunk.text
        if not chunk.done:
            return
        summary = " ".join(pending.summary.split())
        if summary:
            await self._hand_over(pending, summary, "llm")
        else:
            await self._hand_over_anyway(pending)

    async def tick(self) -> None:
        pending = self.pending
        if pending is None:
            return
        now = self.clock.monotonic()
        if pending.sent_at is None and now - pending.asked_at > self.settings.transfer_summary_timeout_s:
            await self.out.cancel_gen(pending.gen, "summary too slow: the transfer goes on without it")
            await self._hand_over_anyway(pending)
        elif pending.sent_at is not None and now - pending.sent_at > self.settings.transfer_answer_timeout_s:
            await self._returned(pending, 0, "no outcome in time")

    async def result(self, event: TransferResult) -> None:
        pending = self.pending
        if pending is None or pending.sent_at is None or not event.final:
            return
        if 200 <= event.code < 300:
            self.pending = None  # the person has the caller; the gateway ends our leg
        else:
            await self._returned(pending, event.code, event.reason)

    async def _hand_over_anyway(self, pending: PendingTransfer) -> None:
        """The LLM gave nothing in time: the colleague reads the caller's own last words."""
        said = [m.content for m in self.conversation.history if m.role == "user"][-2:]
        await self._hand_over(pending, " / ".join(said) or "(the caller said nothing yet)", "transcript")

    async def _hand_over(self, pending: PendingTransfer, summary: str, source: str) -> None:
        pending.sent_at = self.clock.monotonic()
        state = self.conversation.state
        self.out.emit(
            TransferSummary(
                call_id=self.out.call_id,
                turn=state.turn,
                gen=pending.gen,
                target=pending.target,
                caller=state.caller,
                called=state.called,
                summary=summary[:1000],
                source=source,  # type: ignore[arg-type]
                requested_by=pending.requested_by,
            )
        )
        command = CallControl(call_id=self.out.call_id, action="transfer", target=pending.target or None)
        await self.out.send(command)

    async def _returned(self, pending: PendingTransfer, code: int, reason: str) -> None:
        self.pending = None
        state = self.conversation.state
        self.out.emit(
            TransferReturned(
                call_id=self.out.call_id,
                turn=state.turn,
                target=pending.target,
                code=code,
                reason=reason[:200],
            )
        )
        state.context = f"{state.context}\n{RETURNED_NOTE}" if state.context else RETURNED_NOTE
        self.desk.to_say.append(self.settings.transfer_failed_phrase)
        await self.desk.say_next()
