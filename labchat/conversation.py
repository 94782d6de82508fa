"""One labchat conversation as two state machines, one per side, with no I/O.

Nothing in this module touches a socket, a clock or a thread. Bytes go in with
``receive_data(data)`` (``b""`` meaning the peer hung up); what they mean comes
out of ``next_event()``, one at a time, or ``NEED_DATA`` until more arrives.
Whatever a side wants to say is returned as the exact bytes to send. The
server and the client only move those bytes and keep time, so every rule of the
handshake lives here, once, for both engines and the client.

A server's conversation goes BANNER -> HELLO -> JOINED -> CLOSED: it speaks
first, then waits for a JSON ``hello`` (a program) or a nick line (a person on
netcat, who is then spoken to in plain text), then relays chat lines. A client's
goes BANNER -> HELLO -> WELCOME -> JOINED -> CLOSED.

A person on netcat sends several lines as one message by fencing them: a line
of exactly ```` ``` ```` (or ```` ```python ````) opens a block, the next
```` ``` ```` line closes it, and the block comes out as one ``Say`` whose text
is the fenced block, fences included. Nothing else comes out while it is open,
and it is bounded as any message is (MAX_LINES lines, MAX_TEXT characters). A
block still open when the peer hangs up comes out then, closed, as a last line
without its newline does: what a person sent is not lost.

Errors say who is at fault: ``LocalProtocolError`` when this side misuses the
API (saying hello twice, chatting before joining), ``RemoteProtocolError`` when
the peer breaks the protocol. A peer's bad chat line once joined is not fatal:
it comes out as an ``Invalid`` event in its place, for the server to answer
with an error while the conversation goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .protocol import (
    MAX_LINE,
    MAX_LINES,
    MAX_TEXT,
    PROTOCOL,
    VERSION,
    Decoder,
    Event,
    Hello,
    ProtocolError,
    Say,
    banner,
    decode_event,
    decode_frame,
    decode_text,
    encode,
    say_text,
    say_texts,
)
from .render import plain


class LocalProtocolError(RuntimeError):
    """This side asked for something its conversation's state does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol in a way the conversation cannot go on from."""


class State(Enum):
    BANNER = "banner"  # server: the banner is not sent yet; client: not received yet
    HELLO = "hello"  # server: waiting for hello; client: banner seen, hello not sent
    WELCOME = "welcome"  # client only: hello sent, waiting for the welcome
    JOINED = "joined"
    CLOSED = "closed"


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Sentinel("NEED_DATA")  # nothing complete yet: feed more bytes
CLOSED = _Sentinel("CLOSED")  # the peer hung up and everything it sent has been taken

# A line that opens a block on netcat: three backticks, then a language if you like.
_FENCE = re.compile(r"```[ \t]*([^\s`]*)")
# What an error in the middle of a person's ``` block adds: the whole block goes, not one line.
BLOCK_DROPPED = "; this ``` block is dropped, up to its closing ```"


@dataclass(frozen=True)
class Invalid:
    """A chat line the server refuses in its place (bad JSON, too long, ...)."""

    code: str
    text: str


@dataclass(frozen=True)
class Banner:
    """The server's first line, as a client sees it: words for a person."""

    text: str


@dataclass(frozen=True)
class Refused:
    """The server would not take this connection: ``code`` for programs, ``text`` for people."""

    code: str
    text: str


