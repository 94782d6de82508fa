"""What both terminal front ends share: the colour rule, a sending pace, and the wire tap.

The interactive prompt (``terminal.py``) and the plain line mode (``piped.py``)
differ only in how they read a person's lines and print events; the rules here
keep them in step. Nothing here touches a socket; the pace counts with
``pacing.TokenBucket``, the same bucket the server paces senders with.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TextIO

from .pacing import TokenBucket


def use_color(stream: TextIO, *, disabled: bool = False) -> bool:
    """Colour only on a terminal, and never with ``--no-color`` or a non-empty ``NO_COLOR``."""
    if disabled or os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class Pace:
    """Keeps a stream of lines under the server's rate: ``burst`` lines at once, then ``rate`` a second.

    The server takes a burst of 20 lines from a client, then 5 a second. Pasted
    text or a piped file must arrive whole, so lines leave at most ``burst`` at
    once and ``rate`` a second after that. One TokenBucket does the counting;
    ``wait()`` sleeps as long as it says. Safe to share between threads: they
    take their turns. ``clock`` and ``sleep`` are ``time.monotonic`` and
    ``time.sleep`` unless a test gives its own.
    """

    def __init__(
        self,
        rate: float = 4.0,
        burst: int = 10,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._bucket = TokenBucket(rate, burst, clock=clock)
        self._sleep = sleep
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._bucket.rate

    @property
    def burst(self) -> int:
        return self._bucket.burst

    def wait(self) -> None:
        """Return when one more line may be sent, sleeping only as long as the pace needs."""
        with self._lock:  # held while sleeping: the next caller's turn comes after this one's
            while not self._bucket.take():
                self._sleep(self._bucket.delay())


class WireTap:
    """Every line as it travels, held from the first byte until a face shows them, then shown as they come.

    Given to ``ChatClient(wire=...)`` before the handshake, so the banner and the
    hello are on show too; ``attach(show)`` prints what was held, in order.
    """

    def __init__(self) -> None:
        self._held: list[tuple[str, bytes]] = []
        self._show: Callable[[str, bytes], object] | None = None
        self._lock = threading.Lock()

    def __call__(self, direction: str, line: bytes) -> None:
        with self._lock:
            if self._show is None:
                self._held.append((direction, line))
                return
            show = self._show
        show(direction, line)

    def attach(self, show: Callable[[str, bytes], object]) -> None:
        with self._lock:
            held, self._held = self._held, []
            self._show = show
            for direction, line in held:
                show(direction, line)
