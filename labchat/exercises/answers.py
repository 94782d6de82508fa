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

from ..bot import Greeter
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
    """Return exactly n bytes from sock, however many recv calls that takes.

    Raise EOFError if the peer closes (recv returns b'') before n bytes have come.
    """
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))  # never more than is still missing
        if not chunk:
            raise EOFError(f"the peer closed with {n - len(data)} of {n} bytes still to come")
        data += chunk
    return data


def recv_line(sock: socket.socket) -> bytes:
    """The next line from sock, without its b"\n"; nothing after it is taken from the socket.

    Raise EOFError if the peer closes before the line ends.
    """
    line = b""
    while True:
        byte = sock.recv(1)  # one byte: nothing past the newline leaves the socket
        if not byte:
            raise EOFError(f"the peer closed in the middle of a line, {len(line)} bytes in")
        if byte == b"\n":
            return line
        line += byte


def my_sendall(sock: socket.socket, data: bytes) -> None:
    """Send every byte of data, calling sock.send as often as it takes (never sock.sendall)."""
    view = memoryview(data)  # slicing a memoryview copies nothing
    while view:
        taken = sock.send(view)
        view = view[taken:]


class LineDecoder:
    """Bytes in, whole lines out: feed() what recv returned; lines() gives the complete ones."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def lines(self) -> list[bytes]:
        """Every complete line not handed out yet, without its b"\n"."""
        *complete, self.buffer = self.buffer.split(b"\n")  # after the last b"\n": not a line yet
        return complete


class LengthDecoder:
    """Messages framed by a 4-byte big-endian length; a length over max_size is refused."""

    def __init__(self, max_size: int = 65536) -> None:
        self.max_size = max_size
        self.buffer = b""

    def feed(self, data: bytes) -> None:
        """Add bytes; raise ValueError as soon as a header announces more than max_size."""
        self.buffer += data
        self._check_header()

    def _check_header(self) -> None:
        if len(self.buffer) >= 4:
            (size,) = struct.unpack("!I", self.buffer[:4])
            if size > self.max_size:
                raise ValueError(f"a message of {size:,} bytes was announced, the limit is {self.max_size:,}")

    def messages(self) -> list[bytes]:
        """Every complete message not handed out yet, in order."""
        out = []
        while len(self.buffer) >= 4:
            (size,) = struct.unpack("!I", self.buffer[:4])
            if len(self.buffer) < 4 + size:
                break  # its payload is not all here yet
            out.append(self.buffer[4 : 4 + size])
            self.buffer = self.buffer[4 + size :]
            self._check_header()  # the next header may be in already
        return out


# -- threads: notebook 05 ---------------------------------------------------------------------


def receive_into(sock: socket.socket, inbox: queue.Queue) -> None:
    """The receiver thread's loop: each line on inbox (str, no newline); None when recv gives b""."""
    buffer = b""
    while chunk := sock.recv(4096):  # b"" ends the loop: the other side has closed
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")  # the last piece is an unfinished line (or b"")
        for line in lines:
            inbox.put(line.decode("utf-8"))
    inbox.put(None)


class Counter:
    """Counts the calls of increment from many threads; value must count every one."""

    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def increment(self, pause: Callable[[], object]) -> None:
        with self.lock:  # read, pause and write are one step: no other increment cuts in
            current = self.value
            pause()
            self.value = current + 1


def swap(sock: socket.socket, data: bytes) -> bytes:
    """Send data to the peer and return the len(data) bytes it sends back, both at once."""
    sender = threading.Thread(target=sock.sendall, args=(data,), name="swap-sender")
    sender.start()  # the sending goes on in there ...
    got = bytearray()
    while len(got) < len(data):  # ... while this thread receives
        chunk = sock.recv(min(1 << 16, len(data) - len(got)))
        if not chunk:
            raise EOFError(f"the peer closed with {len(data) - len(got)} bytes still to come")
        got += chunk
    sender.join()
    return bytes(got)


# -- the room: notebook 08 --------------------------------------------------------------------


class HelpfulGreeter(Greeter):
    """The greeter, plus one answer: asked how to leave, it says to type bye."""

    def on_message(self, nick: str, text: str) -> list[str]:
        if text.rstrip().endswith("?") and "leave" in text.lower():
            return [f"Type bye and press Enter, {nick}: the room says goodbye and lets you go. 👋"]
        return super().on_message(nick, text)


def roll(nick: str, arg: str, rng: random.Random) -> str:
    """'/roll [SIDES]': one die with SIDES faces (6 if not given), as a line for the room.

    roll("ada", "", rng) -> "ada rolls 4 (1-6)"; roll("ada", "20", rng) -> "ada rolls 17 (1-20)";
    a SIDES that is not a whole number from 2 to 1000 -> "usage: /roll [SIDES], ..."
    """
    if not arg:
        sides = 6
    elif arg.isdecimal() and 2 <= int(arg) <= 1000:  # digits only: no sign, no dot
        sides = int(arg)
    else:
        return "usage: /roll [SIDES], SIDES a whole number from 2 to 1000"
    return f"{nick} rolls {rng.randint(1, sides)} (1-{sides})"  # randint includes both ends


# -- servers: notebooks 06.1 and 09 ---------------------------------------------------------------


def read_lines(sock: socket.socket, count: int) -> list[str]:
    """The next `count` lines from `sock` (str, without the newline), however they were chopped."""
    lines = []
    for _ in range(count):
        line = b""
        while not line.endswith(b"\n"):
            byte = sock.recv(1)  # one byte at a time: nothing after this line leaves the socket
            if not byte:
                raise EOFError(f"the server closed after {len(lines)} of {count} lines")
            line += byte
        lines.append(line[:-1].decode("utf-8", errors="replace"))  # whole lines: whole characters
    return lines


def serve_echo(listener: socket.socket, stop: threading.Event) -> None:
    """Echo every client's bytes back to it, all in this one thread, until `stop` is set."""
    pending = {}  # each client's socket -> the bytes it sent that have not gone back yet
    cap = 64 * 1024  # past this much pending, stop reading that client until it catches up

    def hang_up(sock):
        selector.unregister(sock)  # before close: a closed socket's number goes to the next client
        del pending[sock]
        sock.close()

    with selectors.DefaultSelector() as selector:
        listener.setblocking(False)  # accept() must never wait either
        selector.register(listener, selectors.EVENT_READ)
        while not stop.is_set():
            for key, events in selector.select(timeout=0.1):  # 0.1 s at most, then look at stop
                sock = key.fileobj
                if sock is listener:
                    conn, _ = listener.accept()
                    conn.setblocking(False)
                    selector.register(conn, selectors.EVENT_READ)
                    pending[conn] = b""
                    continue
                try:
                    if events & selectors.EVENT_READ:
                        data = sock.recv(4096)
                        if not data:  # b"": this client hung up
                            hang_up(sock)
                            continue
                        pending[sock] += data
                    if pending[sock]:  # send what fits now, keep the rest for later
                        pending[sock] = pending[sock][sock.send(pending[sock]) :]
                except BlockingIOError:
                    pass  # its send buffer is full: try again when it is writable
                except ConnectionError:  # it reset the connection: gone, as with b""
                    hang_up(sock)
                    continue
                reading = selectors.EVENT_READ if len(pending[sock]) < cap else 0
                wanted = reading | (selectors.EVENT_WRITE if pending[sock] else 0)
                if key.events != wanted:
                    selector.modify(sock, wanted)
        for sock in list(pending):
            hang_up(sock)
