"""One client's outbox: the bytes waiting for it, bounded, with a record of progress.

Nothing here touches a socket; the caller holds the session's lock. Bytes are
appended whole (``put``) and leave from the front (``peek`` then ``sent``),
so what a client receives is exactly what was queued, in order. The outbox
remembers when its bytes last moved: a client that keeps reading shows
progress however far behind it is, and a stuck one shows none. Its life is one
``State``: OPEN (taking bytes), DRAINING (no more bytes; send what is left,
then close), CLOSED.
"""

from __future__ import annotations

from collections import deque
from enum import Enum

# The most bytes handed to one send() call: big enough to fill a kernel buffer in one go.
CHUNK = 256 * 1024


class State(Enum):
    OPEN = "open"
    DRAINING = "draining"
    CLOSED = "closed"


# An empty outbox holds this instead of a deque of its own (a deque costs 600 bytes, and an
# idle client's outbox is empty nearly all its life); ``put`` makes the deque.
_NONE: tuple = ()


class Outbox:
    """Bytes waiting for one client, in order, with their size and last progress."""

    __slots__ = ("state", "size", "sent_total", "progress", "_chunks")

    def __init__(self, now: float = 0.0) -> None:
        self.state = State.OPEN
        self.size = 0  # bytes waiting
        self.sent_total = 0  # bytes that have left, over the connection's life
        self.progress = now  # when bytes last left, or the outbox was last empty
        self._chunks: deque[bytes] | tuple = _NONE

    def __len__(self) -> int:
        return self.size

    def put(self, data: bytes, now: float) -> bool:
        """Queue bytes; False (and nothing queued) once the outbox is draining or closed."""
        if self.state is not State.OPEN or not data:
            return self.state is State.OPEN
        if not self.size:
            self.progress = now  # a wait for progress starts now, not when it was last empty
        if self._chunks is _NONE:
            self._chunks = deque()
        self._chunks.append(data)
        self.size += len(data)
        return True

    def peek(self) -> bytes:
        """The next bytes to send (up to CHUNK), without taking them off the outbox."""
        chunks = self._chunks
        if len(chunks) > 1 and len(chunks[0]) < CHUNK:
            joined, size = [], 0
            while chunks and size < CHUNK:
                joined.append(chunks.popleft())
                size += len(joined[-1])
            chunks.appendleft(b"".join(joined))
        return chunks[0][:CHUNK] if chunks else b""

    def sent(self, count: int, now: float) -> None:
        """``count`` bytes from the front have left."""
        if count <= 0:
            return
        self.size -= count
        self.sent_total += count
        self.progress = now
        while count:
            head = self._chunks[0]
            if count >= len(head):
                self._chunks.popleft()
                count -= len(head)
            else:
                self._chunks[0] = head[count:]
                count = 0
        if not self.size:
            self._chunks = _NONE  # all gone: the deque goes too

    def stalled(self, now: float) -> float:
        """Seconds its bytes have waited without any leaving (0 when empty)."""
        return now - self.progress if self.size else 0.0

    def drain(self) -> None:
        """Take no more bytes; what is queued may still leave."""
        if self.state is State.OPEN:
            self.state = State.DRAINING

    def close(self) -> None:
        """Drop everything: the connection is gone."""
        self.state = State.CLOSED
        self._chunks = _NONE
        self.size = 0
