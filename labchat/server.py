"""ChatServer: a threaded TCP server for one chat room.

One thread accepts connections. Each connection gets a reader thread, which
decodes lines and hands them to the room, and a writer thread, which drains a
bounded outbox. Delivery queues the bytes under a lock that keeps the room's
order, then, lock released, tries a non-blocking ``send`` from the thread that
produced the event, and leaves only what the kernel did not take to the writer
thread, so a busy room pays for few thread hand-offs. No socket call is made
while the room's or the delivery lock is held, and a client that stops reading can never
block anyone else: once its outbox is full it is cut off with a reason.

``with ChatServer(port=0) as server:`` listens when the block starts; leaving it
tells every client, closes every socket and joins every thread.
"""

from __future__ import annotations

import hmac
import ipaddress
import itertools
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .bot import Greeter
from .protocol import (
    DEFAULT_PORT,
    MAX_LINE,
    PROTOCOL,
    VERSION,
    Decoder,
    Event,
    Hello,
    ProtocolError,
    Say,
    banner,
    decode_frame,
    decode_text,
    encode,
)
from .render import plain, safe
from .room import MAX_NICK, Delivery, Room, RoomError

log = logging.getLogger("labchat.server")

# Kinds written to the transcript (private messages only when asked).
TRANSCRIPT_KINDS = frozenset({"message", "action", "join", "leave", "nick", "bot"})

# Lines dropped in a row, over the rate limit, before a client is cut off.
FLOOD_LIMIT = 200

# Some platforms lack MSG_DONTWAIT; there every byte goes through the writer.
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)

# The kernel's send buffer for each client (Linux doubles the figure). Left to grow on
# its own it reaches 4 MiB for a client that stops reading, so the outbox limit would
# take many seconds to notice it; this bounds the kernel's share and costs a client
# that keeps up nothing measurable (see docs/performance.md).
SEND_BUFFER = 128 * 1024


class _Drop(Exception):
    """Ends a connection; the message is the reason everyone is told.

    ``fault`` marks the client's own misbehaviour: its one log line is then a warning.
    """

    def __init__(self, reason: str, fault: bool = False) -> None:
        super().__init__(reason)
        self.fault = fault


