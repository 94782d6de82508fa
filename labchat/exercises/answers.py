"""labchat's own answers to the tutorials' exercises, for a learner who has not written theirs yet.

The rule it keeps: each answer is the plain, short version a learner could
write after reading the notebook, with no trick the notebook did not teach, and
each passes its check (the tests say so). A notebook falls back to these through
``yours_or_ours``, so a skipped exercise never stops the cells that follow.
"""

from __future__ import annotations

import queue
import random
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from .alive import keep_alive as keep_alive  # answers kept beside their checks, found here too
from .basics import serve_once as serve_once
from .feedback import Result


def yours_or_ours(result: Result, yours: Any, ours: Any, what: str) -> Any:
    """The learner's answer if its check passed, else labchat's, with one line saying which."""
    if result.passed:
        print(f"the cells below use your {what}")
        return yours
    print(f"not yet: the cells below use labchat's own {what} instead of yours")
    return ours


# -- framing: notebooks 03 and 04 ----------------------------------------------------------------


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes from ``sock``, however many recv calls that takes; EOFError if it ends first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"socket closed with {n - len(data)} bytes left")
        data += chunk
    return data


def recv_line(sock: socket.socket) -> bytes:
    """One line without its newline, read a byte at a time so nothing after it is taken."""
    data = b""
    while not data.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            raise EOFError("socket closed in the middle of a line")
        data += byte
    return data[:-1]


def my_sendall(sock: socket.socket, data: bytes) -> None:
    """``sendall`` built from ``send``: send what is left until nothing is."""
    view = memoryview(data)
    while view:
        view = view[sock.send(view) :]


class LineDecoder:
    """Bytes in, whole lines out: what is after the last newline waits for the next piece."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def lines(self) -> list[bytes]:
        *done, self.buffer = self.buffer.split(b"\n")
        return done


class LengthDecoder:
    """Messages framed by a 4-byte big-endian length; a length over ``max_size`` is refused."""

    def __init__(self, max_size: int = 65536) -> None:
        self.max_size = max_size
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= 4:
            (size,) = struct.unpack("!I", self.buffer[:4])
            if size > self.max_size:
                raise ValueError(f"message of {size} bytes announced, limit {self.max_size}")

    def messages(self) -> list[bytes]:
        out = []
        while len(self.buffer) >= 4:
            (size,) = struct.unpack("!I", self.buffer[:4])
            if len(self.buffer) < 4 + size:
                break
            out.append(self.buffer[4 : 4 + size])
            self.buffer = self.buffer[4 + size :]
            self.feed(b"")  # check the next header too
        return out


# -- threads: notebook 05 ---------------------------------------------------------------------


def receive_into(sock: socket.socket, inbox: queue.Queue) -> None:
    """The receiver thread's loop: every line into ``inbox``, then None when the stream ends."""
    buffer = b""
    while chunk := sock.recv(4096):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            inbox.put(line.decode())
    inbox.put(None)


class Counter:
    """A counter whose read-and-write is one step for every thread, thanks to a lock."""

    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def increment(self, pause: Callable[[], Any]) -> None:
        with self.lock:
            current = self.value
            pause()
            self.value = current + 1


def swap(sock: socket.socket, data: bytes) -> bytes:
    """Send ``data`` and receive as much back at the same time: the send runs in its own thread."""
    sender = threading.Thread(target=sock.sendall, args=(data,))
    sender.start()
    got = recv_exactly(sock, len(data))
    sender.join()
    return got


# -- the room: notebook 08 --------------------------------------------------------------------


def roll(nick: str, arg: str, rng: random.Random) -> str:
    """``/roll [SIDES]``: one die, six sides unless said otherwise, and a usage line for nonsense."""
    if not arg:
        sides = 6
    elif arg.isdigit() and 2 <= int(arg) <= 1000:
        sides = int(arg)
    else:
        return "usage: /roll [SIDES], SIDES from 2 to 1000"
    return f"{nick} rolls {rng.randint(1, sides)} (1-{sides})"


# -- servers: notebooks 06.1 and 09 -------------------------------------------------------------


def read_lines(sock: socket.socket, count: int) -> list[str]:
    """``count`` lines from ``sock``, however the server chopped them: a file object buffers."""
    lines = []
    with sock.makefile("r", encoding="utf-8") as stream:
        while len(lines) < count:
            lines.append(stream.readline().rstrip("\n"))
    return lines


def serve_echo(listener: socket.socket, stop: threading.Event) -> None:
    """An echo server for many clients on one thread: a selector says who is ready."""
    with selectors.DefaultSelector() as selector:
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    conn.setblocking(False)
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                data = key.fileobj.recv(4096)
                if data:
                    key.fileobj.sendall(data)
                else:
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
        for key in list(selector.get_map().values()):
            if key.fileobj is not listener:
                key.fileobj.close()
