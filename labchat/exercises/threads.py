"""Checks for threads: a receiver feeding a queue, a counter's race, and the send/send deadlock.

The rule it keeps: a race or a deadlock is made to happen every time, not now and
then. The counter is handed a ``pause`` that holds two threads at the worst
moment (the notebooks' Barrier trick); the swap sends more than any socket buffer
holds, from both sides at once, and waits with a deadline.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from . import wire
from .feedback import Feedback, attempt, guarded


@guarded("receiver thread")
def check_receiver(feedback: Feedback, receive_into: Callable[[socket.socket, queue.Queue], Any]) -> None:
    """``receive_into(sock, inbox)`` runs as a thread: each line (str, no newline) on inbox, then None."""
    mine, theirs = wire.pair()
    inbox: queue.Queue = queue.Queue()
    try:
        receiver = attempt(receive_into, mine, inbox, timeout=0, name="exercise-receiver")
        wire.trickle(theirs, mine, [b"hi b", b"ob\nhow", b" are you?\n"])
        lines = []
        for _ in range(2):
            try:
                lines.append(inbox.get(timeout=3))
            except queue.Empty:
                break
        lines = [line.decode() if isinstance(line, bytes) else line for line in lines]
        if lines == ["hi bob", "how are you?"]:
            feedback.ok("two lines sent in pieces arrived on the queue whole, while the check went on")
        else:
            feedback.not_yet(
                f"two lines were sent in pieces; the queue got {lines!r}",
                "split what arrives at b'\\n' (keep the rest for later), decode each line, queue it",
            )
            return
        theirs.shutdown(socket.SHUT_WR)
        try:
            end = inbox.get(timeout=3)
        except queue.Empty:
            end = "nothing"
        if end is None and receiver.wait(3).fine:
            feedback.ok("when the peer closed, None arrived on the queue and the thread ended")
        else:
            feedback.not_yet(
                f"the peer closed; the queue got {end!r} and the thread "
                + ("is still running" if receiver.stuck else "ended"),
                "when recv returns b'' the stream is over: put None on the queue and return",
            )
    finally:
        wire.close(mine, theirs)


@guarded("counter")
def check_counter(feedback: Feedback, counter_class: Callable[[], Any]) -> None:
    """``c = counter_class(); c.increment(pause)`` from many threads; ``c.value`` counts every call.

    ``pause()`` stands for the moment another thread may run, between reading the
    value and writing it back; the check passes one that waits for a second thread.
    """
    counter = counter_class()
    meet = threading.Barrier(2)

    def pause() -> None:
        try:
            meet.wait(timeout=0.3)  # without a lock both threads arrive here, with the same value read
        except threading.BrokenBarrierError:
            pass

    both = [attempt(counter.increment, pause, timeout=0, name="exercise-counter") for _ in range(2)]
    for one in both:
        one.wait(5)
    if any(not one.fine for one in both):
        feedback.not_yet(
            f"two threads called increment(pause): {both[0].problem()}",
            "increment takes the pause function and calls it once, between reading and writing",
        )
        return
    if counter.value == 2:
        feedback.ok("two threads incremented at the worst moment, and the count is 2")
    else:
        feedback.not_yet(
            f"two threads incremented at the same moment, and the count is {counter.value}",
            "both read the same value before either wrote it back (a race): hold a threading.Lock "
            "around the read, the pause and the write, so one thread finishes before the other starts",
        )
        return
    counter = counter_class()
    many = [attempt(_increments, counter, 2000, timeout=0, name="exercise-counter") for _ in range(4)]
    for one in many:
        one.wait(10)
    if all(one.fine for one in many) and counter.value == 8000:
        feedback.ok("4 threads x 2000 increments counted 8000")
    else:
        feedback.not_yet(
            f"4 threads x 2000 increments counted {counter.value}", "every increment takes the lock"
        )


def _increments(counter: Any, times: int) -> None:
    for _ in range(times):
        counter.increment(lambda: None)


@guarded("swap without deadlock")
def check_swap(feedback: Feedback, swap: Callable[[socket.socket, bytes], bytes]) -> None:
    """``swap(sock, data)`` sends data and returns the len(data) bytes the peer sends; both sides at once."""
    left, right = wire.pair()
    for sock in (left, right):
        sock.settimeout(None)
        # Fixed, small buffers: loopback TCP would otherwise grow them to megabytes.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 16)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    size = 4_000_000  # far more than the buffers between two sockets hold
    ours, theirs = b"L" * size, b"R" * size
    try:
        sides = [
            attempt(swap, left, ours, timeout=0, name="exercise-left"),
            attempt(swap, right, theirs, timeout=0, name="exercise-right"),
        ]
        deadline = time.monotonic() + 5  # a working swap takes well under a second
        for side in sides:
            side.wait(max(0.0, deadline - time.monotonic()))
        if any(side.stuck for side in sides):
            feedback.not_yet(
                "both sides sent 4 MB before receiving, and after 5 s they were still stuck",
                "each sendall waits for the other side to read, and neither reads yet (a deadlock): "
                "send from a second thread while this one receives",
            )
        elif not all(side.fine for side in sides):
            feedback.not_yet(
                f"swapping 4 MB: {next(s for s in sides if not s.fine).problem()}",
                "send in a thread, receive exactly len(data) bytes here, then join the thread",
            )
        elif (sides[0].value, sides[1].value) == (theirs, ours):
            feedback.ok("both sides sent 4 MB at the same time, and each got the other's, complete")
        else:
            lengths = [len(side.value or b"") for side in sides]
            feedback.not_yet(
                f"each side got {lengths} bytes of the other's 4,000,000",
                "keep receiving until you have len(data) bytes",
            )
    finally:
        wire.close(left, right)
