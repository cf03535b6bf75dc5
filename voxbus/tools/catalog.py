"""Which tools are up: ``$SRV.INFO`` answered by every NATS service on the bus.

Services that are not tool services answer too and are ignored. Replicas of one service (the same
service name) serve a tool together; two *different* services claiming the same tool name are a
conflict, and neither is offered (an agent must not guess which one moves a booking).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.aio.msg import Msg

from voxbus.tools.contract import BadTool, ToolSpec, spec_from_endpoint

INFO_SUBJECT = "$SRV.INFO"


@dataclass
class Catalog:
    tools: dict[str, ToolSpec] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # one line each: bad endpoints, conflicts
    conflicted: set[str] = field(default_factory=set)  # tools two services claim: offered by neither


class RecentTools:
    """The tools seen in the discoveries of the last ``keep_s`` seconds, added to each new one.

    A discovery waits half a second for the services' answers, and a service whose host is busy
    (the calls it serves load the same cores) can miss that: a call whose discovery it missed had
    no calendar for its whole length, and the agents' prompts were warmed again without it. A tool
    that its service stopped serving stays offered until ``keep_s`` passes; calling it meanwhile
    fails as any call of a service that is down does (the agent is told, and says so)."""

    def __init__(self, keep_s: float = 45.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_s, self.clock = keep_s, clock
        self.seen: dict[str, tuple[float, ToolSpec]] = {}

    def note(self, catalog: Catalog) -> Catalog:
        """``catalog`` with the tools it lacks that an earlier one had, within ``keep_s``; never one
        that two services claim now."""
        now = self.clock()
        for name, spec in catalog.tools.items():
            self.seen[name] = (now, spec)
        for name in catalog.conflicted:
            self.seen.pop(name, None)
        self.seen = {name: seen for name, seen in self.seen.items() if now - seen[0] <= self.keep_s}
        tools = {name: spec for name, (_, spec) in self.seen.items()} | catalog.tools
        return Catalog(tools=tools, problems=catalog.problems, conflicted=catalog.conflicted)


# one per process: every call's discovery and the agents' prompt warm-ups feed it and read it
RECENT_TOOLS = RecentTools()


async def discover(nc: Client, within_s: float = 0.5, quiet_s: float = 0.1) -> Catalog:
    """Ask every service for its info; gather answers for up to ``within_s``, ending early once
    ``quiet_s`` passes with no new answer."""
    answers: asyncio.Queue[Msg] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        answers.put_nowait(msg)

    def no_responders(msg: Msg) -> bool:
        """The server's own answer when no service listens (status 503, no body)."""
        return not msg.data and bool(msg.headers) and msg.headers.get("Status") == "503"

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=collect)
    infos: list[bytes] = []
    try:
        await nc.publish(INFO_SUBJECT, b"", reply=inbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while (left := deadline - loop.time()) > 0:
            wait = min(left, quiet_s) if infos else left
            try:
                msg = await asyncio.wait_for(answers.get(), wait)
            except TimeoutError:
                break
            if no_responders(msg):
                break  # no service on the bus at all: no need to wait
            infos.append(msg.data)
    finally:
        await sub.unsubscribe()
    return catalog_of(infos)


def catalog_of(infos: list[bytes]) -> Catalog:
    """The tools that the ``$SRV.INFO`` answers describe (pure: unit-tested with no bus)."""
    catalog = Catalog()
    owners: dict[str, str] = {}
    conflicted: set[str] = set()
    for raw in infos:
        try:
            info = json.loads(raw)
            service = f"{info['name']}/{info['id']}"
            endpoints = info.get("endpoints") or []
        except (ValueError, KeyError, TypeError) as exc:
            catalog.problems.append(f"unreadable $SRV.INFO answer: {exc}")
            continue
        for endpoint in endpoints:
            try:
                spec = spec_from_endpoint(service, endpoint)
            except BadTool as exc:
                catalog.problems.append(str(exc))
                continue
            if spec is None:
                continue
            owner = owners.setdefault(spec.name, info["name"])
            if owner != info["name"]:
                if spec.name not in conflicted:
                    catalog.problems.append(
                        f"tool {spec.name} is served by two services, {owner} and {info['name']}: not offered"
                    )
                conflicted.add(spec.name)
                continue
            catalog.tools.setdefault(spec.name, spec)
    for name in conflicted:
        catalog.tools.pop(name, None)
    catalog.conflicted = conflicted
    return catalog
