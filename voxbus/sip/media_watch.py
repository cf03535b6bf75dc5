"""Calls whose peer has gone without a word: no RTP for ``sip.media_timeout_s``.

A phone that crashed, a NAT binding that expired or a mangled dialog that no BYE can match leaves a
call that pjsip would hold, with one of the gateway's four slots, for ever (RFC 3261 has no
liveness check of its own). Session border controllers end such calls when their media stops
(rtpengine's ``timeout``, Asterisk's ``rtptimeout``); so does the gateway. A call on hold sends no
media either: only calls whose audio is active are watched.
"""

from __future__ import annotations

CHECK_EVERY_S = 1.0


class MediaWatch:
    """Decides which calls went silent; the gateway reads the RTP counters (on the pjsua thread)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._next_check = 0.0
        self._seen: dict[str, tuple[int, float]] = {}  # call id -> (RTP packets received, when it last grew)

    def due(self, now: float) -> bool:
        """Whether the counters should be read now (about once a second; never when off)."""
        if self.timeout_s <= 0 or now < self._next_check:
            return False
        self._next_check = now + CHECK_EVERY_S
        return True

    def silent(self, received: dict[str, int | None], now: float) -> list[str]:
        """The calls (of ``received``: RTP packets received so far, None when the call's audio is not
        active) from which nothing has come for ``timeout_s``."""
        out = []
        for call_id, packets in received.items():
            last = self._seen.get(call_id)
            if packets is None or last is None or packets != last[0]:
                self._seen[call_id] = (packets if packets is not None else -1, now)
            elif now - last[1] >= self.timeout_s:
                out.append(call_id)
        for gone in set(self._seen) - set(received):
            del self._seen[gone]
        return out
