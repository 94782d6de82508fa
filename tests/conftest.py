"""Shared fixtures and helpers: real servers on 127.0.0.1 port 0, real clients, plain socket peers.

Servers in this process (built in one place, ``make_server``, from ``TEST_SERVER_DEFAULTS``):

- ``server``: a started ChatServer suited to tests (short hello timeout, no rate
  limit, greeter on), closed after the test.
- ``engine``: the server class under test, parametrized: ThreadingChatServer and
  SelectorChatServer, so every test that uses a server runs on both engines.
- ``make_server(**kwargs)``: more servers, with any ChatServer keyword; each is
  started on 127.0.0.1 port 0 and closed after the test.
- ``connect(nick, **kw)``: a ChatClient joined to ``server`` (or to
  ``server=other`` if given), closed after the test.
- ``raw(server=None)``: a ``RawPeer`` connected to ``server`` or the one given;
  closed after the test.

Raw peers:

- ``RawPeer``: a netcat-style socket that does exactly what the test says (so it
  can be the hostile peer too): bytes out, lines in, every read with a timeout.
  Lines come as bytes (``line``, ``until``, ``line_with``, ``rest``, ``closed``),
  text (``text``), JSON dicts (``event``, ``event_until``) or protocol Events
  (``decoded``, ``decoded_until``); all it ever received is in ``received``.
- ``raw_peer(where, **kw)``: a RawPeer connected to ``where`` (a ChatServer, a
  ServeProcess or a ``(host, port)`` pair) without starting ``server``; closed
  after the test. ``read_banner=True`` reads the banner at once into
  ``peer.banner``; ``rcvbuf=N`` keeps its receive window small from the start.

``labchat serve`` as a process:

- ``serve(*args, env=None, cwd=None)``: a ``ServeProcess``, that is ``labchat serve
  --port 0 ARGS`` with no terminal, returned once its first line says where it
  listens (``host``, ``port``, ``where``, ``address``, ``join_command``); killed
  after the test if still running. ``stop(signal)`` gives (status, stdout, stderr).
- ``listening(text)``: where ``labchat serve`` said it listens, found in any text
  (a process's first line, a terminal's screen); None until it has said so.
- ``environ(**extra)``: this environment without LABCHAT_TOKEN and NO_COLOR, plus ``extra``.

Waiting and threads (plain functions: ``from conftest import wait_until``):

- ``wait_until(condition, timeout)``: check until the condition holds or the
  deadline passes; say whether it held. Only for what no event announces.
- ``labchat_threads()``: the sorted names of the live ``labchat-...`` threads.

The autouse ``no_stray_threads`` check fails a test that leaves a thread named
``labchat-...`` alive (it waits a few seconds for them to end, then names them).
Threads that were already running when the test began (a module-scoped server,
say) are not counted against it.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest

from labchat import ChatClient, ChatServer
from labchat.exercises import Result
from labchat.protocol import Event, decode_event
from labchat.server import SelectorChatServer, ThreadingChatServer

# Seconds any single wait in a test may take before it counts as a failure.
WAIT = 5.0

# The keywords every test server gets unless a test says otherwise.
TEST_SERVER_DEFAULTS = {"host": "127.0.0.1", "port": 0, "hello_timeout": 2.0, "rate": None}

# -- servers in this process, and clients of them ----------------------------------------------------


# The two engines: every test that takes ``server``, ``make_server`` or ``engine`` runs on both.
ENGINES = {"threading": ThreadingChatServer, "selector": SelectorChatServer}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> type[ChatServer]:
    """The server class under test: ThreadingChatServer, then SelectorChatServer."""
    return ENGINES[request.param]


@pytest.fixture
def make_server(engine: type[ChatServer]) -> Iterator[Callable[..., ChatServer]]:
    """A factory: ``make_server(**kwargs)`` starts an ``engine`` server on port 0; all closed afterwards."""
    servers: list[ChatServer] = []

    def make(**kwargs: object) -> ChatServer:
        server = engine(**{**TEST_SERVER_DEFAULTS, **kwargs})
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
def raw(server: ChatServer, raw_peer: Callable[..., RawPeer]) -> Callable[..., RawPeer]:
    """A factory: ``raw()`` is a RawPeer connected to ``server`` (``raw(other)`` to another one)."""

    def make(target: ChatServer | None = None, timeout: float = WAIT) -> RawPeer:
        return raw_peer(target or server, timeout)

    return make


# -- raw peers: a socket that does exactly what the test says ----------------------------------------


class RawPeer:
    """A plain TCP client, as netcat is: bytes out, lines in, every read with a timeout.

    It sends nothing it is not told to, so it can play any peer: a person typing
    lines, a program speaking JSON, or a hostile one that says nothing, trickles,
    floods or stops reading (``rcvbuf``, set before connecting, keeps the kernel's
    window small, so a peer that stops reading is noticed soon). ``banner`` is the
    server's first line once read: at connect with ``read_banner=True``, or by
    ``hello()``. Every byte received is kept in ``received``; a reset counts as the end.
    """

    def __init__(
        self,
        address: tuple[str, int],
        timeout: float = WAIT,
        *,
        rcvbuf: int | None = None,
        read_banner: bool = False,
    ) -> None:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(*address[:2], type=socket.SOCK_STREAM)[0]
        self.sock = socket.socket(family, kind, proto)
        try:
            if rcvbuf is not None:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect(sockaddr)
        except OSError:
            self.sock.close()
            raise
        self.timeout = timeout
        self.received = bytearray()
        self.banner: bytes | None = None
        self._buffer = b""
        if read_banner:
            self.banner = self.line()

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def _recv(self, deadline: float) -> bytes:
        """What one ``recv`` gives before the deadline (TimeoutError after it); b"" once the peer is gone."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("nothing came within the timeout")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.received += data
        return data

    def send(self, data: bytes | str) -> None:
        """Send bytes as they are, or text encoded as UTF-8 (add the newline yourself)."""
        self.sock.sendall(data.encode("utf-8") if isinstance(data, str) else data)

    def line(self, timeout: float | None = None) -> bytes:
        """The next line without its newline; TimeoutError if none comes, EOFError at the end."""
        deadline = self._deadline(timeout)
        while b"\n" not in self._buffer:
            try:
                data = self._recv(deadline)
            except TimeoutError:
                have = self._buffer[:80]
                raise TimeoutError(f"no complete line within the timeout (have {have!r})") from None
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

    def decoded(self, timeout: float | None = None) -> Event:
        """The next line as the protocol's Event, as a ChatClient would receive it."""
        return decode_event(self.line(timeout))

    def until(self, match: Callable[[bytes], bool], timeout: float | None = None) -> bytes:
        """Skip lines until ``match(line)`` is true; return that line."""
        deadline = self._deadline(timeout)
        while True:
            line = self.line(max(0.0, deadline - time.monotonic()))
            if match(line):
                return line

    def line_with(self, part: bytes, timeout: float | None = None) -> bytes:
        """Skip lines until one that holds ``part``; return it."""
        return self.until(lambda line: part in line, timeout)

    def event_until(self, match: Callable[[dict], bool], timeout: float | None = None) -> dict:
        """Skip JSON events until ``match(event)`` is true; return that event."""
        return json.loads(self.until(lambda line: match(json.loads(line)), timeout))

    def decoded_until(self, match: Callable[[Event], bool], timeout: float | None = None) -> Event:
        """Skip lines until one decodes to an Event that ``match`` accepts; return that Event."""
        return decode_event(self.until(lambda line: match(decode_event(line)), timeout))

    def hello(self, nick: str, token: str | None = None) -> dict:
        """Read the banner (unless it was read), send a JSON hello; the first answer (welcome or error)."""
        if self.banner is None:
            self.banner = self.line()
        assert self.banner.startswith(b"labchat/1 "), self.banner
        frame = {"type": "hello", "nick": nick, "version": 1}
        if token is not None:
            frame["token"] = token
        self.send(json.dumps(frame) + "\n")
        return self.event()

    def say(self, text: str) -> None:
        self.send(json.dumps({"type": "say", "text": text}) + "\n")

    def closed(self, timeout: float | None = None) -> bytes:
        """Read until the server hangs up; return what came before. TimeoutError if it never does."""
        deadline = self._deadline(timeout)
        rest, self._buffer = self._buffer, b""
        while True:
            try:
                data = self._recv(deadline)
            except TimeoutError:
                raise TimeoutError(f"the server did not hang up (it sent {rest[:80]!r})") from None
            if not data:
                return rest
            rest += data

    def rest(self, timeout: float | None = None) -> list[bytes]:
        """Every line until the server hangs up (TimeoutError if it does not)."""
        lines = self.closed(timeout).split(b"\n")
        return lines[:-1] if lines[-1] == b"" else lines

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_peer() -> Iterator[Callable[..., RawPeer]]:
    """A factory: ``raw_peer(where, **kw)`` is a RawPeer connected to ``where``; all closed afterwards.

    ``where`` is anything with an ``address`` (a ChatServer, a ServeProcess) or a
    ``(host, port)`` pair; the keywords are RawPeer's.
    """
    peers: list[RawPeer] = []

    def make(where: object, timeout: float = WAIT, **kwargs: object) -> RawPeer:
        address = where if isinstance(where, tuple) else where.address
        peer = RawPeer(address, timeout, **kwargs)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.close()


