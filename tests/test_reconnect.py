"""Reconnecting: a client whose connection drops gets back in, catches up with ``since``, says so.

Everything runs over real sockets on 127.0.0.1. A server is "restarted" by closing it and
starting another on the same port. Where a test must cut one side of a link only (the
server's end left open, as when a laptop sleeps), the client talks through a ``Relay``;
where the exact events matter, through a ``ScriptedServer`` that plays them. The panel is
driven by value, and ``labchat join`` runs in a real pty and through real pipes.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from test_terminal import Term

import labchat.client
from labchat import ChatClient, ChatServer, ConnectionClosed, Event
from labchat.client import Reconnecting
from labchat.protocol import PROTOCOL, encode
from labchat.widgets import join, live_panels

WAIT = 5.0  # seconds any one wait may take


def notice(code: str) -> Callable[[Event], bool]:
    return lambda e: e.kind == "system" and e.code == code


def message_from(nick: str) -> Callable[[Event], bool]:
    return lambda e: e.kind == "message" and e.sender == nick


def events_until(client: ChatClient, match: Callable[[Event], bool]) -> list[Event]:
    """Every event up to and including the first that matches."""
    seen = [client.receive(timeout=WAIT)]
    while not match(seen[-1]):
        seen.append(client.receive(timeout=WAIT))
    return seen


class Ends:
    """Records a client's on_close calls."""

    def __init__(self, client: ChatClient) -> None:
        self.reasons: list[str] = []
        self.done = threading.Event()
        client.on_close(self._record)

    def _record(self, reason: str) -> None:
        self.reasons.append(reason)
        self.done.set()


# -- a relay between client and server, to cut one side of a link -------------------------


class Link:
    def __init__(self, client_side: socket.socket, server_side: socket.socket) -> None:
        self.client_side, self.server_side = client_side, server_side
        self.down = b""  # everything the server sent through this link
        self.stale = False  # one side was cut on purpose: leave the other as it is
        self.up: threading.Thread | None = None  # the thread reading the client's side


