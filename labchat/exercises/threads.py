"""Checks for threads: a receiver feeding a queue, a counter's race, and the send/send deadlock.

The rule it keeps: a race or a deadlock is made to happen every time, not now and
then. The counter is handed a ``pause`` that holds two threads at the worst
moment (the notebooks' Barrier trick), and then its ``value`` holds them right
after they read it, so a counter without a lock fails wherever it calls ``pause``;
the swap sends more than any socket buffer holds, from both sides at once, and
waits with a deadline. The receiver is sent UTF-8 cut inside a character, and
what arrives on its queue is taken as it is (a ``str``, not decoded for it). The
threads the learner's own code starts are kept from printing tracebacks into
the cell (``quiet_threads``).
"""

from __future__ import annotations

import inspect
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from . import wire
from .feedback import Attempt, Feedback, attempt, guarded, quiet_threads, raised, returned

# Two lines, cut inside the 2-byte é and inside the 4-byte 👋: decoding a piece on its own fails.
RECEIVER_PIECES = [b"hi b", b"ob\nh\xc3", b"\xa9llo \xf0\x9f", b"\x91\x8b\n"]
RECEIVER_LINES = ["hi bob", "héllo 👋"]
SPLIT_HINT = "split what arrives at b'\\n' (keep the rest for later), decode each line, queue it"


def _collect(inbox: queue.Queue, count: int, receiver: Attempt, patience: float) -> list[Any]:
    """Up to ``count`` items from ``inbox`` within ``patience`` s; sooner if the receiver has ended."""
    items: list[Any] = []
    deadline = time.monotonic() + patience
    while len(items) < count and (left := deadline - time.monotonic()) > 0:
        try:
            items.append(inbox.get(timeout=min(left, 0.05)))
        except queue.Empty:
            if not receiver.stuck and inbox.empty():
                break  # it has returned or raised: nothing more will come
    return items


@guarded("receiver thread")
def check_receiver(feedback: Feedback, receive_into: Callable[[socket.socket, queue.Queue], Any]) -> None:
    """``receive_into(sock, inbox)`` runs as a thread: each line (str, no newline) on inbox, then None."""
    mine, theirs = wire.pair()
    inbox: queue.Queue = queue.Queue()
    try:
        receiver = attempt(receive_into, mine, inbox, timeout=0, name="exercise-receiver")
        wire.trickle(theirs, mine, RECEIVER_PIECES)
        lines = _collect(inbox, 2, receiver, 3)
        sent = "two lines were sent in pieces, cut inside the é and the 👋 of 'héllo 👋'"
        if lines == RECEIVER_LINES:
            feedback.ok(
                "two lines sent in pieces, cut inside a character, arrived on the queue whole, "
                "while the check went on"
            )
        elif receiver.error is not None:
            decoding = isinstance(receiver.error, UnicodeDecodeError)
            feedback.not_yet(
                f"{sent}, and {raised('your receive_into', receiver.error)}",
                "a piece can end in the middle of a character (é is 2 bytes, 👋 is 4): join the bytes, cut "
                "whole lines at b'\\n', and decode each whole line"
                if decoding
                else SPLIT_HINT,
            )
            return
        elif any(isinstance(line, (bytes, bytearray)) for line in lines):
            feedback.not_yet(
                f"{sent}; the queue got bytes, {lines!r}",
                "decode each whole line before you queue it: inbox.put(line.decode('utf-8'))",
            )
            return
        elif not lines:
            feedback.not_yet(
                f"{sent}; nothing arrived on the queue"
                + (" within 3 s" if receiver.stuck else f", and {receiver.did('your receive_into')}"),
                "put each line on inbox as soon as it is whole: inbox.put(line)",
            )
            return
        elif all(isinstance(line, str) for line in lines) and [line.rstrip("\r\n") for line in lines] == (
            RECEIVER_LINES
        ):
            feedback.not_yet(
                f"{sent}; the queue got {lines!r}",
                "leave the newline out: it ends the line, it is not part of it",
            )
            return
        else:
            feedback.not_yet(f"{sent}; the queue got {lines!r}", SPLIT_HINT)
            return
        theirs.shutdown(socket.SHUT_WR)
        ends = _collect(inbox, 1, receiver, 3)
        receiver.wait(3)
        if ends == [None] and receiver.fine:
            feedback.ok("when the peer closed, None arrived on the queue and the thread ended")
            return
        got = f"the queue got {ends[0]!r}" if ends else "nothing arrived on the queue"
        if receiver.error is not None:
            thread = raised("your receive_into", receiver.error)
        else:
            thread = "the thread " + ("is still running" if receiver.stuck else "ended")
        feedback.not_yet(
            f"the peer closed; {got}, and {thread}",
            "when recv returns b'' the stream is over: put None on the queue and return",
        )
    finally:
        wire.close(mine, theirs)


