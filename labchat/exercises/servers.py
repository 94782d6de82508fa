"""Checks against servers: a client that survives a chopping labchat room, and a selectors echo server.

The rule it keeps: the servers are real. The client is pointed at a
``ChatServer(faults={"chop": True})`` on port 0, which sends its bytes 1 to 7 at
a time; the echo server gets a listening socket on 127.0.0.1 port 0 and real
clients, one of which never says a word.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from . import wire
from .feedback import Feedback, attempt, guarded


@contextlib.contextmanager
def quiet_room(**options: Any) -> Iterator[Any]:
    """A started ChatServer on 127.0.0.1 port 0 whose log is kept, not printed into a cell."""
    from ..server import ChatServer

    logger = logging.getLogger("labchat")
    kept = logger.handlers, logger.propagate
    logger.handlers, logger.propagate = [logging.NullHandler()], False
    try:
        with ChatServer(port=0, **options) as room:
            yield room
    finally:
        logger.handlers, logger.propagate = kept


@guarded("client on a chopping server")
def check_chopped_client(feedback: Feedback, read_lines: Callable[[socket.socket, int], list]) -> None:
    """``read_lines(sock, count)`` returns the next ``count`` lines (str, no newline), however they arrive."""
    with quiet_room(faults={"chop": True}) as room:
        sock = socket.create_connection(room.address, timeout=5)
        sock.settimeout(None)
        try:
            sock.sendall(b"ada\n")  # the nick: labchat talks plain lines to a client that sends one
            got = attempt(read_lines, sock, 4, timeout=5)
            lines = [line.decode() if isinstance(line, bytes) else line for line in (got.value or [])]
            whole = (
                len(lines) == 4
                and lines[0].startswith("labchat/1 Welcome")
                and lines[1].startswith("Welcome, ada!")
                and lines[2] == "--> ada joined"
                and lines[3].startswith("greeter: ")
            )
            if got.fine and whole:
                feedback.ok("the server sent its bytes 1 to 7 at a time, and 4 whole lines came out")
                feedback.ok(f"the room said: {lines[2]}")
            elif got.fine:
                feedback.not_yet(
                    f"4 lines were sent in tiny pieces; it returned {[line[:20] for line in lines]!r}",
                    "one recv is not one line: add what arrives to a buffer, and cut a line off only "
                    "where you find b'\\n' (or read with sock.makefile())",
                )
            else:
                feedback.not_yet(
                    f"the room sent 4 lines in tiny pieces, and after that {got.problem()}",
                    "one recv is not one line: one recv may hold a piece of a line, or several lines. "
                    "Add what arrives to a buffer and cut lines off at b'\\n' (or read with sock.makefile())",
                )
        finally:
            wire.close(sock)


# The thread the check calls the learner's serve_echo in: the one thread it may use.
ECHO_THREAD = "exercise-echo"


@guarded("selectors echo server")
def check_selector_echo(
    feedback: Feedback, serve_echo: Callable[[socket.socket, threading.Event], Any]
) -> None:
    """``serve_echo(listener, stop)``: one thread, ``selectors``; echoes every client until stop is set."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    before = set(threading.enumerate())
    server = attempt(serve_echo, listener, stop, timeout=0, name=ECHO_THREAD)
    clients: list[socket.socket] = []

    def client() -> socket.socket:
        sock = socket.create_connection(listener.getsockname(), timeout=3)
        clients.append(sock)
        return sock

    try:
        silent = client()  # connects and never says a word
        talkers = [client(), client()]
        try:
            for number, sock in enumerate(talkers):
                sock.sendall(f"hello from {number}\n".encode())
            echoes = [_read(sock, len("hello from 0\n")) for sock in talkers]
        except OSError as error:
            echoes = [f"nothing ({type(error).__name__})"]
        if echoes == [b"hello from 0\n", b"hello from 1\n"]:
            feedback.ok("two clients got their own words back while a third sat silent")
            started = [t for t in threading.enumerate() if t not in before and t.name != ECHO_THREAD]
            if started:
                feedback.not_yet(
                    f"while three clients were connected, {len(started)} new "
                    f"thread{'s' if len(started) > 1 else ''} ran besides the one serve_echo was called in",
                    "one thread and a selector, not a thread per client: register each new connection "
                    "with the selector and serve it in the same loop as the listener",
                )
            else:
                feedback.ok("it served all three clients in its one thread")
        else:
            feedback.not_yet(
                f"with one silent client connected, two others got {echoes!r}",
                "a blocking recv waits for one client while everyone else waits: register every socket "
                "with the selector and recv only from those select() says are ready",
            )
            return
        talkers[0].close()
        late = client()
        try:
            late.sendall(b"still there?\n")
            echo = _read(late, 13)
        except OSError as error:
            echo = f"nothing ({type(error).__name__})"
        if echo == b"still there?\n":
            feedback.ok("a client hung up, and a new one was still served")
        else:
            feedback.not_yet(
                f"after a client hung up, a new client got {echo!r}",
                "recv returning b'' means that client left: unregister and close it, then go on",
            )
        silent.close()
        stop.set()
        if server.wait(3).fine:
            feedback.ok("setting stop ended serve_echo")
        else:
            feedback.not_yet(
                f"stop was set: {server.problem()}",
                "give select() a timeout (say 0.1 s) and check stop.is_set() each time round",
            )
    finally:
        stop.set()
        wire.close(*clients, listener)


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
