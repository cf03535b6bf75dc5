"""The tools of one call: which are offered to the LLM, calling them, and their events.

At the call's start the tools that are up are found (``$SRV.INFO``) and narrowed to the agent's
``service_tools`` patterns; the call-control tools (transfer, hang up) join them when
``agent.tools`` is on. A served tool runs as a task beside the actor; its outcome comes back to
the actor as a :class:`ToolFinished` message, so that the conversation changes in the actor's
order. Each call gets an idempotency key (call, generation, index) that a retry repeats.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from voxbus.actors.call.generation import Generation
from voxbus.actors.call.outbound import Outbound
from voxbus.actors.tools import CALL_TOOLS, ToolCall
from voxbus.bus.connection import Bus
from voxbus.config import AgentSettings
from voxbus.logs import get_logger
from voxbus.schemas.events import ToolCalled, ToolFailed, ToolResult, ToolsOffered
from voxbus.schemas.messages import VOCABULARY_MAX_CHARS, VOCABULARY_MAX_WORDS, CallState
from voxbus.tools.catalog import RECENT_TOOLS, discover
from voxbus.tools.contract import ToolSpec
from voxbus.tools.heard import NOTHING_SAID, Said, times_meant
from voxbus.tools.invoke import CallContext, ToolOutcome, call_tool

log = get_logger(__name__)
CONTROL_TOOLS = {t["function"]["name"] for t in CALL_TOOLS}
T = TypeVar("T")
TECHNICAL = {"timeout", "unavailable", "bad_reply"}  # the tool could not be asked: a person is offered


def served_tools(agent: AgentSettings, found: dict[str, T]) -> dict[str, T]:
    """The served tools an agent's calls are offered, by name, in the order they are offered:
    those its ``service_tools`` patterns allow (call control is never a served tool)."""
    return {
        name: tool
        for name, tool in sorted(found.items())
        if name not in CONTROL_TOOLS and any(fnmatch.fnmatchcase(name, p) for p in agent.service_tools)
    }


def vocabulary_of(result: object) -> list[str]:
    """The words a start tool's answer says the caller may use (its ``vocabulary``: the caller's
    name, their dentist's), as whisper's prompt takes them; anything else in it is ignored."""
    words = result.get("vocabulary") if isinstance(result, dict) else None
    if not isinstance(words, list):
        return []
    kept = [w.strip() for w in words if isinstance(w, str) and 0 < len(w.strip()) <= VOCABULARY_MAX_CHARS]
    return list(dict.fromkeys(kept))[:VOCABULARY_MAX_WORDS]


@dataclass
class ToolFinished:
    """Actor message: a served tool call of ``generation`` is over."""

    generation: Generation | None  # None: the call's start tool
    key: str
    outcome: ToolOutcome

    @property
    def technical_failure(self) -> bool:
        return self.outcome.failure in TECHNICAL


class ToolUse:
    def __init__(
        self,
        bus: Bus,
        out: Outbound,
        settings: AgentSettings,
        context: CallContext,
        deliver: Callable[[ToolFinished], None],
    ) -> None:
        self.bus, self.out, self.settings, self.context, self.deliver = bus, out, settings, context, deliver
        self.specs: dict[str, ToolSpec] = {}
        self.found: asyncio.Task[None] | None = None
        self.start_result = ""  # the start tool's answer, for the LLM's context
        self.start_vocabulary: list[str] = []  # words from it the caller may say, for whisper
        self._running: set[asyncio.Task[None]] = set()

    def start_discovery(self) -> None:
        if self.settings.service_tools:
            self.found = asyncio.create_task(self._discover())

    async def ready(self) -> None:
        """Wait until the call's tools are known (they are offered from the first answer on)."""
        if self.found is not None:
            await asyncio.shield(self.found)

    async def _discover(self) -> None:
        try:
            catalog = RECENT_TOOLS.note(await discover(self.bus.nc))
        except Exception as exc:  # no tools this call, said once; the conversation goes on
            self.out.error("tools_unavailable", f"finding tools failed: {type(exc).__name__}: {exc}")
            return
        for problem in catalog.problems:
            self.out.error("tool_invalid", problem)
        self.specs = served_tools(self.settings, catalog.tools)
        self.out.tools = [spec.for_llm() for spec in self.specs.values()] + self.out.tools
        names = [t["function"]["name"] for t in self.out.tools]
        self.out.emit(ToolsOffered(call_id=self.context.call_id, names=names))
        if self.settings.start_tool:
            spec = catalog.tools.get(self.settings.start_tool)
            self.start_result = await self._look_up(self.settings.start_tool, spec)

    async def _look_up(self, name: str, spec: ToolSpec | None) -> str:
        """The start tool's result, as a line for the LLM's context ('' if it failed)."""
        key = f"{self.context.call_id}:start"
        self.out.emit(ToolCalled(call_id=self.context.call_id, name=name, call_key=key))
        outcome = await call_tool(self.bus.nc, spec, name, {}, self.context, key)
        self.report(ToolFinished(None, key, outcome))
        if not outcome.ok:
            return ""
        self.start_vocabulary = vocabulary_of(outcome.result)
        if self.start_vocabulary:
            await self.out.teach_stt(self.start_vocabulary)
        shown = outcome.result
        if isinstance(shown, dict):  # the words are for whisper; the LLM has them in the answer itself
            shown = {k: v for k, v in shown.items() if k != "vocabulary"}
        return f"{name}: {json.dumps(shown, ensure_ascii=False, separators=(',', ':'))}"

    def enrich(self, state: CallState) -> None:
        """Give the LLM the start tool's answer, once (a resumed call has it already)."""
        if self.start_result and self.start_result not in state.context:
            state.context = f"{state.context} {self.start_result}".strip()

    def start(self, generation: Generation, call: ToolCall, said: Said = NOTHING_SAID) -> None:
        """Call a served tool for ``generation``; its outcome arrives as :class:`ToolFinished`.
        ``said``: the call's words so far, which the arguments marked ``x-caller-said`` must
        come from (:mod:`voxbus.tools.heard`)."""
        index = generation.tools_started
        generation.tools_started += 1
        generation.round_calls += 1
        generation.tools_pending += 1
        key = f"{self.context.call_id}:{generation.gen}:{index}"
        spec = self.specs.get(call.name)
        meant = (
            times_meant(spec.parameters, call.arguments, generation.user_text, said.everyone) if spec else {}
        )
        guessed = {name: call.arguments[name] for name in meant}
        if meant:  # the caller's time, not the model's sum (see times_meant)
            log.info("tool arguments taken from the caller's words", call_id=self.context.call_id,
                     tool=call.name, guessed=guessed, sent=meant)  # fmt: skip
            call = ToolCall(call.name, {**call.arguments, **meant})
        self.out.emit(
            ToolCalled(
                call_id=self.context.call_id,
                turn=generation.turn,
                gen=generation.gen,
                name=call.name,
                arguments=call.arguments,
                call_key=key,
                guessed=guessed,
            )
        )
        task = asyncio.create_task(self._run(generation, call, key, said))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, generation: Generation, call: ToolCall, key: str, said: Said) -> None:
        spec = self.specs.get(call.name)
        outcome = await call_tool(self.bus.nc, spec, call.name, call.arguments, self.context, key, said)
        self.deliver(ToolFinished(generation, key, outcome))

    def report(self, done: ToolFinished) -> None:
        """The tool call's event: ``tool.result`` or ``tool.failed``."""
        outcome, generation = done.outcome, done.generation
        common = dict(
            call_id=self.context.call_id,
            turn=generation.turn if generation else None,
            gen=generation.gen if generation else None,
            name=outcome.name,
            call_key=done.key,
            latency_ms=round(outcome.latency_s * 1000, 1),
            attempts=outcome.attempts,
        )
        if outcome.ok:
            self.out.emit(ToolResult(result=outcome.result, **common))  # type: ignore[arg-type]
            return
        log.warning("tool call failed", call_id=self.context.call_id, tool=outcome.name, error=outcome.error)
        self.out.emit(ToolFailed(failure=outcome.failure or "refused", error=outcome.error, **common))  # type: ignore[arg-type]

    async def close(self) -> None:
        for task in [*self._running, *([self.found] if self.found else [])]:
            task.cancel()
