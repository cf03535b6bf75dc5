"""Call states in the ``voxbus_calls`` key-value bucket, by call id, so that a restarted call actor
resumes the conversation.

The bucket can be briefly unable to answer: in a NATS cluster, a node that held its leader dies and
the others elect another (a few seconds), or the embedded server is being restarted. A call must go
on meanwhile: a save that fails keeps the latest state and writes it in the background as soon as
the bucket answers (a later save replaces it), and a load retries for a while before it gives up.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from voxbus.bus import subjects
from voxbus.bus.codec import BadMessage
from voxbus.logs import get_logger
from voxbus.schemas.messages import CallState

log = get_logger(__name__)
PUT_TIMEOUT_S = 1.0  # a save never holds the conversation longer than this
RETRY_S = 0.5
LOAD_WITHIN_S = 10.0


class CallStore:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self._unsaved: dict[str, bytes] = {}  # the latest state of calls the bucket did not take
        self._writer: asyncio.Task[None] | None = None

    async def load(self, call_id: str) -> CallState | None:
        """The saved state (None if there is none); :class:`BadMessage` if it is unreadable."""
        deadline = asyncio.get_running_loop().time() + LOAD_WITHIN_S
        while True:
            try:
                entry = await self.kv.get(call_id)
                break
            except KeyNotFoundError:
                return None
            except (NatsError, TimeoutError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                log.warning("call state not readable yet", call_id=call_id, reason=type(exc).__name__)
                await asyncio.sleep(RETRY_S)
        try:
            return CallState.model_validate_json(entry.value or b"")
        except ValueError as exc:
            raise BadMessage(f"kv {subjects.CALL_STATE_BUCKET}.{call_id}", str(exc).splitlines()[0]) from None

    async def save(self, state: CallState) -> None:
        data = state.model_dump_json().encode()
        self._unsaved.pop(state.call_id, None)
        try:
            await asyncio.wait_for(self.kv.put(state.call_id, data), PUT_TIMEOUT_S)
        except (NatsError, NatsTimeout, TimeoutError) as exc:
            log.warning("call state not saved yet; saved when the bucket answers", call_id=state.call_id,
                        reason=type(exc).__name__)  # fmt: skip
            self._unsaved[state.call_id] = data
            if self._writer is None or self._writer.done():
                self._writer = asyncio.create_task(self._write_later())

    async def _write_later(self) -> None:
        while self._unsaved:
            await asyncio.sleep(RETRY_S)
            for call_id, data in list(self._unsaved.items()):
                try:
                    await asyncio.wait_for(self.kv.put(call_id, data), PUT_TIMEOUT_S)
                except (NatsError, NatsTimeout, TimeoutError):
                    break  # still not answering: the next round
                if self._unsaved.get(call_id) is data:  # not replaced by a newer state meanwhile
                    del self._unsaved[call_id]
                log.info("call state saved after all", call_id=call_id)

    async def close(self) -> None:
        """Write what is left (once), then stop the background writer."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        for call_id, data in list(self._unsaved.items()):
            with contextlib.suppress(NatsError, NatsTimeout, TimeoutError):
                await asyncio.wait_for(self.kv.put(call_id, data), PUT_TIMEOUT_S)
