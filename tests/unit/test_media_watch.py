"""The gateway's watch on calls whose peer went without a BYE (no RTP for sip.media_timeout_s) and
on inbound calls pjsip never confirmed."""

from __future__ import annotations

from voxbus.sip.media_watch import SETUP_TIMEOUT_S, MediaWatch


def test_a_call_whose_rtp_stops_is_silent_after_the_timeout() -> None:
    watch = MediaWatch(timeout_s=10)
    assert watch.silent({"a": 50, "b": 50}, 0.0) == []
    assert watch.silent({"a": 100, "b": 50}, 9.9) == []  # a flows; b has been quiet for 9.9 s
    assert watch.silent({"a": 150, "b": 50}, 10.0) == ["b"]
    assert watch.silent({"a": 150, "b": 51}, 11.0) == []  # b came back: its clock starts again
    assert watch.silent({"a": 150}, 20.5) == ["a"]


def test_a_call_on_hold_is_not_watched_and_its_clock_restarts() -> None:
    watch = MediaWatch(timeout_s=10)
    watch.silent({"a": 50}, 0.0)
    assert watch.silent({"a": None}, 30.0) == []  # audio not active (on hold)
    assert watch.silent({"a": 50}, 35.0) == []  # resumed: quiet for 5 s only
    assert watch.silent({"a": 50}, 45.0) == ["a"]


def test_checks_about_once_a_second_and_a_timeout_of_zero_ends_no_silent_call() -> None:
    watch = MediaWatch(timeout_s=10)
    assert watch.due(100.0) and not watch.due(100.5) and watch.due(101.0)
    off = MediaWatch(timeout_s=0)
    off.silent({"a": 50}, 0.0)
    assert off.silent({"a": 50}, 1000.0) == []


def test_an_inbound_call_never_confirmed_is_ended_after_the_setup_timeout() -> None:
    started = {"a": 0.0, "b": 30.0}
    assert MediaWatch.unconfirmed(started, SETUP_TIMEOUT_S - 0.1) == []
    assert MediaWatch.unconfirmed(started, SETUP_TIMEOUT_S) == ["a"]
    assert MediaWatch.unconfirmed(started, SETUP_TIMEOUT_S + 30.0) == ["a", "b"]
