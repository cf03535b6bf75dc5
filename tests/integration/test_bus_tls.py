"""The bus over TLS (``nats_tls``): the embedded server speaks TLS only, with the fleet CA voxbus
made; every process connects through its credentials file, which carries that CA; a client that
does not trust the CA, or speaks in clear, is not let in."""

from __future__ import annotations

import asyncio
import json
import ssl
from urllib.parse import urlparse

import nats
import pytest

from voxbus.bus.auth import Credentials
from voxbus.bus.connection import Bus
from voxbus.config import Settings, load_settings
from voxbus.supervisors.system import System

from .helpers import wait_all_serving

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(test_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("VOXBUS_NATS_TLS", "true")
    return load_settings()


async def test_every_process_speaks_tls_and_a_client_in_clear_is_refused(system: System, client: Bus) -> None:
    assert system.url.startswith("tls://")
    await wait_all_serving(client)  # every worker's heartbeat came over TLS
    where = urlparse(system.url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    info = json.loads((await reader.readline()).decode().removeprefix("INFO "))
    writer.close()
    assert info["tls_required"] is True
    admin = Credentials.load(system.creds("admin"))  # type: ignore[arg-type]
    assert admin.ca_pem and "BEGIN CERTIFICATE" in admin.ca_pem
    with pytest.raises(ssl.SSLCertVerificationError):  # nats-py upgrades; our CA is not trusted
        await nats.connect(
            f"nats://{where.hostname}:{where.port}",
            user=admin.user,
            password=admin.password.get_secret_value(),
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=2,
        )
