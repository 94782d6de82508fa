"""Messages that carry code: several lines on the wire, in the room, on netcat and in a piped join.

The conversation's ``` blocks are checked in memory, byte for byte; the rest
runs through real sockets on both engines (the ``server`` fixtures), with
programs (ChatClient, or a raw JSON peer) and people on netcat side by side.
"""

from __future__ import annotations

import re
import socket
import subprocess

import pytest
from conftest import LABCHAT, WAIT, environ

from labchat.conversation import CLOSED, NEED_DATA, Invalid, ServerConversation
from labchat.protocol import MAX_LINES, MAX_TEXT, Hello, Say
from labchat.room import Room, RoomError, clean_text

SNIPPET = (
    "def outer(xs):\n"
    "    def inner(x):\n"
    "        if x:\n"
    "            return x * 2\n"
    "\n"
    "        return 0\n"
    "    return [inner(x) for x in xs]"
)


def said(sender: str):
    """A test for ``receive_until``: a message from ``sender``."""
    return lambda e: e.kind == "message" and e.sender == sender


# -- the room's rule for a message's shape -----------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (SNIPPET, SNIPPET),
        ("\n\n  \n" + SNIPPET + "\n\n   \n", SNIPPET),  # blank lines around it go
        ("    indented first\n  second", "    indented first\n  second"),  # the first line keeps its spaces
        ("   one line alone   ", "one line alone"),
        ("a\r\nb\r\n", "a\nb"),
        ("a\n\n\nb", "a\n\n\nb"),  # inner blank lines stay
        ("\tx = 1\n\tif x:\n\t\tpass", "    x = 1\n    if x:\n        pass"),  # tab stops of 4
    ],
)
def test_a_message_keeps_its_lines_and_indentation(sent: str, kept: str) -> None:
    assert clean_text(sent) == kept


def test_controls_inside_a_message_of_several_lines_are_neutralised_line_by_line() -> None:
    text = "one\n\x1b[2Jtwo\rthree\u202e\n\x07\x9b"
    assert clean_text(text) == "one\n^[[2Jtwo^Mthree<U+202E>\n^G<U+009B>"


def test_a_message_may_hold_max_text_characters_and_max_lines_lines() -> None:
    assert clean_text("x" * MAX_TEXT) == "x" * MAX_TEXT
    assert clean_text("\n".join("x" * MAX_LINES)) == "\n".join("x" * MAX_LINES)
    with pytest.raises(RoomError, match=f"message too long: {MAX_TEXT + 1} characters, limit {MAX_TEXT}"):
        clean_text("x" * (MAX_TEXT - 1) + "\x1b")  # counted once made safe: ESC is two characters, ^[
    with pytest.raises(
        RoomError, match=f"message too long: {MAX_LINES + 1} lines, limit {MAX_LINES}"
    ) as caught:
        clean_text("\n".join("x" * (MAX_LINES + 1)))
    assert caught.value.code == "text-too-long"


# -- netcat's ``` blocks, in memory ------------------------------------------------------------


def person(nick: bytes = b"cy") -> ServerConversation:
    """A server conversation with a person on netcat, joined."""
    conversation = ServerConversation()
    conversation.banner("hi")
    conversation.receive_data(nick + b"\n")
    assert conversation.next_event() == Hello(nick=nick.decode())
    conversation.joined()
    return conversation


def everything(conversation: ServerConversation) -> list:
    out = []
    while (event := conversation.next_event()) is not NEED_DATA and event is not CLOSED:
        out.append(event)
    return out


def fenced(*lines: str) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


def test_a_block_between_fence_lines_is_one_say_with_its_fences() -> None:
    cy = person()
    cy.receive_data(fenced("before", "```python", "def f():", "", "    return 1", "```", "after"))
    assert everything(cy) == [
        Say(text="before"),
        Say(text="```python\ndef f():\n\n    return 1\n```"),
        Say(text="after"),
    ]


def test_nothing_is_said_while_a_block_is_open() -> None:
    cy = person()
    cy.receive_data(fenced("```", "bye", "/quit", "```python"))  # inside a block these are just lines
    assert cy.next_event() is NEED_DATA and cy.in_block
    cy.receive_data(b" ``` \r\n")  # the closing fence, with spaces and a CR around it
    assert cy.next_event() == Say(text="```\nbye\n/quit\n```python\n```")
    assert not cy.in_block


def test_a_block_split_at_every_byte_offset_is_still_one_say() -> None:
    data = fenced("``` js ", "let x = 1;", "```") + b"ok\n"
    for cut in range(1, len(data)):  # (feeding b"" would mean the peer hung up)
        cy = person()
        cy.receive_data(data[:cut])
        first = everything(cy)
        cy.receive_data(data[cut:])
        assert first + everything(cy) == [Say(text="```js\nlet x = 1;\n```"), Say(text="ok")]


def test_only_a_line_of_backticks_and_a_language_opens_a_block() -> None:
    cy = person()
    cy.receive_data(fenced("```js is odd", "``x``", "`", "````"))
    assert everything(cy) == [Say(text="```js is odd"), Say(text="``x``"), Say(text="`"), Say(text="````")]


