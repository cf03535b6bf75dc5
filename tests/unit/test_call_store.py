"""The call-state store while the bucket cannot answer (a cluster electing a new leader): a save
does not fail the call, and the latest state is written once the bucket answers again."""

from __future__ import annotations

import asyncio

from nats.js.errors import NoStreamResponseError

from voxbus.actors.call import store
from voxbus.actors.call.store import CallStore
from voxbus.schemas.messages import CallState


class FlakyBucket:
    """A stand-in for the KV bucket (in a unit test of the store): refuses its first ``down`` puts."""

    def __init__(self, down: int) -> None:
        self.down, self.kept = down, {}

    async def put(self, key: str, value: bytes) -> int:
        if self.down:
            self.down -= 1
            raise NoStreamResponseError
        self.kept[key] = value
        return 1


async def test_a_save_the_bucket_refuses_is_written_later_and_the_latest_wins(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(store, "RETRY_S", 0.01)
    bucket = FlakyBucket(down=3)
    calls = CallStore(bucket)  # type: ignore[arg-type]
    await calls.save(CallState(call_id="c1", owner="a", turn=1))  # refused: no exception
    await calls.save(CallState(call_id="c1", owner="a", turn=2))  # refused too: this one is kept
    async with asyncio.timeout(2):
        while "c1" not in bucket.kept:
            await asyncio.sleep(0.01)
    assert CallState.model_validate_json(bucket.kept["c1"]).turn == 2
    await calls.close()


async def test_close_writes_what_is_left() -> None:
    bucket = FlakyBucket(down=1)
    calls = CallStore(bucket)  # type: ignore[arg-type]
    await calls.save(CallState(call_id="c2", owner="a", turn=5))
    await calls.close()
    assert CallState.model_validate_json(bucket.kept["c2"]).turn == 5
