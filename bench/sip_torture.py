"""SIP door benchmark: hostile INVITEs sent straight at a gateway, as an attacker on the same network
as a PBX could; what each got, whether the gateway restarted, and whether a real call still works.

Suites: the PROTOS c07-sip test cases (University of Oulu, 4,527 malformed INVITEs; GPLv2, not
shipped with voxbus: pass the folder of case files from the rtckit/protos-sip-test-cases
repository), the project's own RFC 4475 semantic cases (``tests/hostile_sip.py``), and mutated
requests of every method, generated from a seed (``tests/sip_mutations.py``).

    python bench/sip_torture.py --protos /path/to/protos-sip-test-cases/cases --rate 8
    python bench/sip_torture.py --mutations 10000 --mutation-rate 100 [--through-kamailio]

Writes ``sip_torture.json`` and ``sip_torture.png`` (answers per status) into ``--out``
(``sip_fuzz*.json`` for a run of mutations alone).
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
from collections import Counter
from pathlib import Path

from nats.aio.msg import Msg
from procstat import rss_kb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import pyplot, write_json  # noqa: E402

from tests.hostile_sip import cases as rfc4475_cases  # noqa: E402
from tests.integration.helpers import kamailio_front  # noqa: E402
from tests.sip_mutations import mutated_messages  # noqa: E402
from tests.sip_probe import Prober  # noqa: E402
from voxbus.bus import subjects  # noqa: E402
from voxbus.bus.connection import Bus  # noqa: E402
from voxbus.bus.embedded import free_port  # noqa: E402
from voxbus.config import load_settings  # noqa: E402
from voxbus.logs import setup_logging  # noqa: E402
from voxbus.schemas.events import Event, WorkerRestarted  # noqa: E402
from voxbus.schemas.messages import Heartbeat  # noqa: E402
from voxbus.supervisors.serving import pid_of  # noqa: E402
from voxbus.supervisors.system import System  # noqa: E402

WAIT_S = 2.0  # for a final answer, before the case is torn down with its CANCEL


def protos_messages(case: bytes) -> list[bytes]:
    """A PROTOS case file: length-prefixed messages ("<length> <bytes>"), the INVITE then its
    teardown."""
    out, at = [], 0
    while at < len(case):
        space = case.index(b" ", at)
        length = int(case[at:space])
        out.append(case[space + 1 : space + 1 + length])
        at = space + 1 + length
    return out


def fill(template: bytes, number: int, target: str, local_port: int) -> bytes:
    """PROTOS's placeholders, filled as its own tool does; Content-Length is the body's."""
    head, sep, body = template.partition(b"\r\n\r\n")
    values = {
        b"<To>": f"voxbus@{target}".encode(),
        b"<From>": f"protos@127.0.0.1:{local_port}".encode(),
        b"<From-Address>": b"127.0.0.1",
        b"<From-IP>": b"127.0.0.1",
        b"<Local-Port>": str(local_port).encode(),
        b"<Branch-ID>": f"{number:07d}{int(time.time() * 1000) % 100000}".encode(),
        b"<Call-ID>": f"protos-{number:07d}".encode(),
        b"<CSeq>": b"1",
        b"<Teardown-Method>": b"CANCEL",
    }
    for key, value in values.items():
        head, body = head.replace(key, value), body.replace(key, value)
    head = head.replace(b"<Content-Length>", str(len(body)).encode())
    return head + sep + body


Case = tuple[str, bytes, bytes | None]  # Call-ID, the INVITE, its teardown


async def run_suite(name: str, messages: list[Case], prober: Prober, rate: float) -> dict:
    sent = too_big = 0
    loop = asyncio.get_running_loop()
    for _, invite, teardown in messages:
        if await prober.send(invite):
            sent += 1
        else:
            too_big += 1
        await asyncio.sleep(1 / rate)
        if teardown is not None:
            loop.call_later(WAIT_S, lambda t=teardown: asyncio.ensure_future(prober.send(t)))
    await asyncio.sleep(WAIT_S + 1)
    keys = [key for key, _, _ in messages]
    answers = Counter(str(prober.finals.get(key, "none")) for key in keys)
    set_up = [key for key in keys if 200 <= prober.finals.get(key, 0) < 300]
    return {
        "suite": name,
        "sent": sent,
        "too_big_for_udp": too_big,
        "answers": dict(sorted(answers.items())),
        "set_up_calls": set_up,  # the INVITEs answered 2xx, for a closer look
    }


async def bench(args: argparse.Namespace, tmp: Path) -> dict:
    settings = load_settings()
    port = free_port()
    settings.sip = settings.sip.model_copy(update={"port": port})
    os.environ["VOXBUS_SIP__PORT"] = str(port)
    system = System(settings, workers=(("sip", "sip-1"),))
    await system.start()
    bus = Bus(system.url, "bench", creds=system.creds("admin"))
    await bus.connect(attempts=5)
    restarts: list[Event] = []

    async def on_restart(event: Event, _m: Msg) -> None:
        restarts.append(event)

    await bus.subscribe(subjects.system_event("worker.restarted"), None, on_restart)
    gateway_pid = await pid_of(bus, "sip", "sip-1")
    rss_before = rss_kb(gateway_pid)
    fronts = contextlib.AsyncExitStack()
    target_port = (
        await fronts.enter_async_context(kamailio_front([port], tmp)) if args.through_kamailio else port
    )
    prober = Prober(("127.0.0.1", target_port))
    listening = asyncio.create_task(prober.listen())
    results = []
    local = f"127.0.0.1:{prober.port}"
    to = f"127.0.0.1:{target_port}"
    ours = [(f"{branch}@torture", message, None) for branch, message in _ours(to, local)]
    results.append(await run_suite("RFC 4475 semantic cases (tests/hostile_sip.py)", ours, prober, args.rate))
    if args.mutations:
        fuzzer = Prober(("127.0.0.1", target_port), ignore=())  # answers to BYE and CANCEL count here
        fuzzing = asyncio.create_task(fuzzer.listen())
        cases = mutated_messages(args.mutations, to, f"127.0.0.1:{fuzzer.port}", args.seed)
        print(f"mutations: {len(cases)} messages at {args.mutation_rate}/s...", flush=True)
        mutated = [(call_id, message, None) for call_id, _, message in cases]
        suite = await run_suite(
            f"mutated requests (tests/sip_mutations.py, seed {args.seed})",
            mutated,
            fuzzer,
            args.mutation_rate,
        )
        suite["rate_per_s"] = args.mutation_rate
        suite["requests_from_the_gateway"] = len(fuzzer.requests)  # BYEs ending the calls set up
        ours = {call_id for call_id, _, _ in cases}  # answers whose Call-ID was mangled on the way in
        suite["answers_to_a_mangled_call_id"] = len(set(fuzzer.finals) - ours)
        suite["improper_answers"] = len(fuzzer.improper)
        suite["improper_samples"] = [sample.decode(errors="replace") for sample in fuzzer.improper[:5]]
        suite["answers_2xx_by_mutation"] = dict(
            Counter(
                what for call_id, what, _ in cases if 200 <= fuzzer.finals.get(call_id, 0) < 300
            ).most_common(10)
        )
        suite["unanswered_by_mutation"] = dict(
            Counter(what for call_id, what, _ in cases if call_id not in fuzzer.finals).most_common(12)
        )
        results.append(suite)
        fuzzing.cancel()
    protos = args.protos
    if protos is not None:
        rate, every = args.rate, args.every
        files = sorted(protos.iterdir())[::every]
        messages = []
        for number, path in ((int(p.name), p) for p in files):
            invite, *rest = protos_messages(path.read_bytes())
            teardown = fill(rest[0], number, to, prober.port) if rest else None
            filled = fill(invite, number, to, prober.port)
            messages.append((f"protos-{number:07d}@127.0.0.1", filled, teardown))
        print(f"PROTOS: {len(messages)} cases at {rate}/s...", flush=True)
        results.append(await run_suite(f"PROTOS c07-sip (every {every})", messages, prober, rate))
    listening.cancel()
    if protos is not None:
        await asyncio.sleep(35)  # calls PROTOS set up and left (no ACK) end after RFC 3261's 32 s
    idle_after_s = await _idle(bus)  # calls that mangled INVITEs set up end by themselves (32 s)
    served = await _a_real_call(target_port)
    rss_after = rss_kb(gateway_pid)
    await fronts.aclose()
    result = {
        "target": "Kamailio (deploy/kamailio) before one gateway"
        if args.through_kamailio
        else "embedded gateway (voxbus up's SIP port, no Kamailio)",
        "rate_per_s": args.rate,
        "block_after": int(os.environ["VOXBUS_SIP__BLOCK_AFTER"]),
        "suites": results,
        "gateway_restarts": len([e for e in restarts if isinstance(e, WorkerRestarted)]),
        "gateway_idle_after_s": idle_after_s,
        "real_call_afterwards": served,
        "gateway_pid_unchanged": await pid_of(bus, "sip", "sip-1") == gateway_pid,
        "gateway_rss_kb": {"before": rss_before, "after": rss_after},
    }
    await bus.close()
    await system.stop()
    return result


async def _idle(bus: Bus, timeout_s: float = 90.0) -> float | None:
    """Seconds until the gateway's heartbeat says it holds no call (None: not within the timeout).
    An INVITE with a mangled From, To or Call-ID can set up a call that the prober's ACK and BYE do
    not match; pjsip ends it when no ACK came within 32 s (RFC 3261 13.3.1.4)."""
    began = time.monotonic()
    idle = asyncio.Event()

    async def on_beat(beat: Heartbeat, _m: Msg) -> None:
        if not beat.sessions:
            idle.set()

    sub = await bus.subscribe(subjects.health("sip", "sip-1"), Heartbeat, on_beat)
    try:
        await asyncio.wait_for(idle.wait(), timeout_s)
    except TimeoutError:
        return None
    finally:
        await sub.unsubscribe()
    return round(time.monotonic() - began, 1)


def _ours(target: str, local: str) -> list[tuple[str, bytes]]:
    out = []
    for _, message, _ in rfc4475_cases(target, local):
        branch = re.search(rb"Call-ID: (\w+)@torture", message)
        out.append((branch.group(1).decode() if branch else "?", message))
    return out


async def _a_real_call(port: int) -> bool:
    from tests.integration.helpers import sipp_command

    scenario = ROOT / "tests/integration/sipp/caller_audio_dtmf.xml"
    proc = await asyncio.create_subprocess_exec(
        *sipp_command(["-sf", str(scenario)], f"127.0.0.1:{port}", 1),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), 60) == 0


def plot(result: dict, path: Path) -> None:
    plt = pyplot()

    suites = result["suites"]
    fig, axes = plt.subplots(1, len(suites), figsize=(5 * len(suites), 4), squeeze=False)
    for ax, suite in zip(axes[0], suites, strict=True):
        statuses = list(suite["answers"])
        ax.bar(statuses, [suite["answers"][s] for s in statuses], color="#6baed6")
        ax.set_title(suite["suite"], fontsize=9)
        ax.set_xlabel("final answer (none: dropped as unparseable)")
        ax.set_ylabel("requests")
    fig.suptitle(f"gateway restarts: {result['gateway_restarts']}; a real call afterwards: "
                 f"{'served' if result['real_call_afterwards'] else 'FAILED'}")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protos", type=Path, help="folder of PROTOS c07-sip case files")
    parser.add_argument("--every", type=int, default=1, help="send every n-th PROTOS case")
    parser.add_argument("--rate", type=float, default=8.0, help="INVITEs a second")
    parser.add_argument(
        "--block-after",
        type=int,
        default=0,
        help="sip.block_after for the gateway: 0 (as behind Kamailio) lets every message reach the "
        "parser; with the default 20 the source is blocked after 20 refusals and the rest get 403",
    )
    parser.add_argument("--mutations", type=int, default=0, help="mutated requests to send (0: none)")
    parser.add_argument("--mutation-rate", type=float, default=100.0, help="mutated requests a second")
    parser.add_argument("--seed", type=int, default=4475, help="the mutations' random seed")
    parser.add_argument("--through-kamailio", action="store_true", help="send to Kamailio before the gateway")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    os.environ["VOXBUS_SIP__BLOCK_AFTER"] = str(args.block_after)
    # calls set up by INVITEs whose dialog no BYE matches end when their media stays silent
    os.environ.setdefault("VOXBUS_SIP__MEDIA_TIMEOUT_S", "10")
    setup_logging("error")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("VOXBUS_DATA_DIR", tmp)
        result = asyncio.run(bench(args, Path(tmp)))
    print(json.dumps(result, indent=2))
    name = "sip_fuzz" if args.mutations and args.protos is None else "sip_torture"
    name += "_kamailio" if args.through_kamailio else ""
    write_json(args.out / f"{name}.json", result)
    plot(result, args.out / f"{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