# -- labchat serve as a process ----------------------------------------------------------------------

LABCHAT = [sys.executable, "-m", "labchat"]

# The first line ``labchat serve`` prints: where it listens, and how others join.
LISTENING = re.compile(r"^labchat: listening on (\S+):(\d+); others join with: (labchat join .*)$", re.M)

# Seconds ``labchat serve`` may take to say where it listens, or to end once told to (a busy machine).
SERVE_WAIT = 20.0


class Listening(NamedTuple):
    host: str
    port: int
    join_command: str


def listening(text: str) -> Listening | None:
    """Where ``labchat serve`` said it listens, from the first such line in ``text``; None if none."""
    found = LISTENING.search(text)
    return None if found is None else Listening(found.group(1), int(found.group(2)), found.group(3))


def environ(**extra: str) -> dict[str, str]:
    """This process's environment without LABCHAT_TOKEN and NO_COLOR, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("LABCHAT_TOKEN", "NO_COLOR")}
    env.update(extra)
    return env


class ServeProcess:
    """``labchat serve --port 0 ARGS`` as a process with no terminal: it serves and logs.

    It is returned once its first line says where it listens; if that line does
    not come within ``SERVE_WAIT`` seconds, the test fails with all it printed.
    """

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [*LABCHAT, "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ() if env is None else env,
            cwd=cwd,
        )
        # serve prints its first line whole and at once: once the pipe is readable, so is the line
        ready, _, _ = select.select([self.proc.stdout], [], [], SERVE_WAIT)
        self.first_line = self.proc.stdout.readline().rstrip("\n") if ready else ""
        found = listening(self.first_line)
        if found is None or LISTENING.fullmatch(self.first_line) is None:
            out, err = self.kill()
            printed = f"{self.first_line}\n{out}{err}"
            pytest.fail(f"labchat serve did not say where it listens; it printed:\n{printed}")
        self.host, self.port, self.join_command = found

    @property
    def where(self) -> str:
        """``127.0.0.1:PORT``, as ``labchat join`` takes it."""
        return f"127.0.0.1:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def stop(self, how: int = signal.SIGINT) -> tuple[int, str, str]:
        """Send a signal (Ctrl-C's by default); once it ends: (exit status, all of stdout, all of stderr)."""
        self.proc.send_signal(how)
        try:
            out, err = self.proc.communicate(timeout=SERVE_WAIT)
        except subprocess.TimeoutExpired:
            out, err = self.kill()
            pytest.fail(f"labchat serve did not end within {SERVE_WAIT:g} s of {how!r}:\n{out}{err}")
        return self.proc.returncode, f"{self.first_line}\n{out}", err

    def kill(self) -> tuple[str, str]:
        """End the process now if it is still running; what it printed since last read (stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.kill()
        if self.proc.stdout is None or self.proc.stdout.closed:
            return "", ""
        return self.proc.communicate()


@pytest.fixture
def serve() -> Iterator[Callable[..., ServeProcess]]:
    """A factory: ``serve(*args, env=None, cwd=None)`` starts a ServeProcess; all are killed afterwards."""
    started: list[ServeProcess] = []

    def start(*args: str, **kwargs: object) -> ServeProcess:
        process = ServeProcess(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


# -- waiting and threads -----------------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Check ``condition`` until it holds or ``timeout`` seconds pass; say whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _live_labchat_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("labchat-")}


def labchat_threads() -> list[str]:
    """The sorted names of the live threads named ``labchat-...``."""
    return sorted(t.name for t in _live_labchat_threads())


@pytest.fixture(autouse=True)
def no_stray_threads() -> Iterator[None]:
    """Fail the test if it leaves a ``labchat-`` thread running (after waiting up to 5 s)."""
    before = _live_labchat_threads()
    yield
    deadline = time.monotonic() + WAIT
    while (left := _live_labchat_threads() - before) and time.monotonic() < deadline:
        thread = next(iter(left))
        if thread._started.wait(0.05):  # (one that is still starting cannot be joined yet)
            thread.join(0.05)
    if left:
        pytest.fail(f"threads still alive after the test: {sorted(t.name for t in left)}")


# -- exercise checks: what a Result must say ----------------------------------------------------------


def hints(result: Result) -> str:
    """The 'not yet' lines of an exercise check's Result."""
    return "\n".join(line for line in result.lines if line.startswith("not yet:"))


def exercise_threads_end(patience: float = 3.0) -> bool:
    """True once no thread the check started for the learner's code is still running."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if not any(t.name.startswith("exercise") for t in threading.enumerate()):
            return True
        time.sleep(0.02)
    return False


def assert_passes(result: Result) -> None:
    """Every line an 'ok'."""
    assert result.passed, str(result)
    assert result.lines and all(line.startswith("ok: ") for line in result.lines), str(result)


def assert_fails_saying(result: Result, *words: str) -> None:
    """Not passed, with a hint that holds every word, and no traceback."""
    assert not result.passed, str(result)
    said = hints(result)
    assert "hint: " in said, str(result)
    for word in words:
        assert word in said, f"{word!r} not in:\n{result}"
    assert "Traceback" not in str(result)
