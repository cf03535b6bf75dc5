"""The SIP door's policy, without a SIP stack."""

from __future__ import annotations

from voxbus.config import SipSettings
from voxbus.sip.door import MAX_CALLS, Door, Refusal, codec_priorities, host_of
from voxbus.sip.settings import OutboundLimits


def test_host_of_an_address() -> None:
    assert host_of("127.0.0.1:5071") == "127.0.0.1"
    assert host_of("[::1]:5071") == "::1"
    assert host_of("::1") == "::1"


def test_only_allowed_sources_may_call() -> None:
    door = Door(SipSettings(allow_from=["127.0.0.0/8", "10.1.0.0/16"]))
    assert door.refusal("127.0.0.1:5060") is None and door.refusal("10.1.2.3:5060") is None
    assert door.refusal("192.168.1.9:5060") == Refusal(403, "Forbidden: source not allowed")
    assert door.refusal("nonsense:5060") == Refusal(403, "Forbidden: unknown source address")
    assert Door(SipSettings(allow_from=[])).refusal("192.168.1.9:5060") is None


def test_dialling_out_only_to_allowed_destinations_within_capacity_and_rate() -> None:
    door = Door(SipSettings(dials_per_minute=2))
    assert door.dial_refusal("sip:bob@127.0.0.1:5080", MAX_CALLS - 1, 0.0) is None
    assert door.dial_refusal("sip:bob@127.0.0.1", MAX_CALLS, 0.0) == f"gateway full ({MAX_CALLS} calls)"
    refused = door.dial_refusal("sip:0900123@premium.example", 0, 0.0)
    assert refused is not None and "sip.dial_allow" in refused
    assert door.dial_refusal("sip:bob@127.0.0.1", 0, 1.0) is None
    too_many = door.dial_refusal("sip:bob@127.0.0.1", 0, 2.0)
    assert too_many is not None and "dials_per_minute" in too_many
    assert door.dial_refusal("sip:bob@127.0.0.1", 0, 61.0) is None  # a minute later
    small = Door(SipSettings(max_calls=1))
    assert small.dial_refusal("sip:bob@127.0.0.1", 1, 0.0) == "gateway full (1 calls)"


def test_an_agent_profile_dials_within_its_own_limits_and_the_gateways() -> None:
    door = Door(SipSettings(dials_per_minute=5))
    limits = OutboundLimits(dial_allow=["sip:ann@127.0.0.1*"], max_calls=1, dials_per_minute=2)
    assert door.dial_refusal("sip:ann@127.0.0.1", 0, 0.0, "reminders", limits, 0) is None
    elsewhere = door.dial_refusal("sip:bob@127.0.0.1", 0, 0.1, "reminders", limits, 0)
    assert elsewhere == "destination 'sip:bob@127.0.0.1' not in agent reminders's outbound.dial_allow"
    busy = door.dial_refusal("sip:ann@127.0.0.1", 1, 0.2, "reminders", limits, 1)
    assert busy == "agent reminders has 1 outbound calls up (outbound.max_calls)"
    assert door.dial_refusal("sip:ann@127.0.0.1", 0, 0.3, "reminders", limits, 0) is None
    rate = door.dial_refusal("sip:ann@127.0.0.1", 0, 0.4, "reminders", limits, 0)
    assert rate == "more than agent reminders's outbound.dials_per_minute (2)"
    # other agents keep their own count; the gateway's limit binds them all
    assert door.dial_refusal("sip:bob@127.0.0.1", 0, 0.5, "sales", OutboundLimits(), 0) is None
    assert door.dial_refusal("sip:bob@127.0.0.1", 0, 0.6) is None
    assert door.dial_refusal("sip:bob@127.0.0.1", 0, 0.7) is None  # the gateway's fifth of the minute
    assert "sip.dials_per_minute" in (
        door.dial_refusal("sip:bob@127.0.0.1", 0, 0.8, "sales", OutboundLimits()) or ""
    )
    assert door.dial_refusal("sip:ann@127.0.0.1", 0, 61.0, "reminders", limits, 0) is None


def test_transfers_go_to_the_queue_or_an_allowed_target_only() -> None:
    door = Door(SipSettings(transfer_target="sip:queue@pbx", transfer_allow=["sip:*@sales.pbx"]))
    assert door.transfer_refusal("sip:queue@pbx") is None
    assert door.transfer_refusal("sip:anna@sales.pbx") is None
    refused = door.transfer_refusal("sip:0900123@premium.example")
    assert refused is not None and "transfer_allow" in refused


def test_codecs_in_order_of_preference_the_rest_disabled() -> None:
    offered = ["G722/16000/1", "PCMU/8000/1", "PCMA/8000/1", "speex/16000/1", "L16/44100/1"]
    assert codec_priorities(offered, ["PCMU", "G722"]) == {
        "G722/16000/1": 254,
        "PCMU/8000/1": 255,
        "PCMA/8000/1": 0,
        "speex/16000/1": 0,
        "L16/44100/1": 0,
    }


def test_a_source_refused_too_often_is_blocked_for_a_while() -> None:
    door = Door(SipSettings(block_after=3, block_window_s=10, block_s=60))
    for now in (0.0, 1.0):
        door.counter.refused("10.0.0.9", now)
    assert not door.counter.blocked("10.0.0.9", 2.0)
    door.counter.refused("10.0.0.9", 2.0)
    assert door.counter.blocked("10.0.0.9", 3.0) and not door.counter.blocked("10.0.0.8", 3.0)
    refusal = door.admit("10.0.0.9:5060", "", now=30.0)
    assert refusal is not None and refusal.code == 403 and "blocked" in refusal.reason
    assert not door.counter.blocked("10.0.0.9", 62.1)  # the block ends


def test_refusals_spread_over_time_are_not_blocked_and_zero_never_blocks() -> None:
    door = Door(SipSettings(block_after=3, block_window_s=10))
    for now in (0.0, 6.0, 12.0, 18.0):
        door.counter.refused("10.0.0.9", now)
    assert not door.counter.blocked("10.0.0.9", 18.5)
    never = Door(SipSettings(block_after=0))
    for n in range(100):
        never.counter.refused("10.0.0.9", n / 100)
    assert not never.counter.blocked("10.0.0.9", 1.0)


def test_a_flood_publishes_a_few_events_then_says_how_many_it_left_out() -> None:
    door = Door(SipSettings(rejected_events=2, block_window_s=10, block_after=0))
    verdicts = [door.counter.refused("10.0.0.9", n * 0.1) for n in range(10)]
    assert [v.publish for v in verdicts] == [True, True] + [False] * 8
    later = door.counter.refused("10.0.0.9", 20.0)
    assert later.publish and later.suppressed == 8
