"""Erasing calls everywhere voxbus keeps them: the console's records, the calls' events in the
JetStream stream, their state in the call-state bucket, and their recordings (``sip.record_dir``,
on this machine). Used by the retention sweep and by
``voxbus calls erase`` (by call or by caller, for a data subject's request)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from nats.js.errors import NotFoundError

from voxbus.bus import subjects
from voxbus.bus.connection import Bus
from voxbus.console.records import calls_before, erase_records
from voxbus.console.store import CallRecords
from voxbus.logs import get_logger

log = get_logger(__name__)


async def erase_calls(
    bus: Bus, records: CallRecords, call_ids: list[str], recordings: Path | None = None
) -> int:
    """Erase the calls; returns how many had records. Events are purged from the stream by
    subject, so other calls' events stay."""
    assert bus.js is not None
    kv = await bus.js.key_value(subjects.CALL_STATE_BUCKET)
    for call_id in call_ids:
        subjects.check_call_id(call_id)
        await bus.js.purge_stream(subjects.EVENTS_STREAM, subject=subjects.call_events(call_id))
        with contextlib.suppress(NotFoundError):
            await kv.purge(call_id)
        if recordings is not None:
            (recordings / f"{call_id}.wav").unlink(missing_ok=True)
    erased = erase_records(records, call_ids)
    if call_ids:
        log.info("calls erased", calls=len(call_ids), records=erased)
    return erased


async def apply_retention(
    bus: Bus, records: CallRecords, retention_days: float, recordings: Path | None = None
) -> int:
    """Erase every call that started more than ``retention_days`` ago (and the CPU samples of
    that time, which the KPIs of those calls used), and every recording older than that, whether
    the console saw its call or not."""
    limit = time.time() - retention_days * 86400
    records.db.execute("DELETE FROM cpu WHERE ts < ?", (limit,))
    erased = await erase_calls(bus, records, calls_before(records, limit), recordings)
    if recordings is not None and recordings.is_dir():
        for old in (w for w in recordings.glob("*.wav") if w.stat().st_mtime < limit):
            old.unlink(missing_ok=True)
    return erased
