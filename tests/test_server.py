"""ChatServer over real loopback sockets: lifecycle, the wire, netcat users, shutdown."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest
from conftest import labchat_threads

from labchat import ChatClient
from labchat.bot import Greeter
from labchat.protocol import MAX_LINES, MAX_TEXT
from labchat.server import DEFAULT_PORT

WAIT = 5.0  # seconds any one wait may take


# -- lifecycle ----------------------------------------------------------------------------


# A room of one, a second connection refused (a warning in the server's log), in a fresh
# interpreter: where the warning goes is decided by the logging the program set up.
REFUSAL_SCRIPT = """
import logging, socket, sys
import labchat
if sys.argv[2] == "configured":
    logging.basicConfig(format="logged %(levelname)s %(message)s")
with getattr(labchat.server, sys.argv[1])(port=0, max_clients=1, bot=False) as room:
    first = socket.create_connection(room.address, timeout=5)
    first.recv(1024), first.sendall(b"ada\\n"), first.recv(1024)
    second = socket.create_connection(room.address, timeout=5)
    said = b""
    while chunk := second.recv(1024):  # what it is told, up to the hang-up
        said += chunk
    print(said.decode().strip())
"""


@pytest.mark.parametrize("logging_set_up", ["unconfigured", "configured"])
def test_a_warning_reaches_stderr_only_where_the_program_configured_logging(engine, logging_set_up) -> None:
    run = subprocess.run(
        [sys.executable, "-c", REFUSAL_SCRIPT, engine.__name__, logging_set_up],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "the room is full" in run.stdout
    if logging_set_up == "unconfigured":  # as in a notebook: nothing printed from the server's threads
        assert run.stderr == ""
    else:
        assert "logged WARNING" in run.stderr and "the room is full" in run.stderr


@pytest.mark.parametrize("port", ["5050", 5050.0, -1, 65536, True, None])
def test_a_port_that_is_not_one_is_refused_when_the_server_is_made(engine, port) -> None:
    with pytest.raises(ValueError, match="port must be a whole number from 0 to 65535"):
        engine(port=port)


CALLBACK_SCRIPT = """
import sys, threading
import labchat
failed = threading.Event()
with getattr(labchat.server, sys.argv[1])(port=0, bot=False) as room:
    with labchat.ChatClient(*room.address, nick="ada") as ada:
        @ada.on_event
        def mine(event):
            failed.set()
            raise KeyError("my bug")
        ada.send("hi")
        failed.wait(5)