# -- the counter ------------------------------------------------------------------------------------

RACER = "exercise-counter-race"  # the two threads the check holds at the worst moment


@guarded("counter")
def check_counter(feedback: Feedback, counter_class: Callable[[], Any]) -> None:
    """``c = counter_class(); c.increment(pause)`` from many threads; ``c.value`` counts every call.

    ``pause()`` stands for the moment another thread may run, between reading the
    value and writing it back; the check passes one that waits for a second thread.
    Then it holds each thread right after it reads ``value``, wherever ``pause`` is.
    """
    made = attempt(counter_class)
    if not made.fine:
        feedback.not_yet(
            f"the check made a counter, and {made.did('Counter()')}", "keep the starter's __init__"
        )
        return
    counter = made.value
    meet = threading.Barrier(2)

    def pause() -> None:
        try:
            meet.wait(timeout=0.3)  # without a lock both threads arrive here, with the same value read
        except threading.BrokenBarrierError:
            pass

    if not _two_at_once(feedback, counter, pause, "at the worst moment"):
        return
    if counter.value != 2:
        feedback.not_yet(
            f"two threads incremented at the same moment, and the count is {counter.value}",
            "both read the same value before either wrote it back (a race): hold a threading.Lock "
            "around the read, the pause and the write, so one thread finishes before the other starts",
        )
        return
    held = _held_after_reading(counter_class)
    if held is not None:
        if not _two_at_once(feedback, held, lambda: None, "with the check waiting right after each read"):
            return
        if held.value != 2:
            feedback.not_yet(
                "two threads incremented, with the check waiting right after each read of value, and the "
                f"count is {held.value}: both read the same value (a race)",
                "hold a threading.Lock around the read, the pause and the write: pause() is only where the "
                "check waits, and without a lock another thread can cut in anywhere between read and write",
            )
            return
    feedback.ok("two threads incremented at the worst moment, and the count is 2")
    counter = counter_class()
    many = [attempt(_increments, counter, 2000, timeout=0, name="exercise-counter") for _ in range(4)]
    for one in many:
        one.wait(10)
    if all(one.fine for one in many) and counter.value == 8000:
        feedback.ok("4 threads x 2000 increments counted 8000")
    elif not all(one.fine for one in many):
        bad = next(one for one in many if not one.fine)
        feedback.not_yet(
            f"4 threads x 2000 increments: {bad.did('one of them', 10)}", "every increment takes the lock"
        )
        _free(counter)
    else:
        feedback.not_yet(
            f"4 threads x 2000 increments counted {counter.value}", "every increment takes the lock"
        )


def _two_at_once(feedback: Feedback, counter: Any, pause: Callable[[], None], how: str) -> bool:
    """Two threads call counter.increment(pause) at once; False (said why) if one raised or hung."""
    both = [attempt(counter.increment, pause, timeout=0, name=RACER) for _ in range(2)]
    deadline = time.monotonic() + 5
    for one in both:
        one.wait(max(0.0, deadline - time.monotonic()))
    if all(one.fine for one in both):
        return True
    said = f"two threads called increment(pause) {how}"
    errors = [one for one in both if one.error is not None]
    stuck = [one for one in both if one.stuck]
    if errors:
        feedback.not_yet(
            f"{said}, and {raised('your increment', errors[0].error)}",  # type: ignore[arg-type]
            "increment takes the pause function and calls it once, between reading and writing",
        )
    elif len(stuck) == 1:
        feedback.not_yet(
            f"{said}: one returned, and {stuck[0].did('the other', 5)}",
            "a lock taken with acquire() must be given back with release(), even after an error: "
            "`with self.lock:` does both",
        )
    else:
        feedback.not_yet(
            f"{said}, and {stuck[0].did('both', 5)}",
            "hold the lock only for the read, the pause and the write (`with self.lock:`); a threading.Lock "
            "cannot be taken twice, not even by the thread that holds it",
        )
    _free(counter)
    for one in stuck:
        one.wait(1)
    return False


def _free(counter: Any) -> None:
    """Release the locks the counter left held, so its threads stuck in acquire can end."""
    classes = type(counter).__mro__[:-1]  # its class and their bases, not object
    kept = [getattr(counter, "__dict__", {}), *(vars(kind) for kind in classes)]
    for value in [value for names in kept for value in names.values()]:
        locked = getattr(value, "locked", None)
        if callable(locked) and hasattr(value, "release"):
            try:
                while locked():
                    value.release()
            except RuntimeError:  # an RLock held by another thread: not ours to give back
                pass