@pytest.mark.parametrize(
    ("lines", "size"),
    [
        (["x"] * (MAX_LINES - 2), None),  # with its two fences: MAX_LINES lines
        (["x"] * (MAX_LINES - 1), "201 lines, limit 200"),
        (["y" * (MAX_TEXT - 8)], None),  # "```\n" + the line + "\n```": MAX_TEXT characters
        (["y" * (MAX_TEXT - 7)], "over 4000 characters"),
    ],
)
def test_a_block_is_bounded_like_any_message(lines: list[str], size: str | None) -> None:
    cy = person()
    cy.receive_data(fenced("```", *lines, "more", "```", "after") if size else fenced("```", *lines, "```"))
    events = everything(cy)
    if size is None:
        (say,) = events
        assert say.text == "\n".join(["```", *lines, "```"])
        assert clean_text(say.text) == say.text  # and the room takes what the block holds
        return
    # Refused in place the moment it is too long; the rest of the block is dropped, then chat goes on.
    assert events == [
        Invalid(
            "text-too-long", f"message too long: {size}; this ``` block is dropped, up to its closing ```"
        ),
        Say(text="after"),
    ]


def test_a_broken_line_inside_a_block_drops_the_block() -> None:
    cy = person()
    cy.receive_data(fenced("```", "fine") + b"caf\xe9\n" + fenced("also dropped", "```", "after"))
    events = everything(cy)
    assert [type(e) for e in events] == [Invalid, Say]
    assert events[0].code == "bad-utf8" and events[1] == Say(text="after")


def test_a_block_still_open_when_the_person_hangs_up_is_said_closed() -> None:
    cy = person()
    cy.receive_data(fenced("```python", "print(1)") + b"print(2)")  # no closing fence, no last newline
    assert cy.next_event() is NEED_DATA
    cy.receive_data(b"")
    assert cy.next_event() == Say(text="```python\nprint(1)\nprint(2)\n```")
    assert cy.next_event() is CLOSED


def test_a_dropped_block_still_open_at_the_end_stays_dropped() -> None:
    cy = person()
    cy.receive_data(fenced("```", "fine") + b"caf\xe9\n" + fenced("more"))
    cy.receive_data(b"")
    events = everything(cy)
    assert [type(e) for e in events] == [Invalid] and events[0].code == "bad-utf8"
    assert cy.next_event() is CLOSED


def test_a_program_sends_its_lines_in_one_frame_and_fences_mean_nothing_to_json() -> None:
    server = ServerConversation()
    server.banner("hi")
    server.receive_data(b'{"type":"hello","nick":"ada"}\n')
    server.next_event()
    server.joined()
    server.receive_data(b'{"type":"say","text":"```"}\n{"type":"say","text":"a\\n  b"}\n')
    assert everything(server) == [Say(text="```"), Say(text="a\n  b")]


def test_the_room_keeps_a_fenced_block_as_one_message() -> None:
    room = Room(clock=lambda: 1.0)
    room.join("c", "cy")
    (delivery,) = room.say("c", "```python\n" + SNIPPET + "\n```").deliveries
    assert (delivery.event.kind, delivery.event.text) == ("message", "```python\n" + SNIPPET + "\n```")


# -- through real sockets, on both engines ---------------------------------------------------------


def netcat(raw, nick: str):
    """A person on netcat in the room, past the greeting."""
    peer = raw()
    peer.line()  # the banner
    peer.send(f"{nick}\n")
    peer.line_with(f"--> {nick} joined".encode())
    return peer


def test_a_snippet_arrives_exactly_for_programs_and_line_by_line_on_netcat(connect, raw) -> None:
    ada, bob = connect("ada"), connect("bob")
    cy = netcat(raw, "cy")
    ada.send("\n" + SNIPPET + "\n\n")
    assert bob.receive_until(said("ada"), timeout=WAIT).text == SNIPPET
    first = cy.line_with(b"ada: ")
    rest = [cy.text() for _ in range(SNIPPET.count("\n"))]
    assert [first.decode(), *rest] == [
        "ada: def outer(xs):",
        "ada|     def inner(x):",
        "ada|         if x:",
        "ada|             return x * 2",
        "ada|",
        "ada|         return 0",
        "ada|     return [inner(x) for x in xs]",
    ]


def test_a_message_of_4000_four_byte_characters_fits_and_one_more_does_not(connect, raw) -> None:
    bob = connect("bob")
    eve = raw()
    eve.hello("eve")
    eve.say("👋" * MAX_TEXT)  # json.dumps escapes each as a surrogate pair: a 48 KB line
    assert bob.receive_until(said("eve"), timeout=WAIT).text == "👋" * MAX_TEXT
    eve.say("👋" * (MAX_TEXT + 1))
    error = eve.event_until(lambda e: e["type"] == "error")
    assert (error["code"], error["text"]) == (
        "text-too-long",
        "message too long: 4001 characters, limit 4000",
    )
    eve.say("\n".join(["line"] * (MAX_LINES + 1)))
    error = eve.event_until(lambda e: e["type"] == "error")
    assert (error["code"], error["text"]) == ("text-too-long", "message too long: 201 lines, limit 200")
    eve.say("still here")
    assert bob.receive_until(said("eve"), timeout=WAIT).text == "still here"


