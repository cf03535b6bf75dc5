"""The long-running commands: up, talk, demo and events."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage, decode_event
from voxbus.bus.connection import Bus
from voxbus.config import Settings
from voxbus.logs import get_logger
from voxbus.media.file_call import FileCall
from voxbus.media.wav import WavSource
from voxbus.schemas.events import (
    BargeIn,
    CallEvent,
    ErrorEvent,
    Event,
    LlmDone,
    SttFinal,
    ToolCalled,
    ToolFailed,
    ToolResult,
    TurnMetrics,
    WorkerExited,
    WorkerRestarted,
)
from voxbus.supervisors.system import System, client_creds

if TYPE_CHECKING:
    from voxbus.sip.caller import Voice

log = get_logger(__name__)
_SKIP_FIELDS = {"v", "type", "ts", "source", "call_id"}


def describe(event: Event) -> str:
    """One human-readable line for an event."""
    when = datetime.fromtimestamp(event.ts).strftime("%H:%M:%S.%f")[:-3]
    call = getattr(event, "call_id", None) or "-"
    fields = " ".join(
        f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
        for k, v in event.model_dump().items()
        if k not in _SKIP_FIELDS and v not in (None, "", [])
    )
    return f"{when} {call:18} {event.type:18} {fields}"


TOOL_CALL_BLOCK = re.compile(r"<tool_call>.*?</tool_call>", re.DOTALL)


def conversation_line(event: Event) -> str | None:
    """What `talk` and `demo` print: the words, the latency, and trouble."""
    if isinstance(event, SttFinal) and event.text:
        return f"  caller: {event.text}"
    if isinstance(event, LlmDone):
        words = TOOL_CALL_BLOCK.sub("", event.text).strip()
        return f"  agent:  {words}" if words else None
    if isinstance(event, ToolCalled):
        return f"          [tool {event.name} {json.dumps(event.arguments)}]"
    if isinstance(event, ToolResult):
        return f"          [tool {event.name}: {json.dumps(event.result)[:160]} ({event.latency_ms:.0f} ms)]"
    if isinstance(event, ToolFailed):
        return f"          [tool {event.name} failed, {event.failure}: {event.error}]"
    if isinstance(event, TurnMetrics) and event.first_audio_ms is not None:
        return (
            f"          turn {event.turn}: first agent audio {event.first_audio_ms:.0f} ms after "
            f"the caller stopped (vad {event.vad_decision_ms:.0f}, stt {event.stt_final_ms:.0f},"
            f" llm {event.llm_first_token_ms or 0:.0f}, tts {event.tts_first_frame_ms or 0:.0f})"
        )
    if isinstance(event, BargeIn):
        said = f" ({event.text!r})" if event.text else ""
        return f"          [caller over the agent{said}: {event.decision}, {event.reason}]"
    if isinstance(event, ErrorEvent | WorkerRestarted | WorkerExited):
        return f"  [{event.type}] " + describe(event).split(event.type, 1)[1].strip()
    return None


def _printer(event: Event) -> None:
    line = conversation_line(event)
    if line:
        print(line, flush=True)


async def webhook(settings: Settings, nats_url: str, url: str, secret: bytes, events: list[str]) -> int:
    """Forward chosen call events to ``url`` until stopped (SIGINT/SIGTERM)."""
    from voxbus.actors.runtime import stop_on_signals
    from voxbus.webhook import Webhook

    forwarder = Webhook(
        Bus(nats_url, name="voxbus-webhook", source="webhook", creds=client_creds(settings)),
        url,
        secret,
        events,
    )
    await forwarder.bus.connect(attempts=3)
    try:
        await forwarder.run(stop_on_signals())
    finally:
        await forwarder.bus.close()
    return 0


async def serve_mcp(
    settings: Settings,
    nats_url: str,
    server: str,
    command: list[str] | None,
    url: str | None,
    timeout_s: float,
    worker_id: str | None = None,
) -> int:
    """Serve an MCP server's tools on the bus until stopped (SIGINT/SIGTERM); ``worker_id``: run as
    voxbus up's supervised bridge, heartbeating (once the tools are served) under that id."""
    from voxbus.actors.runtime import heartbeat, stop_on_signals
    from voxbus.tools.mcp_bridge import bridge, mcp_session

    stopping = stop_on_signals()
    bus = Bus(nats_url, name=f"voxbus-mcp-{server}", source=f"mcp-{server}", creds=client_creds(settings))
    await bus.connect(attempts=3)
    beating: asyncio.Task[None] | None = None
    try:
        async with mcp_session(command, url) as session:
            service = await bridge(bus.nc, server, session, timeout_s)
            print(f"serving {', '.join(sorted(service.tools))} from MCP server {server}", flush=True)
            if worker_id:
                interval = settings.supervision.heartbeat_interval_s
                beating = asyncio.create_task(heartbeat(bus, "mcp", worker_id, interval))
            await stopping.wait()
            await service.stop()
    finally:
        if beating is not None:
            beating.cancel()
        await bus.close()
    return 0


