"""A token bucket: the rate limit of the SIP front's new calls and of the bus's bad-message reports."""

from __future__ import annotations


class TokenBucket:
    """At most ``rate`` admissions a second on average, ``burst`` at once; time is passed in."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Trickle:
    """A burst, then about ``rate`` a second; counts what it held back in between."""

    def __init__(self, rate: float, burst: float) -> None:
        self.bucket = TokenBucket(rate, burst)
        self.held_back = 0

    def let_through(self, now: float) -> int | None:
        """None: held back. Otherwise how many were held back since the last one let through."""
        if not self.bucket.take(now):
            self.held_back += 1
            return None
        held, self.held_back = self.held_back, 0
        return held
