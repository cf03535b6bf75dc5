"""The INVITE checks of the SIP door, on generated RFC 4475-style messages."""

from __future__ import annotations

from tests.hostile_sip import cases, invite
from voxbus.sip.invite_checks import invite_refusal

TARGET, LOCAL = "127.0.0.1:5060", "127.0.0.1:5099"


def test_each_invalid_invite_gets_the_status_the_rfc_asks_for() -> None:
    for what, message, status in cases(TARGET, LOCAL):
        refusal = invite_refusal(message.decode())
        assert refusal is not None and refusal.code == status, what


def test_a_valid_invite_passes_with_compact_folded_and_quoted_headers() -> None:
    plain = invite(TARGET, LOCAL, "ok").decode()
    assert invite_refusal(plain) is None
    compact = plain.replace("Call-ID:", "i:").replace("\r\nTo:", "\r\nt:").replace("Contact:", "m:")
    assert invite_refusal(compact) is None
    folded = plain.replace("From: <sip:torture", 'From: "Doe, John"\r\n  <sip:torture')
    assert invite_refusal(folded) is None  # a comma in a quoted name is not a second value
    assert (
        invite_refusal(
            invite(TARGET, LOCAL, "ok", extra=["Require: timer", "Accept: application/sdp"]).decode()
        )
        is None
    )


def test_420_names_the_unsupported_extensions() -> None:
    refusal = invite_refusal(invite(TARGET, LOCAL, "r", extra=["Require: foo, timer"]).decode())
    assert refusal is not None and refusal.headers == {"Unsupported": "foo"}
