"""The SIP front's decisions (method table, INVITE admission, capacity, new-call rate), without a
SIP stack."""

from __future__ import annotations

import pytest

from tests.hostile_sip import cases, invite
from voxbus.config import SipSettings
from voxbus.ratelimit import TokenBucket
from voxbus.sip.door import MAX_CALLS, Door
from voxbus.sip.front_policy import ALLOW, Answer, Drop, FrontPolicy, Pass, Request

SOURCE = "127.0.0.1:5999"


def request(method: str, to_tag: bool = False, source: str = SOURCE) -> Request:
    tag = ";tag=abc" if to_tag else ""
    text = (
        f"{method} sip:voxbus@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {source};branch=z9hG4bK1\r\n"
        f"From: <sip:a@x>;tag=1\r\nTo: <sip:voxbus@x>{tag}\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    return Request(source=source, text=text)


def policy(**settings: object) -> FrontPolicy:
    return FrontPolicy(Door(SipSettings(**settings)), new_calls_per_s=5)  # type: ignore[arg-type]


def a_call(branch: str) -> Request:
    return Request(SOURCE, invite("127.0.0.1:5060", SOURCE, branch).decode())


@pytest.mark.parametrize(
    ("method", "status"),
    [
        ("REGISTER", 405),
        ("SUBSCRIBE", 405),
        ("PUBLISH", 405),
        ("MESSAGE", 405),
        ("FOO", 501),
        ("OPTIONS", 200),
    ],
)
def test_out_of_dialog_methods_voxbus_does_not_serve_are_answered_here(method: str, status: int) -> None:
    decision = policy().judge(request(method), 0, 0.0)
    assert isinstance(decision, Answer) and decision.refusal.code == status
    assert decision.refusal.headers["Allow"] == ALLOW
    assert decision.refused == (status != 200)


@pytest.mark.parametrize("method", ["ACK", "CANCEL", "BYE", "INFO", "REFER", "NOTIFY", "UPDATE", "PRACK"])
def test_requests_of_transactions_and_dialogs_go_on_to_pjsip(method: str) -> None:
    assert policy().judge(request(method, to_tag=True), 0, 0.0) == Pass()


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_an_ack_or_cancel_with_no_to_tag_goes_on_to_its_transaction(method: str) -> None:
    assert policy().judge(request(method), 0, 0.0) == Pass()


@pytest.mark.parametrize("method", ["BYE", "INFO", "REFER", "NOTIFY", "UPDATE", "PRACK"])
def test_a_dialog_request_outside_any_dialog_gets_481_here(method: str) -> None:
    """pjsip leaves these unanswered (the sender would retransmit for 32 s); RFC 3261 15.1.2: 481."""
    decision = policy().judge(request(method), 0, 0.0)
    assert isinstance(decision, Answer) and decision.refusal.code == 481


def test_an_unknown_method_inside_a_dialog_goes_on_to_pjsip() -> None:
    assert policy().judge(request("FOO", to_tag=True), 0, 0.0) == Pass()


def test_a_source_not_allowed_is_refused_and_its_ack_dropped() -> None:
    front = policy(allow_from=["10.0.0.0/8"])
    decision = front.judge(request("OPTIONS"), 0, 0.0)
    assert isinstance(decision, Answer) and decision.refusal.code == 403
    assert front.judge(request("ACK"), 0, 0.0) == Drop()


def test_a_blocked_source_gets_403_for_every_request() -> None:
    front = policy(block_after=2)
    front.door.counter.refused("127.0.0.1", 0.0)
    front.door.counter.refused("127.0.0.1", 0.0)
    decision = front.judge(a_call("ok"), 0, 1.0)
    assert isinstance(decision, Answer) and decision.refusal.code == 403


def test_invites_the_rfc_refuses_are_refused_here_with_their_status() -> None:
    front = policy()
    for what, message, _ in cases("127.0.0.1:5060", SOURCE):
        decision = front.judge(Request(SOURCE, message.decode()), 0, 0.0)
        assert isinstance(decision, Answer) and decision.refusal.code in (400, 406, 420), what


def test_a_gateway_of_one_call_is_full_with_one() -> None:
    decision = policy(max_calls=1).judge(a_call("second"), 1, 0.0)
    assert isinstance(decision, Answer) and decision.refusal.code == 503
    assert "1 calls" in decision.refusal.reason


def test_a_full_machine_answers_503_though_this_gateway_has_room() -> None:
    machine = FrontPolicy(Door(SipSettings()), new_calls_per_s=5, machine_max_calls=2)
    full = machine.judge(a_call("machine-full"), 0, 0.0, machine_calls_now=2)
    assert isinstance(full, Answer) and full.refusal.code == 503 and not full.blocks
    assert "machine full (2 calls)" in full.refusal.reason and full.refusal.headers == {"Retry-After": "5"}
    assert isinstance(machine.judge(a_call("room"), 0, 0.0, machine_calls_now=1), Pass)
    # without a machine limit, the machine's count is no reason to refuse
    assert isinstance(policy().judge(a_call("no-limit"), 0, 0.0, machine_calls_now=99), Pass)


def test_a_full_gateway_answers_503_without_counting_towards_a_block() -> None:
    decision = policy().judge(a_call("full"), MAX_CALLS, 0.0)
    assert isinstance(decision, Answer) and decision.refusal.code == 503 and not decision.blocks
    assert decision.refusal.headers == {"Retry-After": "5"}


def test_a_gateway_whose_workers_are_not_serving_refuses_calls_and_probes_with_503() -> None:
    front = policy()
    for decision in (
        front.judge(a_call("starting"), 0, 0.0, missing=("llm",)),
        front.judge(request("OPTIONS"), 0, 0.0, missing=("llm",)),  # Kamailio's probe: out of the pool
    ):
        assert isinstance(decision, Answer) and decision.refusal.code == 503 and not decision.blocks
        assert decision.refusal.reason == "Service Unavailable: not ready"  # no role named outside
        assert decision.refusal.headers == {"Retry-After": "5"}
    assert isinstance(front.judge(a_call("ready"), 0, 0.0), Pass)
    options = front.judge(request("OPTIONS"), 0, 0.0)
    assert isinstance(options, Answer) and options.refusal.code == 200
    # a request that fails its checks is refused for that, not for the system's state
    mismatched = a_call("bad").text.replace("CSeq: 1 INVITE", "CSeq: 1 BYE")
    bad = front.judge(Request(SOURCE, mismatched), 0, 0.0, missing=("llm",))
    assert isinstance(bad, Answer) and bad.refusal.code == 400


def test_new_calls_beyond_the_rate_get_503_and_retransmissions_pass() -> None:
    front = policy()
    let_in = [front.judge(a_call(f"b{i}"), 0, 0.0) for i in range(MAX_CALLS)]
    assert let_in == [Pass()] * MAX_CALLS
    late = front.judge(a_call("late"), 0, 0.0)
    assert (
        isinstance(late, Answer) and late.refusal.code == 503 and late.refusal.headers == {"Retry-After": "1"}
    )
    assert front.judge(a_call("b0"), 0, 0.01) == Pass()  # a retransmission: its transaction answers
    assert front.judge(a_call("later"), 0, 0.25) == Pass()  # a fifth of a second later, one more


def test_a_remembered_invite_is_forgotten_after_its_transaction_time() -> None:
    front = policy()
    assert front.judge(a_call("once"), 0, 0.0) == Pass()
    assert front.judge(a_call("once"), MAX_CALLS, 1.0) == Pass()
    decision = front.judge(a_call("once"), MAX_CALLS, 40.0)
    assert isinstance(decision, Answer) and decision.refusal.code == 503


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=2, burst=2)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert bucket.take(10.0) and bucket.take(10.0) and not bucket.take(10.0)
