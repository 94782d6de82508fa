"""The labchat wire format, with no I/O: bytes in, events out, and back.

Nothing in this module touches a socket or starts a thread. A connection is a
stream of lines (UTF-8, ending in ``\\n``). The server speaks first with a banner
line that a person can read. A program then sends a JSON ``hello`` frame and
later ``say`` frames; the server answers with one JSON event per line. A person
on netcat simply types: their first line is their nick, every later line is a
message or a ``/command``, and what they receive is plain text.

See ``docs/protocol.md`` for a byte-for-byte example of a session.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PROTOCOL = "labchat/1"
VERSION = 1

# The port a labchat server listens on unless told otherwise.
DEFAULT_PORT = 5050

# The lines that end a chat, besides a plain "bye": every face and the room agree on them.
QUIT_COMMANDS = frozenset({"/quit", "/exit", "/bye"})


def is_farewell(text: str) -> bool:
    """True for a line the room answers by saying goodbye: ``bye``, ``/quit``, ``/exit``, ``/bye``."""
    stripped = text.strip()
    if stripped[:1] == "/":
        return stripped.partition(" ")[0].lower() in QUIT_COMMANDS
    # "bye", any case, then any "!. ": no other character lower-cases to one of "bye!. "
    tail = stripped.rstrip("!. ")
    return len(tail) == 3 and tail.lower() == "bye"


# The longest chat message: 4000 characters (a long snippet of code, a few screenfuls) and
# at most 200 lines. Both are counted after the room has neutralised control characters.
MAX_TEXT = 4000
MAX_LINES = 200

# A line longer than this is refused before any more of it is buffered. It must hold the
# largest message a program may send: MAX_TEXT characters of 4 UTF-8 bytes each, written the
# way Python's json.dumps writes them by default (ensure_ascii), as a surrogate pair of
# escapes, "\ud83d\ude00", 12 bytes a character: 48,000 bytes. The envelope around it
# (type, sender and target nicks of up to 20 characters, seq, time, code) is a few hundred
# bytes more. 48 KiB holds all that, and is what a misbehaving peer's unfinished line may
# cost the server at most. (A newline travels as the two bytes \n inside the JSON string.)
MAX_LINE = 48 * 1024

# Every kind of event the server sends.
KINDS = frozenset(
    {
        "welcome",  # you are in: text greets you, users lists who is here
        "message",  # sender said text to the room
        "action",  # /me: "* sender text"
        "private",  # /msg: sender said text to target (only the two see it)
        "join",  # sender joined
        "leave",  # sender left; text is their farewell or the reason
        "nick",  # sender is now known as target
        "system",  # a notice from the server (replies to /help, /who, ...)
        "bot",  # the greeter bot (sender) speaks to the room
        "error",  # something went wrong: code says what, text says why
    }
)


class ProtocolError(ValueError):
    """The peer broke the wire format; ``code`` names the fault, the message explains it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, kw_only=True)
class Event:
    """One thing the server tells a client: a message, a join, an error, ...

    ``seq`` is the server's sequence number and ``time`` its clock (Unix
    seconds), so clients can order and render events. ``history`` marks events
    replayed to a newcomer from before they joined. ``count`` is how many are in
    the room, on a ``welcome`` (whose ``users`` is left empty in a big room).
    """

    kind: str
    sender: str = ""
    text: str = ""
    seq: int = 0
    time: float = 0.0
    target: str = ""
    code: str = ""
    users: tuple[str, ...] = ()
    history: bool = False
    count: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")
        if not isinstance(self.users, tuple):
            object.__setattr__(self, "users", tuple(self.users))

    @classmethod
    def checked(
        cls,
        kind: str,
        seq: int,
        time: float,
        sender: str = "",
        text: str = "",
        target: str = "",
        code: str = "",
        users: tuple[str, ...] = (),
        history: bool = False,
        count: int = 0,
    ) -> Event:
        """An Event from a caller that has already checked its fields (the room: a known
        kind, ``users`` a tuple). Equal to ``Event(...)`` with the same fields, built in a
        fifth of the time, since a busy room makes one for every line."""
        fields = _BLANK.copy()  # in the fields' order: vars() and repr() see what Event() makes
        fields["kind"] = kind
        fields["seq"] = seq
        fields["time"] = time
        fields["sender"] = sender
        fields["text"] = text
        if target:
            fields["target"] = target
        if code:
            fields["code"] = code
        if users:
            fields["users"] = users
        if history:
            fields["history"] = history
        if count:
            fields["count"] = count
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", fields)
        return event


