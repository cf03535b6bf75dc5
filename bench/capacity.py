"""Capacity: how many simultaneous calls one machine holds, and what a call-minute costs.

For N = 1, 2, 3, 4 simultaneous SIP calls into one ``voxbus`` system (one model profile, started
once): each call is the latency benchmark's reacting caller (its ten lines, an interruption, a
backchannel and a cough among them; PCMU; the phone's echo at -20 dB), each in its own process
(pjsua2 allows one endpoint per process), in a different voice (the bundled piper voice, then
espeak-ng variants), starting 0-2 s apart. Per N, over every answered turn of every call: the
perceived latency p50 / p95 (caller's ear, as in bench/latency.py), the answers lost (a caller turn
with no agent audio before the caller's next line), and the CPU seconds that the system's processes
(NATS, gateway, STT, LLM, TTS, agent) spent per call-minute. The callers' audio is rendered before
the calls start, so the callers cost next to nothing while they run. Writes ``capacity.json`` and
``capacity.png``.

    python bench/capacity.py --profile default --profile 0.5b --calls 1,2,3,4 --out bench/results

``--llm-parallel 1,4`` runs every profile twice: its LLM answering one call at a time, and
decoding up to four calls' answers together (``llm.parallel``, voxbus/engines/llm_batch.py).

Profiles: ``default`` (Qwen2.5-1.5B), ``0.5b`` (the default profile with Qwen2.5-0.5B, fetched by
``voxbus models fetch --name qwen2.5-coder-0.5b-instruct-q4_k_m``) and ``test`` (SmolLM2-135M).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import DIALOGUE, ECHO_GAIN, percentile, turn_rows  # noqa: E402
from procstat import cpu_seconds  # noqa: E402
from ready import system_ready  # noqa: E402
from report import pyplot, write_json  # noqa: E402

from voxbus.bus.embedded import free_port  # noqa: E402
from voxbus.config import Settings, load_settings  # noqa: E402
from voxbus.engines.models import model_path, models_dir  # noqa: E402
from voxbus.engines.tts import PiperEngine, VoiceEngine, voice_engine  # noqa: E402
from voxbus.logs import setup_logging  # noqa: E402
from voxbus.media.dialogue import DialoguePlayer, render_line  # noqa: E402
from voxbus.schemas.events import CallStarted  # noqa: E402
from voxbus.supervisors.system import System  # noqa: E402

SMALL_LLM = "qwen2.5-coder-0.5b-instruct-q4_k_m"
VOICES = ["piper", "espeak-ng:en-us+f2", "espeak-ng:en-gb+m3", "espeak-ng:en-us+m4"]
STAGGER_S = 2.0
IDLE_SAMPLE_S = 10.0  # the system's own cost with no call up (heartbeats, supervision)
SETTLE_S = 30.0  # after its start: warm-ups done (a first run sampled 1 core busy right after start)


def caller_voice(name: str, settings: Settings) -> VoiceEngine:
    if name == "piper":
        return PiperEngine(model_path(settings, "tts"), settings.tts)
    return voice_engine(name, settings.tts)


async def one_caller(url: str, voice: str, index: int, out: Path, offset_s: float) -> dict[str, Any]:
    """A caller process: render the lines, say "ready", wait for "go", call; its turns as JSON."""
    from voxbus.commands import sip_call

    settings = load_settings()
    engine = caller_voice(voice, settings)
    player = DialoguePlayer(DIALOGUE, [render_line(line, engine) for line in DIALOGUE.lines])
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await asyncio.sleep(offset_s)
    user = f"capacity{index}"
    started = time.monotonic()
    heard, _, events = await sip_call(
        url, settings, player, out / f"heard-{index}.wav", echo_gain=ECHO_GAIN, quiet=True, caller_user=user
    )
    wall = time.monotonic() - started
    call_id = next((e.call_id for e in events if isinstance(e, CallStarted) and user in e.caller), None)
    mine = [e for e in events if getattr(e, "call_id", None) == call_id]  # every call's events arrive
    rows, checks = turn_rows({"heard": heard, "timings": player.timings, "events": mine})
    return {"voice": voice, "call_id": call_id, "wall_s": round(wall, 1), "turns": rows, "checks": checks}


def descendants(root: int, leave_out: set[int]) -> list[int]:
    """The processes under ``root`` (read from /proc), without ``leave_out`` and what runs under them."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        for child, of in parent.items():
            if of == pid and child not in leave_out:
                found.append(child)
                frontier.append(child)
    return found


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # gone meanwhile
            total += cpu_seconds(pid)
    return total


