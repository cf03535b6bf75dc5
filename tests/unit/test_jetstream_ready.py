"""Creating JetStream resources waits out a cluster that is not ready yet, and no more."""

from __future__ import annotations

import pytest
from nats.js.errors import BadRequestError, ServiceUnavailableError

from voxbus.bus import streams


def failing_first(*failures: Exception):  # type: ignore[no-untyped-def]
    """A piece of JetStream work that fails with ``failures`` in turn, then succeeds."""
    left = list(failures)
    tries: list[int] = []

    async def work() -> str:
        tries.append(1)
        if left:
            raise left.pop(0)
        return "created"

    return work, tries


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(_s: float) -> None:
        return None

    monkeypatch.setattr(streams.asyncio, "sleep", instant)


async def test_no_peers_yet_and_no_leader_yet_are_waited_out() -> None:
    no_peers = BadRequestError(code=400, err_code=streams.NO_PEERS_YET, description="no suitable peers")
    work, tries = failing_first(no_peers, ServiceUnavailableError(code=503), no_peers)
    assert await streams._when_jetstream_ready(work) == "created" and len(tries) == 4


async def test_a_request_jetstream_refuses_is_raised_at_once() -> None:
    refused = BadRequestError(code=400, err_code=10052, description="replicas > 1 not supported")
    work, tries = failing_first(refused)
    with pytest.raises(BadRequestError):
        await streams._when_jetstream_ready(work)
    assert len(tries) == 1


async def test_a_cluster_never_ready_is_given_up_on() -> None:
    no_peers = BadRequestError(code=400, err_code=streams.NO_PEERS_YET, description="no suitable peers")
    work, _ = failing_first(*[no_peers] * 1000)
    with pytest.raises(BadRequestError):
        await streams._when_jetstream_ready(work, within_s=-1.0)
