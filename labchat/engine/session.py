"""One connection as both engines see it: conversation, outbox, pace and figures.

A ``Session`` never blocks and owns no socket. An engine hands it what ``recv``
returned (``received``), lets it act on what arrived (``process``, which says
until when it must not be read from again), and sends what it has queued
(``write``, given the socket's non-blocking ``send``; an engine's round of
broadcasts goes out through ``rounds.send_round``). Every rule about what a
connection may do (pacing, errors in their place, deadlines, cutting off a
stuck reader) is here once, so the threaded and the selector engine behave alike.

Its lock guards the outbox and the TLS layer and is never held across a call
into the room; the room's delivery lock may be held when ``queue`` is called.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..conversation import (
    CLOSED,
    NEED_DATA,
    Invalid,
    RemoteProtocolError,
    ServerConversation,
    State,
)
from ..pacing import TokenBucket
from ..protocol import PROTOCOL, Event, Hello, Say
from ..text import safe, seconds
from . import limits
from .faults import CHOP_GAP
from .outbox import Outbox
from .outbox import State as OutboxState
from .secure import HANDSHAKE, TLSLayer

if TYPE_CHECKING:
    from .core import ChatServerCore

log = logging.getLogger("labchat.server")

# Lines handed to the room in one go: enough to move a paste at once, few enough that
# the delivery lock is let go often.
BATCH = 256

# A paced sender is told so at most this often.
PACED_NOTICE_EVERY = 30.0


class Refusal(Exception):
    """The room or the handshake will not take this connection: ``code`` and words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# Guards the making of a session's ``drained`` event, made only once someone asks for it.
_MAKING = threading.Lock()


