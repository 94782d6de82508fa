"""Faults on purpose, for lessons: sends chopped into small pieces, and deliveries held back.

Off by default and loud when on: the server logs a warning at start and every
banner says which faults are on, so nobody mistakes a lesson for a broken
network. ``chop`` sends every client its bytes a few at a time, so a client that
takes one ``recv`` for one message breaks where everyone can see it; ``delay``
holds every delivery back for a while, as a slow network would. Neither loses
or reorders a byte: the rules of the room are the same with faults as without.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

# The most bytes one chopped send carries.
CHOP_MOST = 7
# How long a chopped connection rests between pieces: long enough that a client reading at once
# finds one piece per recv, rather than the kernel having gathered them all by then.
CHOP_GAP = 0.002


@dataclass(frozen=True)
class Faults:
    """Which faults are on: ``chop`` (bool) and ``delay`` (seconds added to every delivery)."""

    chop: bool = False
    delay: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.delay <= 60:
            raise ValueError(f"delay must be between 0 and 60 seconds, not {self.delay!r}")

    @classmethod
    def of(cls, value: Faults | dict | None) -> Faults:
        if value is None:
            return cls()
        return value if isinstance(value, Faults) else cls(**value)

    @property
    def on(self) -> bool:
        return self.chop or self.delay > 0

    def describe(self) -> str:
        parts = []
        if self.chop:
            parts.append(f"every send chopped into pieces of 1 to {CHOP_MOST} bytes")
        if self.delay:
            parts.append(f"every delivery delayed by {self.delay * 1000:g} ms")
        return "; ".join(parts)

    def banner(self) -> str:
        return f"(Faults are on for a lesson: {self.describe()}.)"

    def piece(self, data: bytes) -> bytes:
        """What one chopped send may carry of ``data``."""
        return data[: random.randint(1, CHOP_MOST)] if self.chop else data


class Delayer:
    """Holds deliveries back for ``delay`` seconds, then hands them on in the order they came.

    One thread (``labchat-delay``), started with the first delivery and stopped with the server.
    """

    def __init__(self, delay: float, clock: Callable[[], float], release: Callable[[list], None]) -> None:
        self.delay = delay
        self._clock = clock
        self._release = release
        self._heap: list[tuple[float, int, object]] = []
        self._releasing = False  # its thread has taken due items and not yet handed them on
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def hold(self, item: object) -> None:
        with self._wake:
            if self._stopped:
                return
            heapq.heappush(self._heap, (self._clock() + self.delay, next(self._order), item))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="labchat-delay", daemon=True)
                self._thread.start()
            self._wake.notify()

    def after(self, then: Callable[[], None]) -> bool:
        """Call ``then`` (on this thread of ours) once everything held now has been handed on;
        False, and no call, if nothing is held."""
        with self._wake:
            if self._stopped or not (self._heap or self._releasing):
                return False
            due = max((when for when, _, _ in self._heap), default=self._clock())
            heapq.heappush(self._heap, (due, next(self._order), _After(then)))
            self._wake.notify()
            return True

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._heap.clear()
            self._wake.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0][0] > self._clock()):
                    self._wake.wait(self._heap[0][0] - self._clock() if self._heap else None)
                if self._stopped:
                    return
                due = []
                while self._heap and self._heap[0][0] <= self._clock():
                    due.append(heapq.heappop(self._heap)[2])
                self._releasing = True
            try:
                batch: list = []
                for item in due:  # in order: what was held before a call is handed on first
                    if type(item) is _After:
                        if batch:
                            self._release(batch)
                            batch = []
                        item.then()
                    else:
                        batch.append(item)
                if batch:
                    self._release(batch)
            finally:
                with self._wake:
                    self._releasing = False


@dataclass(frozen=True)
class _After:
    """A call waiting in the delayer's queue behind what was held before it."""

    then: Callable[[], None]
