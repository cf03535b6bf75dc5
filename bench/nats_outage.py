"""NATS outage benchmark: kill -9 the embedded nats-server and time how long until the bus is back.

For each kill: the time until the supervisor sees the server up again (its `worker.restarted` event,
role `nats`, read back from the stream), and until a worker's heartbeat arrives again (its
connection came back by itself).
A gateway is the only worker (no models needed).

    python bench/nats_outage.py --kills 5 --out bench/results
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nats.aio.msg import Msg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import pyplot, write_json  # noqa: E402

from voxbus.bus import subjects  # noqa: E402
from voxbus.bus.codec import decode_event  # noqa: E402
from voxbus.bus.connection import Bus  # noqa: E402
from voxbus.bus.embedded import free_port  # noqa: E402
from voxbus.config import load_settings  # noqa: E402
from voxbus.logs import setup_logging  # noqa: E402
from voxbus.schemas.events import WorkerRestarted  # noqa: E402
from voxbus.schemas.messages import Heartbeat  # noqa: E402
from voxbus.supervisors.system import System  # noqa: E402


async def restart_after(client: Bus, epoch: float) -> WorkerRestarted:
    """The supervisor's restart event for the server, read from the stream once the client is back
    (a live subscription could miss it: the supervisor may reconnect before the client does); its
    ``ts`` is when the supervisor saw the server up again."""
    assert client.js is not None
    subject = subjects.system_event("worker.restarted")
    while True:
        try:
            msg = await client.js.get_last_msg(subjects.EVENTS_STREAM, subject)
            event = decode_event(msg.subject, msg.data or b"")
            if isinstance(event, WorkerRestarted) and event.role == "nats" and event.ts > epoch:
                return event
        except Exception:  # not reconnected yet, or not stored yet
            pass
        await asyncio.sleep(0.05)


async def bench(kills: int) -> dict[str, object]:
    settings = load_settings()
    os.environ["VOXBUS_SIP__PORT"] = str(free_port())
    settings.sip = settings.sip.model_copy(update={"port": int(os.environ["VOXBUS_SIP__PORT"])})
    system = System(settings, workers=(("sip", "sip-1"),))
    await system.start()
    client = Bus(system.url, "bench", creds=system.creds("admin"))
    await client.connect(attempts=5)
    beats: asyncio.Queue[float] = asyncio.Queue()

    async def on_beat(_beat: Heartbeat, _m: Msg) -> None:
        beats.put_nowait(time.monotonic())

    await client.subscribe(subjects.health("sip", "sip-1"), Heartbeat, on_beat)
    await asyncio.wait_for(beats.get(), 60)
    back_ms, beat_ms = [], []
    for _ in range(kills):
        assert system.nats is not None and system.nats.proc is not None
        while not beats.empty():
            beats.get_nowait()
        killed, killed_epoch = time.monotonic(), time.time()
        os.kill(system.nats.proc.pid, signal.SIGKILL)
        event = await asyncio.wait_for(restart_after(client, killed_epoch), 30)
        back_ms.append(round((event.ts - killed_epoch) * 1000))
        while True:  # the first heartbeat sent after the kill
            at = await asyncio.wait_for(beats.get(), 30)
            if at > killed:
                break
        beat_ms.append(round((at - killed) * 1000))
        await asyncio.sleep(1.0)
    await client.close()
    await system.stop()
    return {
        "kills": kills,
        "restart_event_ms": back_ms,
        "worker_heartbeat_again_ms": beat_ms,
        "restart_event_ms_median": statistics.median(back_ms),
        "worker_heartbeat_again_ms_median": statistics.median(beat_ms),
    }


def plot(result: dict[str, object], path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.5))
    series = {
        "restart event at a client": result["restart_event_ms"],
        "a worker's heartbeat again": result["worker_heartbeat_again_ms"],
    }
    for i, (label, values) in enumerate(series.items()):
        ax.scatter(values, [i] * len(values), label=label)  # type: ignore[arg-type]
    ax.set_yticks(range(len(series)), list(series))
    ax.set_xlabel("ms after kill -9 of the embedded nats-server")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    setup_logging("error")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("VOXBUS_DATA_DIR", tmp)
        result = asyncio.run(bench(args.kills))
    print(json.dumps(result, indent=2))
    write_json(args.out / "nats_outage.json", result)
    plot(result, args.out / "nats_outage.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
