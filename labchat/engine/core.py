"""What every chat server shares, whatever way it waits: keywords, the room, admission, shutdown.

An engine subclasses ``ChatServerCore`` and fills in how it starts serving
(``_serve``), sends sessions' queued bytes (``engine_flush_all``), stops
reading a session that is leaving (``engine_wake``), cuts a connection
(``engine_abort``), and stops (``_stop_accepting``, ``_stop_serving``).
Everything a client can observe (limits, pacing, order, errors, endings)
lives in the session, the hub and the room, which both engines share, so the
two differ in one place: how they wait.

``with Server(port=0) as server:`` listens when the block starts; leaving it
stops accepting, tells every client, closes every socket and joins every thread.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..bot import Greeter
from ..conversation import State
from ..protocol import DEFAULT_PORT, MAX_LINE, PROTOCOL, Event
from ..room import MAX_NICK, Room
from ..text import safe
from . import limits
from .bus import Bus
from .fanout import Hub
from .faults import Faults
from .record import Transcript
from .session import Session, where

if TYPE_CHECKING:
    from ..backplane import Backplane

log = logging.getLogger("labchat.server")


@dataclass(frozen=True)
class Connection:
    """One connection as ``ChatServer.connections()`` reports it (a snapshot)."""

    nick: str | None  # None until it has joined
    address: str
    mode: str  # "json" for programs, "text" for a person on netcat
    since: float  # when it connected (Unix seconds)
    received: int  # bytes received from it
    sent: int  # bytes sent to it
    messages_in: int  # lines it sent
    messages_out: int  # events queued for it
    queued: int  # bytes waiting for it


class ChatServerCore:
    """A chat room on a TCP port; every limit is a keyword (see ``docs/security.md``).

    - ``token``: clients must present it to join (compared in constant time).
    - ``bot``: True for the default greeter, False/None for none, or a Greeter.
    - ``history``: how many recent messages a newcomer is shown.
    - ``replay``: how many recent events are kept for a client that reconnects.
    - ``max_clients``: members of the room at once; a connection past it is refused.
    - ``max_per_host``: members from one address at once (None: no such bound, the default,
      since a JupyterHub's kernels, or one machine's demo, all come from one address).
    - ``max_pending``: connections that have not joined yet, across all addresses.
    - ``rate``/``burst``: each client may send ``burst`` lines at once and ``rate``
      a second after that; faster senders are paced (read more slowly), never
      dropped. ``rate=None`` switches it off.
    - ``outbox_limit``: bytes queued for one client before it is cut off.
    - ``stall_timeout``: seconds a client may leave its bytes unread before it is cut off.
    - ``hello_timeout``: seconds a new connection has to say who it is.
    - ``ssl_context``: a server-side ``ssl.SSLContext`` to speak TLS.
    - ``log``: a path or text file for a JSON Lines transcript of the room.
    - ``bus``: how the room's broadcasts travel (in-process unless given).
    - ``backplane``/``room``: a Redis URL (or a ``labchat.backplane.Backplane``) and a room
      name: every server given the same two is one room (see ``docs/backplane.md``).
      ``backplane_insecure=True`` allows plain ``redis://`` to another machine.
    - ``op_token``: clients that present it are operators (may kick and mute); made up
      when not given, and readable as ``server.op_token``.
    - ``faults``: faults on purpose, for lessons (``Faults(chop=True, delay=0.2)``); off by default.
    - ``clock``: the monotonic clock every deadline is measured on.
    """

    engine = "core"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        token: str | None = None,
        bot: bool | Greeter | None = True,
        history: int = 20,
        replay: int = 500,
        max_clients: int = 100,
        max_per_host: int | None = None,
        max_pending: int = limits.MAX_PENDING,
        max_line: int = MAX_LINE,
        rate: float | None = 5.0,
        burst: int = 20,
        outbox_limit: int = limits.OUTBOX_LIMIT,
        stall_timeout: float = limits.STALL_TIMEOUT,
        hello_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        log: str | Path | IO[str] | None = None,
        log_private: bool = False,
        bus: Bus | None = None,
        backplane: str | Backplane | None = None,
        room: str = "main",
        backplane_insecure: bool = False,
        op_token: str | None = None,
        faults: Faults | dict | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if type(port) is not int or not 0 <= port <= 65535:  # a str, a float, 70000: said now, not at bind
            raise ValueError(f"port must be a whole number from 0 to 65535 (0: any free one), not {port!r}")
        self.host = host
        self.port = port
        self.token = token or None
        # Operators present this; made up at start when not given, so a room always has one.
        self.op_token = op_token or secrets.token_urlsafe(12)
        self.faults = Faults.of(faults)
        self.max_clients = max_clients
        if max_per_host is not None and max_per_host < 1:
            raise ValueError("max_per_host must be at least 1 (or None for no bound)")
        self.max_per_host = max_per_host
        self.max_line = max_line
        self.max_nick = MAX_NICK
        self.rate = rate
        self.burst = burst
        self.outbox_limit = outbox_limit
        self.stall_timeout = stall_timeout
        self.hello_timeout = hello_timeout
        self.ssl_context = ssl_context
        self.log_private = log_private
        self.clock = clock
        greeter = Greeter() if bot is True else (bot or None)
        self.backplane: Backplane | None = None
        peers = None
        if backplane is not None:
            if bus is not None:
                raise ValueError("a server takes a bus or a backplane, not both")
            from ..backplane import Backplane  # only now: a server without one never loads it

            if isinstance(backplane, str):
                backplane = Backplane(backplane, room, insecure=backplane_insecure)
            self.backplane = bus = backplane
            peers = backplane.peers
        # A catch-up is put in a client's outbox at once: a quarter of the limit leaves room
        # for what the room says meanwhile (room.fit_replay).
        self._keep = (history, replay, outbox_limit // 4)
        self.room = Room(history=history, replay=replay, replay_bytes=self._keep[2], bot=greeter, peers=peers)
        self.pending = limits.PendingBudget(max_pending)
        self._bus = bus
        self._log_target = log
        self.hub: Hub | None = None
        self._listener: socket.socket | None = None
        self._sessions: set[Session] = set()
        self._sessions_lock = threading.Lock()
        self._numbers = iter(range(1, 1 << 62))
        self._closing = threading.Event()
        self._closed = threading.Event()
        self._bound: tuple[str, int] | None = None

    # -- what anyone may ask --------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; the real port when you asked for port 0."""
        if self._bound is None:
            raise RuntimeError("the server is not started")
        return self._bound

    @property
    def running(self) -> bool:
        return self._listener is not None and not self._closing.is_set()

    def users(self) -> list[str]:
        """Nicks in the room, in joining order."""
        return self.room.nicks()

    def connections(self) -> list[Connection]:
        """One snapshot per open connection, joined or not, oldest first."""
        with self._sessions_lock:
            sessions = sorted(self._sessions, key=lambda s: s.number)
        return [Connection(**s.figures()) for s in sessions]

    def __repr__(self) -> str:
        if self._bound is None:
            where = "not started"
        else:
            where = "{}:{}".format(*self._bound) + (", closed" if self._closed.is_set() else "")
        return f"<{type(self).__name__} {where}, {len(self.users())} in the room>"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> ChatServerCore:
        """Bind, listen and start serving in the background."""
        if self._listener is not None:
            raise RuntimeError("the server is already started")
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        # A restart may bind past TIME_WAIT; on Windows SO_REUSEADDR would let others take the port.
        if os.name == "posix":
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        elif hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows: nobody else may bind it while we listen
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen(128)
        except BaseException:  # whatever bind raises, the socket is not left open
            listener.close()
            raise
        transcript = None
        if self._log_target is not None:
            transcript = Transcript(self._log_target, private=self.log_private)
        self.hub = Hub(
            self.room,
            max_clients=self.max_clients,
            max_per_host=self.max_per_host,
            soft_outbox=min(limits.SOFT_OUTBOX, self.outbox_limit // 4),
            clock=self.clock,
            flush=self.engine_flush_all,
            bus=self._bus,
            transcript=transcript,
            faults=self.faults,
        )
        if self.backplane is not None:
            try:
                self.backplane.start(
                    self, history=self._keep[0], replay=self._keep[1], replay_bytes=self._keep[2]
                )
            except BaseException:
                listener.close()
                if transcript is not None:
                    transcript.close()
                raise
        self._listener = listener
        self._bound = listener.getsockname()[:2]
        self._serve(listener)
        host, port = self._bound
        log.info("listening on %s:%d (%s engine)", host, port, self.engine)
        if self.faults.on:
            log.warning("faults are on, for a lesson: %s", self.faults.describe())
        if self.token is None and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            log.warning(
                "listening on %s:%d with no token: anyone who can reach this machine on the network "
                "can join the room, read every message and post under any free nick; set a token "
                "(ChatServer(token=...), labchat serve --token or LABCHAT_TOKEN) to keep strangers out",
                host,
                port,
            )
        return self

    def close(self, reason: str = "the server is shutting down", *, restarting: bool = False) -> None:
        """Stop accepting, tell every client, close every socket, join every thread.

        Clients take a close as the end of the room; with ``restarting=True`` they are told
        to expect it back (a re-run notebook cell), and those that reconnect try again.
        """
        if self._listener is None or self._closing.is_set():
            return
        self._closing.set()
        self._stop_accepting()
        hub = self.hub
        with hub.delivering():
            hub.closing = True
        with self._sessions_lock:
            sessions = list(self._sessions)
        code = "restarting" if restarting else "closing"
        notice = Event(kind="system", code=code, text=safe(reason), time=round(time.time(), 3))
        hub.broadcast(notice, [s for s in sessions if s.conversation.state is not State.BANNER])
        for session in sessions:
            session.end(reason)
        deadline = time.monotonic() + limits.LINGER
        for session in sessions:
            session.drained.wait(max(0.0, deadline - time.monotonic()))
        for session in sessions:
            self.engine_abort(session)
        self._stop_serving()
        if self.backplane is not None:
            self.backplane.stop()
        hub.stop_faults()
        self._listener.close()
        if hub.transcript is not None:
            hub.transcript.close()
        self._closed.set()
        log.info("closed")

    def __enter__(self) -> ChatServerCore:
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- for the engines ----------------------------------------------------------------------

    def admit(self, sock: socket.socket, address: tuple) -> Session | None:
        """A new connection's session, or None when it was refused (and closed) at the door."""
        try:
            limits.tune(sock)
        except OSError:  # reset before we could even set it up
            sock.close()
            return None
        if self.room.size >= self.max_clients:
            log.warning("%s refused: the room is full (at most %d at once)", where(address), self.max_clients)
            _refuse_at_door(
                sock, "server-full", f"the room is full (at most {self.max_clients} at once); try again later"
            )
            return None
        session = Session(self, address, next(self._numbers))
        with self._sessions_lock:
            self._sessions.add(session)
        victim = self.pending.admit(session, session.host, _silent)
        if victim is not None:
            log.warning(
                "%s: too many connections waiting to join; one from %s gives way (a silent one first)",
                session.where,
                victim.host,
            )
            victim.evict()
        return session

    def forget(self, session: Session) -> None:
        """The engine has closed this session's socket."""
        session.ended = True
        self.pending.remove(session, session.host)
        with self._sessions_lock:
            self._sessions.discard(session)

    def forget_pending(self, session: Session) -> None:
        self.pending.remove(session, session.host)

    def join(self, session: Session, hello) -> None:
        operator = self.is_operator_token(hello.op_token)
        self.hub.join(session, hello, operator=operator)
        if hello.op_token is not None and not operator:  # a helper's typo: say so now, not at /kick
            log.warning("%s gave a wrong operator token; joined as a member", session.who)
            text = "the operator token you gave is not this room's: you are in the room as a member"
            self.hub.tell(
                session, Event(kind="system", code="op-token-wrong", text=text, time=round(time.time(), 3))
            )
        self.joined(session)

    def joined(self, session: Session) -> None:
        """An engine's hook: the session is in the room."""

    def token_matches(self, token: str | None) -> bool:
        return hmac.compare_digest((token or "").encode("utf-8"), (self.token or "").encode("utf-8"))

    def is_operator_token(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode("utf-8"), self.op_token.encode("utf-8"))

    def banner_note(self, greeting: str) -> str:
        """The banner's words, with a warning when faults are switched on for a lesson."""
        return f"{greeting} {self.faults.banner()}" if self.faults.on else greeting

    # -- moderation, from Python --------------------------------------------------------------

    def kick(self, nick: str, reason: str = "") -> None:
        """Remove ``nick`` from the room, telling them and everyone why; LookupError if absent."""
        self._moderate("kick", nick, reason)

    def mute(self, nick: str) -> None:
        """Refuse ``nick``'s messages (they are told, with an error each) until ``unmute``."""
        self._moderate("mute", nick)

    def unmute(self, nick: str) -> None:
        self._moderate("unmute", nick)

    def _moderate(self, action: str, nick: str, reason: str = "") -> None:
        if self.hub is None:
            raise RuntimeError("the server is not started")
        self.hub.moderate(action, nick, reason, by="the server")

    # -- what an engine provides ----------------------------------------------------------------

    def _serve(self, listener: socket.socket) -> None:
        raise NotImplementedError

    def _stop_accepting(self) -> None:
        raise NotImplementedError

    def _stop_serving(self) -> None:
        raise NotImplementedError

    def engine_flush(self, session: Session) -> None:
        self.engine_flush_all([session])

    def engine_flush_all(self, sessions: list[Session]) -> None:
        """Send what these sessions have queued, each once, in order (one may be named twice)."""
        raise NotImplementedError

    def engine_abort(self, session: Session) -> None:
        raise NotImplementedError

    def engine_wake(self, session: Session) -> None:
        """The session has started leaving (maybe on another thread's word): stop waiting to read it."""
        raise NotImplementedError


def _silent(session: Session) -> bool:
    """Whether a waiting connection has sent nothing at all: the first to give way."""
    return not session.received_bytes


def _refuse_at_door(sock: socket.socket, code: str, text: str) -> None:
    """Say why in a banner line a person or a program can read, then hang up (never blocks)."""
    try:
        sock.send(f"{PROTOCOL} refused {code}: {text}\n".encode())
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sock.close()