async def idle_cpu_share() -> float:
    """Cores the system keeps busy with no call: subtracted to give a call-minute's own cost.
    Sampled once its start-up work (model warm-ups, prompts evaluated) has had time to end."""
    await asyncio.sleep(SETTLE_S)
    pids = descendants(os.getpid(), set())
    before = cpu_of(pids)
    await asyncio.sleep(IDLE_SAMPLE_S)
    return (cpu_of(pids) - before) / IDLE_SAMPLE_S


async def calls_at_once(url: str, n: int, out: Path, seed: int, idle_share: float) -> dict[str, Any]:
    rng = random.Random(seed)
    callers = []
    for index in range(n):
        offset = 0.0 if index == 0 else rng.uniform(0, STAGGER_S)
        command = [sys.executable, __file__, "caller", "--url", url, "--voice", VOICES[index % len(VOICES)]]
        command += ["--index", str(index), "--out", str(out), "--offset", f"{offset:.2f}"]
        callers.append(
            await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
        )
    for proc in callers:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"a caller did not start: {line!r}")
    system_pids = descendants(os.getpid(), {proc.pid for proc in callers})
    cpu_before, started = cpu_of(system_pids), time.monotonic()
    for proc in callers:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    outputs = [await proc.communicate() for proc in callers]
    cpu = cpu_of(system_pids) - cpu_before
    wall = time.monotonic() - started
    calls = [json.loads(stdout.decode().strip().splitlines()[-1]) for stdout, _ in outputs]
    perceived = [t["perceived_ms"] for c in calls for t in c["turns"] if t["perceived_ms"] is not None]
    lost = sum(t["perceived_ms"] is None for c in calls for t in c["turns"])
    call_minutes = sum(c["wall_s"] for c in calls) / 60
    own = cpu - idle_share * wall
    return {
        "calls": n,
        "perceived_p50_ms": percentile(perceived, 50),
        "perceived_p95_ms": percentile(perceived, 95),
        "perceived_max_ms": max(perceived, default=None),
        "turns": sum(len(c["turns"]) for c in calls),
        "answers_lost": lost,
        "false_interruptions": sum(c["checks"].get("false_interruptions", 0) for c in calls),
        "cpu_s": round(cpu, 1),
        "cpu_s_per_call_minute": round(cpu / call_minutes, 1) if call_minutes else None,
        "calls_own_cpu_s_per_call_minute": round(own / call_minutes, 1) if call_minutes else None,
        "cpu_share": round(cpu / wall / (os.cpu_count() or 1), 2),
        "wall_s": round(wall, 1),
        "per_call": calls,
    }


