"""Checks against servers: a client that survives a chopping labchat room, and a selectors echo server.

The rule it keeps: the servers are real. The client is pointed at a
``ChatServer(faults={"chop": True})`` on port 0, which sends its bytes 1 to 7 at
a time, then called twice on a real TCP pair where two lines arrived in one
piece; the echo server gets a listening socket on 127.0.0.1 port 0 and real
clients, one of which never says a word, and must close the others once stopped.

When the learner's code raises, the check says so first, in one line: the
exception and the line of the learner's own code that raised it
(``learner_error``), never the whole traceback.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import wire
from .feedback import Attempt, Feedback, attempt, describe, guarded, learners_file


def learner_error(error: BaseException) -> str:
    """``error`` in one line, with where the learner's own code raised it.

    'TypeError: a bytes-like object is required, not 'str', at line 12 of serve_echo's
    cell: conn.sendall(text)' for code in a notebook cell (whose lines count from the
    top of the cell), 'at line 12 of echo.py: ...' for code in a file. A socket in the
    message is shortened to its number.
    """
    said = re.sub(r"<socket\.socket (?:\[closed\] )?fd=(-?\d+)[^>]*>", r"<socket fd=\1>", describe(error))
    if len(said) > 200:
        said = said[:197] + "..."
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if learners_file(frame.filename)]
    if not frames:
        return said
    frame = frames[-1]
    name = Path(frame.filename).name
    in_a_cell = "ipykernel_" in frame.filename or frame.filename.startswith("<ipython-input")
    where = f"{frame.name}'s cell" if in_a_cell else name
    code = f": {frame.line}" if frame.line else ""
    return f"{said}, at line {frame.lineno} of {where}{code}"


@contextlib.contextmanager
def quiet_room(**options: Any) -> Iterator[Any]:
    """A started ChatServer on 127.0.0.1 port 0 whose log is kept, not printed into a cell."""
    from ..server import ChatServer

    # The host panel listens on the server's loggers too: a check's room, meant to see a
    # learner's greeter raise, must not show up among a live host's warnings.
    loggers = [logging.getLogger(name) for name in ("labchat", "labchat.server", "labchat.backplane")]
    kept = [(logger.handlers, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.handlers, logger.propagate = [logging.NullHandler()], False
    try:
        with ChatServer(port=0, **options) as room:
            yield room
    finally:
        for logger, (handlers, propagate) in zip(loggers, kept, strict=True):
            logger.handlers, logger.propagate = handlers, propagate


# What a learner reads when read_lines decoded a character in pieces.
WHOLE_CHARACTERS = (
    "decode a whole line at once, never byte by byte or one recv at a time: 👋 is 4 bytes in UTF-8, "
    "and a piece of it is no character (errors='replace' turns each piece into '�')"
)

# What a learner reads when read_lines kept its leftovers in a local variable.
NOTHING_LEFT_BEHIND = (
    "a plain function keeps nothing between calls, so what its recv took past the last line is "
    "lost when it returns: take one byte at a time (sock.recv(1), as notebook 4's recv_line did), "
    "so that nothing after the line leaves the socket"
)


@guarded("client on a chopping server")
def check_chopped_client(feedback: Feedback, read_lines: Callable[[socket.socket, int], list]) -> None:
    """``read_lines(sock, count)`` returns the next ``count`` lines (str, no newline), however they arrive."""
    from ..bot import Greeter

    hello = f"greeter: {Greeter().on_join('ada')[0]}"  # the room's own greeter, with its 👋
    with quiet_room(faults={"chop": True}) as room:
        sock = socket.create_connection(room.address, timeout=5)
        sock.settimeout(None)
        try:
            sock.sendall(b"ada\n")  # the nick: labchat talks plain lines to a client that sends one
            got = attempt(read_lines, sock, 4, timeout=5)
            if got.fine and not isinstance(got.value, list):
                feedback.not_yet(
                    f"read_lines(sock, 4) returned a {type(got.value).__name__}, not a list",
                    "collect the lines in a list, and return the list",
                )
                return
            lines = got.value or []

            def whole(lines: list) -> bool:
                return (
                    len(lines) == 4
                    and all(isinstance(line, str) for line in lines)
                    and lines[0].startswith("labchat/1 Welcome")
                    and lines[1].startswith("Welcome, ada!")
                    and lines[2] == "--> ada joined"
                    and lines[3] == hello
                )

            if got.fine and whole(lines):
                feedback.ok("the server sent its bytes 1 to 7 at a time, and 4 whole lines came out")
                feedback.ok(f"the room said: {lines[2]}")
            elif got.fine and any(isinstance(line, bytes) for line in lines):
                feedback.not_yet(
                    f"4 lines were sent in tiny pieces; it returned bytes: {[line[:20] for line in lines]!r}",
                    "return text: decode each whole line, line.decode('utf-8')",
                )
                return
            elif got.fine and "\ufffd" in "".join(map(str, lines)):
                mangled = next(line for line in lines if "\ufffd" in str(line))
                feedback.not_yet(
                    f"4 lines were sent in tiny pieces; the greeter's came out as {mangled[:30]!r}, "
                    f"not {hello[:27]!r}",
                    WHOLE_CHARACTERS,
                )
                return
            elif got.fine and whole([str(line).rstrip("\r\n") for line in lines]):
                feedback.not_yet(
                    f"4 whole lines came out, each still ending in its newline: {lines[2]!r}",
                    "a line is what comes before b'\\n': leave the newline out of the line you return",
                )
                return
            elif got.fine:
                feedback.not_yet(
                    f"4 lines were sent in tiny pieces; it returned {[str(line)[:20] for line in lines]!r}",
                    "one recv is not one line: add what arrives to a buffer, and cut a line off only "
                    "where you find b'\\n'",
                )
                return
            else:
                feedback.not_yet(
                    f"the room sent 4 lines in tiny pieces, and after that read_lines(sock, 4) {_went(got)}",
                    WHOLE_CHARACTERS
                    if isinstance(got.error, UnicodeDecodeError)
                    else "one recv is not one line: one recv may hold a piece of a line, or several "
                    "lines. Add what arrives to a buffer and cut lines off at b'\\n'",
                )
                return
        finally:
            wire.close(sock)
    _check_two_calls(feedback, read_lines)


def _check_two_calls(feedback: Feedback, read_lines: Callable[[socket.socket, int], list]) -> None:
    """Two lines in one piece, read by two calls: the second must still find its line."""
    mine, theirs = wire.pair()
    try:
        data = b"one\ntwo\n"
        theirs.sendall(data)
        wire.arrived(mine, len(data))  # both lines wait in the socket before the first call
        first = attempt(read_lines, mine, 1)
        if not (first.fine and first.value == ["one"]):
            feedback.not_yet(
                f"'one\\ntwo\\n' arrived in one piece, and read_lines(sock, 1) {_went(first)}",
                "return a list of exactly `count` lines, here ['one']",
            )
            return
        second = attempt(read_lines, mine, 1)
        if second.fine and second.value == ["two"]:
            feedback.ok(
                "'one\\ntwo\\n' arrived in one piece: read_lines(sock, 1) gave ['one'], and a second "
                "call ['two']"
            )
            return
        feedback.not_yet(
            f"'one\\ntwo\\n' arrived in one piece; read_lines(sock, 1) gave ['one'], then a second "
            f"read_lines(sock, 1) {_went(second)}: the first call had taken 'two' out of the socket",
            NOTHING_LEFT_BEHIND,
        )
    finally:
        wire.close(mine, theirs)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _went(outcome: Attempt) -> str:
    """How one call went, to follow its name: 'returned [...]', 'raised ...', 'was still waiting ...'."""
    if outcome.stuck:
        return "was still waiting when the check stopped waiting for it"
    if outcome.error is not None:
        return f"raised {learner_error(outcome.error)}"
    return f"returned {_short(outcome.value)}"


# The thread the check calls the learner's serve_echo in: the one thread it may use.
ECHO_THREAD = "exercise-echo"


class _Listener(socket.socket):
    """A listening socket that holds on to every connection it accepts.

    Python closes a socket once nothing refers to it, so a serve_echo that forgets to
    close its clients would seem to close them as it returns. Held here, what it left
    open stays open, as in a server that goes on running, and the check can tell.
    """

    def __init__(self) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.accepted: list[socket.socket] = []

    def accept(self) -> tuple[socket.socket, Any]:
        conn, address = super().accept()
        self.accepted.append(conn)
        return conn, address


def _echo_hint(error: BaseException) -> str:
    """A hint for what serve_echo raised: the mistakes a learner makes with selectors."""
    text = str(error)
    if isinstance(error, TypeError) and "bytes-like" in text:
        return "a socket sends bytes: send back the very bytes recv returned, without decoding them"
    if isinstance(error, KeyError) and "already registered" in text:
        return (
            "unregister a client before you close it: a closed socket's number goes to the next "
            "client, and the selector still holds the old one under it"
        )
    if isinstance(error, ValueError) and "file descriptor" in text:
        return "that socket was closed already: unregister a client once, just before you close it"
    if isinstance(error, BlockingIOError):
        return (
            "a non-blocking socket raises BlockingIOError instead of waiting: recv only what select() "
            "says is ready, and catch BlockingIOError where a send does not fit"
        )
    return "that line raised it: fix it, then run the check again"


@guarded("selectors echo server")
def check_selector_echo(
    feedback: Feedback, serve_echo: Callable[[socket.socket, threading.Event], Any]
) -> None:
    """``serve_echo(listener, stop)``: one thread, ``selectors``; echoes every client until stop is set."""
    listener = _Listener()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()
    before = set(threading.enumerate())
    server = attempt(serve_echo, listener, stop, timeout=0, name=ECHO_THREAD)
    clients: list[socket.socket] = []

    def client() -> socket.socket:
        sock = socket.create_connection(listener.getsockname(), timeout=3)
        clients.append(sock)
        return sock

    def raised(when: str) -> bool:
        """Say what serve_echo raised, if it did: that comes before anything else."""
        if server.stuck or server.error is None:
            return False
        feedback.not_yet(f"{when}, serve_echo raised {learner_error(server.error)}", _echo_hint(server.error))
        return True

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
            if not raised("while clients connected and sent lines"):
                feedback.not_yet(
                    f"with one silent client connected, two others got {echoes!r}",
                    "a blocking recv waits for one client while everyone else waits: register every "
                    "socket with the selector and recv only from those select() says are ready",
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
        elif raised("after a client hung up"):
            return
        else:
            feedback.not_yet(
                f"after a client hung up, a new client got {echo!r}",
                "recv returning b'' means that client left: unregister and close it, then go on",
            )
        silent.close()
        stop.set()
        if not server.wait(3).fine:
            if not raised("once stop was set"):
                feedback.not_yet(
                    f"stop was set: {server.problem()}",
                    "give select() a timeout (say 0.1 s) and check stop.is_set() each time round",
                )
            return
        feedback.ok("setting stop ended serve_echo")
        _check_closed(feedback, [talkers[1], late])
    finally:
        stop.set()
        wire.close(*clients, listener)
        if not server.stuck:  # what serve_echo left open, the check closes (never under a running loop)
            wire.close(*listener.accepted)


def _check_closed(feedback: Feedback, connected: list[socket.socket]) -> None:
    """Once serve_echo has returned, the clients still connected see the end: it closed them all."""
    deadline = time.monotonic() + 3.0
    waiting = [sock for sock in connected if not _sees_the_end(sock, deadline)]
    if not waiting:
        feedback.ok("the clients still connected saw the end (recv gave b'') once serve_echo returned")
        return
    count = len(waiting)
    feedback.not_yet(
        f"serve_echo returned, but left {count} client connection{'s' if count > 1 else ''} open: "
        "those clients wait for ever, never told that the server has gone",
        "once stop is set, unregister and close every client still registered "
        "(the listener belongs to whoever made it)",
    )


def _sees_the_end(sock: socket.socket, deadline: float) -> bool:
    """Whether ``sock``'s peer closes (recv gives b'', or a reset) before the deadline."""
    sock.settimeout(max(0.05, deadline - time.monotonic()))
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except OSError:
        return False


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
