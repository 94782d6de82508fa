"""The check for notebook 02's exercise: a server that serves one client, start to end.

The exercise: ``serve_once(listener)`` gets a socket that is already listening.
It accepts one client, greets it with one line, sends back (echoes) every line
the client sends, and when ``recv`` returns ``b''`` (the client has finished
sending) it closes the connection and returns.

The rule it keeps: as every check, it never raises and never hangs. The
learner's ``serve_once`` runs in a thread; the check is a real client on
127.0.0.1 (port 0) that waits for each answer with a deadline. The listener
hands out connections the check keeps an eye on, so it can tell "forgot to
close" from "still running" (and a connection only shut down from one closed),
count a busy loop's ``recv`` calls, and close everything at the end, which also
wakes a ``serve_once`` stuck in ``recv`` or ``accept``. When ``serve_once``
raised, that is what the check says first, with the line of the learner's code.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from . import wire
from .feedback import Attempt, Feedback, attempt, guarded, raised

GREETING_PATIENCE = 2.0  # seconds the client waits for the greeting, and for each answer
END_PATIENCE = 3.0  # seconds serve_once gets to close and return once the client has finished

LOOP_HINT = "answer in a loop: recv, send it back, recv again, and so on until recv returns b''"
BYTES_HINT = "a socket sends bytes, not str: send back data as recv gave it, conn.sendall(data)"
END_HINT = (
    "recv returns b'' once the client has finished sending, and at once every time after that: "
    "leave the loop on b'', close the connection and return"
)


def serve_once(listener: socket.socket) -> None:
    """Serve one client on an already listening socket, from hello to goodbye.

    Accept one client and greet it with one line. Then send back (echo) whatever
    it sends, line after line, until ``recv`` returns ``b''``: the client has
    finished sending. Then close the connection and return.
    """
    conn, address = listener.accept()
    with conn:  # closes the connection however we leave, even after an error
        conn.sendall(b"welcome! every line you send comes back to you\n")
        while data := conn.recv(1024):  # b"" means the client has finished sending
            conn.sendall(data)  # the echo: what arrived, as it arrived, several lines or part of one


class _Connection(socket.socket):
    """A real accepted socket that counts how often ``recv`` said the stream had ended."""

    ends = 0  # recv calls that returned b'' (or 0 bytes, for a file made with makefile)

    def recv(self, *args: Any) -> bytes:
        data = super().recv(*args)
        if not data:
            self.ends += 1
        return data

    def recv_into(self, *args: Any) -> int:
        count = super().recv_into(*args)
        if not count:
            self.ends += 1
        return count


class _Listener(socket.socket):
    """A real listening socket whose ``accept`` hands out connections the check can watch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepted: list[_Connection] = []

    def accept(self) -> tuple[socket.socket, Any]:
        plain, address = super().accept()
        conn = _Connection(plain.family, plain.type, plain.proto, fileno=plain.detach())
        self.accepted.append(conn)
        return conn, address