async def up(settings: Settings) -> int:
    from voxbus.actors.runtime import stop_on_signals

    stopping = stop_on_signals()
    system = System(settings)
    url = await system.start()
    print(
        f"voxbus is up: NATS at {url}; profile {settings.profile}. "
        "In another terminal: `voxbus talk CALLER.wav`, `voxbus events`. Ctrl-C stops.",
        flush=True,
    )
    assert system.supervision is not None
    await asyncio.wait(
        {asyncio.ensure_future(stopping.wait()), system.supervision}, return_when=asyncio.FIRST_COMPLETED
    )
    failed = system.supervision.done() and system.supervision.exception() is not None
    await system.stop()
    return 1 if failed else 0


async def talk(settings: Settings, url: str, wav: Path, out: Path, max_seconds: float) -> int:
    source = WavSource(wav)
    bus = Bus(url, name="voxbus-talk", source="file-call", creds=client_creds(settings))
    await bus.connect(attempts=3)
    try:
        call = FileCall(bus, source, max_s=max_seconds, on_event=_printer)
        print(f"calling with {wav} ({len(source) * 0.02:.1f} s) as {call.call_id}", flush=True)
        await call.run()
        call.save(out)
        print(f"recorded the agent to {out}", flush=True)
    finally:
        await bus.close()
    return 0


async def demo(settings: Settings, out_dir: Path, json_out: Path | None) -> int:
    """Start the system and hold the demo conversation over a real SIP call."""
    from voxbus.engines.models import model_path
    from voxbus.engines.tts import PiperEngine
    from voxbus.media.script import DEMO_SCRIPT, render

    out_dir.mkdir(parents=True, exist_ok=True)
    caller_wav = out_dir / "caller.wav"
    spoken = render(DEMO_SCRIPT, PiperEngine(model_path(settings, "tts"), settings.tts), caller_wav)
    system = System(settings)
    print("starting voxbus (embedded NATS, SIP gateway, STT, LLM, TTS and agent processes)...", flush=True)
    url = await system.start()
    call = asyncio.ensure_future(
        system.while_healthy(sip_call(url, settings, caller_wav, out_dir / "reply.wav"))
    )
    _cancel_on_signals(call)
    try:
        heard, metrics, _ = await call
    finally:
        await system.stop()
    ends = [line.end_s for line in spoken]
    onsets = heard.onsets_after(ends)
    print("\nper turn: end of the caller's speech -> first agent audio heard by the caller (SIP)")
    turns = []
    for line, end, onset in zip(spoken, ends, onsets, strict=True):
        latency = None if onset is None else round((onset - end) * 1000)
        turns.append({"text": line.text, "speech_end_s": end, "perceived_ms": latency})
        shown = "no answer" if latency is None else f"{latency} ms"
        print(f"  {shown:>9}   {line.text}")
    print(f"recordings: {caller_wav} (caller), {out_dir / 'reply.wav'} (what the caller heard)")
    if json_out:
        json_out.write_text(json.dumps({"turns": turns, "metrics": metrics}, indent=2))
    return 0 if all(t["perceived_ms"] is not None for t in turns) else 1


def _cancel_on_signals(task: asyncio.Future[object]) -> None:
    """SIGTERM/SIGINT cancel the work, so that `finally` blocks stop the system cleanly."""
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)


