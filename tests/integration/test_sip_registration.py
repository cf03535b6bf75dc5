"""Registration to a SIP trunk (``sip.registration``): the gateway registers its number at a real
registrar (Kamailio, with a digest challenge), and a call to that number through the registrar
reaches the agent; a wrong password is a failed registration, said in an event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voxbus.bus.connection import Bus
from voxbus.bus.embedded import free_port
from voxbus.config import Settings, load_settings
from voxbus.schemas.events import CallStarted, Event, SipRegistered
from voxbus.supervisors.system import System

from .helpers import running_kamailio, sipp_command, stream_events, wait_all_serving

pytestmark = pytest.mark.integration
REGISTRAR_CFG = Path(__file__).parent / "kamailio" / "registrar.cfg"
PASSWORD = "the trunk's long secret"
DID = "2000"


@pytest.fixture
async def registrar(tmp_path: Path) -> AsyncIterator[int]:
    """The trunk's registrar (Kamailio) on a free port."""
    port = free_port()
    config = tmp_path / "registrar.cfg"
    config.write_text(
        REGISTRAR_CFG.read_text()
        .replace("udp:127.0.0.1:5060", f"udp:127.0.0.1:{port}")
        .replace("TRUNK_PASSWORD", PASSWORD)
    )
    async with running_kamailio(config, port, tmp_path / "kamailio-run"):
        yield port


def registering(monkeypatch: pytest.MonkeyPatch, port: int, password: str) -> Settings:
    monkeypatch.setenv("TRUNK_PASSWORD", password)
    registration = {"registrar": f"sip:127.0.0.1:{port}", "user": DID, "password_env": "TRUNK_PASSWORD"}
    monkeypatch.setenv("VOXBUS_SIP__REGISTRATION", json.dumps(registration))
    return load_settings()


async def until(client: Bus, match, timeout_s: float = 30.0) -> Event:  # type: ignore[no-untyped-def]
    """The first event in the stream that matches (the stream: nothing is missed by starting late)."""
    assert client.js is not None
    async with asyncio.timeout(timeout_s):
        while (found := next((e for _s, e in await stream_events(client.js) if match(e)), None)) is None:
            await asyncio.sleep(0.2)
    return found


@pytest.fixture
def settings(test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, registrar: int) -> Settings:
    return registering(monkeypatch, registrar, PASSWORD)


async def test_the_gateway_registers_its_number_and_a_call_to_it_reaches_the_agent(
    registrar: int, system: System, client: Bus
) -> None:
    await wait_all_serving(client)
    registered = await until(client, lambda e: isinstance(e, SipRegistered))
    assert isinstance(registered, SipRegistered) and registered.ok, registered
    assert registered.aor == f"sip:{DID}@127.0.0.1:{registrar}" and registered.expires_s > 0
    # a caller dials the number at the trunk: the registrar relays the call to voxbus
    command = sipp_command(
        ["-sn", "uac", "-s", DID, "-d", "1000"],
        f"127.0.0.1:{registrar}",
        1,
        "-trace_err",
        "-error_file",
        "/dev/stderr",
    )
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode(errors="replace")[:3000]
    started = await until(client, lambda e: isinstance(e, CallStarted))
    assert isinstance(started, CallStarted) and started.called == DID


async def test_a_wrong_trunk_password_is_a_failed_registration_event(
    registrar: int, test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    system = System(registering(monkeypatch, registrar, "a wrong guess"))
    await system.start()
    client = Bus(system.url, name="test-client", source="test", creds=system.creds("admin"))
    try:
        await client.connect(attempts=5)
        failed = await until(client, lambda e: isinstance(e, SipRegistered))
        assert isinstance(failed, SipRegistered) and not failed.ok and failed.code in (401, 403), failed
    finally:
        await client.close()
        await system.stop()
