"""The chat room: who is here, commands, history and replay, as pure logic.

Nothing in this module touches a socket or starts a thread. The server calls
``join``, ``say`` and ``leave`` with an opaque ``member`` key (it uses the
connection object) and gets back ``Delivery`` values: which event goes to
whom. Every event is stamped here with the room's next sequence number and the
time, so the order the room decides is the order everyone sees. A lock guards
the state, so other threads may safely ask who is here.

Nicks follow the rules of ``nicks.py`` and are unique by their skeleton, kept in
a dictionary, so joining, renaming and ``/msg`` cost the same in a room of ten
as in a room of ten thousand. The public events of the recent past are kept
(boundedly) so that a client reconnecting with the last ``seq`` it saw catches up.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter
from typing import NamedTuple

from .bot import Greeter
from .nicks import MAX_NICK, RoomError, check_nick, skeleton
from .protocol import MAX_LINES, MAX_TEXT, QUIT_COMMANDS, Event
from .text import safe, trim

log = logging.getLogger("labchat.server")  # the server's log: a bot that misbehaves is reported there

__all__ = [
    "BIG_ROOM",
    "HELP",
    "MAX_NICK",
    "RESERVED",
    "Delivery",
    "Outcome",
    "Peers",
    "Remote",
    "Room",
    "RoomError",
    "check_nick",
    "is_reserved",
    "clean_text",
]

RESERVED = frozenset({"server", "system", "admin", "labchat", "you"})
_RESERVED_SKELETONS = frozenset(skeleton(nick) for nick in RESERVED)


def is_reserved(nick: str, bot: str | None = None) -> bool:
    """Whether ``nick`` is, or looks like, a name the room keeps for itself or for its ``bot``."""
    return _reserved(skeleton(nick), bot)


def _reserved(key: str, bot: str | None) -> bool:
    return key in _RESERVED_SKELETONS or (bot is not None and key == skeleton(bot))


# Past this many members a welcome gives the count, not the names, and comings and goings
# are not announced to everyone (nor greeted by the bot in public): a list of hundreds, or
# a "joined" line a second, helps nobody, and would make each join cost as much as the room
# is big. /who still lists everyone, and kicks are always announced.
BIG_ROOM = 50

HELP = (
    "/who                 who is here",
    "/nick NEW            change your nick",
    "/me ACTION           say what you are doing: * ada waves",
    "/msg NICK TEXT       a private message only NICK sees",
    "/help                this list",
    "bye or /quit         leave the chat",
)

# What an operator may do besides, shown to operators only by /help.
OPERATOR_HELP = (
    "/kick NICK [REASON]  remove someone from the room, saying why",
    "/mute NICK           their messages reach nobody until /unmute",
    "/unmute NICK         let them be heard again",
)


class Delivery(NamedTuple):
    """An event and who gets it: ``to`` lists member keys, or None for everyone.

    A named tuple, not a dataclass: the room makes one for every line, and a tuple is
    built in a third of the time."""

    event: Event
    to: tuple[Hashable, ...] | None = None


@dataclass
class Outcome:
    """What one request led to. ``leaving``: the member asked to go; ``removed``: members an
    operator removed (the server then ends their connections)."""

    deliveries: list[Delivery] = field(default_factory=list)
    leaving: bool = False
    removed: list[Hashable] = field(default_factory=list)


@dataclass(frozen=True)
class Remote:
    """A member of the room on another server, known here by nick (a ``Delivery`` may name one)."""

    nick: str


class Peers:
    """The room's members on other servers, as the room asks about them: by default there are none.

    A room shared by several servers (``labchat/backplane``) passes its own: ``claim`` takes a
    nick's skeleton for this server (None) or says who holds it elsewhere (their nick);
    ``release`` lets it go; ``roster`` lists everyone on every server (None: only those here);
    ``find`` names the member elsewhere who holds a skeleton; ``muted`` is the set of muted
    skeletons, shared by every server. Each may raise RoomError when the others cannot be asked.
    """

    def __init__(self) -> None:
        self.muted: set[str] = set()

    def claim(self, key: str, nick: str) -> str | None:
        return None

    def release(self, key: str) -> None:
        pass

    def roster(self) -> list[str] | None:
        return None

    def find(self, key: str) -> str | None:
        return None


def clean_text(text: str) -> str:
    """Chat text as the room keeps it: trimmed, controls neutralised, size checked.

    A message may hold several lines (a pasted snippet): blank lines around it
    go, each line keeps its indentation, and the inner blank lines stay. Every
    control character but the line breaks is made visible, line by line. Over
    MAX_TEXT characters or MAX_LINES lines it is refused (``text-too-long``).
    """
    if "\n" in text or "\r" in text or "\t" in text:
        text = safe(trim(text), multiline=True)
    else:  # one line, the usual case: what trim and safe do to it, in two steps
        text = text.strip()
        if not text.isprintable():  # isprintable() is twice as quick as safe()'s search
            text = safe(text)
    if len(text) > MAX_TEXT:
        raise RoomError(
            "text-too-long",
            f"message too long: {len(text)} characters, limit {MAX_TEXT}",
        )
    if (lines := text.count("\n") + 1) > MAX_LINES:
        raise RoomError("text-too-long", f"message too long: {lines} lines, limit {MAX_LINES}")
    return text


class Room:
    """One chat room. Thread-safe; every method returns what to deliver.

    ``history`` is how many messages, actions and bot lines a newcomer is shown;
    ``replay`` how many public events are kept for clients that come back with
    the last ``seq`` they saw, and ``replay_bytes`` about the most bytes of them
    one client is sent at once (``fit_replay``; None: no bound).
    """

    def __init__(
        self,
        *,
        history: int = 20,
        replay: int = 500,
        replay_bytes: int | None = None,
        bot: Greeter | None = None,
        clock: Callable[[], float] = time.time,
        peers: Peers | None = None,
    ) -> None:
        self.bot = bot
        self.peers = peers or Peers()
        self._clock = clock
        self._lock = threading.Lock()
        self._members: dict[Hashable, str] = {}  # key -> nick, in joining order
        # The members' keys as one tuple, made again only after a join or a leave: every line
        # is delivered to this list, and a busy room asks for it far more often than it changes.
        self._listed: tuple[Hashable, ...] | None = ()
        self._by_skeleton: dict[str, Hashable] = {}  # skeleton(nick) -> key
        self._history: deque[Event] = deque(maxlen=history)
        self._replay: deque[Event] = deque(maxlen=replay)
        # The seqs of public events pushed out of the replay buffer, the latest ones only,
        # and how many there were in all: enough to count what a late client missed.
        self._gone: deque[int] = deque(maxlen=max(replay, 1))
        self._gone_total = 0
        self._replay_bytes = replay_bytes
        self._seq = 0
        self._operators: set[Hashable] = set()  # members who may kick and mute
        self._muted = self.peers.muted  # skeletons of muted nicks: still muted if they come back

    # -- questions other threads may ask -------------------------------------------

    @property
    def seq(self) -> int:
        """The last sequence number given out (0 before the first event)."""
        with self._lock:
            return self._seq

    def nicks(self) -> list[str]:
        """Who is here, in the order they joined."""
        with self._lock:
            return list(self._members.values())

    @property
    def size(self) -> int:
        """How many are here (the bot not counted)."""
        return len(self._members)

    def members(self) -> tuple[Hashable, ...]:
        """Who is here, in the order they joined (a snapshot: later joins do not change it)."""
        listed = self._listed
        if listed is None:
            with self._lock:
                listed = self._listed = tuple(self._members)
        return listed

    def nick_of(self, member: Hashable) -> str | None:
        with self._lock:
            return self._members.get(member)

    def history(self) -> list[Event]:
        with self._lock:
            return list(self._history)

    # -- requests -------------------------------------------------------------------

    def join(
        self, member: Hashable, nick: str, since: int | None = None, *, operator: bool = False
    ) -> list[Delivery]:
        """Add a member; RoomError if the nick is invalid or taken.

        A newcomer is shown the last ``history`` messages. A client coming back
        passes ``since``, the last seq it saw, and is shown every public event
        after it that the room still holds, after a ``history-gap`` notice if
        some are no longer held; a ``since`` past anything this room numbered was
        another room's, and gets the newcomer's history. Either way replayed events
        are marked history.
        """
        nick = check_nick(nick)
        key = skeleton(nick)
        with self._lock:
            if member in self._members:
                raise RuntimeError("join() from a member who has already joined")
            self._check_free(nick, key)
            self._members[member] = nick
            self._listed = None
            self._by_skeleton[key] = member
            if operator:
                self._operators.add(member)
            if since is not None and since > self._seq:
                # This room never numbered that far: the client saw another room on this port (a
                # server since restarted), so it is shown this one's history, as a newcomer is.
                since = None
            you = (member,)
            out = [Delivery(self._welcome(nick), you)]
            if self._is_muted(nick):  # a mute stays with the nick: whoever takes it is told so
                text = f"the nick {nick} is muted by an operator: you are muted until one unmutes it"
                out.append(Delivery(self._event("system", code="muted", text=text), you))
            if since is None:
                shown, _ = fit_replay(self._history, self._replay_bytes)
                out += [Delivery(_replayed(e), you) for e in shown]
            else:
                out += [Delivery(e, you) for e in self._catch_up(since)]
            if len(self._members) > BIG_ROOM:  # only the newcomer sees its own arrival
                out.append(Delivery(self._event("join", sender=nick), you))
                if self.bot:
                    lines = self._ask_bot("on_join", nick)
                    out += [Delivery(self._event("bot", sender=self.bot.nick, text=t), you) for t in lines]
                return out
            out.append(self._broadcast("join", sender=nick))
            if self.bot:
                out += self._bot_says(self._ask_bot("on_join", nick), keep=False)
            return out

    def leave(self, member: Hashable, reason: str = "") -> list[Delivery]:
        """Remove a member (no-op if absent); everyone left is told."""
        with self._lock:
            big = len(self._members) > BIG_ROOM
            nick = self._remove(member)
            if nick is None:
                return []
            if big:  # nobody is told, but the room's record keeps who left (a delivery to no one)
                return [Delivery(self._event("leave", sender=nick, text=safe(reason)), ())]
            out = [self._broadcast("leave", sender=nick, text=safe(reason))]
            if self.bot:
                out += self._bot_says(self._ask_bot("on_leave", nick), keep=False)
            return out

    def moderate(self, action: str, nick: str, reason: str = "", by: str = "the server") -> Outcome:
        """``kick``, ``mute`` or ``unmute`` a member by nick, as an operator would; RoomError if absent."""
        with self._lock:
            if action == "kick":
                return self._kick(nick, reason, by)
            if action in ("mute", "unmute"):
                return self._set_muted(nick, action == "mute", by)
            raise ValueError(f"unknown moderation {action!r}")

    def is_operator(self, member: Hashable) -> bool:
        with self._lock:
            return member in self._operators

    def say(self, member: Hashable, text: str) -> Outcome:
        """A line from a member: a message, ``bye``, or a ``/command``."""
        with self._lock:
            nick = self._members.get(member)
            if nick is None:
                raise RuntimeError("say() from a member who has not joined")
            try:
                return self._say(member, nick, text)
            except RoomError as exc:
                return Outcome(
                    [
                        Delivery(
                            self._event("error", code=exc.code, text=str(exc)),
                            (member,),
                        )
                    ]
                )

    def say_many(self, member: Hashable, texts: list[str]) -> tuple[list[Delivery], int]:
        """``say`` for a run of lines, for as many of the first as are plain messages.

        Returns their deliveries and how many lines it took; the next line (a command,
        a goodbye, a message the room refuses) is then the caller's to pass to ``say``.
        What comes out is what ``say`` would give for each in turn, for a fraction of
        the cost: one lock, one clock reading, no ``Outcome`` a line.
        """
        out: list[Delivery] = []
        taken = 0
        with self._lock:
            nick = self._members.get(member)
            if nick is None:
                raise RuntimeError("say() from a member who has not joined")
            if self._muted and skeleton(nick) in self._muted:
                return out, 0  # each gets its error from say()
            stamp = _stamp(self._clock())
            bot, seq, checked, new = self.bot, self._seq, Event.checked, tuple.__new__
            made: list[Event] = []  # kept for replay and history at once, at the end
            try:
                for text in texts:
                    stripped = text.strip()
                    if stripped:
                        first = stripped[0]
                        if first == "/":
                            break
                        if first in "bB":  # see _say: the classic way out (only b and B lower to b)
                            tail = stripped.rstrip("!. ")
                            if len(tail) == 3 and tail.lower() == "bye":
                                break
                        if text.isprintable():  # one line, nothing to neutralise: clean_text is strip()
                            clean = stripped  # (line breaks, tabs and all safe() changes are unprintable)
                            if len(clean) > MAX_TEXT:
                                break
                        else:
                            try:
                                clean = clean_text(text)
                            except RoomError:
                                break
                        seq += 1
                        event = checked("message", seq, stamp, nick, clean)
                        made.append(event)
                        out.append(new(Delivery, (event, None)))  # Delivery(event), without its __new__
                        if bot:  # its answer is kept after the line it answers
                            self._seq = seq
                            self._keep(made, history=True)
                            made = []
                            out += self._bot_says(self._ask_bot("on_message", nick, clean))
                            seq = self._seq
                    taken += 1
            finally:
                self._seq = seq
                self._keep(made, history=True)
        return out, taken

    # -- inside the lock ------------------------------------------------------------

    def _welcome(self, nick: str) -> Event:
        everyone = self._everyone()
        count = len(everyone)
        users = tuple(everyone) if count <= BIG_ROOM else ()
        here = f"{count} here: {', '.join(users)}." if users else f"{count} here."
        bot = f" {self.bot.nick} (a bot) is here too." if self.bot else ""
        return self._event(
            "welcome",
            sender=nick,
            users=users,
            count=count,
            text=f"Welcome, {nick}! {here}{bot} Type /help for commands, bye to leave.",
        )

    def _catch_up(self, since: int) -> list[Event]:
        """What a client that last saw ``since`` missed: a gap notice if need be, then the events."""
        start = bisect_right(self._replay, since, key=lambda e: e.seq)
        held, left = fit_replay(self._replay, self._replay_bytes, start)
        missed, exact = self._missed(since)
        if not (missed or left):
            return [_replayed(e) for e in held]
        why = gap_reason(bool(missed), bool(left))
        many = missed + left
        many = f"{'' if exact else 'At least '}{many} earlier {'event was' if many == 1 else 'events were'}"
        gap = self._event("system", code="history-gap", text=f"{many} missed while you were away: {why}.")
        return [gap] + [_replayed(e) for e in held]

    def _missed(self, since: int) -> tuple[int, bool]:
        """How many public events after ``since`` have left the replay buffer, and whether exactly."""
        gone = self._gone
        if not gone or gone[-1] <= since:
            return 0, True
        if since >= gone[0] or len(gone) == self._gone_total:
            return len(gone) - bisect_right(gone, since), True
        # Older ones were forgotten too; of those, the ones after ``since`` number at least
        # all but ``since`` of them, and at most all of them or all seqs in between.
        older = self._gone_total - len(gone)
        least = len(gone) + max(0, older - since)
        most = len(gone) + min(older, gone[0] - 1 - since)
        return least, least == most

    def _say(self, member: Hashable, nick: str, text: str) -> Outcome:
        stripped = text.strip()
        if not stripped:
            return Outcome()
        if stripped[0] != "/":  # a message, or the classic way out (see is_farewell)
            tail = stripped.rstrip("!. ")
            if len(tail) == 3 and tail.lower() == "bye":
                return self._quit(member, nick, "")
            return self._message("message", nick, text)
        word, _, rest = stripped.partition(" ")
        if word.lower() in QUIT_COMMANDS:
            return self._quit(member, nick, rest)
        if stripped.startswith("//"):  # "//x" says "/x" literally
            return self._message("message", nick, stripped[1:])
        command = word.lower()
        you = (member,)
        if command == "/help":
            lines = HELP + OPERATOR_HELP if member in self._operators else HELP
            return Outcome([Delivery(self._event("system", text=line), you) for line in lines])
        if command in ("/kick", "/mute", "/unmute"):
            if member not in self._operators:
                raise RoomError(
                    "not-operator", f"only an operator may {command}; ask the person running the room"
                )
            target, _, reason = rest.strip().partition(" ")
            if not target:
                extra = " [REASON]" if command == "/kick" else ""
                raise RoomError("usage", f"usage: {command} NICK{extra}")
            # Someone who left while muted is no one to aim at, yet the mute can be lifted (below).
            away = command == "/unmute" and self._muted_and_away(target)
            aimed = None if away else self._find(target)
            if aimed in self._operators:  # the host among them: the room is theirs
                if aimed == member:
                    raise RoomError("is-operator", f"you may not {command} yourself")
                raise RoomError(
                    "is-operator", f"operators may not {command} each other: {safe(target)} is an operator"
                )
            if command == "/kick":
                return self._kick(target, reason.strip(), nick)
            return self._set_muted(target, command == "/mute", nick)
        if command == "/who":
            everyone = self._everyone()
            users = _listable(everyone)
            more = f", and {len(everyone) - len(users)} more" if len(users) < len(everyone) else ""
            text = f"{len(everyone)} here: {', '.join(users)}{more}"
            return Outcome([Delivery(self._event("system", text=text, users=users), you)])
        if command == "/me":
            if not rest.strip():
                raise RoomError("usage", "usage: /me ACTION, e.g. /me waves")
            return self._message("action", nick, rest)
        if command == "/nick":
            return self._rename(member, nick, rest.strip())
        if command == "/msg":
            return self._private(member, nick, rest)
        raise RoomError(
            "unknown-command",
            f"unknown command {safe(word)}; type /help to see the commands",
        )

    def _message(self, kind: str, nick: str, text: str) -> Outcome:
        self._check_heard(nick)
        text = clean_text(text)
        self._seq += 1  # what _broadcast does, without its keywords: this is every line's path
        event = Event.checked(kind, self._seq, _stamp(self._clock()), nick, text)
        self._keep((event,), history=True)
        out = [Delivery(event)]
        if self.bot and kind == "message":
            out += self._bot_says(self._ask_bot("on_message", nick, text))
        return Outcome(out)

    def _quit(self, member: Hashable, nick: str, farewell: str) -> Outcome:
        farewell = clean_text(farewell)  # may refuse it: do so before the member is gone
        if self._is_muted(nick):  # they leave, but their parting words reach nobody either
            farewell = ""
        goodbye = Delivery(self._event("system", code="goodbye", text=f"Goodbye, {nick}!"), (member,))
        if len(self._members) > BIG_ROOM:
            self._remove(member)
            left = Delivery(self._event("leave", sender=nick, text=farewell), ())  # for the record
            return Outcome([goodbye, left], leaving=True)
        self._remove(member)
        out = [goodbye, self._broadcast("leave", sender=nick, text=farewell)]
        if self.bot:
            out += self._bot_says(self._ask_bot("on_leave", nick), keep=False)
        return Outcome(out, leaving=True)

    def _rename(self, member: Hashable, nick: str, new: str) -> Outcome:
        if not new:
            raise RoomError("usage", "usage: /nick NEW")
        new = check_nick(new)
        if new == nick:  # said so, lest the silence look like a room that did not hear
            return Outcome([Delivery(self._event("system", text=f"you are already {nick}"), (member,))])
        if self._is_muted(nick):  # a new nick is words everyone sees, and a way out of the mute
            raise RoomError(
                "muted", "you are muted by an operator: your nick stays as it is until you are unmuted"
            )
        old_key, new_key = skeleton(nick), skeleton(new)
        if new_key != old_key:  # another case or look-alike of your own nick is yours
            self._check_free(new, new_key)
            del self._by_skeleton[old_key]
            self._by_skeleton[new_key] = member
            self.peers.release(old_key)
        else:
            self.peers.claim(new_key, new)  # the same nick written anew: the others see it so
        self._members[member] = new
        return Outcome([self._broadcast("nick", sender=nick, target=new)])

    def _private(self, member: Hashable, nick: str, rest: str) -> Outcome:
        target, _, text = rest.strip().partition(" ")
        if not target or not text.strip():
            raise RoomError("usage", "usage: /msg NICK TEXT")
        self._check_heard(nick)
        key = self._find(target)
        event = self._event("private", sender=nick, target=self._name(key), text=clean_text(text))
        return Outcome([Delivery(event, (member,) if key == member else (member, key))])

    def _check_free(self, nick: str, key: str) -> None:
        """RoomError('nick-taken') if ``nick`` is reserved or looks like one already here."""
        if _reserved(key, self.bot.nick if self.bot else None):
            raise RoomError("nick-taken", f"the nick {safe(nick)!r} is reserved; please pick another")
        holder = self._by_skeleton.get(key)
        theirs = self._members[holder] if holder is not None else self.peers.claim(key, nick)
        if theirs is None:
            return
        if theirs.casefold() == nick.casefold():
            raise RoomError("nick-taken", f"the nick {safe(nick)!r} is taken; please pick another")
        raise RoomError(
            "nick-taken",
            f"the nick {safe(nick)!r} is taken: it looks like {safe(theirs)!r}, who is here; "
            "please pick another",
        )

    def _remove(self, member: Hashable) -> str | None:
        nick = self._members.pop(member, None)
        if nick is not None:
            self._listed = None
            del self._by_skeleton[skeleton(nick)]
            self._operators.discard(member)
            self.peers.release(skeleton(nick))
        return nick

    def _is_muted(self, nick: str) -> bool:
        return bool(self._muted) and skeleton(nick) in self._muted

    def _check_heard(self, nick: str) -> None:
        if self._is_muted(nick):
            raise RoomError("muted", "you are muted by an operator: your messages reach nobody")

    def _find(self, target: str) -> Hashable:
        key = self._by_skeleton.get(skeleton(target))
        if key is not None:
            return key
        elsewhere = self.peers.find(skeleton(target))
        if elsewhere is None:
            raise RoomError("no-such-nick", f"nobody called {safe(target)!r} is here; try /who")
        return Remote(elsewhere)

    def _muted_and_away(self, target: str) -> bool:
        """A muted nick nobody has now, here or (in a shared room) on another server."""
        key = skeleton(target)
        return key in self._muted and key not in self._by_skeleton and self.peers.find(key) is None

    def _name(self, key: Hashable) -> str:
        return key.nick if isinstance(key, Remote) else self._members[key]

    def _everyone(self) -> list[str]:
        """Every nick in the room: here, and on other servers if the room is shared."""
        return self.peers.roster() or list(self._members.values())

    def _kick(self, target: str, reason: str, by: str) -> Outcome:
        key = self._find(target)
        nick = self._name(key)
        why = f"removed by {by}" + (f": {clean_text(reason)}" if reason else "")
        told = Delivery(self._event("error", code="kicked", text=f"you were {why}"), (key,))
        self._remove(key)  # (no friendly farewell from the bot for someone removed)
        return Outcome([told, self._broadcast("leave", sender=nick, text=why)], removed=[key])

    def _set_muted(self, target: str, muted: bool, by: str) -> Outcome:
        # Left while muted: the mute waits for the nick, and may be lifted.
        away = not muted and self._muted_and_away(target)
        nick = safe(target) if away else self._name(self._find(target))
        (self._muted.add if muted else self._muted.discard)(skeleton(nick))
        code, done = ("mute", "muted") if muted else ("unmute", "unmuted")
        return Outcome([self._broadcast("system", code=code, sender=nick, text=f"{nick} was {done} by {by}")])

    def _broadcast(self, kind: str, **fields) -> Delivery:
        """A public event for everyone, kept for replay."""
        event = self._event(kind, **fields)
        self._keep((event,))
        return Delivery(event)

    def _keep(self, events: Sequence[Event], history: bool = False) -> None:
        """Keep public events for replay (and, if asked, in the history), counting the ones
        they push out: the oldest of the replay buffer, then of these (if it holds fewer)."""
        replay = self._replay
        over = len(replay) + len(events) - replay.maxlen
        if over == 1 and replay:  # one in, the oldest out: every line once the buffer is full
            self._gone.append(replay[0].seq)
            self._gone_total += 1
        elif over > 0:
            old = min(over, len(replay))
            self._gone.extend(map(_seq_of, islice(replay, old)))
            self._gone.extend(map(_seq_of, events[: over - old]))
            self._gone_total += over
        replay.extend(events)
        if history:
            self._history.extend(events)

    def _ask_bot(self, hook: str, *args: str) -> list[str]:
        """What the bot answers, as lines of text. A bot is code someone wrote (a learner's
        greeter, say): one that raises or returns something other than lines is logged and
        says nothing this time, and the member whose message it was answering stays."""
        try:
            answer = getattr(self.bot, hook)(*args)
        except Exception as exc:
            log.warning(
                "the bot %s raised %s in %s; it says nothing this time", self.bot.nick, _said(exc), hook
            )
            return []
        if isinstance(answer, str):
            answer = [answer]
        elif not isinstance(answer, (list, tuple)):
            if answer is not None:
                log.warning(
                    "the bot %s's %s returned %s, not a list of lines",
                    self.bot.nick,
                    hook,
                    type(answer).__name__,
                )
            return []
        if not all(isinstance(line, str) for line in answer):
            log.warning("the bot %s's %s returned something that is not a line of text", self.bot.nick, hook)
        return [self._fit_bot_line(line, hook) for line in answer if isinstance(line, str) and line.strip()]

    def _fit_bot_line(self, line: str, hook: str) -> str:
        """A bot's line as a member's would be kept (controls made visible), and cut to the
        message limits if it passes them: a line over the wire's limit would cut off every
        client it reached, and, kept in the history, every newcomer after them."""
        try:
            return clean_text(line)
        except RoomError as exc:
            log.warning("the bot %s's %s said a %s; it is cut to fit", self.bot.nick, hook, exc)
        text = "\n".join(safe(trim(line), multiline=True).split("\n")[:MAX_LINES])
        return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"

    def _bot_says(self, lines: list[str], keep: bool = True) -> list[Delivery]:
        """The bot's lines as room events; ``keep`` puts them in the history too."""
        out = []
        for line in lines:
            delivery = self._broadcast("bot", sender=self.bot.nick, text=line)
            if keep:
                self._history.append(delivery.event)
            out.append(delivery)
        return out

    def _event(self, kind: str, **fields) -> Event:
        self._seq += 1
        return Event.checked(kind, self._seq, _stamp(self._clock()), **fields)