class ServerConversation:
    """The server's side: banner, then hello (JSON or a nick line), then chat."""

    __slots__ = ("state", "mode", "max_line", "_decoder", "_block", "_block_size", "_block_dropped")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.state = State.BANNER
        self.mode = "json"  # "text" once a person's nick line arrives
        self.max_line = max_line
        self._decoder = Decoder(max_line)
        self._block: list[str] | None = None  # text mode: the lines of an open ``` block
        self._block_size = 0  # its characters so far, as one message (fences and newlines counted)
        self._block_dropped = False  # it went over a limit: the rest of it is skipped

    # -- bytes out ----------------------------------------------------------------------

    def banner(self, greeting: str) -> bytes:
        """The first line, which a person can read; the conversation then waits for hello."""
        self._expect(State.BANNER, "send the banner")
        self.state = State.HELLO
        return banner(greeting)

    def joined(self) -> None:
        """The room took the hello: from now on lines are chat, and a bad one is not fatal."""
        self._expect(State.HELLO, "join")
        self.state = State.JOINED
        self._decoder.skip_long = True

    def send(self, event: Event) -> bytes:
        """An event as this peer reads it: a JSON line, or a plain text line on netcat."""
        if self.state is State.CLOSED:
            raise LocalProtocolError("the conversation is closed")
        return render(event, self.mode)

    def refusal(self, code: str, text: str) -> bytes:
        """The last words to a connection that is refused or cut off; the conversation is then closed.

        Before any hello, a person halfway through a nick at netcat is told in words, as
        the hello's own rule would take their line (it does not start with ``{``).
        """
        mode = self.mode
        if self.state is State.HELLO and not self._decoder.ready:
            begun = self._decoder.begun().lstrip()
            if begun and not begun.startswith(b"{"):
                mode = "text"
        self.state = State.CLOSED
        return render(Event(kind="error", code=code, text=text), mode)

    def close(self) -> None:
        self.state = State.CLOSED

    # -- bytes in -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Take what ``recv`` returned; ``b""`` means the peer closed its side."""
        self._decoder.feed(data)

    @property
    def unprocessed(self) -> int:
        """Complete lines received and not yet taken by ``next_event()``."""
        return self._decoder.ready

    def next_event(self) -> Hello | Say | Invalid | _Sentinel:
        """The next thing the peer said: Hello, Say, Invalid, NEED_DATA or CLOSED.

        Before the join, anything wrong raises RemoteProtocolError (the server
        refuses the connection with its code and text).
        """
        if self.state is State.BANNER:
            raise LocalProtocolError("send the banner before reading")
        if self.state is State.CLOSED:
            return CLOSED
        while True:
            try:
                line = self._decoder.next_line()
            except ProtocolError as exc:
                if self.state is State.JOINED:
                    return Invalid(exc.code, str(exc) + self._drop_block())
                raise RemoteProtocolError(exc.code, str(exc)) from None
            if line is None:
                if not self._decoder.closed:
                    return NEED_DATA
                if self._block and not self._block_dropped:  # they hung up inside a block: it is
                    lines, self._block = self._block, None  # theirs still, as a last line is
                    return Say(text="\n".join([*lines, "```"]))
                return CLOSED
            if self.state is State.HELLO:
                return self._hello(line)
            if self.mode == "text":
                said = self._text_line(line)
                if said is None:  # a line of an open block
                    continue
                return said
            try:
                frame = decode_frame(line)
            except ProtocolError as exc:
                return Invalid(exc.code, str(exc))
            if not isinstance(frame, Say):
                return Invalid("bad-frame", "already joined: send 'say' frames")
            return frame

    def next_events(self, limit: int) -> list[str | Invalid]:
        """Up to ``limit`` events at once, for a joined program (JSON mode): what
        ``next_event()`` would have returned, one by one, except that a Say comes as its
        text alone. Empty when nothing is complete yet, and in any other state or mode:
        then ask ``next_event()``, which also says NEED_DATA or CLOSED."""
        if self.state is not State.JOINED or self.mode != "json":
            return []
        lines = self._decoder.take(limit)
        texts = say_texts(lines) if len(lines) > 1 else None
        if texts is not None:  # nothing but chat, the usual case
            return texts
        out: list[str | Invalid] = []
        for line in lines:
            if type(line) is not bytes:  # a line too long, reported in its place
                out.append(Invalid(line.code, str(line)))
                continue
            text = say_text(line)
            if text is not None:
                out.append(text)
                continue
            try:
                frame = decode_frame(line)
            except ProtocolError as exc:
                out.append(Invalid(exc.code, str(exc)))
                continue
            if type(frame) is Say:
                out.append(frame.text)
            else:
                out.append(Invalid("bad-frame", "already joined: send 'say' frames"))
        return out

    @property
    def in_block(self) -> bool:
        """True while a person on netcat is typing a ``` block (its lines are not sent yet)."""
        return self._block is not None

    def _text_line(self, line: bytes) -> Say | Invalid | None:
        """A person's line: a Say, an Invalid, or None when it went into (or ended) an open block."""
        try:
            text = decode_text(line)
        except ProtocolError as exc:
            return Invalid(exc.code, str(exc) + self._drop_block())
        if self._block is None:
            fence = _FENCE.fullmatch(text.strip())
            if fence is None:
                return Say(text=text)
            self._block = [f"```{fence.group(1)}"]
            self._block_size = len(self._block[0])
            return None
        if text.strip() == "```":  # the block ends: all of it is one message
            lines, dropped = self._block, self._block_dropped
            self._block, self._block_dropped = None, False
            return None if dropped else Say(text="\n".join([*lines, "```"]))
        if self._block_dropped:
            return None
        size = self._block_size + 1 + len(text)
        lines = len(self._block) + 2  # with this line and the closing fence
        if lines > MAX_LINES or size + 4 > MAX_TEXT:
            what = f"{lines} lines, limit {MAX_LINES}" if lines > MAX_LINES else f"over {MAX_TEXT} characters"
            return Invalid("text-too-long", f"message too long: {what}" + self._drop_block())
        self._block.append(text)
        self._block_size = size
        return None

    def _drop_block(self) -> str:
        """Forget an open block's lines; the rest of it, up to its closing fence, is skipped.
        What the error that caused it adds, so the person knows (nothing if no block is open,
        or it was dropped already and they were told)."""
        if self._block is None or self._block_dropped:
            return ""
        self._block = []
        self._block_dropped = True
        return BLOCK_DROPPED

    def _hello(self, line: bytes) -> Hello:
        if line.lstrip().startswith(b"{"):
            try:
                frame = decode_frame(line)
            except ProtocolError as exc:
                raise RemoteProtocolError(exc.code, f"bad hello: {exc}") from None
            if not isinstance(frame, Hello):
                raise RemoteProtocolError("bad-hello", "the first frame must be a hello")
            if frame.version != VERSION:
                raise RemoteProtocolError(
                    "bad-version",
                    f"this server speaks {PROTOCOL} only, the client asked for version {frame.version}",
                )
            return frame
        self.mode = "text"
        try:
            words = decode_text(line).split()
        except ProtocolError as exc:
            raise RemoteProtocolError(exc.code, f"bad nick: {exc}") from None
        if not words:
            raise RemoteProtocolError("nick-invalid", "a nick cannot be empty")
        return Hello(nick=words[0], token=" ".join(words[1:]) or None)

    def _expect(self, state: State, action: str) -> None:
        if self.state is not state:
            raise LocalProtocolError(f"cannot {action} in state {self.state.value}")


