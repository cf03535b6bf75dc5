"""Mutated SIP messages for fuzzing a SIP door: well-formed seeds (INVITE with SDP, OPTIONS,
REGISTER, out-of-dialog BYE and CANCEL, MESSAGE), each changed by one to three mutations picked
from a fixed set (bytes flipped, lines dropped or repeated, header values replaced by hostile ones,
Content-Length lies, SDP fields broken, line endings changed, the message truncated or padded to
the size limit). Deterministic for a seed, so a crash found is a crash reproduced.

Every message keeps a Call-ID of its own (``fz<n>@fuzz``) unless a mutation hits it, so that the
answers can be counted per message.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tests.hostile_sip import invite

UDP_MAX = 65507
METHODS = ("INVITE", "INVITE", "INVITE", "OPTIONS", "REGISTER", "BYE", "CANCEL", "MESSAGE")

HOSTILE_VALUES: tuple[bytes, ...] = (
    b"",
    b" ",
    b"%s%s%s%n%n%x",
    b"\x00\x00\x00",
    b"\xff\xfe\xfd\xc3\x28",
    b"<<<<<<<<>>>>>>>>",
    b";;;;;;;;;;;;=;=;=",
    b"99999999999999999999999999",
    b"-1",
    b"0",
    b"4294967296",
    b"sip:",
    b"sip:@:0",
    b"<sip:a@[::ffff:999.1.1.1]:99999>",
    b'"' * 64,
    b"\\" * 64,
    b"a" * 1024,
    b"SIP/2.0/UDP 127.0.0.1;branch=",
    b"\r\n\r\n",
    b"=?utf-8?B?AAAA?=",
)


def seed_message(method: str, target: str, local: str, n: int) -> bytes:
    """A well-formed request of ``method`` to voxbus at ``target`` from ``local``."""
    branch = f"fz{n}"
    if method == "INVITE":
        return invite(target, local, branch).replace(b"@torture", b"@fuzz")
    body = b"hello voxbus" if method == "MESSAGE" else b""
    lines = [
        f"{method} sip:voxbus@{target} SIP/2.0",
        f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:fuzz@{local}>;tag={branch}",
        f"To: <sip:voxbus@{target}>",
        f"Call-ID: {branch}@fuzz",
        f"CSeq: 1 {method}",
        f"Contact: <sip:fuzz@{local}>",
        *(["Content-Type: text/plain"] if body else []),
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _split(message: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = message.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def _join(lines: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def flip_bytes(rng: random.Random, message: bytes) -> bytes:
    data = bytearray(message)
    for _ in range(rng.randint(1, 12)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def drop_line(rng: random.Random, message: bytes) -> bytes:
    lines, body = _split(message)
    del lines[rng.randrange(len(lines))]
    return _join(lines, body)


def repeat_header(rng: random.Random, message: bytes) -> bytes:
    lines, body = _split(message)
    at = rng.randrange(len(lines))
    lines[at:at] = [lines[at]] * rng.choice((1, 2, 50, 400))
    return _join(lines, body)


def hostile_value(rng: random.Random, message: bytes) -> bytes:
    lines, body = _split(message)
    at = rng.randrange(len(lines))
    if at == 0:  # the request line: method, URI or version
        parts = lines[0].split(b" ")
        parts[rng.randrange(len(parts))] = rng.choice(HOSTILE_VALUES)
        lines[0] = b" ".join(parts)
    else:
        name = lines[at].split(b":", 1)[0]
        lines[at] = name + b": " + rng.choice(HOSTILE_VALUES)
    return _join(lines, body)


def lie_about_length(rng: random.Random, message: bytes) -> bytes:
    lines, body = _split(message)
    value = rng.choice((b"-5", b"abc", b"999999", b"0", str(len(body) + 1).encode(), b"1e3", b""))
    lines = [
        b"Content-Length: " + value if line.lower().startswith(b"content-length") else line for line in lines
    ]
    return _join(lines, body)


def break_sdp(rng: random.Random, message: bytes) -> bytes:
    lines, body = _split(message)
    if not body.startswith(b"v=0"):
        return hostile_value(rng, message)
    sdp = body.split(b"\r\n")
    choice = rng.randrange(6)
    if choice == 0:
        port = rng.choice(HOSTILE_VALUES)
        sdp = [b"m=audio " + port + b" RTP/AVP 0" if s.startswith(b"m=") else s for s in sdp]
    elif choice == 1:
        sdp = [b"c=IN IP4 " + rng.choice(HOSTILE_VALUES) if s.startswith(b"c=") else s for s in sdp]
    elif choice == 2:
        sdp += [b"m=audio 4000%d RTP/AVP 0 8 9" % i for i in range(rng.choice((2, 30, 300)))]
    elif choice == 3:
        codec = rng.choice(HOSTILE_VALUES)
        sdp += [b"a=rtpmap:%d %s/%d" % (rng.randrange(-5, 300), codec, rng.randrange(99999))]
    elif choice == 4:
        del sdp[rng.randrange(len(sdp))]
    else:
        sdp = [s.replace(b"=", b"", 1) if rng.random() < 0.3 else s for s in sdp]
    new_body = b"\r\n".join(sdp)
    lines = [
        b"Content-Length: %d" % len(new_body) if line.lower().startswith(b"content-length") else line
        for line in lines
    ]
    return _join(lines, new_body)


def change_line_endings(rng: random.Random, message: bytes) -> bytes:
    ending = rng.choice((b"\n", b"\r", b"\n\r", b"\r\n\t", b"\r\n "))
    return message.replace(b"\r\n", ending)


def truncate(rng: random.Random, message: bytes) -> bytes:
    return message[: rng.randrange(1, max(len(message), 2))]


def pad_to_size(rng: random.Random, message: bytes) -> bytes:
    lines, body = _split(message)
    size = rng.choice((1300, 4096, 16384, UDP_MAX - len(message) - 64))
    lines.insert(rng.randrange(1, len(lines) + 1), b"X-Pad: " + b"p" * max(size, 1))
    return _join(lines, body)


MUTATIONS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    flip_bytes,
    drop_line,
    repeat_header,
    hostile_value,
    lie_about_length,
    break_sdp,
    change_line_endings,
    truncate,
    pad_to_size,
)


def mutated_messages(count: int, target: str, local: str, seed: int = 4475) -> list[tuple[str, str, bytes]]:
    """``count`` mutated requests: (Call-ID as sent, the mutations' names, the message)."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        method = rng.choice(METHODS)
        message = seed_message(method, target, local, n)
        names = []
        for mutate in rng.sample(MUTATIONS, rng.choice((1, 1, 2, 3))):
            message = mutate(rng, message)
            names.append(mutate.__name__)
        out.append((f"fz{n}@fuzz", f"{method}: {'+'.join(names)}", message[:UDP_MAX]))
    return out
