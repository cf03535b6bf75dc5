"""JetStream resources: the stream that records every event and the bucket of call state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import BadRequestError, BucketNotFoundError, NotFoundError, ServiceUnavailableError
from nats.js.kv import KeyValue

from voxbus.bus import subjects
from voxbus.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")
# JetStream's "no suitable peers for placement": a replicated stream asked for before the cluster's
# nodes have all joined its meta group (seconds on a busy machine), so not ready yet, not refused
NO_PEERS_YET = 10005

EVENTS_MAX_AGE_S = 7 * 24 * 3600
# the largest event the stream keeps: real events are a few KB; without a limit, garbage published
# on an event subject (up to NATS's 1 MiB payload) would be stored, and fill the server's memory
EVENT_MAX_BYTES = 256 * 1024


async def ensure_events_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the events stream if it is missing (idempotent; every process may call it).
    ``replicas``: copies kept in a cluster (1 on a single server)."""
    config = StreamConfig(
        name=subjects.EVENTS_STREAM,
        subjects=subjects.EVENTS_STREAM_SUBJECTS,
        storage=StorageType.FILE,
        max_age=EVENTS_MAX_AGE_S,
        duplicate_window=120,
        num_replicas=replicas,
        max_msg_size=EVENT_MAX_BYTES,
    )

    async def ensure() -> None:
        try:
            await js.stream_info(subjects.EVENTS_STREAM)
        except NotFoundError:
            await js.add_stream(config)

    await _when_jetstream_ready(ensure)


async def call_state_bucket(js: JetStreamContext, replicas: int = 1) -> KeyValue:
    config = KeyValueConfig(
        bucket=subjects.CALL_STATE_BUCKET,
        history=1,
        storage=StorageType.FILE,
        ttl=24 * 3600,
        replicas=replicas,
    )

    async def bucket() -> KeyValue:
        try:
            return await js.key_value(subjects.CALL_STATE_BUCKET)
        except BucketNotFoundError:
            return await js.create_key_value(config)

    return await _when_jetstream_ready(bucket)


async def _when_jetstream_ready(work: Callable[[], Awaitable[T]], within_s: float = 30.0) -> T:
    """Run ``work``, again while JetStream is not ready: a cluster's nodes elect their leader in
    the first seconds after they start, and answer 503 (or nothing) until then, or have too few
    peers for a replicated stream until every node has joined."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            return await work()
        except (ServiceUnavailableError, NatsTimeout, BadRequestError) as exc:
            refused = isinstance(exc, BadRequestError) and exc.err_code != NO_PEERS_YET
            if refused or asyncio.get_running_loop().time() > deadline:
                raise
            log.info("JetStream not ready yet", reason=type(exc).__name__)
            await asyncio.sleep(0.5)
