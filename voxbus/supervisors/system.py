"""The whole system on one machine: embedded NATS (unless a URL is given) and every worker
process, supervised one-for-one with restart intensity and backoff."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from voxbus.bus.auth import issue, secure_embedded_server
from voxbus.bus.cluster import EmbeddedCluster
from voxbus.bus.connection import Bus
from voxbus.bus.embedded import EmbeddedNats
from voxbus.bus.streams import call_state_bucket, ensure_events_stream
from voxbus.config import Settings
from voxbus.engines.models import model_path
from voxbus.logs import get_logger
from voxbus.profiles import Profiles
from voxbus.schemas.events import SupervisorEscalated, WorkerRestarted
from voxbus.sip.settings import CALL_ROLES
from voxbus.supervisors.process import WorkerProcess
from voxbus.supervisors.tree import ChildSpec, Escalation, RestartEvent, Supervisor

log = get_logger(__name__)
T = TypeVar("T")

# start order matters for rest-for-one users and for a quick first call: models first, agent last
DEFAULT_WORKERS = (
    ("stt", "stt-1"),
    ("llm", "llm-1"),
    ("tts", "tts-1"),
    ("agent", "agent-1"),
    ("sip", "sip-1"),
)
COMMAND_OF_ROLE = {"agent": ["agent"], "sip": ["gateway"], "console": ["console", "--web"], "mcp": ["mcp"]}


def mcp_workers(settings: Settings) -> tuple[tuple[str, str, list[str]], ...]:
    """A supervised bridge per configured MCP server (``[mcp.NAME]``): ``voxbus mcp NAME``."""
    return tuple(("mcp", f"mcp-{name}", [name]) for name in settings.mcp)


def url_file(settings: Settings) -> Path:
    """Where `voxbus up` writes the NATS URL of the running system, for `talk` and `events`."""
    return settings.data_dir / "run" / "nats.url"


def auth_dir(settings: Settings) -> Path:
    """Where `voxbus up` keeps the bus credentials (0700; each file 0600)."""
    return settings.data_dir / "auth"


def client_creds(settings: Settings) -> Path | None:
    """The credentials of a local client command (`talk`, `call`, `events`, `dial`): the
    configured ones, else the running embedded system's admin credentials, if readable."""
    if settings.nats_creds is not None:
        return settings.nats_creds
    admin = auth_dir(settings) / "admin.json"
    return admin if admin.is_file() else None


def server_config_file(settings: Settings) -> Path:
    """The embedded nats-server's configuration: its users and their permissions (0600)."""
    return settings.data_dir / "run" / "nats.conf"


def pid_file(settings: Settings) -> Path:
    """The embedded nats-server's pid, for `voxbus creds` to make it read its users again."""
    return settings.data_dir / "run" / "nats.pid"


def listens_in(settings: Settings) -> bool:
    """The console serves live call audio to supervisors: its bus credential may read audio."""
    return settings.console.enabled and settings.console.listen_in


def tls_dir(settings: Settings) -> Path | None:
    """Where the embedded server's TLS certificates are (made at first use), when ``nats_tls``."""
    if not settings.nats_tls:
        return None
    from voxbus.bus.tls import make_fleet_certs

    return make_fleet_certs(settings.data_dir / "tls", ["127.0.0.1", "localhost"])


def grant(settings: Settings, role: str, user: str, audio: bool = False, tools: tuple[str, ...] = ()) -> Path:
    """Issue a credential for a third party (``voxbus creds``) and, when the embedded server
    runs, make it read its users again (SIGHUP: no connection is dropped)."""
    import contextlib
    import os
    import signal

    tls = tls_dir(settings)
    ca_pem = (tls / "ca.pem").read_text() if tls else None
    path = issue(auth_dir(settings), user, role, audio, tools, ca_pem)
    secure_embedded_server(auth_dir(settings), server_config_file(settings), listens_in(settings), tls)
    pid = pid_file(settings)
    if pid.is_file():
        with contextlib.suppress(ProcessLookupError, ValueError):  # not running: read at its next start
            for server in pid.read_text().split():  # every node of a cluster
                os.kill(int(server), signal.SIGHUP)
            url = url_file(settings)
            if url.is_file():  # the reload is asynchronous: return once the new user is let in
                accepted(url.read_text().strip().split(",")[0], path)
    return path