async def sip_call(  # type: ignore[no-untyped-def]
    url: str,
    settings: Settings,
    voice: Path | Voice,
    out: Path,
    uri: str | None = None,
    echo_gain: float = 0.0,
    quiet: bool = False,
    caller_user: str = "caller",
    end_after_turn: int | None = None,
    end_on: Callable[[Event], bool] | None = None,
):
    """Call voxbus over SIP with the project's own caller (a WAV or a reacting voice), printing
    the conversation from the event stream; returns (what the caller heard, the turns' metrics,
    every event of the call). ``end_after_turn``: hang up once that turn's answer has been played
    (however long it took), instead of when the caller's audio runs out; ``end_on``: hang up two
    seconds after the first event it accepts."""
    from voxbus.sip.caller import SipCaller

    bus = Bus(url, name="voxbus-sip-caller", source="sip-caller", creds=client_creds(settings))
    await bus.connect(attempts=5)
    metrics: list[dict[str, object]] = []
    events: list[Event] = []
    ending: list[asyncio.Task[None]] = []

    async def on_event(event: Event, _msg: Msg) -> None:
        if not quiet:
            _printer(event)
        events.append(event)
        if isinstance(event, TurnMetrics):
            metrics.append(event.model_dump(exclude={"v", "source"}))
            if end_after_turn is not None and event.turn >= end_after_turn:
                ending.append(asyncio.create_task(hang_up(bus, event.call_id, after_s=0.5)))
        if end_on is not None and not ending and isinstance(event, CallEvent) and end_on(event):
            ending.append(asyncio.create_task(hang_up(bus, event.call_id, after_s=2.0)))

    try:
        await bus.subscribe(subjects.ALL_CALL_EVENTS, None, on_event)
        frames = WavSource(voice).frames if isinstance(voice, Path) else voice
        caller = SipCaller(frames, echo_gain=echo_gain, user=caller_user)
        target = uri or f"sip:voxbus@{settings.sip.address}:{settings.sip.port}"
        heard = await caller.call(target)
        heard.heard.save(out)
        await asyncio.sleep(0.5)  # the last events
        return heard, metrics, events
    finally:
        await bus.close()


async def hang_up(bus: Bus, call_id: str, after_s: float) -> None:
    """Ask the call's gateway to hang up, ``after_s`` from now."""
    from voxbus.actors.call.outbound import CONTROL_ACK_S, CONTROL_TRY_S
    from voxbus.schemas.messages import CallControl

    await asyncio.sleep(after_s)  # the answer's last frames reach the caller
    hangup = CallControl(call_id=call_id, action="hangup")
    if not await bus.command(
        subjects.control(call_id), hangup, within_s=CONTROL_ACK_S, per_try_s=CONTROL_TRY_S
    ):
        log.warning("the gateway did not acknowledge the hang-up", call_id=call_id)


async def tail_events(
    url: str, call_id: str | None, replay: bool, as_json: bool, creds: Path | None = None
) -> int:
    from voxbus.actors.runtime import stop_on_signals

    stopping = stop_on_signals()
    bus = Bus(url, name="voxbus-events", source="events", creds=creds)
    await bus.connect(attempts=3)
    assert bus.js is not None

    async def show(msg: Msg) -> None:
        try:
            event = decode_event(msg.subject, msg.data)
        except BadMessage as exc:
            print(f"{time.strftime('%H:%M:%S')} ! {exc}", flush=True)
            return
        print(event.model_dump_json() if as_json else describe(event), flush=True)

    policy = DeliverPolicy.ALL if replay else DeliverPolicy.NEW
    await bus.js.subscribe(
        subjects.call_events(call_id) if call_id else subjects.ALL_CALL_EVENTS,
        cb=show,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=policy),
    )
    if not call_id:
        await bus.js.subscribe(
            subjects.ALL_SYSTEM_EVENTS,
            cb=show,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=policy),
        )
    print(
        f"events from {url} ({'from the start' if replay else 'new'}); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    await stopping.wait()
    await bus.close()
    return 0


async def dial(url: str, target: tuple[str, str, str], timeout_s: float, creds: Path | None = None) -> int:
    """Place a call through the running gateway (``target``: the URI, the agent profile, what the
    agent is told about the call); follow it until it ends."""
    import uuid

    from voxbus.schemas.base import Accepted
    from voxbus.schemas.events import CallEnded, DialResult
    from voxbus.schemas.messages import DialRequest

    bus = Bus(url, name="voxbus-dial", source="dial", creds=creds)
    await bus.connect(attempts=3)
    call_id = f"sip-out-{uuid.uuid4().hex[:10]}"
    ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_event(event: Event, _msg: Msg) -> None:
        _printer(event)
        if isinstance(event, DialResult):
            print(
                f"  dial {event.uri}: {event.result} {event.code or ''} {event.reason}".rstrip(), flush=True
            )
            if event.result != "answered" and not ended.done():
                ended.set_result(1)
        if isinstance(event, CallEnded) and not ended.done():
            ended.set_result(0)

    try:
        await bus.subscribe(subjects.call_events(call_id), None, on_event)
        uri, agent, context = target
        request = DialRequest(call_id=call_id, uri=uri, timeout_s=timeout_s, agent=agent, context=context)
        reply = await bus.request(subjects.SIP_DIAL, request, Accepted, 10.0, heard_within_s=2.0)
        print(f"calling {uri} as {call_id} via {reply.worker_id}", flush=True)
        return await ended
    finally:
        await bus.close()
