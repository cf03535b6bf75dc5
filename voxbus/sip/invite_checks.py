"""Checks on an INVITE's text that pjsip does not make: what RFC 3261 says to refuse, and RFC 4475
("SIP Torture Test Messages") shows pjsua accepting with 200 all the same.

A plain function on the raw message (``SipRxData.wholeMsg``), asked by the gateway before it
answers an incoming call: a wrong Content-Length (or several), a single-value header given twice,
a CSeq whose method is not the request's, a Require of an extension voxbus does not support (420,
with ``Unsupported``), an Accept without SDP (406), and an SDP address of 254 characters or more,
on which pjlib aborts the whole process (an assertion) when the call is answered. Parsing here is
deliberately narrow: pjsip has already parsed the message; this only counts headers and compares
values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# RFC 3261 7.3.3: compact forms
COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
}
# headers that may appear once only (RFC 3261 7.3.1; the ones a call depends on)
SINGLE_VALUE = ("call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type")
SUPPORTED_EXTENSIONS = frozenset({"timer", "replaces", "norefersub", "100rel"})  # what pjsua offers
MAX_ADDRESS = (
    254  # pjlib aborts the process on a longer host name (an assertion in pj_sockaddr_in_set_str_addr)
)
SDP_TYPES = frozenset({"application/sdp", "application/*", "*/*"})


@dataclass
class Refusal:
    """The answer to a call voxbus will not take."""

    code: int  # SIP status
    reason: str  # reason phrase, also the sip.rejected event's reason
    headers: dict[str, str] = field(default_factory=dict)  # extra headers of the answer


def parse_head(head: str) -> tuple[str, list[tuple[str, str]]]:
    """The request line and the headers (lower-case names, compact forms expanded), unfolded."""
    lines: list[str] = []
    for line in head.split("\n"):
        line = line.rstrip("\r")
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()  # a folded continuation line
        else:
            lines.append(line)
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            name = name.strip().lower()
            headers.append((COMPACT.get(name, name), value.strip()))
    return lines[0] if lines else "", headers


def split_list(value: str) -> list[str]:
    """A header's comma-separated values, commas inside quotes or <...> left alone."""
    parts, depth, quoted, current = [], 0, False, ""
    for char in value:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            depth += 1
        elif not quoted and char == ">":
            depth -= 1
        if char == "," and not quoted and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def invite_refusal(raw: str) -> Refusal | None:
    """Why an INVITE must be refused although pjsip parsed it, or None."""
    head, sep, body = raw.partition("\r\n\r\n")
    if not sep:
        head, _, body = raw.partition("\n\n")
    request_line, headers = parse_head(head)
    method = request_line.split(" ", 1)[0]
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name, []).append(value)
    for name in SINGLE_VALUE:
        found = values.get(name, [])
        if len(found) > 1 or (
            name in ("from", "to", "call-id") and any(len(split_list(v)) > 1 for v in found)
        ):
            return Refusal(400, f"Bad Request: more than one {name.title()}")
    cseq = values.get("cseq", [""])[0].split()
    if len(cseq) != 2 or cseq[1] != method:
        return Refusal(400, "Bad Request: CSeq method does not match the request")
    length = values.get("content-length", [None])[0]
    if length is not None:
        if not length.isdigit():
            return Refusal(400, "Bad Request: unreadable Content-Length")
        if int(length) > len(body.encode("utf-8", "surrogateescape")):
            return Refusal(400, "Bad Request: Content-Length larger than the body")
    required = [o.lower() for v in values.get("require", []) for o in split_list(v)]
    unknown = [o for o in required if o not in SUPPORTED_EXTENSIONS]
    if unknown:
        return Refusal(420, "Bad Extension", {"Unsupported": ", ".join(unknown)})
    accepted = [a.split(";")[0].strip().lower() for v in values.get("accept", []) for a in split_list(v)]
    if "accept" in values and not SDP_TYPES.intersection(accepted):
        return Refusal(406, "Not Acceptable: voxbus answers with SDP", {"Accept": "application/sdp"})
    if any(len(token) >= MAX_ADDRESS for token in body.split()):  # addresses in c=, o=, a=rtcp...
        return Refusal(400, f"Bad Request: an SDP value of {MAX_ADDRESS} characters or more")
    return None


def request_user(whole_msg: str) -> str:
    """The user part of the request URI (``INVITE sip:2000@host SIP/2.0`` -> ``2000``): the number
    called. Empty if there is none; only characters a phone number or SIP user name may hold."""
    first = whole_msg.split("\r\n", 1)[0].split("\n", 1)[0].split(" ")
    uri = first[1] if len(first) >= 3 else ""
    scheme, _, rest = uri.partition(":")
    if scheme.lower() not in ("sip", "sips", "tel") or "@" not in rest and scheme.lower() != "tel":
        return ""
    user = rest.split("@", 1)[0].split(";", 1)[0]
    return user if all(c.isalnum() or c in "+-_.*#" for c in user) and len(user) <= 64 else ""
