"""Property tests: arbitrary bytes and command sequences against the decoder, the room and a live server.

The rule they check: whatever a peer sends, the only exception that comes out
is the documented ProtocolError, buffers stay bounded, the room's invariants
hold (nicks unique, everyone who joined and has not left is listed, sequence
numbers only grow), and a server under fire keeps serving everyone else with
nothing unsafe in what they see.
"""

from __future__ import annotations

import json
import logging
import socket
import string
import threading

import pytest
from conftest import wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from labchat import ChatClient, ChatServer, Event, ProtocolError
from labchat.bot import Greeter
from labchat.nicks import skeleton
from labchat.protocol import MAX_TEXT, Decoder, Hello, Say, decode_event, decode_frame, encode
from labchat.room import MAX_NICK, Room, RoomError, check_nick

# Two busy cores run this suite: no per-example deadline, and slow generation is not a failure.
RELAXED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

# -- the decoder ---------------------------------------------------------------------------------


def reference_lines(stream: bytes, max_line: int) -> tuple[list[bytes], bool]:
    """What a correct decoder yields for ``stream`` then end of stream: (lines, ended in an error)."""
    *complete, tail = stream.split(b"\n")
    out = []
    for line in complete:
        if len(line) > max_line:
            return out, True
        out.append(line[:-1] if line.endswith(b"\r") else line)
    if len(tail) > max_line:
        return out, True
    if tail:
        out.append(tail[:-1] if tail.endswith(b"\r") else tail)
    return out, False


line_bytes = st.one_of(
    st.binary(min_size=1, max_size=40),
    st.sampled_from([b"\n", b"\r\n", b"\r", b"hello\n", b"{}\n", b"\xff\xfe", b"\x00"]),
)


@settings(max_examples=400, **RELAXED)
@given(chunks=st.lists(line_bytes, max_size=30), max_line=st.integers(1, 64))
def test_decoder_yields_the_same_lines_as_a_plain_split_and_never_buffers_past_its_limit(
    chunks: list[bytes], max_line: int
) -> None:
    decoder = Decoder(max_line)
    lines: list[bytes] = []
    failed = False
    for chunk in [*chunks, b""]:
        decoder.feed(chunk)
        assert decoder.buffered <= max_line
        try:
            lines.extend(decoder)
        except ProtocolError as exc:
            assert exc.code == "line-too-long"
            assert not failed, "a decoder reports one over-long line, then takes nothing more"
            failed = True
    assert (lines, failed) == reference_lines(b"".join(chunks), max_line)
    assert decoder.closed


@settings(max_examples=100, **RELAXED)
@given(data=st.binary(min_size=1, max_size=300), cuts=st.lists(st.integers(0, 300), max_size=8))
def test_decoder_gives_the_same_lines_however_the_stream_is_split(data: bytes, cuts: list[int]) -> None:
    def run(pieces: list[bytes]) -> tuple[list[bytes], bool]:
        decoder = Decoder(64)
        lines, failed = [], False
        for piece in [*pieces, b""]:
            decoder.feed(piece)
            try:
                lines.extend(decoder)
            except ProtocolError:
                failed = True
        return lines, failed

    marks = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    pieces = [data[a:b] for a, b in zip(marks, marks[1:], strict=False)]
    assert run(pieces) == run([data])


# -- frames --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=6,
)
frame_objects = st.fixed_dictionaries(
    {"type": st.sampled_from(["hello", "say", "message", "welcome", "error", "x"])},
    optional={
        "nick": json_values,
        "text": json_values,
        "token": json_values,
        "version": json_values,
        "seq": json_values,
        "time": json_values,
        "users": json_values,
        "sender": json_values,
    },
)
nasty_lines = st.one_of(
    st.binary(max_size=200),
    frame_objects.map(lambda d: json.dumps(d).encode()),
    st.sampled_from(
        [
            b"[" * 5000,
            b'{"type":"say","text":"x","n":' + b"9" * 5000 + b"}",
            b'{"type":"say","text":"\\ud800"}',
            b'{"type":"hello","nick":"\\udc00x","token":"\\ud83d"}',
            b'{"type":"message","seq":1e999}',
            b'{"type":"message","time":"soon"}',
            b'{"type":"welcome","users":7}',
        ]
    ),
)


