"""ThreadingChatServer: a thread per connection, the way the tutorials teach it.

One thread (``labchat-accept``) accepts. Each connection's thread
(``labchat-reader-NICK``) waits for its bytes and hands them to its session;
while the session is paced it simply does not read, and TCP pushes back on the
sender. Sends are non-blocking and take turns: the thread that delivered sends,
unless another is sending already, which then sends its share too (one thread
sends at a time, so a busy room's readers do not hand the GIL to one another at
every ``send``, and a reader alone with a flood pays for no hand-off). Only a client whose kernel
buffer is full gets a second thread (``labchat-writer-NICK``), which waits for
its socket to take more and cuts it off when it takes nothing for too long.
Every socket is non-blocking; threads wait in ``poll`` (``select`` where there
is none) with deadlines, so none of them can hang on a peer.
"""

from __future__ import annotations

import operator
import select
import socket
import threading

from . import limits
from .core import ChatServerCore, log
from .rounds import ANY_THREAD, Round, send_round
from .session import Session


class _Link:
    """The engine's side of one session: its socket, its threads and its wake-up."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: threading.Thread | None = None
        self.writer: threading.Thread | None = None
        self.wake = threading.Event()  # a paced reader's sleep, cut short by an abort
        self.writable = threading.Condition()


class ThreadingChatServer(ChatServerCore):
    """A chat room served by a thread per connection (``ChatServer`` is this one)."""

    engine = "threading"

    def _serve(self, listener: socket.socket) -> None:
        listener.settimeout(limits.TICK)
        self._links: dict[Session, _Link] = {}
        self._links_lock = threading.Lock()
        self._dirty: dict[Session, None] = {}  # queued to, waiting for the thread that sends
        self._dirty_lock = threading.Lock()
        self._sending = False  # a thread is sending for everyone (see engine_flush_all)
        self.hub.round = Round(owner=ANY_THREAD)  # sent by that thread, before the outboxes
        self._accept_thread = threading.Thread(target=self._accept_loop, name="labchat-accept", daemon=True)
        self._accept_thread.start()

    def _stop_accepting(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._accept_thread is not threading.current_thread():
            self._accept_thread.join()

    def _stop_serving(self) -> None:
        with self._links_lock:
            links = list(self._links.values())
        for link in links:
            for thread in (link.reader, link.writer):
                if thread is not None and thread is not threading.current_thread():
                    thread.join()

    # -- accepting ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        while not self._closing.is_set():
            try:
                sock, address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closing.is_set():
                    return
                self._closing.wait(0.05)  # out of file descriptors, say: breathe, then go on
                continue
            session = self.admit(sock, address)
            if session is None:
                continue
            link = _Link(sock)
            session.sock = sock
            session.link = link
            with self._links_lock:
                self._links[session] = link
            name = f"labchat-reader-{session.number}"
            link.reader = threading.Thread(
                target=self._read_loop, args=(session, link), name=name, daemon=True
            )
            link.reader.start()

    def joined(self, session: Session) -> None:
        threading.current_thread().name = f"labchat-reader-{session.nick}"

    # -- reading (the connection's own thread) --------------------------------------------------

    def _read_loop(self, session: Session, link: _Link) -> None:
        sock = link.sock
        wait = _waiter(sock, select.POLLIN if hasattr(select, "poll") else 0)
        clock = self.clock
        hub = self.hub
        try:
            session.start()
            while not session.leaving:
                now = clock()
                if session.paused_until:  # lines are waiting: take them when the pause is over
                    link.wake.wait(max(0.0, session.paused_until - now))
                    session.paused_until = 0.0
                    with hub.flushing_later():
                        session.process()
                    continue
                timeout = None if session.joined else max(0.0, session.deadline - now)
                if not wait(timeout):
                    why = session.overdue(clock())
                    if why:
                        session.on_overdue(why)
                    continue
                if session.receive_from(sock.recv):
                    with hub.flushing_later():  # one send per reader for all this recv brought
                        session.process()
            session.drained.wait(max(0.0, session.linger_until - clock()))
        finally:
            self._hang_up(session, link)
            writer = link.writer
            if writer is not None:
                with link.writable:
                    link.writable.notify()
                writer.join()
            sock.close()
            with self._links_lock:
                self._links.pop(session, None)
            self.forget(session)

    # -- writing ----------------------------------------------------------------------------------

    def engine_flush_all(self, sessions: list[Session]) -> None:
        """Send to these sessions, or leave them to the thread that is sending already.

        One thread at a time sends for everyone: the first with something to send
        goes on until nothing is left, taking what other threads queue meanwhile. In a
        busy room fifty readers would otherwise each send to fifty sockets, handing the
        GIL to one another at every ``send``; a reader alone with a flood sends as before.
        """
        lock = self._dirty_lock
        with lock:
            dirty = self._dirty
            for session in sessions:
                dirty[session] = None
            if self._sending:
                return
            self._sending = True
        hub = self.hub
        try:
            while True:
                with lock:
                    if not self._dirty and not hub.round:
                        self._sending = False
                        return
                    dirty, self._dirty = self._dirty, {}
                # The round after the outboxes were taken, and sent before them: bytes put in an
                # outbox after a reader was named in the round are in ``dirty`` or come later.
                for readers, blob, count, gen in hub.take_round():
                    self._send_round(readers, blob, count, gen)
                for session in dirty:
                    try:
                        self._send_now(session)
                    except Exception:  # one session's bug must not stop the sending for all
                        log.exception("%s: unexpected error while sending", session.who)
                        self.engine_abort(session)
        except BaseException:
            with lock:
                self._sending = False
            raise

    def _send_round(self, readers: list[Session], blob: bytes, count: int, gen: int) -> None:
        for session, done in send_round(readers, blob, count, gen, _sock_of, self.clock()):
            if done is None:
                self.engine_abort(session)
            elif not done:
                self._hand_to_writer(session, self._link(session))

    def _send_now(self, session: Session) -> None:
        link = self._link(session)
        if link is None:
            return
        done = session.write(link.sock.send)
        if done is None:
            self.engine_abort(session)
        elif not done and session.backlogged:
            self._hand_to_writer(session, link)

    def _hand_to_writer(self, session: Session, link: _Link) -> None:
        with link.writable:
            if link.writer is None and not session.ended:
                link.writer = threading.Thread(
                    target=self._write_loop,
                    args=(session, link),
                    name=f"labchat-writer-{session.nick or session.number}",
                    daemon=True,
                )
                link.writer.start()
            link.writable.notify()

    def _write_loop(self, session: Session, link: _Link) -> None:
        wait = _waiter(link.sock, select.POLLOUT if hasattr(select, "poll") else 1)
        while True:
            with link.writable:
                while not session.backlogged and not link.wake.is_set():
                    link.writable.wait()
            if link.wake.is_set():
                return
            rest = session.rest_until - self.clock()
            if rest > 0:  # a chopped piece went: the next after a rest
                link.wake.wait(rest)
            if wait(limits.TICK):
                done = session.write(link.sock.send)
                if done is None:
                    self.engine_abort(session)
                    return
            else:
                why = session.overdue(self.clock())
                if why in ("stalled", "linger"):
                    session.on_overdue(why)

    def engine_wake(self, session: Session) -> None:
        link = self._link(session)
        if link is None or link.reader is threading.current_thread():
            return
        link.wake.set()
        try:
            link.sock.shutdown(socket.SHUT_RD)  # its reader's wait ends; what is queued still goes out
        except OSError:
            pass

    def engine_abort(self, session: Session) -> None:
        link = self._link(session)
        if link is not None:
            self._hang_up(session, link)

    def _hang_up(self, session: Session, link: _Link) -> None:
        with session.lock:
            session.outbox.close()
        session.drained.set()
        link.wake.set()
        with link.writable:
            link.writable.notify()
        try:
            link.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader: it ends the session
        except OSError:
            pass

    def _link(self, session: Session) -> _Link | None:
        return getattr(session, "link", None)  # set once, before its reader starts


# A reader's socket, for ``send_round``: set before its reader thread starts, so every
# session named in a round has one. An ``attrgetter`` is a call in C, made once per
# reader per round of a busy room, where a method took two Python calls.
_sock_of = operator.attrgetter("sock")


def _waiter(sock: socket.socket, flag: int):
    """A function that waits up to ``timeout`` seconds (None: for ever) for ``sock`` to be ready."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, flag | select.POLLERR | select.POLLHUP)

        def wait(timeout: float | None) -> bool:
            return bool(poller.poll(None if timeout is None else timeout * 1000))

        return wait

    def wait_select(timeout: float | None) -> bool:  # Windows: no poll, and no limit on descriptors
        if flag:
            return bool(select.select([], [sock], [sock], timeout)[1])
        return bool(select.select([sock], [], [sock], timeout)[0])

    return wait_select
