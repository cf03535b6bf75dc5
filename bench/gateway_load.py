"""Gateway load and soak: many simultaneous SIP calls through Kamailio into gateway shards, with an
echo on the bus in place of the agent (no models, a process of its own), so that audio flows both
ways.

- load: ``--calls`` calls (sipp, G.711 speech from a pcap, 10 new calls a second: under Kamailio's
  pike limit) into ``--shards`` gateway processes (4 calls each at most): frames lost (ticks with no
  caller audio) and late (agent audio due but not there) per call-minute, CPU of every component
  per call, from /proc.
- soak: ``--soak-calls`` calls held for ``--soak-minutes``: the RSS of every process sampled every
  30 s; growth from the first minute's sample to the last.

    python bench/gateway_load.py --calls 100 --shards 25 --seconds 60 \
        --soak-calls 20 --soak-minutes 10 --out bench/results

Writes ``gateway_load.json`` and ``gateway_load.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from gateway import PLAY, SCENARIO, echo_process, shard_pids
from nats.aio.msg import Msg
from procstat import cpu_seconds, rss_kb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import pyplot, write_json  # noqa: E402

from tests.integration.helpers import kamailio_front  # noqa: E402
from voxbus.bus import subjects  # noqa: E402
from voxbus.bus.connection import Bus  # noqa: E402
from voxbus.bus.embedded import free_port, free_ports  # noqa: E402
from voxbus.config import load_settings  # noqa: E402
from voxbus.logs import setup_logging  # noqa: E402
from voxbus.schemas.events import CallEnded, Event, WorkerExited  # noqa: E402
from voxbus.supervisors.system import System  # noqa: E402

SAMPLE_S = 30.0
NEW_CALLS_PER_S = 10


def pids_running(word: str, also: str) -> list[int]:
    """Processes whose command line holds both ``word`` and ``also`` (Kamailio's children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if word in cmdline and also in cmdline:
                found.append(int(entry.name))
    return found


def cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


async def held_calls(calls: int, shards: int, seconds: int, workdir: Path, sample_every_s: float) -> dict:
    """``calls`` calls of ``seconds`` each into ``shards`` gateways; CPU and RSS sampled meanwhile."""
    settings = load_settings()
    ports = [free_port() for _ in range(shards)]
    system = System(
        settings,
        workers=tuple(
            ("sip", f"sip-{i + 1}", ["--port", str(p), "--rtp-port", str(10000 + 200 * i)])
            for i, p in enumerate(ports)
        ),
    )  # type: ignore[arg-type]
    await system.start()
    bus = Bus(system.url, "bench", creds=system.creds("admin"))
    await bus.connect(attempts=5)
    ended: list[CallEnded] = []
    exited: list[WorkerExited] = []  # a shard that died or was taken for hung loses its calls

    async def on_event(event: Event, _m: Msg) -> None:
        if isinstance(event, CallEnded):
            ended.append(event)
        elif isinstance(event, WorkerExited):
            exited.append(event)

    await bus.subscribe("voxbus.call.*.evt.call.ended", None, on_event)
    await bus.subscribe(subjects.system_event("worker.exited"), None, on_event)
    echoing = await echo_process(system.url, system.creds("admin"))
    shard = await shard_pids(bus, shards)
    assert system.nats is not None and system.nats.proc is not None
    groups: dict[str, list[int]] = {
        "gateways": shard,
        "nats": [system.nats.proc.pid],
        "echo": [echoing.pid],
        "supervisor": [os.getpid()],
    }
    scenario = workdir / "long.xml"
    scenario.write_text(SCENARIO.replace("REPEAT", PLAY * max(1, seconds // 8)))
    samples: list[dict] = []
    async with kamailio_front(ports, workdir) as front:
        groups["kamailio"] = pids_running("kamailio", str(workdir))
        sipp = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(scenario), "-m", str(calls), "-l", str(calls), "-r", str(NEW_CALLS_PER_S),
            "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_ports(4)),
            "-nostdin", "-trace_err", "-error_file", str(workdir / "sipp_errors.log"), f"127.0.0.1:{front}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        groups["sipp"] = [sipp.pid]
        await asyncio.sleep(calls / NEW_CALLS_PER_S + 2)  # all calls up
        began = steady_from = time.monotonic()
        cpu_steady = {name: cpu(pids) for name, pids in groups.items()}
        cpu_last, last_at = cpu_steady, steady_from
        while sipp.returncode is None and time.monotonic() - began < seconds + 60:
            rss = {name: round(sum(rss_kb(p) for p in pids) / 1024, 1) for name, pids in groups.items()}
            samples.append({"t_s": round(time.monotonic() - began, 1), "rss_mb": rss})
            if len(samples) > 1:  # CPU over the steady state, while every process still runs
                cpu_last, last_at = {name: cpu(pids) for name, pids in groups.items()}, time.monotonic()
            else:
                cpu_steady, steady_from = {name: cpu(pids) for name, pids in groups.items()}, time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sipp.wait(), sample_every_s)
        span_s = max(last_at - steady_from, 1e-3)
        cores = {name: round((cpu_last[name] - cpu_steady[name]) / span_s, 3) for name in groups}
        sipp_code = sipp.returncode
    await asyncio.sleep(2)  # the last call.ended events
    echoing.terminate()
    await echoing.wait()
    await bus.close()
    await system.stop()
    minutes = sum(e.duration_s for e in ended) / 60 or 1
    return {
        "calls": calls,
        "shards": shards,
        "seconds": seconds,
        "sipp_exit": sipp_code,
        "calls_ended": len(ended),
        "call_minutes": round(minutes, 1),
        "frames_lost_per_call_minute": round(sum(e.frames_empty for e in ended) / minutes, 2),
        "frames_late_per_call_minute": round(sum(e.playout_underruns for e in ended) / minutes, 2),
        "frames_in": sum(e.frames_in for e in ended),
        "workers_exited": [{"worker": e.worker_id, "reason": e.reason} for e in exited],
        "sipp_failures": sipp_failures(workdir / "sipp_errors.log"),
        "cpu_cores": cores,
        "cpu_percent_per_call": {name: round(c / calls * 100, 2) for name, c in cores.items()},
        "rss_samples": samples,
    }


def sipp_failures(error_log: Path) -> dict[str, int]:
    """Why sipp's failed calls failed, counted from its error log (``-trace_err``): the SIP answer
    it did not expect ("503"), a timeout, or the first words of any other reason."""
    reasons: dict[str, int] = {}
    text = error_log.read_text(errors="replace") if error_log.exists() else ""
    for line in text.splitlines():
        if "aborting call" not in line.lower():
            continue
        answer = re.search(r"received '(?:SIP/2\.0 )?(\d{3})", line)
        reason = answer.group(1) if answer else "timeout" if "timeout" in line.lower() else line[:60]
        reasons[reason] = reasons.get(reason, 0) + 1
    return dict(sorted(reasons.items(), key=lambda item: -item[1]))


def growth(samples: list[dict]) -> dict[str, float]:
    """RSS growth in %, per process group, from the first minute's sample to the last sample."""
    first = next((s for s in samples if s["t_s"] >= 60), samples[0])["rss_mb"]
    last = samples[-1]["rss_mb"]
    return {name: round((last[name] - first[name]) / first[name] * 100, 2) for name in first if first[name]}


def plot(result: dict, path: Path) -> None:
    plt = pyplot()

    load, soak = result["load"], result.get("soak")
    fig, axes = plt.subplots(1, 2 if soak else 1, figsize=(12 if soak else 6, 4), squeeze=False)
    names = list(load["cpu_percent_per_call"])
    axes[0][0].bar(names, [load["cpu_percent_per_call"][n] for n in names], color="#6baed6")
    axes[0][0].set_ylabel("% of one core per call")
    axes[0][0].set_title(
        f"{load['calls']} calls, {load['shards']} shards: lost {load['frames_lost_per_call_minute']}, "
        f"late {load['frames_late_per_call_minute']} frames per call-minute",
        fontsize=9,
    )
    if soak:
        ax = axes[0][1]
        for name in soak["rss_samples"][0]["rss_mb"]:
            ax.plot(
                [s["t_s"] / 60 for s in soak["rss_samples"]],
                [s["rss_mb"][name] for s in soak["rss_samples"]],
                label=name,
            )
        ax.set_xlabel("minutes")
        ax.set_ylabel("RSS (MiB)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.set_title(f"soak: {soak['calls']} calls; growth % {soak['rss_growth_percent']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--shards", type=int, default=25)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--soak-calls", type=int, default=20)
    parser.add_argument("--soak-minutes", type=float, default=0, help="0: no soak")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    setup_logging("error")
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("VOXBUS_DATA_DIR", tmp)
        print(f"load: {args.calls} calls x {args.seconds} s, {args.shards} shards...", flush=True)
        result["load"] = asyncio.run(held_calls(args.calls, args.shards, args.seconds, Path(tmp), 10.0))
        print(
            json.dumps({k: v for k, v in result["load"].items() if k != "rss_samples"}, indent=2), flush=True
        )
        if args.soak_minutes:
            seconds = int(args.soak_minutes * 60)
            shards = -(-args.soak_calls // 4)
            print(f"soak: {args.soak_calls} calls x {seconds} s, {shards} shards...", flush=True)
            soak = asyncio.run(held_calls(args.soak_calls, shards, seconds, Path(tmp), SAMPLE_S))
            soak["rss_growth_percent"] = growth(soak["rss_samples"])
            result["soak"] = soak
            print(json.dumps({k: v for k, v in soak.items() if k != "rss_samples"}, indent=2), flush=True)
    write_json(args.out / "gateway_load.json", result)
    plot(result, args.out / "gateway_load.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
