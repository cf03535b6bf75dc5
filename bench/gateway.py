"""Gateway benchmark: what a call costs the SIP gateway, and how much delay it adds.

1. Load: N simultaneous sipp calls (G.711 speech from a pcap) through Kamailio into 3 gateway
   shards, with an echo on the bus that sends each caller frame back as agent audio, so that audio
   flows both ways with no models. CPU of the shard processes is read from /proc before and after
   the steady state; frames lost or late come from the calls' ``call.ended`` events.
2. Hop: voxbus's own pjsua2 caller sends a click every second into one gateway; the echo returns it;
   the caller records what it hears. Round trip = RTP in -> jitter buffer -> audio.in -> echo ->
   audio.out -> playout -> RTP out -> the caller's jitter buffer; half of it is one gateway hop.

    python bench/gateway.py --calls 12 --seconds 30 --out bench/results
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from nats.aio.msg import Msg
from procstat import cpu_seconds
from report import pyplot, write_json

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port, free_ports
from voxbus.config import load_settings
from voxbus.logs import setup_logging
from voxbus.media.frames import FRAME_SAMPLES
from voxbus.schemas.events import CallEnded, Event
from voxbus.schemas.messages import AudioFrame, Heartbeat
from voxbus.supervisors.system import System

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="long call with speech">
  <send retrans="500"><![CDATA[
      INVITE sip:voxbus@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:voxbus@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
      ACK [next_url] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:voxbus@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  REPEAT
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:voxbus@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""
PLAY = (
    '  <nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/></action></nop>\n'
    '  <pause milliseconds="8000"/>\n'
)


async def echo(bus: Bus) -> None:
    """A stand-in agent: each caller frame goes straight back as agent audio."""

    async def back(frame: AudioFrame, _m: Msg) -> None:
        await bus.publish_audio(
            subjects.audio_out(frame.call_id),
            AudioFrame(call_id=frame.call_id, seq=frame.seq, gen=1, pcm=frame.pcm),
        )

    await bus.subscribe("voxbus.call.*.audio.in", AudioFrame, back)


async def run_echo(url: str, creds: str) -> None:
    """The echo as a process of its own (see ``echo_process``): says "ready" once subscribed."""
    bus = Bus(url, "bench-echo", creds=Path(creds) if creds else None)
    await bus.connect(attempts=5)
    await echo(bus)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def echo_process(url: str, creds: Path | None) -> asyncio.subprocess.Process:
    """The echo in its own process, once it listens: on the benchmark's own event loop it shared
    the loop with the supervisor, and a loop busy echoing a hundred calls delays the heartbeats
    it should read (workers then looked hung and were replaced mid-call)."""
    code = "import sys, uvloop; sys.path.insert(0, sys.argv[1]); import gateway; "
    code += "uvloop.run(gateway.run_echo(sys.argv[2], sys.argv[3]))"
    here = str(Path(__file__).resolve().parent)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, here, url, str(creds or ""), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while (line := await proc.stdout.readline()) != b"ready\n":
            if not line:
                raise RuntimeError(f"the echo process exited with code {await proc.wait()}")
    return proc


async def shard_pids(bus: Bus, shards: int) -> list[int]:
    pids: dict[str, int] = {}

    async def on_beat(beat: Heartbeat, _m: Msg) -> None:
        pids[beat.worker_id] = beat.pid

    sub = await bus.subscribe("voxbus.sys.health.sip.*", Heartbeat, on_beat)
    while len(pids) < shards:
        await asyncio.sleep(0.1)
    await sub.unsubscribe()
    return list(pids.values())


async def load(calls: int, seconds: int, workdir: Path) -> dict[str, object]:
    settings = load_settings()
    ports = [free_port() for _ in range(3)]
    system = System(
        settings,
        workers=tuple(
            ("sip", f"sip-{i + 1}", ["--port", str(p), "--rtp-port", str(10000 + 200 * i)])
            for i, p in enumerate(ports)
        ),
    )  # type: ignore[arg-type]
    await system.start()
    front = free_port()
    (workdir / "d.list").write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in ports))
    cfg = (ROOT / "deploy/kamailio/kamailio.cfg").read_text()
    (workdir / "k.cfg").write_text(
        cfg.replace("udp:127.0.0.1:5060", f"udp:127.0.0.1:{front}").replace(
            "/etc/kamailio/voxbus-dispatcher.list", str(workdir / "d.list")
        )
    )
    (workdir / "run").mkdir(exist_ok=True)
    kamailio = await asyncio.create_subprocess_exec(
        "kamailio",
        "-f",
        str(workdir / "k.cfg"),
        "-DD",
        "-E",
        "-Y",
        str(workdir / "run"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    bus = Bus(system.url, "bench", creds=system.creds("admin"))
    await bus.connect(attempts=5)
    ended: list[CallEnded] = []

    async def on_end(event: Event, _m: Msg) -> None:
        if isinstance(event, CallEnded):
            ended.append(event)

    await bus.subscribe("voxbus.call.*.evt.call.ended", None, on_end)
    await echo(bus)
    pids = await shard_pids(bus, 3)
    await asyncio.sleep(2)
    idle0 = sum(cpu_seconds(p) for p in pids)
    await asyncio.sleep(10)
    idle_cores = (sum(cpu_seconds(p) for p in pids) - idle0) / 10
    scenario = workdir / "long.xml"
    scenario.write_text(SCENARIO.replace("REPEAT", PLAY * max(1, seconds // 8)))
    sipp = await asyncio.create_subprocess_exec(
        "sipp",
        "-sf",
        str(scenario),
        "-m",
        str(calls),
        "-l",
        str(calls),
        "-r",
        str(calls),
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_ports(4)),
        "-nostdin",
        f"127.0.0.1:{front}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(4)  # all calls up
    window = max(8, seconds - 8)
    busy0 = sum(cpu_seconds(p) for p in pids)
    await asyncio.sleep(window)
    busy_cores = (sum(cpu_seconds(p) for p in pids) - busy0) / window
    sipp_code = await sipp.wait()
    await asyncio.sleep(1)
    kamailio.terminate()
    await kamailio.wait()
    await bus.close()
    await system.stop()
    minutes = sum(e.duration_s for e in ended) / 60 or 1
    return {
        "calls": calls,
        "sipp_exit": sipp_code,
        "calls_ended": len(ended),
        "cpu_idle_cores": round(idle_cores, 4),
        "cpu_busy_cores": round(busy_cores, 4),
        "cpu_per_call_percent": round((busy_cores - idle_cores) / calls * 100, 2),
        "frames_empty_per_min": round(sum(e.frames_empty for e in ended) / minutes, 2),
        "playout_underruns_per_min": round(sum(e.playout_underruns for e in ended) / minutes, 2),
        "frames_in": sum(e.frames_in for e in ended),
    }


async def hop(clicks: int) -> dict[str, object]:
    from voxbus.sip.caller import SipCaller

    settings = load_settings()
    settings.sip = settings.sip.model_copy(update={"port": free_port()})
    os.environ["VOXBUS_SIP__PORT"] = str(settings.sip.port)
    system = System(settings, workers=(("sip", "sip-1"),))
    await system.start()
    bus = Bus(system.url, "bench", creds=system.creds("admin"))
    await bus.connect(attempts=5)
    await echo(bus)
    await shard_pids(bus, 1)
    period = 50  # frames: one click a second
    frames = []
    click = (np.sin(np.arange(FRAME_SAMPLES) * 2 * np.pi * 1000 / 16000) * 20000).astype("<i2")
    for k in range(clicks * period + 100):
        frames.append(click.tobytes() if k % period == 25 else bytes(FRAME_SAMPLES * 2))
    caller = SipCaller(frames, settle_s=1.0, max_s=clicks + 10)
    heard = await caller.call(f"sip:voxbus@127.0.0.1:{settings.sip.port}")
    await bus.close()
    await system.stop()
    sent = [k * 20 for k in range(len(frames)) if k % period == 25][:clicks]
    pcm = np.frombuffer(heard.heard.pcm(), np.int16).astype(np.int32)
    loud = np.flatnonzero(np.abs(pcm) > 3000) / 16  # ms
    rtts = []
    for t in sent:
        later = loud[(loud >= t) & (loud < t + 900)]
        if len(later):
            rtts.append(float(later[0] - t))
    return {
        "clicks": clicks,
        "echoed": len(rtts),
        "round_trip_ms_median": round(statistics.median(rtts), 1) if rtts else None,
        "round_trip_ms_p99": round(float(np.percentile(rtts, 99)), 1) if rtts else None,
        "one_hop_ms_median": round(statistics.median(rtts) / 2, 1) if rtts else None,
        "one_hop_ms_p99": round(float(np.percentile(rtts, 99)) / 2, 1) if rtts else None,
        "round_trips_ms": rtts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--clicks", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    setup_logging("warning")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("VOXBUS_DATA_DIR", tmp)
        print(f"load: {args.calls} calls x {args.seconds} s through Kamailio into 3 shards...", flush=True)
        load_result = asyncio.run(load(args.calls, args.seconds, Path(tmp)))
        print(json.dumps(load_result, indent=2), flush=True)
        print(f"hop: {args.clicks} clicks echoed through one gateway...", flush=True)
        hop_result = asyncio.run(hop(args.clicks))
        print(json.dumps({k: v for k, v in hop_result.items() if k != "round_trips_ms"}, indent=2))
    write_json(args.out / "gateway.json", {"load": load_result, "hop": hop_result})
    plot(hop_result, args.out / "gateway.png")
    return 0


def plot(hop_result: dict[str, object], path: Path) -> None:
    plt = pyplot()

    rtts = hop_result["round_trips_ms"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(rtts, bins=30, color="#6baed6")  # type: ignore[arg-type]
    ax.axvline(hop_result["round_trip_ms_median"], color="k", label="median")  # type: ignore[arg-type]
    ax.set_xlabel("SIP round trip through the gateway and the bus (ms): two gateway hops")
    ax.set_ylabel("clicks")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
