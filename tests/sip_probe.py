"""A SIP prober for hostile-input runs: sends requests from one UDP socket, records the first final
answer per Call-ID, ends every call a 2xx set up (ACK, then BYE, as a caller hanging up at once),
and counts what came back that is not a proper SIP response."""

from __future__ import annotations

import asyncio
import re
import socket
import time

UDP_MAX = 65507
STATUS_LINE = re.compile(rb"^SIP/2\.0 (\d{3}) [^\r\n]*\r?\n")  # Kamailio echoes a bare-LF request's LFs
REQUIRED = (b"via", b"from", b"to", b"call-id", b"cseq")  # RFC 3261 8.2.6.2: copied into a response
REQUEST_LINE = re.compile(rb"^[A-Z]+ sips?:\S+ SIP/2\.0\r\n")
COMPACT = {b"v": b"via", b"f": b"from", b"t": b"to", b"i": b"call-id"}


def header_name(line: bytes) -> bytes:
    """A header line's name, lower-case, compact forms spelt out ("i" -> "call-id")."""
    name = line.split(b":", 1)[0].strip().lower()
    return COMPACT.get(name, name)


def header_names(response: bytes) -> set[bytes]:
    head = re.split(rb"\r?\n\r?\n", response, maxsplit=1)[0]
    return {header_name(line) for line in re.split(rb"\r?\n", head)[1:] if b":" in line}


def ok_for(request: bytes) -> bytes:
    """A 200 OK to a request: its Via, From, To, Call-ID and CSeq copied (RFC 3261 8.2.6.2)."""
    head = request.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    copied = [line for line in head if b":" in line and header_name(line) in REQUIRED]
    return b"\r\n".join([b"SIP/2.0 200 OK", *copied, b"Content-Length: 0"]) + b"\r\n\r\n"


def is_proper_response(data: bytes) -> bool:
    """A status line and the headers every response carries."""
    return bool(STATUS_LINE.match(data)) and set(REQUIRED) <= header_names(data)


class Prober:
    """Sends requests to ``target`` and collects every answer by Call-ID.

    ``ignore`` names methods whose answers are not counted (the teardowns a suite sends itself)."""

    def __init__(self, target: tuple[str, int], ignore: tuple[str, ...] = ("CANCEL", "ACK", "BYE")) -> None:
        self.target = target
        methods = "|".join(ignore).encode()
        self.ignore = re.compile(rb"(?im)^cseq\s*:\s*\d+\s+(" + methods + rb")\b") if ignore else None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.finals: dict[str, int] = {}
        self.provisional: set[str] = set()
        self.improper: list[bytes] = []  # datagrams back that are no proper SIP response or request
        self.requests: list[bytes] = []  # requests the target sent us (a BYE ending a call it set up)

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 65535)
            if REQUEST_LINE.match(data) and set(REQUIRED) <= header_names(data):
                self.requests.append(data[:300])
                if data.startswith(b"BYE "):  # answered, or it is sent again for 32 s
                    await self.send(ok_for(data))
                continue
            if not is_proper_response(data):
                self.improper.append(data[:300])
                continue
            match = STATUS_LINE.match(data)
            call_id = re.search(rb"(?im)^(?:call-id|i)\s*:\s*(\S+)", data)
            if not match or not call_id or (self.ignore and self.ignore.search(data)):
                continue
            status, key = int(match.group(1)), call_id.group(1).decode(errors="replace")
            if status < 200:
                self.provisional.add(key)
            elif key not in self.finals:
                self.finals[key] = status
                if status < 300 and re.search(rb"(?im)^cseq\s*:\s*\d+\s+INVITE", data):
                    for method, cseq in (("ACK", 1), ("BYE", 2)):  # a call was set up: end it at once
                        await self.send(self._in_dialog(data, method, cseq))

    def _in_dialog(self, response: bytes, method: str, cseq: int) -> bytes:
        """An ACK or BYE within the dialog a 2xx set up (RFC 3261 12.2.1.1, no route set)."""
        text = response.decode(errors="replace")
        header = {}
        for line in text.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            header.setdefault(name.strip().lower(), value.strip())
        contact = re.search(r"<([^>]+)>", header.get("contact", "")) or re.search(
            r"(\S+)", header.get("contact", "")
        )
        target = contact.group(1) if contact else f"sip:voxbus@{self.target[0]}:{self.target[1]}"
        lines = [
            f"{method} {target} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{method.lower()}{time.monotonic_ns()}",
            "Max-Forwards: 70",
            f"From: {header.get('from', '')}",
            f"To: {header.get('to', '')}",
            f"Call-ID: {header.get('call-id', '')}",
            f"CSeq: {cseq} {method}",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def send(self, message: bytes) -> bool:
        if len(message) > UDP_MAX:
            return False
        await asyncio.get_running_loop().sock_sendto(self.sock, message, self.target)
        return True
