"""What the operator console costs and how soon it shows a call.

A system with the console (test profile) takes N simultaneous file calls (two questions each).
A browser stand-in follows the console's live feed over HTTP (server-sent events, logged in as a
supervisor) and notes when each call's row arrives; the console process's CPU seconds come from
its own heartbeats, before and after; ``/metrics`` is scraped every second meanwhile.

    python bench/console.py --calls 4 --out bench/results

Writes console.json and console.png: time from a call being answered (its ``call.started``) to
its row in the console, and the console's CPU seconds per call-minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from nats.aio.msg import Msg
from report import pyplot, write_json

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port
from voxbus.config import load_settings
from voxbus.console.service import console_url_file
from voxbus.engines.models import model_path
from voxbus.engines.tts import PiperEngine
from voxbus.media.file_call import FileCall
from voxbus.media.script import CallerScript, Line, render
from voxbus.media.wav import WavSource
from voxbus.schemas.events import CallStarted, Event
from voxbus.schemas.messages import Heartbeat
from voxbus.supervisors.serving import wait_all_serving
from voxbus.supervisors.system import System

SCRIPT = CallerScript(
    lines=[
        Line(text="Hello, I would like to move my appointment to Friday.", pause_before_s=2.0),
        Line(text="Thank you, that is all.", pause_before_s=6.0),
    ],
    tail_s=3.0,
)


async def follow_feed(url: str, password: str, rows: dict[str, float], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        await client.post("/login", data={"user": "admin", "password": password})
        async with client.stream("GET", "/api/feed") as feed:
            async for line in feed.aiter_lines():
                if stop.is_set():
                    return
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message["kind"] == "calls":
                        for call in message["calls"]:
                            rows.setdefault(call["call_id"], time.time())


async def scrape(url: str, stop: asyncio.Event, took: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        while not stop.is_set():
            started = time.perf_counter()
            (await client.get("/metrics")).raise_for_status()
            took.append(time.perf_counter() - started)
            await asyncio.sleep(1.0)


async def run(calls: int, out: Path) -> dict[str, object]:
    data = Path(tempfile.mkdtemp(prefix="voxbus-bench-console-"))
    os.environ.update(
        {
            "VOXBUS_PROFILE": "test",
            "VOXBUS_DATA_DIR": str(data),
            "VOXBUS_CONSOLE__PORT": "0",
            "VOXBUS_SIP__PORT": str(free_port()),
        }
    )
    os.environ.setdefault("VOXBUS_MODEL_DIR", str(Path.home() / ".local/share/voxbus/models"))
    settings = load_settings()
    wav = data / "caller.wav"
    render(SCRIPT, PiperEngine(model_path(settings, "tts"), settings.tts), wav)
    system = System(settings)
    await system.start()
    bus = Bus(system.url, "bench-console", creds=system.creds("admin"))
    await bus.connect(attempts=5)
    started: dict[str, float] = {}
    cpu: list[float] = []

    async def on_event(event: Event, _m: Msg) -> None:
        if isinstance(event, CallStarted):
            started[event.call_id] = event.ts

    async def on_beat(beat: Heartbeat, _m: Msg) -> None:
        if beat.role == "console":
            cpu.append(beat.cpu_s)

    try:
        await wait_all_serving(bus, ("sip", "stt", "llm", "tts", "agent", "console"), timeout_s=120)
        await bus.subscribe(subjects.ALL_CALL_EVENTS, None, on_event)
        await bus.subscribe(subjects.health("console", "console-1"), Heartbeat, on_beat)
        url = console_url_file(settings).read_text().strip()
        password = (data / "auth" / "console-admin.txt").read_text().split()[1]
        rows: dict[str, float] = {}
        stop = asyncio.Event()
        scrapes: list[float] = []
        watchers = [
            asyncio.create_task(follow_feed(url, password, rows, stop)),
            asyncio.create_task(scrape(url, stop, scrapes)),
        ]
        await asyncio.sleep(2.0)
        cpu_before, wall_before = cpu[-1], time.time()
        results = await asyncio.gather(*(FileCall(bus, WavSource(wav)).run() for _ in range(calls)))
        await asyncio.sleep(2.0)
        cpu_after, wall_after = cpu[-1], time.time()
        stop.set()
        for task in watchers:
            task.cancel()
        appear_ms = [(rows[r.call_id] - started[r.call_id]) * 1000 for r in results if r.call_id in rows]
        call_minutes = sum(r.frames for r in results) * 0.02 / 60
        figures: dict[str, object] = {
            "calls": calls,
            "rows_seen": len(appear_ms),
            "appear_ms": appear_ms,
            "appear_ms_median": statistics.median(appear_ms) if appear_ms else None,
            "console_cpu_s": cpu_after - cpu_before,
            "wall_s": wall_after - wall_before,
            "call_minutes": call_minutes,
            "console_cpu_s_per_call_minute": (cpu_after - cpu_before) / call_minutes
            if call_minutes
            else None,
            "metrics_scrape_ms_median": statistics.median(scrapes) * 1000 if scrapes else None,
        }
    finally:
        await bus.close()
        await system.stop()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "console.json", figures)
    plot(figures, out / "console.png")
    return figures


def plot(figures: dict[str, object], path: Path) -> None:
    plt = pyplot()

    appear = figures["appear_ms"]
    assert isinstance(appear, list)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar([f"call {i + 1}" for i in range(len(appear))], appear, color="#2f6fdf")
    ax.set_ylabel("ms from call.started to its row")
    ax.set_title(
        f"console: {figures['calls']} calls at once; "
        f"{figures['console_cpu_s_per_call_minute'] or 0:.2f} CPU s per call-minute"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.calls, args.out)), indent=2))


if __name__ == "__main__":
    main()
