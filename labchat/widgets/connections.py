"""The host panel's table of connections: who is connected, from where, for how long, and how much has moved.

``table_html(connections, now)`` draws what ``ChatServer.connections()``
reported; ``Ticker`` calls a function about once a second on a daemon thread
until it is stopped. The rules it keeps: every value a peer chose (its nick, its
address) reaches the page only through ``render.safe`` and ``html.escape``;
times are relative words ("for 3 min") that change rarely, so a caller who
redraws only when the HTML differs redraws seldom; a stopped ticker's thread
has ended (``stop()`` joins it).
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Sequence

from .. import render
from ..server import Connection

# Seconds between two looks at the server's figures: live enough to watch, cheap to leave on.
TICK = 1.0

COLUMNS = ("who", "address", "mode", "connected", "bytes in", "bytes out", "msgs in", "msgs out", "queued")
TIPS = {
    "mode": "json: a program; text: a person typing, as on netcat",
    "bytes in": "bytes received from this connection",
    "bytes out": "bytes sent to it",
    "msgs in": "messages in: lines it sent after its hello",
    "msgs out": "messages out: events the server queued for it",
    "queued": "bytes waiting for it to read: a growing number is a reader falling behind",
}


def since_words(seconds: float) -> str:
    """How long a connection has lasted, in words that change at most once a minute."""
    if seconds < 60:
        return "for under a minute"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"for {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"for {hours} h {minutes} min" if minutes else f"for {hours} h"
    days = hours // 24
    return f"for {days} day" + ("s" if days != 1 else "")


def size_words(count: int) -> str:
    """A byte count: exact below 10 000, else in kB or MB with one decimal."""
    if count < 10_000:
        return str(count)
    if count < 10_000_000:
        return f"{count / 1000:.1f} kB"
    return f"{count / 1_000_000:.1f} MB"


def table_html(connections: Sequence[Connection], now: float) -> str:
    """The connections as an HTML table; ``now`` is the clock's reading (Unix seconds)."""
    rows = []
    for c in connections:
        who = html.escape(render.safe(c.nick)) if c.nick is not None else '<i class="lc-off">(joining)</i>'
        cells = (
            who,
            html.escape(render.safe(c.address)),
            html.escape(c.mode),
            since_words(max(0.0, now - c.since)),
            size_words(c.received),
            size_words(c.sent),
            str(c.messages_in),
            str(c.messages_out),
            size_words(c.queued),
        )
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "".join(
        f'<th title="{html.escape(TIPS[name])}">{name}</th>' if name in TIPS else f"<th>{name}</th>"
        for name in COLUMNS
    )
    count = len(connections)
    caption = f"{count} connection" + ("" if count == 1 else "s")
    return (
        f'<div class="lc-conns-box"><table class="lc-conns"><caption>{caption}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


class Ticker:
    """Calls ``tick()`` every ``interval`` seconds on a daemon thread named ``name``, until ``stop()``."""

    def __init__(self, name: str, tick: Callable[[], object], interval: float = TICK) -> None:
        self._tick = tick
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop ticking; the thread has ended when this returns (unless called from the thread itself)."""
        self._stopped.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._tick()
            except Exception:  # a failed look must not end the table's life; try again next tick
                pass
