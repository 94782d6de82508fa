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
    word = stripped.partition(" ")[0].lower()
    return word in QUIT_COMMANDS or stripped.lower().rstrip("!. ") == "bye"


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


Frame = Hello | Say


def encode(item: Event | Hello | Say) -> bytes:
    """One frame as the bytes of one line of JSON, newline included."""
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


def banner(greeting: str) -> bytes:
    """The server's first line: the protocol's name, then words for a person."""
    return f"{PROTOCOL} {greeting}\n".encode()


def decode_text(line: bytes) -> str:
    """A line's bytes as text, or ProtocolError('bad-utf8')."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("bad-utf8", f"invalid UTF-8 at byte {exc.start}") from None


def _load_object(line: bytes) -> dict:
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
        return Say(text=_field(data, "text", str, ""))
    raise ProtocolError("bad-frame", f"unknown frame type {kind!r}")


def decode_event(line: bytes) -> Event:
    """Parse one line the server sent (without its newline) into an Event."""
    data = _load_object(line)
    kind = data.pop("type")
    if kind not in KINDS:
        raise ProtocolError("bad-frame", f"unknown event type {kind!r}")
    try:
        return Event(
            kind=kind,
            sender=str(data.get("sender", "")),
            text=str(data.get("text", "")),
            seq=int(data.get("seq", 0)),
            time=float(data.get("time", 0.0)),
            target=str(data.get("target", "")),
            code=str(data.get("code", "")),
            users=tuple(str(u) for u in data.get("users", ())),
            history=bool(data.get("history", False)),
            count=int(data.get("count", 0)),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError("bad-frame", f"malformed {kind} event: {exc}") from None


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

    def __init__(self, max_line: int = MAX_LINE, *, skip_long: bool = False) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self.skip_long = skip_long
        self._buffer = bytearray()
        self._lines: deque[bytes | ProtocolError] = deque()
        self._skipping = False  # inside a line already reported too long
        self.closed = False

    @property
    def buffered(self) -> int:
        """Bytes held for a line not yet complete."""
        return len(self._buffer)

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
        start = 0
        if self._skipping:
            start = data.find(b"\n") + 1
            if not start:
                return
            self._skipping = False
        while (end := data.find(b"\n", start)) >= 0:
            size = len(self._buffer) + end - start
            if size > self.max_line:
                self._too_long(f"{size} bytes")
                if self.closed:
                    return
                self._skipping = False  # that line ends here
            elif self._buffer:
                self._push(bytes(self._buffer) + data[start:end])
                self._buffer.clear()
            else:
                self._push(data[start:end])
            start = end + 1
        if len(self._buffer) + len(data) - start > self.max_line:
            self._too_long(f"over {self.max_line} bytes with no newline")
            return
        self._buffer += data[start:]

    def _push(self, line: bytes) -> None:
        self._lines.append(line[:-1] if line.endswith(b"\r") else line)

    def _too_long(self, size: str) -> None:
        self._buffer.clear()
        if self.skip_long:
            self._skipping = True
        else:
            self.closed = True
        message = f"line too long: {size}, limit {self.max_line}"
        self._lines.append(ProtocolError("line-too-long", message))

    def next_line(self) -> bytes | None:
        """The next complete line, or None until more is fed; raises a too-long line's error."""
        if not self._lines:
            return None
        item = self._lines.popleft()
        if isinstance(item, ProtocolError):
            raise item
        return item

    def __iter__(self) -> Iterator[bytes]:
        while self._lines:
            item = self._lines.popleft()
            if isinstance(item, ProtocolError):
                raise item
            yield item
