"""A round's broadcasts, kept for the readers whose outboxes are empty and sent to them at its end.

In a busy room nearly every delivery is a broadcast to readers whose outboxes are empty,
and putting the same bytes in fifty outboxes only to take them out again a moment later
costs more than the fifty sends. So a broadcast names those readers here, with its bytes,
and they are each sent them with one ``send`` (``send_round``); the others get it
through their outboxes as before. The selector engine's round is its loop's turn, and only
its own thread's broadcasts join it; the threaded engine's is whatever gathers while one
thread sends for everyone, and any thread's broadcasts join it (``ANY_THREAD``).

The rule it keeps is order, and three facts keep it: a reader is named in a round only
when nothing waits in its outbox (so nothing older is left behind) and no earlier round
still on its way holds bytes for it (so what the kernel does not take of that one is not
overtaken); and one thread at a time sends, sending the round before any outbox queued to
since its readers were named (so whatever was queued after it, on any thread, goes after
it). What the kernel does not take of a round waits at the front of the outbox, ahead of
anything queued since.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .outbox import State

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger("labchat.server")


# A round that any thread may add to (the threaded engine's: one thread at a time sends it).
ANY_THREAD = 0


class Round:
    """The broadcasts of the round under way, in order; guarded by the delivery lock.

    ``gen`` numbers the rounds: a reader named in this one holds it in ``in_round`` until
    its bytes are sent (then 0, unless a later round has named it since). In the threaded
    engine one thread may still be sending the last round while others add to the next, so
    a reader can be in both; if the kernel takes only part of the first, the next waits
    behind that part in the outbox (``Outbox.front``), never overtaking it.
    """

    __slots__ = ("owner", "blobs", "readers", "counts", "gen", "_again")

    def __init__(self, owner: int | None = None) -> None:
        # the thread whose broadcasts it takes (threading.get_ident), or ANY_THREAD
        self.owner = threading.get_ident() if owner is None else owner
        self.blobs: list[bytes] = []  # each broadcast's bytes (JSON lines)
        self.readers: list[list[Session]] = []  # who gets each one straight
        self.counts: list[int] = []  # how many events each one holds
        self.gen = 1
        # (members, puts, readers): the last broadcast went straight to every one of these
        # members, when the hub had put to outboxes ``puts`` times (see ``again``)
        self._again: tuple[object, int, list[Session]] | None = None

    def __bool__(self) -> bool:
        return bool(self.blobs)

    def add(self, blob: bytes, readers: list[Session], count: int = 1) -> None:
        self.blobs.append(blob)
        self.readers.append(readers)
        self.counts.append(count)

    def remember(self, members: object, puts: int, readers: list[Session]) -> None:
        """The broadcast just added went straight to all of ``members``."""
        self._again = (members, puts, readers)

    def again(self, members: object, puts: int) -> list[Session] | None:
        """The readers of this round's last broadcast, if it went straight to all of the same
        ``members`` (the same list) and no outbox has been put to since: then every one of
        them is still named here with an empty outbox, and the next line goes the same way.
        A busy room's round of several lines looks at its members once, not once a line."""
        last = self._again
        if last is not None and last[0] is members and last[1] == puts:
            return last[2]
        return None

    def take(self) -> list[tuple[list[Session], bytes, int, int]]:
        """Empty the round, as (readers, their bytes, how many events, the round's gen) to
        send: one when every broadcast went to the same readers (nearly always), else one a
        reader."""
        blobs, readers, counts, gen = self.blobs, self.readers, self.counts, self.gen
        self.blobs, self.readers, self.counts = [], [], []
        self.gen += 1
        self._again = None
        first = readers[0]
        if len(blobs) == 1:
            return [(first, blobs[0], counts[0], gen)]
        if all(names is first or names == first for names in readers):
            return [(first, b"".join(blobs), sum(counts), gen)]
        parts: dict[Session, list[bytes]] = {}
        numbers: dict[Session, int] = {}
        for blob, names, count in zip(blobs, readers, counts, strict=True):
            for session in names:
                parts.setdefault(session, []).append(blob)
                numbers[session] = numbers.get(session, 0) + count
        return [([session], b"".join(chunks), numbers[session], gen) for session, chunks in parts.items()]


def send_round(
    readers: list[Session],
    data: bytes,
    count: int,
    gen: int,
    sock_of: Callable[[Session], socket.socket | None],
    now: float,
) -> list[tuple[Session, bool | None]]:
    """Send a round's ``data`` (``count`` events) to each of ``readers``, one ``send`` each,
    from the one thread that sends this round; the readers the engine must see to, with what
    became of them:
    None (the connection is gone), False (the rest waits in the outbox for the socket to be
    writable), True (it is leaving, or was closed: its engine may finish it).

    A send that takes every byte, to a reader that is not leaving, takes no lock (once per
    reader per round of a busy room): no other thread sends to a reader until the round is
    done with it, and an empty outbox's progress is never looked at. ``in_round`` is
    cleared before ``leaving`` is read, and ``Session.end`` sets ``leaving`` before it
    reads ``in_round``, so one of the two always sees the other and the reader is drained.
    """
    size, odd, closed = len(data), [], State.CLOSED
    for session in readers:
        try:
            sock = sock_of(session)
            if sock is None:
                continue
            if session.outbox.state is closed:  # cut off or gone (a leaving one, draining, is sent to)
                session.in_round = 0
                odd.append((session, True))
                continue
            session.messages_out += count
            if session.outbox.front:  # part of an earlier round waits (threaded engine): behind it
                odd.append((session, session.straight_rest(0, data, now, gen)))
                continue
            try:
                taken = sock.send(data)
            except (BlockingIOError, InterruptedError):
                taken = 0
            except OSError as exc:
                session.straight_failed(exc)
                odd.append((session, None))
                continue
            if taken != size:
                odd.append((session, session.straight_rest(taken, data, now, gen)))
                continue
            session.outbox.sent_total += size
            if session.in_round == gen:
                session.in_round = 0
            if session.leaving:
                session.drained_if_empty()
                odd.append((session, True))
        except Exception:  # one session's bug must not stop the sending for all
            log.exception("%s: unexpected error while sending", session.who)
            odd.append((session, None))
    return odd