async def run_profile(profile: str, counts: list[int], out: Path, parallel: int = 1) -> dict[str, Any]:
    os.environ["VOXBUS_PROFILE"] = "default" if profile == "0.5b" else profile
    os.environ["VOXBUS_LLM__PARALLEL"] = str(parallel)
    label = profile if parallel == 1 else f"{profile}, batched x{parallel}"
    os.environ.pop("VOXBUS_MODELS__LLM", None)
    if profile == "0.5b":
        folder = models_dir(load_settings()) / SMALL_LLM
        os.environ["VOXBUS_MODELS__LLM"] = str(folder / f"{SMALL_LLM}.gguf")
    os.environ["VOXBUS_DATA_DIR"] = str(out / f"data-capacity-{profile}")
    os.environ["VOXBUS_SIP__PORT"] = str(free_port())
    os.environ["VOXBUS_SIP__RTP_PORT"] = str(30000 + free_port() % 15000 // 2 * 2)
    settings = load_settings()
    system = System(settings)
    url = await system.start()
    rows = []
    try:
        await system.while_healthy(system_ready(system))  # the gateway refuses calls until then
        idle_share = await system.while_healthy(idle_cpu_share())
        print(f"  {label}: idle, the system keeps {idle_share:.2f} cores busy", flush=True)
        for n in counts:
            print(f"  {label}: {n} call(s) at once...", flush=True)
            row = await system.while_healthy(calls_at_once(url, n, out, seed=n, idle_share=idle_share))
            rows.append(row)
            print(
                f"    perceived p50 {row['perceived_p50_ms']} / p95 {row['perceived_p95_ms']} ms, "
                f"{row['answers_lost']} of {row['turns']} answers lost, "
                f"{row['cpu_s_per_call_minute']} CPU s per call-minute",
                flush=True,
            )
    finally:
        await system.stop()
    alone = rows[0]["perceived_p50_ms"] if rows and rows[0]["calls"] == 1 else None
    for row in rows:
        p50 = row["perceived_p50_ms"]
        row["p50_vs_one_call"] = round(p50 / alone, 2) if alone and p50 else None
    return {
        "profile": label,
        "llm_parallel": parallel,
        "idle_cpu_share": round(idle_share, 3),
        "rows": rows,
    }


def plot(results: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()

    fig, (lat, cost) = plt.subplots(1, 2, figsize=(12, 4.8))
    for result in results:
        rows = result["rows"]
        ns = [r["calls"] for r in rows]
        p50 = [r["perceived_p50_ms"] or 0 for r in rows]
        p95 = [r["perceived_p95_ms"] or 0 for r in rows]
        line = lat.plot(ns, p50, "o-", label=f"{result['profile']} p50")[0]
        lat.plot(ns, p95, "s--", color=line.get_color(), label=f"{result['profile']} p95")
        for n, y, r in zip(ns, p95, rows, strict=True):
            if r["answers_lost"]:
                lat.annotate(f"{r['answers_lost']} lost", (n, y), textcoords="offset points", xytext=(4, 6))
        cost.plot(ns, [r["cpu_s_per_call_minute"] or 0 for r in rows], "o-", color=line.get_color(),
                  label=f"{result['profile']}, all")  # fmt: skip
        own = [r.get("calls_own_cpu_s_per_call_minute") for r in rows]  # the idle system's share left out
        if all(value is not None for value in own):
            cost.plot(ns, own, "x:", color=line.get_color(), label=f"{result['profile']}, the calls' own")
    lat.axhline(700, color="grey", linestyle=":", label="target p50 700 ms")
    lat.set_xlabel("simultaneous SIP calls")
    lat.set_ylabel("perceived latency, ms (caller's ear)")
    lat.set_title("Latency against simultaneous calls (2-core machine)")
    lat.legend(fontsize=8)
    cost.set_xlabel("simultaneous SIP calls")
    cost.set_ylabel("CPU seconds per call-minute (all voxbus processes)")
    cost.set_title("What a call-minute costs")
    cost.legend(fontsize=8)
    for ax in (lat, cost):
        ax.set_xticks(sorted({r["calls"] for res in results for r in res["rows"]}))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    caller = sub.add_parser("caller", help="one caller (started by the benchmark itself)")
    caller.add_argument("--url", required=True)
    caller.add_argument("--voice", default="piper")
    caller.add_argument("--index", type=int, default=0)
    caller.add_argument("--out", type=Path, required=True)
    caller.add_argument("--offset", type=float, default=0.0)
    parser.add_argument("--profile", action="append", choices=["default", "0.5b", "test"], default=[])
    parser.add_argument("--calls", default="1,2,3,4", help="numbers of simultaneous calls, e.g. 1,2,3,4")
    parser.add_argument("--llm-parallel", default="1", help="llm.parallel values, e.g. 1,4")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    setup_logging("warning")
    os.environ.setdefault("VOXBUS_MODEL_DIR", str(models_dir(load_settings())))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.command == "caller":
        result = asyncio.run(one_caller(args.url, args.voice, args.index, args.out, args.offset))
        print(json.dumps(result), flush=True)
        return 0
    counts = [int(n) for n in args.calls.split(",")]
    if any(not 1 <= n <= 4 for n in counts):
        parser.error("--calls: 1 to 4 calls at once (one gateway's pjsua2 limit)")
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for profile in args.profile or ["default"]:
        for parallel in (int(p) for p in args.llm_parallel.split(",")):
            print(f"profile {profile}, llm.parallel {parallel}: {args.calls} simultaneous calls", flush=True)
            results.append(asyncio.run(run_profile(profile, counts, args.out, parallel)))
    report = {
        "dialogue_lines": len(DIALOGUE.lines),
        "voices": VOICES,
        "results": results,
    }
    write_json(args.out / "capacity.json", report)
    plot(results, args.out / "capacity.png")
    summary = {
        r["profile"]: [{k: v for k, v in row.items() if k != "per_call"} for row in r["rows"]]
        for r in results
    }
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out / 'capacity.json'} and {args.out / 'capacity.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
