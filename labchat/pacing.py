"""A token bucket: ``burst`` events at once, then ``rate`` a second, on whatever clock it is given.

The bucket holds up to ``burst`` tokens and gains ``rate`` of them a second;
each event takes one. It only counts: it never sleeps, starts no thread and
touches no socket, so a server can ask it whether a sender may go on and a
terminal can ask how long to wait. The time comes from the ``clock`` passed in
(``time.monotonic`` by default), so a test can drive it with a fake one.

The rule it keeps: a bucket is refilled lazily, from the clock, whenever it is
asked, and never holds more than ``burst``. It is not thread-safe by itself:
whoever shares one between threads holds a lock around every call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

# Seconds early that still count as on time. Clock readings are floats, so a bucket
# that waited exactly ``delay()`` seconds can come up short by the clock's last digit
# (about 1e-10 s on a clock that reads 10**6, whatever the rate). Counting a shortfall
# under a microsecond as none keeps "wait ``delay()``, then ``take()``" always true,
# at no cost a person or a server could notice.
_ON_TIME = 1e-6


class TokenBucket:
    """Up to ``burst`` tokens, refilled at ``rate`` a second; ``take()`` spends one if there is one."""

    __slots__ = ("rate", "burst", "_clock", "_level", "_stamp")

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a number of tokens a second above 0, not {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be a whole number of tokens, at least 1, not {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._level = float(burst)
        self._stamp = clock()

    def _refill(self) -> float:
        now = self._clock()
        if now > self._stamp:  # a clock that stands still or steps back adds nothing
            self._level = min(float(self.burst), self._level + (now - self._stamp) * self.rate)
            self._stamp = now
        return self._level

    @property
    def tokens(self) -> float:
        """How many tokens the bucket holds now (a fraction while one is growing back)."""
        return self._refill()

    def _until(self, level: float) -> float:
        """Seconds until the bucket holds ``level`` tokens; 0.0 if it does now (or all but on time)."""
        wait = (level - self._refill()) / self.rate
        return wait if wait >= _ON_TIME else 0.0

    @property
    def full(self) -> bool:
        """True when the bucket holds ``burst`` tokens: the sender has been quiet long enough."""
        return self._until(self.burst) == 0.0

    def take(self) -> bool:
        """Spend one token and say True, or say False (and spend nothing) if there is none yet."""
        if self._until(1.0) > 0.0:
            return False
        self._level = max(0.0, self._level - 1)
        return True

    def delay(self) -> float:
        """Seconds until a token is there to take; 0.0 if one is there now."""
        return self._until(1.0)

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate:g}, burst={self.burst}, tokens={self.tokens:.3f})"
