"""One server's link to a room shared through Redis: the bus it publishes to, and what it reads back.

``Backplane`` is a ``Bus`` (``labchat/engine/bus.py``). The room decides on
this server; ``publish`` appends the deliveries to the room's log in Redis as
one entry (one Lua round trip, with the delivery lock held) and delivers
nothing itself. One thread, ``labchat-backplane``, reads the log from the last
entry it saw and hands every entry, in the log's order and numbered by it, to
this server's hub for the members here: so every client on every server sees
one order, the publishing server's own clients included. The same thread beats
a heartbeat, keeps this server's nicks from expiring, and announces the leaves
of a server that has stopped beating.

The rules it keeps. A newcomer receives broadcasts from its own welcome on, and
its backlog is what the log held before its join. Nothing a client sent is lost
silently: when Redis cannot be reached, what was published and not yet read
back is delivered here at once, and from then on this server's members hear
each other (``seq`` 0: outside the shared order) until Redis answers again;
then the log is read on from where it was left, and nothing is delivered twice.

The reading thread never dies of what it reads. Anyone who can write to Redis
can write to the room's keys; an entry or a key that is not what a labchat
server writes is skipped, said once in the server's log, and the room carries
on. A key of the wrong type that the room cannot do without keeps this server
apart (as if Redis were out of reach) until it is mended, said once, tried
again less and less often. And a server announces others dead only when its
own beats have been regular for a whole heartbeat's life: after Redis (or this
server) stalled, every heartbeat may have expired, and the others are given
that long to beat again.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..nicks import skeleton
from ..protocol import Event
from ..room import Delivery, Remote
from .address import BackplaneError, check_room, check_url, redact
from .entries import Entry, Item, Malformed, numbered, pack, unpack
from .mirror import Mirror
from .peers import UNAVAILABLE, SharedPeers

if TYPE_CHECKING:
    from ..engine.core import ChatServerCore
    from ..engine.fanout import Hub
    from .redis import Complaints, RedisLog

log = logging.getLogger("labchat.backplane")

# A server beats every BEAT seconds; one that has not beaten for TTL seconds is taken for dead
# and its members' leaves are announced, so a killed server's clients are seen to go in 3-4 s.
BEAT = 1.0
TTL = 3.0
# A nick's claim outlives its server by this much if nobody is left to announce it dead.
NICK_TTL = 15.0
# The longest the reading thread waits in Redis before it looks at the time again.
READ_WAIT = 0.25
# How often a server whose Redis is gone tries it again; when Redis answers but refuses the
# room (a key of the wrong type, say), each try waits twice as long, up to RETRY_MAX.
RETRY = 0.5
RETRY_MAX = 8.0
# A beat that comes more than this many BEAT intervals after the last one means this server
# could not reach Redis for a while (or Redis, or this server, stalled).
IRREGULAR = 1.5
# Entries read at start for the room's recent past (history and replay).
LOAD = 2000
# How many failed appends are remembered, in case Redis runs them after all (see _unsure).
UNSURE = 1000
# How long the one server announcing a dead server's leaves holds the job.
REAP_HOLD = 10.0

DOWN_TEXT = (
    "the other servers of this room cannot be reached: until they can, what is said here "
    "reaches only the people on this server"
)
UP_TEXT = "the other servers of this room are back: everyone hears you again"


class Backplane:
    """A room shared by every server given the same Redis URL and room name.

    ``ChatServer(backplane="redis://127.0.0.1:6379/0", room="class-a")`` makes one; pass a
    ``Backplane`` to tune it. ``insecure=True`` allows plain ``redis://`` to another machine.
    """

    def __init__(
        self,
        url: str,
        room: str = "main",
        *,
        insecure: bool = False,
        beat: float = BEAT,
        ttl: float = TTL,
        nick_ttl: float = NICK_TTL,
        timeout: float = 1.0,
    ) -> None:
        if not 0 < beat < ttl <= nick_ttl:
            raise ValueError("need 0 < beat < ttl <= nick_ttl")
        self.url = check_url(url, insecure=insecure)
        self.room = check_room(room)
        self.shown = redact(url)
        self.beat, self.ttl, self.nick_ttl, self.timeout = beat, ttl, nick_ttl, timeout
        self.sid = secrets.token_hex(6)  # this server, while it runs
        self.peers = SharedPeers(self)
        self.log: RedisLog | None = None
        self.down = False  # Redis is out of reach: members here hear only each other
        self._deliver: Callable[..., None] | None = None
        self._hub: Hub | None = None
        self._mirror = Mirror(history=20, replay=500)
        self._epoch = ""
        self._high = 0  # the highest seq this server has delivered
        self._last_id = "0-0"  # the last entry read from the log
        self._pending: dict[str, bytes] = {}  # published here, not read back yet: ID -> entry
        self._early: set[str] = set()  # delivered when Redis went away, before being read back
        # Appends that failed and were delivered here at once: a Redis that stalled past the
        # timeout may still run them when it wakes. Read back later, they are not delivered again.
        self._unsure: dict[bytes, None] = {}
        self._sessions: weakref.WeakValueDictionary[int, Hashable] = weakref.WeakValueDictionary()
        self._live: dict[Hashable, None] = {}  # members here who have had their welcome, in order
        self._published = 0  # entries this server published ...
        self._delivered = 0  # ... and of those, how many it has delivered
        self._progress = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._up_since = 0.0  # when this server last joined the room (started or came back)
        self._next_beat = 0.0
        self._beat_soon = False  # a beat between slices of a long batch failed: beat on return
        self._beat_ok = 0.0  # when the last beat came back
        self._steady_since = 0.0  # since when every beat came in time (none missed)
        self._retry = RETRY  # how long the thread waits before it tries Redis again
        self._refused = ""  # why the room could not be joined again, this time (said once)
        self._last_refusal = ""  # the last refusal that took this server out (said once)

    def __repr__(self) -> str:
        state = "down" if self.down else ("up" if self.log is not None else "not started")
        return f"<Backplane {self.shown} room {self.room!r}, {state}>"

    # -- the bus ------------------------------------------------------------------------------

    def attach(self, deliver: Callable[..., None]) -> None:
        self._deliver = deliver

    def publish(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            self._send(deliveries)

    def publish_join(self, member: Hashable, since: int | None, deliveries: list[Delivery]) -> None:
        """A join: the backlog the room put after the welcome is left out; the reading thread
        takes it from the log instead, at the join's place in the log."""
        you = (member,)
        kept = [
            d for d in deliveries if not (d.to == you and (d.event.history or d.event.code == "history-gap"))
        ]
        self._send(kept, join=(member.number, since), joiner=member)

    def settle(self, timeout: float) -> None:
        """Wait until what this server has published is delivered here (or ``timeout``)."""
        with self._progress:
            target = self._published
            self._progress.wait_for(lambda: self._delivered >= target or self.down, timeout)

    # -- life ---------------------------------------------------------------------------------

    def start(
        self, core: ChatServerCore, *, history: int, replay: int, replay_bytes: int | None = None
    ) -> None:
        """Reach Redis, read the room's recent past, join the room's servers, start reading."""
        from .redis import RedisLog

        if self._hub is not None:
            raise RuntimeError("a Backplane serves one server, once: make one for each")
        self._hub = core.hub
        self._mirror = Mirror(history=history, replay=replay, replay_bytes=replay_bytes)
        redis_log = RedisLog(self.url, self.room, self.sid, timeout=self.timeout)
        try:
            redis_log.ping()
            redis_log.check_version()
            redis_log.check_keys()
            self._epoch, _ = redis_log.epoch(secrets.token_hex(8), 0, pack(self.sid, []))
            for entry_id, data in redis_log.tail(LOAD):
                self._load(entry_id, data, redis_log.complain)
            self.peers.muted.update(redis_log.muted())
            redis_log.register(self.ttl)
        except BackplaneError:
            redis_log.close()
            self._hub = None
            raise
        self.log = redis_log
        self._up_since = self._beat_ok = self._steady_since = time.monotonic()
        self._next_beat = self._up_since + self.beat
        self._thread = threading.Thread(target=self._run, name="labchat-backplane", daemon=True)
        self._thread.start()
        log.info("room %r is shared through the backplane %s", self.room, self.shown)

    def stop(self) -> None:
        """Stop reading, leave the room's servers (this server's members have left), disconnect."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        redis_log, self.log = self.log, None
        if redis_log is None:
            return
        if not self.down:
            try:
                redis_log.leave()
            except BackplaneError:
                pass  # its heartbeat expires, and the others tidy up
        redis_log.close()

    def _load(self, entry_id: str, data: bytes | None, complain: Complaints) -> None:
        """One entry of the room's recent past, read at start (the oldest first)."""
        entry = self._decode(entry_id, data, complain)
        if entry is None:
            self._last_id = entry_id
            return
        if not self._high:  # nothing numbered loaded yet: nothing before this entry is held
            self._mirror.missed(entry.last - numbered(list(entry.items)) + 1)
        self._mirror.add(entry)
        self._last_id, self._high = entry.id, max(self._high, entry.last)

    def _decode(
        self, entry_id: str, data: bytes | None, complain: Complaints, tick: Callable[[], None] | None = None
    ) -> Entry | None:
        """An entry read from the log, or None (said once) if it is not one."""
        if data is None:
            why = "it has no field 'e'"
        else:
            try:
                return unpack(data, entry_id, tick=tick)
            except Malformed as exc:
                why = str(exc)
        complain("entry", entry_id, f"entry {entry_id} of the room's log cannot be read ({why}); skipped")
        return None

    # -- publishing (the delivery lock is held) -----------------------------------------------

    def _send(
        self,
        deliveries: list[Delivery],
        *,
        join: tuple[int, int | None] | None = None,
        joiner: Hashable | None = None,
        skip: str | None = None,
    ) -> None:
        redis_log = self.log
        if self.down or redis_log is None:
            self._locally(deliveries, join, joiner)
            return
        items = self._items(deliveries)
        payload = pack(self.sid, items, join=join, skip=skip)
        try:
            entry_id = redis_log.append(self._epoch, self._high, numbered(items), payload)
        except BackplaneError as exc:
            self._unsure[payload] = None
            while len(self._unsure) > UNSURE:
                del self._unsure[next(iter(self._unsure))]
            self.fail(exc)
            self._locally(deliveries, join, joiner)
            return
        self._pending[entry_id] = payload
        self._published += 1

    def _items(self, deliveries: list[Delivery]) -> list[Item]:
        kept: set[int] | None = None
        items = []
        for d in deliveries:
            keep = False
            if d.to is None and d.event.kind in ("message", "action", "bot"):
                if kept is None:  # what the room keeps for newcomers, by identity
                    kept = {id(e) for e in self._hub.room.history()}
                keep = id(d.event) in kept
            items.append(Item(d.event, self._refs(d.to), keep))
        return items

    def _refs(self, to: tuple[Hashable, ...] | None) -> tuple[int | str, ...] | None:
        if to is None:
            return None
        refs: list[int | str] = []
        for member in to:
            if isinstance(member, Remote):
                refs.append(member.nick)
            else:
                self._sessions[member.number] = member
                refs.append(member.number)
        return tuple(refs)

    def _locally(
        self, deliveries: list[Delivery], join: tuple[int, int | None] | None, joiner: Hashable | None
    ) -> None:
        """Deliver here alone, outside the shared order (seq 0); a sender is told who was not reached."""
        out = []
        for d in deliveries:
            event = replace(d.event, seq=0) if d.event.seq else d.event
            if d.to is None:
                out.append(Delivery(event))
                continue
            here = tuple(m for m in d.to if not isinstance(m, Remote))
            away = [m.nick for m in d.to if isinstance(m, Remote)]
            if not here:
                continue
            out.append(Delivery(event, here))
            if away:
                text = f"not delivered to {', '.join(away)}: {UNAVAILABLE}"
                out.append(Delivery(_notice("error", "unavailable", text), here))
            if join is not None and event.kind == "welcome" and here == (joiner,):
                out += [Delivery(e, here) for e in self._mirror.backlog(join[1])]
        self._hand(out)

    # -- delivering (the delivery lock is held) -----------------------------------------------

    def _take(self, entry: Entry, mutes: dict[str, bool]) -> None:
        """One entry read from the log, in the log's order."""
        first = entry.last - numbered(list(entry.items)) + 1
        if self._high and first > self._high + 1:
            self._mirror.missed(first)  # trimmed before this server read it, or lost with Redis
        self._last_id = entry.id
        mine = entry.origin == self.sid
        if mine and self._pending.pop(entry.id, None) is not None:
            self._delivered += 1
        self._high = max(self._high, entry.last)  # (numbered, even if delivered here already)
        if entry.id in self._early:
            self._early.discard(entry.id)
            return
        if entry.skip == self.sid:
            return
        out = self._resolve(entry, mine)
        self._mirror.add(entry)
        for item in entry.items:
            event = item.event
            if item.to is None and event.kind == "system" and event.code in ("mute", "unmute"):
                key = skeleton(event.sender)
                muted = event.code == "mute"
                (self.peers.muted.add if muted else self.peers.muted.discard)(key)
                if mine:
                    mutes[key] = muted
        self._hand(out)

    def _resolve(self, entry: Entry, mine: bool) -> list[Delivery]:
        """The entry's deliveries for the members here; a join's backlog after its welcome."""
        out = []
        called: dict[str, Hashable | None] = {}  # nick -> member here, for this entry
        recording = self._hub.transcript is not None
        for item in entry.items:
            if item.to is None:
                out.append(Delivery(item.event))
                continue
            found = []
            for ref in item.to:
                if isinstance(ref, int):
                    member = self._sessions.get(ref) if mine else None
                elif mine:
                    member = None
                elif ref in called:
                    member = called[ref]
                else:
                    member = called[ref] = self._member_called(ref)
                if member is not None:
                    found.append(member)
            if not found:  # nobody here; but a big room's joins and leaves, sent to one or
                if recording and item.event.kind in ("join", "leave"):  # none, are on every record
                    out.append(Delivery(item.event, ()))
                    if len(out) % 1024 == 0:  # (a long entry: beat while it is resolved)
                        self._beat_if_due()
                continue
            out.append(Delivery(item.event, tuple(found)))
            join = entry.join
            if mine and join is not None and item.event.kind == "welcome" and found[0].number == join[0]:
                out += [Delivery(e, (found[0],)) for e in self._mirror.backlog(join[1])]
        return out

    def _member_called(self, nick: str) -> Hashable | None:
        room = self._hub.room
        key = skeleton(nick)
        for member in room.members():
            name = room.nick_of(member)
            if name is not None and skeleton(name) == key:
                return member
        return None

    def _hand(self, deliveries: list[Delivery]) -> None:
        """To the hub, a run at a time: a welcome starts a member's broadcasts, a goodbye or a
        removal ends them (a member removed by an operator elsewhere leaves the room here too)."""
        run: list[Delivery] = []
        for d in deliveries:
            run.append(d)
            event = d.event
            if d.to is None:
                continue
            if event.kind == "welcome":
                joining = True
            elif (event.kind, event.code) in (("system", "goodbye"), ("error", "kicked")):
                joining = False
            else:
                continue
            self._flush(run)
            run = []
            for member in d.to:
                if joining:
                    self._live[member] = None
                    continue
                self._live.pop(member, None)
                room = self._hub.room
                if event.code == "kicked" and room.nick_of(member) is not None:
                    room.leave(member)  # the room here lets them go; the others were told
        self._flush(run)

    def _flush(self, run: list[Delivery]) -> None:
        if not run:
            return
        gone = [m for m in self._live if m.leaving]
        for member in gone:
            del self._live[member]
        self._deliver(run, members=list(self._live))

    # -- when Redis goes away, and comes back -------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        """Redis is out of reach (the delivery lock is held): deliver what was in flight, say so.

        If Redis answered but refused (not ``Unreachable``) soon after this server came back,
        the next tries wait longer, and the same refusal is not said again."""
        from .redis import Unreachable

        if self.down or self.log is None:
            return
        self.down = True
        refused = not isinstance(exc, Unreachable)
        if refused and time.monotonic() - self._up_since < RETRY_MAX * 2:
            self._retry = min(self._retry * 2, RETRY_MAX)
        else:
            self._retry = RETRY
        if not refused or str(exc) != self._last_refusal:
            log.warning("%s; until it answers, this server's members hear only each other", exc)
        if refused:
            self._last_refusal = str(exc)
        pending, self._pending = self._pending, {}
        for entry_id, payload in pending.items():
            self._early.add(entry_id)
            self._delivered += 1
            entry = unpack(payload, entry_id)
            self._high = max(self._high, entry.last)
            out = self._resolve(entry, True)
            self._mirror.add(entry)
            self._hand(out)
        self._hand([Delivery(_notice("system", "backplane-down", DOWN_TEXT))])
        with self._progress:
            self._progress.notify_all()

    def _try_again(self) -> None:
        try:
            self.log.ping()
        except BackplaneError:
            return
        try:
            with self._hub.delivering():
                to_end = self._rejoin()
        except BackplaneError as exc:
            if str(exc) != self._refused:  # said once; tried again less and less often
                log.warning("the backplane answers but the room cannot be joined yet: %s", exc)
                self._refused = str(exc)
            self._retry = min(self._retry * 2, RETRY_MAX)
            return
        for member, reason in to_end:
            member.end(reason, fault=True)

    def _rejoin(self) -> list[tuple[Hashable, str]]:
        """Back in the room (the delivery lock is held): epoch, registration, nicks, mutes.

        After Redis lost its data the nicks are taken again quietly (nobody saw anyone leave);
        after the others took this server for dead, its members' joins are announced again.
        A member whose nick someone else took meanwhile is told so and let go.
        """
        from .redis import MAXLEN

        redis_log = self.log
        redis_log.check_keys()
        floor = self._high + MAXLEN if self._high else 0
        epoch, _ = redis_log.epoch(secrets.token_hex(8), floor, pack(self.sid, []))
        wiped = epoch != self._epoch
        if wiped:
            self._early.clear()  # what was delivered early is gone with the old log: it never comes back
            self._unsure.clear()  # (and an append delayed past the timeout finds another epoch)
        registered = redis_log.beat(self.ttl, self.nick_ttl, [])
        if not registered:
            redis_log.register(self.ttl)
        self._epoch = epoch
        room = self._hub.room
        here: dict[str, tuple[Hashable, str]] = {}
        for member in room.members():
            nick = room.nick_of(member)
            if nick is not None:
                here[skeleton(nick)] = (member, nick)
        lost = [
            (member, nick)
            for key, (member, nick) in here.items()
            if redis_log.claim(key, nick, self.nick_ttl)
        ]
        for key in set(redis_log.members()) - set(here):
            redis_log.release(key)
        theirs, ours = redis_log.muted(), set(self.peers.muted)
        self.peers.muted.update(theirs)
        if ours - theirs:
            redis_log.set_muted(ours - theirs, set())
        was_down, self.down = self.down, False
        self._up_since = self._beat_ok = self._steady_since = time.monotonic()
        self._next_beat = 0.0
        self._refused = ""
        if was_down:
            log.warning("the backplane %s answers again: this server is back in the shared room", self.shown)
            self._hand([Delivery(_notice("system", "backplane-up", UP_TEXT))])
        to_end = []
        for member, nick in lost:
            text = (
                f"while this server was cut off, someone else took the nick {nick!r}; join again with another"
            )
            self._hand([Delivery(_notice("error", "nick-taken", text), (member,))])
            self._live.pop(member, None)
            room.leave(member)
            to_end.append((member, f"nick {nick!r} taken elsewhere while cut off"))
        if not registered and not wiped:
            log.warning("the other servers took this one for dead: its members join the room again")
            lost_members = {member for member, _ in lost}
            now = round(time.time(), 3)
            joins = [
                Delivery(Event(kind="join", sender=nick, seq=1, time=now))
                for member, nick in here.values()
                if member not in lost_members
            ]
            if joins:
                self._send(joins, skip=self.sid)
        return to_end

    # -- the reading thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # nothing read from Redis may end this thread
                self.log.complain(
                    "thread",
                    f"{type(exc).__name__}: {exc}",
                    f"the backplane's reading thread met {type(exc).__name__}: {exc}; it carries on",
                    exc_info=True,
                )
                self._stop.wait(RETRY)

    def _step(self) -> None:
        """Once round the reading thread's loop: beat if it is time, read, deliver what was read."""
        if self.down:
            if not self._stop.wait(self._retry):
                self._try_again()
            return
        try:
            now = time.monotonic()
            if now >= self._next_beat or self._beat_soon:
                self._next_beat, self._beat_soon = now + self.beat, False
                self._beat_once()
                if self.down:
                    return
            wait = max(0.01, min(READ_WAIT, self._next_beat - time.monotonic()))
            found = self.log.read(self._last_id, block=wait)
        except BackplaneError as exc:
            with self._hub.delivering():
                self.fail(exc)
            return
        if found:
            self._take_all(found)

    def _take_all(self, found: list[tuple[str, bytes | None]]) -> None:
        complain = self.log.complain
        entries = []
        for entry_id, data in found:  # decoded with no lock held, beating if a long batch takes long
            self._beat_if_due()
            if self._unsure and data in self._unsure:  # an append that timed out, run after all:
                del self._unsure[data]  # its lines were delivered here when it failed
                self._early.add(entry_id)
            entries.append((entry_id, self._decode(entry_id, data, complain, self._beat_if_due)))
        mutes: dict[str, bool] = {}
        with self._hub.delivering():
            for entry_id, entry in entries:
                self._beat_if_due()
                if entry is None:
                    self._last_id = entry_id
                    continue
                try:
                    self._take(entry, mutes)
                except Exception as exc:  # one entry must not stop the room
                    self._last_id = entry_id
                    why = f"{type(exc).__name__}: {exc}"
                    complain(
                        "entry", entry_id, f"entry {entry_id} of the room's log was not delivered ({why})"
                    )
        with self._progress:
            self._progress.notify_all()
        if mutes:
            muted = {k for k, v in mutes.items() if v}
            try:
                self.log.set_muted(muted, set(mutes) - muted)
            except BackplaneError as exc:
                self._refusal_or_fail(exc, "mutes", "the room's mutes could not be recorded")

    def _refusal_or_fail(self, exc: BackplaneError, kind: str, what: str) -> None:
        """Redis out of reach: ``fail``. Redis refused one step the room can do without: said once."""
        from .redis import Unreachable

        if isinstance(exc, Unreachable):
            with self._hub.delivering():
                self.fail(exc)
        else:
            self.log.complain(kind, str(exc), f"{what}: {exc}")

    def _beat(self) -> bool:
        """One heartbeat, this server's nicks kept; False if the others took it for dead."""
        keys = [skeleton(nick) for nick in self._hub.room.nicks()]
        registered = self.log.beat(self.ttl, self.nick_ttl, keys)
        done = time.monotonic()
        if done - self._beat_ok > self.beat * IRREGULAR:
            self._steady_since = done  # a beat was missed: regular again from now on
        self._beat_ok = done
        return registered

    def _beat_if_due(self) -> None:
        """While a long batch is decoded and delivered: beat if it is time (no more; the loop
        does the rest at its next beat), so the others do not take this server for dead."""
        now = time.monotonic()
        if now < self._next_beat or self.down:
            return
        self._next_beat = now + self.beat
        try:
            registered = self._beat()
        except BackplaneError:
            registered = False
        self._beat_soon = not registered  # the loop's next beat finds out why, and acts on it

    def _beat_once(self) -> None:
        if not self._beat():
            with self._hub.delivering():
                to_end = self._rejoin()
            for member, reason in to_end:
                member.end(reason, fault=True)
            return
        if self._beat_ok - self._steady_since < self.ttl:
            # Just (re)joined, or beats were missed: Redis may have stalled, and every heartbeat
            # expired meanwhile. The others get a whole heartbeat's life to beat again.
            return
        for sid in self.log.dead():
            try:
                self._reap(sid)
            except BackplaneError as exc:
                self._refusal_or_fail(
                    exc, "reap", f"the members of server {sid!r} could not be announced gone"
                )
                if self.down:
                    return

    def _reap(self, sid: str) -> None:
        """Announce the leaves of a server that stopped beating (one server does, under a lock)."""
        rows = self.log.reap_take(sid, REAP_HOLD)
        if rows is None:
            return
        now = round(time.time(), 3)
        text = "their server stopped answering"
        items = [
            Item(Event(kind="leave", sender=nick, text=text, seq=1, time=now), None) for _, _, nick in rows
        ]
        payload = pack(self.sid, items, skip=sid)
        with self._hub.delivering():
            entry_id = self.log.reap_finish(
                sid, self._epoch, self._high, len(items), payload, [key for _, key, _ in rows]
            )
            self._pending[entry_id] = payload
            self._published += 1
        names = ", ".join(nick for _, _, nick in rows) or "nobody"
        log.warning("a server of room %r stopped answering; announced gone: %s", self.room, names)


def _notice(kind: str, code: str, text: str) -> Event:
    return Event(kind=kind, code=code, text=text, time=round(time.time(), 3))
