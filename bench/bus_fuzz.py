"""Bus fuzzing benchmark: garbage and schema-invalid messages on every subject voxbus listens to,
during a live SIP call, with the test models loaded.

For each subject, ``--per-subject`` payloads (``tests/bus_garbage.py``: random bytes, msgpack that
is not a map, truncated or deeply nested msgpack, fields dropped, of the wrong type or hostile,
audio frames of the wrong size, one in a hundred near NATS's 1 MiB payload limit), sent twice
(two seeds). Measured: restarts and changed process ids (crashes), the RSS of every process
before, between the rounds and after (bounded memory: the second round adds nothing), the error
events and rejections the garbage drew, whether the call in progress still obeys a hang-up, and
whether a new call is answered afterwards.

    python bench/bus_fuzz.py --per-subject 1000 --out bench/results
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from nats.aio.msg import Msg
from procstat import rss_kb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import pyplot, write_json  # noqa: E402

from tests.bus_garbage import garbage, subject_templates  # noqa: E402
from tests.integration.helpers import sipp_command  # noqa: E402
from voxbus.bus import subjects  # noqa: E402
from voxbus.bus.connection import Bus  # noqa: E402
from voxbus.bus.embedded import free_port  # noqa: E402
from voxbus.config import load_settings  # noqa: E402
from voxbus.engines.models import model_path, models_dir  # noqa: E402
from voxbus.engines.tts import PiperEngine  # noqa: E402
from voxbus.logs import setup_logging  # noqa: E402
from voxbus.media.file_call import FileCall  # noqa: E402
from voxbus.media.script import CallerScript, Line, render  # noqa: E402
from voxbus.media.wav import WavSource  # noqa: E402
from voxbus.schemas import messages as m  # noqa: E402
from voxbus.schemas.events import CallEnded, CallStarted, ErrorEvent, Event, TurnMetrics, WorkerRestarted  # noqa: E402
from voxbus.supervisors.serving import pid_of, wait_all_serving  # noqa: E402
from voxbus.supervisors.system import System  # noqa: E402

ROLES = ("stt", "llm", "tts", "agent", "sip")


async def fuzz_round(client: Bus, call_id: str, per_subject: int, seed: int) -> dict[str, int]:
    """Every subject's garbage, as fast as NATS takes it; each request carries a reply subject of its
    own (a responder may answer a reply subject once: NATS ``allow_responses``)."""
    replies = {"requests": 0, "rejections": 0}
    inbox = client.nc.new_inbox()

    async def on_reply(_msg: Msg) -> None:
        replies["rejections"] += 1

    sub = await client.nc.subscribe(f"{inbox}.*", cb=on_reply)
    for subject, valid, is_request in subject_templates(call_id):
        for _, payload in garbage(valid, per_subject, seed=seed):  # type: ignore[arg-type]
            reply = f"{inbox}.{replies['requests']}" if is_request else ""
            await client.nc.publish(subject, payload, reply=reply)
            replies["requests"] += is_request
        await client.nc.flush()
    deadline = time.monotonic() + 30
    while replies["rejections"] < replies["requests"] and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await sub.unsubscribe()
    return replies


async def bench(per_subject: int, tmp: Path) -> dict:
    settings = load_settings()
    system = System(settings)
    await system.start()
    client = Bus(system.url, "bench", creds=system.creds("admin"))
    await client.connect(attempts=5)
    seen: list[Event] = []

    async def on_event(event: Event, _m: Msg) -> None:
        seen.append(event)

    await client.subscribe(subjects.ALL_CALL_EVENTS, None, on_event)
    await client.subscribe(subjects.ALL_SYSTEM_EVENTS, None, on_event)
    await wait_all_serving(client)
    pids = {role: await pid_of(client, role, f"{role}-1") for role in ROLES}
    assert system.nats is not None and system.nats.proc is not None
    pids["nats"] = system.nats.proc.pid
    rss = {"before": {role: rss_kb(pid) for role, pid in pids.items()}}

    sipp = await asyncio.create_subprocess_exec(
        *sipp_command(["-sf", str(ROOT / "tests/integration/sipp/caller_until_bye.xml")],
                      f"127.0.0.1:{settings.sip.port}", 1),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    while not (started := [e for e in seen if isinstance(e, CallStarted)]):
        await asyncio.sleep(0.05)
    call_id = started[0].call_id
    print(f"fuzzing {len(subject_templates(call_id))} subjects during call {call_id}...", flush=True)
    began = time.monotonic()
    rounds = [await fuzz_round(client, call_id, per_subject, seed=1)]
    rss["after round 1"] = {role: rss_kb(pid) for role, pid in pids.items()}
    rounds.append(await fuzz_round(client, call_id, per_subject, seed=2))
    rss["after round 2"] = {role: rss_kb(pid) for role, pid in pids.items()}
    fuzz_s = time.monotonic() - began

    # the call in progress still obeys its control subject, and a new call is answered
    # (a hang-up is acknowledged and retried: a flood that drops the first must not leave the call up)
    hangup_at = time.monotonic()
    acknowledged = await client.command(
        subjects.control(call_id),
        m.CallControl(call_id=call_id, action="hangup"),
        within_s=10.0,
        per_try_s=1.0,
    )
    acknowledged_s = time.monotonic() - hangup_at
    sipp_rc = await asyncio.wait_for(sipp.wait(), 30)
    ended = any(isinstance(e, CallEnded) and e.call_id == call_id for e in seen)
    piper = PiperEngine(model_path(settings, "tts"), settings.tts)
    wav = tmp / "question.wav"
    render(
        CallerScript(lines=[Line(text="What is the capital of France?", pause_before_s=4.0)], tail_s=0.5),
        piper,
        wav,
    )
    call = FileCall(client, WavSource(wav))
    result = await asyncio.wait_for(call.run(), 120)
    answered = any(isinstance(e, TurnMetrics) and e.first_audio_ms for e in result.events)

    errors = [e for e in seen if isinstance(e, ErrorEvent) and e.code == "bad_message"]
    restarts = [e for e in seen if isinstance(e, WorkerRestarted)]
    pids_after = {role: await pid_of(client, role, f"{role}-1") for role in ROLES}
    await client.close()
    await system.stop()
    sent = 2 * per_subject * len(subject_templates(call_id))
    return {
        "subjects": [s for s, _, _ in subject_templates(call_id)],
        "per_subject_per_round": per_subject,
        "messages_sent": sent,
        "fuzz_seconds": round(fuzz_s, 1),
        "rounds": rounds,
        "error_events": len(errors),
        "error_events_with_counts": sum("not reported one by one" in e.message for e in errors),
        "worker_restarts": len(restarts),
        "pids_unchanged": all(pids_after[r] == pids[r] for r in ROLES),
        "rss_kb": rss,
        "call_in_progress_hung_up": ended and sipp_rc == 0,
        "hangup_acknowledged": acknowledged,
        "hangup_acknowledged_after_s": round(acknowledged_s, 3),
        "new_call_answered": answered,
    }


def plot(result: dict, path: Path) -> None:
    plt = pyplot()

    stages = list(result["rss_kb"])
    roles = list(result["rss_kb"][stages[0]])
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(stages)
    for i, stage in enumerate(stages):
        values = [result["rss_kb"][stage][r] / 1024 for r in roles]
        ax.bar([x + i * width for x in range(len(roles))], values, width, label=stage)
    ax.set_xticks([x + width for x in range(len(roles))], roles)
    ax.set_ylabel("RSS (MiB)")
    ax.legend()
    ax.set_title(
        f"{result['messages_sent']:,} bad messages on {len(result['subjects'])} subjects: "
        f"{result['worker_restarts']} restarts, new call answered: {result['new_call_answered']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-subject", type=int, default=1000, help="bad messages per subject per round")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    setup_logging("critical")
    os.environ.setdefault("VOXBUS_PROFILE", "test")
    os.environ["VOXBUS_SIP__PORT"] = str(free_port())
    os.environ.setdefault("VOXBUS_MODEL_DIR", str(models_dir(load_settings())))  # before the data dir moves
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("VOXBUS_DATA_DIR", tmp)
        result = asyncio.run(bench(args.per_subject, Path(tmp)))
    print(json.dumps(result, indent=2))
    write_json(args.out / "bus_fuzz.json", result)
    plot(result, args.out / "bus_fuzz.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
