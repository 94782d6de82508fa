"""The wire as a panel shows it: every line as it travelled, each frame placed under the event it carried.

A client calls ``add(direction, line)`` for every line, from the thread that
sent or received it; the panel calls ``took(number, event)`` for every event it
shows, numbered from 1. A received frame is placed under the event decoded from
it; what carried no event of its own (the banner, the hello, what this side
sent) is placed where it travelled, between the events before and after it. A
line waits until the event after it is taken, so the order on screen is the
order on the wire.

The rules it keeps: memory is bounded (at most ``max_lines`` placed lines and
``MAX_WAITING`` waiting ones, the oldest going first); lines are kept as the
escaped text ``render.wire`` makes of them and become HTML only through
``html.escape``; nothing here touches a socket, a thread or a widget (the
caller holds its own lock around every call).
"""

from __future__ import annotations

import html
from collections import deque
from collections.abc import Iterable

from .. import render
from ..protocol import Event, ProtocolError, decode_event

# Lines that wait for the event they came before: a frame and its event are one step apart,
# so a handful is plenty; past this the oldest is placed where it stands.
MAX_WAITING = 50


class WireLog:
    """The lines of one panel's connection, each at a place among the panel's events."""

    def __init__(self, max_lines: int) -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self._placed: deque[tuple[int, str]] = deque(maxlen=max_lines)  # (after event number, text)
        self._waiting: deque[tuple[str, Event | None]] = deque()  # (text, the event it decodes to)
        self._last = 0  # the number of the newest event taken

    def add(self, direction: str, line: bytes) -> bool:
        """One line as it travelled; True if it carries no event to wait for (draw it now)."""
        carried = None
        if direction == "<-":
            try:
                carried = decode_event(line)
            except (ProtocolError, ValueError):
                carried = None
        self._waiting.append((render.wire(direction, line), carried))
        while len(self._waiting) > MAX_WAITING:
            self._placed.append((self._last, self._waiting.popleft()[0]))
        return carried is None

    def took(self, number: int, event: Event) -> None:
        """The panel shows ``event`` as its event ``number``: its frame goes under it, and what
        travelled before that frame goes above it."""
        self._last = number
        index = next((i for i, (_, carried) in enumerate(self._waiting) if carried == event), None)
        if index is None:
            return  # made by the client itself (a reconnect notice): no frame of its own
        for _ in range(index):
            self._placed.append((number - 1, self._waiting.popleft()[0]))
        self._placed.append((number, self._waiting.popleft()[0]))

    def clear(self) -> None:
        self._placed.clear()
        self._waiting.clear()

    def lines(self) -> list[str]:
        """Every line kept, in the order they are shown."""
        return [text for _, text in self._placed] + [text for text, _ in self._waiting]

    def merged(self, events: Iterable[tuple[int, str]]) -> str:
        """The events' HTML (``(number, html)``, oldest first) with the wire lines among them.

        Lines placed before the oldest event still shown are left out with it.
        """
        out: list[str] = []
        placed = list(self._placed)
        at = 0
        first = True
        for number, event_html in events:
            if first:  # older lines than the first event shown went with their events
                while at < len(placed) and placed[at][0] < number - 1:
                    at += 1
                first = False
            while at < len(placed) and placed[at][0] < number:
                out.append(line_html(placed[at][1]))
                at += 1
            out.append(event_html)
        out += [line_html(text) for _, text in placed[at:]]
        out += [line_html(text) for text, _ in self._waiting]
        return "".join(out)


def line_html(text: str) -> str:
    """One wire line as the panel's HTML: dimmed, in a code font, escaped."""
    return f'<div class="lc-wire">{html.escape(text)}</div>'
