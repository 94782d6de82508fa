"""The interactive terminal chat, driven in real pseudo-terminals and read off a pyte screen.

Every process here is a real ``python -m labchat`` in its own pty with
``TERM=xterm`` (prompt_toolkit's full redraw path); what the tests assert is
what a person would see on the screen.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pexpect
import pyte
import pytest
from conftest import listening

from labchat import ChatClient, ChatServer
from labchat.hostaddr import own_addresses
from labchat.protocol import PROTOCOL, Event, encode
from labchat.render import nick_colour

pytestmark = pytest.mark.timeout(120)


class Term:
    """A labchat process in a pty, its output fed to a pyte screen."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cols: int = 100,
        rows: int = 24,
        python: list[str] | None = None,
    ):
        """``python -m labchat ARGS``, or ``python PYTHON...`` when a test drives the terminal its own way."""
        environ = dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm")
        environ.pop("NO_COLOR", None)
        environ.pop("LABCHAT_TOKEN", None)
        environ.update(env or {})
        argv = python if python is not None else ["-m", "labchat", *args]
        self.child = pexpect.spawn(sys.executable, argv, env=environ, dimensions=(rows, cols), timeout=10)
        self.screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.ended = False

    def _pump(self, timeout: float) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self.ended = True
            return
        self.raw += data
        self._stream.feed(data)

    def text(self) -> str:
        return "\n".join(row.rstrip() for row in self.screen.display)

    def rows(self) -> list[str]:
        return [row.rstrip() for row in self.screen.display if row.strip()]

    def wait(self, what: str | Callable[[str], bool], timeout: float = 10.0) -> str:
        """Read output until the screen shows ``what`` (text, or a test of the screen's text)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if what(screen) if callable(what) else what in screen:
                return screen
            left = deadline - time.monotonic()
            if self.ended or left <= 0:
                raise AssertionError(f"the screen never showed {what!r}; it shows:\n{screen}")
            self._pump(min(0.2, left))

    def type(self, keys: str) -> None:
        self.child.send(keys)

    def exit_status(self, timeout: float = 10.0) -> int:
        """Wait for the process to end; its exit status."""
        deadline = time.monotonic() + timeout
        while not self.ended:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running; the screen shows:\n{self.text()}")
            self._pump(0.2)
        self.child.close()
        return self.child.exitstatus

    def kill(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def terms() -> Iterator[Callable[..., Term]]:
    started: list[Term] = []

    def start(*args: str, **kw: object) -> Term:
        term = Term(*args, **kw)
        started.append(term)
        return term

    yield start
    for term in started:
        term.kill()


@pytest.fixture
def room() -> Iterator[ChatServer]:
    with ChatServer("127.0.0.1", 0, bot=False) as server:
        yield server


def where(server: ChatServer) -> str:
    return "{}:{}".format(*server.address)


def serve_port(host: Term) -> str:
    """The real port, from the first line ``labchat serve`` prints on its screen."""
    screen = host.wait(lambda s: listening(s) is not None)
    return str(listening(screen).port)


def test_host_and_two_guests_chat_both_ways_then_leave(terms):
    host = terms("serve", "--port", "0", "--nick", "teacher", "--no-bot")
    port = serve_port(host)
    first = f"labchat: listening on 127.0.0.1:{port}; others join with: labchat join 127.0.0.1:{port}"
    assert host.rows()[0].startswith(first)
    host.wait("teacher>")
    ada = terms("join", f"127.0.0.1:{port}", "--nick", "ada")
    ada.wait("ada>")
    bob = terms("join", f"127.0.0.1:{port}", "--nick", "bob")
    bob.wait("bob>")
    host.wait("--> bob joined")  # the host's own chat shows who comes and goes

    ada.type("hello bob\r")
    bob.wait("ada: hello bob")
    bob.type("hi ada, nice to see you\r")
    ada.wait("bob: hi ada, nice to see you")
    host.type("welcome, both of you\r")
    ada.wait("teacher: welcome, both of you")
    bob.wait("teacher: welcome, both of you")
    host.wait("bob: hi ada, nice to see you")

    ada.type("/msg bob just between us\r")
    bob.wait("[private] ada -> bob: just between us")
    ada.type("bye\r")
    ada.wait("Goodbye, ada!")
    assert ada.exit_status() == 0
    bob.wait("<-- ada left")
    host.wait("<-- ada left")
    assert "just between us" not in host.text()

    bob.type("/nick robert\r")  # the prompt follows the nick
    bob.wait("robert>")
    host.wait("--- bob is now known as robert")
    bob.type("bye\r")
    assert bob.exit_status() == 0
    assert "Goodbye, robert!" in bob.text()
    host.wait("<-- robert left")
    host.type("bye\r")
    assert host.exit_status() == 0
    assert "Goodbye, teacher!" in host.text()
    assert "the room is closed" in host.text()


def test_a_half_typed_line_survives_an_incoming_message(terms, room):
    ada = terms("join", where(room), "--nick", "ada")
    ada.wait("ada>")
    with ChatClient(*room.address, nick="bob") as bob:
        ada.wait("--> bob joined")
        ada.type("half a thou")
        ada.wait("ada> half a thou")
        incoming = "a message in the middle of your typing"
        bob.send(incoming)

        # The message is printed, then the prompt redrawn below it: wait for the settled screen.
        def settled(_: str) -> bool:
            rows = ada.rows()
            return rows[-1] == "ada> half a thou" and rows[-2].endswith(f"bob: {incoming}")

        ada.wait(settled)
        rows = ada.rows()
        assert rows[-1] == "ada> half a thou"  # still there, below the new message
        assert rows[-2].endswith("bob: a message in the middle of your typing")
        cursor = ada.screen.cursor
        assert ada.screen.display[cursor.y].rstrip() == "ada> half a thou"
        assert cursor.x == len("ada> half a thou")

        ada.type("ght\r")  # the rest of the word joins what was typed before
        said = bob.receive_until(lambda e: e.kind == "message" and e.sender == "ada", timeout=5)
        assert said.text == "half a thought"
        ada.type("bye\r")
        assert ada.exit_status() == 0


def test_escape_sequences_sent_through_the_room_arrive_as_harmless_text(terms, room, raw_peer):
    ada = terms("join", where(room), "--nick", "ada")
    ada.wait("ada>")
    eve = raw_peer(room, read_banner=True)  # a person on netcat: raw bytes
    with eve:
        eve.send(b"eve\n")
        ada.wait("--> eve joined")
        eve.send(b"\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b[31mred\x1b[5Aup\n")
        ada.wait("eve: ^[[2J^[[H^[]0;pwned^G^[[31mred^[[5Aup")
    rows = ada.rows()
    assert rows[0].endswith("Welcome, ada! 1 here: ada. Type /help for commands, bye to leave.")
    assert ada.screen.title == ""
    assert b"pwned\x07" not in ada.raw and b"\x1b[2J" not in ada.raw
    ada.type("bye\r")
    assert ada.exit_status() == 0


class FakeServer:
    """A hostile labchat server on 127.0.0.1: it sends whatever events the test writes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.conn, _ = self.listener.accept()
        self.conn.sendall(f"{PROTOCOL} Welcome to labchat!\n".encode())
        reader = self.conn.makefile("rb")
        nick = json.loads(reader.readline())["nick"]
        welcome = Event(kind="welcome", sender=nick, text=f"Welcome, {nick}!", seq=1, time=time.time())
        self.conn.sendall(encode(welcome))
        self.ready.set()

    def send(self, raw: bytes) -> None:
        self.conn.sendall(raw)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def test_the_client_neutralises_escapes_even_when_the_server_does_not(terms):
    fake = FakeServer()
    try:
        ada = terms("join", f"127.0.0.1:{fake.port}", "--nick", "ada", "--reconnect-for", "0")
        assert fake.ready.wait(10)
        ada.wait("ada>")
        # JSON escapes let a server put any control character in any field.
        hostile = {
            "type": "message",
            "sender": "ev\u001b[2Je",
            "text": "\u001b]0;pwned\u0007\u001b[2J\u001b[Hgotcha\u009b31m\r\u0008",
            "seq": 2,
            "time": time.time(),
        }
        fake.send(json.dumps(hostile).encode() + b"\n")
        ada.wait("gotcha")
        assert "ev^[[2Je: ^[]0;pwned^G^[[2J^[[Hgotcha<U+009B>31m^M^H" in ada.text()
        assert ada.rows()[0].endswith("Welcome, ada!")  # the screen was not cleared
        assert ada.screen.title == ""
        assert b"pwned\x07" not in ada.raw and b"\x1b[2J" not in ada.raw

        fake.close()  # and then the connection is lost
        assert ada.exit_status() == 1
        assert "labchat: the server closed the connection" in ada.text()
        assert "Traceback" not in ada.text()
    finally:
        fake.close()