@settings(max_examples=400, **RELAXED)
@given(line=nasty_lines)
def test_decoding_anything_raises_nothing_but_protocol_error(line: bytes) -> None:
    for decode in (decode_frame, decode_event):
        try:
            item = decode(line)
        except ProtocolError as exc:
            assert exc.code in {"bad-utf8", "bad-json", "bad-frame"}
            continue
        if isinstance(item, Hello | Say):
            encode(item)  # whatever was accepted can be sent on


events = st.builds(
    Event,
    kind=st.sampled_from(["message", "action", "private", "join", "leave", "nick", "system", "bot", "error"]),
    sender=st.text(max_size=20),
    text=st.text(max_size=200),
    seq=st.integers(0, 2**53),
    time=st.floats(0, 4e9).map(lambda t: round(t, 3)),
    target=st.text(max_size=20),
    code=st.text(max_size=10),
    users=st.lists(st.text(max_size=10), max_size=5).map(tuple),
    history=st.booleans(),
).filter(lambda e: _encodable(e.sender + e.text + e.target + e.code + "".join(e.users)))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=300, **RELAXED)
@given(event=events)
def test_every_event_survives_the_wire_unchanged(event: Event) -> None:
    line = encode(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_event(line[:-1]) == event


# -- the room ------------------------------------------------------------------------------------

nick_like = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "_-.", min_size=1, max_size=MAX_NICK + 2),
    st.sampled_from(["ada", "ADA", "bob", "Bob", "server", "greeter", "x\x1b[2J", "<b>", "", "a b", "é"]),
    st.text(max_size=8),
)
lines_said = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["bye", "Bye!", "/quit", "/quit see you", "/exit", "/who", "/help", "/me", "//x", "hi?"]),
    nick_like.map(lambda n: f"/nick {n}"),
    st.tuples(nick_like, st.text(max_size=20)).map(lambda t: f"/msg {t[0]} {t[1]}"),
    st.text(max_size=20).map(lambda t: f"/me {t}"),
    st.integers(990, 1010).map(lambda n: "y" * n),
)
MEMBERS = range(6)


class RoomMachine(RuleBasedStateMachine):
    """A room driven by arbitrary joins, lines and leaves, checked against a tiny model."""

    @initialize(with_bot=st.booleans(), history=st.integers(0, 5))
    def start(self, with_bot: bool, history: int) -> None:
        self.room = Room(history=history, bot=Greeter() if with_bot else None, clock=lambda: 1.0)
        self.history_size = history
        self.model: dict[int, str] = {}  # member -> nick, as the events tell it
        self.last_seq = 0

    def _check(self, deliveries: list, allowed: set[int]) -> None:
        for d in deliveries:
            if d.event.history:  # replayed to a newcomer: older than everything new
                assert d.event.seq < self.last_seq
            else:
                assert d.event.seq > self.last_seq, "sequence numbers only grow"
                self.last_seq = d.event.seq
            assert d.to is None or set(d.to) <= allowed
            for field in (d.event.sender, _lines(d.event.text), d.event.target):
                assert not any(_unsafe(c) for c in field), "control characters reach a view"

    @rule(member=st.sampled_from(MEMBERS), nick=nick_like)
    def join(self, member: int, nick: str) -> None:
        if member in self.model:
            return
        try:
            out = self.room.join(member, nick)
        except RoomError as exc:
            assert exc.code in {"nick-invalid", "nick-taken"}
            # Nicks clash by skeleton: case, look-alikes (0/o, 1/l) and the reserved ones.
            taken = {skeleton(n) for n in self.model.values()}
            reserved = {skeleton(n) for n in ("server", "system", "admin", "labchat", "you", "greeter")}
            if exc.code == "nick-taken":
                assert skeleton(nick) in taken | reserved
            return
        self.model[member] = check_nick(nick)  # the room keeps nicks composed (NFC)
        self._check(out, set(self.model))
        assert out[0].event.kind == "welcome" and out[0].to == (member,)
        assert list(out[0].event.users) == list(self.model.values())

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), text=lines_said)
    def say(self, data: st.DataObject, text: str) -> None:
        member = data.draw(st.sampled_from(sorted(self.model)))
        before = set(self.model)
        outcome = self.room.say(member, text)
        self._check(outcome.deliveries, before)
        for d in outcome.deliveries:
            e = d.event
            if e.kind == "nick":
                assert self.model[member] == e.sender
                self.model[member] = e.target
            if e.kind == "leave":
                assert outcome.leaving and self.model.pop(member) == e.sender
            if e.kind == "message":
                assert len(e.text) <= MAX_TEXT
        if outcome.leaving:
            assert member not in self.model

    @rule(member=st.sampled_from(MEMBERS), reason=st.text(max_size=20))
    def leave(self, member: int, reason: str) -> None:
        out = self.room.leave(member, reason)
        if member in self.model:
            assert out[0].event.kind == "leave" and out[0].event.sender == self.model.pop(member)
        else:
            assert out == []
        self._check(out, set(self.model))

    @invariant()
    def everyone_listed_once(self) -> None:
        if not hasattr(self, "room"):
            return
        nicks = self.room.nicks()
        assert nicks == list(self.model.values())
        assert len({n.casefold() for n in nicks}) == len(nicks)
        assert all(check_nick(n) for n in nicks)
        assert set(self.room.members()) == set(self.model)
        assert len(self.room.history()) <= self.history_size


RoomMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_room_state_machine = RoomMachine.TestCase


# -- a live server -------------------------------------------------------------------------------


class _Errors(logging.Handler):
    """Collects every log record at ERROR or worse: a traceback means the server met a surprise."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _Watcher:
    """A person on netcat in the room: keeps every byte the server sends them."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=5)
        self.data = bytearray()
        self.sock.recv(4096)  # the banner
        self.sock.sendall(b"watcher\n")
        self.thread = threading.Thread(target=self._run, name="test-watcher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(None)
        try:
            while chunk := self.sock.recv(65536):
                self.data += chunk
        except OSError:  # reset by the server
            pass


@pytest.fixture(scope="module")
def live():
    errors = _Errors()
    logging.getLogger("labchat").addHandler(errors)
    with ChatServer(port=0, bot=True, rate=None, hello_timeout=2.0, max_line=2048) as server:
        host, port = server.address
        sentinel = ChatClient(host, port, nick="sentinel")
        seen: list[Event] = []
        sentinel.on_event(seen.append)
        watcher = _Watcher(host, port)
        sentinel.receive_until(lambda e: e.kind == "join" and e.sender == "watcher")
        yield server, sentinel, seen, watcher, errors
        sentinel.close()
    watcher.thread.join(5)  # the server said goodbye and hung up
    watcher.sock.close()
    logging.getLogger("labchat").removeHandler(errors)


def _json_line(d: dict) -> bytes:
    return json.dumps(d).encode() + b"\n"


hostile_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["\x1b[2J\x1b[H", "<script>alert(1)</script>", "a\x00b", "\u202eevil", "\x9b31m", "bye"]),
)
wire_pieces = st.one_of(
    st.binary(max_size=80),
    st.builds(lambda n: _json_line({"type": "hello", "nick": n}), nick_like),
    st.builds(lambda t: _json_line({"type": "say", "text": t}), hostile_text | lines_said),
    hostile_text.map(lambda t: t.encode("utf-8", "replace") + b"\n"),
    nasty_lines.map(lambda b: b + b"\n"),
    st.just(b"z" * 3000),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pieces=st.lists(wire_pieces, min_size=1, max_size=8), abrupt=st.booleans())
def test_server_survives_arbitrary_traffic_and_keeps_serving(live, pieces: list[bytes], abrupt: bool) -> None:
    server, sentinel, seen, watcher, errors = live
    with socket.create_connection(server.address, timeout=5) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
        except OSError:
            pass  # the server may already have hung up on this client: that is allowed
        if abrupt:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        else:
            try:
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):  # the server finishes with us, then hangs up
                    pass
            except OSError:
                pass
    # the sentinel still chats, and the room holds only who should be there
    sentinel.send("ping")
    sentinel.receive_until(lambda e: e.kind == "message" and e.sender == "sentinel" and e.text == "ping")
    assert wait_until(lambda: server.users() == ["sentinel", "watcher"]), server.users()
    assert not errors.records, errors.records[0].getMessage()
    for event in list(seen):
        for field in (event.sender, _lines(event.text), event.target, *event.users):
            assert not any(_unsafe(c) for c in field), event
    shown = bytes(watcher.data).decode("utf-8")  # a person on netcat gets valid UTF-8 ...
    assert not any(_unsafe(c) for c in shown.replace("\n", "")), shown  # ... and nothing that moves a cursor


def _lines(text: str) -> str:
    """A message's text without the line breaks a multi-line message may keep."""
    return text.replace("\n", "")


def _unsafe(c: str) -> bool:
    return ord(c) < 0x20 or ord(c) == 0x7F or 0x80 <= ord(c) < 0xA0 or c in "\u2028\u2029\u202e"
