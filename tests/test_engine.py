"""The engine's promises under ordinary classroom trouble, on both engines, through real sockets.

Strangers that never say hello lock nobody out; a stuck reader that says bye still
leaves on time; a reset frees its nick at once; one sender's errors keep their place;
look-alike nicks are refused; and the server reports what each connection is doing.
"""

from __future__ import annotations

import json
import socket
import struct
import time

import pytest
from conftest import WAIT, RawPeer, wait_until

from labchat import ChatClient
from labchat.engine import limits


def stranger(server, source: str = "127.0.0.1") -> socket.socket:
    """A connection that reads its banner and then says nothing, from ``source``."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(WAIT)
    sock.connect(server.address)
    assert sock.recv(4096).startswith(b"labchat/1 Welcome")
    return sock


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN, as a crashed program's socket does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_strangers_take_no_room_slot_and_cannot_fill_the_door(make_server, connect) -> None:
    small = make_server(max_clients=2, max_pending=4)
    idle = [stranger(small) for _ in range(20)]  # five times the budget for strangers
    try:
        assert wait_until(lambda: len(small.connections()) <= 4, WAIT)  # those evicted are closing
        ada, bob = connect("ada", server=small), connect("bob", server=small)  # the room's two seats
        assert small.users() == ["ada", "bob"]
        ada.send("we are in")
        assert bob.receive_until(lambda e: e.kind == "message").text == "we are in"
        # The oldest strangers gave way, each told why in its own words.
        told = idle[0].recv(4096)
        assert json.loads(told)["code"] == "busy"
    finally:
        for sock in idle:
            sock.close()


def test_a_flood_from_one_address_evicts_itself_not_a_slow_typist(make_server, raw) -> None:
    door = make_server(max_pending=4, hello_timeout=30)
    typist = raw(door)  # a person at netcat, still thinking about a nick
    assert typist.line().startswith(b"labchat/1 Welcome")
    flood = [stranger(door, "127.0.0.2") for _ in range(30)]
    try:
        typist.send("grace\n")
        welcome = typist.text()
        assert welcome.startswith("Welcome, grace!")
    finally:
        for sock in flood:
            sock.close()


def test_a_burst_of_connections_from_the_typist_s_own_address_evicts_the_silent_ones(
    make_server, raw
) -> None:
    door = make_server(max_pending=8, hello_timeout=30)
    typist = raw(door)  # on a shared address (one JupyterHub), halfway through a nick
    assert typist.line().startswith(b"labchat/1 Welcome")
    typist.send("gra")
    assert wait_until(lambda: [c.received for c in door.connections()] == [3], WAIT)
    for _ in range(100):  # a reconnect loop, or a port scanner, on the same address
        socket.create_connection(door.address).close()
    idle = [socket.create_connection(door.address) for _ in range(20)]  # and some that stay
    try:
        typist.send("ce\n")
        assert typist.text().startswith("Welcome, grace!")
    finally:
        for sock in idle:
            sock.close()


def test_a_sender_s_error_keeps_its_place_between_its_messages(server, raw) -> None:
    ada = raw()
    ada.hello("ada")
    ada.send(b'{"type":"say","text":"first"}\n{"type":"say"\n{"type":"say","text":"second"}\n')
    answers = [ada.event_until(lambda e: e["type"] in ("message", "error")) for _ in range(3)]
    assert [(a["type"], a.get("text", "")) for a in answers][0] == ("message", "first")
    assert answers[1]["type"] == "error" and answers[1]["code"] == "bad-json"
    assert (answers[2]["type"], answers[2]["text"]) == ("message", "second")


def test_a_reset_frees_the_nick_at_once(server, connect, raw) -> None:
    bob = connect("bob")
    ada = raw()
    ada.hello("ada")
    bob.receive_until(lambda e: e.kind == "join" and e.sender == "ada")
    reset(ada.sock)
    leave = bob.receive_until(lambda e: e.kind == "leave" and e.sender == "ada", timeout=WAIT)
    assert "connection lost" in leave.text
    again = connect("ada")  # the nick is free again straight away
    assert again.nick == "ada"


def test_a_stuck_reader_that_says_bye_still_leaves_within_the_linger(make_server, connect) -> None:
    room = make_server(bot=False, stall_timeout=60.0, outbox_limit=64 * 2**20)
    ada, bob = connect("ada", server=room), connect("bob", server=room)
    sloth = RawPeer(room.address)
    sloth.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sloth.hello("sloth")
    bob.receive_until(lambda e: e.kind == "join" and e.sender == "sloth")
    big = "😀" * 900
    for n in range(200):  # far more than its kernel buffers hold
        ada.send(f"{n} {big}")
        got = bob.receive_until(lambda e: e.kind == "message" and e.sender == "ada")
        assert got.text.startswith(f"{n} ")
    assert [c.queued for c in room.connections() if c.nick == "sloth"][0] > 0
    sloth.say("bye")  # ... and still reads nothing
    started = time.monotonic()
    leave = bob.receive_until(lambda e: e.kind == "leave" and e.sender == "sloth", timeout=WAIT)
    assert leave.sender == "sloth"
    deadline = time.monotonic() + limits.LINGER + WAIT
    while any(c.address == sloth.sock.getsockname() for c in room.connections()):
        assert time.monotonic() < deadline, "the stuck connection was never closed"
        time.sleep(0.05)
    assert time.monotonic() - started < limits.LINGER + WAIT
    assert room.users() == ["ada", "bob"]
    sloth.close()


@pytest.mark.parametrize("impostor", ["аda", "ａｄａ", "𝐚𝐝𝐚", "ADA", "ada\u200d", "ᎪᎠᎪ", "ꓮꓓꓮ"])
def test_look_alike_nicks_are_refused(server, connect, raw, impostor: str) -> None:
    connect("ada")
    peer = raw()
    answer = peer.hello(impostor)
    assert answer["type"] == "error" and answer["code"] in ("nick-taken", "nick-invalid")
    assert server.users() == ["ada"]


def test_max_per_host_bounds_the_members_from_one_address_and_frees_a_seat_on_leaving(
    make_server, connect, raw
) -> None:
    room = make_server(bot=False, max_per_host=2)
    connect("ada", server=room)
    bob = connect("bob", server=room)
    third = raw(room).hello("cy")
    assert (third["type"], third["code"]) == ("error", "host-full")
    assert third["text"].startswith(
        "2 from your address are in the room already (at most 2 from one address)"
    )
    assert room.users() == ["ada", "bob"]
    bob.close()
    assert wait_until(lambda: room.users() == ["ada"] and len(room.connections()) == 1)  # bob's socket closed
    assert raw(room).hello("cy")["type"] == "welcome"


def test_a_leaving_member_s_seat_is_free_at_once_though_its_socket_lingers(make_server, raw) -> None:
    """The delay fault holds the goodbye (and so the socket) back for a minute; the address's
    seat is given back as the member leaves the room, not when its socket closes."""
    room = make_server(bot=False, max_per_host=1, faults={"delay": 60.0})
    ada = raw(room)
    ada.line()  # the banner; her welcome is held back with everything the room says
    ada.send(b'{"type":"hello","nick":"ada","version":1}\n')
    assert wait_until(lambda: room.users() == ["ada"])
    ada.send(b'{"type":"say","text":"bye"}\n')
    assert wait_until(lambda: room.users() == [])
    assert len(room.connections()) == 1  # ada's socket is still open, her goodbye held
    bob = raw(room)
    bob.line()
    bob.send(b'{"type":"hello","nick":"bob","version":1}\n')  # a refusal would come at once
    assert wait_until(lambda: room.users() == ["bob"])


def test_max_per_host_is_off_by_default_and_must_be_at_least_one(make_server) -> None:
    assert make_server(bot=False).max_per_host is None
    with pytest.raises(ValueError, match="max_per_host must be at least 1"):
        make_server(bot=False, max_per_host=0)


def test_connections_reports_each_connection_s_figures(server, connect, raw) -> None:
    ada = connect("ada")
    ada.send("hello")
    ada.receive_until(lambda e: e.kind == "message" and e.text == "hello")
    waiting = raw()
    waiting.line()
    by_nick = {c.nick: c for c in server.connections()}
    mine = by_nick["ada"]
    assert (mine.mode, mine.queued) == ("json", 0)
    assert mine.messages_in == 1 and mine.messages_out >= 3  # welcome, join, message (and the bot)
    assert mine.received > 0 and mine.sent > 0
    assert by_nick[None].messages_in == 0  # the stranger has not joined
    assert all(c.since <= time.time() for c in server.connections())


def test_keepalive_is_on_so_a_vanished_peer_is_noticed(server, connect) -> None:
    connect("ada")
    (session,) = list(server._sessions)
    sock = session.sock
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):
        idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        interval = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
        count = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
        assert idle + interval * count <= 60  # noticed within a minute


def test_repr_works_before_during_and_after(engine) -> None:
    server = engine(port=0)
    assert "not started" in repr(server)
    server.start()
    host, port = server.address
    with ChatClient(host, port, nick="ada"):
        assert repr(server) == f"<{engine.__name__} {host}:{port}, 1 in the room>"
    server.close()
    assert repr(server) == f"<{engine.__name__} {host}:{port}, closed, 0 in the room>"