def accepted(url: str, creds_path: Path, within_s: float = 5.0) -> bool:
    """Wait until the NATS server at ``url`` lets ``creds_path``'s user in (a CONNECT and a PING
    over a plain socket: the server answers PONG, or -ERR while it has not read the user yet)."""
    import json
    import socket
    import time
    from urllib.parse import urlparse

    from voxbus.bus.auth import Credentials
    from voxbus.bus.tls import client_context

    creds = Credentials.load(creds_path)
    where = urlparse(url if "://" in url else f"nats://{url}")
    hello = {
        "user": creds.user,
        "pass": creds.password.get_secret_value(),
        "verbose": False,
        "pedantic": False,
    }
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            host = where.hostname or "127.0.0.1"
            with socket.create_connection((host, where.port or 4222), timeout=1) as plain:
                plain.recv(4096)  # INFO, in clear; with TLS the handshake follows it
                s = (
                    client_context(creds.ca_pem).wrap_socket(plain, server_hostname=host)
                    if creds.ca_pem
                    else plain
                )
                s.sendall(f"CONNECT {json.dumps(hello)}\r\nPING\r\n".encode())
                if b"PONG" in s.recv(4096):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def check_models(settings: Settings, roles: set[str] | None = None) -> None:
    """Fail at the door, in one line, when a model the roles need is missing (raises ModelMissing)."""
    needed: list[tuple[str, str]] = [("stt", "stt"), ("tts", "tts")]
    if settings.models.llm_url is None or settings.llm.fallback == "local":
        needed.append(("llm", "llm"))
    if any(language != "en" for language in Profiles(settings).languages()):
        needed.append(("stt", "stt_multilingual"))  # calls in other languages, or 'auto'
    for role, kind in needed:
        if roles is None or role in roles:
            model_path(settings, kind)  # type: ignore[arg-type]


