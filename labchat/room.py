"""The chat room: who is here, nick rules, commands and history, as pure logic.

Nothing in this module touches a socket or starts a thread. The server calls
``join``, ``say`` and ``leave`` with an opaque ``member`` key (it uses the
connection object) and gets back ``Delivery`` values: which event goes to
whom. Every event is stamped here with the room's next sequence number and the
time, so the order the room decides is the order everyone sees. A lock guards
the state, so other threads may safely ask who is here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from .bot import Greeter
from .protocol import MAX_TEXT, QUIT_COMMANDS, Event
from .text import safe

MAX_NICK = 20
RESERVED = frozenset({"server", "system", "admin", "labchat", "you"})

HELP = (
    "/who                 who is here",
    "/nick NEW            change your nick",
    "/me ACTION           say what you are doing: * ada waves",
    "/msg NICK TEXT       a private message only NICK sees",
    "/help                this list",
    "bye or /quit         leave the chat",
)


class RoomError(Exception):
    """A request the room refuses; ``code`` names the reason for programs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Delivery:
    """An event and who gets it: ``to`` lists member keys, or None for everyone."""

    event: Event
    to: tuple[Hashable, ...] | None = None


@dataclass
class Outcome:
    """What one request led to. ``leaving`` means the member asked to go."""

    deliveries: list[Delivery] = field(default_factory=list)
    leaving: bool = False


def check_nick(nick: str) -> str:
    """The nick if it is acceptable; RoomError('nick-invalid') saying why if not."""
    if not nick:
        raise RoomError("nick-invalid", "a nick cannot be empty")
    if len(nick) > MAX_NICK:
        raise RoomError("nick-invalid", f"nick too long: {len(nick)} characters, limit {MAX_NICK}")
    if not nick[0].isalpha():
        raise RoomError("nick-invalid", f"nick {safe(nick)!r} must start with a letter")
    bad = sorted({c for c in nick if not (c.isalnum() or c in "_-.")})
    if bad:
        shown = " ".join(repr(safe(c)) for c in bad)
        raise RoomError(
            "nick-invalid",
            f"nick {safe(nick)!r} may hold only letters, digits, _ - . (not {shown})",
        )
    return nick


def clean_text(text: str) -> str:
    """Chat text as the room keeps it: trimmed, controls neutralised, length checked."""
    text = safe(text.strip())
    if len(text) > MAX_TEXT:
        raise RoomError(
            "text-too-long",
            f"message too long: {len(text)} characters, limit {MAX_TEXT}",
        )
    return text


