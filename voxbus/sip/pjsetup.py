"""pjsua2's configuration for a gateway: endpoint, transports and account, from ``[sip]``."""

from __future__ import annotations

import pjsua2 as pj

from voxbus.config import SipSettings
from voxbus.media.frames import FRAME_MS, SAMPLE_RATE
from voxbus.sip.door import MAX_CALLS
from voxbus.sip.echo import native_library


def quiet_pjlib() -> None:
    """Keep pjlib's start-up lines off the console: before ``libInit`` installs a log writer,
    pjlib prints straight to stdout (pjsua2 has no call for its log level; pjlib's own C
    function does it). Errors still show."""
    native_library().pj_log_set_level(1)


def endpoint_config(settings: SipSettings, writer: pj.LogWriter) -> pj.EpConfig:
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0  # pjsua is polled on its own thread (PjThread)
    cfg.uaConfig.mainThreadOnly = False
    cfg.uaConfig.maxCalls = MAX_CALLS
    cfg.uaConfig.userAgent = "voxbus"
    cfg.medConfig.clockRate = SAMPLE_RATE
    cfg.medConfig.sndClockRate = SAMPLE_RATE
    cfg.medConfig.audioFramePtime = FRAME_MS
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0  # echo cancelling is per call (voxbus.sip.echo)
    cfg.medConfig.jbMinPre = settings.jitter_min_ms
    cfg.medConfig.jbMaxPre = settings.jitter_max_ms
    cfg.logConfig.writer = writer
    cfg.logConfig.level = 4
    cfg.logConfig.consoleLevel = 4
    cfg.logConfig.decor = 0
    return cfg


def create_transports(ep: pj.Endpoint, settings: SipSettings) -> None:
    for transport in settings.transports:
        tc = pj.TransportConfig()
        tc.port = settings.port
        tc.boundAddress = settings.address
        kind = pj.PJSIP_TRANSPORT_UDP if transport == "udp" else pj.PJSIP_TRANSPORT_TCP
        ep.transportCreate(kind, tc)


def account_config(settings: SipSettings) -> pj.AccountConfig:
    ac = pj.AccountConfig()
    ac.idUri = f"sip:voxbus@{settings.address}:{settings.port}"
    ac.mediaConfig.transportConfig.boundAddress = settings.address  # RTP where SIP is
    ac.mediaConfig.transportConfig.port = settings.rtp_port
    ac.mediaConfig.transportConfig.portRange = settings.rtp_port_range
    return ac


def trunk_account_config(settings: SipSettings, password: str) -> pj.AccountConfig:
    """The account that registers to ``sip.registration``'s registrar (its calls come in through it)."""
    registration = settings.registration
    assert registration is not None
    ac = account_config(settings)
    ac.idUri = registration.aor
    ac.regConfig.registrarUri = registration.registrar
    ac.regConfig.timeoutSec = registration.expires_s
    ac.regConfig.retryIntervalSec = 30
    cred = pj.AuthCredInfo("digest", "*", registration.auth_user or registration.user, 0, password)
    ac.sipConfig.authCreds.append(cred)
    return ac


def destroy_flags(registered: bool) -> int:
    """``libDestroy``'s flags. Without any, pjsua waits for unregistrations and then sleeps out
    the rest of a second (for ICE and TURN, which voxbus does not use): a second of every
    shutdown spent idle. Calls are hung up (and their BYEs sent) before it; only an account
    that registered to a trunk still needs the registrar's answer (a digest challenge takes a
    second round trip), so only then does pjsua wait for replies."""
    return 0 if registered else pj.PJSUA_DESTROY_NO_RX_MSG