WAYS_OUT = {"bye": "bye\r", "quit": "/quit\r", "ctrl-d": "\x04", "ctrl-c": "\x03"}


@pytest.mark.parametrize("leave", WAYS_OUT.values(), ids=WAYS_OUT.keys())
def test_every_way_out_says_goodbye_and_exits_0(terms, room, leave):
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada")
        ada.wait("ada>")
        ada.type(leave)
        ada.wait("Goodbye, ada!")
        assert ada.exit_status() == 0
        bob.receive_until(lambda e: e.kind == "leave" and e.sender == "ada", timeout=5)


def test_colours_are_stable_per_nick_and_off_with_no_color(terms, room):
    bob_colour = f"\x1b[1;{nick_colour('bob')}m".encode()
    coloured = terms("join", where(room), "--nick", "ada")
    plain = terms("join", where(room), "--nick", "cy", env={"NO_COLOR": "1"})
    flagged = terms("join", where(room), "--nick", "dee", "--no-color")
    for term, nick in ((coloured, "ada"), (plain, "cy"), (flagged, "dee")):
        term.wait(f"{nick}>")
    with ChatClient(*room.address, nick="bob") as bob:
        for term in (coloured, plain, flagged):
            term.wait("--> bob joined")
        bob.send("colour me")
        bob.send("/msg ada a secret")
        for term in (coloured, plain, flagged):
            term.wait("bob: colour me")
        coloured.wait("[private] bob -> ada: a secret")
        coloured.type("/nonsense\r")
        coloured.wait("!!! unknown command /nonsense")
    assert b"\x1b[35m[private] bob -> ada: a secret" in coloured.raw  # private: magenta
    assert b"\x1b[1;31m!!! unknown command" in coloured.raw  # errors: bold red
    assert bob_colour in coloured.raw
    assert b"\x1b[2m--> bob joined" in coloured.raw  # joins and leaves are dim
    for term in (plain, flagged):
        assert bob_colour not in term.raw
        assert re.search(rb"\x1b\[[0-9;]*3[1-6]m", bytes(term.raw)) is None  # no foreground colour at all


