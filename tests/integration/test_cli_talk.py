"""`voxbus talk` against a running system, then `voxbus events` replaying that call."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from voxbus.media.script import CallerScript, Line
from voxbus.media.wav import read_wav
from voxbus.supervisors.system import System

pytestmark = pytest.mark.integration

QUESTION = CallerScript(lines=[Line(text="What colour is grass?", pause_before_s=2.5)], tail_s=0.5)


async def run(*args: str, timeout: float) -> tuple[int | None, str, str]:
    """Run voxbus; a command still running after ``timeout`` is stopped with SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voxbus", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stop = asyncio.get_running_loop().call_later(timeout, proc.terminate)
    out, err = await proc.communicate()
    stop.cancel()
    return proc.returncode, out.decode(), err.decode()


async def replayed(call_id: str) -> list[str]:
    """`voxbus events --all --call` follows the stream (it stops only on a signal): its lines, read
    until the call's end shows, however long the command took to start and catch up."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voxbus", "events", "--all", "--call", call_id,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(120):  # a hang guard, not a budget
            while raw := await proc.stdout.readline():
                lines.append(line := raw.decode().rstrip("\n"))
                if line.split()[2:3] == ["call.ended"]:
                    break
    finally:
        proc.terminate()
        await proc.wait()
    return lines


async def test_talk_prints_the_conversation_and_events_replays_it(
    system: System, caller, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    wav, _ = caller(QUESTION)
    reply = tmp_path / "reply.wav"
    code, out, err = await run("talk", str(wav), "--out", str(reply), timeout=120)
    assert code == 0, err
    assert re.search(r"caller: .*grass", out, re.IGNORECASE), out
    assert re.search(r"agent:  \S+", out) and "first agent audio" in out
    assert len(read_wav(reply)) > 0
    call_id = re.search(r" as (file-[0-9a-f]+)", out).group(1)  # type: ignore[union-attr]

    lines = await replayed(call_id)
    kinds = [line.split()[2] for line in lines]
    assert kinds[0] == "call.started" and "call.ended" in kinds
    assert {"speech.started", "stt.final", "llm.done", "turn.metrics"} <= set(kinds)
    assert all(call_id in line for line in lines)
