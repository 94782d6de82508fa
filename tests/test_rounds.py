"""A round's broadcasts sent straight to readers (``labchat/engine/rounds.py``) keep the room's order.

On both engines, through real sockets: events another thread makes while a sender floods
reach every reader in the room's order. Then the selector engine with its rounds run by
the test on its own thread (real sessions, real socket pairs): the interleavings that a
real loop makes only now and then are made here on purpose.
"""

from __future__ import annotations

import json
import selectors
import socket
import threading

import pytest
from conftest import WAIT

from labchat.engine.outbox import Outbox
from labchat.engine.rounds import ANY_THREAD, Round
from labchat.engine.selector import SelectorChatServer
from labchat.engine.session import Session


def test_events_from_another_thread_keep_the_room_s_order_beside_a_flood(make_server, connect) -> None:
    server = make_server(bot=False)
    ada, bob, cy, dee = (connect(nick, server=server) for nick in ("ada", "bob", "cy", "dee"))
    bob.receive_until(lambda e: e.kind == "join" and e.sender == "dee", timeout=WAIT)
    cy.receive_until(lambda e: e.kind == "join" and e.sender == "dee", timeout=WAIT)

    def moderate() -> None:
        for _ in range(20):
            server.mute("dee")
            server.unmute("dee")

    operator = threading.Thread(target=moderate)
    operator.start()
    for n in range(300):
        ada.send(f"line {n}")
    operator.join(WAIT)
    for reader in (bob, cy):
        seen = []
        while (
            len([e for e in seen if e.kind == "message"]) < 300
            or len([e for e in seen if e.kind == "system"]) < 40
        ):
            seen.append(reader.receive_until(lambda e: e.kind in ("message", "system"), timeout=WAIT))
        seqs = [e.seq for e in seen]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert [e.text for e in seen if e.kind == "message"] == [f"line {n}" for n in range(300)]


@pytest.mark.parametrize("then", [b'{"type":"say","text":"bye"}\n', b""])
def test_a_sender_that_leaves_in_the_same_packet_still_gets_its_own_lines(raw, then) -> None:
    peer = raw()
    assert peer.hello("ada")["type"] == "welcome"
    peer.send(b'{"type":"say","text":"hi"}\n{"type":"say","text":"there"}\n' + then)
    if not then:
        peer.sock.shutdown(socket.SHUT_WR)  # the end of its input, as a piped program's
    said = [json.loads(line) for line in peer.rest()]
    assert [e["text"] for e in said if e["type"] == "message" and e["sender"] == "ada"] == ["hi", "there"]


class HandRounds(SelectorChatServer):
    """The selector engine with no thread of its own: the test runs its rounds, on its thread."""

    def _serve(self, listener: socket.socket) -> None:
        self._prepare(listener)
        self._thread = threading.current_thread()
        self.hub.round = Round()

    def add(self, nick: str, rcvbuf: int | None = None) -> tuple[Session, socket.socket]:
        """A joined session whose client end is returned (banner and welcome read off it)."""
        ours, theirs = socket.socketpair()
        if rcvbuf:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, rcvbuf)
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        ours.setblocking(False)
        theirs.settimeout(WAIT)
        session = Session(self, ("127.0.0.1", 40000 + len(self._socks)), len(self._socks) + 1)
        session.sock = self._socks[session] = ours
        self._masks[session] = selectors.EVENT_READ
        self._selector.register(ours, selectors.EVENT_READ, session)
        session.start()
        self.said(session, json.dumps({"type": "hello", "nick": nick}) + "\n")
        assert session.joined, session.reason
        return session, theirs

    def said(self, session: Session, data: str) -> None:
        """One round in which ``session``'s client sent ``data``."""
        session.received(data.encode())
        self._after_process(session, session.process())
        self._flush_dirty()

    def shut(self) -> None:
        for sock in (*self._socks.values(), self._listener, self._selector, self._wake_r, self._wake_w):
            sock.close()


@pytest.fixture
def hand():
    server = HandRounds(port=0, bot=False, rate=None)
    server.start()
    yield server
    server.shut()


def events(sock: socket.socket, count: int) -> list[dict]:
    """The next ``count`` events a client end receives (whole lines, however they arrive)."""
    data = b""
    while data.count(b"\n") < count:
        data += sock.recv(65536)
    lines = data.split(b"\n")
    assert len(lines) == count + 1 and lines[-1] == b"", "more arrived than expected"
    return [json.loads(line) for line in lines[:count]]


