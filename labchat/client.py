"""ChatClient: one connection to a labchat server, with a receiver thread.

The constructor connects and finishes the handshake before it returns, so a
refusal (nick taken, wrong token, room full) is an exception right there. After
that a background thread receives: each event goes into a queue that
``receive()`` reads, and to every callback registered with ``on_event()``.
``send()`` may be called from any thread at any time: that is the whole point
of the receiver thread, you can talk while you listen.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

from .protocol import (
    PROTOCOL,
    Decoder,
    Event,
    Hello,
    ProtocolError,
    Say,
    decode_event,
    encode,
)

EventCallback = Callable[[Event], object]
CloseCallback = Callable[[str], object]

log = logging.getLogger("labchat.client")


class JoinRefused(ConnectionError):
    """The server would not let us in; ``code`` says why for programs, the message for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ConnectionClosed(ConnectionError):
    """The connection has ended (we left, or the server went away)."""


class ChatClient:
    """A chat participant. ``with ChatClient(host, port, nick="ada") as ada: ...``

    - ``send(text)``: a message, ``bye``, or a ``/command``.
    - ``receive(timeout=None)``: the next event; TimeoutError if none comes in
      time, ConnectionClosed once the connection has ended and all is read.
    - ``on_event(callback)``: ``callback(event)`` is called *from the receiver
      thread* for every event; keep it quick and never let it block.
    - ``on_close(callback)``: ``callback(reason)`` when the connection ends.
    - ``close()``: say goodbye, close the socket, join the receiver thread.

    Up to ``queue_size`` events wait for ``receive()``; past that the oldest
    are dropped (and counted in ``dropped``), so a client that only uses
    callbacks never grows without bound.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5050,
        *,
        nick: str,
        token: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        queue_size: int = 10_000,
    ) -> None:
        self.host, self.port = host, port
        self.nick = nick
        self.users: list[str] = []
        self.dropped = 0
        self.close_reason = ""
        self._events: deque[Event] = deque(maxlen=queue_size)
        self._ready = threading.Condition()
        self._callbacks: list[EventCallback] = []
        self._close_callbacks: list[CloseCallback] = []
        self._send_lock = threading.Lock()
        self._ended = False  # the receiver has seen the end of the stream
        self._closed = False  # close() was called
        self._decoder = Decoder()
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl_context is not None:
                sock = _start_tls(sock, ssl_context, host)
            self._sock = sock
            self.welcome = self._handshake(nick, token, timeout)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        self._receiver = threading.Thread(
            target=self._receive_loop, name=f"labchat-client-{nick}", daemon=True
        )
        self._receiver.start()

    # -- public API ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return not (self._ended or self._closed)

    def send(self, text: str) -> None:
        """Send one line: a message, ``bye``, or a ``/command``."""
        if not isinstance(text, str):
            raise TypeError(f"send() takes text, not {type(text).__name__}")
        if not self.connected:
            raise ConnectionClosed(self.close_reason or "not connected")
        data = encode(Say(text=text))
        try:
            with self._send_lock:
                self._sock.sendall(data)
        except OSError as exc:
            raise ConnectionClosed(f"connection lost: {exc}") from None

    def receive(self, timeout: float | None = None) -> Event:
        """The next event. TimeoutError after ``timeout`` seconds with none."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while not self._events:
                if self._ended or self._closed:
                    raise ConnectionClosed(self.close_reason or "the connection is closed")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"no event within {timeout:g} seconds")
                self._ready.wait(left)
            return self._events.popleft()

    def receive_until(self, match: Callable[[Event], bool], timeout: float = 5.0) -> Event:
        """Skip events until one for which ``match(event)`` is true, and return it."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.receive(timeout=max(0.0, deadline - time.monotonic()))
            if match(event):
                return event

    def pending(self) -> list[Event]:
        """Take every event waiting in the queue, without waiting for more."""
        with self._ready:
            events = list(self._events)
            self._events.clear()
            return events

    def on_event(self, callback: EventCallback) -> EventCallback:
        """Call ``callback(event)`` from the receiver thread for each event (usable as a decorator)."""
        self._callbacks.append(callback)
        return callback

    def on_close(self, callback: CloseCallback) -> CloseCallback:
        """Call ``callback(reason)`` once, from the receiver thread, when the connection ends."""
        self._close_callbacks.append(callback)
        return callback

    def close(self, farewell: str = "", timeout: float = 2.0) -> None:
        """Leave politely (``/quit``), then close the socket and join the receiver."""
        if self._closed:
            return
        if not self._ended:
            try:
                with self._send_lock:
                    self._sock.sendall(encode(Say(text=f"/quit {farewell}".strip())))
            except OSError:
                pass
            if self._receiver is not threading.current_thread():  # (a callback may close us)
                self._receiver.join(timeout)  # the server answers by closing
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self._receiver is not threading.current_thread():
            self._receiver.join()
        with self._ready:
            self._ready.notify_all()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        return f"<ChatClient {self.nick} @ {self.host}:{self.port}, {state}>"

    # -- inside ----------------------------------------------------------------------

    def _read_line(self) -> bytes | None:
        while True:
            for line in self._decoder:
                return line
            if self._decoder.closed:
                return None
            self._decoder.feed(self._sock.recv(65536))

    def _handshake(self, nick: str, token: str | None, timeout: float) -> Event:
        try:
            first = self._read_line()
        except TimeoutError:
            raise TimeoutError(
                f"{self.host}:{self.port} sent no labchat greeting within {timeout:g} s"
            ) from None
        if first is None:
            raise ConnectionError(f"{self.host}:{self.port} closed the connection without a greeting")
        text = first.decode("utf-8", "replace")
        if not text.startswith(PROTOCOL + " "):
            raise ConnectionError(f"{self.host}:{self.port} is not a labchat server (it said {text[:60]!r})")
        words = text.split(" ", 3)
        if words[1] == "refused":
            code = words[2].rstrip(":") if len(words) > 2 else "refused"
            raise JoinRefused(code, words[3] if len(words) > 3 else text)
        with self._send_lock:
            self._sock.sendall(encode(Hello(nick=nick, token=token)))
        while True:
            line = self._read_line()
            if line is None:
                raise ConnectionError("the server closed the connection during the handshake")
            event = decode_event(line)
            if event.kind == "error":
                raise JoinRefused(event.code, event.text)
            if event.kind == "welcome":
                self._track(event)
                return event

    def _receive_loop(self) -> None:
        try:
            while True:
                line = self._read_line()
                if line is None:
                    break
                try:
                    event = decode_event(line)
                except ProtocolError:
                    continue  # a newer server's event we do not know: skip it
                self._track(event)
                with self._ready:
                    if len(self._events) == self._events.maxlen:
                        self.dropped += 1
                    self._events.append(event)
                    self._ready.notify_all()
                for callback in list(self._callbacks):
                    try:
                        callback(event)
                    except Exception:  # a bad callback must not stop the chat
                        log.exception("an on_event callback failed")
        except ProtocolError as exc:
            self.close_reason = f"bad data from the server: {exc}"
        except OSError as exc:
            if not self._closed:
                self.close_reason = f"connection lost: {exc.strerror or exc}"
        finally:
            if not self.close_reason:
                self.close_reason = (
                    "you left the chat" if self._closed else "the server closed the connection"
                )
            with self._ready:
                self._ended = True
                self._ready.notify_all()
            for callback in list(self._close_callbacks):
                try:
                    callback(self.close_reason)
                except Exception:
                    log.exception("an on_close callback failed")

    def _track(self, event: Event) -> None:
        """Keep ``nick`` and ``users`` up to date from what the server says."""
        kind = event.kind
        if kind == "welcome":
            self.nick, self.users = event.sender, list(event.users)
        elif kind == "system" and event.users:
            self.users = list(event.users)
        elif kind == "join" and event.sender not in self.users:
            self.users = [*self.users, event.sender]
        elif kind == "leave":
            self.users = [u for u in self.users if u != event.sender]
        elif kind == "nick":
            self.users = [event.target if u == event.sender else u for u in self.users]
            if event.sender == self.nick:
                self.nick = event.target
        elif kind == "system" and event.code == "goodbye":
            self.close_reason = "you left the chat"


def _start_tls(sock: socket.socket, context: ssl.SSLContext, host: str) -> ssl.SSLSocket:
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        raise ConnectionError(
            f"TLS: the server's certificate was not accepted: {exc.verify_message}"
        ) from None
    except ssl.SSLError as exc:
        if exc.reason in _NOT_TLS:  # the server spoke first, in plain text: its banner
            raise ConnectionError(
                "TLS handshake failed: the server answered in plain text, so it does not speak TLS; "
                "connect without TLS (no --tls)"
            ) from None
        raise ConnectionError(f"TLS handshake failed ({exc}); is the server speaking TLS?") from None
    except ConnectionResetError as exc:
        raise ConnectionError(f"TLS handshake failed ({exc}); is the server speaking TLS?") from None


# OpenSSL's words for "the first bytes back were not a TLS record" (they vary by version).
_NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)
