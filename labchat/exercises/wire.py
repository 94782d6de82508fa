"""Real sockets for the checks: connected pairs, and bytes sent in pieces the reader must join.

The rule it keeps: pieces arrive one at a time. ``trickle`` sends the next piece
only once the reader has taken the last one out of its socket (or a short
deadline passed), so "one recv is one message" fails every time, not now and then.
The other way round, ``arrived`` waits until bytes sent at once all wait in the
reader's socket, so a reader that takes more than its share is caught every time.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import threading
import time
from collections.abc import Iterable


def pair() -> tuple[socket.socket, socket.socket]:
    """Two connected TCP sockets on 127.0.0.1 (port 0): (the learner's end, the check's end)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        near = socket.create_connection(listener.getsockname(), timeout=5)
        far, _ = listener.accept()
    near.settimeout(None)
    far.settimeout(5)
    return near, far


def waiting(sock: socket.socket) -> int:
    """How many received bytes wait in ``sock`` for a recv."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def arrived(sock: socket.socket, size: int, timeout: float = 2.0) -> bool:
    """Wait until ``size`` received bytes wait in ``sock`` for a recv; say whether they came in time."""
    deadline = time.monotonic() + timeout
    while waiting(sock) < size:  # no event says "all of it is here": look, briefly, until it is
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def trickle(
    sender: socket.socket,
    receiver: socket.socket,
    pieces: Iterable[bytes],
    *,
    close: bool = False,
    patience: float = 0.3,
) -> threading.Thread:
    """Send ``pieces`` from a thread, each once ``receiver`` has read the one before."""

    def run() -> None:
        try:
            for piece in pieces:
                sender.sendall(piece)
                deadline = time.monotonic() + patience
                while waiting(receiver) and time.monotonic() < deadline:
                    time.sleep(0.002)
            if close:
                sender.shutdown(socket.SHUT_WR)
        except (OSError, ValueError):  # the check closed the sockets: nothing more to send
            pass

    thread = threading.Thread(target=run, name="exercise-sender", daemon=True)
    thread.start()
    return thread


def close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a thread of the learner still blocked in recv
        except OSError:
            pass
        sock.close()
