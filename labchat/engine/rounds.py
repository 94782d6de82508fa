"""A round's broadcasts, kept for the readers whose outboxes are empty and sent to them at its end.

In a busy room nearly every delivery is a broadcast to readers whose outboxes are empty,
and putting the same bytes in fifty outboxes only to take them out again a moment later
costs more than the fifty sends. So a broadcast names those readers here, with its bytes,
and they are each sent them with one ``send`` (``Session.send_straight``); the others get it
through their outboxes as before. The selector engine's round is its loop's turn, and only
its own thread's broadcasts join it; the threaded engine's is whatever gathers while one
thread sends for everyone, and any thread's broadcasts join it (``ANY_THREAD``).

The rule it keeps is order, and two facts keep it: a reader is named in a round only
when nothing waits in its outbox (so nothing older is left behind), and one thread at a
time sends, sending the round before any outbox queued to since its readers were named (so
whatever was queued after it, on any thread, goes after it). What the kernel does not take of a
round waits at the front of the outbox, ahead of anything queued since.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import Session


# A round that any thread may add to (the threaded engine's: one thread at a time sends it).
ANY_THREAD = 0


class Round:
    """The broadcasts of the round under way, in order; guarded by the delivery lock."""

    __slots__ = ("owner", "blobs", "readers")

    def __init__(self, owner: int | None = None) -> None:
        # the thread whose broadcasts it takes (threading.get_ident), or ANY_THREAD
        self.owner = threading.get_ident() if owner is None else owner
        self.blobs: list[bytes] = []  # each broadcast's bytes (JSON lines)
        self.readers: list[list[Session]] = []  # who gets each one straight

    def __bool__(self) -> bool:
        return bool(self.blobs)

    def add(self, blob: bytes, readers: list[Session]) -> None:
        self.blobs.append(blob)
        self.readers.append(readers)

    def take(self) -> list[tuple[list[Session], bytes]]:
        """Empty the round, as (readers, their bytes) to send: one pair when every broadcast
        went to the same readers (nearly always), else one pair a reader."""
        blobs, readers = self.blobs, self.readers
        self.blobs, self.readers = [], []
        first = readers[0]
        if len(blobs) == 1:
            return [(first, blobs[0])]
        if all(names == first for names in readers):
            return [(first, b"".join(blobs))]
        parts: dict[Session, list[bytes]] = {}
        for blob, names in zip(blobs, readers, strict=True):
            for session in names:
                parts.setdefault(session, []).append(blob)
        return [([session], b"".join(chunks)) for session, chunks in parts.items()]
