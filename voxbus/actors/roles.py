"""Entry points of the roles a process can play: the three model workers and the agent."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import get_args

from voxbus.actors.runtime import heartbeat, stop_on_signals
from voxbus.bus.connection import Bus
from voxbus.bus.streams import ensure_events_stream
from voxbus.config import Settings
from voxbus.engines.models import ModelMissing, model_path
from voxbus.logs import get_logger
from voxbus.privacy import Redactor
from voxbus.profiles import Profiles
from voxbus.schemas.events import ErrorEvent
from voxbus.supervisors.settings import Role

log = get_logger(__name__)
ROLES: tuple[Role, ...] = get_args(Role)


@dataclass
class Served:
    sessions: Callable[[], list[str]]
    fatal: asyncio.Task[None] | None = None  # a task whose end ends the process
    close: Callable[[], Awaitable[None]] | None = None
    admitting: Callable[[], bool] | None = None  # a gateway: whether it admits calls now


async def _serve(
    bus: Bus, settings: Settings, role: str, worker_id: str
) -> tuple[Callable[[], list[str]], asyncio.Task[None] | None]:
    """Load the role's engine and subscribe; returns (session lister, a task whose end is fatal)."""
    if role == "stt":
        from voxbus.actors.stt_worker import SttWorker
        from voxbus.actors.transcriber import Transcriber
        from voxbus.engines.stt import WhisperEngine

        engine = await asyncio.to_thread(WhisperEngine, model_path(settings, "stt"), settings.stt)
        await asyncio.to_thread(engine.warm)
        languages = Profiles(settings).languages()
        multilingual = None
        if any(lang != "en" for lang in languages):  # calls in other languages, or 'auto'
            path = model_path(settings, "stt_multilingual")
            multilingual = await asyncio.to_thread(WhisperEngine, path, settings.stt)
            await asyncio.to_thread(multilingual.warm)
        transcriber = Transcriber(engine, multilingual, languages)
        doubted = settings.words_over_agent_no_speech()  # resolved: it depends on the canceller
        turns = settings.turn.model_copy(update={"barge_in_max_no_speech": doubted})
        gate_words = settings.echo_gate_words()
        stt = SttWorker(bus, worker_id, settings.stt, turns, transcriber, gate_words=gate_words)
        await stt.start()
        return Served(stt.session_ids)
    if role == "llm":
        from voxbus.actors.llm_worker import LlmWorker
        from voxbus.engines.llm_fallback import llm_engine_for
        from voxbus.schemas.messages import ChatMessage

        engine = await asyncio.to_thread(llm_engine_for, settings)
        opening = [ChatMessage(role="system", content=settings.agent.system_prompt)]
        if settings.agent.greeting:
            opening.append(ChatMessage(role="assistant", content=settings.agent.greeting))
        from voxbus.actors.tools import CALL_TOOLS

        llm = LlmWorker(bus, worker_id, engine, opening, CALL_TOOLS if settings.agent.tools else None)
        await llm.start()
        return Served(llm.session_ids)
    if role == "tts":
        from voxbus.actors.tts_worker import TtsWorker, agents_phrases
        from voxbus.engines.tts import PiperEngine, VoiceEngine, voice_engine
        from voxbus.engines.voice_cache import CachedVoice

        profiles = Profiles(settings)
        engines: dict[str, VoiceEngine] = {
            "en": await asyncio.to_thread(PiperEngine, model_path(settings, "tts"), settings.tts)
        }
        for language in profiles.languages():
            if language != "en":
                engines[language] = await asyncio.to_thread(
                    voice_engine, settings.tts.voices[language], settings.tts
                )
        holding = agents_phrases(profiles, holding=True)
        voices = {
            language: CachedVoice(
                engine, settings.tts.cache_max_chars, settings.tts.cache_entries, holding.get(language, [])
            )
            for language, engine in engines.items()
        }
        tts = TtsWorker(bus, worker_id, voices, agents_phrases(profiles, holding=False))
        await tts.start()
        return Served(tts.session_ids)
    if role == "agent":
        from voxbus.actors.agent import AgentService

        agent = AgentService(bus, settings, worker_id)
        await agent.start()
        return Served(agent.session_ids, agent.supervision)
    if role == "sip":
        from voxbus.sip.gateway import SipGateway

        # the machine's gateways share the key of their digest nonces (any shard checks any answer)
        gateway = SipGateway(
            bus,
            settings.sip,
            worker_id,
            settings.data_dir / "auth" / "sip-nonce.key",
            {name: profile.outbound for name, profile in Profiles(settings).profiles.items()},
        )
        await gateway.start()
        return Served(gateway.session_ids, close=gateway.stop, admitting=gateway.admitting)
    if role == "console":
        from voxbus.console.service import ConsoleService

        console = ConsoleService(bus, settings)
        await console.start()
        return Served(console.sessions, close=console.stop)
    raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")


def yield_cpu(settings: Settings, role: str) -> int:
    """Lower this process's CPU priority to the role's niceness (``supervision.nice``); returns it.

    Called before the role starts any thread: Linux keeps a niceness per thread, and new threads
    (llama.cpp's, onnxruntime's) take their creator's."""
    wanted = settings.supervision.nice.get(role, 0)  # type: ignore[call-overload]
    now = os.getpriority(os.PRIO_PROCESS, 0)
    if wanted <= now:
        return now
    try:
        os.setpriority(os.PRIO_PROCESS, 0, wanted)
    except OSError as exc:  # a sandbox that forbids it: run as we are, and say so
        log.warning("cpu priority unchanged", role=role, nice=now, problem=str(exc))
        return now
    log.debug("cpu priority lowered", role=role, nice=wanted)
    return wanted


async def run_role(settings: Settings, url: str, role: str, worker_id: str) -> int:
    """Run one role until SIGTERM/SIGINT; returns the process exit code."""
    yield_cpu(settings, role)
    stopping = stop_on_signals()
    bus = Bus(url, name=f"voxbus-{role}-{worker_id}", source=f"{role}/{worker_id}", creds=settings.nats_creds)
    if settings.console.redact_events:
        bus.redactor = Redactor(settings.console.redact)
    await bus.connect()
    assert bus.js is not None
    await ensure_events_stream(bus.js)
    try:
        served = await _serve(bus, settings, role, worker_id)
    except (ModelMissing, OSError, ValueError) as exc:
        # say it once, in the log and on the bus, and exit with a configuration error
        log.error("cannot start", role=role, worker_id=worker_id, problem=str(exc))
        bus.emit(ErrorEvent(code="cannot_start", message=f"{role}/{worker_id}: {exc}"))
        await bus.close()
        return 2
    beat = asyncio.create_task(
        heartbeat(
            bus, role, worker_id, settings.supervision.heartbeat_interval_s, served.sessions, served.admitting
        )
    )
    log.info("serving", role=role, worker_id=worker_id)
    waits: set[asyncio.Future[object]] = {asyncio.ensure_future(stopping.wait())}
    fatal = served.fatal
    if fatal is not None:
        waits.add(fatal)  # type: ignore[arg-type]
    done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if fatal is not None and fatal in done:
        log.error(
            "supervision gave up; exiting so that the process supervisor restarts us",
            role=role,
            reason=repr(fatal.exception()),
        )
        code = 1
    beat.cancel()
    if served.close is not None:
        await served.close()
    await bus.close()
    return code