class ChatServer:
    """A chat room on a TCP port. See the module docstring; every limit is a keyword.

    - ``token``: clients must present it to join (compared in constant time).
    - ``bot``: True for the default greeter, False/None for none, or a Greeter.
    - ``history``: how many recent messages a newcomer is shown.
    - ``max_clients``: connections beyond this are refused with a reason.
    - ``rate``/``burst``: each client may send ``burst`` lines at once and
      ``rate`` lines per second after that; ``rate=None`` switches it off.
    - ``outbox_limit``: bytes queued for a client that is not reading before it
      is cut off.
    - ``hello_timeout``: seconds a new connection has to say who it is.
    - ``ssl_context``: a server-side ``ssl.SSLContext`` to speak TLS.
    - ``log``: a path or text file for a JSON Lines transcript of the room.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
        bot: bool | Greeter | None = True,
        history: int = 20,
        max_clients: int = 100,
        max_line: int = MAX_LINE,
        rate: float | None = 5.0,
        burst: int = 20,
        outbox_limit: int = 256 * 1024,
        hello_timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
        log: str | Path | IO[str] | None = None,
        log_private: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token or None
        self.max_clients = max_clients
        self.max_line = max_line
        self.rate = rate
        self.burst = burst
        self.outbox_limit = outbox_limit
        self.hello_timeout = hello_timeout
        self.ssl_context = ssl_context
        self.log_private = log_private
        greeter = Greeter() if bot is True else (bot or None)
        self.room = Room(history=history, bot=greeter)
        self._log_target = log
        self._transcript: IO[str] | None = None
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set[_Connection] = set()
        self._conns_lock = threading.Lock()
        # Held while deciding and enqueueing, so every client sees the room's order.
        self._deliver_lock = threading.Lock()
        self._unflushed: list[_Connection] = []  # queued to under the lock, sent after it
        self._flushing = threading.Lock()  # held by the one thread sending for everyone
        self._ids = itertools.count(1)
        self._closing = threading.Event()

    # -- lifecycle --------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; the real port when you asked for port 0."""
        if self._listener is None:
            raise RuntimeError("the server is not started")
        return self._listener.getsockname()[:2]

    @property
    def running(self) -> bool:
        return self._listener is not None and not self._closing.is_set()

    def users(self) -> list[str]:
        """Nicks in the room, in joining order."""
        return self.room.nicks()

    def start(self) -> ChatServer:
        """Bind, listen and start accepting in a background thread."""
        if self._listener is not None:
            raise RuntimeError("the server is already started")
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        if self._log_target is not None:
            self._transcript = _open_transcript(self._log_target)
        self._listener = listener
        self._accept_thread = threading.Thread(target=self._accept_loop, name="labchat-accept", daemon=True)
        self._accept_thread.start()
        host, port = self.address
        log.info("listening on %s:%d", host, port)
        if self.token is None and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            log.warning(
                "listening on %s:%d with no token: anyone who can reach this machine on the network "
                "can join the room, read every message and post under any free nick; set a token "
                "(ChatServer(token=...), labchat serve --token or LABCHAT_TOKEN) to keep strangers out",
                host,
                port,
            )
        return self

    def close(self, reason: str = "the server is shutting down") -> None:
        """Stop accepting, tell every client, close every socket, join every thread."""
        if self._listener is None or self._closing.is_set():
            return
        self._closing.set()
        _shutdown(self._listener)
        self._listener.close()
        if self._accept_thread is not threading.current_thread():
            self._accept_thread.join()
        with self._conns_lock:
            conns = list(self._conns)
        notice = Event(kind="system", text=safe(reason), time=round(time.time(), 3))
        for conn in conns:
            conn.finish(notice)
        deadline = time.monotonic() + 2.0
        for conn in conns:
            conn.reader.join(max(0.0, deadline - time.monotonic()))
        for conn in conns:  # whoever did not leave in time is cut off
            conn.abort()
            conn.reader.join()
        self._stop_transcript()
        log.info("closed")

    def __enter__(self) -> ChatServer:
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "{}:{}".format(*self.address) if self._listener else "not started"
        return f"<ChatServer {where}, {len(self.users())} in the room>"

    # -- accepting --------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                sock, addr = self._listener.accept()
            except OSError:
                if self._closing.is_set():
                    return
                log.warning("accept failed; retrying", exc_info=True)
                time.sleep(0.05)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            with self._conns_lock:
                full = len(self._conns) >= self.max_clients
                if not full:
                    conn = _Connection(self, sock, addr, next(self._ids))
                    self._conns.add(conn)
            if full:
                log.warning(
                    "%s refused: the server is full (%d connections)",
                    _where(addr),
                    self.max_clients,
                )
                _refuse(
                    sock,
                    "server-full",
                    f"the room is full (at most {self.max_clients} at once); try again later",
                )
                continue
            conn.start()

    def _forget(self, conn: _Connection) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    # -- the room ---------------------------------------------------------------------

    def _join(self, conn: _Connection, hello: Hello) -> None:
        if self.token is not None and not hmac.compare_digest(
            (hello.token or "").encode("utf-8"), self.token.encode("utf-8")
        ):
            raise _Refused("bad-token", "wrong or missing room token")
        with self._delivering():
            if self._closing.is_set():
                raise _Refused("closing", "the server is shutting down")
            try:
                deliveries = self.room.join(conn, hello.nick, since=hello.since)
            except RoomError as exc:
                raise _Refused(exc.code, str(exc)) from None
            self._dispatch(deliveries)

    def _say(self, conn: _Connection, texts: Iterable[str]) -> bool:
        """Hand a batch of lines to the room; True if the member asked to leave."""
        with self._delivering():
            # Who is here when the batch starts: only this member can leave during it,
            # and what it said before leaving still goes to everyone, itself included.
            members = self.room.members()
            deliveries: list[Delivery] = []
            for text in texts:
                outcome = self.room.say(conn, text)
                if outcome.leaving:
                    self._dispatch(deliveries, members)
                    self._dispatch(outcome.deliveries)
                    return True
                deliveries += outcome.deliveries
            self._dispatch(deliveries, members)
            return False

    def _leave(self, conn: _Connection, reason: str) -> None:
        with self._delivering():
            self._dispatch(self.room.leave(conn, reason))

    def _tell(self, conn: _Connection, event: Event) -> None:
        """Send one event to one connection, in order with the room's events."""
        with self._delivering():
            self._queue(conn, conn.render(event))

    @contextmanager
    def _delivering(self) -> Iterator[None]:
        """Hold the delivery lock to decide and queue; once it is released, send what was queued."""
        self._deliver_lock.acquire()
        try:
            yield
        finally:
            self._deliver_lock.release()
            self._flush()

    def _flush(self) -> None:
        """Send what is queued, unless another thread is already doing so: it will send ours too.

        One thread at a time sends, so threads do not fight over the GIL around every send,
        and a message queued while another goes out leaves with it in the same send. No
        socket call is made under the delivery lock, so the next message can be decided
        meanwhile. Checking again after letting go of ``_flushing`` means nothing is left behind.
        """
        while self._unflushed and self._flushing.acquire(blocking=False):
            try:
                while True:
                    with self._deliver_lock:
                        conns, self._unflushed = self._unflushed, []
                    if not conns:
                        break
                    for conn in dict.fromkeys(conns):
                        conn.flush()
            finally:
                self._flushing.release()

    def _queue(self, conn: _Connection, data: bytes) -> None:
        """Queue bytes for one client (delivery lock held); it is flushed when the lock is let go."""
        if conn.queue(data):
            self._unflushed.append(conn)

    def _dispatch(self, deliveries: list[Delivery], members: list | None = None) -> None:
        """Encode each event once and queue the bytes for each recipient, in order.

        ``members`` are the recipients of events for everyone (default: who is here now).
        """
        if not deliveries:
            return
        self._record(deliveries)
        if members is None:
            members = self.room.members()
        if all(d.to is None for d in deliveries):
            blobs: dict[str, bytes] = {}
            for conn in members:
                blob = blobs.get(conn.mode)
                if blob is None:
                    blob = blobs[conn.mode] = b"".join(conn.render(d.event) for d in deliveries)
                self._queue(conn, blob)
            return
        parts: dict[_Connection, list[bytes]] = {}
        cache: dict[tuple[int, str], bytes] = {}
        for d in deliveries:
            for conn in members if d.to is None else d.to:
                key = (id(d.event), conn.mode)
                data = cache.get(key)
                if data is None:
                    data = cache[key] = conn.render(d.event)
                parts.setdefault(conn, []).append(data)
        for conn, chunks in parts.items():
            self._queue(conn, b"".join(chunks))

    def _record(self, deliveries: list[Delivery]) -> None:
        if self._transcript is None:
            return
        try:
            for d in deliveries:
                e = d.event
                public = e.kind in TRANSCRIPT_KINDS and d.to is None
                if (public or (e.kind == "private" and self.log_private)) and not e.history:
                    self._transcript.write(encode(e).decode("utf-8"))
            self._transcript.flush()
        except (OSError, ValueError) as exc:  # a full disk, or a file closed under us
            log.error("cannot write the transcript (%s); the room carries on without one", exc)
            self._stop_transcript()

    def _stop_transcript(self) -> None:
        transcript, self._transcript = self._transcript, None
        if transcript is not None and transcript is not self._log_target:
            try:
                transcript.close()
            except OSError:
                pass  # what it could not write was reported as it happened


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Connection:
    """One client: its socket, reader and writer threads, and bounded outbox."""

    def __init__(self, server: ChatServer, sock: socket.socket, addr: tuple, number: int) -> None:
        self.server = server
        self.sock = sock
        self.where = _where(addr)
        self.nick: str | None = None
        self.mode = "json"  # or "text" for a person on netcat
        self._direct = bool(_DONTWAIT)  # may the delivering thread send itself?
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._writing = False  # a thread is sending: the others leave the socket to it
        self._handoff = False  # the kernel's buffer was full: the writer thread sends until it drains
        self._finishing = False  # no more deliveries; writer flushes, then shuts down
        self._dead = False  # the socket is unusable
        self.reason = ""
        self.decoder = Decoder(server.max_line)
        self.reader = threading.Thread(target=self._read, name=f"labchat-reader-{number}", daemon=True)
        self.writer = threading.Thread(target=self._write, name=f"labchat-writer-{number}", daemon=True)

    def start(self) -> None:
        self.writer.start()
        self.reader.start()

    def render(self, event: Event) -> bytes:
        if self.mode == "json":
            return encode(event)
        return (plain(event) + "\n").encode("utf-8")

    # -- sending (any thread) -----------------------------------------------------------

    def deliver(self, data: bytes) -> None:
        """Queue bytes for this client and send them now if nobody else is; never blocks."""
        if self.queue(data):
            self.flush()

    def queue(self, data: bytes) -> bool:
        """Queue bytes without a socket call; True if the caller should then ``flush()``.

        A client whose outbox would grow past the limit is cut off instead.
        """
        with self._lock:
            if self._finishing or self._dead:
                return False
            if self._pending_bytes + len(data) <= self.server.outbox_limit:
                self._pending.append(data)
                self._pending_bytes += len(data)
                if self._direct and not self._handoff:
                    return not self._writing  # a thread already sending will take these bytes too
                self._wake.notify()
                return False
        limit = self.server.outbox_limit
        self.reason = f"too slow: stopped reading with over {limit} bytes waiting"
        self.abort()
        return False

    def flush(self) -> None:
        """Send what is queued with non-blocking sends from this thread, in order, until none is left.

        Bytes queued by other threads meanwhile leave in the same loop, so a busy room pays
        one send per client for several messages. Whatever the kernel does not take goes to
        the writer thread, and until it has drained, every byte for this client goes that way.
        """
        with self._lock:
            if self._writing or self._handoff or self._finishing or self._dead or not self._direct:
                return
            self._writing = True
        while True:
            with self._lock:
                if self._dead or not self._pending:
                    self._writing = False
                    if self._finishing or self._dead:
                        self._wake.notify()  # the writer waits for us to finish
                    return
                data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
                self._pending.clear()
                self._pending_bytes = 0
            try:
                sent = self.sock.send(data, _DONTWAIT)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = -1
            if sent == len(data):
                continue
            with self._lock:
                self._writing = False
                if sent < 0:
                    self._dead = True
                else:
                    self._pending.appendleft(data[sent:])
                    self._pending_bytes += len(data) - sent
                    self._handoff = True
                self._wake.notify()
            return

    def finish(self, last: Event | None = None) -> None:
        """Send what is queued (and ``last``), then close the connection."""
        with self._lock:
            if last is not None and not self._finishing:
                self._pending.append(self.render(last))
            self._finishing = True
            self._wake.notify()

    def abort(self) -> None:
        """Cut the connection now: wakes both threads, drops what is queued."""
        with self._lock:
            self._dead = True
            self._pending.clear()
            self._wake.notify()
        _shutdown(self.sock)

    def _writer_turn(self) -> bool:
        """Whether the writer thread should act now (called with the lock held)."""
        if self._dead:
            return True
        if self._writing:  # a delivering thread is sending; it wakes us when done
            return False
        return self._finishing or bool(self._pending) and (self._handoff or not self._direct)

    def _write(self) -> None:
        while True:
            with self._lock:
                while not self._writer_turn():
                    self._wake.wait()
                if self._dead or not self._pending:
                    break
                data = b"".join(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
                self._writing = True
                finishing = self._finishing
            try:
                if finishing:  # a client that stopped reading must not hold us up
                    self.sock.settimeout(2.0)
                self.sock.sendall(data)
            except OSError:
                with self._lock:
                    self._dead = True
                break
            finally:
                with self._lock:
                    self._writing = False
                    if not self._pending:
                        self._handoff = False  # drained: delivering threads may send again
        _shutdown(self.sock)

    # -- reading (the reader thread) ------------------------------------------------------

    def _read(self) -> None:
        server = self.server
        joined = refused = fault = False
        try:
            self._handshake()
            joined = True
            self._chat()
        except _Refused as exc:
            refused = True
            self.reason = str(exc)
            self._tell_error(exc.code, str(exc))
        except _Drop as exc:
            fault = exc.fault
            self.reason = self.reason or str(exc)
        except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
            self.reason = self.reason or f"connection lost ({exc.__class__.__name__})"
        except OSError as exc:
            self.reason = self.reason or f"connection lost ({exc.strerror or exc})"
        except Exception:
            log.exception("%s: unexpected error", self.who)
            self.reason = self.reason or "server error"
        finally:
            server._leave(self, self.reason)  # also if the join itself failed half-way
            # One line per connection's end, saying why: no second line for the same incident.
            level = logging.WARNING if fault else logging.INFO
            if joined:
                log.log(level, "%s left%s", self.who, f": {self.reason}" if self.reason else "")
            elif refused:
                log.info("%s refused: %s", self.who, self.reason)
            elif self.reason:
                log.log(level, "%s gone before joining: %s", self.who, self.reason)
            self.finish()
            self.writer.join()
            self.sock.close()
            server._forget(self)

    @property
    def who(self) -> str:
        return f"{self.nick} ({self.where})" if self.nick else self.where

    def _tell_error(self, code: str, text: str) -> None:
        self.server._tell(self, Event(kind="error", code=code, text=text, time=round(time.time(), 3)))

    def _handshake(self) -> None:
        server = self.server
        deadline = time.monotonic() + server.hello_timeout
        if server.ssl_context is not None:
            self._start_tls(deadline)
        if server.token:
            greeting = (
                "Welcome to labchat! This room needs a token: type your nick, a space, the token, then Enter."
            )
        else:
            greeting = "Welcome to labchat! Type your nick and press Enter."
        self.deliver(banner(greeting))
        line = self._first_line(deadline)
        if line.lstrip().startswith(b"{"):
            try:
                frame = decode_frame(line)
            except ProtocolError as exc:
                raise _Refused(exc.code, f"bad hello: {exc}") from None
            if not isinstance(frame, Hello):
                raise _Refused("bad-hello", "the first frame must be a hello")
            if frame.version != VERSION:
                raise _Refused(
                    "bad-version",
                    f"this server speaks {PROTOCOL} only, the client asked for version {frame.version}",
                )
            hello = frame
        else:
            self.mode = "text"
            try:
                words = decode_text(line).split()
            except ProtocolError as exc:
                raise _Refused(exc.code, f"bad nick: {exc}") from None
            if not words:
                raise _Refused("nick-invalid", "a nick cannot be empty")
            hello = Hello(nick=words[0], token=" ".join(words[1:]) or None)
        self.nick = safe(hello.nick[:MAX_NICK])  # for logs, made inert: the room has not checked it
        # Blocking from here on: a non-blocking send on a socket with a timeout
        # would first wait for room, and delivery must never wait.
        self.sock.settimeout(None)
        # Named before joining, so the names are right by the time the client hears its welcome
        # (and made safe: the room has not checked the nick yet).
        name = safe(hello.nick[:MAX_NICK])
        threading.current_thread().name = f"labchat-reader-{name}"
        self.writer.name = f"labchat-writer-{name}"
        server._join(self, hello)
        log.info("%s joined", self.who)

    def _first_line(self, deadline: float) -> bytes:
        while True:
            try:
                for line in self.decoder:
                    return line
            except ProtocolError as exc:  # line too long: refuse in words, not a traceback
                raise _Refused(exc.code, str(exc)) from None
            if self.decoder.closed:
                raise _Drop("closed before saying hello")
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Refused(
                    "hello-timeout",
                    f"no hello within {self.server.hello_timeout:g} seconds",
                )
            self.sock.settimeout(left)
            try:
                self.decoder.feed(self.sock.recv(4096))
            except TimeoutError:
                continue

    def _start_tls(self, deadline: float) -> None:
        # A plain client waits for our banner and says nothing; a TLS client
        # starts with a handshake record (first byte 0x16). Tell the former
        # in words instead of leaving both sides waiting.
        # (A timeout, not select(): select() fails on descriptors past 1023.)
        self.sock.settimeout(min(2.0, self.server.hello_timeout))
        try:
            first = self.sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            first = b""
        if first != b"\x16":
            _refuse(
                self.sock,
                "tls-required",
                "this server speaks TLS only; connect with TLS (labchat join --tls)",
            )
            raise _Drop("not a TLS client")
        self.sock.settimeout(max(0.1, deadline - time.monotonic()))
        self.sock = self.server.ssl_context.wrap_socket(self.sock, server_side=True)
        self._direct = False  # SSL sockets take no MSG_DONTWAIT: the writer sends

    def _chat(self) -> None:
        server = self.server
        limiter = _RateLimit(server.rate, server.burst) if server.rate else None
        while True:
            texts: list[str] = []
            try:
                for line in self.decoder:
                    if limiter is not None and not limiter.allow():
                        if texts:  # the lines let through go out first, even if this one ends it
                            if server._say(self, texts):
                                raise _Drop("")
                            texts = []
                        self._slow_down(limiter)
                        continue
                    try:
                        texts.append(self._text_of(line))
                    except ProtocolError as exc:
                        log.info("%s: %s", self.who, exc)
                        self._tell_error(exc.code, str(exc))
            except ProtocolError as exc:  # line too long: the stream cannot be trusted
                if texts:
                    server._say(self, texts)
                self._tell_error(exc.code, str(exc))
                raise _Drop(str(exc), fault=True) from None
            if texts and server._say(self, texts):
                raise _Drop("")
            if self.decoder.closed:
                raise _Drop("")
            self.decoder.feed(self.sock.recv(65536))

    def _slow_down(self, limiter: _RateLimit) -> None:
        if limiter.dropped > FLOOD_LIMIT:
            self._tell_error("flooding", "disconnected: far too many messages too fast")
            raise _Drop("flooding", fault=True)
        now = time.monotonic()
        if now - limiter.warned > 5.0:
            limiter.warned = now
            log.info("%s: sending too fast, lines dropped", self.who)
            self._tell_error(
                "rate-limited",
                "slow down: you are sending too fast, so some messages were dropped",
            )

    def _text_of(self, line: bytes) -> str:
        if self.mode == "text":
            return decode_text(line)
        frame = decode_frame(line)
        if not isinstance(frame, Say):
            raise ProtocolError("bad-frame", "already joined: send 'say' frames")
        return frame.text


class _RateLimit:
    """A token bucket: ``burst`` lines at once, ``rate`` lines a second after that."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.dropped = 0  # lines dropped since the last one allowed
        self.warned = -1e9  # when the client was last told to slow down

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.dropped = 0
            return True
        self.dropped += 1
        return False


def _open_transcript(target: str | Path | IO[str]) -> IO[str]:
    if hasattr(target, "write"):
        return target
    return open(target, "a", encoding="utf-8")  # noqa: SIM115 (closed by ChatServer.close)


def _where(addr: tuple) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _refuse(sock: socket.socket, code: str, text: str) -> None:
    """Say why in a banner line a person or a program can read, then hang up."""
    try:
        sock.settimeout(1.0)
        sock.sendall(f"{PROTOCOL} refused {code}: {text}\n".encode())
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sock.close()


__all__ = ["DEFAULT_PORT", "ChatServer"]
