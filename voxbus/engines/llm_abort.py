"""Stopping a warm-up's ``llama_decode`` step in flight, from another thread.

A warm-up (a partial transcript's words evaluated ahead) runs in steps of up to 128 prompt tokens,
300-600 ms on two cores. When the caller stops, the answer's request came while such a step was
running in 4 turns of 9 (a debug run of ``bench/latency.py``) and waited for it: 250 ms once, for a
warm-up of words whisper then wrote differently ("Peter, well," before "Peter Wells,"), so that
the answer evaluated them again anyway. llama.cpp checks an abort callback between the nodes of
its compute graph; a step it stops leaves nothing in the KV cache (``llama_decode`` returns 2
and removes the step's cells), so the decoding thread only puts the step's tokens back.

The callback must not be Python: it runs on llama.cpp's compute thread between every two of the
graph's ~700 nodes, and a Python callback would take the GIL each time (a stall of up to the
interpreter's 5 ms switch interval whenever another thread holds it, on the critical path of every
answer token). C's ``strlen`` is the callback instead, reading a one-byte flag: 0 (an empty
string) goes on, 1 stops. The flag is set only under a lock that also names the step in flight,
so a stop meant for one step can never reach the next.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from voxbus.logs import get_logger

log = get_logger(__name__)
# what llama.cpp says (as an error) each time a step is stopped: expected here, so said at debug
STOPPED_STEP_LINE = "removing memory module entries"


@dataclass(frozen=True)
class WarmStep:
    """A warm-up's step, as other threads may judge it: whose prompt, and how far it gets."""

    session: str
    evaluated: tuple[int, ...]  # the warm-up's prompt up to the end of this step


class StepAbort:
    def __init__(self, lib: Any, ctx: Any) -> None:
        self._flag = ctypes.create_string_buffer(1)  # b"\0": go on
        strlen = ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p).value
        self._callback = lib.ggml_abort_callback(strlen)  # kept: llama.cpp holds only the pointer
        lib.llama_set_abort_callback(ctx, self._callback, ctypes.cast(self._flag, ctypes.c_void_p))
        self._lock = threading.RLock()  # re-entered by a test that holds a step in flight
        self._step: WarmStep | None = None
        self._asked = False

    def begin(self, step: WarmStep | None) -> None:
        """A step starts (``None``: one that must not be stopped, an answer's)."""
        with self._lock:
            self._flag[0] = b"\0"
            self._step, self._asked = step, False

    def end(self) -> bool:
        """The step is over; True if it was asked to stop."""
        with self._lock:
            asked, self._step, self._asked = self._asked, None, False
            self._flag[0] = b"\0"
            return asked

    def stop_if(self, pointless: Callable[[WarmStep], bool]) -> bool:
        """Stop the warm-up step in flight if ``pointless(step)``; True if asked."""
        with self._lock:
            if self._step is None or not pointless(self._step):
                return False
            self._flag[0], self._asked = b"\1", True
            return True


_ROUTED: list[Any] = []  # the callback: llama.cpp may call it as long as the process lives


def route_llama_log(lib: Any) -> None:  # noqa: ANN401 - llama_cpp
    """llama.cpp's own log lines into the structured log (once per process): errors as errors,
    one line each, and its line on every stopped step at debug. llama-cpp-python prints them raw on
    stderr (errors only, once a model is loaded quietly), which put a line per turn into the LLM
    worker's log."""
    if _ROUTED:
        return

    @lib.llama_log_callback
    def callback(level: int, text: bytes, _data: ctypes.c_void_p) -> None:
        if level not in (0, 3):  # NONE and ERROR, as llama-cpp-python shows them
            return
        line = text.decode("utf-8", "replace").strip()
        if STOPPED_STEP_LINE in line:
            log.debug("llama.cpp", message=line)
        elif line:
            log.error("llama.cpp", message=line)

    _ROUTED.append(callback)
    lib.llama_log_set(callback, ctypes.c_void_p(0))