def _held_after_reading(counter_class: Any) -> Any:
    """A counter whose ``value`` holds each racing thread right after it reads it; None if not possible."""
    if not isinstance(counter_class, type):
        return None
    if hasattr(type(inspect.getattr_static(counter_class, "value", None)), "__get__"):
        return None  # value is the learner's own property: where it reads from is theirs to say
    meet = threading.Barrier(2)
    first = getattr(counter_class, "value", 0)
    key = "_exercise_value"

    def read(self: Any) -> Any:
        value = self.__dict__.get(key, first)
        if threading.current_thread().name == RACER:
            try:
                meet.wait(timeout=0.3)  # a second thread without a lock reads the same value meanwhile
            except threading.BrokenBarrierError:
                pass
        return value

    def write(self: Any, value: Any) -> None:
        self.__dict__[key] = value

    try:
        held = type(counter_class.__name__, (counter_class,), {"value": property(read, write)})
        made = attempt(held)
    except Exception:  # a class that cannot be extended: the pause is all the check has
        return None
    return made.value if made.fine else None


def _increments(counter: Any, times: int) -> None:
    for _ in range(times):
        counter.increment(lambda: None)


# -- the swap -----------------------------------------------------------------------------------------


def _in(side: Attempt, function: str) -> bool:
    """True if the stuck call waits inside threading's ``function`` (join, run), called by its own code."""
    thread = side.thread
    frame = sys._current_frames().get(thread.ident) if thread and thread.ident else None
    while frame is not None and frame.f_code.co_filename == threading.__file__:  # innermost first
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


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
    with quiet_threads():  # its sender threads raise once the check closes their sockets
        try:
            sides = [
                attempt(swap, left, ours, timeout=0, name="exercise-left"),
                attempt(swap, right, theirs, timeout=0, name="exercise-right"),
            ]
            deadline = time.monotonic() + 5  # a working swap takes well under a second
            for side in sides:
                side.wait(max(0.0, deadline - time.monotonic()))
            if any(side.stuck for side in sides):
                _stuck(feedback, [side for side in sides if side.stuck][0])
            elif not all(side.fine for side in sides):
                error = next(side.error for side in sides if side.error is not None)
                feedback.not_yet(
                    f"swapping 4 MB, {raised('your swap', error)}",
                    "send in a thread, receive exactly len(data) bytes here, then join the thread",
                )
            elif (sides[0].value, sides[1].value) == (theirs, ours):
                feedback.ok("both sides sent 4 MB at the same time, and each got the other's, complete")
            elif not all(isinstance(side.value, (bytes, bytearray)) for side in sides):
                value = next(s.value for s in sides if not isinstance(s.value, (bytes, bytearray)))
                feedback.not_yet(
                    f"both sides sent 4 MB, and your swap {returned(value, 'bytes')}",
                    "return the bytes as they came, bytes(got): decoding is for whoever uses them"
                    if isinstance(value, str)
                    else "return what arrived, as one bytes object: bytes(got)",
                )
            else:
                lengths = [len(side.value) for side in sides]
                feedback.not_yet(
                    f"each side got {lengths} bytes of the other's 4,000,000"
                    if lengths != [size, size]
                    else "each side got 4,000,000 bytes, but not the other side's",
                    "keep receiving until you have len(data) bytes",
                )
        finally:
            wire.close(left, right)


def _stuck(feedback: Feedback, side: Attempt) -> None:
    where = side.where()
    at = f" (at {where})" if where else ""
    if _in(side, "join"):
        feedback.not_yet(
            f"both sides sent 4 MB at once, and after 5 s your swap was still waiting in join{at}, "
            "before it had received everything",
            "join waits for the sender thread, which cannot finish until the other side has read it all: "
            "start the sender thread, receive all len(data) bytes here, and only then join",
        )
    elif _in(side, "run"):
        feedback.not_yet(
            f"both sides sent 4 MB before receiving, and after 5 s they were still stuck{at}: run() sends "
            "in this same thread",
            "t.start() starts a second thread; t.run() only calls its function, here and now: use start()",
        )
    else:
        feedback.not_yet(
            f"both sides sent 4 MB before receiving, and after 5 s they were still stuck{at}",
            "each sendall waits for the other side to read, and neither reads yet (a deadlock): "
            "send from a second thread while this one receives",
        )