class System:
    def __init__(
        self,
        settings: Settings,
        workers: tuple[tuple[str, str] | tuple[str, str, list[str]], ...] = DEFAULT_WORKERS,
    ) -> None:
        self.settings = settings
        if workers is DEFAULT_WORKERS:
            console = (("console", "console-1"),) if settings.console.enabled else ()
            workers = (*workers, *console, *mcp_workers(settings))
        self.workers = workers
        self.nats: EmbeddedNats | EmbeddedCluster | None = None
        self.url = settings.nats_url or ""
        self.bus: Bus | None = None
        self.supervisor = Supervisor.from_settings(
            "workers", settings.supervision, self._restarted, self._escalated
        )
        self.supervision: asyncio.Task[None] | None = None
        self.nats_keeper: asyncio.Task[None] | None = None
        self.nats_restarts = 0

    async def start(self) -> str:
        Profiles(self.settings)  # a wrong agent profile is said at the door, in one line
        check_models(self.settings, {worker[0] for worker in self.workers})
        if not self.url:
            tls = tls_dir(self.settings)
            config = secure_embedded_server(
                auth_dir(self.settings), server_config_file(self.settings), listens_in(self.settings), tls
            )
            size, data = self.settings.nats_cluster, self.settings.data_dir / "nats"
            self.nats = (
                EmbeddedCluster(data, size, config=config, tls=tls is not None)
                if size > 1
                else EmbeddedNats(data, config=config, tls=tls is not None)
            )
            self.url = await self.nats.start()
            self._write_pid()
            self.nats_keeper = asyncio.create_task(self.nats.keep_alive(self._nats_restarted))
        try:
            await self._start_on_the_bus()
        except BaseException:
            await self.stop()  # nothing it started outlives a failed start (the nats-servers: no orphans)
            raise
        path = url_file(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.url + "\n")
        return self.url

    async def _start_on_the_bus(self) -> None:
        self.bus = Bus(self.url, name="voxbus-supervisor", source="supervisor", creds=self.creds("admin"))
        await self.bus.connect(attempts=None if self.settings.nats_url else 5)
        assert self.bus.js is not None
        replicas = self.settings.nats_cluster if self.nats is not None else 1
        await ensure_events_stream(self.bus.js, replicas)
        await call_state_bucket(self.bus.js, replicas)
        for role, worker_id, *extra in self.workers:
            self.supervisor.start_child(self._spec(role, worker_id, *extra))
        self.supervision = asyncio.create_task(self.supervisor.run())

    def _write_pid(self) -> None:
        assert self.nats is not None
        pids = self.nats.pids if isinstance(self.nats, EmbeddedCluster) else [self.nats.proc.pid]  # type: ignore[union-attr]
        pid_file(self.settings).write_text("".join(f"{pid}\n" for pid in pids))

    def _nats_restarted(self, reason: str) -> None:
        self._write_pid()
        self.nats_restarts += 1
        assert self.bus is not None
        restarted = WorkerRestarted(role="nats", worker_id="nats", reason=reason, restarts=self.nats_restarts)
        self.bus.emit(restarted)

    def creds(self, role: str) -> Path | None:
        """The credentials file a process of ``role`` connects with: its own on the embedded
        server, the configured one (``nats_creds``) on an external server."""
        if self.nats is not None:
            return auth_dir(self.settings) / f"{role}.json"
        return self.settings.nats_creds

    async def while_healthy(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` unless supervision gives up first (then raise its Escalation)."""
        assert self.supervision is not None
        task = asyncio.ensure_future(work)
        await asyncio.wait({task, self.supervision}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.supervision.result()  # raises the Escalation
            raise Escalation("supervision ended")
        return task.result()

    def _spec(self, role: str, worker_id: str, extra: list[str] | None = None) -> ChildSpec:
        """A worker process child; ``extra`` are arguments of its command (a shard's port)."""
        assert self.bus is not None
        bus, settings, url = self.bus, self.settings, self.url
        creds = self.creds(role)
        env = self._gateway_env() if role == "sip" else None
        return ChildSpec(
            id=worker_id,
            exposed=role == "sip",  # its SIP port faces the outside
            start=lambda: WorkerProcess(
                role=role,
                worker_id=worker_id,
                bus=bus,
                settings=settings.supervision,
                env=env,
                args=[
                    "--nats-url",
                    url,
                    *(["--nats-creds", str(creds)] if creds else []),
                    *COMMAND_OF_ROLE.get(role, ["worker", role]),
                    "--id",
                    worker_id,
                    *(extra or []),
                ],
            ),
        )

    def _gateway_env(self) -> dict[str, str] | None:
        """A gateway of this system admits calls once the roles a call needs that this system runs
        serve (``voxbus.sip.readiness``), unless ``sip.wait_for_roles`` says otherwise."""
        if "wait_for_roles" in self.settings.sip.model_fields_set:
            return None
        runs = {worker[0] for worker in self.workers}
        needed = [role for role in CALL_ROLES if role in runs]
        return {"VOXBUS_SIP__WAIT_FOR_ROLES": json.dumps(needed)}

    async def stop(self) -> None:
        await self.supervisor.stop()
        if self.supervision:
            self.supervision.cancel()
        if self.bus:
            await self.bus.close()
        if self.nats:
            await self.nats.stop()
        if self.nats_keeper:
            self.nats_keeper.cancel()
        url_file(self.settings).unlink(missing_ok=True)
        pid_file(self.settings).unlink(missing_ok=True)

    def _restarted(self, event: RestartEvent) -> None:
        assert self.bus is not None
        role = next((w[0] for w in self.workers if w[1] == event.child), "worker")
        self.bus.emit(
            WorkerRestarted(role=role, worker_id=event.child, reason=event.reason, restarts=event.restarts)
        )

    def _escalated(self, reason: str) -> None:
        assert self.bus is not None
        self.bus.emit(SupervisorEscalated(supervisor="workers", reason=reason))
