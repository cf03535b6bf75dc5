"""SIP door benchmark: hostile INVITEs sent straight at a gateway, as an attacker on the same network
as a PBX could; what each got, whether the gateway restarted, and whether a real call still works.

Suites: the PROTOS c07-sip test cases (University of Oulu, 4,527 malformed INVITEs; GPLv2, not
shipped with voxbus: pass the folder of case files from the rtckit/protos-sip-test-cases
repository) and the project's own RFC 4475 semantic cases (``tests/hostile_sip.py``).

    python bench/sip_torture.py --protos /path/to/protos-sip-test-cases/cases --rate 8

Writes ``sip_torture.json`` and ``sip_torture.png`` (answers per status) into ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from nats.aio.msg import Msg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile_sip import cases as rfc4475_cases  # noqa: E402
from tests.integration.helpers import kamailio_front  # noqa: E402
from voxbus.bus import subjects  # noqa: E402
from voxbus.bus.connection import Bus  # noqa: E402
from voxbus.bus.embedded import free_port  # noqa: E402
from voxbus.config import load_settings  # noqa: E402
from voxbus.logs import setup_logging  # noqa: E402
from voxbus.schemas.events import Event, WorkerRestarted  # noqa: E402
from voxbus.supervisors.system import System  # noqa: E402

UDP_MAX = 65507
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


class Prober:
    """Sends requests from one UDP socket and collects every answer by Call-ID."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.finals: dict[str, int] = {}
        self.provisional: set[str] = set()

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 65535)
            match = re.search(rb"^SIP/2\.0 (\d{3})", data)
            call_id = re.search(rb"(?im)^(?:call-id|i)\s*:\s*(\S+)", data)
            if not match or not call_id or re.search(rb"(?im)^cseq\s*:\s*\d+\s+(CANCEL|ACK|BYE)", data):
                continue  # the answers to the INVITEs only (not to their teardowns)
            status, key = int(match.group(1)), call_id.group(1).decode(errors="replace")
            if status < 200:
                self.provisional.add(key)
            elif key not in self.finals:
                self.finals[key] = status
                if status < 300:  # a call was set up: end it at once, as a caller would
                    for method, cseq in (("ACK", 1), ("BYE", 2)):
                        await self.send(self._in_dialog(data, method, cseq))

    def _in_dialog(self, response: bytes, method: str, cseq: int) -> bytes:
        """An ACK or BYE within the dialog a 2xx set up (RFC 3261 12.2.1.1, no route set)."""
        text = response.decode(errors="replace")
        header = {}
        for line in text.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            header.setdefault(name.strip().lower(), value.strip())
        contact = re.search(r"<([^>]+)>", header.get("contact", "")) or re.search(
            r"(\S+)", header.get("contact", "")
        )
        target = contact.group(1) if contact else f"sip:voxbus@{self.target[0]}:{self.target[1]}"
        lines = [
            f"{method} {target} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{method.lower()}{time.monotonic_ns()}",
            "Max-Forwards: 70",
            f"From: {header.get('from', '')}",
            f"To: {header.get('to', '')}",
            f"Call-ID: {header.get('call-id', '')}",
            f"CSeq: {cseq} {method}",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def send(self, message: bytes) -> bool:
        if len(message) > UDP_MAX:
            return False
        await asyncio.get_running_loop().sock_sendto(self.sock, message, self.target)
        return True


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


async def bench(protos: Path | None, every: int, rate: float, tmp: Path, through_kamailio: bool) -> dict:
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
    await asyncio.sleep(3)  # the gateway up
    fronts = contextlib.AsyncExitStack()
    target_port = await fronts.enter_async_context(kamailio_front([port], tmp)) if through_kamailio else port
    prober = Prober(("127.0.0.1", target_port))
    listening = asyncio.create_task(prober.listen())
    results = []
    local = f"127.0.0.1:{prober.port}"
    to = f"127.0.0.1:{target_port}"
    ours = [(f"{branch}@torture", message, None) for branch, message in _ours(to, local)]
    results.append(await run_suite("RFC 4475 semantic cases (tests/hostile_sip.py)", ours, prober, rate))
    if protos is not None:
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
    await asyncio.sleep(35)  # calls PROTOS set up and left (no ACK) end after RFC 3261's 32 s
    served = await _a_real_call(target_port)
    await fronts.aclose()
    await bus.close()
    await system.stop()
    return {
        "target": "Kamailio (deploy/kamailio) before one gateway"
        if through_kamailio
        else "embedded gateway (voxbus up's SIP port, no Kamailio)",
        "rate_per_s": rate,
        "block_after": int(os.environ["VOXBUS_SIP__BLOCK_AFTER"]),
        "suites": results,
        "gateway_restarts": len([e for e in restarts if isinstance(e, WorkerRestarted)]),
        "real_call_afterwards": served,
    }


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = result["suites"]
    fig, axes = plt.subplots(1, len(suites), figsize=(5 * len(suites), 4), squeeze=False)
    for ax, suite in zip(axes[0], suites, strict=True):
        statuses = list(suite["answers"])
        ax.bar(statuses, [suite["answers"][s] for s in statuses], color="#6baed6")
        ax.set_title(suite["suite"], fontsize=9)
        ax.set_xlabel("final answer (none: dropped as unparseable)")
        ax.set_ylabel("INVITEs")
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
    parser.add_argument("--through-kamailio", action="store_true", help="send to Kamailio before the gateway")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    os.environ["VOXBUS_SIP__BLOCK_AFTER"] = str(args.block_after)
    setup_logging("error")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("VOXBUS_DATA_DIR", tmp)
        result = asyncio.run(bench(args.protos, args.every, args.rate, Path(tmp), args.through_kamailio))
    print(json.dumps(result, indent=2))
    name = "sip_torture_kamailio" if args.through_kamailio else "sip_torture"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / f"{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
