"""What a newcomer is shown, kept from a room's shared log in the log's order.

Nothing here touches a socket. Every server reads the whole log, so each one
keeps the room's recent past as the log has it: the last ``history`` messages
(what a newcomer is shown) and the last ``replay`` public events (what a client
coming back with ``since`` is shown), all with the log's numbers. A newcomer's
backlog is taken from here at the place of its join in the log, so it sees
everything before its welcome once and everything after it live, whichever
server it joined through. This is the room's own rule (``Room.join``), applied
to events that were decided on several servers.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import deque
from dataclasses import replace
from operator import attrgetter

from ..protocol import Event
from ..room import fit_replay, gap_reason
from .entries import Entry

_seq_of = attrgetter("seq")  # the replay buffer is in the log's order, so sorted by seq

__all__ = ["Mirror"]


class Mirror:
    """The room's recent past, fed entry by entry in the log's order. Not thread-safe: the
    server's delivery lock guards it."""

    def __init__(self, *, history: int, replay: int, replay_bytes: int | None = None) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._replay: deque[Event] = deque(maxlen=replay)
        self._replay_bytes = replay_bytes  # about the most one client is sent at once (fit_replay)
        self.held_from = 1  # every public event numbered from here on is held (or was never sent)

    def add(self, entry: Entry) -> None:
        """Keep what this entry holds for newcomers and for clients coming back."""
        for item in entry.items:
            event = item.event
            if item.keep:
                self._history.append(event)
            if item.to is None and event.seq:
                replay = self._replay
                if replay.maxlen == 0:
                    self.held_from = event.seq + 1
                    continue
                if len(replay) == replay.maxlen:
                    self.held_from = replay[0].seq + 1
                replay.append(event)

    def missed(self, first: int) -> None:
        """Entries before seq ``first`` were never read here (trimmed from the log, or lost with it)."""
        self.held_from = max(self.held_from, first)

    def backlog(self, since: int | None) -> list[Event]:
        """What a newcomer is shown (``since`` None), or what a client that last saw ``since`` missed."""
        if since is None:
            shown, _ = fit_replay(self._history, self._replay_bytes)
            return [replace(e, history=True) for e in shown]
        start = bisect_right(self._replay, since, key=_seq_of)
        held, left = fit_replay(self._replay, self._replay_bytes, start)
        out = []
        too_old = since + 1 < self.held_from
        if too_old or left:
            text = f"Some earlier events were missed while you were away: {gap_reason(too_old, bool(left))}."
            out.append(Event(kind="system", code="history-gap", text=text, time=round(time.time(), 3)))
        out += [replace(e, history=True) for e in held]
        return out
