"""What both terminal front ends share: the colour rule, the farewell rule and a sending pace.

The interactive prompt (``terminal.py``) and the plain line mode (``piped.py``)
differ only in how they read a person's lines and print events; the rules here
keep them in step. Nothing here touches a socket.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TextIO


def use_color(stream: TextIO, *, disabled: bool = False) -> bool:
    """Colour only on a terminal, and never with ``--no-color`` or a non-empty ``NO_COLOR``."""
    if disabled or os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class Pace:
    """A token bucket that keeps a stream of lines under the server's flood limit.

    The server lets a client send a burst of 20 lines, then 5 a second, and
    drops what comes faster. Pasted text or a piped file must arrive whole, so
    lines leave at most ``burst`` at once and ``rate`` a second after that.
    """

    def __init__(self, rate: float = 4.0, burst: int = 10) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Return when one more line may be sent, sleeping only as long as the pace needs."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1:
                time.sleep((1 - self._tokens) / self.rate)
                self._tokens = 1.0
                self._stamp = time.monotonic()
            self._tokens -= 1
