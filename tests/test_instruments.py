"""Instruments for the class, through real clients on both engines: operators, and faults on purpose.

Operators present the room's operator token and may kick, mute and unmute; anyone else
is told they may not. Faults (chopped sends, delayed deliveries) are off by default,
said in every banner when on, and lose nothing: a client that reads lines whole still
gets every message whole.
"""

from __future__ import annotations

import json
import logging
import socket

import pytest
from conftest import WAIT, wait_until

from labchat import ChatClient, ConnectionClosed
from labchat.room import BIG_ROOM
from labchat.server import Faults


def said(client: ChatClient, kind: str, **fields):
    return client.receive_until(
        lambda e: e.kind == kind and all(getattr(e, k) == v for k, v in fields.items()), timeout=WAIT
    )


@pytest.fixture
def room(make_server):
    return make_server(bot=False, op_token="owl-op")


def test_the_operator_token_is_made_up_when_not_given(make_server) -> None:
    a, b = make_server(), make_server()
    assert a.op_token and b.op_token and a.op_token != b.op_token
    assert len(a.op_token) >= 16


def test_an_operator_kicks_and_everyone_sees_why(room, connect, caplog) -> None:
    caplog.set_level(logging.INFO, logger="labchat")
    teacher = connect("teacher", server=room, op_token="owl-op")
    ada, bob = connect("ada", server=room), connect("bob", server=room)
    teacher.send("/kick bob spamming the room")
    told = said(bob, "error", code="kicked")
    assert told.text == "you were removed by teacher: spamming the room"
    with pytest.raises(ConnectionClosed):
        bob.receive(timeout=WAIT)
    assert not bob.reconnecting  # a kick is the end, even for a client that reconnects
    leave = said(ada, "leave", sender="bob")
    assert leave.text == "removed by teacher: spamming the room"
    assert room.users() == ["teacher", "ada"]
    logged = [r for r in caplog.records if "removed by teacher" in r.getMessage()]
    assert len(logged) == 1 and logged[0].getMessage().startswith("bob (")  # one line: who, and why
    assert logged[0].levelno == logging.INFO  # the operator's own act, not a warning


def test_others_may_not_moderate(room, connect) -> None:
    connect("teacher", server=room, op_token="owl-op")
    ada = connect("ada", server=room, op_token="wrong guess")
    connect("bob", server=room)
    for command in ("/kick bob", "/mute bob", "/unmute bob"):
        ada.send(command)
        error = said(ada, "error", code="not-operator")
        assert "only an operator" in error.text
    assert room.users() == ["teacher", "ada", "bob"]


def test_operators_may_not_kick_or_mute_each_other_nor_themselves(room, connect) -> None:
    """A helper with the token, or the host's own slip, cannot remove the host (and so end the
    room); the server's own Python still can."""
    teacher = connect("teacher", server=room, op_token="owl-op")
    helper = connect("helper", server=room, op_token="owl-op")
    for command in ("/kick teacher", "/mute teacher"):
        helper.send(command)
        error = said(helper, "error", code="is-operator")
        assert error.text == f"operators may not {command.split()[0]} each other: teacher is an operator"
    teacher.send("/kick TEACHER")
    assert said(teacher, "error", code="is-operator").text == "you may not /kick yourself"
    teacher.send("still here")
    said(helper, "message", sender="teacher")
    assert room.users() == ["teacher", "helper"]
    room.kick("helper", "shift over")
    assert said(teacher, "leave", sender="helper").text == "removed by the server: shift over"


def test_a_wrong_operator_token_joins_as_a_member_and_is_told_so_at_once(room, connect, caplog) -> None:
    ta = connect("ta", server=room, op_token="owl-0p")
    notice = said(ta, "system", code="op-token-wrong")
    assert notice.text == "the operator token you gave is not this room's: you are in the room as a member"
    ta.send("/mute nobody")
    said(ta, "error", code="not-operator")
    assert any("gave a wrong operator token" in r.getMessage() for r in caplog.records)


def test_whoever_joins_with_a_muted_nick_is_told_it_is_muted(room, connect) -> None:
    teacher = connect("teacher", server=room, op_token="owl-op")
    sam = connect("sam", server=room)
    teacher.send("/mute sam")
    said(sam, "system", code="mute")
    sam.close()
    said(teacher, "leave", sender="sam")
    newcomer = connect("Sam", server=room)
    notice = said(newcomer, "system", code="muted")
    assert notice.text == "the nick Sam is muted by an operator: you are muted until one unmutes it"


