"""The SIP door's policy: who may call, which codecs are offered, how many calls fit.

Plain functions and data, no pjsua: the gateway asks them and carries out the answer, so the
policy is unit-tested without a SIP stack.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from voxbus.config import SipSettings
from voxbus.sip.invite_checks import Refusal, invite_refusal

__all__ = ["MAX_CALLS", "Door", "Refusal", "codec_priorities", "host_of"]
MAX_CALLS = 4  # compiled into the pjsua2 wheel: a fifth INVITE gets 486 Busy Here
CODEC_IDS = {"G722": "G722/16000", "PCMU": "PCMU/8000", "PCMA": "PCMA/8000"}


def host_of(address: str) -> str:
    """'127.0.0.1:5071' or '[::1]:5071' -> the host part."""
    if address.startswith("["):
        return address[1 : address.index("]")]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


class Door:
    def __init__(self, settings: SipSettings) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in settings.allow_from]

    def admit(self, source: str, invite: str) -> Refusal | None:
        """Why an INVITE (its whole text) from ``source`` (host:port) is refused, or None to
        answer it."""
        return self.refusal(source) or invite_refusal(invite)

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

    @staticmethod
    def dial_refusal(calls_now: int) -> str | None:
        """Why an outbound call cannot be placed now, or None."""
        return f"gateway full ({MAX_CALLS} calls)" if calls_now >= MAX_CALLS else None


def codec_priorities(available: Iterable[str], wanted: list[str]) -> dict[str, int]:
    """pjmedia priority for every codec id pjsua offers ("PCMU/8000/1"): the wanted codecs in
    their order of preference, every other codec disabled (0)."""
    ids = [CODEC_IDS[c] for c in wanted]
    priorities = {}
    for codec_id in available:
        prefix = codec_id.rsplit("/", 1)[0] if codec_id.count("/") == 2 else codec_id
        priorities[codec_id] = 255 - ids.index(prefix) if prefix in ids else 0
    return priorities