def test_ctrl_c_on_the_host_closes_the_room_and_guests_are_told(terms):
    host = terms("serve", "--port", "0", "--nick", "teacher")
    port = serve_port(host)
    host.wait("teacher>")
    ada = terms("join", f"127.0.0.1:{port}", "--nick", "ada")
    ada.wait("ada>")
    host.wait("--> ada joined")
    host.type("\x03")
    assert host.exit_status() == 0
    assert "Goodbye, teacher!" in host.text()
    ada.wait("the server is shutting down")
    assert ada.exit_status() == 1
    assert "labchat: the server closed the connection" in ada.text()


def test_the_hosts_screen_says_where_first_and_shows_incidents_above_the_prompt(terms, raw_peer):
    host = terms("serve", "--host", "0.0.0.0", "--port", "0", "--nick", "teacher", "--max-clients", "1")
    port = serve_port(host)
    host.wait("teacher>")
    rows = host.rows()
    assert rows[0].startswith(f"labchat: listening on 0.0.0.0:{port}; others join with: labchat join ")
    given = rows[0].split("labchat join ", 1)[1].split()[0].rsplit(":", 1)[0]
    assert given in (own_addresses() or (socket.gethostname(),))  # an address, not the wildcard
    assert f"warning: listening on 0.0.0.0:{port} with no token" in rows[1]
    host.type("half typed")
    host.wait("teacher> half typed")
    with raw_peer(("127.0.0.1", int(port))) as late:  # the room is full: refused
        assert b"refused server-full" in late.line()
    host.wait("warning: 127.0.0.1")

    def settled(_: str) -> bool:
        rows = host.rows()
        return rows[-1] == "teacher> half typed" and "the room is full" in rows[-2]

    host.wait(settled)
    host.type("\x03")
    assert host.exit_status() == 0


