"""INVITEs that RFC 3261 says to refuse though a parser accepts them, generated after the
semantic cases of RFC 4475 ("SIP Torture Test Messages", section 3.3): the expected status of each.
"""

from __future__ import annotations

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {rtp} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def invite(
    target: str,
    local: str,
    branch: str,
    extra: list[str] | None = None,
    cseq: str = "1 INVITE",
    content_length: int | None = None,
    rtp: int = 40000,
    media_host: str = "127.0.0.1",
    codec: str = "0 PCMU/8000",
) -> bytes:
    """An INVITE from ``local`` (host:port) to voxbus at ``target``, changed by ``extra`` headers."""
    payload, rtpmap = codec.split(" ", 1)
    body = (
        SDP.format(rtp=rtp)
        .replace("c=IN IP4 127.0.0.1", f"c=IN IP4 {media_host}")
        .replace("RTP/AVP 0\r\na=rtpmap:0 PCMU/8000", f"RTP/AVP {payload}\r\na=rtpmap:{payload} {rtpmap}")
    )
    length = len(body) if content_length is None else content_length
    headers = [
        f"INVITE sip:voxbus@{target} SIP/2.0",
        f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:torture@{local}>;tag={branch}",
        f"To: <sip:voxbus@{target}>",
        f"Call-ID: {branch}@torture",
        f"CSeq: {cseq}",
        f"Contact: <sip:torture@{local}>",
        "Content-Type: application/sdp",
        *(extra or []),
        f"Content-Length: {length}",
    ]
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def cases(target: str, local: str) -> list[tuple[str, bytes, int]]:
    """(what is wrong, the INVITE, the status RFC 3261 asks for)."""
    body_length = len(SDP.format(rtp=40000))
    return [
        (
            "Content-Length larger than the body",
            invite(target, local, "clerr", content_length=body_length + 100),
            400,
        ),
        (
            "two Content-Length headers",
            invite(target, local, "twocl", extra=[f"Content-Length: {body_length}"]),
            400,
        ),
        ("two To headers", invite(target, local, "twoto", extra=[f"To: <sip:other@{target}>"]), 400),
        ("two Call-IDs", invite(target, local, "twocid", extra=["Call-ID: second@torture"]), 400),
        ("CSeq method not the request's", invite(target, local, "cseqm", cseq="1 OPTIONS"), 400),
        (
            "Require of an unknown extension",
            invite(target, local, "reqext", extra=["Require: nothing, siphon"]),
            420,
        ),
        ("Accept without SDP", invite(target, local, "accept", extra=["Accept: text/nonsense"]), 406),
        # PROTOS c07-sip: one such packet aborted the gateway (a pjlib assertion at 254 characters)
        ("an SDP address of 300 characters", invite(target, local, "longc", media_host="a" * 300), 400),
    ]


def out_of_dialog(method: str, target: str, local: str, branch: str = "") -> bytes:
    """A request outside any dialog, with nothing to refuse in it but its method."""
    branch = branch or method.lower()
    lines = [
        f"{method} sip:voxbus@{target} SIP/2.0",
        f"Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:probe@{local}>;tag={branch}",
        f"To: <sip:voxbus@{target}>",
        f"Call-ID: {branch}@probe",
        f"CSeq: 1 {method}",
        f"Contact: <sip:probe@{local}>",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
