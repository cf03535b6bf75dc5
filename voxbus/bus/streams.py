"""JetStream resources: the stream that records every event and the bucket of call state."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from voxbus.bus import subjects

EVENTS_MAX_AGE_S = 7 * 24 * 3600


async def ensure_events_stream(js: JetStreamContext) -> None:
    """Create the events stream if it is missing (idempotent; every process may call it)."""
    config = StreamConfig(
        name=subjects.EVENTS_STREAM,
        subjects=subjects.EVENTS_STREAM_SUBJECTS,
        storage=StorageType.FILE,
        max_age=EVENTS_MAX_AGE_S,
        duplicate_window=120,
    )
    try:
        await js.stream_info(subjects.EVENTS_STREAM)
    except NotFoundError:
        await js.add_stream(config)


async def call_state_bucket(js: JetStreamContext) -> KeyValue:
    try:
        return await js.key_value(subjects.CALL_STATE_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=subjects.CALL_STATE_BUCKET, history=1, storage=StorageType.FILE, ttl=24 * 3600
            )
        )
