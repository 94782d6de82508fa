"""One client's outbox: the bytes waiting for it, bounded, with a record of progress.

Nothing here touches a socket; the caller holds the session's lock. Bytes are
appended whole (``put``) and leave from the front (``peek`` then ``sent``),
so what a client receives is exactly what was queued, in order. The outbox
remembers when its bytes last moved: a client that keeps reading shows
progress however far behind it is, and a stuck one shows none. Its life is one
``State``: OPEN (taking bytes), DRAINING (no more bytes; send what is left,
then close), CLOSED.

Nearly always an outbox holds one piece at a time (a round's events for a client
that keeps up), and a busy room puts and sends one for every member many times a
second: the first piece is kept as it is (``_head``), and only the pieces behind
it wait in a deque, made when a second piece arrives.
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


# An outbox with nothing behind its first piece holds this instead of a deque (a deque costs
# 600 bytes, and an idle client's outbox is empty nearly all its life).
_NONE: tuple = ()


class Outbox:
    """Bytes waiting for one client, in order, with their size and last progress."""

    __slots__ = ("state", "size", "sent_total", "progress", "front", "_head", "_rest")

    def __init__(self, now: float = 0.0) -> None:
        self.state = State.OPEN
        self.size = 0  # bytes waiting
        self.sent_total = 0  # bytes that have left, over the connection's life
        self.progress = now  # when bytes last left, or the outbox was last empty
        self.front = 0  # bytes at the front that rounds sent straight left behind (put_front)
        self._head = b""  # the first piece waiting (b"" when empty)
        self._rest: deque[bytes] | tuple = _NONE  # the pieces behind it

    def __len__(self) -> int:
        return self.size

    def put(self, data: bytes, now: float) -> bool:
        """Queue bytes; False (and nothing queued) once the outbox is draining or closed."""
        if self.state is not State.OPEN:
            return False
        if data:
            if not self.size:  # empty: a wait for progress starts now, not when it emptied
                self.progress = now
                self._head = data
            elif self._rest is _NONE:
                self._rest = deque((data,))
            else:
                self._rest.append(data)
            self.size += len(data)
        return True

    def put_front(self, data: bytes, now: float) -> None:
        """Queue bytes ahead of those waiting (they were due first, but a round sent them
        straight and the kernel took only part): behind the front part that earlier rounds
        left there, which was due before them, and ahead of everything else. Nothing, once
        closed (the connection was cut while the round was sending)."""
        if not data or self.state is State.CLOSED:
            return
        if self.front:  # seldom: a reader in two rounds at once (threaded engine)
            front = self.front
            waiting = self._head + b"".join(self._rest)
            self._head = waiting[:front] + data + waiting[front:]
            self._rest = _NONE
        else:
            if not self.size:
                self.progress = now
            elif self._rest is _NONE:
                self._rest = deque((self._head,))
            else:
                self._rest.appendleft(self._head)
            self._head = data
        self.size += len(data)
        self.front += len(data)

    def peek(self) -> bytes:
        """The next bytes to send (up to CHUNK), without taking them off the outbox."""
        head, rest = self._head, self._rest
        if rest and len(head) < CHUNK:  # small pieces go out together, up to CHUNK
            joined, size = [head], len(head)
            while rest and size < CHUNK:
                joined.append(rest.popleft())
                size += len(joined[-1])
            head = self._head = b"".join(joined)
            if not rest:
                self._rest = _NONE
        return head if len(head) <= CHUNK else head[:CHUNK]

    def sent(self, count: int, now: float) -> None:
        """``count`` bytes from the front have left; nothing to count once closed (another
        thread may cut the connection while a writer is in ``send``, outside the lock)."""
        if count <= 0 or self.state is State.CLOSED:
            return
        self.sent_total += count
        self.progress = now
        self.size -= count
        if self.front:
            self.front = max(0, self.front - count)
        if not self.size:  # all gone (the usual case)
            self._head = b""
            self._rest = _NONE
            return
        while count:
            head = self._head
            if count < len(head):
                self._head = head[count:]
                return
            count -= len(head)
            self._head = self._rest.popleft()
        if not self._rest:
            self._rest = _NONE

    def sent_next(self, count: int, now: float) -> bytes:
        """``sent(count, now)``, then ``peek()``: what a sender that got it all through asks next."""
        self.sent(count, now)
        return self.peek() if self.size else b""

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
        self._head = b""
        self._rest = _NONE
        self.size = 0
        self.front = 0
