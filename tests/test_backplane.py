"""One room across several labchat servers through Redis: order, nicks, history, failures.

Every test runs real ``redis-server`` processes on free loopback ports (started
here; a missing redis-server fails loudly) and real labchat servers: in this
process on both engines, and as ``labchat serve`` processes where a server must
be killed. Each test has a room of its own, so they share one Redis unless they
stop it. Waits are on events, each with a deadline.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
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
def db(shared_redis: object) -> Iterator[object]:
    """A redis-py client on the shared Redis, to write into a room's keys as an outsider would."""
    import redis as redis_py

    client = redis_py.Redis.from_url(shared_redis.url)
    yield client
    client.close()


@pytest.fixture
def pair(
    shared_redis: object, shared: Callable[..., ChatServer], clients: Callable[..., ChatClient]
) -> tuple[ChatServer, ChatServer, ChatClient, ChatClient]:
    """Two servers sharing the room: (here, there, ada joined here, bob there), each seeing the other."""
    here, there = shared(shared_redis.url), shared(shared_redis.url)
    ada, bob = clients(here, "ada"), clients(there, "bob")
    ada.receive_until(lambda e: e.kind == "join" and e.sender == "bob")
    return here, there, ada, bob


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


def _key(room: str, name: str) -> str:
    return f"labchat:{{{room}}}:{name}"


def _warnings(caplog: pytest.LogCaptureFixture, *words: str) -> list[str]:
    """The backplane's warnings that say every one of ``words``."""
    said = [r.getMessage() for r in caplog.records if r.name == "labchat.backplane" and r.levelno >= 30]
    return [line for line in said if all(word in line for word in words)]


def test_what_anyone_writes_into_the_room_s_keys_is_skipped_and_the_room_carries_on(
    shared_redis, shared, clients, room, caplog, db, pair
):
    caplog.set_level(logging.WARNING, logger="labchat.backplane")
    here, there, ada, bob = pair
    line = json.dumps({"type": "message", "sender": "mallory", "text": "forged", "seq": 1})
    bad = [  # what the warning says is wrong, and what is written
        ("it has no field 'e'", {"junk": "x"}),
        ("a JSON list, not an object", {"e": "[1, 2, 3]"}),
        ("UnicodeDecodeError", {"e": b"\xff\x00garbage"}),
    ]
    for ref in (1.5, None, [1]):
        body = {"v": 1, "o": "x", "d": [[line, [ref]]]}
        bad.append(("not for everyone (null) nor for a list", {"e": json.dumps(body)}))
    ids = [(why, db.xadd(_key(room, "events"), fields).decode()) for why, fields in bad]
    db.sadd(_key(room, "servers"), b"\xff\xfe")  # no server's name
    db.sadd(_key(room, "servers"), "gone")  # a dead "server" whose member has no tab
    db.hset(_key(room, "members:gone"), "zed", "no tab")
    db.sadd(_key(room, "servers"), "alive")  # a live one, listed by /who
    db.hset(_key(room, "members:alive"), "zed", "no tab")
    db.set(_key(room, "server:alive"), "1", px=60_000)
    db.set(_key(room, "nick:cy"), "no tab")  # no server's claim
    ada.send("after")
    for person in (ada, bob):
        assert person.receive_until(is_message("after")).seq > 0
    cy = clients(there, "cy")
    assert cy.welcome.users == ("ada", "bob", "cy")
    bob.send("/who")
    assert bob.receive_until(lambda e: e.kind == "system" and e.users).users == ("ada", "bob", "cy")
    third = shared(shared_redis.url)  # a server that starts now reads the same log
    dan = clients(third, "dan")
    cy.send("hello dan")
    assert dan.receive_until(is_message("hello dan")).sender == "cy"
    assert wait_until(lambda: not db.sismember(_key(room, "servers"), "gone"), LEAVE_WAIT)
    for server in (here, there, third):
        assert server.backplane._thread.is_alive() and not server.backplane.down
    for why, entry_id in ids:  # each named, once by each server that read it
        said = _warnings(caplog, entry_id, "cannot be read", why)
        assert 1 <= len(said) <= 3, (why, said)
    assert 1 <= len(_warnings(caplog, "servers holds b'\\xff\\xfe', which is not UTF-8")) <= 3
    assert 1 <= len(_warnings(caplog, "members:alive holds 'no tab', not FIRST<TAB>NICK")) <= 3
    assert len(_warnings(caplog, "members:gone holds 'no tab'")) == 1
    db.delete(_key(room, "server:alive"))


