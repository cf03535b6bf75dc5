"""Releasing a pjsua2 call object that ended, without harming the call that took its slot.

pjsua keeps calls in a small array (4 slots in the wheel) and gives an ended call's slot to the
next call at once. pjsua2's ``Call::~Call()`` knows only the slot number it was made with: it
clears that slot's user data and hangs up whatever call is active there. Left to Python's garbage
collector, an ended call's object is destroyed at any later moment, possibly when a newer call
holds its slot: that call then gets a BYE from nowhere and pjsua2 stops reporting its state (its
user data is gone), so the gateway never hears that it ended (found by a Kamailio pool test: one
call in eight hung up four seconds after its answer, a shard's "INVITE session already
terminated" warnings every second after).

So an ended call's object is destroyed explicitly, on the pjsua thread between two polls, and only
while its slot is free or still its own; a slot already taken by a newer call leaves the old object
undestroyed (a few hundred bytes), since its destructor could only do harm.
"""

from __future__ import annotations

from typing import Any

import pjsua2 as pj

from voxbus.logs import get_logger

log = get_logger(__name__)


def owns_slot(call: pj.Call, slot: int) -> bool:
    """Is ``call`` the object pjsua holds for ``slot`` (or does pjsua hold none there)?"""
    holder: Any = pj.Call.lookup(slot)
    return holder is None or int(holder.this) == int(call.this)


def release(call: pj.Call) -> bool:
    """Destroy an ended call's C++ object now if that is harmless (True), else leave it be (False).
    On the pjsua thread, outside pjsua's callbacks; ``call`` must not be used afterwards."""
    slot = call.getId()
    if slot != pj.PJSUA_INVALID_ID and not owns_slot(call, slot):
        call.thisown = False  # never destroyed: its destructor would hang up the slot's new call
        log.debug("ended call's slot taken by a newer call: its object is left", slot=slot)
        return False
    pj.Call.__swig_destroy__(call)  # SWIG's delete_Call: disowns the proxy and deletes the object
    return True