class ClientConversation:
    """The client's side: read the banner, say hello, wait for the welcome, then chat.

    ``tap``, if set, is called as ``tap(direction, line)`` for every line as it travels:
    ``"->"`` for a line this side sends, ``"<-"`` for one it receives (without its newline).
    """

    def __init__(self, max_line: int = MAX_LINE, tap: Callable[[str, bytes], object] | None = None) -> None:
        self.state = State.BANNER
        self.tap = tap
        self._decoder = Decoder(max_line)

    def _out(self, data: bytes) -> bytes:
        if self.tap is not None:
            self.tap("->", data.rstrip(b"\n"))
        return data

    def receive_data(self, data: bytes) -> None:
        """Take what ``recv`` returned; ``b""`` means the server closed its side."""
        self._decoder.feed(data)

    def hello(
        self, nick: str, token: str | None = None, since: int | None = None, op_token: str | None = None
    ) -> bytes:
        """The hello frame, once the banner has been read."""
        if self.state is not State.HELLO:
            raise LocalProtocolError(f"cannot say hello in state {self.state.value}")
        self.state = State.WELCOME
        return self._out(encode(Hello(nick=nick, token=token, since=since, op_token=op_token)))

    def say(self, text: str) -> bytes:
        """A chat line (a message, ``bye`` or a ``/command``) as the bytes of a say frame."""
        if self.state is not State.JOINED:
            raise LocalProtocolError(f"cannot chat in state {self.state.value}: wait for the welcome")
        return self._out(encode(Say(text=text)))

    def next_event(self) -> Banner | Refused | Event | _Sentinel:
        """The next thing the server said: Banner, Refused, an Event, NEED_DATA or CLOSED.

        An ``error`` before the welcome is a Refused (the server will hang up);
        the welcome moves the conversation to JOINED.
        """
        if self.state is State.CLOSED:
            return CLOSED
        line = self._decoder.next_line()  # a line too long raises: the server is broken
        if line is None:
            if self._decoder.closed:
                self.state = State.CLOSED
                return CLOSED
            return NEED_DATA
        if self.tap is not None:
            self.tap("<-", line)
        if self.state is State.BANNER:
            return self._banner(line)
        if self.state is State.HELLO:
            raise RemoteProtocolError("bad-frame", "the server spoke before our hello")
        event = decode_event(line)
        if self.state is State.WELCOME:
            if event.kind == "error":
                self.state = State.CLOSED
                return Refused(event.code, event.text)
            if event.kind == "welcome":
                self.state = State.JOINED
        return event

    def _banner(self, line: bytes) -> Banner | Refused:
        text = line.decode("utf-8", "replace")
        if not text.startswith(PROTOCOL + " "):
            raise RemoteProtocolError("not-labchat", f"not a labchat server (it said {text[:60]!r})")
        words = text.split(" ", 3)
        if words[1] == "refused":
            self.state = State.CLOSED
            code = words[2].rstrip(":") if len(words) > 2 else "refused"
            return Refused(code, words[3] if len(words) > 3 else text)
        self.state = State.HELLO
        return Banner(text[len(PROTOCOL) + 1 :])


def render(event: Event, mode: str) -> bytes:
    """An event's bytes for a peer in ``mode``: one JSON line, or one plain text line."""
    if mode == "json":
        return encode(event)
    return (plain(event) + "\n").encode("utf-8")
