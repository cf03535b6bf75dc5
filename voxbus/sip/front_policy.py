"""What the SIP front answers before pjsip's transaction layer sees a request: the method table,
the door's admission of INVITEs, capacity and the rate of new calls.

Plain data and functions, no pjsua (``voxbus.sip.pjsip_front`` carries the decisions out inside
pjsip), so the policy is unit-tested without a SIP stack. Everything refused here is refused
statelessly, before pjsip allocates a transaction, a dialog, a call slot or RTP sockets for it: a
burst of INVITEs costs a parse and a datagram each, and cannot exhaust pjlib's socket table (a
pjlib assertion that aborts the process).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from voxbus.ratelimit import TokenBucket
from voxbus.sip.door import Door
from voxbus.sip.invite_checks import Refusal, invite_refusal, parse_head

__all__ = ["ALLOW", "Answer", "Drop", "FrontPolicy", "Pass", "Request", "TokenBucket"]

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, REFER, NOTIFY, INFO, UPDATE, PRACK"
PASSED_ON = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "REFER", "NOTIFY", "INFO", "UPDATE", "PRACK"})
IN_DIALOG_ONLY = frozenset({"BYE", "REFER", "NOTIFY", "INFO", "UPDATE", "PRACK"})  # RFC 3261 15.1.2
NOT_SERVED = frozenset({"REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE"})  # no registrar, presence or IM
TRANSACTION_S = 32.0  # RFC 3261 timer B/H: how long an INVITE's retransmissions may come
NOT_READY = Refusal(503, "Service Unavailable: not ready", {"Retry-After": "5"})


@dataclass(frozen=True)
class Request:
    """A request as the front sees it: its source (host:port) and its whole text."""

    source: str
    text: str


@dataclass(frozen=True)
class Pass:
    """Let pjsip (and pjsua) handle the request."""


@dataclass(frozen=True)
class Drop:
    """Consume the request without an answer (an ACK from a blocked source: ACKs get none)."""


@dataclass(frozen=True)
class Answer:
    """Answer statelessly with ``refusal``'s status; ``blocks``: a refusal that counts towards
    blocking its source (garbage does, a full gateway does not)."""

    refusal: Refusal
    blocks: bool = True

    @property
    def refused(self) -> bool:
        """An error status (an OPTIONS' 200 is no refusal, a digest challenge neither: no event,
        no count)."""
        return self.refusal.code >= 300 and self.refusal.code != 401


Decision = Pass | Drop | Answer


class FrontPolicy:
    """Decides, for each request, whether pjsip sees it. Called on the pjsua thread only."""

    def __init__(self, door: Door, new_calls_per_s: float, machine_max_calls: int = 0) -> None:
        self.door = door
        self.machine_max_calls = machine_max_calls  # 0: no limit across the machine's gateways
        self.new_calls = TokenBucket(new_calls_per_s, burst=door.max_calls)
        self.passed: OrderedDict[str, float] = OrderedDict()  # INVITE transactions let in, by time

    def judge(
        self,
        request: Request,
        calls_now: int,
        now: float,
        machine_calls_now: int = 0,
        missing: tuple[str, ...] = (),
    ) -> Decision:
        """``calls_now``: this gateway's calls; ``machine_calls_now``: those of every gateway of the
        machine (see ``voxbus.sip.machine_load``); ``missing``: roles a call needs that no worker
        serves now (see ``voxbus.sip.readiness``): INVITEs and OPTIONS probes get 503."""
        request_line, headers = parse_head(request.text.partition("\r\n\r\n")[0])
        method = request_line.split(" ", 1)[0].upper()
        values = dict(reversed(headers))  # the first of each header
        refused_source = self.door.source_refusal(request.source, now)
        if refused_source is not None:
            return Drop() if method == "ACK" else Answer(refused_source)
        if ";tag=" in values.get("to", "").replace(" ", "").lower() or method in ("ACK", "CANCEL"):
            return Pass()  # within a dialog or a transaction: pjsip matches it or answers 481
        if method in IN_DIALOG_ONLY:  # with no To tag it can match no dialog; pjsip would not answer
            return Answer(Refusal(481, "Call/Transaction Does Not Exist"))
        if method == "OPTIONS":
            if missing:  # a SIP front's probe: out of its pool until every role serves
                return Answer(NOT_READY, blocks=False)
            headers_out = {"Allow": ALLOW, "Accept": "application/sdp"}
            return Answer(Refusal(200, "OK", headers_out))
        if method in NOT_SERVED:
            return Answer(Refusal(405, "Method Not Allowed", {"Allow": ALLOW}))
        if method not in PASSED_ON:
            return Answer(Refusal(501, "Not Implemented", {"Allow": ALLOW}))
        if method != "INVITE":
            return Pass()
        branch = values.get("via", "").partition("branch=")[2].split(";")[0].strip()
        transaction = f"{values.get('call-id', '')} {branch}"
        return self._invite(request, transaction, calls_now, machine_calls_now, now, missing)

    def _invite(
        self,
        request: Request,
        transaction: str,
        calls_now: int,
        machine_calls_now: int,
        now: float,
        missing: tuple[str, ...],
    ) -> Decision:
        self._forget(now)
        if transaction in self.passed:
            return Pass()  # a retransmission of an INVITE let in: its transaction answers it
        refusal = invite_refusal(request.text)
        if refusal is not None:
            return Answer(refusal)
        refusal = self.door.auth_refusal(request.text, now)
        if refusal is not None:  # a challenge is how digest starts: it blocks no one
            return Answer(refusal, blocks=refusal.code != 401)
        if missing:  # the reason names no role: a caller learns nothing of the inside
            return Answer(NOT_READY, blocks=False)
        if calls_now >= self.door.max_calls:
            full = f"Service Unavailable: gateway full ({self.door.max_calls} calls)"
            return Answer(Refusal(503, full, {"Retry-After": "5"}), blocks=False)
        if self.machine_max_calls and machine_calls_now >= self.machine_max_calls:
            full = f"Service Unavailable: machine full ({self.machine_max_calls} calls)"
            return Answer(Refusal(503, full, {"Retry-After": "5"}), blocks=False)
        if not self.new_calls.take(now):
            busy = Refusal(503, "Service Unavailable: too many new calls a second", {"Retry-After": "1"})
            return Answer(busy, blocks=False)
        self.passed[transaction] = now
        return Pass()

    def _forget(self, now: float) -> None:
        while self.passed and next(iter(self.passed.values())) < now - TRANSACTION_S:
            self.passed.popitem(last=False)
