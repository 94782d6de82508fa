"""The room's transcript: written after the delivery lock is let go and before anyone is sent the event.

The hub hands public events over under its delivery lock (a quick append to a
queue); the thread that delivered then writes them as JSON Lines, under a lock
of the file's own, before it sends the batch to anyone. So a slow disk delays
sending, never the room's decisions, and a crash loses nothing anyone has seen.
A transcript that cannot be written (a full disk, a closed file) is stopped
with one error, and the room carries on without it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from pathlib import Path
from typing import IO

from ..protocol import encode
from ..room import Delivery

log = logging.getLogger("labchat.server")

# Kinds written to the transcript (private messages only when asked), and the notices of
# moderation: every kick (a leave saying who removed whom) and every mute is on the record.
# Joins and leaves are recorded whoever was sent them: in a big room only the newcomer hears of
# its own arrival, and nobody of a departure, but the record keeps who was in the class.
TRANSCRIPT_KINDS = frozenset({"message", "action", "join", "leave", "nick", "bot"})
ARRIVALS = frozenset({"join", "leave"})
MODERATION_CODES = frozenset({"mute", "unmute"})


class Transcript:
    """A JSON Lines record of the room. ``record`` under the delivery lock, ``write`` after it."""

    def __init__(self, target: str | Path | IO[str], *, private: bool = False) -> None:
        self.private = private
        self._target = target
        self._file: IO[str] | None = (
            target if hasattr(target, "write") else open(target, "a", encoding="utf-8")  # noqa: SIM115
        )
        self._lines: deque[str] = deque()
        self._lock = threading.Lock()

    def record(self, deliveries: list[Delivery]) -> None:
        """Queue what belongs in the record; never touches the disk."""
        if self._file is None:
            return
        for d in deliveries:
            e = d.event
            public = (d.to is None or e.kind in ARRIVALS) and (
                e.kind in TRANSCRIPT_KINDS or (e.kind == "system" and e.code in MODERATION_CODES)
            )
            if (public or (e.kind == "private" and self.private)) and not e.history:
                self._lines.append(encode(e).decode("utf-8"))

    def write(self) -> None:
        """Write every queued line, in order (one thread at a time)."""
        if not self._lines:
            return
        with self._lock:
            lines = []
            while self._lines:
                lines.append(self._lines.popleft())
            if self._file is None or not lines:
                return
            try:
                self._file.write("".join(lines))
                self._file.flush()
            except (OSError, ValueError) as exc:  # a full disk, or a file closed under us
                log.error("cannot write the transcript (%s); the room carries on without one", exc)
                self._stop()

    def close(self) -> None:
        """Write what is queued, then close the file (unless it was handed in open)."""
        self.write()
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        file, self._file = self._file, None
        self._lines.clear()
        if file is not None and file is not self._target:
            try:
                file.close()
            except OSError:
                pass  # what it could not write was reported as it happened
