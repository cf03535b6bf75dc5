"""Create and destroy pjsua2 audio ports while pjmedia's clock calls them (run as a program).

Each port joins the conference bridge, is clocked both ways for 20-60 ms (its callbacks raise
and catch an exception, as real code does, so that freed memory would be reused at once), and is
destroyed with :func:`voxbus.sip.port_life.destroy_port`. Prints one line: the ports made and the
ports whose Python callbacks ran after their destruction (0 when the destruction is sound). With
``--drop`` a port is only dropped, as Python code would naturally do: the process crashes within a
few hundred ports (``AttributeError`` from a half-freed port, then a segmentation fault).
"""

from __future__ import annotations

import argparse
import gc
import random
import time

import pjsua2 as pj

from voxbus.media.frames import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, SILENCE
from voxbus.sip.frames import read_vector, write_vector
from voxbus.sip.pjsetup import quiet_pjlib
from voxbus.sip.port_life import destroy_port, port_format


class CountingPort(pj.AudioMediaPort):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802 - pjsua2's name
        self.calls += 1
        try:
            raise LookupError(self)  # a traceback made and freed on the clock thread
        except LookupError:
            pass
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        write_vector(frame.buf, SILENCE)
        frame.size = FRAME_BYTES

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802
        self.calls += 1
        read_vector(frame.buf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ports", type=int, nargs="?", default=150)
    parser.add_argument("--drop", action="store_true", help="drop each port instead (crashes)")
    args = parser.parse_args()
    quiet_pjlib()
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt, cfg.uaConfig.mainThreadOnly = 0, False
    cfg.medConfig.clockRate = cfg.medConfig.sndClockRate = SAMPLE_RATE
    cfg.logConfig.level = cfg.logConfig.consoleLevel = 1
    ep.libInit(cfg)
    ep.libStart()
    ep.audDevManager().setNullDev()  # the null device's thread clocks the bridge
    speaker, microphone = ep.audDevManager().getPlaybackDevMedia(), ep.audDevManager().getCaptureDevMedia()
    fmt = port_format()
    late = 0
    for n in range(args.ports):
        port = CountingPort()
        port.createPort(f"churn-{n}", fmt)
        port.startTransmit(speaker)
        microphone.startTransmit(port)
        time.sleep(random.uniform(1, 3) * FRAME_MS / 1000)
        if args.drop:
            del port
            gc.collect()
        else:
            destroy_port(port)
            seen = port.calls
            time.sleep(2 * FRAME_MS / 1000)  # two more ticks of the clock
            late += port.calls != seen
            del port
        ep.libHandleEvents(0)
    print(f"ports {args.ports} late {late}", flush=True)
    ep.libDestroy()


if __name__ == "__main__":
    main()