def test_a_room_key_of_the_wrong_type_keeps_servers_apart_said_once_until_it_is_mended(
    room, caplog, db, pair
):
    from labchat.backplane.link import RETRY_MAX

    caplog.set_level(logging.WARNING, logger="labchat.backplane")
    _, _, ada, bob = pair
    db.delete(_key(room, "events"))
    db.set(_key(room, "events"), "not a stream")
    ada.send("alone")
    ada.receive_until(has_code("backplane-down"))
    assert ada.receive_until(is_message("alone")).seq == 0
    bob.receive_until(has_code("backplane-down"))
    for person in (ada, bob):  # no coming and going every half second: apart until mended
        with pytest.raises(TimeoutError):
            person.receive_until(has_code("backplane-up"), timeout=1.5)
    said = _warnings(caplog, f"holds a string at {_key(room, 'events')}, where this room keeps a stream")
    assert 1 <= len(said) <= 2, said  # once by each server
    db.delete(_key(room, "events"))
    for person in (ada, bob):
        person.receive_until(has_code("backplane-up"), timeout=RETRY_MAX + LEAVE_WAIT)
    ada.send("together again")
    heard = bob.receive_until(is_message("together again"))
    assert heard.seq > 0 and ada.receive_until(is_message("together again")).seq == heard.seq


def test_a_redis_stalled_past_every_heartbeat_takes_no_live_server_for_dead(
    redis, make_server, room, clients
):
    beat, ttl = 0.5, 1.5

    def server() -> ChatServer:
        return make_server(bot=False, backplane=Backplane(redis.url, room, beat=beat, ttl=ttl))

    here, there = server(), server()
    ada, bob = clients(here, "ada"), clients(there, "bob")
    for person in (ada, bob):
        person.receive_until(lambda e: e.kind == "join" and e.sender == "bob")
    stalled = time.monotonic()
    redis.proc.send_signal(signal.SIGSTOP)  # a swapped-out or suspended Redis: sockets stay open
    try:
        ada.send("while Redis sleeps")  # its publish times out: ada's server is cut off
        ada.receive_until(has_code("backplane-down"))
        # Every heartbeat expires on Redis's clock meanwhile; the other server's reading
        # thread waits in Redis all along (its read outlasts the stall).
        time.sleep(max(0.0, stalled + 2.2 - time.monotonic()))
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    ada.receive_until(has_code("backplane-up"), timeout=LEAVE_WAIT)
    link = there.backplane  # the server that read first after the stall: regular for a while again
    assert wait_until(lambda: link._beat_ok - link._steady_since >= ttl + 2 * beat, LEAVE_WAIT)
    ada.send("after the stall")
    seen = events_until(bob, is_message("after the stall"))
    assert [(e.kind, e.sender) for e in seen if e.kind in ("leave", "join")] == []
    assert "ada" in here.users() and set(bob.welcome.users) == {"ada", "bob"}


def test_a_line_whose_append_timed_out_but_ran_later_is_delivered_once(redis, make_server, room, clients):
    """Redis stalls past the command timeout with ada's append in its socket: her server delivers
    the line at once (outside the shared order) and, when Redis wakes and runs the append after
    all, does not deliver it a second time."""
    here, there = (make_server(bot=False, backplane=Backplane(redis.url, room)) for _ in range(2))
    ada, ann, bob = clients(here, "ada"), clients(here, "ann"), clients(there, "bob")
    for person in (ada, ann):
        person.receive_until(lambda e: e.kind == "join" and e.sender == "bob")
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        ada.send("while Redis sleeps")
        seen = {ada: events_until(ada, has_code("backplane-down"))}  # the append timed out
    finally:
        redis.proc.send_signal(signal.SIGCONT)  # ... and Redis now runs it
    seen[ada] += events_until(ada, has_code("backplane-up"), timeout=LEAVE_WAIT)
    ada.send("after the stall")
    for person in (ada, ann, bob):
        seen[person] = seen.get(person, []) + events_until(person, is_message("after the stall"))
        said = [e.text for e in seen[person] if e.kind == "message"]
        assert said.count("while Redis sleeps") == 1, (person.nick, said)


