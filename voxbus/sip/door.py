"""The SIP door's policy: who may call, which codecs are offered, how many calls fit.

Plain functions and data, no pjsua: the gateway asks them and carries out the answer, so the
policy is unit-tested without a SIP stack.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import secrets
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from voxbus.config import SipSettings
from voxbus.sip.digest import DigestGuard
from voxbus.sip.invite_checks import Refusal, invite_refusal
from voxbus.sip.settings import OutboundLimits

__all__ = ["MAX_CALLS", "Door", "Refusal", "RefusalCounter", "Verdict", "codec_priorities", "host_of"]
MAX_CALLS = 4  # compiled into the pjsua2 wheel (sip.max_calls may lower it; the front says 503)
CODEC_IDS = {"G722": "G722/16000", "PCMU": "PCMU/8000", "PCMA": "PCMA/8000"}


def host_of(address: str) -> str:
    """'127.0.0.1:5071' or '[::1]:5071' -> the host part."""
    if address.startswith("["):
        return address[1 : address.index("]")]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


@dataclass
class Verdict:
    """What to do about one refusal: publish its event or not, and how many were not published."""

    publish: bool
    suppressed: int = 0  # refusals of this source since its last published event


class RefusalCounter:
    """Refusals per source host in a sliding window: a flood of garbage from one source is blocked
    for a while and publishes a few events, not one per message. Thread-safe (pjsua's thread and
    pjmedia's call it); time is passed in."""

    def __init__(self, block_after: int, window_s: float, block_s: float, events: int) -> None:
        self.block_after, self.window_s, self.block_s, self.events = block_after, window_s, block_s, events
        self._seen: dict[str, deque[float]] = {}
        self._published: dict[str, deque[float]] = {}
        self._suppressed: dict[str, int] = {}
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def blocked(self, host: str, now: float) -> bool:
        with self._lock:
            until = self._blocked_until.get(host)
            if until is not None and now >= until:
                del self._blocked_until[host]
                return False
            return until is not None

    def refused(self, host: str, now: float, blocks: bool = True) -> Verdict:
        """Count a refusal of ``host``; block it once it has been refused too often (refusals that
        do not ``block``, a full gateway's 503, only count towards the event budget)."""
        with self._lock:
            if blocks:
                seen = self._recent(self._seen, host, now)
                seen.append(now)
                if self.block_after and len(seen) >= self.block_after:
                    self._blocked_until[host] = now + self.block_s
            published = self._recent(self._published, host, now)
            if len(published) >= self.events:
                self._suppressed[host] = self._suppressed.get(host, 0) + 1
                return Verdict(publish=False)
            published.append(now)
            return Verdict(publish=True, suppressed=self._suppressed.pop(host, 0))

    def _recent(self, table: dict[str, deque[float]], host: str, now: float) -> deque[float]:
        times = table.setdefault(host, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(table) > 10_000:  # many sources: forget the quiet ones
            for quiet in [h for h, t in table.items() if not t and h != host]:
                del table[quiet]
        return times


class Door:
    def __init__(self, settings: SipSettings, nonce_key: bytes = b"") -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in settings.allow_from]
        self.counter = RefusalCounter(
            settings.block_after, settings.block_window_s, settings.block_s, settings.rejected_events
        )
        self.max_calls = settings.max_calls
        self.dial_allow, self.dials_per_minute = settings.dial_allow, settings.dials_per_minute
        self.transfer_target, self.transfer_allow = settings.transfer_target, settings.transfer_allow
        self._dials: deque[float] = deque()  # when the outbound calls of the last minute were placed
        self._agent_dials: dict[str, deque[float]] = {}  # the same, per agent profile
        # without a shared key (tests, a lone gateway), a key of this process: nonces still check out here
        key = nonce_key or secrets.token_bytes(32)
        self.digest = DigestGuard(settings.auth, key) if settings.auth.required else None

    def admit(self, source: str, invite: str, now: float) -> Refusal | None:
        """Why an INVITE (its whole text) from ``source`` (host:port) is refused, or None to
        answer it."""
        return self.source_refusal(source, now) or invite_refusal(invite) or self.auth_refusal(invite, now)

    def auth_refusal(self, invite: str, now: float) -> Refusal | None:
        """The digest challenge or refusal of an INVITE when ``sip.auth.required``, else None."""
        return self.digest.refusal(invite, now) if self.digest is not None else None

    def source_refusal(self, source: str, now: float) -> Refusal | None:
        """Why any request from ``source`` is refused (blocked for a while, or not allowed), or None."""
        if self.counter.blocked(host_of(source), now):
            return Refusal(403, "Forbidden: source blocked after too many refused requests")
        return self.refusal(source)

    def refusal(self, source: str) -> Refusal | None:
        """Why a call from ``source`` (host:port) is refused, or None to answer it."""
        if not self.networks:
            return None
        try:
            host = ipaddress.ip_address(host_of(source))
        except ValueError:
            return Refusal(403, "Forbidden: unknown source address")
        if not any(host in network for network in self.networks):
            return Refusal(403, "Forbidden: source not allowed")
        return None

    def dial_refusal(
        self,
        uri: str,
        calls_now: int,
        now: float,
        agent: str = "",
        limits: OutboundLimits | None = None,
        agent_calls_now: int = 0,
    ) -> str | None:
        """Why an outbound call to ``uri`` cannot be placed now, or None: only destinations in
        ``sip.dial_allow``, at most ``sip.dials_per_minute``, and not on a full gateway; for an agent
        profile, within its own ``outbound`` limits as well."""
        if not any(fnmatch.fnmatchcase(uri, pattern) for pattern in self.dial_allow):
            return f"destination {uri[:80]!r} not in sip.dial_allow"
        if calls_now >= self.max_calls:
            return f"gateway full ({self.max_calls} calls)"
        if len(_last_minute(self._dials, now)) >= self.dials_per_minute:
            return f"more than sip.dials_per_minute ({self.dials_per_minute}) outbound calls"
        agent_dials = self._agent_dials.setdefault(agent, deque())
        if limits is not None:
            allowed = limits.dial_allow
            if allowed is not None and not any(fnmatch.fnmatchcase(uri, pattern) for pattern in allowed):
                return f"destination {uri[:80]!r} not in agent {agent}'s outbound.dial_allow"
            if agent_calls_now >= limits.max_calls:
                return f"agent {agent} has {agent_calls_now} outbound calls up (outbound.max_calls)"
            if len(_last_minute(agent_dials, now)) >= limits.dials_per_minute:
                return f"more than agent {agent}'s outbound.dials_per_minute ({limits.dials_per_minute})"
        self._dials.append(now)
        agent_dials.append(now)
        return None

    def transfer_refusal(self, target: str) -> str | None:
        """Why a call may not be transferred to ``target``, or None: the configured queue
        (``sip.transfer_target``) and ``sip.transfer_allow`` only, whoever asks."""
        if target == self.transfer_target or any(
            fnmatch.fnmatchcase(target, pattern) for pattern in self.transfer_allow
        ):
            return None
        return f"transfer target {target[:80]!r} is neither sip.transfer_target nor in sip.transfer_allow"


def codec_priorities(available: Iterable[str], wanted: list[str]) -> dict[str, int]:
    """pjmedia priority for every codec id pjsua offers ("PCMU/8000/1"): the wanted codecs in
    their order of preference, every other codec disabled (0)."""
    ids = [CODEC_IDS[c] for c in wanted]
    priorities = {}
    for codec_id in available:
        prefix = codec_id.rsplit("/", 1)[0] if codec_id.count("/") == 2 else codec_id
        priorities[codec_id] = 255 - ids.index(prefix) if prefix in ids else 0
    return priorities


def _last_minute(times: deque[float], now: float) -> deque[float]:
    """``times`` without those older than a minute (dropped in place)."""
    while times and times[0] <= now - 60:
        times.popleft()
    return times
