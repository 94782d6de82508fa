"""SelectorChatServer: every connection served by one thread, through the standard ``selectors``.

One thread (``labchat-selector``) waits for all sockets at once: the listener,
every client, and a wake-up pair that other threads use to hand it work. Each
socket is non-blocking and registered for what its session wants now: reading
unless it is paced or leaving, writing while its kernel buffer is full.
Thousands of idle clients cost memory, not threads. The session, hub and room
are the same as the threaded engine's, so clients cannot tell the two apart.

The rule: only the selector thread touches a session once it is registered;
another thread's request (``close()``, say) is queued and the thread woken.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections import deque
from collections.abc import Callable

from . import limits
from .core import ChatServerCore
from .outbox import State as OutboxState
from .rounds import Round, send_round
from .session import Session

# Connections accepted in one go before the thread looks at its clients again.
ACCEPT_BURST = 64


class SelectorChatServer(ChatServerCore):
    """A chat room served by one thread with ``selectors``: same keywords and behaviour as ``ChatServer``."""

    engine = "selector"

    def _serve(self, listener: socket.socket) -> None:
        self._prepare(listener)
        self._thread = threading.Thread(target=self._loop, name="labchat-selector", daemon=True)
        self._thread.start()

    def _prepare(self, listener: socket.socket) -> None:
        """Everything the loop needs, before its thread starts."""
        listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, "accept")
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._calls: deque[Callable[[], None]] = deque()
        self._socks: dict[Session, socket.socket] = {}
        self._masks: dict[Session, int] = {}
        self._timed: set[Session] = set()  # sessions with a deadline to watch
        self._paused: dict[Session, float] = {}
        self._resting: dict[Session, float] = {}  # chopping for a lesson: next piece not before
        self._dirty: dict[Session, None] = {}  # queued to since the last flush, in order
        self._stopping = False
        self._accepting = True

    # -- other threads' requests ------------------------------------------------------------------

    def _call(self, fn: Callable[[], None], wait: bool = False) -> None:
        """Run ``fn`` in the selector thread (now, if this is it)."""
        if threading.current_thread() is self._thread:
            fn()
            return
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self._calls.append(run)
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already woken, or shutting down
        if wait and self._thread.is_alive():
            done.wait()

    def _stop_accepting(self) -> None:
        def stop() -> None:
            self._accepting = False
            try:
                self._selector.unregister(self._listener)
            except (KeyError, ValueError):
                pass

        self._call(stop, wait=True)

    def close(self, reason: str = "the server is shutting down", *, restarting: bool = False) -> None:
        if self._listener is None or self._closing.is_set():
            return
        if threading.current_thread() is getattr(self, "_thread", None):
            raise RuntimeError("close() the server from another thread than its own")
        super().close(reason, restarting=restarting)

    def _stop_serving(self) -> None:
        def stop() -> None:
            self._stopping = True

        self._call(stop, wait=True)
        self._thread.join()
        for sock in self._socks.values():
            sock.close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the loop -------------------------------------------------------------------------------------

    def _loop(self) -> None:
        self.hub.round = Round()  # this thread's broadcasts are sent at the end of each round
        clock = self.clock
        next_tick = clock() + limits.TICK
        while not self._stopping:
            now = clock()
            timeout = min((next_tick, *self._paused.values(), *self._resting.values())) - now
            for key, mask in self._selector.select(max(0.0, timeout)):
                what = key.data
                if what == "accept":
                    self._accept()
                elif what == "wake":
                    self._run_calls()
                else:
                    if mask & selectors.EVENT_WRITE:
                        self._dirty[what] = None
                    if mask & selectors.EVENT_READ and what in self._socks:
                        self._read(what)
            now = clock()
            for session in _due(self._paused, now):
                session.paused_until = 0.0
                self._after_process(session, session.process())
            for session in _due(self._resting, now):
                self._dirty[session] = None
            if now >= next_tick:
                next_tick = now + limits.TICK
                self._check_timers(now)
            if self._calls:  # queued since the wake-up was read (its byte wakes the next round)
                self._run_calls()
            self._flush_dirty()

    def _flush_dirty(self) -> None:
        """Send what this round queued: one send per client, however many events it got.

        The round's broadcasts go first, straight to the readers whose outboxes were empty
        (``rounds.py``); then every outbox that was queued to. A session that fails here is
        closed, and that may queue more for others: they are taken in the same loop, never
        by recursion.
        """
        socks, masks, want_write = self._socks, self._masks, selectors.EVENT_WRITE
        round = self.hub.round  # this thread's own: no other thread adds to it
        while True:
            if round.blobs:
                self._send_round(round.take())
            if not self._dirty:
                if round.blobs:  # closing a session told the others
                    continue
                return
            dirty, self._dirty = self._dirty, {}  # what closing one queues is taken next time round
            for session in dirty:
                sock = socks.get(session)
                if sock is None:
                    continue
                done = session.write(sock.send)
                if done is None:
                    self._send_lost(session)
                elif not done or session.leaving or masks.get(session, 0) & want_write:
                    self._update(session)
                # else: all sent and nothing else changed, as in nearly every round of a busy room

    def _send_round(self, groups: list[tuple[list[Session], bytes, int, int]]) -> None:
        now = self.clock()
        for readers, blob, count, gen in groups:
            for session, done in send_round(readers, blob, count, gen, self._socks.get, now):
                if done is None:
                    self._send_lost(session)
                else:  # the rest waits for the socket to be writable; or it closes
                    self._update(session)

    def _run_calls(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        while self._calls:
            self._calls.popleft()()

    def _accept(self) -> None:
        for _ in range(ACCEPT_BURST):
            if not self._accepting:
                return
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # out of descriptors, say: the listener stays readable, try next round
            session = self.admit(sock, address)
            if session is None:
                continue
            session.sock = sock
            self._socks[session] = sock
            self._masks[session] = selectors.EVENT_READ
            self._selector.register(sock, selectors.EVENT_READ, session)
            self._timed.add(session)
            session.start()
            self._update(session)

    def _read(self, session: Session) -> None:
        if session.receive_from(self._socks[session].recv):
            self._after_process(session, session.process())

    def _after_process(self, session: Session, until: float | None) -> None:
        if until and not session.leaving:
            self._paused[session] = until
        self._update(session)

    def _check_timers(self, now: float) -> None:
        for session in list(self._timed):
            why = session.overdue(now)
            if why:
                session.on_overdue(why)
                self._update(session)
            elif session.joined and not session.backlogged and not session.leaving:
                self._timed.discard(session)

    # -- interest, sending and closing ------------------------------------------------------------------

    def _update(self, session: Session) -> None:
        """Register for what the session wants now, or close it once it has nothing left to do."""
        sock = self._socks.get(session)
        if sock is None:
            return
        if session.leaving and (session.drained.is_set() or session.outbox.state is OutboxState.CLOSED):
            self._close(session)
            return
        mask = 0
        if not session.leaving and session not in self._paused:
            mask |= selectors.EVENT_READ
        if session.backlogged:
            if session.rest_until > self.clock():  # a chopped piece went: the next after a rest
                self._resting[session] = session.rest_until
            else:
                mask |= selectors.EVENT_WRITE
        if session.leaving or session.backlogged:
            self._timed.add(session)
        if mask == self._masks.get(session, 0):
            return
        if not mask:
            self._selector.unregister(sock)
        elif not self._masks.get(session):
            self._selector.register(sock, mask, session)
        else:
            self._selector.modify(sock, mask, session)
        self._masks[session] = mask

    def engine_flush_all(self, sessions: list[Session]) -> None:
        if threading.current_thread() is not self._thread:
            self._call(lambda: self.engine_flush_all(sessions))
            return
        dirty = self._dirty  # sent at the end of this round, with whatever else they get
        for session in sessions:
            dirty[session] = None

    def engine_wake(self, session: Session) -> None:
        if threading.current_thread() is not self._thread:
            self._call(lambda: self.engine_wake(session))
            return
        if session.evicted and not session.leaving and session in self._socks:
            session.process()  # it refuses itself
        self._update(session)

    def engine_abort(self, session: Session) -> None:
        if threading.current_thread() is not self._thread:
            self._call(lambda: self.engine_abort(session), wait=not self._stopping)
            return
        with session.lock:
            session.outbox.close()
        session.drained.set()
        if not session.leaving:
            session.end(session.reason)
        self._close(session)

    def _send_lost(self, session: Session) -> None:
        """A send failed: the peer reads no more (its outbox is closed). Lines it sent
        before are still the room's: a paced sender's are taken at its pace, as its own
        thread takes them in the threaded engine, and then it ends."""
        if session.leaving or not session.joined or not session.conversation.unprocessed:
            self._close(session)
            return
        with session.lock:
            session.outbox.close()  # (closed already when the send itself failed)
        session.backlogged = False  # nothing more goes out: no waiting for a dead socket
        session.drained.set()
        self._update(session)

    def _close(self, session: Session) -> None:
        sock = self._socks.pop(session, None)
        if sock is None:
            return
        if self._masks.pop(session, 0):
            self._selector.unregister(sock)
        self._timed.discard(session)
        self._paused.pop(session, None)
        self._resting.pop(session, None)
        if not session.leaving:
            session.end(session.reason or "connection closed")
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        self.forget(session)


def _due(timers: dict[Session, float], now: float) -> list[Session]:
    """Take out of ``timers`` (session: when) the sessions whose time has come."""
    if not timers:
        return []
    due = [session for session, until in timers.items() if until <= now]
    for session in due:
        del timers[session]
    return due
