"""An ended call's pjsua2 object is destroyed only while its slot is free or its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pjsua2 as pj
import pytest

from voxbus.sip import call_release


class Pointer:
    def __init__(self, address: int) -> None:
        self.address = address

    def __int__(self) -> int:
        return self.address


class EndedCall:
    """Stands in for a pjsua2 call object: its slot, its C++ address, whether it is owned."""

    def __init__(self, slot: int, address: int) -> None:
        self.slot, self.this, self.thisown = slot, Pointer(address), True

    def getId(self) -> int:  # noqa: N802  (pjsua2's name)
        return self.slot


@dataclass
class Pjsua:
    """What pjsua holds in each slot, and the call objects destroyed."""

    held: dict[int, Any] = field(default_factory=dict)
    destroyed: list[Any] = field(default_factory=list)


@pytest.fixture
def pjsua(monkeypatch: pytest.MonkeyPatch) -> Pjsua:
    state = Pjsua()
    monkeypatch.setattr(pj.Call, "lookup", staticmethod(lambda slot: state.held.get(slot)))
    monkeypatch.setattr(pj.Call, "__swig_destroy__", staticmethod(state.destroyed.append))
    return state


def test_an_ended_call_is_destroyed_while_its_slot_is_free_or_its_own(pjsua: Pjsua) -> None:
    free, own = EndedCall(0, 100), EndedCall(1, 200)
    pjsua.held[1] = own
    assert call_release.release(free) and call_release.release(own)
    assert pjsua.destroyed == [free, own]


def test_an_ended_call_whose_slot_a_newer_call_took_is_never_destroyed(pjsua: Pjsua) -> None:
    old, newer = EndedCall(2, 300), EndedCall(2, 400)
    pjsua.held[2] = newer  # the destructor would hang up the newer call and wipe its callbacks
    assert not call_release.release(old)
    assert pjsua.destroyed == [] and old.thisown is False