@pytest.mark.parametrize(
    ("nick", "said"),
    [
        ("1st", "nick '1st' must start with a letter"),
        ("greeter", "the nick 'greeter' is the room's own; please pick another"),  # the bot's
        ("Server", "the nick 'Server' is the room's own; please pick another"),
    ],
)
def test_a_host_nick_the_room_would_refuse_is_a_usage_error_before_serving(terms, nick, said):
    host = terms("serve", "--port", "0", "--nick", nick)
    assert host.exit_status() == 2
    assert f"labchat serve: error: --nick: {said}" in host.text()
    assert "listening" not in host.text()


def test_tab_completes_commands_and_the_nicks_of_people_here(terms, room):
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada")
        ada.wait("ada>")
        ada.type("/ms\t")
        ada.wait("ada> /msg")
        ada.type("bo\t")
        ada.wait("ada> /msg bob")
        ada.type(" psst\r")
        said = bob.receive_until(lambda e: e.kind == "private", timeout=5)
        assert (said.sender, said.target, said.text) == ("ada", "bob", "psst")
        ada.type("bye\r")
        assert ada.exit_status() == 0


# -- messages of several lines, code and mentions ------------------------------------------------

SNIPPET = "def outer(xs):\n    def inner(x):\n        if x:\n            return x * 2\n\n        return 0"


def test_a_code_block_typed_line_by_line_is_one_message(terms, room):
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada")
        ada.wait("ada>")
        for line in ("```python", "def area(r):", "    return 3.14 * r ** 2", "```"):
            ada.type(line + "\r")  # Enter, line by line, as a person types it
        said = bob.receive_until(lambda e: e.kind == "message" and e.sender == "ada", timeout=5)
        assert said.text == "```python\ndef area(r):\n    return 3.14 * r ** 2\n```"
        ada.type("after\r")  # outside the block, Enter sends again
        said = bob.receive_until(lambda e: e.kind == "message" and e.sender == "ada", timeout=5)
        assert said.text == "after"
        ada.type("bye\r")
        assert ada.exit_status() == 0


def test_colour_codes_typed_without_bracketed_paste_are_no_traceback(terms, room):
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada")
        ada.wait("ada>")
        ada.type("hello \x1b[31mred\r")  # what a terminal's colours pasted raw look like
        said = bob.receive_until(lambda e: e.kind == "message" and e.sender == "ada", timeout=5)
        assert said.text.startswith("hello ") and said.text.endswith("red")
        assert "Traceback" not in ada.text() and "Press ENTER" not in ada.text()
        ada.type("bye\r")
        assert ada.exit_status() == 0


def test_a_bracketed_paste_is_one_message_with_its_indentation(terms, room):
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada")
        ada.wait("ada>")
        ada.type("\x1b[200~" + SNIPPET.replace("\n", "\r") + "\x1b[201~")  # as a terminal pastes
        ada.wait("return 0")
        ada.type("\r")
        said = bob.receive_until(lambda e: e.kind == "message" and e.sender == "ada", timeout=5)
        assert said.text == SNIPPET
        # On ada's screen: each line under the first, indented to where the text starts.
        ada.wait(lambda _: any(row.endswith("ada: def outer(xs):") for row in ada.rows()))
        rows = ada.rows()
        first = next(i for i, row in enumerate(rows) if row.endswith("ada: def outer(xs):"))
        indent = " " * len("12:34 ada: ")
        assert rows[first + 1 : first + 5] == [
            indent + "    def inner(x):",
            indent + "        if x:",
            indent + "            return x * 2",
            indent + "        return 0",  # (the blank line is not among the non-empty rows)
        ]
        ada.type("bye\r")
        assert ada.exit_status() == 0


def test_esc_enter_starts_a_new_line_and_enter_sends_them_together(terms, room):
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada")
        ada.wait("ada>")
        ada.type("for x in xs:\x1b\r")  # Esc Enter; Alt Enter sends the same two bytes
        ada.type("    print(x)")
        ada.wait("print(x)")
        rows = ada.rows()
        assert rows[-2:] == ["ada> for x in xs:", "....     print(x)"]  # the prompt, then its continuation
        ada.type("\r")
        said = bob.receive_until(lambda e: e.kind == "message" and e.sender == "ada", timeout=5)
        assert said.text == "for x in xs:\n    print(x)"
        ada.type("bye\r")
        assert ada.exit_status() == 0


