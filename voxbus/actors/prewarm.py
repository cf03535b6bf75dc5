"""Keeping each agent's prompt, with its tools, evaluated before its first call.

An agent's instructions and its tool descriptions are several hundred tokens: evaluating them
takes 10-20 s on two cores, which the first caller after a start (or after a tool service came
up) would wait through. The agent process looks for tools every ``PERIOD_S``; whenever the tools
an agent would be offered change, it asks the LLM workers to evaluate that agent's prompt prefix
(a ``warm_only`` request: a worker with real work skips it, and one under way gives way to
a call's request), which then stays in their cache; and it asks again for every agent when an
LLM worker starts serving (its first heartbeat comes once its model is loaded).
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.msg import Msg

from voxbus.actors.call.tool_use import served_tools
from voxbus.actors.tools import CALL_TOOLS
from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.config import AgentSettings
from voxbus.logs import get_logger
from voxbus.profiles import Profiles
from voxbus.schemas.messages import PREWARM_CALL_ID, ChatMessage, Heartbeat, LlmRequest
from voxbus.tools.catalog import RECENT_TOOLS, discover

log = get_logger(__name__)
PERIOD_S = 15.0


def offered(agent: AgentSettings, found: dict[str, dict]) -> list[dict]:
    """The tools a call of ``agent`` is offered, in the order the call actor offers them."""
    return list(served_tools(agent, found).values()) + (list(CALL_TOOLS) if agent.tools else [])


class PromptWarmer:
    """Which agents' prompts to send for evaluation: those whose offered tools changed, and all
    of them again when an LLM worker starts serving (a new or restarted worker's cache is empty,
    and a warm-up published before any worker serves is lost: it is not a request)."""

    def __init__(self, profiles: Profiles) -> None:
        reachable = {name: a for name, a in profiles.agents.items() if profiles.profiles[name].numbers}
        self.agents = {"": profiles.base} | reachable
        self.warmed: dict[str, str] = {}
        self.llm_workers: dict[str, int] = {}

    def llm_serving(self, beat: Heartbeat) -> bool:
        """An LLM worker's heartbeat; True if it is one not seen serving before (by process)."""
        if self.llm_workers.get(beat.worker_id) == beat.pid:
            return False
        self.llm_workers[beat.worker_id] = beat.pid
        self.warmed.clear()
        return True

    def due(self, found: dict[str, dict]) -> list[tuple[str, LlmRequest]]:
        """The warm-ups to send now, given the served tools ``found``; each counted as sent."""
        requests = []
        for name, agent in self.agents.items():
            tools = offered(agent, found)
            key = repr((agent.system_prompt, tools))
            if tools and self.warmed.get(name) != key:
                warm = LlmRequest(
                    call_id=PREWARM_CALL_ID,
                    gen=0,
                    turn=0,
                    messages=[ChatMessage(role="system", content=agent.system_prompt)],
                    tools=tools,
                    warm_only=True,
                )
                requests.append((name, warm))
                self.warmed[name] = key
        return requests


async def keep_prompts_warm(bus: Bus, profiles: Profiles, stop: asyncio.Event) -> None:
    warmer = PromptWarmer(profiles)
    wake = asyncio.Event()

    async def on_beat(beat: Heartbeat, _msg: Msg) -> None:
        if warmer.llm_serving(beat):
            wake.set()

    beats = await bus.subscribe(subjects.health("llm", "*"), Heartbeat, on_beat)
    try:
        while not stop.is_set():
            wake.clear()
            try:
                # with the tools of recent rounds: a service that missed this one's half second
                # is not gone, and a prompt warmed without its tools replaces the one calls need
                catalog = RECENT_TOOLS.note(await discover(bus.nc))
                found = {name: spec.for_llm() for name, spec in catalog.tools.items()}
                for name, warm in warmer.due(found):
                    await bus.publish(subjects.LLM_GENERATE, warm)
                    tools = len(warm.tools or [])
                    log.info("agent prompt sent to be evaluated", agent=name or "[agent]", tools=tools)
            except Exception as exc:  # the next round tries again; calls work meanwhile, only slower
                log.warning("could not warm the agents' prompts", reason=f"{type(exc).__name__}: {exc}")
            stopping = asyncio.ensure_future(stop.wait())
            woken = asyncio.ensure_future(wake.wait())
            await asyncio.wait({stopping, woken}, timeout=PERIOD_S, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            woken.cancel()
    finally:
        with contextlib.suppress(Exception):  # the bus may be closed already (shutting down)
            await beats.unsubscribe()