"""


def test_a_client_callback_that_raises_is_shown_where_logging_was_not_configured(engine) -> None:
    # The server's log keeps quiet unless configured; a learner's own callback bug does not.
    run = subprocess.run(
        [sys.executable, "-c", CALLBACK_SCRIPT, engine.__name__], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "an on_event callback failed" in run.stderr and "KeyError: 'my bug'" in run.stderr


def test_defaults_are_safe(engine) -> None:
    server = engine()
    assert (server.host, server.port) == ("127.0.0.1", DEFAULT_PORT) == ("127.0.0.1", 5050)
    assert not server.running
    with pytest.raises(RuntimeError, match="not started"):
        server.address  # noqa: B018
    assert repr(server) == f"<{engine.__name__} not started, 0 in the room>"


def test_port_zero_binds_a_free_port_and_with_listens_at_once(engine) -> None:
    with engine(port=0) as server:
        host, port = server.address
        assert host == "127.0.0.1" and port > 0 and server.running
        socket.create_connection((host, port), timeout=WAIT).close()
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    assert not server.running


def test_start_and_close_without_with(engine) -> None:
    server = engine(port=0).start()
    try:
        with ChatClient(*server.address, nick="ada", timeout=WAIT) as ada:
            assert server.users() == ["ada"]
            assert ada.connected
    finally:
        server.close()
    server.close()  # a second close does nothing


def test_close_tells_everyone_and_leaves_no_thread_and_a_port_free_at_once(engine) -> None:
    before = labchat_threads()
    server = engine(port=0).start()
    port = server.address[1]
    clients = [ChatClient("127.0.0.1", port, nick=f"user{i}", timeout=WAIT) for i in range(3)]
    idle = socket.create_connection(("127.0.0.1", port), timeout=WAIT)  # never says hello
    try:
        assert idle.recv(100).startswith(b"labchat/1 ")  # accepted, waiting for a hello
        assert len(labchat_threads()) > len(before)
        server.close()
        # close() joined every thread it started (the clients' own receivers end on their own)
        assert [t for t in labchat_threads() if not t.startswith("labchat-client-")] == before
        for client in clients:
            notice = client.receive_until(lambda e: e.kind == "system" and e.code == "closing", timeout=WAIT)
            assert notice.text == "the server is shutting down"
        assert b"the server is shutting down" in idle.recv(1000)
        assert idle.recv(1000) == b""
        with engine(port=port) as again:  # the very same port, straight away
            assert again.address == ("127.0.0.1", port)
            with ChatClient("127.0.0.1", port, nick="ada", timeout=WAIT) as ada:
                assert ada.welcome.users == ("ada",)
    finally:
        idle.close()
        for client in clients:
            client.close()
    assert labchat_threads() == before


def test_a_busy_port_is_an_os_error_and_leaves_nothing_behind(engine, server) -> None:
    before = labchat_threads()
    with pytest.raises(OSError):
        engine(port=server.address[1]).start()
    assert labchat_threads() == before


def test_threads_are_named_by_role_and_nick(server, connect) -> None:
    connect("ada")
    names = labchat_threads()
    if server.engine == "threading":
        expected = {"labchat-accept", "labchat-reader-ada", "labchat-client-ada"}
    else:
        expected = {"labchat-selector", "labchat-client-ada"}
    assert expected <= set(names)
    assert not any(name.startswith("labchat-writer") for name in names)  # only for a client that lags


# -- the wire, byte for byte --------------------------------------------------------------


def test_a_structured_session_on_the_wire(make_server, raw) -> None:
    quiet = make_server(bot=False, history=5)
    ada = raw(quiet)
    assert ada.line() == b"labchat/1 Welcome to labchat! Type your nick and press Enter."
    ada.send(b'{"type":"hello","nick":"ada","version":1}\n')
    welcome = ada.event()
    assert welcome["type"] == "welcome" and welcome["users"] == ["ada"] and welcome["seq"] == 1
    assert set(welcome) == {"type", "sender", "text", "seq", "time", "users", "count"}
    assert welcome["count"] == 1
    join = ada.event()
    assert (join["type"], join["sender"], join["seq"]) == ("join", "ada", 2)
    assert set(join) == {"type", "sender", "seq", "time"} and join["time"] >= welcome["time"]
    ada.say("hello")
    message = ada.event()
    assert (message["type"], message["sender"], message["text"], message["seq"]) == (
        "message",
        "ada",
        "hello",
        3,
    )
    ada.send(b'{"type":"say","text":"/frob"}\n')
    assert ada.event()["code"] == "unknown-command"
    ada.say("/quit")
    assert ada.event()["code"] == "goodbye"
    assert ada.closed() == b""


def test_a_refusal_after_hello_is_an_error_event_then_the_end(server, raw, connect) -> None:
    connect("ada")
    peer = raw()
    answer = peer.hello("Ada")
    assert (answer["type"], answer["code"]) == ("error", "nick-taken")
    assert peer.closed() == b""


def test_a_second_hello_is_an_error_not_a_disconnect(raw) -> None:
    peer = raw()
    peer.hello("ada")
    peer.send(b'{"type":"hello","nick":"bob"}\n')
    error = peer.event_until(lambda e: e["type"] == "error")
    assert (error["code"], error["text"]) == ("bad-frame", "already joined: send 'say' frames")
    peer.say("still here")
    assert peer.event_until(lambda e: e["type"] == "message")["text"] == "still here"


def test_a_hello_for_another_protocol_version_is_refused(raw) -> None:
    peer = raw()
    peer.line()
    peer.send(b'{"type":"hello","nick":"ada","version":2}\n')
    answer = peer.event()
    assert (answer["type"], answer["code"]) == ("error", "bad-version")
    assert answer["text"] == "this server speaks labchat/1 only, the client asked for version 2"
    assert peer.closed() == b""


def test_the_first_frame_must_be_a_hello(raw) -> None:
    peer = raw()
    peer.line()
    peer.send(b'{"type":"say","text":"hi"}\n')
    error = peer.event()
    assert (error["type"], error["code"]) == ("error", "bad-hello")
    assert peer.closed() == b""


# -- a person on netcat -------------------------------------------------------------------


def test_netcat_user_and_structured_client_chat_together(server, raw, connect) -> None:
    ada = connect("ada")
    bob = raw()
    assert bob.text() == "labchat/1 Welcome to labchat! Type your nick and press Enter."
    bob.send("bob\n")
    assert bob.text().startswith("Welcome, bob! 2 here: ada, bob.")
    assert bob.until(lambda line: line.startswith(b"greeter: ")).startswith("greeter: 👋 Hello bob".encode())
    bob.send("hi ada, from netcat\r\n")
    event = ada.receive_until(lambda e: e.kind == "message", timeout=WAIT)
    assert (event.sender, event.text) == ("bob", "hi ada, from netcat")
    ada.send("hello bob")
    assert bob.until(lambda line: line.startswith(b"ada: ")) == b"ada: hello bob"
    ada.send("/me waves")
    assert bob.until(lambda line: line.startswith(b"* ")) == b"* ada waves"
    ada.send("/msg bob psst")
    assert bob.until(lambda line: b"private" in line) == b"[private] ada -> bob: psst"


def test_netcat_commands_and_goodbye(raw, connect) -> None:
    ada = connect("ada")
    bob = raw()
    bob.line()
    bob.send("bob\n")
    bob.until(lambda line: line.startswith(b"greeter: "))
    bob.send("/who\n")
    assert bob.text() == "2 here: ada, bob"
    bob.send("/nosuch\n")
    assert bob.text() == "!!! unknown command /nosuch; type /help to see the commands"
    bob.send("bye\n")
    assert bob.text() == "Goodbye, bob!"
    assert bob.closed() == b""
    leave = ada.receive_until(lambda e: e.kind == "leave", timeout=WAIT)
    assert leave.sender == "bob"


def test_netcat_nick_refused_in_words(raw, connect) -> None:
    connect("ada")
    peer = raw()
    peer.line()
    peer.send("ADA\n")
    assert peer.text() == "!!! the nick 'ADA' is taken; please pick another"
    assert peer.closed() == b""


def test_netcat_with_a_token_types_it_after_the_nick(make_server, raw) -> None:
    locked = make_server(token="sesame")
    peer = raw(locked)
    assert "needs a token: type your nick, a space, the token" in peer.text()
    peer.send("bob sesame\n")
    assert peer.text().startswith("Welcome, bob!")
    wrong = raw(locked)
    wrong.line()
    wrong.send("eve guess\n")
    assert wrong.text() == "!!! wrong or missing room token"
    assert wrong.closed() == b""


def test_a_full_server_refuses_in_its_banner(make_server, raw) -> None:
    small = make_server(max_clients=1)
    raw(small).hello("ada")
    assert (
        raw(small).closed()
        == b"labchat/1 refused server-full: the room is full (at most 1 at once); try again later\n"
    )


# -- rules the server keeps ---------------------------------------------------------------


def test_no_socket_call_while_the_room_lock_is_held(server, connect, raw, monkeypatch) -> None:
    """Every socket send and receive checks that the calling thread does not hold the room's lock."""
    room_lock = server.room._lock
    held = threading.local()
    violations: list[str] = []
    calls: list[str] = []

    class WatchedLock:
        def __enter__(self):
            room_lock.acquire()
            held.n = getattr(held, "n", 0) + 1

        def __exit__(self, *exc):
            held.n -= 1
            room_lock.release()

    def watch(name: str):
        original = getattr(socket.socket, name)

        def checked(self, *args, **kwargs):
            calls.append(name)
            if getattr(held, "n", 0):
                violations.append(f"{name} in {threading.current_thread().name}")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(socket.socket, name, checked)

    for name in ("send", "sendall", "recv", "shutdown", "close"):
        watch(name)
    monkeypatch.setattr(server.room, "_lock", WatchedLock())
    ada, bob = connect("ada"), connect("bob")
    nc = raw()
    nc.line()
    nc.send("cy\n")
    for line in ("hello", "/who", "/msg ada hi", "/me waves", "/nick bobby", "what is a socket?"):
        bob.send(line)
    ada.send("/quit")
    bob.receive_until(lambda e: e.kind == "leave", timeout=WAIT)
    nc.send("bye\n")
    nc.closed()
    assert violations == []
    assert {"send", "sendall", "recv"} <= set(calls)  # the watch did see the traffic


