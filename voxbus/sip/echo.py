"""pjmedia's echo canceller, applied to each call's caller audio before it reaches the bus.

The caller's phone sends back some of what the agent says (acoustic echo in a handset or
speakerphone, line echo at a 2-wire hybrid). Without cancelling it, the agent's own voice would
reach the VAD and sound like the caller barging in. pjsua applies its canceller only to a sound
device; the gateway has none, so this calls pjmedia's echo API (exported by the pjsua2 wheel's
library) through ctypes on the clock thread, with the agent frame just played as the reference.

Off by default (``sip.echo_canceller``), by measurement (``bench/echo.py``, a -12 dB echo): Speex
removes 36-48 dB of echo once converged, but also takes 8 dB off the caller's own voice while both
speak, which is when barge-in must hear it; the WebRTC cancellers of this pjproject build remove
only 4-14 dB. The STT worker's level gate and the call actor's echo check on
words handle echo without touching the caller's voice.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from pathlib import Path
from typing import Literal

import pjsua2 as pj

from voxbus.media.frames import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE

Algorithm = Literal["speex", "webrtc", "webrtc-aec3", "simple", "off"]
ALGORITHMS: dict[str, int] = {
    "speex": pj.PJMEDIA_ECHO_SPEEX,
    "webrtc": pj.PJMEDIA_ECHO_WEBRTC,
    "webrtc-aec3": pj.PJMEDIA_ECHO_WEBRTC_AEC3,
    "simple": pj.PJMEDIA_ECHO_SIMPLE,
}


@functools.cache
def native_library() -> ctypes.CDLL:
    """pjsua2's native library (pjlib and pjmedia are exported from it), loaded once."""
    found = sorted(Path(pj.__file__).parent.glob("_pjsua2*.so"))
    if not found:
        raise RuntimeError("pjsua2's native library not found beside the pjsua2 package")
    lib = ctypes.CDLL(str(found[0]))
    lib.pjsua_pool_create.restype = ctypes.c_void_p
    lib.pjsua_pool_create.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t]
    lib.pj_pool_release.argtypes = [ctypes.c_void_p]
    lib.pjmedia_echo_create.argtypes = [
        ctypes.c_void_p,  # pool
        ctypes.c_uint,  # clock rate
        ctypes.c_uint,  # samples per frame
        ctypes.c_uint,  # tail ms
        ctypes.c_uint,  # latency ms
        ctypes.c_uint,  # options
        ctypes.POINTER(ctypes.c_void_p),
    ]
    lib.pjmedia_echo_cancel.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_void_p,
    ]
    lib.pjmedia_echo_destroy.argtypes = [ctypes.c_void_p]
    return lib


class EchoCanceller:
    """One call's canceller. Create it on a pjsua-registered thread (pjsua's pool); feed it on
    the clock thread: :meth:`played` with each agent frame sent, :meth:`cancel` with each caller
    frame received."""

    def __init__(self, algorithm: Algorithm, tail_ms: int) -> None:
        self._lib = native_library()
        self._pool = self._lib.pjsua_pool_create(b"echo", 4096, 4096)
        self._state = ctypes.c_void_p()
        options = ALGORITHMS[algorithm] | pj.PJMEDIA_ECHO_NO_LOCK
        status = self._lib.pjmedia_echo_create(
            self._pool, SAMPLE_RATE, FRAME_SAMPLES, tail_ms, 0, options, ctypes.byref(self._state)
        )
        if status != 0:
            self._lib.pj_pool_release(self._pool)
            raise RuntimeError(f"pjmedia_echo_create({algorithm}) failed with status {status}")
        self._play = ctypes.create_string_buffer(FRAME_BYTES)
        self._rec = ctypes.create_string_buffer(FRAME_BYTES)
        self._lock = threading.Lock()  # close() comes from the pjsua thread, frames from the clock's

    def played(self, pcm: bytes) -> None:
        ctypes.memmove(self._play, pcm, min(len(pcm), FRAME_BYTES))

    def cancel(self, pcm: bytes) -> bytes:
        with self._lock:
            if len(pcm) != FRAME_BYTES or not self._state:
                return pcm
            ctypes.memmove(self._rec, pcm, FRAME_BYTES)
            self._lib.pjmedia_echo_cancel(self._state, self._rec, self._play, 0, None)
            return self._rec.raw

    def close(self) -> None:
        with self._lock:
            if self._state:
                self._lib.pjmedia_echo_destroy(self._state)
                self._state = ctypes.c_void_p()
                self._lib.pj_pool_release(self._pool)


def make_canceller(algorithm: Algorithm, tail_ms: int) -> EchoCanceller | None:
    return None if algorithm == "off" else EchoCanceller(algorithm, tail_ms)