class Relay:
    """A TCP relay on 127.0.0.1 to ``target``; each connection through it is a ``Link``.

    An end of stream on one side is passed on to the other, unless a test has cut the
    link with ``cut_client`` / ``reset_client`` (the server's side then stays open: a
    session the server still believes in) or ``cut_server``. While ``refusing`` is set,
    connections are closed as soon as they are accepted.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.links: list[Link] = []
        self.refusing = False
        self.changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept, "relay-accept")

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                conn.close()
                continue
            link = Link(conn, socket.create_connection(self.target))
            with self.changed:
                self.links.append(link)
                self.changed.notify_all()
            link.up = self._spawn(self._pump, "relay-up", link, conn, link.server_side, False)
            self._spawn(self._pump, "relay-down", link, link.server_side, conn, True)

    def _pump(self, link: Link, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if downstream:
                with self.changed:
                    link.down += data
                    self.changed.notify_all()
            try:
                dst.sendall(data)
            except OSError:
                break
        if not link.stale:
            _shutdown(dst, socket.SHUT_WR)

    def wait(self, match: Callable[[], bool], timeout: float = WAIT) -> None:
        with self.changed:
            assert self.changed.wait_for(match, timeout), "the relay never saw what was awaited"

    def cut_client(self, n: int) -> None:
        """End link ``n`` for the client (end of stream); the server's side stays open."""
        link = self.links[n]
        link.stale = True
        _shutdown(link.client_side, socket.SHUT_RDWR)

    def reset_client(self, n: int) -> None:
        """Reset link ``n`` for the client (RST: "connection reset by peer"); the server's side stays."""
        link = self.links[n]
        link.stale = True
        link.client_side.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        _shutdown(link.client_side, socket.SHUT_RD)  # wakes its reader: a socket in use is not closed
        link.up.join(WAIT)
        link.client_side.close()  # and with no lingering, closing sends the reset

    def cut_server(self, n: int) -> None:
        """End link ``n`` for the server: it sees its client go."""
        link = self.links[n]
        link.stale = True
        _shutdown(link.server_side, socket.SHUT_RDWR)

    def close(self) -> None:
        _shutdown(self.listener, socket.SHUT_RDWR)
        self.listener.close()
        for link in self.links:
            for side in (link.client_side, link.server_side):
                _shutdown(side, socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(WAIT)
        for link in self.links:
            link.client_side.close()
            link.server_side.close()


def _shutdown(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


@pytest.fixture
def relay(server: ChatServer) -> Iterator[Relay]:
    between = Relay(server.address)
    yield between
    between.close()


# -- a server that plays a script, for exact events ----------------------------------------

HOLD = "hold"  # a script's last step: keep the connection open until the server is closed


class ScriptedServer:
    """Plays one script per connection, in order: after the client's hello, the events given.

    A script ends by closing the connection, or with HOLD by keeping it open. Each hello
    received is kept, parsed, in ``hellos``.
    """

    def __init__(self, *scripts: list[Event | str]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.hellos: list[dict] = []
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(scripts,), name="scripted", daemon=True)
        self._thread.start()

    def _serve(self, scripts: tuple[list[Event | str], ...]) -> None:
        for script in scripts:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as reader:
                conn.sendall(f"{PROTOCOL} Welcome to a scripted room.\n".encode())
                self.hellos.append(json.loads(reader.readline()))
                for step in script:
                    if step == HOLD:
                        self._release.wait()
                    else:
                        conn.sendall(encode(step))

    def close(self) -> None:
        self._release.set()
        _shutdown(self.listener, socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join(WAIT)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    started: list[ScriptedServer] = []

    def start(*scripts: list[Event | str]) -> ScriptedServer:
        fake = ScriptedServer(*scripts)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.close()


def ev(kind: str, seq: int, **fields: object) -> Event:
    return Event(kind=kind, seq=seq, time=time.time(), **fields)


def welcome(seq: int, nick: str = "ada") -> Event:
    return ev("welcome", seq, sender=nick, text=f"Welcome, {nick}!", users=(nick,))


# -- a server restarted on the same port ---------------------------------------------------


def test_a_server_restarted_on_the_same_port_is_rejoined_and_the_chat_goes_on(make_server, connect):
    first = make_server(bot=False)
    port = first.address[1]
    ada = connect("ada", server=first, reconnect=True)
    ends = Ends(ada)
    ada.receive_until(lambda e: e.kind == "join")

    first.close(restarting=True)
    lost = ada.receive_until(notice("reconnecting"), timeout=WAIT)
    assert lost.text == "connection lost (the server closed the connection); reconnecting..."
    assert not ada.connected and ada.reconnecting
    with pytest.raises(Reconnecting, match="not sent: the connection was lost; reconnecting..."):
        ada.send("anyone?")

    second = make_server(port=port, bot=False)
    back = ada.receive_until(notice("reconnected"), timeout=WAIT)
    assert back.text == "reconnected; 0 missed events replayed"  # a new room has no past
    assert ada.connected and not ada.reconnecting and ada.reconnects == 1
    assert ada.receive(timeout=WAIT).kind == "join"  # her own, in the new room
    bob = connect("bob", server=second)
    ada.send("back again")
    assert bob.receive_until(message_from("ada"), timeout=WAIT).text == "back again"
    assert ada.receive_until(lambda e: e.kind == "message", timeout=WAIT).text == "back again"
    assert ada.users == ["ada", "bob"] and second.users() == ["ada", "bob"]
    assert ends.reasons == []  # not the end: on_close waits for the real one

    ada.close()
    assert ends.done.wait(WAIT) and ends.reasons == ["you left the chat"]
    assert not ada._receiver.is_alive()


def test_what_a_restarted_room_said_before_the_client_is_back_is_shown_to_it(make_server, connect):
    first = make_server(bot=False)
    port = first.address[1]
    between = Relay(first.address)  # to keep ada out until the new room has spoken
    try:
        ada = ChatClient(*between.address, nick="ada", timeout=WAIT, reconnect=True)
        for n in range(8):  # her last seq is well past what the new room will have numbered
            ada.send(f"old {n}")
        ada.receive_until(lambda e: e.text == "old 7", timeout=WAIT)
        between.refusing = True
        first.close(restarting=True)
        ada.receive_until(notice("reconnecting"), timeout=WAIT)
        second = make_server(port=port, bot=False)
        bob = connect("bob", server=second)
        bob.send("said before ada is back")
        bob.receive_until(message_from("bob"), timeout=WAIT)
        between.refusing = False
        back = events_until(ada, notice("reconnected"))
        shown = [(e.text, e.history) for e in back if e.kind == "message"]
        assert shown == [("said before ada is back", True)]
        ada.close()
    finally:
        between.close()


def test_history_missed_while_away_is_replayed_marked_and_nothing_twice(relay, connect):
    ada = ChatClient(*relay.address, nick="ada", timeout=WAIT, reconnect=True)
    try:
        bob = connect("bob")
        bob.send("before")
        ada.receive_until(lambda e: e.text == "before", timeout=WAIT)

        relay.refusing = True  # ada cannot get back in until the test says so
        ada._sock.shutdown(socket.SHUT_RDWR)  # the link drops under her
        ada.receive_until(notice("reconnecting"), timeout=WAIT)
        bob.receive_until(lambda e: e.kind == "leave" and e.sender == "ada", timeout=WAIT)
        bob.send("while away 1")
        bob.send("while away 2")
        bob.receive_until(lambda e: e.text == "while away 2", timeout=WAIT)

        relay.refusing = False
        replay = events_until(ada, notice("reconnected"))
        assert [(e.text, e.history) for e in replay if e.kind == "message"] == [
            ("while away 1", True),
            ("while away 2", True),
        ]
        assert all(e.history for e in replay[:-1])
        missed = len(replay) - 1
        assert replay[-1].text == f"reconnected; {missed} missed event{'s' if missed != 1 else ''} replayed"
        live = ada.receive(timeout=WAIT)
        assert (live.kind, live.sender, live.history) == ("join", "ada", False)
        bob.send("after")
        rest = events_until(ada, lambda e: e.text == "after")
        assert [e.text for e in rest if e.kind == "message"] == ["after"]
        assert ada.users == ["bob", "ada"]
    finally:
        ada.close()


def test_what_is_too_old_to_replay_is_said_once_before_the_rest(make_server, connect):
    room = make_server(bot=False, replay=2)
    between = Relay(room.address)
    ada = ChatClient(*between.address, nick="ada", timeout=WAIT, reconnect=True)
    try:
        bob = connect("bob", server=room)
        ada.receive_until(lambda e: e.kind == "join" and e.sender == "bob", timeout=WAIT)
        between.refusing = True
        ada._sock.shutdown(socket.SHUT_RDWR)
        ada.receive_until(notice("reconnecting"), timeout=WAIT)
        bob.receive_until(lambda e: e.kind == "leave" and e.sender == "ada", timeout=WAIT)
        for text in ("m1", "m2", "m3"):  # after her own leave: four public events, two kept
            bob.send(text)
        bob.receive_until(lambda e: e.text == "m3", timeout=WAIT)
        between.refusing = False
        replay = events_until(ada, notice("reconnected"))
        assert [(e.code, e.text) for e in replay[:1]] == [
            ("history-gap", "2 earlier events were missed while you were away: too old to replay.")
        ]
        assert [(e.text, e.history) for e in replay[1:-1]] == [("m2", True), ("m3", True)]
        assert replay[-1].text == "reconnected; 2 missed events replayed"
        assert ada.receive(timeout=WAIT).kind == "join"
    finally:
        ada.close()
        between.close()


def test_a_stale_session_holding_the_nick_is_waited_out(relay, connect):
    ada = ChatClient(*relay.address, nick="ada", timeout=WAIT, reconnect=True)
    try:
        bob = connect("bob")
        relay.reset_client(0)  # reset for ada; the server still holds her old session
        lost = ada.receive_until(notice("reconnecting"), timeout=WAIT)
        assert lost.text == "connection lost (Connection reset by peer); reconnecting..."

        # Her new hello is refused, nick taken by her old self; she tries again, and again.
        relay.wait(lambda: len(relay.links) >= 3 and b'"nick-taken"' in relay.links[2].down)
        assert ada.reconnecting and bob.users == ["ada", "bob"]
        relay.cut_server(0)  # the server notices the old session is gone
        bob.receive_until(lambda e: e.kind == "leave" and e.sender == "ada", timeout=WAIT)
        ada.receive_until(notice("reconnected"), timeout=3 * WAIT)
        assert ada.connected and ada.reconnects == 1 and ada.nick == "ada"
        ada.send("I am back")
        assert bob.receive_until(message_from("ada"), timeout=WAIT).text == "I am back"
    finally:
        ada.close()


def test_a_link_that_drops_every_rejoin_at_once_is_tried_ever_more_slowly(scripted):
    # Every connection is let in (a welcome) and dropped at once: one run of trouble, whose
    # waits go on growing (0.25, 0.5, 1, 2 s, each jittered to between half and all of it)
    # instead of starting again at 0.25 s after every rejoin.
    fake = scripted(*[[welcome(seq), ev("join", seq + 1, sender="ada")] for seq in range(1, 200, 2)])
    back: list[float] = []
    fourth = threading.Event()

    def note(event: Event) -> None:
        if event.kind == "system" and event.code == "reconnected":
            back.append(time.monotonic())
            if len(back) == 4:
                fourth.set()

    ada = ChatClient(*fake.address, nick="ada", timeout=WAIT, reconnect=True, reconnect_for=60)
    ada.on_event(note)
    assert fourth.wait(WAIT), f"{len(back)} rejoins in {WAIT:g} s"
    gaps = [b - a for a, b in zip(back, back[1:], strict=False)]
    assert gaps[0] >= 0.25 and gaps[1] >= 0.5 and gaps[2] >= 1.0, gaps
    ada.close()


def test_a_quick_drop_after_a_long_way_back_is_still_tried_again(scripted):
    # Dropped, then two tries refused (an empty script: the connection closes before any
    # welcome), then in and dropped at once: most of reconnect_for is gone, yet the next
    # drop has a window of its own, and the client gets back in.
    fake = scripted([welcome(1)], [], [], [welcome(3)], [welcome(5), ev("message", 6, text="in"), HOLD])
    ada = ChatClient(*fake.address, nick="ada", timeout=WAIT, reconnect=True, reconnect_for=2.0)
    try:
        assert ada.receive_until(lambda e: e.text == "in", timeout=3 * WAIT).kind == "message"
        assert ada.connected and ada.reconnects == 2
    finally:
        ada.close()


# -- since, and nothing twice, event by event ----------------------------------------------


def test_hello_carries_since_and_events_seen_before_are_dropped(scripted):
    fake = scripted(
        [welcome(5), ev("message", 6, sender="bob", text="one"), ev("message", 7, sender="bob", text="two")],
        [
            welcome(10),
            ev("message", 6, sender="bob", text="one", history=True),
            ev("message", 7, sender="bob", text="two", history=True),
            ev("message", 8, sender="bob", text="three", history=True),
            ev("message", 9, sender="bob", text="four", history=True),
            ev("join", 11, sender="ada"),
            ev("message", 11, sender="bob", text="a duplicate seq"),
            ev("message", 12, sender="bob", text="live"),
            HOLD,
        ],
    )
    with ChatClient(*fake.address, nick="ada", timeout=WAIT, reconnect=True) as ada:
        assert "since" not in fake.hellos[0]
        first = events_until(ada, notice("reconnecting"))
        assert [e.text for e in first[:-1]] == ["one", "two"]
        after = events_until(ada, lambda e: e.text == "live")
        assert fake.hellos[1] == {"type": "hello", "nick": "ada", "version": 1, "since": 7}
        assert [(e.kind, e.text, e.history) for e in after] == [
            ("message", "three", True),
            ("message", "four", True),
            ("system", "reconnected; 2 missed events replayed", False),
            ("join", "", False),
            ("message", "live", False),
        ]
        assert ada.welcome.seq == 10


def test_a_restarted_room_numbering_from_1_again_is_not_taken_for_old_news(scripted):
    fake = scripted(
        [welcome(50), ev("message", 51, sender="bob", text="old room")],
        [welcome(1), ev("join", 2, sender="ada"), ev("message", 3, sender="bob", text="new room"), HOLD],
    )
    with ChatClient(*fake.address, nick="ada", timeout=WAIT, reconnect=True) as ada:
        seen = events_until(ada, lambda e: e.text == "new room")
        assert fake.hellos[1]["since"] == 51
        assert [e.text for e in seen if e.kind == "message"] == ["old room", "new room"]


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        (
            ev("error", 0, code="kicked", text="you were removed by an operator"),
            "you were removed by an operator",
        ),
        (ev("leave", 6, sender="ada", text="removed by an operator"), "the server closed the connection"),
    ],
    ids=["error-that-ends-it", "removed-from-the-room"],
)
def test_being_cut_off_on_purpose_is_the_end(scripted, last, reason):
    fake = scripted([welcome(5), last])
    ada = ChatClient(*fake.address, nick="ada", timeout=WAIT, reconnect=True)
    ends = Ends(ada)
    seen = []
    with pytest.raises(ConnectionClosed, match=reason):
        while True:
            seen.append(ada.receive(timeout=WAIT))
    assert seen == [last]  # no "reconnecting" notice
    assert ends.done.wait(WAIT) and ends.reasons == [reason]  # an error's words are the reason
    assert len(fake.hellos) == 1
    ada.close()


# -- what is not a reason to reconnect, and leaving ----------------------------------------


def test_saying_bye_is_the_end_not_a_drop(connect):
    ada = connect("ada", reconnect=True)
    ends = Ends(ada)
    ada.send("bye")
    with pytest.raises(ConnectionClosed, match="you left the chat"):
        while True:
            assert not notice("reconnecting")(ada.receive(timeout=WAIT))
    assert ends.done.wait(WAIT) and ends.reasons == ["you left the chat"]
    assert ada.reconnects == 0 and not ada.reconnecting


def test_a_refusal_on_the_way_back_is_the_end(make_server, connect):
    first = make_server()
    port = first.address[1]
    ada = connect("ada", server=first, reconnect=True)
    ends = Ends(ada)
    first.close(restarting=True)
    ada.receive_until(notice("reconnecting"), timeout=WAIT)
    make_server(port=port, token="a new token")
    assert ends.done.wait(3 * WAIT)
    assert ends.reasons == ["could not rejoin: wrong or missing room token"]
    assert not ada.connected and not ada.reconnecting
    with pytest.raises(ConnectionClosed, match="could not rejoin"):
        ada.receive_until(lambda e: False, timeout=WAIT)
    with pytest.raises(ConnectionClosed, match="could not rejoin"):
        ada.send("hello?")


def test_giving_up_after_reconnect_for_says_why(make_server, connect):
    gone = make_server()
    ada = connect("ada", server=gone, reconnect=True, reconnect_for=0.5)
    ends = Ends(ada)
    gone.close(restarting=True)
    assert ends.done.wait(WAIT)
    assert ends.reasons == [
        "the server closed the connection; could not reconnect within 0.5 s (connection refused)"
    ]
    assert ada.wait_connected(timeout=WAIT) is False


def test_close_during_the_wait_between_tries_returns_at_once(make_server, connect, monkeypatch):
    monkeypatch.setattr(labchat.client, "FIRST_RETRY", 60.0)  # the first wait: 30 to 60 s
    gone = make_server()
    ada = connect("ada", server=gone, reconnect=True)
    ends = Ends(ada)
    gone.close(restarting=True)
    ada.receive_until(notice("reconnecting"), timeout=WAIT)
    start = time.monotonic()
    ada.close()
    assert time.monotonic() - start < 1.0
    assert not ada._receiver.is_alive()
    assert ends.reasons == ["you left the chat"]


def test_close_during_a_try_that_hangs_returns_at_once(make_server):
    gone = make_server()
    port = gone.address[1]
    ada = ChatClient("127.0.0.1", port, nick="ada", timeout=60.0, reconnect=True)
    gone.close(restarting=True)
    ada.receive_until(notice("reconnecting"), timeout=WAIT)
    with socket.create_server(("127.0.0.1", port)) as mute:  # takes the connection, never speaks
        mute.settimeout(WAIT)
        peer, _ = mute.accept()
        with peer:
            start = time.monotonic()
            ada.close()
            assert time.monotonic() - start < 1.0
    assert not ada._receiver.is_alive() and ada.close_reason == "you left the chat"


def test_without_reconnect_a_drop_is_the_end_as_before(make_server, connect):
    gone = make_server()
    ada = connect("ada", server=gone)
    gone.close(restarting=True)
    with pytest.raises(ConnectionClosed, match="the server closed the connection"):
        while True:
            assert not notice("reconnecting")(ada.receive(timeout=WAIT))


# -- the panel -----------------------------------------------------------------------------


@pytest.fixture
def panels() -> Iterator[None]:
    yield
    for panel in live_panels():
        panel.close()


def test_the_panel_says_reconnecting_while_it_lasts(make_server, panels):
    first = make_server(bot=False)
    port = first.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    assert panel.state == "connected"
    first.close(restarting=True)
    line = panel.wait_for("reconnecting...")
    assert line == "connection lost (the server closed the connection); reconnecting..."
    assert panel.state == "reconnecting" and panel.status == line
    assert "lc-status-wait" in panel.status_line.value and "reconnecting..." in panel.status_line.value
    assert panel.input.disabled and panel.send_button.disabled
    assert panel.say("hello?") is False

    second = make_server(port=port, bot=False)
    panel.wait_for("reconnected; 0 missed events replayed")
    assert panel.state == "connected" and panel.status == f"connected to 127.0.0.1:{port} as ada"
    assert "lc-status-ok" in panel.status_line.value and not panel.input.disabled
    with ChatClient("127.0.0.1", port, nick="bob", timeout=WAIT) as bob:
        panel.say("back in class")
        assert bob.receive_until(message_from("ada"), timeout=WAIT).text == "back in class"
    assert second.running
    panel.stop()
    assert panel.state == "disconnected" and panel.status == "you left the chat"


def test_a_panel_that_stops_while_reconnecting_stops_its_client(make_server, panels):
    gone = make_server()
    panel = join(*gone.address, nick="ada")
    gone.close(restarting=True)
    panel.wait_for("reconnecting...")
    panel.stop()
    assert not panel.client._receiver.is_alive()
    assert panel.state == "disconnected" and panel.status == "you left the chat"


# -- labchat join, at a prompt and in plain lines --------------------------------------------


@pytest.fixture
def term() -> Iterator[Callable[..., Term]]:
    started: list[Term] = []

    def start(*args: str) -> Term:
        started.append(Term(*args))
        return started[-1]

    yield start
    for each in started:
        each.kill()


@pytest.mark.timeout(120)
def test_labchat_join_at_a_prompt_shows_the_reconnect_and_chats_on(term):
    first = ChatServer("127.0.0.1", 0, bot=False).start()
    port = first.address[1]
    ada = term("join", f"127.0.0.1:{port}", "--nick", "ada")
    try:
        ada.wait("ada>")
        first.close(restarting=True)
        ada.wait("connection lost (the server closed the connection); reconnecting...")
        ada.wait("ada (reconnecting)>")
        ada.type("is anyone there?\r")
        ada.wait("!!! not sent, reconnecting: is anyone there?")
        with ChatServer("127.0.0.1", port, bot=False) as second:
            ada.wait("reconnected; 0 missed events replayed")
            ada.wait(lambda _: ada.rows()[-1] == "ada>")
            with ChatClient("127.0.0.1", port, nick="bob", timeout=WAIT) as bob:
                ada.wait("--> bob joined")
                ada.type("I am back\r")
                assert bob.receive_until(message_from("ada"), timeout=WAIT).text == "I am back"
            ada.type("bye\r")
            ada.wait("Goodbye, ada!")
            assert ada.exit_status() == 0
            assert second.users() == []
        assert "Traceback" not in ada.text()
    finally:
        first.close(restarting=True)


@pytest.mark.timeout(120)
def test_labchat_join_in_plain_lines_keeps_what_was_typed_during_the_reconnect():
    first = ChatServer("127.0.0.1", 0, bot=False).start()
    port = first.address[1]
    env = {k: v for k, v in os.environ.items() if k != "LABCHAT_TOKEN"}
    command = [sys.executable, "-m", "labchat", "join", f"127.0.0.1:{port}", "--nick", "ada"]
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in child.stdout], name="stdout")
    reader.start()

    def wait_line(text: str) -> str:
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return line
        raise AssertionError(f"labchat join never printed {text!r}")

    try:
        wait_line("Welcome, ada!")
        first.close(restarting=True)
        wait_line("reconnecting...")
        child.stdin.write("said while away\n")
        child.stdin.flush()
        with ChatServer("127.0.0.1", port, bot=False) as second:
            with ChatClient("127.0.0.1", port, nick="bob", timeout=WAIT) as bob:
                said = bob.receive_until(message_from("ada"), timeout=WAIT)
                assert said.text == "said while away"
            wait_line("reconnected;")
            child.stdin.close()  # the end of input: leave politely
            wait_line("Goodbye, ada!")
            assert child.wait(WAIT) == 0
            assert second.users() == []
        assert "Traceback" not in child.stderr.read()
    finally:
        first.close(restarting=True)
        if child.poll() is None:
            child.kill()
            child.wait()
        reader.join(WAIT)
        child.stderr.close()


