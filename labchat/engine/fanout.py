"""Fan-out: the room decides, the bus carries, each recipient's outbox takes the bytes.

The ``Hub`` holds the delivery lock. Under it a request goes to the room, the
room's deliveries go through the bus (in-process by default; see
``docs/backplane.md``) and come back to ``deliver``, which encodes each event
once per mode and queues it for every recipient in the room's order. No socket
call and no disk write happens under the lock: the transcript's lines, the
sessions to flush and the ones to cut off are collected, and acted on in that
order once it is let go. The hub also knows which readers are behind (over the soft outbox
mark while still reading), so a sender can be held back until they catch up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..conversation import Invalid, render
from ..protocol import Event, Hello, encode_all, is_farewell
from ..room import Delivery, Room, RoomError
from . import limits
from .bus import Bus, LocalBus
from .faults import Delayer, Faults
from .rounds import ANY_THREAD, Round
from .session import Refusal, Session

if TYPE_CHECKING:
    from .record import Transcript

log = logging.getLogger("labchat.server")


class Hub:
    """The room's delivery path for one server; every method is thread-safe."""

    def __init__(
        self,
        room: Room,
        *,
        max_clients: int,
        max_per_host: int | None = None,
        soft_outbox: int,
        clock: Callable[[], float],
        flush: Callable[[list[Session]], None],
        bus: Bus | None = None,
        transcript: Transcript | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.room = room
        self.max_clients = max_clients
        self.max_per_host = max_per_host
        self._per_host: dict[str, int] = {}  # members from each address, kept with max_per_host
        self.soft_outbox = soft_outbox
        self.clock = clock
        self.transcript = transcript
        self.closing = False
        self._flush = flush  # sends to these sessions, each once, in order
        self.lock = threading.Lock()
        self._to_flush: list[Session] = []
        self._to_cut: list[Session] = []
        self._to_end: list[tuple[Session, str]] = []  # removed by an operator
        self._delayer = None
        if faults is not None and faults.delay:
            self._delayer = Delayer(faults.delay, clock, self._release)
        self._behind: set[Session] = set()
        self._puts = 0  # how many times an outbox was put to (a round's ``again`` compares it)
        self.round: Round | None = None  # an engine that sends in rounds sets it (rounds.py)
        self._later = threading.local()  # .sessions, .depth: this thread's sends held back (flushing_later)
        self._holding = False  # whether any thread ever held sends back (the selector never does)
        self._delivering = _Delivering(self)
        self._flushing_later = _FlushingLater(self)
        self.bus = bus or LocalBus()
        self.bus.attach(self.deliver)

    def delivering(self) -> _Delivering:
        """Hold the delivery lock to decide and queue; once it is let go, send and cut."""
        return self._delivering

    def take_round(self) -> list[tuple[list[Session], bytes, int, int]]:
        """The round's broadcasts for the engine to send (``rounds.send_round``), or [].

        (The selector engine takes its own round directly: only its thread adds to it.)"""
        with self.lock:
            round = self.round
            return round.take() if round is not None and round.blobs else []

    def _let_go(self) -> None:
        """The end of ``delivering``: release the lock, then write, send and cut, in that order."""
        # A list is swapped for a new one only if something is in it (most lines cut nobody);
        # an empty one is left to the next holder of the lock, and nothing is read from it here.
        to_flush, to_cut, to_end = self._to_flush, self._to_cut, self._to_end
        if to_flush:
            self._to_flush = []
        if to_cut:
            self._to_cut = []
        if to_end:
            self._to_end = []
        to_flush, to_cut, to_end = to_flush or (), to_cut or (), to_end or ()
        self.lock.release()
        if self.transcript is not None:
            self.transcript.write()  # on disk before anyone is sent it
        held = getattr(self._later, "sessions", None) if self._holding else None
        if held is not None:
            held.update(dict.fromkeys(to_flush))
        elif to_flush:
            self._flush(to_flush)
        else:  # a round any thread adds to is sent by the engine's flush, even with no outbox
            round = self.round  # (one thread's own round is sent at the end of its turn)
            if round is not None and round.blobs and round.owner == ANY_THREAD:
                self._flush([])
        for session in to_cut:
            session.cut(f"too slow: over {session.core.outbox_limit} bytes waiting to be read")
        for session, reason in to_end:  # an operator's own act: logged as news, not as a warning
            session.end(reason)

    def flushing_later(self) -> _FlushingLater:
        """Within the block, what this thread queues is sent when the block ends, one send per
        session however many deliveries it got (cut-offs still happen at once). A reader
        that handles a whole ``recv`` of lines inside one pays for N sends, not N a batch."""
        return self._flushing_later

    # -- requests from sessions --------------------------------------------------------------

    def send(self, session: Session, data: bytes, *, raw: bool = False) -> None:
        """Bytes for one session alone (its banner, a refusal), in order with the room's."""
        with self.delivering():
            self._put(session, data, raw)

    def tell(self, session: Session, event: Event) -> None:
        """One event for one session, in order with the room's events."""
        with self.delivering():
            self._put(session, render(event, session.mode))

    def join(self, session: Session, hello: Hello, *, operator: bool = False) -> None:
        with self.delivering():
            if self.closing:
                raise Refusal("closing", "the server is shutting down")
            if self.room.size >= self.max_clients:
                raise Refusal(
                    "server-full", f"the room is full (at most {self.max_clients} at once); try again later"
                )
            here = self._per_host.get(session.host, 0)
            if self.max_per_host is not None and here >= self.max_per_host:
                raise Refusal(
                    "host-full",
                    f"{here} from your address are in the room already (at most {self.max_per_host}"
                    " from one address); ask the person running the room",
                )
            try:
                deliveries = self.room.join(session, hello.nick, since=hello.since, operator=operator)
            except RoomError as exc:
                raise Refusal(exc.code, str(exc)) from None
            session.nick = self.room.nick_of(session)
            session.joined = True  # from here on it is a member: never evicted as a stranger
            if self.max_per_host is not None:
                self._per_host[session.host] = here + 1
            session.straight = session.tls is None and session.mode == "json" and not session.core.faults.chop
            session.core.forget_pending(session)
            self.bus.publish_join(session, hello.since, deliveries)

    def say(self, session: Session, items: list[str | Invalid]) -> bool:
        """A sender's lines, in order, errors in their places; True if it asked to leave."""
        leaving = self._say(session, items)
        if leaving:  # its goodbye is queued before its connection starts closing
            self.bus.settle(limits.LINGER)
        return leaving

    def _say(self, session: Session, items: list[str | Invalid]) -> bool:
        room = self.room
        with self.delivering():
            pending: list[Delivery] = []
            start, count = 0, len(items)
            while start < count:
                end = start
                while end < count and type(items[end]) is str:
                    end += 1
                if end > start:  # a run of lines: the room takes the plain messages at once
                    deliveries, taken = room.say_many(session, items[start:end])
                    pending += deliveries
                    start += taken
                    if start == count:
                        break
                item = items[start]
                start += 1
                if type(item) is not str:  # an Invalid: its error in its place
                    log.info("%s: %s", session.who, item.text)
                    error = Event(kind="error", code=item.code, text=item.text, time=round(time.time(), 3))
                    pending.append(Delivery(error, (session,)))
                    continue
                if is_farewell(item):  # what it said before leaving goes to the room it was in
                    self.bus.publish(pending)
                    pending = []
                outcome = room.say(session, item)
                if outcome.leaving:
                    self.bus.publish(pending)
                    self.bus.publish(outcome.deliveries)
                    return True
                deliveries = outcome.deliveries
                pending += deliveries
                if item.lstrip()[:1] == "/":  # a command: mutes are logged, /nick renames
                    self._moderated(outcome, session.nick)
                    session.nick = room.nick_of(session) or session.nick
            self.bus.publish(pending)
            return False

    def moderate(self, action: str, nick: str, reason: str, by: str) -> None:
        """kick, mute or unmute by nick (from Python); LookupError if nobody has that nick."""
        with self.delivering():
            try:
                outcome = self.room.moderate(action, nick, reason, by)
            except RoomError as exc:
                raise LookupError(str(exc)) from None
            self.bus.publish(outcome.deliveries)
            self._moderated(outcome, by)

    def _moderated(self, outcome, by: str | None) -> None:
        """Log a mute (lock held). Those removed are ended as they are told (``_queue_all``)."""
        for d in outcome.deliveries:
            event = d.event
            if event.kind == "system" and event.code in ("mute", "unmute"):
                log.info("%s", event.text)

    def leave(self, session: Session, reason: str) -> None:
        """A session is ending (called once for each): a member leaves the room, and its seat
        is free at once, though its socket may linger a while to let its last bytes out."""
        with self.delivering():
            if session.joined and self.max_per_host is not None:
                left = self._per_host[session.host] - 1
                if left:
                    self._per_host[session.host] = left
                else:
                    del self._per_host[session.host]
            self.bus.publish(self.room.leave(session, reason))

    def broadcast(self, event: Event, sessions: list[Session]) -> None:
        """One notice to these sessions (the server closing, say), in order with the rest."""
        with self.delivering():
            for session in sessions:
                self._put(session, render(event, session.mode))

    # -- flow control ----------------------------------------------------------------------

    def congested(self) -> bool:
        """Whether a reader that is still reading is over the soft mark (senders then wait)."""
        if not self._behind:
            return False
        with self.lock:
            now = self.clock()
            for session in list(self._behind):
                outbox = session.outbox
                if (
                    outbox.size <= self.soft_outbox // 2
                    or session.leaving
                    or outbox.stalled(now) > limits.STALL_GRACE
                ):
                    self._behind.discard(session)
            return bool(self._behind)

    def after_held(self, then: Callable[[], None]) -> bool:
        """If the delay fault holds deliveries back, call ``then`` once all it holds now are
        queued, and say True; else False (nothing is held: nothing to wait for)."""
        return self._delayer is not None and self._delayer.after(then)

    # -- delivery (the lock is held) ----------------------------------------------------------

    def stop_faults(self) -> None:
        if self._delayer is not None:
            self._delayer.stop()

    def _release(self, held: list[tuple[list[Delivery], list[Session]]]) -> None:
        """Deliveries held back by the delay fault, now due."""
        with self.delivering():
            for deliveries, members in held:
                self._queue_all(deliveries, members)

    def deliver(self, deliveries: list[Delivery], members: Sequence[Session] | None = None) -> None:
        """Queue each event for its recipients in order: what the bus hands back (lock held).

        A delivery to everyone reaches ``members``: by default everyone who joined here.
        """
        if not deliveries:
            return
        if self.transcript is not None:
            self.transcript.record(deliveries)
        if members is None:
            members = self.room.members()
        if self._delayer is not None:
            self._delayer.hold((deliveries, members))
            return
        self._queue_all(deliveries, members)

    def _queue_all(self, deliveries: list[Delivery], members: Sequence[Session]) -> None:
        if len(deliveries) == 1:  # a line a round, in a busy room
            broadcast = deliveries[0].to is None
        else:
            broadcast = all(d.to is None for d in deliveries)
        ahead = self.round  # the engine's round: broadcasts made on its owner thread (or on any)
        if ahead is not None and not (broadcast and ahead.owner in (ANY_THREAD, threading.get_ident())):
            ahead = None
        if broadcast:
            count = len(deliveries)
            straight: list[Session] = []  # for the round: empty outboxes, sent to at its end
            blob = b""
            if ahead is not None:
                straight = ahead.again(members, self._puts)
                if straight is None:
                    gen = ahead.gen
                    straight = [s for s in members if s.straight and not s.outbox.size]
                    for session in straight:
                        session.in_round = gen
                    if len(straight) == len(members):
                        ahead.remember(members, self._puts, straight)
                if straight:
                    blob = encode_all([d.event for d in deliveries])
                    ahead.add(blob, straight, count)
                if len(straight) == len(members):
                    return
            self._queue_rest(deliveries, members, set(straight), blob)
            return
        for d in deliveries:  # removed by an operator: the connection ends once they are told
            if d.to is not None and d.event.kind == "error" and d.event.code == "kicked":
                reason = d.event.text.removeprefix("you were ")
                self._to_end += [(member, reason) for member in d.to if isinstance(member, Session)]
        parts: dict[Session, list[bytes]] = {}
        cache: dict[tuple[int, str], bytes] = {}
        for d in deliveries:
            for session in members if d.to is None else d.to:
                key = (id(d.event), session.mode)
                data = cache.get(key)
                if data is None:
                    data = cache[key] = render(d.event, session.mode)
                parts.setdefault(session, []).append(data)
        for session, chunks in parts.items():
            session.messages_out += len(chunks)
            self._put(session, b"".join(chunks))

    def _queue_rest(
        self, deliveries: list[Delivery], members: Sequence[Session], named: set[Session], blob: bytes
    ) -> None:
        """A broadcast for the members not named in the round: into their outboxes."""
        blobs = {"json": blob} if blob else {}
        count = len(deliveries)
        now = self.clock()  # one reading for all: this loop is as long as the room is big
        to_flush, soft = self._to_flush, self.soft_outbox
        self._puts += 1
        for session in members:
            if session in named:
                continue
            mode = session.conversation.mode
            data = blobs.get(mode)
            if data is None:
                if mode == "json":
                    data = encode_all([d.event for d in deliveries])
                else:
                    data = b"".join([render(d.event, mode) for d in deliveries])
                blobs[mode] = data
            session.messages_out += count
            verdict = session.put(data, now)  # what _put does, inline
            if verdict == "send":
                to_flush.append(session)
            elif verdict == "over":
                self._to_cut.append(session)
            if session.outbox.size > soft:
                self._behind.add(session)

    def _put(self, session: Session, data: bytes, raw: bool = False) -> None:
        self._puts += 1
        verdict = session.queue(data, raw=raw)
        if verdict == "send":
            self._to_flush.append(session)
        elif verdict == "over":
            self._to_cut.append(session)
        if session.outbox.size > self.soft_outbox:
            self._behind.add(session)


class _Delivering:
    """``Hub.delivering()``: one made per hub and used by every thread in turn (the lock it
    takes is what keeps them apart). A class, not a generator: it runs once per line."""

    __slots__ = ("hub",)

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def __enter__(self) -> None:
        self.hub.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.hub._let_go()


class _FlushingLater:
    """``Hub.flushing_later()``: one made per hub and used by every thread, each holding its
    own sends back in ``hub._later``. A class, not a generator: it runs once per ``recv``."""

    __slots__ = ("hub",)

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def __enter__(self) -> None:
        hub = self.hub
        later = hub._later
        if getattr(later, "sessions", None) is not None:  # already inside one: the outer one sends
            later.depth += 1
            return
        hub._holding = True
        later.sessions = {}
        later.depth = 0

    def __exit__(self, *exc: object) -> None:
        hub = self.hub
        later = hub._later
        if later.depth:
            later.depth -= 1
            return
        held = later.sessions
        later.sessions = None
        if held or hub.round:
            hub._flush(list(held))
