"""The agent service: runs call actors under a supervisor.

Calls arrive on the ``voxbus.agent.calls`` queue group (any agent process may take one). Each call
actor is a transient child of the ``calls`` supervisor: a crashed actor is restarted and resumes
from the key-value bucket. When the agent process itself is restarted (same agent id), it resumes
every unfinished call it owned.
"""

from __future__ import annotations

import asyncio

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NoKeysError
from nats.js.kv import KeyValue

from voxbus.actors.call import CallActor
from voxbus.actors.prewarm import keep_prompts_warm
from voxbus.bus import subjects
from voxbus.bus.codec import encode
from voxbus.bus.connection import Bus, reply_rejected
from voxbus.bus.streams import call_state_bucket
from voxbus.config import Settings
from voxbus.logs import get_logger
from voxbus.profiles import ProfileError, Profiles
from voxbus.schemas.base import Accepted
from voxbus.schemas.events import SupervisorEscalated, WorkerRestarted
from voxbus.schemas.messages import CallStart, CallState
from voxbus.supervisors.tree import ChildSpec, RestartEvent, Supervisor

log = get_logger(__name__)
READY_TIMEOUT_S = 10.0
RESUME_LIST_ATTEMPTS = 5


class AgentService:
    def __init__(self, bus: Bus, settings: Settings, agent_id: str) -> None:
        self.bus, self.settings, self.agent_id = bus, settings, agent_id
        self.profiles = Profiles(settings)  # a wrong profile stops the process here, in one line
        self.calls = Supervisor.from_settings(
            f"calls@{agent_id}", settings.supervision, self._restarted, self._escalated
        )
        self.actors: dict[str, CallActor] = {}
        self.kv: KeyValue | None = None
        self.supervision: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._prewarm: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert self.bus.js is not None
        self.kv = await call_state_bucket(self.bus.js)
        self.supervision = asyncio.create_task(self.calls.run())
        await self._resume_owned()
        await self.bus.subscribe(subjects.AGENT_CALLS, CallStart, self._on_call, queue="agent")
        self._prewarm = asyncio.create_task(keep_prompts_warm(self.bus, self.profiles, self._stopping))

    def session_ids(self) -> list[str]:
        return sorted(self.actors)

    async def _resume_owned(self) -> None:
        keys = await self._call_keys()
        for key in keys:
            assert self.kv is not None
            entry = await self.kv.get(key)
            try:
                state = CallState.model_validate_json(entry.value or b"")
            except ValueError:
                continue
            if state.owner == self.agent_id and not state.ended:
                self._start_actor(state.call_id, True, state.caller, state.source, state.called)

    async def _call_keys(self) -> list[str]:
        """The bucket's call keys. A listing that times out (a loaded server just after a restart)
        is asked again: given up silently, it would leave the calls this process owned unresumed."""
        assert self.kv is not None
        for attempt in range(1, RESUME_LIST_ATTEMPTS + 1):
            try:
                return await self.kv.keys()
            except NoKeysError:
                return []
            except (NatsTimeoutError, TimeoutError) as exc:
                log.warning("listing the calls to resume timed out", attempt=attempt, error=repr(exc))
                await asyncio.sleep(0.5 * attempt)
        raise RuntimeError(f"could not list the calls to resume in {RESUME_LIST_ATTEMPTS} attempts")

    def _start_actor(
        self,
        call_id: str,
        resume: bool,
        caller: str,
        source: str,
        called: str = "",
        named: str = "",
        purpose: str = "",
        outbound: bool = False,
        voicemail: str = "",
    ) -> CallActor:
        """A call's actor, supervised; the agent profile is the one an outbound call ``named``,
        else the one of the number ``called``."""
        first = [True]

        profile, agent, _ = self.profiles.named(named) if named else self.profiles.pick(called)

        def make() -> CallActor:
            actor = CallActor(
                self.bus,
                self.kv,
                agent,
                self.settings.turn,
                call_id,
                self.agent_id,  # type: ignore[arg-type]
                resume=resume or not first[0],
                caller=caller,
                source=source,
                called=called,
                profile=profile,
                purpose=purpose,
                outbound=outbound,
                voicemail=voicemail,
            )
            first[0] = False
            self.actors[call_id] = actor
            return actor

        spec = ChildSpec(id=call_id, start=make, restart="transient")
        self.calls.start_child(spec)
        return self.actors[call_id]

    async def _on_call(self, request: CallStart, msg: Msg) -> None:
        try:
            subjects.check_call_id(request.call_id)
        except subjects.BadCallId as exc:
            await reply_rejected(msg, self.agent_id, str(exc))
            return
        actor = self.actors.get(request.call_id)
        if actor is None or not actor.running:
            if request.call_id in self.calls.children():
                await self.calls.terminate_child(request.call_id)
            try:
                actor = self._start_actor(
                    request.call_id,
                    request.resume,
                    request.caller,
                    request.source,
                    request.called,
                    request.agent,
                    request.context,
                    request.outbound,
                    request.voicemail,
                )
            except ProfileError as exc:
                await reply_rejected(msg, self.agent_id, str(exc))
                return
        try:
            await asyncio.wait_for(actor.ready.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            log.error("call actor not ready in time", call_id=request.call_id)
        if msg.reply:
            await msg.respond(encode(Accepted(worker_id=self.agent_id, role="agent")))
        self._forget_finished()

    def _forget_finished(self) -> None:
        for call_id, actor in list(self.actors.items()):
            if not actor.running and actor.state.ended:
                del self.actors[call_id]

    def _restarted(self, event: RestartEvent) -> None:
        self.bus.emit(
            WorkerRestarted(role="call", worker_id=event.child, reason=event.reason, restarts=event.restarts)
        )

    def _escalated(self, reason: str) -> None:
        self.bus.emit(SupervisorEscalated(supervisor=self.calls.name, reason=reason))
