"""The SIP front: a pjsip module ahead of pjsip's transaction layer, where voxbus refuses what it
will not serve before pjsip or pjsua allocates anything for it.

pjsua2 has no hook before a call exists (``onIncomingCall`` comes after pjsua created the call and
its RTP sockets), and a burst of INVITEs then exhausts pjlib's socket table, an assertion that
aborts the whole process. pjsip's own extension point is a module (``pjsip_module``) with an
``on_rx_request`` callback: registered here through ctypes from pjsua2's native library, at a
priority just ahead of the transaction layer, it sees every parsed request on every transport and
either answers it statelessly (``pjsip_endpt_respond_stateless``) or passes it on. What it
decides is :class:`voxbus.sip.front_policy.FrontPolicy`'s.

``pjsip_rx_data`` is a C struct whose layout depends on compile-time sizes, so the two fields read
here (the message text, the source address) are located by a probe when the module is installed:
a request from a socket of our own, whose text and source port are known, is found in the struct
and the offsets are checked against it. A layout that does not check out leaves the front off (an
error line and event), and the gateway's checks in ``onIncomingCall`` still refuse bad INVITEs.

Threads: the callback runs on the pjsua thread, inside ``libHandleEvents``.
"""

from __future__ import annotations

import ctypes as c
import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from voxbus.logs import get_logger
from voxbus.sip.echo import native_library
from voxbus.sip.front_policy import Answer, Decision, Pass, Request
from voxbus.sip.invite_checks import Refusal

__all__ = ["PjsipFront", "RxLayout"]

log = get_logger(__name__)
PRIORITY = 15  # PJSIP_MOD_PRIORITY_TSX_LAYER (16) - 1: before transactions, dialogs and pjsua
PROBE_PREFIX = "voxbus-front-probe-"
SEARCH_BYTES = 1 << 17  # how far into pjsip_rx_data the probe looks for the message buffer


class PjStr(c.Structure):
    _fields_ = [("ptr", c.c_char_p), ("slen", c.c_ssize_t)]


ON_RX = c.CFUNCTYPE(c.c_int, c.c_void_p)


class PjsipModule(c.Structure):
    """``struct pjsip_module`` (pjsip/sip_module.h), stable across pjsip 2.x."""

    _fields_ = [
        ("prev", c.c_void_p),
        ("next", c.c_void_p),
        ("name", PjStr),
        ("id", c.c_int),
        ("priority", c.c_int),
        ("load", c.c_void_p),
        ("start", c.c_void_p),
        ("stop", c.c_void_p),
        ("unload", c.c_void_p),
        ("on_rx_request", ON_RX),
        ("on_rx_response", c.c_void_p),
        ("on_tx_request", c.c_void_p),
        ("on_tx_response", c.c_void_p),
        ("on_tsx_state", c.c_void_p),
    ]


def _declare(lib: c.CDLL) -> c.CDLL:
    lib.pjsua_get_pjsip_endpt.restype = c.c_void_p
    lib.pjsip_endpt_register_module.argtypes = [c.c_void_p, c.c_void_p]
    lib.pjsip_endpt_unregister_module.argtypes = [c.c_void_p, c.c_void_p]
    lib.pjsip_endpt_respond_stateless.argtypes = [c.c_void_p] * 2 + [c.c_int] + [c.c_void_p] * 3
    lib.pjsip_generic_string_hdr_create.restype = c.c_void_p
    lib.pjsip_generic_string_hdr_create.argtypes = [c.c_void_p, c.c_void_p, c.c_void_p]
    return lib


@dataclass(frozen=True)
class RxLayout:
    """Where ``msg_info.msg_buf`` sits in ``pjsip_rx_data``; the fields around it follow from the
    struct (``pkt_info.src_name[46]``, ``src_port``, then ``msg_info.msg_buf`` and ``len``)."""

    msg_buf: int

    def read(self, rdata: int) -> Request:
        buf = c.c_void_p.from_address(rdata + self.msg_buf).value or 0
        length = c.c_int.from_address(rdata + self.msg_buf + 8).value
        port = c.c_int.from_address(rdata + self.msg_buf - 8).value
        host = c.string_at(rdata + self.msg_buf - 56, 46).split(b"\0", 1)[0].decode("ascii", "replace")
        text = c.string_at(buf, max(0, min(length, SEARCH_BYTES))).decode("utf-8", "surrogateescape")
        return Request(source=f"[{host}]:{port}" if ":" in host else f"{host}:{port}", text=text)

    @classmethod
    def find(cls, rdata: int, marker: bytes, source: str) -> RxLayout | None:
        """The layout, from a probe request whose text holds ``marker`` and came from ``source``."""
        raw = c.string_at(rdata, SEARCH_BYTES)
        packet = raw.find(marker)
        if packet < 0:
            return None
        start = raw.rfind(b"OPTIONS ", 0, packet)  # the probe's request line
        pointer = struct.pack("<Q", rdata + start)
        at = raw.find(pointer, packet)
        while at >= 0:
            if at % 8 == 0:
                layout = cls(at)
                seen = layout.read(rdata)
                if seen.source == source and marker.decode() in seen.text:
                    return layout
            at = raw.find(pointer, at + 1)
        return None


