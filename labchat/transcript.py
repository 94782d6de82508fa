"""Reading an instructor's transcript: the JSON Lines file ``ChatServer(log=...)`` writes.

Each line is one room event exactly as it went on the wire, so the same
``decode_event`` reads it back and ``render`` prints it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .protocol import Event, ProtocolError, decode_event


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
