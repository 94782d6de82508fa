"""Shared fixtures: real servers on 127.0.0.1 port 0, real clients, and a plain socket peer.

- ``server``: a started ChatServer suited to tests (short hello timeout, no rate
  limit, greeter on), closed after the test.
- ``make_server(**kwargs)``: more servers, with any ChatServer keyword; each is
  started on 127.0.0.1 port 0 and closed after the test.
- ``connect(nick, **kw)``: a ChatClient joined to ``server`` (or to
  ``server=other`` if given), closed after the test.
- ``raw(server=None)``: a ``RawPeer``, a netcat-style socket with line reads
  that time out, connected to ``server`` or the one given; closed after the test.

The autouse ``no_stray_threads`` check fails a test that leaves a thread named
``labchat-...`` alive (it waits a few seconds for them to end, then names them).
Threads that were already running when the test began (a module-scoped server,
say) are not counted against it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from labchat import ChatClient, ChatServer

# Seconds any single wait in a test may take before it counts as a failure.
WAIT = 5.0

# The keywords every test server gets unless a test says otherwise.
TEST_SERVER_DEFAULTS = {"host": "127.0.0.1", "port": 0, "hello_timeout": 2.0, "rate": None}


class RawPeer:
    """A plain TCP client, as netcat is: bytes out, lines in, every read with a timeout."""

    def __init__(self, address: tuple[str, int], timeout: float = WAIT) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.timeout = timeout
        self._buffer = b""

    def send(self, data: bytes | str) -> None:
        """Send bytes as they are, or text encoded as UTF-8 (add the newline yourself)."""
        self.sock.sendall(data.encode("utf-8") if isinstance(data, str) else data)

    def line(self, timeout: float | None = None) -> bytes:
        """The next line without its newline; TimeoutError if none comes, EOFError at the end."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete line within the timeout (have {self._buffer[:80]!r})")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"the server closed the connection (left over: {self._buffer[:80]!r})")
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def text(self, timeout: float | None = None) -> str:
        """The next line as text."""
        return self.line(timeout).decode("utf-8")

    def event(self, timeout: float | None = None) -> dict:
        """The next line parsed as a JSON event."""
        return json.loads(self.line(timeout))

    def until(self, match: Callable[[bytes], bool], timeout: float | None = None) -> bytes:
        """Skip lines until ``match(line)`` is true; return that line."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            line = self.line(max(0.0, deadline - time.monotonic()))
            if match(line):
                return line

    def event_until(self, match: Callable[[dict], bool], timeout: float | None = None) -> dict:
        """Skip JSON events until ``match(event)`` is true; return that event."""
        return json.loads(self.until(lambda line: match(json.loads(line)), timeout))

    def hello(self, nick: str, token: str | None = None) -> dict:
        """Read the banner, send a JSON hello and return the first answer (welcome or error)."""
        assert self.line().startswith(b"labchat/1 ")
        frame = {"type": "hello", "nick": nick, "version": 1}
        if token is not None:
            frame["token"] = token
        self.send(json.dumps(frame) + "\n")
        return self.event()

    def say(self, text: str) -> None:
        self.send(json.dumps({"type": "say", "text": text}) + "\n")

    def closed(self, timeout: float | None = None) -> bytes:
        """Read until the server hangs up; return what came before. TimeoutError if it never does."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        rest = self._buffer
        self._buffer = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the server did not close the connection")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return rest
            if not data:
                return rest
            rest += data

    def close(self) -> None:
        self.sock.close()


def labchat_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("labchat-")}


@pytest.fixture(autouse=True)
def no_stray_threads() -> Iterator[None]:
    """Fail the test if it leaves a ``labchat-`` thread running (after waiting up to 5 s)."""
    before = labchat_threads()
    yield
    deadline = time.monotonic() + WAIT
    while (left := labchat_threads() - before) and time.monotonic() < deadline:
        next(iter(left)).join(0.05)
    if left:
        pytest.fail(f"threads still alive after the test: {sorted(t.name for t in left)}")


@pytest.fixture
def make_server() -> Iterator[Callable[..., ChatServer]]:
    """A factory: ``make_server(**kwargs)`` starts a ChatServer on port 0; all are closed afterwards."""
    servers: list[ChatServer] = []

    def make(**kwargs: object) -> ChatServer:
        server = ChatServer(**{**TEST_SERVER_DEFAULTS, **kwargs})
        server.start()
        servers.append(server)
        return server

    yield make
    for server in reversed(servers):
        server.close()


@pytest.fixture
def server(make_server: Callable[..., ChatServer]) -> ChatServer:
    """A started ChatServer on 127.0.0.1 port 0 with test defaults, closed after the test."""
    return make_server()


@pytest.fixture
def connect(server: ChatServer) -> Iterator[Callable[..., ChatClient]]:
    """A factory: ``connect("ada")`` is a ChatClient joined to ``server`` (``server=`` picks another)."""
    clients: list[ChatClient] = []

    def make(nick: str, *, server: ChatServer = server, **kwargs: object) -> ChatClient:
        host, port = server.address
        client = ChatClient(host, port, nick=nick, timeout=WAIT, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.close()


@pytest.fixture
def raw(server: ChatServer) -> Iterator[Callable[..., RawPeer]]:
    """A factory: ``raw()`` is a RawPeer connected to ``server`` (``raw(other)`` to another one)."""
    peers: list[RawPeer] = []

    def make(target: ChatServer | None = None, timeout: float = WAIT) -> RawPeer:
        peer = RawPeer((target or server).address, timeout)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.close()