def test_a_muted_nick_that_has_left_can_be_unmuted_before_it_comes_back(room, connect) -> None:
    teacher = connect("teacher", server=room, op_token="owl-op")
    sam = connect("sam", server=room)
    teacher.send("/mute sam")
    said(sam, "system", code="mute")
    sam.close()
    said(teacher, "leave", sender="sam")
    teacher.send("/unmute sam")
    assert said(teacher, "system", code="unmute").text == "sam was unmuted by teacher"
    teacher.send("/mute sam")  # muting someone who is not here is still refused
    assert said(teacher, "error", code="no-such-nick").text.startswith("nobody called 'sam'")
    again = connect("sam", server=room)
    again.send("heard again")
    assert said(teacher, "message", sender="sam").text == "heard again"
    room.mute("sam")  # and from Python alike
    again.close()
    said(teacher, "leave", sender="sam")
    room.unmute("Sam")
    assert said(teacher, "system", code="unmute").text == "Sam was unmuted by the server"


def test_a_muted_person_is_refused_with_an_error_and_reaches_nobody(room, connect) -> None:
    teacher = connect("teacher", server=room, op_token="owl-op")
    ada, bob = connect("ada", server=room), connect("bob", server=room)
    teacher.send("/mute bob")
    assert said(ada, "system", code="mute").text == "bob was muted by teacher"
    bob.send("can you hear me")
    assert said(bob, "error", code="muted").text.startswith("you are muted")
    bob.send("/msg ada psst")
    said(bob, "error", code="muted")
    teacher.send("/unmute bob")
    assert said(ada, "system", code="unmute").text == "bob was unmuted by teacher"
    bob.send("thank you")
    heard = said(ada, "message", sender="bob")
    assert heard.text == "thank you"  # the first thing ada hears from bob: nothing leaked


def test_a_muted_person_can_neither_rename_out_of_it_nor_speak_in_a_farewell(room, connect) -> None:
    teacher = connect("teacher", server=room, op_token="owl-op")
    ada, bob = connect("ada", server=room), connect("bob", server=room)
    teacher.send("/mute bob")
    said(ada, "system", code="mute")
    bob.send("/nick bobby")
    assert "your nick stays" in said(bob, "error", code="muted").text
    bob.send("heard now?")
    said(bob, "error", code="muted")  # still muted: the nick did not change
    bob.send("/quit you all cannot stop me")
    said(bob, "system", code="goodbye")
    leave = said(ada, "leave", sender="bob")
    assert leave.text == ""  # gone, and the parting words with it
    assert not [e for e in ada.pending() if e.kind in ("message", "nick")]


def test_operators_see_their_commands_in_help(room, connect) -> None:
    teacher = connect("teacher", server=room, op_token="owl-op")
    ada = connect("ada", server=room)
    for client in (teacher, ada):
        client.pending()
        client.send("/help")
        said(client, "system", text="bye or /quit         leave the chat")
    teacher_help = [e.text for e in teacher.pending()]
    assert any(line.startswith("/kick NICK") for line in teacher_help)
    ada_help = [e.text for e in ada.pending()]
    assert not any(line.startswith("/kick") for line in ada_help)


def test_kick_mute_and_unmute_from_python(room, connect) -> None:
    ada, _ = connect("ada", server=room), connect("bob", server=room)
    room.mute("bob")
    assert said(ada, "system", code="mute").text == "bob was muted by the server"
    room.unmute("bob")
    said(ada, "system", code="unmute")
    room.kick("bob", "time is up")
    assert said(ada, "leave", sender="bob").text == "removed by the server: time is up"
    with pytest.raises(LookupError, match="nobody called 'carol'"):
        room.kick("carol")


def test_every_kick_and_mute_is_in_the_transcript(make_server, connect, tmp_path) -> None:
    record = tmp_path / "class.jsonl"
    room = make_server(bot=False, op_token="owl-op", log=record)
    connect("ada", server=room)
    bob = connect("bob", server=room)
    room.mute("ada")
    room.kick("ada", "enough")
    said(bob, "leave", sender="ada")
    room.close()
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    moderated = [
        (e["type"], e["text"]) for e in lines if e.get("code") == "mute" or "removed" in e.get("text", "")
    ]
    assert moderated == [
        ("system", "ada was muted by the server"),
        ("leave", "removed by the server: enough"),
    ]


