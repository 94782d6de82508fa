"""The conversation's two state machines, wired together in memory, byte for byte.

No socket and no thread: what one side returns is fed to the other, as an engine
would, so every rule of the handshake is checked exactly.
"""

from __future__ import annotations

import json

import pytest

from labchat.conversation import (
    CLOSED,
    NEED_DATA,
    Banner,
    ClientConversation,
    Invalid,
    LocalProtocolError,
    Refused,
    RemoteProtocolError,
    ServerConversation,
    State,
)
from labchat.protocol import MAX_LINE, Event, Hello, Say


def wired() -> tuple[ServerConversation, ClientConversation]:
    """A server that has said its banner and a client that has read it."""
    server, client = ServerConversation(), ClientConversation()
    client.receive_data(server.banner("Welcome to labchat! Type your nick and press Enter."))
    assert client.next_event() == Banner("Welcome to labchat! Type your nick and press Enter.")
    return server, client


def test_a_whole_session_in_memory() -> None:
    server, client = wired()
    hello = client.hello("ada", since=7)
    assert hello == b'{"type":"hello","nick":"ada","version":1,"since":7}\n'
    server.receive_data(hello)
    assert server.next_event() == Hello(nick="ada", since=7)
    server.joined()
    welcome = server.send(Event(kind="welcome", sender="ada", text="Welcome, ada!", seq=8, count=1))
    assert welcome == b'{"type":"welcome","sender":"ada","text":"Welcome, ada!","seq":8,"count":1}\n'
    client.receive_data(welcome)
    assert client.next_event().kind == "welcome" and client.state is State.JOINED
    say = client.say("hi")
    assert say == b'{"type":"say","text":"hi"}\n'
    server.receive_data(say[:5])
    assert server.next_event() is NEED_DATA  # half a line is nothing yet
    server.receive_data(say[5:])
    assert server.next_event() == Say(text="hi")
    server.receive_data(b"")
    assert server.next_event() is CLOSED


def test_a_person_on_netcat_is_spoken_to_in_plain_text() -> None:
    server = ServerConversation()
    server.banner("hi")
    server.receive_data(b"grace owl-7\r\n")
    assert server.next_event() == Hello(nick="grace", token="owl-7")
    assert server.mode == "text"
    server.joined()
    assert server.send(Event(kind="message", sender="ada", text="hello")) == b"ada: hello\n"
    server.receive_data(b"hello back\n")
    assert server.next_event() == Say(text="hello back")


def test_a_bad_line_once_joined_is_invalid_in_its_place_not_fatal() -> None:
    server, client = wired()
    server.receive_data(client.hello("ada"))
    server.next_event()
    server.joined()
    server.receive_data(
        b'{"type":"say","text":"one"}\n{"type":\n'
        + b"x" * (MAX_LINE + 1)
        + b'\n{"type":"say","text":"two"}\n'
    )
    events = [server.next_event() for _ in range(4)]
    assert events[0] == Say(text="one")
    assert isinstance(events[1], Invalid) and events[1].code == "bad-json"
    assert isinstance(events[2], Invalid) and events[2].code == "line-too-long"
    assert events[3] == Say(text="two")
    assert server.next_event() is NEED_DATA


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (b'{"type":"say","text":"hi"}\n', "bad-hello"),
        (b'{"type":"hello","nick":"ada","version":2}\n', "bad-version"),
        (b"{not json\n", "bad-json"),
        (b"\n", "nick-invalid"),
        (b"x" * (MAX_LINE + 1), "line-too-long"),
    ],
)
def test_a_bad_start_is_the_peer_s_fault(first: bytes, code: str) -> None:
    server = ServerConversation()
    server.banner("hi")
    server.receive_data(first)
    with pytest.raises(RemoteProtocolError) as caught:
        server.next_event()
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("typed", "last"),
    [
        (b"ad", b"!!! no hello within 2 seconds\n"),  # a person at netcat, halfway through a nick
        (b"", b'{"type":"error","text":"no hello within 2 seconds","code":"hello-timeout","seq":0}\n'),
        (
            b' {"type":"hel',
            b'{"type":"error","text":"no hello within 2 seconds","code":"hello-timeout","seq":0}\n',
        ),
    ],
)
def test_a_refusal_before_any_hello_is_in_words_for_someone_typing_a_nick(typed, last) -> None:
    server = ServerConversation()
    server.banner("hi")
    if typed:  # (b"" would be the end of the stream)
        server.receive_data(typed)
    assert server.next_event() is NEED_DATA
    assert server.refusal("hello-timeout", "no hello within 2 seconds") == last


def test_misuse_is_the_local_side_s_fault() -> None:
    server, client = ServerConversation(), ClientConversation()
    with pytest.raises(LocalProtocolError):
        server.next_event()  # before the banner
    with pytest.raises(LocalProtocolError):
        client.hello("ada")  # before reading the banner
    server.banner("hi")
    with pytest.raises(LocalProtocolError):
        server.banner("again")
    with pytest.raises(LocalProtocolError):
        ClientConversation().say("too early")


def test_a_refusal_ends_both_sides() -> None:
    client = ClientConversation()
    client.receive_data(
        b"labchat/1 refused server-full: the room is full (at most 1 at once); try again later\n"
    )
    refused = client.next_event()
    assert refused == Refused("server-full", "the room is full (at most 1 at once); try again later")
    assert client.state is State.CLOSED
    server, client = wired()
    server.receive_data(client.hello("ada"))
    server.next_event()
    last = server.refusal("nick-taken", "the nick 'ada' is taken; please pick another")
    assert json.loads(last) == {
        "type": "error",
        "code": "nick-taken",
        "text": "the nick 'ada' is taken; please pick another",
        "seq": 0,
    }
    client.receive_data(last)
    assert client.next_event() == Refused("nick-taken", "the nick 'ada' is taken; please pick another")
    assert server.state is State.CLOSED and server.next_event() is CLOSED


def test_another_service_is_not_labchat() -> None:
    client = ClientConversation()
    client.receive_data(b"SSH-2.0-OpenSSH_9.2\r\n")
    with pytest.raises(RemoteProtocolError, match="not a labchat server"):
        client.next_event()