class _Client:
    """The check's end of the connection: what has arrived so far, each wait with a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.closed = False  # recv returned b'': the server closed the connection

    def wait_for(self, enough: Callable[[bytes], bool], patience: float) -> None:
        """Receive until ``enough(buffer)``, the server closes, or ``patience`` seconds pass."""
        deadline = time.monotonic() + patience
        while not enough(self.buffer) and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                return
            except OSError:  # reset by the server: for this client, the connection is over
                chunk = b""
            self.closed = not chunk
            self.buffer += chunk

    def line(self, patience: float) -> bytes | None:
        """The next whole line (newline included), or None if none came in time."""
        self.wait_for(lambda data: b"\n" in data, patience)
        if b"\n" not in self.buffer:
            return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line + b"\n"

    def take(self, n: int, patience: float) -> bytes:
        """Up to ``n`` bytes: all of them, or what arrived before the deadline or the close."""
        self.wait_for(lambda data: len(data) >= n, patience)
        got, self.buffer = self.buffer[:n], self.buffer[n:]
        return got


@guarded("serve_once")
def check_serve_once(feedback: Feedback, serve_once: Callable[[socket.socket], Any]) -> None:
    """``serve_once(listener)``: accept one client, greet it, echo its lines, close on b'' and return."""
    plain = socket.create_server(("127.0.0.1", 0))
    listener = _Listener(plain.family, plain.type, plain.proto, fileno=plain.detach())
    sock = None
    try:
        served = attempt(serve_once, listener, timeout=0, name="exercise-serve-once")
        sock = socket.create_connection(listener.getsockname(), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each sendall leaves at once
        client = _Client(sock)
        if _greeted(feedback, served, listener, client) and _echoes(feedback, served, client):
            _ends(feedback, served, listener, client)
    finally:
        wire.close(*([sock] if sock else []), *listener.accepted, listener)


def _greeted(feedback: Feedback, served: Attempt, listener: _Listener, client: _Client) -> bool:
    greeting = client.line(GREETING_PATIENCE)
    if greeting is not None:
        feedback.ok(f"the client connected, and the greeting arrived: {greeting!r}")
        return True
    if served.error is not None:
        feedback.not_yet(
            f"a client connected, and {raised('your serve_once', served.error)}",
            _error_hint(
                served.error, "accept, greet, answer each line, and when recv returns b'' close and return"
            ),
        )
    elif not listener.accepted:
        feedback.not_yet(
            "a client connected, and serve_once "
            + ("returned without accepting it" if served.fine else "has not accepted it"),
            "start with conn, address = listener.accept(): it hands you the connection to talk on",
        )
    elif client.buffer:
        feedback.not_yet(
            f"the greeting {client.buffer!r} does not end with a newline",
            "end the greeting with b'\\n': that is how the client knows the line is whole",
        )
    else:
        where = "the connection closed before" if client.closed else f"within {GREETING_PATIENCE:g} s,"
        feedback.not_yet(
            f"{where} no greeting arrived",
            "the server speaks first: right after accept, send one line, e.g. conn.sendall(b'welcome!\\n')",
        )
    return False


def _error_hint(error: BaseException, otherwise: str) -> str:
    if isinstance(error, TypeError) and "bytes-like" in str(error):
        return BYTES_HINT
    return otherwise


def _crashed(feedback: Feedback, served: Attempt, client: _Client, what: str) -> bool:
    """If serve_once raised (the usual reason a connection closes early), say so, first."""
    if client.closed:
        served.wait(0.5)  # its `with conn:` has closed the connection on the way out
    if served.error is None:
        return False
    feedback.not_yet(
        f"{what}, and {raised('your serve_once', served.error)}",
        _error_hint(
            served.error, "read the line it names: the client was still there, waiting for its answer"
        ),
    )
    return True


def _echoes(feedback: Feedback, served: Attempt, client: _Client) -> bool:
    client.sock.sendall(b"hello\n")
    got = client.take(6, GREETING_PATIENCE)
    if got == b"hello\n":
        feedback.ok("the client sent b'hello\\n' and got it back")
    elif not got and _crashed(feedback, served, client, "the client sent b'hello\\n'"):
        return False
    elif not got:
        feedback.not_yet(
            "the client sent b'hello\\n', and "
            + (
                "the server closed the connection instead of answering" if client.closed else "no answer came"
            ),
            "after the greeting: data = conn.recv(1024), then conn.sendall(data) sends it back",
        )
        return False
    else:
        feedback.not_yet(
            f"the client sent b'hello\\n' and got {got!r} back",
            "send back what arrived, as it arrived, newline included",
        )
        return False
    client.sock.sendall(b"one\ntwo\n")  # two lines, one packet: a single recv gets both
    got = client.take(8, GREETING_PATIENCE)
    if got == b"one\ntwo\n":
        feedback.ok("two lines sent in one packet, b'one\\ntwo\\n', both came back")
        return True
    if not got and _crashed(feedback, served, client, "the client sent b'one\\ntwo\\n'"):
        return False
    if not got:
        feedback.not_yet(
            "the first line was answered, but the next message (b'one\\ntwo\\n') was not: "
            + ("the server closed the connection" if client.closed else "no answer came"),
            LOOP_HINT,
        )
    elif got == b"one\n":
        feedback.not_yet(
            "two lines arrived in one packet (b'one\\ntwo\\n'), and only b'one\\n' came back",
            "one recv may hold more than one line (or part of one): send back all that it gave you",
        )
    else:
        feedback.not_yet(
            f"the client sent b'one\\ntwo\\n' and got {got!r} back", "send back what arrived, as it arrived"
        )
    return False


def _ends(feedback: Feedback, served: Attempt, listener: _Listener, client: _Client) -> None:
    client.sock.shutdown(socket.SHUT_WR)  # "I have finished sending": the server's recv returns b''
    served.wait(END_PATIENCE)
    client.wait_for(lambda data: False, 1.0 if served.fine else 0.2)  # did the connection close?
    conn = listener.accepted[0]
    if served.fine and client.closed and conn.fileno() == -1:
        feedback.ok("when the client finished sending (shutdown SHUT_WR), serve_once closed and returned")
    elif served.fine and client.closed:
        feedback.not_yet(
            "serve_once ended the connection (the client saw its end) and returned, but never closed it: "
            "the socket still holds its file descriptor",
            "shutdown only ends the sending; close gives the socket back to the system: "
            "call conn.close(), or put a `with conn:` block around the loop",
        )
    elif served.fine:
        feedback.not_yet(
            "serve_once returned, but left the connection open: the client is still waiting for its end",
            "close the connection before returning: a `with conn:` block around the loop closes it, "
            "even after an error",
        )
    elif served.error is not None:
        feedback.not_yet(
            f"when the client finished sending (shutdown SHUT_WR), {raised('your serve_once', served.error)}",
            _error_hint(served.error, END_HINT),
        )
    elif conn.ends > 1:
        feedback.not_yet(
            f"the client finished sending, and recv returned b'' {conn.ends:,} times in "
            f"{END_PATIENCE:g} s, yet serve_once went on (a busy loop)",
            END_HINT,
        )
    elif client.closed:
        feedback.not_yet(
            f"serve_once closed the connection, but {END_PATIENCE:g} s later it was still running",
            "serve_once serves one client: return once its connection is closed (no second accept)",
        )
    else:
        feedback.not_yet(
            f"{END_PATIENCE:g} s after the client finished sending (shutdown SHUT_WR), serve_once was "
            "still running (waiting in recv?)",
            END_HINT,
        )