def test_a_room_closed_on_purpose_is_the_end_even_with_reconnect(make_server, connect):
    room = make_server(bot=False)
    ada = connect("ada", server=room, reconnect=True)
    ends = Ends(ada)
    room.close("class is over")
    assert ends.done.wait(WAIT)
    assert ends.reasons == ["the server closed the connection"]
    assert not ada.reconnecting and ada.reconnects == 0


def test_coming_back_to_a_room_of_long_messages_is_a_catch_up_that_fits_not_a_cut(make_server, connect, raw):
    """300 legal 4,000-character messages are more than a client's outbox may hold: the one
    coming back gets the newest that fit, after a notice of how many are left out, and stays."""
    room = make_server(bot=False, rate=None)
    ada = connect("ada", server=room)
    for n in range(300):
        ada.send(f"{n:03} " + "y" * 3990)
    ada.receive_until(lambda e: e.kind == "message" and e.text.startswith("299 "), timeout=WAIT)
    back = raw(room)
    back.banner = back.line()
    back.send(json.dumps({"type": "hello", "nick": "back", "version": 1, "since": 1}) + "\n")
    welcome, gap = back.event(), back.event()
    assert welcome["type"] == "welcome"
    assert gap["code"] == "history-gap" and gap["text"].endswith(
        "missed while you were away: too much to replay at once."
    )
    replayed = []
    while (event := back.event())["type"] != "join":
        replayed.append(event)
    assert replayed and all(e.get("history") for e in replayed)
    texts = [e["text"][:3] for e in replayed]
    assert texts == [f"{n:03}" for n in range(300 - len(texts), 300)]  # the newest, in order
    assert int(gap["text"].split()[0]) == 1 + 300 - len(texts)  # ada's join and the older messages
    assert len(replayed) * 4000 <= room.outbox_limit // 4
    back.say("still here")
    assert back.event_until(lambda e: e.get("text") == "still here")["sender"] == "back"