class Room:
    """One chat room. Thread-safe; every method returns what to deliver."""

    def __init__(
        self,
        *,
        history: int = 20,
        bot: Greeter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot = bot
        self._clock = clock
        self._lock = threading.Lock()
        self._members: dict[Hashable, str] = {}  # key -> nick, in joining order
        self._history: deque[Event] = deque(maxlen=history)
        self._seq = 0

    # -- questions other threads may ask -------------------------------------------

    def nicks(self) -> list[str]:
        """Who is here, in the order they joined."""
        with self._lock:
            return list(self._members.values())

    def members(self) -> list[Hashable]:
        with self._lock:
            return list(self._members)

    def nick_of(self, member: Hashable) -> str | None:
        with self._lock:
            return self._members.get(member)

    def history(self) -> list[Event]:
        with self._lock:
            return list(self._history)

    # -- requests -------------------------------------------------------------------

    def join(self, member: Hashable, nick: str, since: int | None = None) -> list[Delivery]:
        """Add a member; RoomError if the nick is invalid or taken."""
        nick = check_nick(nick)
        with self._lock:
            self._check_free(nick)
            self._members[member] = nick
            users = tuple(self._members.values())
            you = (member,)
            bot = f" {self.bot.nick} (a bot) is here too." if self.bot else ""
            here = f"{len(users)} here: {', '.join(users)}."
            out = [
                Delivery(
                    self._event(
                        "welcome",
                        sender=nick,
                        users=users,
                        text=f"Welcome, {nick}! {here}{bot} Type /help for commands, bye to leave.",
                    ),
                    you,
                )
            ]
            out += [Delivery(_replayed(e), you) for e in self._history]
            out.append(Delivery(self._event("join", sender=nick)))
            if self.bot:
                out += self._bot_says(self.bot.on_join(nick), keep=False)
            return out

    def leave(self, member: Hashable, reason: str = "") -> list[Delivery]:
        """Remove a member (no-op if absent); everyone left is told."""
        with self._lock:
            nick = self._members.pop(member, None)
            if nick is None:
                return []
            out = [Delivery(self._event("leave", sender=nick, text=safe(reason)))]
            if self.bot:
                out += self._bot_says(self.bot.on_leave(nick), keep=False)
            return out

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

    # -- inside the lock ------------------------------------------------------------

    def _say(self, member: Hashable, nick: str, text: str) -> Outcome:
        stripped = text.strip()
        if not stripped:
            return Outcome()
        word, _, rest = stripped.partition(" ")
        if word.lower() in QUIT_COMMANDS:
            return self._quit(member, nick, rest)
        if stripped.lower().rstrip("!. ") == "bye":  # the classic way out
            return self._quit(member, nick, "")
        if stripped.startswith("//"):  # "//x" says "/x" literally
            return self._message("message", nick, stripped[1:])
        if not stripped.startswith("/"):
            return self._message("message", nick, text)
        command = word.lower()
        you = (member,)
        if command == "/help":
            return Outcome([Delivery(self._event("system", text=line), you) for line in HELP])
        if command == "/who":
            users = tuple(self._members.values())
            text = f"{len(users)} here: {', '.join(users)}"
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
        event = self._event(kind, sender=nick, text=clean_text(text))
        self._history.append(event)
        out = [Delivery(event)]
        if self.bot and kind == "message":
            out += self._bot_says(self.bot.on_message(nick, event.text))
        return Outcome(out)

    def _quit(self, member: Hashable, nick: str, farewell: str) -> Outcome:
        farewell = clean_text(farewell)  # may refuse it: do so before the member is gone
        goodbye = Delivery(self._event("system", code="goodbye", text=f"Goodbye, {nick}!"), (member,))
        del self._members[member]
        out = [goodbye, Delivery(self._event("leave", sender=nick, text=farewell))]
        if self.bot:
            out += self._bot_says(self.bot.on_leave(nick), keep=False)
        return Outcome(out, leaving=True)

    def _rename(self, member: Hashable, nick: str, new: str) -> Outcome:
        if not new:
            raise RoomError("usage", "usage: /nick NEW")
        check_nick(new)
        if new == nick:
            return Outcome()
        if new.casefold() != nick.casefold():
            self._check_free(new)
        self._members[member] = new
        return Outcome([Delivery(self._event("nick", sender=nick, target=new))])

    def _private(self, member: Hashable, nick: str, rest: str) -> Outcome:
        target, _, text = rest.strip().partition(" ")
        if not target or not text.strip():
            raise RoomError("usage", "usage: /msg NICK TEXT")
        key = next(
            (k for k, n in self._members.items() if n.casefold() == target.casefold()),
            None,
        )
        if key is None:
            raise RoomError("no-such-nick", f"nobody called {safe(target)!r} is here; try /who")
        event = self._event("private", sender=nick, target=self._members[key], text=clean_text(text))
        return Outcome([Delivery(event, (member,) if key == member else (member, key))])

    def _check_free(self, nick: str) -> None:
        folded = nick.casefold()
        if folded in RESERVED or (self.bot and folded == self.bot.nick.casefold()):
            raise RoomError("nick-taken", f"the nick {nick!r} is reserved; please pick another")
        if any(n.casefold() == folded for n in self._members.values()):
            raise RoomError("nick-taken", f"the nick {nick!r} is taken; please pick another")

    def _bot_says(self, lines: list[str], keep: bool = True) -> list[Delivery]:
        """The bot's lines as room events; ``keep`` puts them in the history too."""
        out = []
        for line in lines:
            event = self._event("bot", sender=self.bot.nick, text=line)
            if keep:
                self._history.append(event)
            out.append(Delivery(event))
        return out

    def _event(self, kind: str, **fields) -> Event:
        self._seq += 1
        return Event(kind=kind, seq=self._seq, time=round(self._clock(), 3), **fields)


def _replayed(event: Event) -> Event:
    return Event(**{**event.__dict__, "history": True})