def drained(sock: socket.socket) -> None:
    """Read what a client end has waiting (the joins it was told of)."""
    sock.settimeout(0.05)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        pass
    sock.settimeout(WAIT)


def test_a_round_s_broadcast_reaches_each_reader_with_one_send_and_no_outbox(hand) -> None:
    ada, ada_end = hand.add("ada")
    bob, bob_end = hand.add("bob")
    for end in (ada_end, bob_end):
        drained(end)
    before = bob.outbox.sent_total
    hand.said(ada, '{"type":"say","text":"one"}\n{"type":"say","text":"two"}\n')
    assert [e["text"] for e in events(bob_end, 2)] == ["one", "two"]
    assert bob.outbox.size == 0 and bob.outbox.sent_total > before  # counted as sent
    assert bob.messages_out >= 2


def test_a_private_event_in_the_same_round_comes_after_the_round_s_broadcasts(hand) -> None:
    ada, ada_end = hand.add("ada")
    bob, bob_end = hand.add("bob")
    for end in (ada_end, bob_end):
        drained(end)
    ada.received(b'{"type":"say","text":"first"}\n')  # one round: ada speaks, then bob errs
    bob.received(b'{"type":"nonsense"}\n{"type":"say","text":"second"}\n')
    for session in (ada, bob):
        hand._after_process(session, session.process())
    hand._flush_dirty()
    got = events(bob_end, 3)
    assert [(e["type"], e.get("text")) for e in got[::2]] == [("message", "first"), ("message", "second")]
    assert got[1]["type"] == "error"


def test_what_another_thread_queues_after_the_round_was_taken_goes_behind_it(hand) -> None:
    ada, ada_end = hand.add("ada")
    bob, bob_end = hand.add("bob", rcvbuf=4096)
    for end in (ada_end, bob_end):
        drained(end)
    ada.received(burst(60).encode())  # some 55 KB, to a reader whose kernel takes a few KB
    hand._after_process(ada, ada.process())
    taken = hand.hub.take_round()  # the engine has taken the round but not sent it yet...
    operator = threading.Thread(target=hand.mute, args=("ada",))  # ...when another thread speaks
    operator.start()
    operator.join(WAIT)
    assert bob.outbox.size  # the notice waits in bob's outbox; the round's lines are not there
    hand._send_round(taken)
    assert bob.backlogged  # the kernel took part of the round: the rest goes before the notice
    hand._run_calls()  # the operator's request to send
    got = read_all(hand, bob, bob_end, 61)
    assert [e["text"].split()[0] for e in got[:60]] == [str(n) for n in range(60)]
    assert got[60]["type"] == "system" and got[60]["seq"] == got[59]["seq"] + 1


def test_what_the_kernel_does_not_take_waits_at_the_front_of_the_outbox(hand) -> None:
    ada, ada_end = hand.add("ada")
    bob, bob_end = hand.add("bob", rcvbuf=4096)
    for end in (ada_end, bob_end):
        drained(end)
    hand.said(ada, burst(60))
    assert bob.backlogged and bob.outbox.size
    hand.said(ada, '{"type":"say","text":"after"}\n')  # the next round: behind what waits
    got = read_all(hand, bob, bob_end, 61)
    assert [e["text"].split()[0] for e in got] == [str(n) for n in range(60)] + ["after"]


def test_a_reader_whose_round_is_on_its_way_is_not_named_in_the_next_one(hand) -> None:
    """The threaded engine's round: any thread may add to the next round while one thread
    still sends the last. A reader that round has not reached yet must get the next line
    behind it (through its outbox), even when the kernel takes only part of the first."""
    hand.hub.round = Round(owner=ANY_THREAD)
    ada, ada_end = hand.add("ada")
    bob, bob_end = hand.add("bob", rcvbuf=4096)
    for end in (ada_end, bob_end):
        drained(end)
    ada.received(burst(60).encode())
    hand._after_process(ada, ada.process())
    taken = hand.hub.take_round()  # on its way: the sending thread has it, bob not reached yet
    ada.received(b'{"type":"say","text":"after"}\n')  # another reader thread's line, meanwhile
    hand._after_process(ada, ada.process())
    hand._send_round(taken)  # bob's kernel takes a few KB; the rest waits in the outbox
    hand._flush_dirty()  # then the next round and the outboxes
    got = read_all(hand, bob, bob_end, 61)
    assert [e["text"].split()[0] for e in got] == [str(n) for n in range(60)] + ["after"]
    assert bob.messages_out >= 61