# Every field of an Event at its default, in order: what Event.checked starts from.
_BLANK = {
    "kind": "",
    "sender": "",
    "text": "",
    "seq": 0,
    "time": 0.0,
    "target": "",
    "code": "",
    "users": (),
    "history": False,
    "count": 0,
}


@dataclass(frozen=True, kw_only=True)
class Hello:
    """A program's first frame: who it is, the room's token if it has one.

    ``since`` is the last ``seq`` a reconnecting client saw: the server replays
    what it still holds after it, marked as history. ``op_token`` makes the
    client an operator, who may kick and mute.
    """

    nick: str
    token: str | None = None
    version: int = VERSION
    since: int | None = None
    op_token: str | None = None


@dataclass(frozen=True, kw_only=True)
class Say:
    """A line typed by a client: a chat message or a ``/command``."""

    text: str = field(default="")

    @classmethod
    def of(cls, text: str) -> Say:
        """``Say(text=text)`` for a ``text`` known to be a str, built without the dataclass's
        frozen ``__init__`` (the server makes one for every line it reads)."""
        say = object.__new__(cls)
        say.__dict__["text"] = text
        return say


Frame = Hello | Say


def encode(item: Event | Hello | Say) -> bytes:
    """One frame as the bytes of one line of JSON, newline included."""
    if type(item) is Event:
        line = _event_line(item.__dict__)
        if line is not None:
            return line.encode("utf-8")
    if isinstance(item, Event):
        data = {"type": item.kind}
        for key, value in vars(item).items():  # not asdict(): that deep-copies, 3x slower
            if key != "kind" and value not in ("", 0, 0.0, (), False):
                data[key] = list(value) if key == "users" else value
        data.setdefault("seq", 0)
    elif isinstance(item, Hello):
        data = {"type": "hello", "nick": item.nick, "version": item.version}
        if item.token is not None:
            data["token"] = item.token
        if item.since is not None:
            data["since"] = item.since
        if item.op_token is not None:
            data["op_token"] = item.op_token
    elif isinstance(item, Say):
        data = {"type": "say", "text": item.text}
    else:
        raise TypeError(f"cannot encode {type(item).__name__}")
    line = json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"
    return line.encode("utf-8")


def encode_all(events: list[Event]) -> bytes:
    """``b"".join(encode(e) for e in events)``, as one string encoded once."""
    lines = []
    for event in events:
        line = _event_line(event.__dict__) if type(event) is Event else None
        lines.append(encode(event).decode("utf-8") if line is None else line)
    return "".join(lines).encode("utf-8")


# The string escaper json.dumps(ensure_ascii=False) itself uses (in C where there is C).
_quote = json.encoder.encode_basestring


# The last event time written, and how: events come in runs stamped the same millisecond,
# and writing a float costs more than the rest of the line. (One tuple, swapped whole, so
# threads that share it never see a time beside another one's text.)
_last_time: tuple[float, str] = (0.0, "0.0")
# And the parts of the last plain message line around its text and seq: (time, sender,
# kind, head, tail). A room's run of lines from one sender shares them.
_last_head: tuple[float, str, str, str, str] = (0.0, "", "", "", "")


def _event_line(fields: dict) -> str | None:
    """An event's JSON line built directly, the very text ``json.dumps`` writes for it (key
    order, escapes and number forms alike), or None for a value of an unusual type (then
    json.dumps does it). Every line a room sends goes through here once, so it is kept short:
    a dict and an encoder for each event would cost four times as much."""
    global _last_time, _last_head
    kind, sender, text, seq, stamp = (
        fields["kind"],
        fields["sender"],
        fields["text"],
        fields["seq"],
        fields["time"],
    )
    if type(kind) is not str or type(sender) is not str or type(text) is not str:
        return None
    if type(seq) is not int or type(stamp) is not float:
        return None
    target, code, users, history, count = (
        fields["target"],
        fields["code"],
        fields["users"],
        fields["history"],
        fields["count"],
    )
    if sender and text and seq and stamp and not (target or code or users or history or count):
        # a message, an action, a bot's line: the shape of nearly every line sent
        last = _last_head
        if last[0] == stamp and last[1] == sender and last[2] == kind:  # one sender's run
            head, when = last[3], last[4]
        elif math.isfinite(stamp):
            head = f'{{"type":{_quote(kind)},"sender":{_quote(sender)},"text":'
            when = f',"time":{float.__repr__(stamp)}}}\n'
            _last_head = (stamp, sender, kind, head, when)
        else:
            return None
        return f'{head}{_quote(text)},"seq":{seq}{when}'
    if not math.isfinite(stamp):
        return None
    if stamp:
        last = _last_time
        if last[0] == stamp:  # equal and non-zero floats have one repr (0.0 and -0.0 do not)
            when = last[1]
        else:
            when = float.__repr__(stamp)
            _last_time = (stamp, when)
        when = ',"time":' + when
    else:
        when = ""
    parts = ['{"type":', _quote(kind)]
    if sender:
        parts += (',"sender":', _quote(sender))
    if text:
        parts += (',"text":', _quote(text))
    if seq:
        parts += (',"seq":', int.__repr__(seq))
    parts.append(when)
    if target:
        if type(target) is not str:
            return None
        parts += (',"target":', _quote(target))
    if code:
        if type(code) is not str:
            return None
        parts += (',"code":', _quote(code))
    if users:
        if type(users) is not tuple or not all(type(u) is str for u in users):
            return None
        parts += (',"users":[', ",".join(map(_quote, users)), "]")
    if history:
        if history is not True:
            return None
        parts.append(',"history":true')
    if count:
        if type(count) is not int:
            return None
        parts += (',"count":', int.__repr__(count))
    parts.append("}\n" if seq else ',"seq":0}\n')
    return "".join(parts)


