"""What an operator asks of a live call, carried out by its call actor.

The console sends an :class:`~voxbus.schemas.messages.OperatorCommand` as a request on
``voxbus.call.<id>.op``; the actor answers at once (accepted, or rejected with the reason) and
publishes ``operator.acted`` naming the operator, so that every step-in is on the record.

- ``hangup`` goes to the gateway now, whatever the agent is doing; ``transfer`` starts a warm
  transfer (:mod:`~voxbus.actors.call.handoff`), or a blind one, and goes only to the profile's
  configured target (the gateway checks it against ``sip.transfer_allow``
  too): an operator console is not a dial pad;
- ``say``: the sentence is spoken next, after the answer being played if there is one, and enters
  the history as the agent's words (the LLM then knows what the caller heard);
- ``guide``: a note added to the call's context, the second system message, which the LLM reads on
  every later turn and the caller never hears.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.msg import Msg

from voxbus.actors.call.agent_side import AgentSide
from voxbus.actors.call.outbound import Outbound
from voxbus.bus.codec import encode
from voxbus.config import AgentSettings
from voxbus.schemas.base import Accepted, Rejected
from voxbus.schemas.events import OperatorActed
from voxbus.schemas.messages import CallControl, OperatorCommand

GUIDE_PREFIX = "Guidance from the supervisor (follow it; never read it out):"
UNACKNOWLEDGED = "the gateway did not acknowledge the command (the call may have ended)"


@dataclass
class OperatorRequest:
    """An operator's command as the actor receives it, with the message to answer."""

    command: OperatorCommand
    msg: Msg


class OperatorDesk:
    def __init__(self, agent: AgentSide, out: Outbound, settings: AgentSettings) -> None:
        self.agent, self.out, self.settings = agent, out, settings
        self.to_say: deque[str] = deque()
        # a warm transfer (voxbus.actors.call.handoff), set by the call actor: who asks -> refusal
        self.transfer: Callable[[str], Awaitable[str | None]] | None = None

    async def handle(self, request: OperatorRequest, owner: str) -> None:
        command = request.command
        refused = await self._carry_out(command)
        reply = (
            Accepted(worker_id=owner, role="agent")
            if refused is None
            else Rejected(worker_id=owner, reason=refused)
        )
        if request.msg.reply:
            await request.msg.respond(encode(reply))
        state = self.agent.state
        self.out.emit(
            OperatorActed(
                call_id=self.out.call_id,
                turn=state.turn,
                gen=state.gen,
                operator=command.operator,
                action=command.action,
                text=command.text,
                ok=refused is None,
                reason=refused or "",
            )
        )

    async def _carry_out(self, command: OperatorCommand) -> str | None:
        """Do what the operator asked; the reason when it cannot be done."""
        if self.agent.state.ended:
            return "the call has ended"
        match command.action:
            case "hangup":
                if not await self.out.control("hangup"):
                    return UNACKNOWLEDGED
            case "transfer" if self.transfer is not None:
                return await self.transfer(command.operator)
            case "transfer":
                target = self.settings.transfer_target or None  # None: the gateway's sip.transfer_target
                transfer = CallControl(call_id=self.out.call_id, action="transfer", target=target)
                if not await self.out.send(transfer):
                    return UNACKNOWLEDGED
            case "say":
                self.to_say.append(command.text.strip())
                await self.say_next()
            case "guide":
                note = f"{GUIDE_PREFIX} {command.text.strip()}"
                state = self.agent.state
                state.context = f"{state.context}\n{note}" if state.context else note
                await self.agent.save()
        return None

    async def say_next(self) -> None:
        """Speak the next operator sentence once the agent is not speaking."""
        if self.to_say and self.agent.current is None:
            await self.agent.say(self.to_say.popleft())
