"""The server's bounds, each with its reason, and the budget of connections not yet joined.

Nothing here sends or receives. These numbers are what keep one room usable by
everyone when a few clients misbehave: each bounds memory or time, and
``docs/security.md`` lists them all. Connections that have not said hello take
no room slot; they share a budget of their own, and when it is full the newest
connection takes the place of the oldest one from whichever address holds the
most, so a flood from one machine evicts itself and never a real student.
"""

from __future__ import annotations

import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from ..keepalive import keep_alive

# A client's outbox past this (or a quarter of the outbox limit, if that is less) while it
# is still reading slows every sender down (they stop being read) until it drains: a burst
# waits, nobody is cut off.
SOFT_OUTBOX = 256 * 1024

# A client's outbox past this is cut off whatever it is doing: the hard bound on
# the memory one client can hold (the default of ChatServer(outbox_limit=...)).
OUTBOX_LIMIT = 1024 * 1024

# Bytes waiting this long with none leaving: the client is stuck, and is cut off.
STALL_TIMEOUT = 10.0

# A reader that made no progress for this long no longer slows the senders down:
# it is on its way to being cut off, and the room must not wait for it.
STALL_GRACE = 0.5

# The longest a sender is held back at a time for readers over SOFT_OUTBOX. Past it,
# it goes on, and a reader that cannot keep up at all grows to OUTBOX_LIMIT and is cut off.
CONGESTION_WAIT = 2.0

# How often a sender held back for slow readers looks again.
CONGESTION_POLL = 0.01

# Once a connection is leaving, its last bytes have this long to go out.
LINGER = 2.0

# Connections that have not joined yet, across all addresses (ChatServer(max_pending=...)).
MAX_PENDING = 64

# A TLS server waits this long for a client's handshake before telling a plain client in words;
# once the handshake has begun, it and the hello have ``hello_timeout`` from its first byte.
TLS_SNIFF = 2.0

# How often the server looks at its timers (hello deadlines, stuck clients) when nothing happens.
TICK = 0.25

# The kernel's send buffer for each client (Linux doubles the figure). Left to grow on its
# own it reaches 4 MiB for a client that stops reading, and the outbox bounds would take many
# seconds to notice it; this bounds the kernel's share and costs a client that keeps up
# nothing measurable (see docs/performance.md).
SEND_BUFFER = 128 * 1024

# TCP keepalive (labchat.keepalive): a peer that vanished without a FIN (a laptop lid closed)
# is noticed within a minute. With bytes in flight, TCP_USER_TIMEOUT gives up after 45 s
# without an acknowledgement (a server's sends are never held back on purpose, as a paced
# client's are: a client does not set it).
USER_TIMEOUT_MS = 45_000


def tune(sock: socket.socket) -> None:
    """Options for one accepted connection; OSError if the peer has already gone."""
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    keep_alive(sock, USER_TIMEOUT_MS)


class PendingBudget:
    """Connections that have not joined yet, bounded; thread-safe.

    ``admit(key, address, silent)`` returns the key of a connection to evict to
    make room (or None): from the address holding the most pending ones, the oldest
    that has sent nothing yet (``silent(key)``), else the oldest. A person halfway
    through a nick outlives a burst of idle or already closed connections from the
    same address (one JupyterHub's, say), not only from another.
    """

    def __init__(self, limit: int = MAX_PENDING) -> None:
        if limit < 1:
            raise ValueError("max_pending must be at least 1")
        self.limit = limit
        self._lock = threading.Lock()
        self._by_address: dict[str, OrderedDict[Hashable, None]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def admit(
        self, key: Hashable, address: str, silent: Callable[[Hashable], bool] = lambda key: True
    ) -> Hashable | None:
        with self._lock:
            victim = None
            if self._count >= self.limit:
                crowded = max(self._by_address, key=lambda a: len(self._by_address[a]))
                waiting = self._by_address[crowded]
                victim = next((k for k in waiting if silent(k)), None) or next(iter(waiting))
                self._discard(victim, crowded)
            self._by_address.setdefault(address, OrderedDict())[key] = None
            self._count += 1
            return victim

    def remove(self, key: Hashable, address: str) -> None:
        with self._lock:
            if key in self._by_address.get(address, ()):
                self._discard(key, address)

    def _discard(self, key: Hashable, address: str) -> None:
        keys = self._by_address[address]
        del keys[key]
        self._count -= 1
        if not keys:
            del self._by_address[address]