def test_a_message_reaches_everyone_once_and_in_the_rooms_order(server, connect) -> None:
    clients = [connect(f"u{i}") for i in range(4)]
    for n in range(25):
        for client in clients:
            client.send(f"{client.nick}:{n}")
    orders = []
    for client in clients:
        seen = [client.receive_until(lambda e: e.kind == "message", timeout=WAIT) for _ in range(100)]
        assert len({e.seq for e in seen}) == 100
        assert [e.seq for e in seen] == sorted(e.seq for e in seen)
        orders.append([e.text for e in seen])
    assert all(order == orders[0] for order in orders)


def test_a_json_hello_may_be_preceded_by_spaces_and_ends_in_crlf(raw) -> None:
    peer = raw()
    peer.line()
    peer.send(b'  {"type":"hello","nick":"ada"}\r\n')
    assert json.loads(peer.line())["type"] == "welcome"


class _Wordy(Greeter):
    """A greeter that answers with more than a member may say: longer than the wire's line limit,
    more lines than a message may have, and escapes meant for everyone's terminal."""

    def on_message(self, nick: str, text: str):
        return {"long": ["y" * 60_000], "lines": ["x\n" * 300], "escape": ["\x1b[2Jgone"]}.get(text, [])


def test_a_bot_line_is_held_to_what_a_member_may_say(make_server, connect, caplog) -> None:
    room = make_server(bot=_Wordy())
    ada, bob = connect("ada", server=room), connect("bob", server=room)
    for text in ("long", "lines", "escape"):
        ada.send(text)
    bob.receive_until(lambda e: e.kind == "message" and e.text == "long", timeout=WAIT)
    said = [bob.receive_until(lambda e: e.kind == "bot", timeout=WAIT).text for _ in range(3)]
    assert said[0] == "y" * (MAX_TEXT - 1) + "…"
    assert said[1] == "\n".join(["x"] * MAX_LINES)
    assert said[2] == "^[[2Jgone"
    with ChatClient(*room.address, nick="cy") as cy:  # the history a newcomer is sent holds them
        assert cy.users == ["ada", "bob", "cy"]
    ada.send("still here")
    assert bob.receive_until(lambda e: e.kind == "message", timeout=WAIT).text == "still here"
    assert room.users() == ["ada", "bob"]
    warned = [r.getMessage() for r in caplog.records if "cut to fit" in r.getMessage()]
    said_too_long = "the bot greeter's on_message said a message too long"
    assert warned == [
        f"{said_too_long}: 60000 characters, limit 4000; it is cut to fit",
        f"{said_too_long}: 300 lines, limit 200; it is cut to fit",
    ]


