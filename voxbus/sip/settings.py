"""``[sip]``: the SIP gateway's address, codecs, door, limits and recording."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from voxbus.sip.digest import SipAuthSettings


class SipRegistration(BaseModel):
    """Registration to a SIP trunk or PBX, so that calls to its numbers (DIDs) reach voxbus: the
    gateway keeps a REGISTER up for ``user`` at ``registrar``, answering its digest challenge."""

    registrar: str = Field(pattern=r"^sips?:[^\s]+$", description="the registrar's SIP URI")
    user: str = Field(pattern=r"^[A-Za-z0-9_.+-]{1,64}$", description="the number or user registered")
    domain: str = Field(
        default="", description="the address-of-record's domain (default: the registrar's host)"
    )
    auth_user: str = Field(default="", description="the digest user name (default: user)")
    password_env: str | None = Field(default=None, description="environment variable holding the password")
    password_file: Path | None = Field(default=None, description="file holding the password")
    expires_s: int = Field(default=300, ge=60, le=86400)

    @property
    def aor(self) -> str:
        host = self.domain or self.registrar.split(":", 1)[1].split(";")[0]
        return f"sip:{self.user}@{host}"


class OutboundLimits(BaseModel):
    """What an agent profile may dial (``[agents.NAME.outbound]``), within ``sip.dial_allow`` and
    ``sip.dials_per_minute``, which bind every profile. Counted per gateway process."""

    model_config = ConfigDict(extra="forbid")

    dial_allow: list[str] | None = Field(
        default=None, description="SIP URIs (shell patterns) this agent may dial; unset: sip.dial_allow"
    )
    max_calls: int = Field(default=4, ge=0, le=4, description="this agent's outbound calls up at once")
    dials_per_minute: int = Field(default=10, ge=0, description="outbound calls this agent places a minute")


CallRole = Literal["stt", "llm", "tts", "agent"]  # what a call needs besides its gateway
CALL_ROLES: tuple[CallRole, ...] = get_args(CallRole)


class SipSettings(BaseModel):
    """The SIP gateway (pjsua2). At most 4 calls per gateway process (compiled into the wheel)."""

    address: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=5060, ge=1, le=65535)
    transports: list[Literal["udp", "tcp"]] = Field(default_factory=lambda: ["udp", "tcp"], min_length=1)
    codecs: list[Literal["G722", "PCMU", "PCMA"]] = Field(
        default_factory=lambda: ["G722", "PCMU", "PCMA"],
        min_length=1,
        description="codec preference, best first; others are disabled",
    )
    registration: SipRegistration | None = Field(
        default=None, description="register to a trunk or PBX for inbound numbers (DIDs); unset: none"
    )
    auth: SipAuthSettings = Field(
        default_factory=SipAuthSettings, description="digest authentication of calls in (trunks, PBXs)"
    )
    allow_from: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8"],
        description="source networks (CIDR) allowed to call in; empty: anyone",
    )
    block_after: int = Field(
        default=20,
        ge=0,
        description="a source refused this often within block_window_s is blocked for block_s "
        "(every INVITE from it gets 403 at once); 0: never (behind Kamailio, which blocks with pike)",
    )
    block_window_s: float = Field(default=10.0, gt=0)
    block_s: float = Field(default=60.0, gt=0)
    rejected_events: int = Field(
        default=5, ge=1, description="at most this many sip.rejected events per source per block_window_s"
    )
    max_calls: int = Field(
        default=4,
        ge=1,
        le=4,
        description="calls this gateway takes at once (at most 4, the wheel's limit); beyond: 503",
    )
    machine_max_calls: int = Field(
        default=0,
        ge=0,
        description="calls all the gateways of this machine (sip.machine) take at once, its capacity at "
        "the latency target (README, Capacity); beyond: 503; 0: each gateway counts only its own",
    )
    machine: str = Field(
        default_factory=lambda: re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:64] or "local",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="this machine's name among the gateways on the bus (default: the host name)",
    )
    dial_allow: list[str] = Field(
        default_factory=lambda: ["sip:*@127.0.0.1", "sip:*@127.0.0.1:*"],
        description="SIP URIs (shell patterns) voxbus may dial out to; others are refused (toll fraud)",
    )
    dials_per_minute: int = Field(default=10, ge=0, description="outbound calls a gateway places a minute")
    transfer_allow: list[str] = Field(
        default_factory=list,
        description="SIP URIs (shell patterns) a transfer may go to, besides transfer_target",
    )
    wait_for_roles: list[CallRole] = Field(
        default_factory=list,
        description="roles a call needs: until a worker of each serves (its heartbeat), INVITEs and "
        "OPTIONS get 503, so that a SIP front tries another node; voxbus up sets the roles it runs "
        "itself unless this is set; []: admit at once",
    )
    roles_stale_s: float = Field(
        default=10.0, gt=0, description="a role with no worker heard from this long counts as missing"
    )
    new_calls_per_s: float = Field(
        default=5.0,
        gt=0,
        description="new calls admitted per second per gateway (4 at once); beyond it INVITEs get 503",
    )
    media_timeout_s: float = Field(
        default=120.0,
        ge=0,
        description="end a call from which no RTP has come this long (its peer went without a BYE); "
        "calls on hold are not watched; 0: never",
    )
    rtp_port: int = Field(default=10000, ge=1024, le=65000, description="first RTP port")
    rtp_port_range: int = Field(default=200, ge=8, description="RTP ports to try from rtp_port")
    transfer_target: str = Field(default="", description="SIP URI of the human queue for transfers")
    record_dir: Path | None = Field(default=None, description="record every call here (off when unset)")
    echo_canceller: Literal["speex", "webrtc", "webrtc-aec3", "simple", "off"] = Field(
        default="off",
        description="pjmedia echo canceller on the caller's audio (see voxbus/sip/echo.py and "
        "bench/barge_words.py: with Speex, whisper hears words said over the agent far better; off: "
        "the echo gate alone, which also takes the quiet parts of the caller's words)",
    )
    echo_tail_ms: int = Field(default=200, ge=10, le=800, description="longest echo delay cancelled")
    echo_reference: Literal["delay", "window"] = Field(
        default="delay",
        description="the echo gate's reference for each caller frame: the agent's level at the echo's "
        "measured delay (voxbus/media/echo_path.py), or the loudest agent frame of the whole echo window "
        "(safer on a line whose delay jumps, but it takes more of a caller's quiet sounds)",
    )
    jitter_min_ms: int = Field(default=20, ge=0, description="pjmedia jitter buffer minimum prefetch")
    jitter_max_ms: int = Field(default=200, ge=20)
