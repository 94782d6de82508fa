"""One room across several labchat servers through Redis: order, nicks, history, failures.

Every test runs real ``redis-server`` processes on free loopback ports (started
here; a missing redis-server fails loudly) and real labchat servers: in this
process on both engines, and as ``labchat serve`` processes where a server must
be killed. Each test has a room of its own, so they share one Redis unless they
stop it. Waits are on events, each with a deadline.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import WAIT, RawPeer, wait_until

from labchat import ChatClient, ChatServer
from labchat.backplane import Backplane, BackplaneError, redact
from labchat.protocol import Event

# A killed server's heartbeat lasts 3 s and the others look every second: its members are
# announced gone within about 4 s, so 10 s is a failure, not a slow machine.
LEAVE_WAIT = 10.0


# -- Redis, started here ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """``redis-server`` on a free loopback port with nothing saved; ``stop()`` and ``start()`` again."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is not installed (scripts/setup.sh installs it): the backplane needs one"
            )
        self.binary, self.folder, self.port = binary, folder, _free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.folder)]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server ended at once:\n{self.proc.stdout.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        pytest.fail(f"redis-server did not listen on port {self.port} within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.communicate(timeout=10)
        self.proc = None


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One Redis for the tests that do not stop it (each has a room of its own)."""
    process = RedisProcess(tmp_path_factory.mktemp("redis"))
    yield process
    process.stop()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A Redis of this test's own, to stop and start again."""
    process = RedisProcess(tmp_path)
    yield process
    process.stop()


_rooms = iter(range(1, 1 << 30))


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    """A room name no other test uses."""
    return f"t{next(_rooms)}-{request.node.name[:30].strip('_-[]').replace('[', '-').replace(']', '')}"


@pytest.fixture
def shared(make_server: Callable[..., ChatServer], room: str) -> Callable[..., ChatServer]:
    """``shared(url, **kw)``: an ``engine`` server in room ``room`` through the Redis at ``url``."""

    def make(url: str, **kwargs: object) -> ChatServer:
        return make_server(**{"bot": False, **kwargs}, backplane=url, room=room)

    return make


@pytest.fixture
def clients() -> Iterator[Callable[..., ChatClient]]:
    """``clients(server, nick, **kw)``: a ChatClient joined there; all closed afterwards."""
    made: list[ChatClient] = []

    def make(where: object, nick: str, **kwargs: object) -> ChatClient:
        host, port = where.address
        client = ChatClient(host, port, nick=nick, timeout=WAIT, **kwargs)
        made.append(client)
        return client

    yield make
    for client in reversed(made):
        client.close()


def is_message(text: str) -> Callable[[Event], bool]:
    return lambda e: e.kind == "message" and e.text == text


def has_code(code: str) -> Callable[[Event], bool]:
    return lambda e: e.code == code


def events_until(client: ChatClient, match: Callable[[Event], bool], timeout: float = WAIT) -> list[Event]:
    """Every event up to and including the first that matches."""
    seen: list[Event] = []
    deadline = time.monotonic() + timeout
    while True:
        event = client.receive(timeout=max(0.01, deadline - time.monotonic()))
        seen.append(event)
        if match(event):
            return seen


def hello(peer: RawPeer, nick: str, since: int | None = None) -> dict:
    """A JSON hello (with ``since`` if given); the first answer."""
    peer.banner = peer.line()
    frame = {"type": "hello", "nick": nick, "version": 1}
    if since is not None:
        frame["since"] = since
    peer.send(json.dumps(frame) + "\n")
    return peer.event()


# -- one room, one order -------------------------------------------------------------------------


def test_every_client_on_every_server_sees_one_order(shared_redis, shared, clients, serve, room):
    first, second = shared(shared_redis.url), shared(shared_redis.url)
    third = serve("--backplane", shared_redis.url, "--room", room, "--no-bot")
    people = [clients(first, "ada"), clients(second, "bob"), clients(third, "cy")]
    for person in people:  # everyone is in before anyone speaks
        person.receive_until(lambda e: e.kind == "join" and e.sender == "cy")
    count = 40

    def chatter(person: ChatClient) -> None:
        for n in range(count):
            person.send(f"{person.nick} {n}")

    threads = [threading.Thread(target=chatter, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen = []
    for person in people:
        messages = []
        while len(messages) < 3 * count:
            event = person.receive(timeout=WAIT)
            if event.kind == "message":
                messages.append((event.seq, event.sender, event.text))
        seen.append(messages)
    assert seen[0] == seen[1] == seen[2]
    seqs = [seq for seq, _, _ in seen[0]]
    assert seqs == sorted(set(seqs))
    for person in people:  # each one's own lines in the order they were sent
        assert [t for _, s, t in seen[0] if s == person.nick] == [f"{person.nick} {n}" for n in range(count)]


def test_a_nick_is_one_person_across_servers_look_alikes_too(shared_redis, shared, clients, raw_peer):
    here, there = shared(shared_redis.url), shared(shared_redis.url)
    ada = clients(here, "ada")
    for nick, words in [("ada", "is taken"), ("ADA", "is taken"), ("\u0430\u0501\u0430", "looks like 'ada'")]:
        peer = raw_peer(there)
        answer = hello(peer, nick)
        assert answer["type"] == "error" and answer["code"] == "nick-taken", answer
        assert words in answer["text"]
    bob = clients(there, "bob")
    assert bob.welcome.users == ("ada", "bob") and bob.welcome.count == 2
    bob.send("/who")
    assert bob.receive_until(lambda e: e.kind == "system" and e.users).users == ("ada", "bob")
    ada.send("/nick Ada")  # the same nick written anew: still hers, and everyone sees the new spelling
    bob.receive_until(lambda e: e.kind == "nick" and e.target == "Ada")
    bob.send("/who")
    assert bob.receive_until(lambda e: e.kind == "system" and e.users).users == ("Ada", "bob")
    ada.send("/nick bob")
    assert ada.receive_until(has_code("nick-taken")).kind == "error"
    ada.close()
    bob.receive_until(lambda e: e.kind == "leave" and e.sender == "Ada")
    assert clients(there, "ada").welcome.users == ("bob", "ada")  # let go on leaving, at once


def test_a_newcomer_and_a_returning_client_catch_up_through_another_server(
    shared_redis, shared, clients, raw_peer
):
    here, there = shared(shared_redis.url), shared(shared_redis.url, history=3)
    ada = clients(here, "ada")
    for n in range(5):
        ada.send(f"before {n}")
    ada.receive_until(is_message("before 4"))
    cy = raw_peer(there)
    welcome = hello(cy, "cy")
    backlog = [cy.event() for _ in range(3)]
    assert [e["text"] for e in backlog] == ["before 2", "before 3", "before 4"]
    assert all(e["history"] and e["seq"] < welcome["seq"] for e in backlog)
    joined = cy.event()
    assert joined["type"] == "join" and joined["sender"] == "cy" and "history" not in joined
    peer = raw_peer(here)
    assert hello(peer, "bob")["type"] == "welcome"
    last = peer.event_until(lambda e: e["type"] == "join" and e["sender"] == "bob")["seq"]
    peer.close()  # bob drops out without a word; the room goes on
    ada.receive_until(lambda e: e.kind == "leave" and e.sender == "bob")
    ada.send("while you were away")
    ada.send("and this too")
    ada.receive_until(is_message("and this too"))
    back = raw_peer(there)  # bob comes back through the other server with the last seq he saw
    assert hello(back, "bob", since=last)["type"] == "welcome"
    replay = [back.event() for _ in range(3)]
    assert [(e["type"], e.get("text", "")) for e in replay] == [
        ("leave", ""),
        ("message", "while you were away"),
        ("message", "and this too"),
    ]
    assert all(e["history"] and e["seq"] > last for e in replay)
    live = back.event()
    assert live["type"] == "join" and live["sender"] == "bob" and "history" not in live


def test_private_messages_kicks_and_mutes_reach_across_servers(shared_redis, shared, clients):
    here = shared(shared_redis.url, op_token="op-secret")
    there = shared(shared_redis.url, op_token="op-secret")
    teacher = clients(here, "teacher", op_token="op-secret")
    bob, cy = clients(there, "bob"), clients(there, "cy")
    teacher.send("/msg bob only for you")
    assert bob.receive_until(lambda e: e.kind == "private").text == "only for you"
    bob.send("/msg teacher thanks")
    assert teacher.receive_until(lambda e: e.kind == "private" and e.sender == "bob").text == "thanks"
    teacher.send("/mute bob")
    cy.receive_until(has_code("mute"))
    bob.receive_until(has_code("mute"))
    bob.send("can anyone hear me")
    assert bob.receive_until(lambda e: e.kind == "error").code == "muted"
    teacher.send("/unmute bob")
    bob.receive_until(has_code("unmute"))
    bob.send("heard again")
    teacher.receive_until(is_message("heard again"))
    teacher.send("/kick bob spamming")
    told = bob.receive_until(has_code("kicked"))
    assert "removed by teacher: spamming" in told.text
    gone = cy.receive_until(lambda e: e.kind == "leave")
    assert gone.sender == "bob" and "spamming" in gone.text
    assert wait_until(lambda: "bob" not in there.users())
    with pytest.raises(TimeoutError):  # cy sees bob leave once: the room there did not say it again
        cy.receive_until(lambda e: e.kind == "leave", timeout=0.5)


def test_a_flood_through_one_server_reaches_readers_on_another_whole_and_in_order(
    shared_redis, shared, clients, raw_peer
):
    source, sink = shared(shared_redis.url), shared(shared_redis.url)
    readers = [clients(sink, f"r{n}") for n in range(3)]
    sender = raw_peer(source)
    assert hello(sender, "flood")["type"] == "welcome"
    for reader in readers:
        reader.receive_until(lambda e: e.kind == "join" and e.sender == "flood")
    count = 2000
    sender.send("".join(json.dumps({"type": "say", "text": f"m{n}"}) + "\n" for n in range(count)))
    for reader in readers:
        texts = []
        while len(texts) < count:
            event = reader.receive(timeout=WAIT)
            if event.kind == "message":
                texts.append(event.text)
        assert texts == [f"m{n}" for n in range(count)]


# -- when things fail ------------------------------------------------------------------------------


def test_a_killed_server_s_members_are_seen_leaving_and_catch_up_elsewhere(
    shared_redis, shared, clients, serve, room, raw_peer
):
    survivor = shared(shared_redis.url)
    doomed = serve("--backplane", shared_redis.url, "--room", room, "--no-bot")
    bob = clients(survivor, "bob")
    ada = raw_peer(doomed)
    assert hello(ada, "ada")["type"] == "welcome"
    bob.receive_until(lambda e: e.kind == "join" and e.sender == "ada")
    bob.send("are you there")
    last = ada.event_until(lambda e: e.get("text") == "are you there")["seq"]
    doomed.proc.send_signal(signal.SIGKILL)
    started = time.monotonic()
    gone = bob.receive_until(lambda e: e.kind == "leave" and e.sender == "ada", timeout=LEAVE_WAIT)
    assert "stopped answering" in gone.text and time.monotonic() - started < LEAVE_WAIT
    bob.send("she is gone")
    back = raw_peer(survivor)  # ada's client finds another server, with the last seq it saw
    assert hello(back, "ada", since=last)["type"] == "welcome"
    missed = [back.event(), back.event()]
    assert [(e["type"], e.get("text")) for e in missed] == [
        ("leave", "their server stopped answering"),
        ("message", "she is gone"),
    ]
    assert all(e["history"] for e in missed)


def test_redis_going_away_and_coming_back_mid_chat(redis, shared, clients, raw_peer):
    here, there = shared(redis.url), shared(redis.url)
    ada, bob = clients(here, "ada"), clients(there, "bob")
    ada.receive_until(lambda e: e.kind == "join" and e.sender == "bob")
    ada.send("before")
    bob.receive_until(is_message("before"))
    redis.stop()
    for person in (ada, bob):
        notice = person.receive_until(has_code("backplane-down"))
        assert notice.kind == "system" and "only the people on this server" in notice.text
    ada.send("only here")
    heard = ada.receive_until(is_message("only here"))
    assert heard.seq == 0  # outside the shared order
    stranger = raw_peer(there)
    refused = hello(stranger, "cy")
    assert refused["type"] == "error" and refused["code"] == "unavailable"
    redis.start()
    for person in (ada, bob):
        person.receive_until(has_code("backplane-up"), timeout=LEAVE_WAIT)
    ada.send("after")
    bob_saw = events_until(bob, is_message("after"))
    ada_saw = events_until(ada, is_message("after"))
    assert "only here" not in [e.text for e in bob_saw]
    assert [e.text for e in ada_saw if e.kind == "message"] == ["after"]
    assert bob_saw[-1].seq > 0 and ada_saw[-1].seq == bob_saw[-1].seq
    cy = clients(there, "cy")  # nicks are known again (Redis lost the order they came in)
    assert sorted(cy.welcome.users) == ["ada", "bob", "cy"]
    with pytest.raises(Exception, match="taken"):
        clients(there, "ada")


def test_what_was_in_flight_when_redis_went_away_is_delivered_once(redis, shared, clients):
    server = shared(redis.url)
    ada = clients(server, "ada")
    redis.stop()
    ada.send("into the void")
    seen = events_until(ada, is_message("into the void"))
    assert [e.code for e in seen if e.kind == "system"] == ["backplane-down"]
    with pytest.raises(TimeoutError):
        ada.receive_until(is_message("into the void"), timeout=0.3)


def test_a_server_frozen_past_its_heartbeat_is_announced_gone_then_back(shared_redis, serve, room, raw_peer):
    flags = ("--backplane", shared_redis.url, "--room", room, "--no-bot")
    survivor, frozen = serve(*flags), serve(*flags)
    bob, ada = raw_peer(survivor), raw_peer(frozen)
    assert hello(bob, "bob")["type"] == hello(ada, "ada")["type"] == "welcome"
    for peer in (bob, ada):
        peer.event_until(lambda e: e["type"] == "join" and e["sender"] == "ada")
    frozen.proc.send_signal(signal.SIGSTOP)  # a laptop's lid closed: its connections stay open
    try:
        bob.event_until(lambda e: e["type"] == "leave" and e["sender"] == "ada", timeout=LEAVE_WAIT)
    finally:
        frozen.proc.send_signal(signal.SIGCONT)
    bob.event_until(lambda e: e["type"] == "join" and e["sender"] == "ada", timeout=LEAVE_WAIT)
    ada.say("I was only asleep")
    assert bob.event_until(lambda e: e["type"] == "message")["text"] == "I was only asleep"
    seen = []
    while not seen or seen[-1].get("text") != "I was only asleep":
        seen.append(ada.event())
    assert not [e for e in seen if e.get("sender") == "ada" and e["type"] in ("leave", "join")]


def test_an_entry_is_numbered_by_its_place_in_the_log():
    from labchat.backplane.entries import Item, pack, unpack

    items = [
        Item(Event(kind="message", sender="ada", text="one", seq=7), None, keep=True),
        Item(Event(kind="error", code="bad-json", text="not JSON"), (3,)),
        Item(Event(kind="private", sender="ada", target="bob", text="psst", seq=8), (3, "bob")),
    ]
    entry = unpack(pack("s1", items, join=(3, None)), "41-0")
    assert [(i.event.kind, i.event.seq) for i in entry.items] == [
        ("message", 40),
        ("error", 0),
        ("private", 41),
    ]
    assert [i.to for i in entry.items] == [None, (3,), (3, "bob")]
    assert entry.items[0].keep and not entry.items[2].keep
    assert (entry.origin, entry.join, entry.last) == ("s1", (3, None), 41)


def test_a_catch_up_through_the_log_fits_what_one_client_may_be_sent_at_once():
    from labchat.backplane.entries import Entry, Item
    from labchat.backplane.mirror import Mirror

    mirror = Mirror(history=20, replay=500, replay_bytes=2 * (1000 + 160))
    for seq in range(1, 6):
        event = Event(kind="message", sender="ada", text=f"{seq}" * 1000, seq=seq)
        mirror.add(Entry(origin="s1", items=(Item(event, None, keep=True),)))
    caught = mirror.backlog(since=1)
    assert (caught[0].code, caught[0].text) == (
        "history-gap",
        "Some earlier events were missed while you were away: too much to replay at once.",
    )
    assert [(e.seq, e.history) for e in caught[1:]] == [(4, True), (5, True)]


def test_a_newcomer_through_the_log_is_shown_the_history_that_fits_at_once():
    from labchat.backplane.entries import Entry, Item
    from labchat.backplane.mirror import Mirror

    mirror = Mirror(history=20, replay=500, replay_bytes=2 * (1000 + 160))
    for seq in range(1, 6):
        event = Event(kind="message", sender="ada", text=f"{seq}" * 1000, seq=seq)
        mirror.add(Entry(origin="s1", items=(Item(event, None, keep=True),)))
    assert [(e.seq, e.history) for e in mirror.backlog(since=None)] == [(4, True), (5, True)]
    mirror.missed(3)  # and events before 3 were trimmed from the log, never read here
    assert mirror.backlog(since=1)[0].text == (
        "Some earlier events were missed while you were away: too old or too much to replay."
    )


# -- safe defaults ---------------------------------------------------------------------------------


def test_a_password_in_the_url_is_never_shown():
    assert redact("redis://:s3cret@127.0.0.1:6379/0") == "redis://***@127.0.0.1:6379/0"
    assert redact("rediss://user:s3cret@[::1]:6380/2") == "rediss://***@[::1]:6380/2"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    port = _free_port()  # nothing listens there
    with pytest.raises(BackplaneError) as caught:
        ChatServer(port=0, backplane=f"redis://:s3cret@127.0.0.1:{port}/0", room="r").start()
    assert "s3cret" not in str(caught.value) and "***@127.0.0.1" in str(caught.value)
    assert "cannot be reached" in str(caught.value)


def test_redis_elsewhere_needs_tls_or_a_plain_yes():
    with pytest.raises(BackplaneError, match="rediss://"):
        Backplane("redis://:pw@192.0.2.7:6379/0", "r")
    with pytest.raises(BackplaneError) as caught:
        Backplane("redis://:pw@192.0.2.7:6379/0", "r")
    assert "pw" not in str(caught.value)
    assert Backplane("rediss://192.0.2.7:6379/0", "r").shown == "rediss://192.0.2.7:6379/0"
    assert Backplane("redis://192.0.2.7:6379/0", "r", insecure=True).room == "r"
    with pytest.raises(ValueError, match="room name"):
        Backplane("redis://127.0.0.1:6379/0", "no spaces")


def test_serve_says_where_the_room_is_shared_and_refuses_what_is_unsafe(shared_redis, serve, room):
    secret = "redis://:s3cret@192.0.2.7:6379/0"
    result = subprocess.run(
        [sys.executable, "-m", "labchat", "serve", "--port", "0", "--backplane", secret],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and "rediss://" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    process = serve("--backplane", shared_redis.url, "--room", room)
    assert process.proc.stdout.readline().strip() == (
        f"labchat: room {room!r} is shared through {shared_redis.url}"
    )
    status, _, _ = process.stop()
    assert status == 0


def test_without_a_backplane_redis_is_never_imported():
    code = (
        "import sys, labchat\n"
        "from labchat.server import SelectorChatServer\n"
        "for kind in (labchat.ChatServer, SelectorChatServer):\n"
        "    kind(port=0).start().close()\n"
        "assert 'redis' not in sys.modules, 'redis was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
