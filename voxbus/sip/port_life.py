"""A Python audio port's life: the format it is created with, and its end while pjmedia's clock
may still call it.

A pjsua2 ``AudioMediaPort`` subclassed in Python is a SWIG director: pjmedia's clock thread calls
its Python methods through a pointer to the Python object that the C++ side does not own. Dropping
the last Python reference starts the Python object's deallocation first; the C++ destructor runs
during it and releases the GIL while it waits for a callback in progress (the port's group lock).
A clock tick in that window calls a method of the half-freed Python object: an ``AttributeError``,
then a double free that corrupts the interpreter's heap (a segmentation fault, or later a hang in
unrelated code: an import whose traceback had become a cycle). Removing the port from the bridge
first does not help: pjmedia 2.14+ queues the removal until the clock's next tick.

:func:`destroy_port` runs the C++ destructor while the Python object is alive: a callback in
progress finishes on a whole object, later ticks find no port behind the bridge slot, and the
Python object is then freed like any other. ``tests/port_churn.py`` creates and destroys ports
under a running clock to show it (it crashes within a few hundred ports without this).
"""

from __future__ import annotations

import pjsua2 as pj

from voxbus.media.frames import FRAME_MS, SAMPLE_RATE


def port_format() -> pj.MediaFormatAudio:
    """What every port of ours carries: voxbus's frames (16 kHz mono 16-bit, FRAME_MS each)."""
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.clockRate, fmt.channelCount, fmt.bitsPerSample = SAMPLE_RATE, 1, 16
    fmt.frameTimeUsec = FRAME_MS * 1000
    return fmt


def destroy_port(port: pj.AudioMediaPort) -> None:
    """Destroy ``port``'s C++ side now (on a pjsua-registered thread, pjsua alive). The Python
    object must not be used afterwards, except to drop it: its pointer no longer owns anything."""
    pj.AudioMediaPort.__swig_destroy__(port)  # disowns the pointer: the GC will not free it again