class _Broken(Greeter):
    """A greeter as a learner may write it: it raises at "boom", returns None or a str at others."""

    def on_message(self, nick: str, text: str):
        if text == "boom":
            raise ZeroDivisionError("division by zero")
        if text == "nothing":
            return None
        if text == "a string":
            return "one line, not a list"
        return super().on_message(nick, text)


def test_a_bot_that_raises_or_returns_no_list_is_logged_and_the_member_stays(
    make_server, connect, caplog
) -> None:
    room = make_server(bot=_Broken())
    ada, bob = connect("ada", server=room), connect("bob", server=room)
    for text in ("boom", "nothing", "a string", "hello greeter"):
        ada.send(text)
    seen = []
    while not (seen and seen[-1].kind == "bot" and seen[-1].text.startswith("Hello ada")):
        seen.append(bob.receive())  # until the answer to "hello greeter"
    after = [(e.kind, e.text) for e in seen[[e.text for e in seen].index("boom") :]]
    assert after == [
        ("message", "boom"),  # the bot raised: nothing from it
        ("message", "nothing"),  # None: nothing either
        ("message", "a string"),
        ("bot", "one line, not a list"),  # a str is one line
        ("message", "hello greeter"),
        ("bot", "Hello ada! 😊"),
    ]
    assert room.users() == ["ada", "bob"]
    warned = [r.getMessage() for r in caplog.records if "the bot greeter" in r.getMessage()]
    assert warned == [
        "the bot greeter raised ZeroDivisionError: division by zero in on_message; it says nothing this time"
    ]
    assert not [r for r in caplog.records if r.exc_info]  # one line, no traceback