def banner(greeting: str) -> bytes:
    """The server's first line: the protocol's name, then words for a person."""
    return f"{PROTOCOL} {greeting}\n".encode()


def decode_text(line: bytes) -> str:
    """A line's bytes as text, or ProtocolError('bad-utf8')."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("bad-utf8", f"invalid UTF-8 at byte {exc.start}") from None


# The scanner json.loads itself ends in, without its checks of the argument's type.
_scan = json.JSONDecoder().scan_once


def _load_object(line: bytes) -> dict:
    if line[:1] == b"{":  # a frame, the usual case: straight to the scanner
        try:
            text = line.decode("utf-8")
            data, end = _scan(text, 0)
        except (StopIteration, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            pass  # the full way below says what is wrong
        else:
            if (end == len(text) or not text[end:].strip(" \t\n\r")) and type(data.get("type")) is str:
                return data
    text = decode_text(line)  # outside the try: its ProtocolError is a ValueError too
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad-json", f"not valid JSON: {exc.msg}") from None
    except (ValueError, RecursionError):  # a number with thousands of digits, or deep nesting
        raise ProtocolError("bad-json", "not valid JSON: too deeply nested or too large a number") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("bad-frame", "a frame must be a JSON object with a 'type'")
    return data


def _field(data: dict, name: str, kind: type, default: object) -> Any:
    value = data.get(name, default)
    if value is default:
        return value
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProtocolError("bad-frame", f"field {name!r} must be {kind.__name__}")
    if isinstance(value, str):
        try:  # a JSON "\ud800" escape smuggles in a lone surrogate, which is not text
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ProtocolError("bad-utf8", f"field {name!r} is not valid Unicode at {exc.start}") from None
    return value


def say_text(line: bytes) -> str | None:
    """The text of a plain ``say`` frame (ASCII, nothing but its type and text), or None for
    any other line, which ``decode_frame`` then reads (and judges) in full. A server reads
    every chat line through here first: no object is made for it but its text."""
    if line[:1] != b"{" or not line.isascii():
        return None
    try:
        data, end = _scan(line.decode("ascii"), 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    if end != len(line) or data.get("type") != "say":
        return None
    text = data.get("text", "")
    return text if type(text) is str and text.isascii() else None


# What say_texts puts between lines: a newline may stand only between tokens, never inside
# a JSON string, so no string reaches across it.
_SPLICE = b"]\n,["
# Objects come out as their lists of pairs (``list`` is called in C, no frame a line), so a
# key written twice is seen: with dicts, a second "text" would hide a first one holding the
# brackets of a splice, and two lines that are not JSON would pass as two frames.
_load_array = json.JSONDecoder(object_pairs_hook=list).raw_decode


def say_texts(lines: list[bytes]) -> list[str] | None:
    """The texts of a run of lines that are all plain ``say`` frames (ASCII, exactly
    ``type`` and ``text``), parsed at once; or None if any line is something else (or not
    bytes), and then ``say_text`` and ``decode_frame`` read them one by one.

    The lines are parsed as one array ``[[line],[line],...]``. Each element must be a list
    of one object with two pairs, keys ``type`` and ``text``, both strings, so none holds
    a ``]`` outside a string: the ``]`` before every spliced newline closes an element,
    and as many elements as lines means each element is one whole line. A text with a
    character past ASCII is sent on to ``decode_frame``, which refuses a lone surrogate
    (a ``"\\ud800"`` escape) as ``say_text`` does. A program's chat arrives in runs like
    this, and one parse for all costs a third of one for each (``benchmarks.path``)."""
    try:
        text = b"[[" + _SPLICE.join(lines) + b"]]"
    except TypeError:  # a too-long line's error among them
        return None
    if not text.isascii():
        return None
    text = text.decode("ascii")
    try:
        items, end = _load_array(text)
    except (ValueError, RecursionError):
        return None
    if end != len(text) or len(items) != len(lines):
        return None
    out = []
    for item in items:
        if type(item) is not list or len(item) != 1:
            return None
        pairs = item[0]  # an object, as its list of (key, value) tuples
        if type(pairs) is not list or len(pairs) != 2:
            return None
        one, two = pairs
        if type(one) is not tuple or type(two) is not tuple:  # an array of two, not an object
            return None
        (first, one), (second, two) = one, two
        if first == "type" and second == "text":
            kind, said = one, two
        elif first == "text" and second == "type":
            kind, said = two, one
        else:
            return None
        if kind != "say" or type(said) is not str or not said.isascii():
            return None
        out.append(said)
    return out


def decode_frame(line: bytes) -> Frame:
    """Parse one line a client sent (without its newline) into Hello or Say."""
    data = _load_object(line)
    kind = data["type"]
    if kind == "hello":
        nick = _field(data, "nick", str, None)
        if nick is None:
            raise ProtocolError("bad-frame", "hello needs a 'nick'")
        token = _field(data, "token", str, None)
        version = _field(data, "version", int, VERSION)
        since = _field(data, "since", int, None)
        if since is not None and since < 0:
            raise ProtocolError("bad-frame", "field 'since' must not be negative")
        op_token = _field(data, "op_token", str, None)
        return Hello(nick=nick, token=token, version=version, since=since, op_token=op_token)
    if kind == "say":
        text = data.get("text", "")
        if type(text) is str and text.isascii():  # the usual case: nothing to check further
            return Say.of(text)
        return Say(text=_field(data, "text", str, ""))
    raise ProtocolError("bad-frame", f"unknown frame type {kind!r}")


def decode_event(line: bytes) -> Event:
    """Parse one line the server sent (without its newline) into an Event."""
    data = _load_object(line)
    kind = data.pop("type")
    if kind not in KINDS:
        raise ProtocolError("bad-frame", f"unknown event type {kind!r}")
    for name, value in data.items():  # a field another version adds is let through, unread
        wanted = _EVENT_FIELDS.get(name)
        if wanted is not None and type(value) not in wanted[0]:
            raise ProtocolError("bad-frame", f"malformed {kind} event: its {name} is not {wanted[1]}")
    get = data.get
    when = get("time", 0.0)
    if not 0 <= when <= LAST_TIME:  # NaN too: what a clock cannot show is no time
        raise ProtocolError("bad-frame", f"malformed {kind} event: its time {when!r} is no date")
    users = tuple(get("users", ()))
    if not all(type(user) is str for user in users):
        raise ProtocolError("bad-frame", f"malformed {kind} event: its users are not all strings")
    if _SURROGATE_ESCAPE.search(line):  # a pair is how an emoji travels; a lone one is no text
        for name in ("sender", "text", "target", "code", "users"):
            value = "".join(users) if name == "users" else get(name, "")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                verb = "are" if name == "users" else "is"
                what = f"malformed {kind} event: its {name} {verb} not valid Unicode"
                raise ProtocolError("bad-utf8", what) from None
    # Every field has its type now and the kind is known: Event.checked needs no more.
    return Event.checked(
        kind,
        get("seq", 0),
        float(when),
        get("sender", ""),
        get("text", ""),
        get("target", ""),
        get("code", ""),
        users,
        get("history", False),
        get("count", 0),
    )


# Where a JSON line can smuggle a surrogate into a str: a \uD800-\uDFFF escape (raw UTF-8
# cannot encode one). Searched in C, so an event without one costs nothing more.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")

# An event's fields: the JSON types each may have (a bool is not taken for a number), in words.
_EVENT_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "seq": ((int,), "a whole number"),
    "time": ((float, int), "a number"),
    "sender": ((str,), "a string"),
    "text": ((str,), "a string"),
    "target": ((str,), "a string"),
    "code": ((str,), "a string"),
    "users": ((list,), "a list"),
    "history": ((bool,), "true or false"),
    "count": ((int,), "a whole number"),
}
# 9999-12-31 23:59:59 UTC, the last second a date has four digits for: a later "time" is damage.
LAST_TIME = 253_402_300_799.0


class Decoder:
    """Splits a byte stream into lines, refusing any line over ``max_line`` bytes.

    Feed it whatever ``recv`` returned, ``b""`` meaning the peer closed; then
    iterate to take the complete lines (without ``\\n`` or a trailing ``\\r``).
    At most ``max_line`` bytes are ever buffered for an unfinished line. A line
    that is too long is reported, in its place among the lines, by iteration
    raising ProtocolError('line-too-long'). Then, by default, the decoder takes
    no more; with ``skip_long=True`` it drops the rest of that line and goes on
    with the next one, so one oversized paste costs one error, not the connection.
    """

    __slots__ = ("max_line", "skip_long", "_buffer", "_lines", "_skipping", "closed")

    def __init__(self, max_line: int = MAX_LINE, *, skip_long: bool = False) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self.skip_long = skip_long
        self._buffer = bytearray()
        # No lines waiting: an empty tuple, not a deque of 600 bytes (a server holds one
        # decoder for each idle client); the deque is made when lines arrive.
        self._lines: deque[bytes | ProtocolError] | tuple = ()
        self._skipping = False  # inside a line already reported too long
        self.closed = False

    @property
    def buffered(self) -> int:
        """Bytes held for a line not yet complete."""
        return len(self._buffer)

    def begun(self, size: int = 16) -> bytes:
        """The first ``size`` bytes of a line not yet complete (b"" when none is under way)."""
        return bytes(self._buffer[:size])

    @property
    def ready(self) -> int:
        """Complete lines (and errors) waiting to be taken."""
        return len(self._lines)

    def feed(self, data: bytes) -> None:
        """Take the bytes ``recv`` returned; ``b""`` means end of stream."""
        if self.closed:
            return
        if not data:
            self.closed = True
            if self._buffer:  # the last line had no newline: take it as it is
                self._push(bytes(self._buffer))
            self._buffer.clear()
            return
        # Whole lines that fit, nothing held from before: what a client nearly always sends.
        whole = data[-1:] == b"\n" and not self._buffer and not self._skipping
        if whole and len(data) <= self.max_line and b"\r" not in data:
            self._waiting().extend(data[:-1].split(b"\n"))
            return
        if self._skipping:
            start = data.find(b"\n") + 1
            if not start:
                return
            self._skipping = False
            data = data[start:]
        parts = data.split(b"\n")  # the complete lines, then what follows the last newline
        rest = parts.pop()
        if parts:
            joined = bool(self._buffer)
            if joined:  # the first line began in an earlier feed
                parts[0] = bytes(self._buffer) + parts[0]
                self._buffer.clear()
            if max(map(len, parts)) <= self.max_line:  # the usual case: every line fits
                if joined or b"\r" in data:
                    parts = [line[:-1] if line.endswith(b"\r") else line for line in parts]
                self._waiting().extend(parts)
            else:
                for line in parts:
                    if len(line) > self.max_line:
                        self._too_long(f"{len(line)} bytes")
                        if self.closed:
                            return
                        self._skipping = False  # that line ends here
                    else:
                        self._push(line)
        if len(self._buffer) + len(rest) > self.max_line:
            self._too_long(f"over {self.max_line} bytes with no newline")
            return
        self._buffer += rest

    def _push(self, line: bytes) -> None:
        self._waiting().append(line[:-1] if line.endswith(b"\r") else line)

    def _too_long(self, size: str) -> None:
        self._buffer.clear()
        if self.skip_long:
            self._skipping = True
        else:
            self.closed = True
        message = f"line too long: {size}, limit {self.max_line}"
        self._waiting().append(ProtocolError("line-too-long", message))

    def _waiting(self) -> deque[bytes | ProtocolError]:
        if type(self._lines) is tuple:
            self._lines = deque()
        return self._lines

    def take(self, limit: int) -> list[bytes | ProtocolError]:
        """Up to ``limit`` complete lines at once, in order, a too-long line's error in its
        place (returned, not raised): ``next_line`` for a reader that takes many."""
        lines = self._lines
        if len(lines) <= limit:
            out = list(lines)
            self._lines = ()
            return out
        return [lines.popleft() for _ in range(limit)]

    def next_line(self) -> bytes | None:
        """The next complete line, or None until more is fed; raises a too-long line's error."""
        lines = self._lines
        if not lines:
            return None
        item = lines.popleft()
        if not lines:
            self._lines = ()
        if isinstance(item, ProtocolError):
            raise item
        return item

    def __iter__(self) -> Iterator[bytes]:
        while self._lines:
            item = self._lines.popleft()
            if not self._lines:
                self._lines = ()
            if isinstance(item, ProtocolError):
                raise item
            yield item