def test_a_mention_is_bold_and_rings_the_bell_of_the_one_mentioned(terms, room):
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada")
        ada.wait("ada>")
        bob.send("nothing for ada here")
        ada.wait("bob: nothing for ada here")
        assert b"\x07" not in ada.raw
        bob.send("@ada look at this")
        ada.wait("bob: @ada look at this")
        assert b"\x1b[1m@ada\x1b[22m look at this" in ada.raw
        assert b"\x07" in ada.raw
        ada.type("bye\r")
        assert ada.exit_status() == 0


# The terminal face in quiet mode, as ``labchat join --quiet`` runs it.
QUIET_CHAT = """
import sys
from labchat import ChatClient
from labchat.terminal import TerminalChat
client = ChatClient(sys.argv[1], int(sys.argv[2]), nick="ada")
sys.exit(TerminalChat(client, color=True, quiet=True).run())
"""


def test_a_quiet_chat_shows_the_mention_without_the_bell(terms, room):
    with ChatClient(*room.address, nick="bob") as bob:
        host, port = room.address
        ada = terms(python=["-c", QUIET_CHAT, host, str(port)])
        ada.wait("ada>")
        bob.send("@ada look at this")
        ada.wait("bob: @ada look at this")
        assert b"\x1b[1m@ada\x1b[22m look at this" in ada.raw
        assert b"\x07" not in ada.raw
        ada.type("bye\r")
        assert ada.exit_status() == 0


def test_code_from_the_room_is_highlighted_in_colour(terms, room):
    pytest.importorskip("pygments")
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada")
        ada.wait("ada>")
        bob.send("```python\ndef f():\n    return 1\n```")
        ada.wait("return 1")
        assert b"\x1b[94mdef\x1b[39;49;00m" in ada.raw  # a keyword, in the terminal's own colours
        rows = ada.rows()
        at = next(i for i, row in enumerate(rows) if row.endswith("bob: ```python"))
        indent = " " * len("12:34 bob: ")
        assert rows[at + 1 : at + 4] == [indent + "def f():", indent + "    return 1", indent + "```"]
        ada.type("bye\r")
        assert ada.exit_status() == 0


def test_tab_offers_the_operator_commands_to_whoever_gave_the_operator_token(terms, room):
    room.op_token = "owl-op"
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada")
        ada.wait("ada>")
        ada.type("/ki\tx")  # a member: no /kick to complete
        ada.wait(lambda _: ada.rows()[-1] == "ada> /kix")
        ada.type("\rbye\r")
        assert ada.exit_status() == 0
        cy = terms("join", where(room), "--nick", "cy", "--op-token", "owl-op")
        cy.wait("cy>")
        cy.type("/ki\t")
        cy.wait("cy> /kick")
        cy.type("bo\t")
        cy.wait("cy> /kick bob")
        cy.type(" enough\r")
        assert bob.receive_until(lambda e: e.kind == "error", timeout=5).code == "kicked"
        cy.type("bye\r")
        assert cy.exit_status() == 0


def test_tab_completes_an_at_nick(terms, room):
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada")
        ada.wait("ada>")
        ada.type("thanks @b\t")
        ada.wait("ada> thanks @bob")
        ada.type("!\r")
        said = bob.receive_until(lambda e: e.kind == "message" and e.sender == "ada", timeout=5)
        assert said.text == "thanks @bob!"
        ada.type("bye\r")
        assert ada.exit_status() == 0


def test_join_wire_shows_the_lines_above_the_prompt_as_they_travel(terms, room):
    with ChatClient(*room.address, nick="bob") as bob:
        ada = terms("join", where(room), "--nick", "ada", "--wire")
        ada.wait("ada>")
        assert any(row.startswith("<- labchat/1 Welcome") for row in ada.rows())
        ada.type("hello\r")
        ada.wait('-> {"type":"say","text":"hello"}')
        ada.wait(
            lambda _: any(
                row.startswith('<- {"type":"message","sender":"ada","text":"hello"') for row in ada.rows()
            )
        )
        bob.send("\x1b[2J hi")  # the room makes the escape inert before anyone sees it
        ada.wait(lambda _: any('"text":"^[[2J hi"' in row for row in ada.rows()))
        ada.type("bye\r")
        assert ada.exit_status() == 0