def test_a_fenced_block_from_netcat_reaches_everyone_as_one_message(connect, raw) -> None:
    bob = connect("bob")
    cy = netcat(raw, "cy")
    cy.send("```python\n")
    cy.send("def f():\n\n    return 1\n")  # in pieces, as a person types or pastes
    cy.send("bye\n```\nafter\n")  # "bye" inside the block is code, not a goodbye
    block = bob.receive_until(said("cy"), timeout=WAIT)
    assert block.text == "```python\ndef f():\n\n    return 1\nbye\n```"
    assert bob.receive_until(said("cy"), timeout=WAIT).text == "after"  # nothing in between
    assert cy.line_with(b"cy: ```python") == b"cy: ```python"
    assert [cy.text() for _ in range(5)] == ["cy| def f():", "cy|", "cy|     return 1", "cy| bye", "cy| ```"]


def test_a_block_piped_into_netcat_without_its_closing_fence_still_arrives(connect, raw) -> None:
    bob = connect("bob")
    cy = netcat(raw, "cy")
    cy.send("```python\nprint(1)\n\nprint(2)\n")  # `cat prog.py | nc -q0`, the fence forgotten
    cy.sock.shutdown(socket.SHUT_WR)
    block = bob.receive_until(said("cy"), timeout=WAIT)
    assert block.text == "```python\nprint(1)\n\nprint(2)\n```"
    assert bob.receive_until(lambda e: e.kind == "leave", timeout=WAIT).sender == "cy"


def test_a_block_too_long_from_netcat_is_refused_and_the_chat_goes_on(connect, raw) -> None:
    bob = connect("bob")
    cy = netcat(raw, "cy")
    cy.send("```\n" + "x\n" * (MAX_LINES + 50) + "```\nafter the block\n")
    refusal = cy.line_with(b"!!! ")
    assert (
        refusal
        == b"!!! message too long: 201 lines, limit 200; this ``` block is dropped, up to its closing ```"
    )
    assert bob.receive_until(said("cy"), timeout=WAIT).text == "after the block"


@pytest.mark.parametrize(
    "bad, error",
    [
        (b"    print('caf\xe9')\n", b"!!! invalid UTF-8 at byte 14"),
        (b"x" * 50_000 + b"\n", b"!!! line too long: 50000 bytes, limit 49152"),
    ],
    ids=["invalid-utf8", "line-too-long"],
)
def test_a_bad_line_inside_a_block_from_netcat_says_the_block_is_dropped(connect, raw, bad, error) -> None:
    bob = connect("bob")
    cy = netcat(raw, "cy")
    cy.send(b"```python\nfor i in range(3):\n" + bad + b"    print(i)\n```\nafter the block\n")
    assert cy.line_with(b"!!! ") == error + b"; this ``` block is dropped, up to its closing ```"
    assert bob.receive_until(said("cy"), timeout=WAIT).text == "after the block"  # nothing of the block


def test_controls_inside_multi_line_text_arrive_neutralised(connect, raw) -> None:
    bob = connect("bob")
    cy = netcat(raw, "cy")
    eve = raw()
    eve.hello("eve")
    eve.say("one\n\x1b[2J\x1b]0;pwned\x07two\r\n\tthree\rfour\u202e\n\x9b5A")
    expected = "one\n^[[2J^[]0;pwned^Gtwo\n    three^Mfour<U+202E>\n<U+009B>5A"
    assert bob.receive_until(said("eve"), timeout=WAIT).text == expected
    lines = [cy.line_with(b"eve: ")] + [cy.line() for _ in range(3)]
    assert lines == [
        b"eve: one",
        b"eve| ^[[2J^[]0;pwned^Gtwo",
        b"eve|     three^Mfour<U+202E>",
        b"eve| <U+009B>5A",
    ]
    for line in lines:  # nothing that could move a netcat user's cursor
        assert not any(b < 0x20 or b == 0x7F for b in line), line


def test_a_piped_join_sends_one_message_a_line_and_prints_others_lines_indented(server, connect) -> None:
    bob = connect("bob")
    proc = subprocess.Popen(
        [*LABCHAT, "join", "{}:{}".format(*server.address), "--nick", "ada", "--reconnect-for", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ(),
    )
    try:
        assert "Welcome, ada!" in proc.stdout.readline()
        proc.stdin.write("first\n```\n    code\n```\n")
        proc.stdin.flush()
        got = [bob.receive_until(said("ada"), timeout=WAIT).text for _ in range(4)]
        assert got == ["first", "```", "code", "```"]  # one line, one message (trimmed as any message)
        bob.send("two lines\n    the second indented")
        bob.receive_until(said("bob"), timeout=WAIT)
        out, err = proc.communicate("bye\n", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if re.fullmatch(r"\d\d:\d\d bob: two lines", line))
    assert lines[at + 1] == " " * len("00:00 bob: ") + "    the second indented"
    assert "\x1b" not in out