_seq_of = attrgetter("seq")

# The most bytes of nicks one /who answer lists (twice over: in its text and its users), well
# within the line limit (48 KiB) that every client reads: a room of thousands is counted, and
# its first nicks shown.
WHO_BYTES = 40_000


def _listable(nicks: list[str]) -> tuple[str, ...]:
    """As many of ``nicks``, first first, as one /who answer can carry."""
    left = WHO_BYTES
    for n, nick in enumerate(nicks):
        left -= 2 * (len(json.dumps(nick)) + 2)  # as JSON writes it (quoted, \uXXXX escapes), and a ", "
        if left < 0:
            return tuple(nicks[:n])
    return tuple(nicks)


def _said(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _stamp(now: float) -> float:
    """A clock reading to the millisecond, as events carry it (a quarter of round(now, 3)'s cost)."""
    return round(now * 1000) / 1000


# What one replayed event is taken to cost beyond its text's bytes: its JSON line's other fields.
EVENT_OVERHEAD = 160


def fit_replay(events: Sequence[Event], budget: int | None, start: int = 0) -> tuple[list[Event], int]:
    """The newest of ``events[start:]`` whose lines come to about ``budget`` bytes at most, and
    how many older ones that leaves out. A client coming back is sent its catch-up all at once,
    before it can read a byte of it: without a bound, a room of long messages would put more
    in its outbox than the outbox may hold, and cut it off as too slow before its welcome."""
    first, total = len(events), 0
    if budget is not None:
        while first > start:
            total += len(events[first - 1].text.encode()) + EVENT_OVERHEAD
            if total > budget:
                break
            first -= 1
    else:
        first = start
    return list(islice(events, first, None)), first - start


def gap_reason(too_old: bool, too_many: bool) -> str:
    """Why a catch-up's history-gap notice says events are missing (the room's and the mirror's)."""
    if too_old and too_many:
        return "too old or too much to replay"
    return "too old to replay" if too_old else "too much to replay at once"


def _replayed(event: Event) -> Event:
    return Event(**{**event.__dict__, "history": True})
