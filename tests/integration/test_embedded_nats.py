"""The embedded nats-server does not outlive the process that started it, however that process
ends: killed with SIGKILL (which can stop nothing) it leaves no server holding its port and store."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

STARTER = """
import asyncio, sys
from pathlib import Path
import uvloop
from voxbus.bus.embedded import EmbeddedNats

async def main():
    server = EmbeddedNats(Path(sys.argv[1]))
    await server.start()
    print("server", server.proc.pid, server.port, flush=True)
    await asyncio.sleep(3600)

uvloop.run(main())
"""


def gone_or_zombie(pid: int) -> bool:
    """A dead child waits for its new parent to collect it; a zombie holds no port."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_a_killed_starter_leaves_no_nats_server(tmp_path: Path) -> None:
    starter = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STARTER, str(tmp_path / "nats"), stdout=asyncio.subprocess.PIPE
    )
    assert starter.stdout is not None
    server_pid = 0
    try:
        async with asyncio.timeout(30):  # a hang guard
            while not (line := await starter.stdout.readline()).startswith(b"server "):
                assert line, "the starter exited"  # (its log lines come first)
        server_pid, port = (int(word) for word in line.split()[1:])
        assert listening(port) and not gone_or_zombie(server_pid)

        os.kill(starter.pid, signal.SIGKILL)
        await starter.wait()
        async with asyncio.timeout(30):  # a hang guard: the server stops within milliseconds
            while not gone_or_zombie(server_pid):
                await asyncio.sleep(0.05)
        assert not listening(port)
    finally:  # a failed test leaves nothing running either
        for pid in (starter.pid, server_pid):
            if pid and not gone_or_zombie(pid):
                os.kill(pid, signal.SIGKILL)
        await starter.wait()
