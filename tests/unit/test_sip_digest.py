"""Digest authentication of incoming calls, without a SIP stack: the challenge, a right and a wrong
answer (computed as RFC 2617 says a client does), stale and forged nonces, and the front's
treatment of each (a challenge blocks no one; wrong credentials count towards a block)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.hostile_sip import invite
from voxbus.config import SipSettings
from voxbus.sip.digest import DigestGuard, SipAuthSettings, digest_params, nonce_key
from voxbus.sip.door import Door
from voxbus.sip.front_policy import Answer, FrontPolicy, Pass, Request

SOURCE = "127.0.0.1:5999"
URI = "sip:voxbus@127.0.0.1:5060"
NOW = 1_800_000_000.0


@pytest.fixture
def auth(monkeypatch: pytest.MonkeyPatch) -> SipAuthSettings:
    monkeypatch.setenv("PBX_PASSWORD", "pbx's long secret")
    return SipAuthSettings(required=True, trunks={"pbx": {"user": "pbx1", "password_env": "PBX_PASSWORD"}})  # type: ignore[dict-item]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def answered(
    challenge: str, user: str, password: str, qop: bool = True, realm: str = "voxbus", branch: str = "b1"
) -> str:
    """An INVITE carrying the Authorization a client computes for the challenge."""
    nonce = digest_params(challenge)["nonce"]
    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"INVITE:{URI}")
    if qop:
        response = md5(f"{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}")
        extra = ', qop=auth, nc=00000001, cnonce="0a4f113b"'
    else:
        response, extra = md5(f"{ha1}:{nonce}:{ha2}"), ""
    header = (
        f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{URI}", '
        f'response="{response}", algorithm=MD5{extra}'
    )
    return invite("127.0.0.1:5060", SOURCE, branch, extra=[header]).decode()


def test_an_invite_without_credentials_is_challenged(auth: SipAuthSettings) -> None:
    guard = DigestGuard(auth, b"k" * 32)
    refusal = guard.refusal(invite("127.0.0.1:5060", SOURCE, "b1").decode(), NOW)
    assert refusal is not None and refusal.code == 401
    params = digest_params(refusal.headers["WWW-Authenticate"])
    assert params["realm"] == "voxbus" and params["qop"] == "auth" and params["algorithm"] == "MD5"


@pytest.mark.parametrize("qop", [True, False])
def test_the_right_answer_is_let_in_and_a_wrong_one_refused(auth: SipAuthSettings, qop: bool) -> None:
    guard = DigestGuard(auth, b"k" * 32)
    challenge = guard.challenge(NOW).headers["WWW-Authenticate"]
    assert guard.refusal(answered(challenge, "pbx1", "pbx's long secret", qop), NOW + 1) is None
    wrong = guard.refusal(answered(challenge, "pbx1", "guess", qop), NOW + 1)
    assert wrong is not None and (wrong.code, wrong.reason) == (403, "Forbidden: wrong credentials")
    stranger = guard.refusal(answered(challenge, "mallory", "pbx's long secret", qop), NOW + 1)
    assert stranger is not None and stranger.code == 403


def test_a_stale_or_forged_nonce_is_challenged_again(auth: SipAuthSettings) -> None:
    guard = DigestGuard(auth, b"k" * 32)
    challenge = guard.challenge(NOW).headers["WWW-Authenticate"]
    late = guard.refusal(answered(challenge, "pbx1", "pbx's long secret"), NOW + auth.nonce_s + 1)
    assert late is not None and late.code == 401 and "stale=true" in late.headers["WWW-Authenticate"]
    foreign = DigestGuard(auth, b"x" * 32).challenge(NOW).headers["WWW-Authenticate"]  # another key
    forged = guard.refusal(answered(foreign, "pbx1", "pbx's long secret"), NOW + 1)
    assert forged is not None and forged.code == 401
    elsewhere = guard.refusal(answered(challenge, "pbx1", "pbx's long secret", realm="other"), NOW + 1)
    assert elsewhere is not None and elsewhere.code == 401  # credentials for another realm: challenged


def test_the_front_challenges_without_blocking_and_refuses_wrong_credentials_with_a_count(
    auth: SipAuthSettings,
) -> None:
    door = Door(SipSettings(auth=auth, block_after=2), b"k" * 32)
    front = FrontPolicy(door, new_calls_per_s=50)
    bare = Request(SOURCE, invite("127.0.0.1:5060", SOURCE, "b1").decode())
    for t in range(5):  # challenges, however many, never block the source
        decision = front.judge(bare, calls_now=0, now=NOW + t)
        assert isinstance(decision, Answer) and decision.refusal.code == 401 and not decision.refused
        assert not decision.blocks
    challenge = door.digest.challenge(NOW).headers["WWW-Authenticate"]  # type: ignore[union-attr]
    good = Request(SOURCE, answered(challenge, "pbx1", "pbx's long secret", branch="b2"))
    assert isinstance(front.judge(good, calls_now=0, now=NOW + 6), Pass)
    bad = front.judge(
        Request(SOURCE, answered(challenge, "pbx1", "guess", branch="b3")), calls_now=0, now=NOW + 7
    )
    assert isinstance(bad, Answer) and bad.refusal.code == 403 and bad.blocks and bad.refused
    assert door.admit(SOURCE, bare.text, NOW) is not None  # the second line, in pjsua, checks too


def test_settings_that_cannot_work_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least one"):
        SipAuthSettings(required=True)
    with pytest.raises(ValidationError, match="password_env or password_file"):
        SipAuthSettings(trunks={"pbx": {"user": "pbx1"}})  # type: ignore[dict-item]
    key = tmp_path / "auth" / "sip-nonce.key"
    assert nonce_key(key) == nonce_key(key) and key.stat().st_mode & 0o777 == 0o600
    missing = SipAuthSettings(required=True, trunks={"pbx": {"user": "p", "password_file": tmp_path / "no"}})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="sip.auth.trunks.pbx"):
        DigestGuard(missing, b"k" * 32)