def test_a_big_room_s_transcript_keeps_every_join_and_leave(make_server, raw, tmp_path) -> None:
    """Past BIG_ROOM members nobody is told of comings and goings, but the record keeps them."""
    record = tmp_path / "class.jsonl"
    room = make_server(bot=False, log=record)
    peers = [raw(room) for _ in range(BIG_ROOM + 3)]
    for n, peer in enumerate(peers):
        assert peer.hello(f"s{n}")["type"] == "welcome"
    peers[-1].send(b'{"type":"say","text":"bye"}\n')  # a goodbye in the big room
    peers[-1].closed()
    peers[-2].sock.close()  # and a hang-up
    assert wait_until(lambda: len(room.users()) == BIG_ROOM + 1)
    room.close()
    rows = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    joined = [r["sender"] for r in rows if r["type"] == "join"]
    left = [r["sender"] for r in rows if r["type"] == "leave"]
    assert joined == [f"s{n}" for n in range(BIG_ROOM + 3)]
    assert left[:2] == [f"s{BIG_ROOM + 2}", f"s{BIG_ROOM + 1}"]  # and the rest as the room closed


# -- faults, for lessons ------------------------------------------------------------------------


def test_faults_are_off_by_default_and_said_in_the_banner_when_on(make_server, raw) -> None:
    plain = make_server()
    assert b"Faults" not in raw(plain).line()
    chopping = make_server(faults=Faults(chop=True, delay=0.05))
    banner = raw(chopping).line().decode()
    assert "Faults are on for a lesson" in banner and "chopped" in banner and "50 ms" in banner


def test_a_chopping_server_still_delivers_every_message_whole(make_server, connect, raw) -> None:
    chopping = make_server(bot=False, faults={"chop": True})
    ada, bob = connect("ada", server=chopping), connect("bob", server=chopping)
    person = raw(chopping)
    person.line()
    person.send("grace\n")
    lines = [ada.send(f"message {n} " + "x" * 50) for n in range(30)]
    got = [said(bob, "message", sender="ada").text for _ in lines]
    assert got == [f"message {n} " + "x" * 50 for n in range(30)]
    netcat = [person.until(lambda line: line.startswith(b"ada: ")).decode() for _ in range(30)]
    assert netcat == [f"ada: message {n} " + "x" * 50 for n in range(30)]  # plain lines, whole, in order


def test_a_chopping_server_breaks_a_client_that_takes_one_recv_for_one_message(make_server) -> None:
    chopping = make_server(bot=False, faults={"chop": True})

    def first_recv_is_a_piece() -> bool:
        with socket.create_connection(chopping.address, timeout=WAIT) as sock:
            first = sock.recv(4096)  # a naive client: "the banner is one recv"
            return bool(first) and not first.endswith(b"\n")

    # The banner leaves in twenty or more separate sends; how many of them one recv finds depends
    # on when the client is scheduled, so a busy machine may let one client find them all: a
    # naive client is broken if any of a few tries gets only a piece.
    assert any(first_recv_is_a_piece() for _ in range(5))


def test_a_delaying_server_holds_deliveries_back_in_order(make_server, connect) -> None:
    slow = make_server(bot=False, faults={"delay": 0.05})
    ada, bob = connect("ada", server=slow), connect("bob", server=slow)
    for n in range(5):
        ada.send(f"{n}")
    assert [said(bob, "message", sender="ada").text for _ in range(5)] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize("how", ["bye", "half-close"])
def test_a_delaying_server_lets_a_leaving_client_have_what_it_still_holds(make_server, raw, how) -> None:
    """The goodbye, and the echo of the last lines, are held back like everything else: the
    connection closes after they go out, not before."""
    slow = make_server(bot=False, faults={"delay": 0.3})
    peer = raw(slow)
    assert peer.hello("robot")["type"] == "welcome"
    last = b'{"type":"say","text":"hi"}\n'
    if how == "bye":
        peer.send(last + b'{"type":"say","text":"bye"}\n')
    else:
        peer.send(last)
        peer.sock.shutdown(socket.SHUT_WR)
    events = [json.loads(line) for line in peer.closed().splitlines()]
    said_back = [(e["type"], e.get("text")) for e in events if e["type"] in ("message", "system")]
    assert ("message", "hi") in said_back
    if how == "bye":
        assert said_back[-1] == ("system", "Goodbye, robot!")


def test_a_delaying_server_hangs_up_on_a_refused_stranger_at_once(make_server, raw) -> None:
    """The delay fault holds the room's events for a minute; a refusal is not one of them, and
    the refused connection is closed without waiting for what the room's members are owed."""
    slow = make_server(bot=False, faults={"delay": 60.0})
    ada = raw(slow)
    ada.line()  # the banner; her welcome is held back with everything the room says
    ada.send(b'{"type":"hello","nick":"ada","version":1}\n')  # the delay now holds something
    assert wait_until(lambda: slow.users() == ["ada"])
    impostor = raw(slow)
    assert impostor.hello("ada")["code"] == "nick-taken"
    assert impostor.closed() == b""  # hung up on, well before the delay is over
