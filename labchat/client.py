"""ChatClient: one connection to a labchat server, with a receiver thread, and reconnect.

The constructor connects and finishes the handshake before it returns, so a
refusal (nick taken, wrong token, room full) is an exception right there. After
that a background thread receives: each event goes into a queue that
``receive()`` reads, and to every callback registered with ``on_event()``.
``send()`` may be called from any thread at any time: that is the whole point
of the receiver thread, you can talk while you listen. What the bytes mean is
the business of a ``ClientConversation`` (``labchat/conversation.py``): this
module only moves them, and keeps time.

With ``reconnect=True`` a connection that drops without the server meaning it
(the stream ends or is reset, and no goodbye, refusal or removal came first) is
not the end. The receiver thread dials again, waiting a little longer after each
failed try, and says hello with ``since`` set to the highest ``seq`` it has seen,
so the server replays what was missed, marked ``history``. An event already seen
is never delivered twice. While it reconnects the queue and the callbacks get a
local ``system`` event (code ``reconnecting``), then one (code ``reconnected``)
once it is back, so every face shows both like any notice. The rule it keeps:
only the receiver thread ever replaces the socket, and ``close()`` stops it
wherever it is, a wait between tries included, and joins it.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable

from .conversation import (
    CLOSED,
    NEED_DATA,
    ClientConversation,
    LocalProtocolError,
    Refused,
    RemoteProtocolError,
)
from .keepalive import keep_alive
from .protocol import Event, ProtocolError
from .text import seconds

EventCallback = Callable[[Event], object]
WireCallback = Callable[[str, bytes], object]
CloseCallback = Callable[[str], object]

log = logging.getLogger("labchat.client")

# Seconds before the first try to reconnect; each later wait doubles, up to LAST_RETRY. Every
# wait is jittered (between half and all of it), so a class whose server restarts does not
# knock on the new one all in the same instant.
FIRST_RETRY = 0.25
LAST_RETRY = 10.0
# A connection that drops within this many seconds of a rejoin is the same run of trouble: the
# waits go on growing from where they were, so a link that lets every rejoin in and drops it at
# once is knocked on at most every LAST_RETRY seconds, not several times a second.
STEADY = 10.0

# Refusals worth trying again while reconnecting: our old session may still hold the nick or a
# slot until the server notices it is dead, a server that is closing may be replaced, and a
# room shared across servers may be waiting for its backplane ("unavailable").
RETRY_CODES = frozenset({"nick-taken", "server-full", "host-full", "closing", "unavailable"})

# Codes the server sends as it ends a connection on purpose: going back would be refused
# again, or repeat what got us cut off; "closing" is a room closed for good (not restarting).
FINAL_CODES = frozenset({"bad-token", "bad-hello", "bad-version", "nick-invalid", "closing", "kicked"})

# While a connection attempt waits for the server's answer, close() is noticed this often.
_CONNECT_POLL = 0.1


class JoinRefused(ConnectionError):
    """The server would not let us in; ``code`` says why for programs, the message for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ConnectionClosed(ConnectionError):
    """The connection has ended (we left, or the server went away)."""


