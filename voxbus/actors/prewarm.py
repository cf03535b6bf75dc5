"""Keeping each agent's prompt, with its tools, evaluated before its first call.

An agent's instructions and its tool descriptions are several hundred tokens: evaluating them
takes 10-20 s on two cores, which the first caller after a start (or after a tool service came
up) would wait through. The agent process looks for tools every ``PERIOD_S``; whenever the tools
an agent would be offered change, it asks the LLM workers to evaluate that agent's prompt prefix
(a ``warm_only`` request: a worker with real work skips it, and one under way gives way to
a call's request), which then stays in their cache.
"""

from __future__ import annotations

import asyncio
import contextlib

from voxbus.actors.call.tool_use import served_tools
from voxbus.actors.tools import CALL_TOOLS
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import AgentSettings
from voxbus.logs import get_logger
from voxbus.profiles import Profiles
from voxbus.schemas.messages import PREWARM_CALL_ID, ChatMessage, LlmRequest
from voxbus.tools.catalog import discover

log = get_logger(__name__)
PERIOD_S = 15.0


def offered(agent: AgentSettings, found: dict[str, dict]) -> list[dict]:
    """The tools a call of ``agent`` is offered, in the order the call actor offers them."""
    return list(served_tools(agent, found).values()) + (list(CALL_TOOLS) if agent.tools else [])


async def keep_prompts_warm(bus: Bus, profiles: Profiles, stop: asyncio.Event) -> None:
    warmed: dict[str, str] = {}
    reachable = {name: agent for name, agent in profiles.agents.items() if profiles.profiles[name].numbers}
    agents = {"": profiles.base} | reachable
    while not stop.is_set():
        try:
            catalog = await discover(bus.nc)
            found = {name: spec.for_llm() for name, spec in catalog.tools.items()}
            for name, agent in agents.items():
                tools = offered(agent, found)
                key = repr((agent.system_prompt, tools))
                if tools and warmed.get(name) != key:
                    warm = LlmRequest(
                        call_id=PREWARM_CALL_ID,
                        gen=0,
                        turn=0,
                        messages=[ChatMessage(role="system", content=agent.system_prompt)],
                        tools=tools,
                        warm_only=True,
                    )
                    await bus.publish(subjects.LLM_GENERATE, warm)
                    warmed[name] = key
                    log.info("agent prompt sent to be evaluated", agent=name or "[agent]", tools=len(tools))
        except Exception as exc:  # the next round tries again; calls work meanwhile, only slower
            log.warning("could not warm the agents' prompts", reason=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PERIOD_S)
