"""The audio ports between pjmedia's conference bridge and the bus, one per call in progress.

pjmedia's clock thread calls each port 50 times a second (``onFrameReceived`` with the caller's
frame, ``onFrameRequested`` for the agent's). Ports are created on demand, kept in a
:class:`PortPool`, lent to one call at a time (:meth:`attach`) and handed back when it ends
(:meth:`release`); a port with no call plays silence and drops what it receives. Reusing them
spares each call a port's set-up; when the pool closes, each port's C++ side is destroyed before
its Python object is dropped (:mod:`voxbus.sip.port_life` says why the order matters).
"""

from __future__ import annotations

from collections.abc import Callable

import pjsua2 as pj

from voxbus.config import SipSettings
from voxbus.media.echo_path import FarEndLevel
from voxbus.media.frames import FRAME_BYTES, FRAME_MS, SILENCE
from voxbus.sip.echo import EchoCanceller, make_canceller
from voxbus.sip.frames import read_vector, write_vector
from voxbus.sip.legs import CallLeg
from voxbus.sip.port_life import destroy_port, port_format


class BusAudioPort(pj.AudioMediaPort):
    """The bridge between one call's audio and the bus, run by pjmedia's clock thread."""

    # class-level defaults: whatever state the instance is in, a callback finds these
    leg: CallLeg | None = None
    echo: EchoCanceller | None = None

    def __init__(self, to_loop: Callable[..., None], far_window: int, measure_delay: bool) -> None:
        super().__init__()
        self.to_loop = to_loop
        self.played = 0
        self.far_window, self.measure_delay = far_window, measure_delay
        self.far = FarEndLevel(far_window, measure_delay)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802 - pjsua2's name
        leg, echo = self.leg, self.echo
        if leg is None:
            return
        pcm = read_vector(frame.buf) if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO else b""
        self.far.heard(pcm)  # before the canceller: the echo's delay is measured on the line itself
        if echo is not None and pcm:
            pcm = echo.cancel(pcm)
        self.to_loop(leg.caller_audio, pcm, *self.far.levels())

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802
        leg, echo = self.leg, self.echo
        if leg is None:
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
            write_vector(frame.buf, SILENCE)
            frame.size = FRAME_BYTES
            return
        pcm = leg.playout.next(self.played) or SILENCE
        self.played += 1
        self.far.played(pcm)
        if echo is not None:
            echo.played(pcm)
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        write_vector(frame.buf, pcm)
        frame.size = FRAME_BYTES


class PortPool:
    """Audio ports lent to calls; every method runs on the pjsua thread."""

    def __init__(self, settings: SipSettings, to_loop: Callable[..., None]) -> None:
        self.settings, self.to_loop = settings, to_loop
        self.free: list[BusAudioPort] = []
        self.all: list[BusAudioPort] = []

    def attach(self, leg: CallLeg) -> BusAudioPort:
        """A port for ``leg``'s call: a free one, or a new one that joins the pool for good."""
        port = self.free.pop() if self.free else self._create()
        port.played, port.far = 0, FarEndLevel(port.far_window, port.measure_delay)
        port.echo = make_canceller(self.settings.echo_canceller, self.settings.echo_tail_ms)
        port.leg = leg  # last: from here on the clock thread moves this call's audio
        return port

    def release(self, port: BusAudioPort) -> None:
        """The call is over: the port goes quiet and back to the pool."""
        port.leg = None
        echo, port.echo = port.echo, None
        if echo is not None:
            echo.close()  # under its lock: a clock tick inside cancel() finishes first
        if port not in self.free:
            self.free.append(port)

    def close(self) -> None:
        """Drop every port (only once pjsua's calls are gone, before ``libDestroy``)."""
        for port in self.all:
            self.release(port)
            destroy_port(port)
        self.free.clear()
        self.all.clear()

    def _create(self) -> BusAudioPort:
        fmt = port_format()
        # the echo of a frame comes back through the caller's jitter buffer and ours: up to
        # twice sip.jitter_max_ms, plus a few frames of buffering on each side (measured: the
        # default 240 ms let a loaded machine's echo through the gate)
        far_window = (2 * self.settings.jitter_max_ms + 200) // FRAME_MS
        port = BusAudioPort(self.to_loop, far_window, self.settings.echo_reference == "delay")
        port.createPort(f"bus-{len(self.all)}", fmt)
        self.all.append(port)
        return port
