"""What integration tests share: reading the event stream back (as operators and third parties
do), waiting for workers to serve, peers' command lines, and a caller who asks again once the
system is whole after a blow."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from nats.js import JetStreamContext

from voxbus.bus import subjects
from voxbus.bus.codec import decode_event
from voxbus.bus.connection import Bus
from voxbus.config import Settings
from voxbus.engines.tts import PiperEngine
from voxbus.media.dialogue import Dialogue, DialogueLine, DialoguePlayer, render_line
from voxbus.media.file_call import FileCall, FileCallResult
from voxbus.schemas.events import Event, TurnMetrics
from voxbus.supervisors.serving import pid_of, wait_all_serving  # noqa: F401 - the tests' helpers
from voxbus.supervisors.system import System


async def stream_events(js: JetStreamContext) -> list[tuple[int, Event]]:
    """Every event in the stream with its sequence number, checking there is no gap."""
    info = await js.stream_info(subjects.EVENTS_STREAM)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(subjects.EVENTS_STREAM, seq)
        out.append((seq, decode_event(msg.subject, msg.data)))
    return out


def of_call(events: list[tuple[int, Event]], call_id: str) -> list[tuple[int, Event]]:
    return [(s, e) for s, e in events if getattr(e, "call_id", None) == call_id]


def sipp_command(scenario: list[str], target: str | None, calls: int = 1, *extra: str) -> list[str]:
    """A sipp command line on loopback, with its own free SIP and media ports."""
    from voxbus.bus.embedded import free_port, free_ports

    limits = ["-m", str(calls)] + (["-l", str(calls), "-r", str(calls)] if calls > 1 else [])
    return [
        "sipp", *scenario, *limits, "-i", "127.0.0.1", "-p", str(free_port()),
        "-mi", "127.0.0.1", "-mp", str(free_ports(4)), "-nostdin", *extra,
        *([target] if target else []),
    ]  # fmt: skip


async def sipp_uas(port: int, scenario: tuple[str, ...] = ("-sn", "uas"), calls: int = 1) -> tuple[int, str]:
    """A sipp UAS for ``calls`` calls on ``port`` (sipp's own answering scenario by default): its
    exit code and output."""
    command = sipp_command(list(scenario), None, calls, "-timeout", "60")
    command[command.index("-p") + 1] = str(port)  # the UAS listens where the test dials
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


def shard_workers(settings: Settings, ports: list[int]) -> tuple[tuple[str, str, list[str]], ...]:
    """Gateway shards ``sip-1``, ``sip-2``, ... on these SIP ports, each with its own RTP range."""
    rtp = settings.sip.rtp_port
    return tuple(
        ("sip", f"sip-{i + 1}", ["--port", str(p), "--rtp-port", str(rtp + 200 * i)])
        for i, p in enumerate(ports)
    )


@contextlib.asynccontextmanager
async def running_system(settings: Settings, workers: tuple[tuple, ...]) -> AsyncIterator[tuple[System, Bus]]:
    """A system of ``workers`` and an admin client on its bus; no worker may have been refused by
    the bus meanwhile (a role whose credential lacks a permission it uses)."""
    from .conftest import permission_problems

    system = System(settings, workers=workers)  # type: ignore[arg-type]
    await system.start()
    client = Bus(system.url, name="test-client", source="test", creds=system.creds("admin"))
    try:
        await client.connect(attempts=5)
        yield system, client
    finally:
        await client.close()
        problems = await permission_problems(system)
        await system.stop()
    assert not problems, f"a worker was refused by the bus: {problems}"


KAMAILIO_CFG = Path(__file__).parents[2] / "deploy" / "kamailio" / "kamailio.cfg"


@contextlib.asynccontextmanager
async def kamailio_front(shard_ports: list[int], folder: Path) -> AsyncIterator[int]:
    """Kamailio with the shipped configuration before gateway shards on ``shard_ports``, on a
    free port of its own (yielded once it answers OPTIONS)."""
    from voxbus.bus.embedded import free_port

    front = free_port()
    dispatcher = folder / "dispatcher.list"
    dispatcher.write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in shard_ports))
    config = folder / "kamailio.cfg"
    config.write_text(
        KAMAILIO_CFG.read_text()
        .replace("udp:127.0.0.1:5060", f"udp:127.0.0.1:{front}")
        .replace("/etc/kamailio/voxbus-dispatcher.list", str(dispatcher))
    )
    async with running_kamailio(config, front, folder / "run"):
        yield front


@contextlib.asynccontextmanager
async def running_kamailio(config: Path, port: int, run_dir: Path) -> AsyncIterator[None]:
    """Kamailio with ``config`` (listening on ``port``), until the block ends; entered once it
    answers OPTIONS."""
    run_dir.mkdir(exist_ok=True)
    kamailio = await asyncio.create_subprocess_exec(
        "kamailio", "-f", str(config), "-DD", "-E", "-n", "1", "-Y", str(run_dir),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await _answering(port, kamailio)
        yield
    finally:
        kamailio.terminate()
        await kamailio.wait()


async def _answering(front: int, kamailio: asyncio.subprocess.Process) -> None:
    """Wait until Kamailio answers an OPTIONS on its front port."""
    import socket

    from tests.hostile_sip import out_of_dialog

    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        local = f"127.0.0.1:{sock.getsockname()[1]}"
        for attempt in range(100):
            assert kamailio.returncode is None, "kamailio did not start"
            ping = out_of_dialog("OPTIONS", f"127.0.0.1:{front}", local, f"ping{attempt}")
            await loop.sock_sendto(sock, ping, ("127.0.0.1", front))
            try:
                await asyncio.wait_for(loop.sock_recv(sock, 65535), 0.2)
                return
            except TimeoutError:
                continue
    raise AssertionError("kamailio does not answer OPTIONS")


def heard_while_playing(heard: Path, call_start: float, events: list[Event], gen: int) -> tuple[float, float]:
    """What the caller's recording holds while generation ``gen`` played (``call_start``: the wall
    time of the recording's first frame): (seconds it played, seconds of voice heard from its start
    to a second after its end: audio reaches the caller that much late on a loaded machine, and
    a window that ends with the playout missed 40 % of a sentence once). An acoustic check, so that
    a test never depends on the words a model hears; silence gives no voice at all."""
    import numpy as np

    from voxbus.media.frames import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE
    from voxbus.media.wav import read_wav
    from voxbus.schemas.events import PlayoutDone, PlayoutStarted

    started = next(e for e in events if isinstance(e, PlayoutStarted) and e.gen == gen)
    done = next(e for e in events if isinstance(e, PlayoutDone) and e.gen == gen)
    pcm = np.frombuffer(read_wav(heard), np.int16).astype(np.float32) / 32768
    latency_s, late_s = 0.1, 1.0  # the caller's jitter buffer and the RTP hop; under load, more
    first = int((started.ts - call_start + latency_s) * SAMPLE_RATE) // FRAME_SAMPLES
    last = int((done.ts - call_start + latency_s + late_s) * SAMPLE_RATE) // FRAME_SAMPLES
    frames = pcm[: len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)[first:last]
    level_db = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9)
    return done.ts - started.ts, float((level_db > -45).sum()) * FRAME_MS / 1000


async def until(condition, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for ``condition``; the timeout is a hang guard (a loaded machine's process or thread
    can take seconds to get there), not a limit on how long it may take."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


def told(events: list[Event], last: int = 60) -> str:
    """The last events, one short line each (time, call, type, generation, text or reason), for a
    failure's message: what the system did instead of what a test waited for."""
    t0 = events[0].ts if events else 0.0
    return "\n".join(
        f"{e.ts - t0:7.2f} {(getattr(e, 'call_id', '') or '')[-6:]:6} {e.type} g{getattr(e, 'gen', None)} "
        f"{getattr(e, 'text', '') or getattr(e, 'reason', '') or ''}".rstrip()
        for e in events[-last:]
    )