def test_an_entry_that_takes_long_to_decode_does_not_stop_the_heartbeat(redis, make_server, room, clients):
    import redis as redis_py

    from labchat.backplane.entries import unpack

    beat, ttl = 0.3, 1.2
    server = make_server(bot=False, backplane=Backplane(redis.url, room, beat=beat, ttl=ttl))
    ada = clients(server, "ada")
    db = redis_py.Redis.from_url(redis.url)
    db.config_set("notify-keyspace-events", "Ex")
    expired = db.pubsub()
    expired.subscribe("__keyevent@0__:expired")
    assert expired.get_message(timeout=WAIT)["type"] == "subscribe"
    line = json.dumps({"type": "join", "seq": 1})

    def entry(count: int) -> bytes:  # many short events, for session 1 of another server
        return json.dumps({"v": 1, "o": "x", "d": [[line, [1]]] * count}).encode()

    started = time.monotonic()
    unpack(entry(10_000), "10000-0")
    count = int(10_000 * 2 * ttl / max(time.monotonic() - started, 1e-3))  # two heartbeats' life
    count = max(10_000, min(count, 1_000_000))
    top = int(db.xrevrange(_key(room, "events"), count=1)[0][0].decode().split("-")[0])
    db.xadd(_key(room, "events"), {"e": entry(count)}, id=f"{top + count}-0")
    ada.send("after the long one")
    assert ada.receive_until(is_message("after the long one"), timeout=LEAVE_WAIT + 30).seq > top + count
    heartbeat = _key(room, f"server:{server.backplane.sid}")
    lapses = []
    while (message := expired.get_message(timeout=0.2)) is not None:
        lapses.append(message["data"].decode())
    assert heartbeat not in lapses
    assert not server.backplane.down and db.sismember(_key(room, "servers"), server.backplane.sid)
    expired.close()
    db.close()


def test_numbering_survives_a_log_emptied_or_deleted_under_its_epoch(shared_redis, room, db):
    from labchat.backplane.entries import Item, pack
    from labchat.backplane.redis import MAXLEN, RedisLog, Unreachable

    events = _key(room, "events")
    log = RedisLog(shared_redis.url, room, "s1")
    payload = pack("s1", [Item(Event(kind="message", sender="ada", text="hi", seq=1), None)])
    try:
        epoch, made = log.epoch("ab12", 0, pack("s1", []))
        assert made and db.exists(events)  # a log exists whenever its epoch does
        assert [log.append(epoch, 0, 1, payload) for _ in range(3)] == ["1-0", "2-0", "3-0"]
        db.xtrim(events, maxlen=0)  # emptied: the stream still knows the last ID it gave
        assert log.append(epoch, 1, 1, payload) == "4-0"  # from a server that read up to 1
        db.xdel(events, "4-0")  # its top entry deleted
        assert log.append(epoch, 2, 1, payload) == "5-0"
        db.delete(events)  # gone while its epoch stays: lost, not begun again from 1
        with pytest.raises(Unreachable) as lost:
            log.append(epoch, 5, 1, payload)
        assert lost.value.reset
        again, made = log.epoch("cd34", 5 + MAXLEN, pack("s1", []))
        assert (again, made) == ("cd34", True)
        assert log.append(again, 5, 1, payload) == f"{5 + MAXLEN + 1}-0"
        assert log.append(again, 10**14, 1, payload) == f"{10**14 + 1}-0"  # written out whole
    finally:
        log.close()


def test_a_log_deleted_under_a_running_room_is_numbered_on_above_everything_seen(room, db, pair):
    _, _, ada, bob = pair
    bob.send("one")
    seen = ada.receive_until(is_message("one")).seq
    bob.receive_until(is_message("one"))
    db.delete(_key(room, "events"))
    for person in (ada, bob):  # each server finds the log lost at its next publish
        person.send(f"after {person.nick}")
        person.receive_until(has_code("backplane-down"))
        assert person.receive_until(is_message(f"after {person.nick}")).seq == 0
        person.receive_until(has_code("backplane-up"), timeout=LEAVE_WAIT)
    ada.send("numbered on")
    heard = [person.receive_until(is_message("numbered on")).seq for person in (ada, bob)]
    assert heard[0] == heard[1] > seen