def test_a_reader_that_starts_leaving_before_its_round_goes_gets_it_and_is_drained(hand) -> None:
    ada, ada_end = hand.add("ada")
    bob, bob_end = hand.add("bob")
    for end in (ada_end, bob_end):
        drained(end)
    ada.received(b'{"type":"say","text":"last words"}\n')
    hand._after_process(ada, ada.process())  # the round now holds the line for bob
    assert bob.in_round
    bob.end("gone to lunch")
    assert not bob.drained.is_set()  # it is owed the round's bytes
    hand._flush_dirty()
    assert bob.drained.is_set() and bob not in hand._socks  # sent, so the engine let it go
    got = b""
    while chunk := bob_end.recv(65536):
        got += chunk
    said = [json.loads(line) for line in got.splitlines()]
    assert [e["text"] for e in said if e["type"] == "message"] == ["last words"]


def test_a_reader_whose_peer_is_gone_is_closed_with_a_reason_and_the_others_still_get_the_round(
    hand,
) -> None:
    ada, ada_end = hand.add("ada")
    bob, bob_end = hand.add("bob")
    cy, cy_end = hand.add("cy")
    for end in (ada_end, bob_end, cy_end):
        drained(end)
    bob_end.close()  # its next send fails: the connection is gone
    hand.said(ada, '{"type":"say","text":"anyone there?"}\n')
    assert bob not in hand._socks and bob.reason.startswith("connection lost")
    got = events(cy_end, 2)  # the line, then the room hears that bob left, and why
    assert [(e["type"], e.get("sender")) for e in got] == [("message", "ada"), ("leave", "bob")]
    assert got[1]["text"] == "connection lost (Broken pipe)"


def burst(count: int) -> str:
    """``count`` say frames of some 900 bytes each, numbered from 0."""
    return "".join(json.dumps({"type": "say", "text": f"{n} " + "x" * 900}) + "\n" for n in range(count))


def read_all(hand: HandRounds, session: Session, end: socket.socket, count: int) -> list[dict]:
    """Read ``count`` events off a client end, running the engine's sends as its socket drains."""
    data = b""
    while data.count(b"\n") < count:
        if session.outbox.size:
            hand._dirty[session] = None  # its socket is writable again, as a real loop would see
        hand._flush_dirty()
        data += end.recv(65536)
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def test_round_take_joins_a_round_for_the_same_readers_and_splits_it_otherwise() -> None:
    same = Round()
    same.add(b"a\n", ["bob", "cy"])
    same.add(b"b\n", ["bob", "cy"])
    assert same.take() == [(["bob", "cy"], b"a\nb\n", 2, 1)] and not same
    mixed = Round()
    mixed.add(b"a\n", ["bob", "cy"])
    mixed.add(b"b\nc\n", ["cy"], 2)
    assert mixed.take() == [(["bob"], b"a\n", 1, 1), (["cy"], b"a\nb\nc\n", 3, 1)]


def test_outbox_put_front_goes_first() -> None:
    box = Outbox(0.0)
    box.put(b"later", 2.0)
    box.put(b" still", 2.5)
    box.put_front(b"first ", 3.0)
    assert box.size == len(b"first later still")
    assert box.peek() == b"first later still" and box.progress == 2.0  # waiting since the first put
    empty = Outbox(0.0)
    empty.put_front(b"rest", 4.0)
    assert (empty.peek(), empty.progress) == (b"rest", 4.0)


def test_outbox_put_front_goes_behind_a_round_s_rest_and_ahead_of_the_others() -> None:
    box = Outbox(0.0)
    box.put(b"private", 1.0)  # queued after the reader was named in the rounds below
    box.put_front(b"rest of round one|", 2.0)
    box.put_front(b"round two|", 3.0)  # the next round's rest: behind it
    assert box.front == len(b"rest of round one|round two|")
    box.sent(5, 4.0)  # the kernel takes a little
    assert box.front == len(b"rest of round one|round two|") - 5
    assert box.peek() == b"of round one|round two|private"
    box.sent(box.size, 5.0)
    assert box.front == 0 and box.size == 0
    empty = Outbox(0.0)
    empty.put(b"later", 1.0)
    empty.put_front(b"first ", 2.0)  # no front part: it goes first
    assert empty.peek() == b"first later"
