"""The agent's side of a call, for tools: calling them, the holding phrase, and what follows.

A generation that ends on tool calls waits for them: the call-control tools (transfer, hang up)
are carried out once what was said before them has been played; a served tool is called at once
(a speculative generation's calls wait until the caller's turn is over: nothing is booked on words
the caller may still take back). If the tool takes longer than ``agent.tool_hold_after_ms`` and
nothing was said yet, the holding phrase is. Once every call of the round has answered, the LLM is
asked again with the responses in the history, and says what follows from them; a tool that could
not be asked (timeout, no service, a reply that breaks the contract) or rounds used up end the
answer with ``agent.tool_failure_phrase``, which offers a person. A call refused because the caller
never said one of its values (``not_said``: the model guessed a day or a time) ends the answer with
``agent.not_heard_phrase``, which asks for them: the caller's next words bring them. A round
whose every call answered with the tool's own wording of the answer (``say``: "Done: your
appointment is now on Friday at 11:30.") ends with those words, no LLM round: the confirmation is
true to the calendar and comes seconds sooner.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from voxbus.actors.call.generation import Generation
from voxbus.actors.call.tool_use import ToolFinished
from voxbus.actors.clauses import speakable
from voxbus.actors.tools import CALL_CONTROL, ToolCall
from voxbus.schemas.events import ToolCalled
from voxbus.schemas.messages import CallControl

if TYPE_CHECKING:
    from voxbus.actors.call.conversation import Conversation
    from voxbus.actors.call.outbound import Outbound
    from voxbus.actors.call.tool_use import ToolUse
    from voxbus.clock import Clock
    from voxbus.config import AgentSettings


class ServedToolFlow:
    """Mixed into :class:`~voxbus.actors.call.agent_side.AgentSide`: its tool-calling half."""

    conversation: Conversation
    out: Outbound
    settings: AgentSettings
    clock: Clock
    call_id: str
    tools: ToolUse | None
    current: Generation | None

    async def save(self) -> None:
        raise NotImplementedError

    async def _speak(self, generation: Generation, text: str, last: bool) -> None:
        raise NotImplementedError

    async def _request_llm(self, generation: Generation) -> None:
        raise NotImplementedError

    async def _answer_complete(self, generation: Generation) -> None:
        raise NotImplementedError

    async def tool_finished(self, done: ToolFinished) -> None:
        """A tool answered (or failed): its response enters the history whatever became of the
        generation (a barge-in does not lose it); the generation, if still current, goes on."""
        generation = done.generation
        assert self.tools is not None and generation is not None
        self.tools.report(done)
        generation.tools_pending -= 1
        if done.outcome.failure == "not_said":
            generation.to_ask += [what for what in done.outcome.ask if what not in generation.to_ask]
        elif done.outcome.say:
            generation.tools_said.append(done.outcome.say)
        else:
            generation.round_needs_llm = True
        if generation is self.current and not generation.llm.done:
            generation.early_responses.append(done.outcome.for_llm())  # after the calls, in order
        else:
            self.conversation.add_tool_response(done.outcome.for_llm())
        if done.technical_failure:
            generation.tool_rounds = self.settings.tool_rounds  # no more rounds: a person is offered
        await self.save()
        if generation is self.current and generation.llm.done:
            await self._after_tools(generation)

    async def _after_tools(self, generation: Generation) -> None:
        """Every tool of this round answered: the LLM says what follows from them, or, if a tool
        could not be asked or the rounds are used up, the agent says so and offers a person."""
        if generation.tools_pending or generation is not self.current:
            return
        if generation.to_ask:
            what = spoken_list(generation.to_ask)
            await self._end_answer(generation, self.settings.not_heard_phrase.replace("{what}", what))
        elif generation.tool_rounds >= self.settings.tool_rounds:
            await self._end_answer(generation, self.settings.tool_failure_phrase)
        elif generation.tools_said and not (generation.round_needs_llm or generation.repeated_call):
            await self._end_answer(generation, " ".join(generation.tools_said))
        else:
            generation.next_round(self.clock.monotonic())
            await self._request_llm(generation)

    async def _end_answer(self, generation: Generation, phrase: str) -> None:
        """The answer ends with the agent's own ``phrase``, no LLM round. It is cut into clauses as
        the LLM's words are: piper speaks a clause only once it is whole, and the calendar's
        "Done: your appointment is now on Friday, December 11, at 11:30 AM." in one piece kept
        the caller waiting 570 ms more after the tool had answered."""
        generation.next_round(self.clock.monotonic())
        generation.llm.done = True
        generation.text += phrase
        for clause in generation.splitter.push(speakable(phrase) + " "):
            await self._speak(generation, clause, last=False)
        await self._speak(generation, generation.splitter.flush(), last=True)
        await self._answer_complete(generation)

    async def hold_if_tool_slow(self) -> None:
        """The answer waits on tools (the call, or the LLM's answer from its result) for more
        than a moment and nothing was said yet: the holding phrase."""
        generation = self.current
        if generation is None or generation.holding_said or generation.tools_since is None:
            return
        if generation.text[generation.opener_chars :].strip():
            return  # it said something before the call ("Let me check that."), or answers already
        waited_ms = (self.clock.monotonic() - generation.tools_since) * 1000
        if waited_ms >= self.settings.tool_hold_after_ms:
            generation.holding_said = True
            await self._speak(generation, self.settings.tool_holding_phrase, last=False)

    def _use_tool(self, generation: Generation, call: ToolCall) -> None:
        if call.name in CALL_CONTROL and not self.settings.tools:
            self.out.error("bad_tool_call", f"gen {generation.gen}: {call.name} is not offered (agent.tools)")
            return
        if call.name not in CALL_CONTROL:
            if self.tools is None:
                self.out.error("bad_tool_call", f"gen {generation.gen}: unknown tool {call.name!r}")
            elif (
                key := f"{call.name} {json.dumps(call.arguments, sort_keys=True)}"
            ) in generation.calls_made:
                # the same call again within one answer: its result is in the history already
                generation.repeated_call = True
                note = {"note": f"{call.name} was already called with these arguments; see its result"}
                generation.early_responses.append(note)  # after the call in the history
            elif generation.speculative:
                generation.tools_deferred.append(call)
            else:  # an unknown name or bad arguments are answered by tool.failed
                generation.calls_made.add(key)
                self.tools.start(generation, call, said=self.conversation.said(generation.user_text))
            return
        # call control waits until what the agent said before it has been played
        self.out.emit(
            ToolCalled(
                call_id=self.call_id,
                turn=generation.turn,
                gen=generation.gen,
                name=call.name,
                arguments=call.arguments,
            )
        )
        action = CALL_CONTROL[call.name]
        target = (self.settings.transfer_target or None) if action == "transfer" else None
        command = CallControl(call_id=self.call_id, action=action, target=target)  # type: ignore[arg-type]
        generation.after_playout.append(command)


def spoken_list(items: list[str]) -> str:
    """``["day", "time"]`` as said: "day and time"; three: "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