def udp_port_taken(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def cue_at_turn_end(player: DialoguePlayer) -> Callable[[Event], None]:
    """A FileCall's ``on_event`` that cues the caller's next ``after_cue`` line at each turn's end
    (its answer played to the end, told by TurnMetrics), however long that took."""

    def on_event(event: Event) -> None:
        if isinstance(event, TurnMetrics):
            player.cue()

    return on_event


# the second question once the system is whole again after the test's blow, however long that took
TWO_QUESTIONS = Dialogue(
    lines=[
        DialogueLine(text="Tell me a story about a brave little dog."),
        DialogueLine(text="What was the name of the dog?", when="after_cue"),
    ],
    reply_timeout_s=240.0,  # a hang guard: the cue comes
)


async def asked_again_after(
    client: Bus, piper: PiperEngine, blow: Callable[[], None], recovered: Callable[[], Awaitable[object]]
) -> tuple[FileCall, FileCallResult]:
    """A call of TWO_QUESTIONS: ``blow()`` once the first turn has ended, the second question once
    ``recovered()`` has returned."""
    player = DialoguePlayer(TWO_QUESTIONS, [render_line(line, piper) for line in TWO_QUESTIONS.lines])
    recovering: list[asyncio.Task[None]] = []

    async def cue_when_recovered() -> None:
        await recovered()
        player.cue()

    def on_event(event: Event) -> None:
        if isinstance(event, TurnMetrics) and not recovering:  # the first answered turn
            blow()
            recovering.append(asyncio.create_task(cue_when_recovered()))

    call = FileCall(client, player, on_event=on_event)
    result = await call.run()
    seen = [e.type for e in result.events]
    assert recovering, f"the first turn never ended ({result.cause}): {seen}"
    assert recovering[0].done(), f"the call ended ({result.cause}) before the recovery: {seen}"
    assert recovering[0].exception() is None, f"no recovery: {recovering[0].exception()!r}: {seen}"
    return call, result


def shares_most_words(heard: str, said: str) -> bool:
    """Whether at least half the words said are among those heard: what whisper made of a line,
    checked without depending on its exact words (tiny.en once wrote "France" as "friends")."""
    from voxbus.actors.turns import words

    heard_words = set(words(heard))
    said_words = words(said)
    return sum(w in heard_words for w in said_words) * 2 >= len(said_words)