def test_complaints_say_each_thing_once_and_few_of_a_kind_at_a_time(caplog):
    from labchat.backplane.redis import Complaints

    caplog.set_level(logging.WARNING, logger="labchat.backplane")
    now = [0.0]
    complain = Complaints(every=60.0, burst=2, clock=lambda: now[0])
    assert complain("entry", "1-0", "entry 1-0 is bad")
    assert not complain("entry", "1-0", "entry 1-0 is bad")  # the same thing: said already
    assert complain("entry", "2-0", "entry 2-0 is bad")
    assert not complain("entry", "3-0", "entry 3-0 is bad")  # a third of a kind in a minute: held
    assert complain("servers", "x", "servers holds x")  # another kind has its own count
    now[0] = 61.0
    assert complain("entry", "4-0", "entry 4-0 is bad")
    assert [r.getMessage() for r in caplog.records] == [
        "entry 1-0 is bad",
        "entry 2-0 is bad",
        "servers holds x",
        "entry 4-0 is bad (and 1 more like it before, not shown)",
    ]


def test_an_entry_that_is_not_one_is_malformed_and_nothing_else():
    from labchat.backplane.entries import Malformed, unpack

    line = json.dumps({"type": "message", "sender": "m", "text": "t", "seq": 1})
    for data in [
        b"\xff\x00",
        b"[1, 2, 3]",
        b"7",
        b'{"v": 2}',
        b'{"v": 1, "o": 5, "d": []}',
        b'{"v": 1, "o": "x", "d": {}}',
        b'{"v": 1, "o": "x", "d": [], "j": 7}',
        b'{"v": 1, "o": "x", "d": [], "j": ["a", null]}',
        b'{"v": 1, "o": "x", "d": [], "x": []}',
        b'{"v": 1, "o": "x", "d": [7]}',
        b'{"v": 1, "o": "x", "d": [[7, null]]}',
        b'{"v": 1, "o": "x", "d": [["not json", null]]}',
        *(
            json.dumps({"v": 1, "o": "x", "d": [[line, to]]}).encode()
            for to in ([1.5], [None], [[1]], [True], [""], 3, "bob")
        ),
        json.dumps({"v": 1, "o": "x", "d": [[line, None]] * 3}).encode(),  # 3 numbers below "2-0"
        # a lone surrogate in an event's text: no server could send it on
        json.dumps({"v": 1, "o": "x", "d": [['{"type":"message","text":"x\\ud800"}', None]]}).encode(),
        b"[" * 100_000 + b"]" * 100_000,
    ]:
        with pytest.raises(Malformed):
            unpack(data, "2-0")


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


def test_a_big_shared_room_s_joins_and_leaves_are_on_every_server_s_record(
    shared_redis, shared, raw_peer, tmp_path
):
    from labchat.room import BIG_ROOM

    records = [tmp_path / "here.jsonl", tmp_path / "there.jsonl"]
    here, there = (shared(shared_redis.url, log=record) for record in records)
    peers = [raw_peer(here) for _ in range(BIG_ROOM + 2)]
    for n, peer in enumerate(peers):
        assert peer.hello(f"s{n}")["type"] == "welcome"
    peers[-1].sock.close()  # a leave nobody is told of
    assert wait_until(lambda: len(here.users()) == BIG_ROOM + 1, LEAVE_WAIT)

    def rows(record: Path) -> list[dict]:
        return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]

    def left(record: Path) -> bool:
        return f"s{BIG_ROOM + 1}" in [r["sender"] for r in rows(record) if r["type"] == "leave"]

    for record in records:  # the leave, read from the log, is on both records (and all before it)
        assert wait_until(partial(left, record), WAIT)
        assert [r["sender"] for r in rows(record) if r["type"] == "join"] == [
            f"s{n}" for n in range(BIG_ROOM + 2)
        ]
