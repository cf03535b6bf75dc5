"""Calling a tool for a call: arguments checked against its schema, one request with the tool's
timeout, one retry with the same idempotency key, and an outcome that says what happened."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from voxbus.tools.contract import TOOL_PREFIX, BadTool, ToolRequest, ToolSpec, argument_problem, parse_reply
from voxbus.tools.heard import Said, not_said, to_ask

Failure = Literal[
    "unknown_tool", "bad_arguments", "not_said", "timeout", "unavailable", "bad_reply", "refused"
]
RETRY_PAUSE_S = 0.2  # a service being restarted: give it a moment before the retry


@dataclass
class ToolOutcome:
    name: str
    arguments: dict[str, Any]
    ok: bool
    result: Any = None
    error: str = ""
    failure: Failure | None = None  # why it failed; None when ok or the tool said no ("refused")
    latency_s: float = 0.0
    attempts: int = 0
    ask: list[str] = field(default_factory=list)  # not_said: what to ask the caller for ("day", "time")
    say: str = ""  # the tool's own wording of the agent's answer (ToolReply.say)

    def for_llm(self) -> dict[str, Any]:
        """What the LLM reads back as the tool's response."""
        return {"result": self.result} if self.ok else {"error": self.error}


@dataclass
class CallContext:
    call_id: str
    caller: str = ""
    called: str = ""


async def call_tool(
    nc: Client,
    spec: ToolSpec | None,
    name: str,
    arguments: dict[str, Any],
    context: CallContext,
    idempotency_key: str,
    said: Said | None = None,
) -> ToolOutcome:
    """Ask the tool; ``said`` (the call's words so far), when given, must hold the values of the
    arguments the tool marks ``x-caller-said``, or the tool is not asked."""
    started = time.monotonic()

    def outcome(**fields: Any) -> ToolOutcome:
        return ToolOutcome(name=name, arguments=arguments, latency_s=time.monotonic() - started, **fields)

    if spec is None:
        return outcome(ok=False, failure="unknown_tool", error=f"there is no tool called {name!r}")
    problem = argument_problem(spec, arguments)
    if problem is not None:
        return outcome(ok=False, failure="bad_arguments", error=f"bad arguments for {name}: {problem}")
    unsaid = not_said(spec.parameters, arguments, said) if said is not None else None
    if unsaid is not None:
        error = f"{name} not done: {unsaid}; ask the caller for it"
        ask = to_ask(spec.parameters, arguments, said) if said is not None else []
        return outcome(ok=False, failure="not_said", error=error, ask=ask)
    last_failure: Failure = "timeout"
    for attempt in (1, 2):
        request = ToolRequest(
            call_id=context.call_id,
            arguments=arguments,
            idempotency_key=idempotency_key,
            attempt=attempt,
            caller=context.caller,
            called=context.called,
        )
        try:
            msg = await nc.request(
                TOOL_PREFIX + name, request.model_dump_json().encode(), timeout=spec.timeout_s
            )
        except NoRespondersError:
            last_failure = "unavailable"
            await asyncio.sleep(RETRY_PAUSE_S)
            continue
        except (NatsTimeout, TimeoutError):
            last_failure = "timeout"
            continue
        try:
            reply = parse_reply(msg.data, msg.headers)
        except BadTool as exc:
            return outcome(ok=False, failure="bad_reply", error=f"{name}: {exc}", attempts=attempt)
        say = reply.say or ""
        if reply.ok:
            return outcome(ok=True, result=reply.result, attempts=attempt, say=say)
        return outcome(ok=False, failure="refused", error=reply.error or "", attempts=attempt, say=say)
    why = {
        "timeout": f"{name} did not answer within {spec.timeout_s:g} s, twice",
        "unavailable": f"no service serves {name} right now",
    }[last_failure]
    return outcome(ok=False, failure=last_failure, error=why, attempts=2)