class Session:
    """One client connection, whatever engine waits for it. See the module docstring.

    Slots, not a ``__dict__``, and no ``threading.Event`` until it is leaving: a server of
    10,000 idle clients holds 10,000 of these (see docs/performance.md).
    """

    __slots__ = (
        "core",
        "number",
        "address",
        "where",
        "host",
        "since",
        "conversation",
        "outbox",
        "lock",
        "tls",
        "bucket",
        "nick",
        "joined",
        "leaving",
        "ended",
        "reason",
        "fault",
        "deadline",
        "linger_until",
        "paused_until",
        "congested_until",
        "rest_until",
        "backlogged",
        "straight",
        "in_round",
        "_sending",
        "_told_paced",
        "received_tls",
        "tls_ended",
        "evicted",
        "_drained",
        "held_back",
        "received_bytes",
        "messages_in",
        "messages_out",
        "sock",  # set by the engine
        "link",  # the threaded engine's own
        "__weakref__",  # the backplane keeps members in weak mappings
    )

    def __init__(self, core: ChatServerCore, address: tuple, number: int) -> None:
        now = core.clock()
        self.core = core
        self.number = number
        self.address = address
        self.where = where(address)
        self.host = str(address[0])
        self.since = time.time()  # when it connected (wall clock, for people)
        self.conversation = ServerConversation(core.max_line)
        self.outbox = Outbox(now)
        self.lock = threading.Lock()
        self.tls = TLSLayer(core.ssl_context) if core.ssl_context is not None else None
        self.bucket = TokenBucket(core.rate, core.burst, clock=core.clock) if core.rate else None
        self.nick: str | None = None  # the room's name for it once joined (kept current on /nick)
        self.joined = False
        self.leaving = False  # no more reading: what is queued goes out, then the socket closes
        self.ended = False  # the engine has closed the socket
        self.reason = ""  # why it ended, as everyone is told
        self.fault = False  # it ended by its own misbehaviour (its log line is a warning)
        self.deadline = now + (limits.TLS_SNIFF if self.tls else core.hello_timeout)
        self.linger_until = 0.0
        self.paused_until = 0.0  # not to be read from before this (paced)
        self.congested_until = 0.0  # held back for slow readers until they drain or this passes
        self.rest_until = 0.0  # chopping for a lesson: the next piece not before this
        self.backlogged = False  # the kernel took less than offered: the rest waits for writability
        self.straight = False  # a round's broadcasts may go to it without its outbox (rounds.py)
        self.in_round = 0  # the round (Round.gen) that holds bytes for it: not drained until they are sent
        self._sending = False  # a thread is inside write(): the others leave the socket to it
        self._told_paced = -1e9
        self.received_tls = False  # a TLS room has seen the client's first handshake bytes
        self.tls_ended = False  # ... and the end of its stream
        self.evicted = False  # gave way to a newer stranger: refused on its own thread's next turn
        self._drained: threading.Event | None = None  # see drained
        self.held_back = False  # leaving while the delay fault still holds deliveries for it
        self.received_bytes = 0
        self.messages_in = 0
        self.messages_out = 0

    @property
    def drained(self) -> threading.Event:
        """Set once it is leaving and every byte has gone (made on first use)."""
        event = self._drained
        if event is None:
            with _MAKING:
                event = self._drained
                if event is None:
                    event = self._drained = threading.Event()
        return event

    # -- names -------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.conversation.mode

    @property
    def who(self) -> str:
        return f"{self.nick} ({self.where})" if self.nick else self.where

    @property
    def sent_bytes(self) -> int:
        return self.outbox.sent_total

    def __repr__(self) -> str:
        return f"<Session {self.number} {self.who}>"

    # -- the start ---------------------------------------------------------------------

    def start(self) -> None:
        """Say the banner (a TLS room waits for the client's handshake first)."""
        if self.tls is None:
            self._queue_banner()

    def _queue_banner(self) -> None:
        core = self.core
        if core.token:
            greeting = (
                "Welcome to labchat! This room needs a token: type your nick, a space, the token, then Enter."
            )
        else:
            greeting = "Welcome to labchat! Type your nick and press Enter."
        core.hub.send(self, self.conversation.banner(core.banner_note(greeting)))
        self.deadline = core.clock() + core.hello_timeout

    # -- bytes in ----------------------------------------------------------------------

    def receive_from(self, recv: Callable[[int], bytes]) -> bool:
        """Take what a non-blocking socket's ``recv`` has; False when it had nothing yet.

        A socket that fails ends the session, with the reason everyone is told.
        """
        try:
            data = recv(65536)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self.end(f"connection lost ({exc.strerror or exc.__class__.__name__})")
            return True
        self.received(data)
        return True

    def received(self, data: bytes) -> None:
        """What ``recv`` returned (``b""`` at the end). Call ``process`` next."""
        self.received_bytes += len(data)
        if self.tls is None:
            self.conversation.receive_data(data)
            return
        if not self.received_tls and data and data[0] != HANDSHAKE:
            self._refuse_plain()
            return
        if not self.received_tls:  # a TLS client: the handshake and the hello have hello_timeout
            self.deadline = self.core.clock() + self.core.hello_timeout
        self.received_tls = True
        try:
            with self.lock:
                plaintext, ended = self.tls.receive(data)
                handshake = self.tls.outgoing()
        except ssl.SSLError as exc:
            what = "broken TLS record" if self.tls.established else "TLS handshake failed"
            self.end(f"{what} ({exc.reason or exc})", fault=True)
            return
        if handshake:
            self.core.hub.send(self, handshake, raw=True)
        if self.conversation.state is State.BANNER and self.tls.established:
            self._queue_banner()
        if plaintext:
            self.conversation.receive_data(plaintext)
        if ended:
            self.tls_ended = True
            self.conversation.receive_data(b"")

    def _refuse_plain(self) -> None:
        text = "this server speaks TLS only; connect with TLS (labchat join --tls)"
        self.core.hub.send(self, f"{PROTOCOL} refused tls-required: {text}\n".encode(), raw=True)
        self.end("not a TLS client")

    def process(self) -> float | None:
        """Act on everything received that may be acted on now.

        Returns None when it wants more bytes, or the clock time before which
        it must not be read from (it is paced, or readers are catching up).
        """
        core = self.core
        if self.evicted and not self.joined and not self.leaving:
            self.refuse("busy", "too many connections are waiting to join; try again in a moment")
            return None
        if self.conversation.state is State.BANNER:  # a TLS handshake is still under way
            if self.tls_ended:
                self.end("closed during the TLS handshake")
            return None
        batch: list[str | Invalid] = []
        try:
            while not self.leaving:
                now = core.clock()
                if self.congested_until:
                    if now < self.congested_until and core.hub.congested():
                        return self._hold(batch, min(self.congested_until, now + limits.CONGESTION_POLL))
                    self.congested_until = 0.0
                if self.bucket is not None and self.joined and self.conversation.unprocessed:
                    wait = self.bucket.delay()
                    if wait > 0:
                        self._flush(batch)
                        self._tell_paced(now)
                        return self._hold([], now + wait)
                elif self.bucket is None and self.joined:  # unpaced: take many lines at once
                    events = self.conversation.next_events(BATCH - len(batch))
                    if events:
                        self.messages_in += len(events)
                        batch += events
                        if len(batch) >= BATCH and self._flush(batch):
                            return self._hold([], self._congestion_poll())
                        if self.conversation.unprocessed:
                            continue
                        # else every line is taken: next_event() says NEED_DATA (or CLOSED)
                try:
                    event = self.conversation.next_event()
                except RemoteProtocolError as exc:
                    self._flush(batch)
                    self.refuse(exc.code, str(exc))
                    return None
                if event is NEED_DATA:
                    self._flush(batch)
                    return None
                if event is CLOSED:
                    self._flush(batch)
                    self.end("")
                    return None
                if isinstance(event, Hello):
                    self._hello(event)
                    continue
                if self.bucket is not None:
                    self.bucket.take()
                self.messages_in += 1
                batch.append(event.text if isinstance(event, Say) else event)
                if len(batch) >= BATCH and self._flush(batch):
                    return self._hold([], self._congestion_poll())
        except Exception:
            log.exception("%s: unexpected error", self.who)
            self.end("server error")
        return None

    def _hold(self, batch: list, until: float) -> float:
        self._flush(batch)
        if self.leaving:
            return 0.0
        self.paused_until = until
        return until

    def _congestion_poll(self) -> float:
        """When a sender just held back for slow readers looks again: in CONGESTION_POLL, not
        at the end of the longest wait (it goes on as soon as they have caught up)."""
        return min(self.congested_until, self.core.clock() + limits.CONGESTION_POLL)

    def _flush(self, batch: list[str | Invalid]) -> bool:
        """Hand the batch to the room; True when readers are behind and this sender must wait."""
        if not batch:
            return False
        items = list(batch)
        batch.clear()
        if self.core.hub.say(self, items):
            self.end("")
            return False
        if self.core.hub.congested():
            self.congested_until = self.core.clock() + limits.CONGESTION_WAIT
            return True
        return False

    def _tell_paced(self, now: float) -> None:
        if now - self._told_paced < PACED_NOTICE_EVERY:
            return
        self._told_paced = now
        log.info("%s: sending fast, paced", self.who)
        rate = self.core.rate
        self.core.hub.tell(
            self,
            Event(
                kind="system",
                code="paced",
                text=f"you are sending fast, so the server takes your lines at {rate:g} a second; "
                "nothing is lost, they are on their way",
                time=round(time.time(), 3),
            ),
        )

    def _hello(self, hello: Hello) -> None:
        core = self.core
        if core.token is not None and not core.token_matches(hello.token):
            self.refuse("bad-token", "wrong or missing room token")
            return
        self.nick = safe(hello.nick[: core.max_nick])  # for logs until the room has checked it
        try:
            core.join(self, hello)
        except Refusal as exc:
            self.refuse(exc.code, str(exc))
            return
        self.conversation.joined()
        self.joined = True
        log.info("%s joined", self.who)

    # -- endings -----------------------------------------------------------------------

    def refuse(self, code: str, text: str) -> None:
        """Say why, in this connection's own form, then end it."""
        self.core.hub.send(self, self.conversation.refusal(code, text))
        self.end(text, refused=True)

    def end(self, reason: str, *, fault: bool = False, refused: bool = False) -> None:
        """Stop reading; tell the room; let what is queued go out, then the engine closes.

        Safe to call more than once and from any thread; the first reason stays.
        """
        with self.lock:
            if self.leaving:
                return
            self.leaving = True
            self.reason = self.reason or reason
            self.fault = self.fault or fault
        core = self.core
        core.hub.leave(self, self.reason)
        level = logging.WARNING if self.fault else logging.INFO
        because = f": {self.reason}" if self.reason else ""
        if self.joined:
            log.log(level, "%s left%s", self.who, because)
        elif refused:
            log.info("%s refused%s", self.who, because)
        elif self.reason:
            log.log(level, "%s gone before joining%s", self.who, because)
        core.forget_pending(self)
        with self.lock:
            self.linger_until = core.clock() + limits.LINGER
            # A lesson's delay fault may still hold a member's last events (its goodbye, say):
            # the outbox takes them when they are released, and it lingers that much longer.
            # Nothing is held for a stranger (its banner and refusal are sent at once).
            self.held_back = self.joined and core.hub.after_held(self._held_released)
            if self.held_back:
                self.linger_until += core.faults.delay
            else:
                self._last_bytes()
            self._drained_if_done()
        core.engine_flush(self)
        core.engine_wake(self)

    def _drained_if_done(self) -> None:
        """A leaving session is drained once nothing waits for it (lock held): not in its outbox,
        not in a round on its way, not in the delay fault's hold."""
        if not self.outbox.size and not self.in_round and not self.held_back:
            self.drained.set()

    def _last_bytes(self) -> None:
        """The outbox takes nothing more but the end of TLS (lock held): what it holds may leave."""
        if self.tls is not None and self.outbox.state is OutboxState.OPEN:
            self.tls.close()
            tail = self.tls.outgoing()
            if tail:
                self.outbox.put(tail, self.core.clock())
        self.outbox.drain()

    def _held_released(self) -> None:
        """What the delay fault held when this session started leaving is in its outbox now."""
        with self.lock:
            self.held_back = False
            self._last_bytes()
            self._drained_if_done()
        self.core.engine_flush(self)
        self.core.engine_wake(self)

    def evict(self) -> None:
        """Make room for a newer stranger (any thread): its own thread refuses it with ``busy``."""
        self.evicted = True
        self.core.engine_wake(self)

    def cut(self, reason: str) -> None:
        """Cut the connection now, for a reason everyone is told (a stuck or overflowing reader)."""
        with self.lock:
            self.reason = self.reason or reason
            self.fault = True
        self.core.engine_abort(self)

    # -- bytes out ---------------------------------------------------------------------

    def queue(self, data: bytes, *, raw: bool = False, now: float | None = None) -> str:
        """Queue bytes for this client: 'send' (flush it), 'wait' (someone will), 'over' (cut it off).

        ``raw`` bytes skip TLS (the handshake's own, or a refusal to a plain client); ``now``
        saves a look at the clock when one delivery queues for many.
        """
        if now is None:
            now = self.core.clock()
        if self.tls is None:
            return self.put(data, now)
        with self.lock:
            if self.outbox.state is not OutboxState.OPEN:
                return "wait"  # leaving: its TLS may be shut already, and it takes no more bytes
            if not raw:
                if not self.tls.established:
                    return "wait"
                self.tls.encrypt(data)
                data = self.tls.outgoing()
            return self._take(data, now)

    def put(self, data: bytes, now: float) -> str:
        """``queue`` without its keywords, for the room's broadcasts (a call per member)."""
        if self.tls is not None:
            return self.queue(data, now=now)
        with self.lock:
            return self._take(data, now)

    def _take(self, data: bytes, now: float) -> str:
        """Into the outbox, and ``queue``'s answer (the lock is held).

        Only bytes put into an empty outbox need a send: bytes already waiting are either
        waiting for the socket to be writable, or in the hands of a thread inside ``write``,
        or queued since the last flush and about to be sent; the new ones go with them.
        """
        outbox = self.outbox
        waiting = outbox.size
        if not outbox.put(data, now):
            return "wait"
        if outbox.size > self.core.outbox_limit:
            return "over"
        return "wait" if waiting else "send"

    def write(self, send: Callable[[bytes], int]) -> bool | None:
        """Send what is queued through ``send`` (a non-blocking socket's) until done or the kernel is full.

        True when all has gone, False when the rest must wait for the socket to be
        writable, None when the socket failed (the connection is then ending).
        Only one thread is ever inside at once; another caller returns at once, and
        whatever it queued is sent by the one inside: the flag is cleared under the
        same lock hold that finds the outbox empty, so no byte is left behind.
        This runs once per reader per round of a busy room: one lock hold before the
        send and one after it, nothing else.
        """
        lock, outbox = self.lock, self.outbox
        with lock:  # the first look also takes the first bytes: one lock hold, not two
            if self._sending:
                return False
            data = outbox.peek()
            if not data:
                self.backlogged = False
                if self.leaving:
                    self._drained_if_done()
                return True
            self._sending = True
        if self.core.faults.chop:
            return self._write_chopped(send, data)
        clock = self.core.clock
        while True:
            try:
                count = send(data)
            except (BlockingIOError, InterruptedError):
                count = 0
            except OSError as exc:
                return self._send_failed(exc)
            with lock:
                if count < len(data):
                    outbox.sent(count, clock())
                    self.backlogged = True
                    self._sending = False
                    return False
                data = outbox.sent_next(count, clock())
                if not data:
                    self.backlogged = False
                    self._sending = False
                    if self.leaving:
                        self._drained_if_done()
                    return True

    def straight_rest(self, count: int, data: bytes, now: float, gen: int) -> bool:
        """Round ``gen``'s ``send`` of ``data`` took only ``count`` bytes (``rounds.send_round``;
        none, when part of an earlier round still waits at the front): the rest waits at the
        front of the outbox, behind that part and ahead of anything queued since; False."""
        with self.lock:
            if self.in_round == gen:  # (it may be named in a later round already)
                self.in_round = 0
            outbox = self.outbox
            outbox.sent_total += count
            if count:
                outbox.progress = now  # bytes moved
            outbox.put_front(data[count:], now)
            self.backlogged = True
            return False

    def straight_failed(self, exc: OSError) -> None:
        """A round's ``send`` to this reader failed: the connection is gone."""
        self.in_round = 0
        self._send_failed(exc)

    def drained_if_empty(self) -> None:
        """A leaving reader's round went out: it is drained unless another thread queued more."""
        with self.lock:
            self._drained_if_done()

    def _write_chopped(self, send: Callable[[bytes], int], data: bytes) -> bool | None:
        """``write`` for a lesson on framing: one small piece, then a rest (``CHOP_GAP``)."""
        piece = self.core.faults.piece(data)
        try:
            count = send(piece)
        except (BlockingIOError, InterruptedError):
            count = 0
        except OSError as exc:
            return self._send_failed(exc)
        with self.lock:
            if count:
                self.outbox.sent(count, self.core.clock())
                if count == len(piece) and self.outbox.size:
                    self.rest_until = self.core.clock() + CHOP_GAP
            self.backlogged = bool(self.outbox.size)
            self._sending = False
            if not self.backlogged:
                if self.leaving:
                    self._drained_if_done()
                return True
            return False

    def _send_failed(self, exc: OSError) -> None:
        with self.lock:
            self.outbox.close()
            self._sending = False
        self.reason = self.reason or f"connection lost ({exc.strerror or exc})"

    def overdue(self, now: float) -> str | None:
        """Why this session must be ended now, by its timers, or None."""
        if self.leaving:
            if now >= self.linger_until and not self.drained.is_set():
                return "linger"
            return None
        if not self.joined and now >= self.deadline:
            return "hello"
        if self.outbox.stalled(now) > self.core.stall_timeout:
            return "stalled"
        return None

    def on_overdue(self, why: str) -> None:
        """Act on what ``overdue`` said."""
        if why == "hello":
            if self.tls is not None and not self.tls.established and not self.received_tls:
                self._refuse_plain()
            else:
                timeout = self.core.hello_timeout
                self.refuse("hello-timeout", f"no hello within {seconds(timeout)}")
        elif why == "stalled":
            waiting = self.outbox.size
            self.cut(
                f"stuck: stopped reading, {waiting} bytes waiting and none taken for "
                f"{seconds(self.core.stall_timeout)}"
            )
        elif why == "linger":
            self.core.engine_abort(self)

    def figures(self) -> dict:
        """What ``ChatServer.connections()`` shows of this session."""
        return {
            "nick": self.nick if self.joined else None,
            "address": self.where,
            "mode": self.mode,
            "since": self.since,
            "received": self.received_bytes,
            "sent": self.sent_bytes,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "queued": self.outbox.size,
        }


def where(address: tuple) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