class PjsipFront:
    """The module, its probe and its answers. ``judge`` decides; ``refused`` is told of each
    refusal (the gateway's log line, ``sip.rejected`` event and block counter)."""

    def __init__(
        self,
        judge: Callable[[Request, float], Decision],
        refused: Callable[[str, int, str, bool], None],
    ) -> None:
        self.judge, self.refused = judge, refused
        self.lib = _declare(native_library())
        self.layout: RxLayout | None = None
        self.answered: dict[int, int] = {}  # status -> count, for the closing figures and tests
        self._probe = f"{PROBE_PREFIX}{uuid.uuid4().hex}".encode()
        self._probe_source = ""
        self._callback = ON_RX(self._on_rx_request)  # kept: pjsip holds a pointer to it
        self._name = b"mod-voxbus-front"
        self.module = PjsipModule(name=PjStr(self._name, len(self._name)), id=-1, priority=PRIORITY)
        self.module.on_rx_request = self._callback

    @property
    def active(self) -> bool:
        return self.layout is not None

    def install(self, address: str, port: int, transport: str, poll: Callable[[int], None]) -> None:
        """Register the module and find the layout with a probe (on the pjsua thread, after
        ``libStart``; ``poll`` runs pjsua's event loop for a few milliseconds)."""
        endpoint = self.lib.pjsua_get_pjsip_endpt()
        status = self.lib.pjsip_endpt_register_module(endpoint, c.byref(self.module))
        if status != 0:
            log.error("sip front off: pjsip refused the module", status=status)
            return
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, kind) as probe:
            probe.bind((address, 0))
            host, local_port = probe.getsockname()[:2]
            self._probe_source = f"[{host}]:{local_port}" if ":" in host else f"{host}:{local_port}"
            probe.connect((address, port))
            probe.sendall(self._probe_request(host, local_port, transport))
            deadline = time.monotonic() + 2.0
            while self.layout is None and time.monotonic() < deadline:
                poll(20)
        if self.layout is None:
            log.error("sip front off: pjsip_rx_data's layout not recognised; the door checks calls only")

    def _probe_request(self, host: str, port: int, transport: str) -> bytes:
        marker = self._probe.decode()
        lines = [
            f"OPTIONS sip:{marker}@{host} SIP/2.0",
            f"Via: SIP/2.0/{transport.upper()} {host}:{port};branch=z9hG4bK{marker}",
            "Max-Forwards: 70",
            f"From: <sip:probe@{host}>;tag=probe",
            f"To: <sip:{marker}@{host}>",
            f"Call-ID: {marker}",
            "CSeq: 1 OPTIONS",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _on_rx_request(self, rdata: int) -> int:
        """pjsip's callback: True (1) when the request was answered or dropped here."""
        try:
            if self.layout is None:
                layout = RxLayout.find(rdata, self._probe, self._probe_source)
                if layout is None:
                    return 0
                self.layout = layout
                return 1  # the probe needs no answer
            request = self.layout.read(rdata)
            decision = self.judge(request, time.monotonic())
            if isinstance(decision, Pass):
                return 0
            if isinstance(decision, Answer):
                refusal = decision.refusal
                self._answer(rdata, refusal)
                if decision.refused:
                    self.refused(request.source, refusal.code, refusal.reason, decision.blocks)
            return 1
        except Exception as exc:  # an exception must not cross into pjsip: pass the request on
            log.error("sip front failed on a request; passed on to pjsip", error=repr(exc))
            return 0

    def _answer(self, rdata: int, refusal: Refusal) -> None:
        pool = c.c_void_p.from_address(rdata).value  # tp_info.pool: lives as long as the request
        kept: list[object] = []  # the strings pjsip reads during the call

        def pj_str(text: str) -> PjStr:
            data = text.encode()
            kept.append(data)
            value = PjStr(data, len(data))
            kept.append(value)
            return value

        head = (c.c_void_p * 2)()  # a list head: only its prev/next are read
        head_address = c.addressof(head)
        previous = head_address
        for name, value in refusal.headers.items():
            header = self.lib.pjsip_generic_string_hdr_create(
                pool, c.byref(pj_str(name)), c.byref(pj_str(value))
            )
            links = (c.c_void_p * 2).from_address(header)
            links[0], links[1] = previous, head_address
            (c.c_void_p * 2).from_address(previous)[1] = header
            head[0] = header
            previous = header
        if not refusal.headers:
            head[0] = head[1] = head_address
        endpoint = self.lib.pjsua_get_pjsip_endpt()
        reason = pj_str(refusal.reason)
        self.lib.pjsip_endpt_respond_stateless(
            endpoint, rdata, refusal.code, c.byref(reason), head_address, None
        )
        self.answered[refusal.code] = self.answered.get(refusal.code, 0) + 1

    def uninstall(self) -> None:
        """Unregister before ``libDestroy`` (on the pjsua thread)."""
        if self.module.id >= 0:
            self.lib.pjsip_endpt_unregister_module(self.lib.pjsua_get_pjsip_endpt(), c.byref(self.module))
