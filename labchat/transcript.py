"""Reading an instructor's transcript: the JSON Lines file ``ChatServer(log=...)`` writes.

Each line is one room event exactly as it went on the wire, so the same
``decode_event`` reads it back and ``render`` shows it. The rule this module
keeps: a transcript is evidence, so reading it never fails on a damaged line
(a crash can tear the last one) and never lets what someone typed act on the
reader's terminal; everything shown goes through ``render``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .protocol import Event, ProtocolError, decode_event
from .render import describe


def read_transcript(path: str | Path) -> Iterator[Event]:
    """The events of a transcript, in order; a torn last line (a crash mid-write) is skipped."""
    with open(path, "rb") as lines:
        for line in lines:
            line = line.rstrip(b"\n")
            if not line.strip():
                continue
            try:
                yield decode_event(line)
            except ProtocolError:
                continue


def format_event(event: Event) -> str:
    """One transcript event as a line a person reads: local date and time, then what happened."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.time)) if event.time else " " * 19
    who, what = describe(event)
    head = f"{stamp}  {who}: " if who else f"{stamp}  "
    first, *more = what.split("\n")  # a multi-line message: the rest under where its text starts
    return head + first + "".join("\n" + " " * len(head) + line for line in more)


def replay_lines(events: Iterable[Event]) -> Iterator[str]:
    """Readable lines for a transcript's events.

    The file is appended to by every run of the server, and each run numbers
    its events from 1 again; where the numbers start over, a separator line
    says that a new run of the room began.
    """
    last = 0
    for event in events:
        if 0 < event.seq <= last:
            yield "-" * 19 + "  --- the server was restarted here ---"
        last = event.seq or last
        yield format_event(event)


def replay(path: str | Path) -> Iterator[str]:
    """The transcript at ``path`` as readable lines (what ``labchat replay FILE`` prints)."""
    return replay_lines(read_transcript(path))