class Reconnecting(ConnectionClosed):
    """``send()`` while the connection is being re-established: that line was not sent."""


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

    ``reconnect=True``: a lost connection is re-established (see the module
    docstring) for up to ``reconnect_for`` seconds. Meanwhile ``connected`` is
    False, ``reconnecting`` True, ``receive()`` waits, and ``send()`` raises
    ``Reconnecting``: nothing is queued, so a line never goes out late to a
    room that has moved on; ``wait_connected()`` waits for the way back.
    ``on_close`` fires once, when the client ends for good.
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
        reconnect: bool = False,
        reconnect_for: float = 120.0,
        op_token: str | None = None,
        wire: WireCallback | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.nick = nick
        self.users: list[str] = []
        self.dropped = 0
        self.close_reason = ""
        self.reconnect = reconnect
        self.reconnect_for = reconnect_for
        self.reconnects = 0  # how many times a lost connection was re-established
        self._next_wait = FIRST_RETRY  # the wait before the next try, in a run of quick drops
        self._rejoined: float | None = None  # when the last rejoin got in (time.monotonic)
        self._token, self._timeout, self._ssl_context = token, timeout, ssl_context
        self._op_token = op_token
        self._events: deque[Event] = deque(maxlen=queue_size)
        self._ready = threading.Condition()
        self._callbacks: list[EventCallback] = []
        self._close_callbacks: list[CloseCallback] = []
        self._send_lock = threading.Lock()
        self._ended = False  # the receiver has stopped for good
        self._closed = False  # close() was called
        self._leaving = False  # close() has begun: whatever ends now is the end
        self._stop = threading.Event()  # set by close(): ends a reconnect wherever it is
        self._reconnecting = False
        self._final = False  # the server ended this connection on purpose
        self._last_seq = 0  # the highest room seq delivered
        self._replayed: int | None = None  # after a reconnect's welcome: missed events so far
        self._wire_callbacks: list[WireCallback] = [wire] if wire is not None else []
        self._conversation = ClientConversation(tap=self._tap)
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            keep_alive(sock)  # a server whose machine vanished is noticed (and, with reconnect, retried)
            if ssl_context is not None:
                sock = _start_tls(sock, ssl_context, host)
            self._sock = sock
            self.welcome = self._handshake(None, timeout)
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
        return not (self._ended or self._closed or self._reconnecting)

    @property
    def moderates(self) -> bool:
        """True if this client gave the room's operator token when it joined (a wrong one
        makes it a member, and the server says so with ``system op-token-wrong``)."""
        return bool(self._op_token)

    @property
    def reconnecting(self) -> bool:
        """True while a lost connection is being re-established."""
        return self._reconnecting and not (self._ended or self._closed)

    def send(self, text: str) -> None:
        """Send one line: a message, ``bye``, or a ``/command``."""
        if not isinstance(text, str):
            raise TypeError(f"send() takes text, not {type(text).__name__}")
        with self._send_lock:
            if self._reconnecting and not (self._ended or self._closed):
                raise Reconnecting("not sent: the connection was lost; reconnecting...")
            if not self.connected:
                raise ConnectionClosed(
                    self.close_reason or ("you left the chat" if self._closed else "not connected")
                )
            try:
                self._sock.sendall(self._conversation.say(text))
            except LocalProtocolError:  # between a dropped connection and the next hello
                raise ConnectionClosed(self.close_reason or "not connected") from None
            except OSError as exc:  # (closed under it by close(): see there)
                why = "you left the chat" if self._closed else f"connection lost: {exc}"
                raise ConnectionClosed(why) from None

    def receive(self, timeout: float | None = None) -> Event:
        """The next event. TimeoutError after ``timeout`` seconds with none."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while not self._events:
                if self._ended or self._closed:
                    raise ConnectionClosed(self.close_reason or "the connection is closed")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"no event within {seconds(timeout)}")
                self._ready.wait(left)
            return self._events.popleft()

    def receive_until(self, match: Callable[[Event], bool], timeout: float = 5.0) -> Event:
        """Skip events until one for which ``match(event)`` is true, and return it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.receive(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:  # said with the whole wait, not what was left of it
                raise TimeoutError(f"no matching event within {seconds(timeout)}") from None
            if match(event):
                return event

    def pending(self) -> list[Event]:
        """Take every event waiting in the queue, without waiting for more."""
        with self._ready:
            events = list(self._events)
            self._events.clear()
            return events

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait out a reconnect: True once connected, False if the client has ended (or in time)."""
        with self._ready:
            self._ready.wait_for(lambda: not self.reconnecting, timeout)
            return self.connected

    def on_event(self, callback: EventCallback) -> EventCallback:
        """Call ``callback(event)`` from the receiver thread for each event (usable as a decorator)."""
        self._callbacks.append(callback)
        return callback

    def on_wire(self, callback: WireCallback) -> WireCallback:
        """Call ``callback(direction, line)`` for every line as it travels: ``"->"`` sent, ``"<-"`` received.

        Lines are the raw bytes without their newline, as the wire carries them;
        they come from the thread that sends or the receiver thread: keep it quick.
        Registered before the handshake (``ChatClient(..., wire=callback)``), it
        sees the banner and the hello too.
        """
        self._wire_callbacks.append(callback)
        return callback

    def _tap(self, direction: str, line: bytes) -> None:
        for callback in list(self._wire_callbacks):
            try:
                callback(direction, line)
            except Exception:  # a bad callback must not stop the chat
                log.exception("an on_wire callback failed")

    def on_close(self, callback: CloseCallback) -> CloseCallback:
        """Call ``callback(reason)`` once, from the receiver thread, when the client ends for good
        (at once, from this thread, if it already has)."""
        with self._ready:
            ended = self._ended
            if not ended:
                self._close_callbacks.append(callback)
        if ended:
            _call_close(callback, self.close_reason)
        return callback

    def close(self, farewell: str = "", timeout: float = 2.0) -> None:
        """Leave politely (``/quit``), then close the socket and join the receiver.

        ``timeout`` bounds the goodbye: the wait for a send() another thread is in, and then
        for the server to hang up. A send() held up by the server ends with ConnectionClosed.
        """
        if self._closed:
            return
        self._leaving = True  # from here on no reconnect starts
        # Another thread may be in send(), held there by a server that takes nothing (it paces
        # this client, or it froze): then there is no goodbye, and the shutdown below ends that
        # send, rather than close() waiting on it for as long as the server likes.
        free = self._send_lock.acquire(timeout=max(0.0, timeout))
        try:
            saying_goodbye = free and self.connected
            if saying_goodbye:
                try:
                    self._sock.sendall(self._conversation.say(f"/quit {farewell}".strip()))
                except (OSError, LocalProtocolError):
                    pass
        finally:
            if free:
                self._send_lock.release()
        if saying_goodbye and self._receiver is not threading.current_thread():  # (a callback may close us)
            self._receiver.join(timeout)  # the server answers by closing
        self._closed = True
        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # read after _stop is set: see _dial
        except OSError:
            pass
        if self._receiver is not threading.current_thread():
            self._receiver.join()  # before closing: a socket in use is never closed under it
        self._sock.close()
        with self._ready:
            self._ready.notify_all()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "reconnecting" if self.reconnecting else "closed"
        return f"<ChatClient {self.nick} @ {self.host}:{self.port}, {state}>"

    # -- the conversation ------------------------------------------------------------

    def _next(self):
        """The conversation's next event, receiving as many bytes as that takes."""
        while (event := self._conversation.next_event()) is NEED_DATA:
            self._conversation.receive_data(self._sock.recv(65536))
        return event

    def _handshake(self, since: int | None, timeout: float) -> Event:
        try:
            first = self._next()
        except TimeoutError:
            raise TimeoutError(
                f"{self.host}:{self.port} sent no labchat greeting within {timeout:g} s"
            ) from None
        except RemoteProtocolError as exc:
            raise ConnectionError(f"{self.host}:{self.port} is {exc}") from None
        if first is CLOSED:
            raise ConnectionError(f"{self.host}:{self.port} closed the connection without a greeting")
        if isinstance(first, Refused):
            raise JoinRefused(first.code, first.text)
        with self._send_lock:
            self._sock.sendall(self._conversation.hello(self.nick, self._token, since, self._op_token))
        while True:
            event = self._next()
            if event is CLOSED:
                raise ConnectionError("the server closed the connection during the handshake")
            if isinstance(event, Refused):
                raise JoinRefused(event.code, event.text)
            if event.kind == "welcome":
                self._track(event)
                return event

    def _receive_loop(self) -> None:
        reason = "the connection ended"
        try:
            while True:
                reason = self._receive_events()
                if self._final or self._leaving or not self.reconnect:
                    break
                why_not = self._reconnect(reason)
                if why_not is not None:
                    reason = why_not
                    break
        finally:
            if not self.close_reason:
                self.close_reason = reason
            with self._ready:
                self._ended = True
                callbacks = list(self._close_callbacks)
                self._ready.notify_all()
            for callback in callbacks:
                _call_close(callback, self.close_reason)

    def _receive_events(self) -> str:
        """Deliver the events of one connection until it ends; why it ended."""
        try:
            while True:
                try:
                    event = self._next()
                except RemoteProtocolError:
                    raise
                except ProtocolError as exc:
                    if exc.code == "line-too-long":  # the decoder takes nothing after it: the end
                        raise
                    continue  # a newer server's event we do not know: skip it
                if event is CLOSED:
                    break
                self._take(event)
        except ProtocolError as exc:
            self._final = True
            return f"bad data from the server: {exc}"
        except OSError as exc:
            if self._stop.is_set():
                return "you left the chat"
            return f"connection lost: {exc.strerror or exc}"
        return "you left the chat" if self._stop.is_set() else "the server closed the connection"

    def _take(self, event: Event) -> None:
        """One event from the server: drop it if already seen, else track and deliver it."""
        gap = event.kind == "system" and event.code == "history-gap"
        if event.seq and not gap:  # (a gap notice is numbered after the replay it comes before)
            if event.seq <= self._last_seq:
                return  # replayed after a reconnect, and seen before it
            self._last_seq = event.seq
        if self._replayed is not None:  # just reconnected: the replay ends at the first live event
            if event.history:
                self._replayed += 1
            elif not gap:
                missed, self._replayed = self._replayed, None
                s = "" if missed == 1 else "s"
                self._deliver(_notice("reconnected", f"reconnected; {missed} missed event{s} replayed"))
        if not event.history:  # the past does not change who is here now
            self._track(event)
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
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

    def _track(self, event: Event) -> None:
        """Keep ``nick`` and ``users`` up to date from what the server says; note a deliberate end."""
        kind = event.kind
        if kind == "welcome":
            self.nick, self.users = event.sender, list(event.users)
        elif kind == "system" and event.users:
            self.users = list(event.users)
        elif kind == "join" and event.sender not in self.users:
            self.users = [*self.users, event.sender]
        elif kind == "leave":
            self.users = [u for u in self.users if u != event.sender]
            if event.sender == self.nick:  # the room removed us
                self._final = True
        elif kind == "nick":
            self.users = [event.target if u == event.sender else u for u in self.users]
            if event.sender == self.nick:
                self.nick = event.target
        elif kind == "system" and event.code == "goodbye":
            self.close_reason = "you left the chat"
            self._final = True
        elif event.code in FINAL_CODES and kind in ("error", "system"):
            self._final = True  # refused for good, or the room was closed (not restarting)
            if kind == "error" and not self.close_reason:
                self.close_reason = event.text  # "you were removed by teacher: ...", not "closed"

    # -- reconnecting (the receiver thread) --------------------------------------------

    def _reconnect(self, lost: str) -> str | None:
        """Try to get back in until ``reconnect_for`` has passed: None once in, else why not."""
        with self._send_lock:  # under the lock: close() either saw us connected, or sees this
            if self._leaving:
                return lost
            self._reconnecting = True
        self._sock.close()
        cause = lost.removeprefix("connection lost: ")
        self._deliver(_notice("reconnecting", f"connection lost ({cause}); reconnecting..."))
        now = time.monotonic()
        quick = self._rejoined is not None and now - self._rejoined < STEADY
        wait = self._next_wait if quick else FIRST_RETRY
        deadline = now + max(self.reconnect_for, 2 * wait)  # room for one try at least, however long the wait
        why = lost
        while (left := deadline - time.monotonic()) > 0:
            if self._stop.wait(min(left, random.uniform(wait / 2, wait))):
                return "you left the chat"
            if time.monotonic() >= deadline:
                break
            wait = min(wait * 2, LAST_RETRY)
            try:
                self._rejoin(deadline)
            except JoinRefused as exc:
                if exc.code not in RETRY_CODES:
                    return f"could not rejoin: {exc.reason}"
                why = exc.reason
            except (OSError, ProtocolError) as exc:  # ConnectionError, TimeoutError, TLS errors
                if self._stop.is_set():
                    return "you left the chat"
                why = _why(exc)
            else:
                self._next_wait, self._rejoined = wait, time.monotonic()
                return None
            log.info("reconnecting to %s:%s: %s", self.host, self.port, why)
        return f"{lost}; could not reconnect within {self.reconnect_for:g} s ({why})"

    def _rejoin(self, deadline: float) -> None:
        """One try: connect, say hello with ``since``; raises as the constructor does."""
        sock = self._dial(deadline)
        try:
            sock.settimeout(max(0.01, min(self._timeout, deadline - time.monotonic())))
            if self._ssl_context is not None:
                sock = self._sock = _start_tls(sock, self._ssl_context, self.host)
            self._conversation = ClientConversation(tap=self._tap)
            since = self._last_seq
            welcome = self._handshake(since, self._timeout)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        if welcome.seq <= since:  # a new room (its server restarted): its numbers start again
            self._last_seq = 0
        self.welcome = welcome
        self._replayed = 0
        self.reconnects += 1
        with self._send_lock:
            self._reconnecting = False
        with self._ready:
            self._ready.notify_all()

    def _dial(self, deadline: float) -> socket.socket:
        """A TCP connection to the server, made so that close() can stop it halfway."""
        failure: OSError = ConnectionError(f"cannot find {self.host}")
        addresses = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            self._sock = sock  # close() shuts whatever is here once it has set _stop ...
            if self._stop.is_set():  # ... so either it has seen this socket, or we see _stop
                sock.close()
                raise ConnectionClosed("you left the chat")
            try:
                sock.setblocking(False)
                status = sock.connect_ex(address)
                while status in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
                    left = deadline - time.monotonic()
                    if self._stop.is_set() or left <= 0:
                        raise TimeoutError("no answer in time")
                    if _writable(sock, min(left, _CONNECT_POLL)):
                        status = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if status:
                    raise OSError(status, os.strerror(status))
                sock.setblocking(True)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                keep_alive(sock)
                return sock
            except OSError as exc:
                sock.close()
                failure = exc
        raise failure


def _call_close(callback: CloseCallback, reason: str) -> None:
    try:
        callback(reason)
    except Exception:  # a bad callback must not stop the rest
        log.exception("an on_close callback failed")


def _notice(code: str, text: str) -> Event:
    """A notice from this client itself, outside the room's order (seq 0)."""
    return Event(kind="system", code=code, text=text, time=round(time.time(), 3))


def _writable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` can be written to (a connection attempt has ended) within ``timeout``."""
    if hasattr(select, "poll"):  # poll, not select: select() fails on descriptors past 1023
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        return bool(poller.poll(timeout * 1000))
    return bool(select.select([], [sock], [], timeout)[1])


def _why(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# OpenSSL's verify codes for a certificate that signed itself (18) or a chain that ends in
# one (19): what `labchat cert` makes, before the client is handed that file.
_SELF_SIGNED = frozenset({18, 19})


def _start_tls(sock: socket.socket, context: ssl.SSLContext, host: str) -> ssl.SSLSocket:
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        hint = ""
        if exc.verify_code in _SELF_SIGNED:  # a class certificate nobody was given to trust
            hint = "; a room's own certificate is trusted by giving its file as the CA (--cafile FILE)"
        raise ConnectionError(
            f"TLS: the server's certificate was not accepted: {exc.verify_message}{hint}"
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
