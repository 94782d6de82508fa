"""Bad input and slow clients over real sockets: each gets a reason, everyone else carries on.

Every test here has a bystander pair, ada and bob, who keep chatting while one
peer misbehaves; bob must get every one of ada's messages, in order, promptly.
The server's log must show one line for each incident and never a traceback.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from labchat import ChatClient
from labchat.protocol import MAX_LINE

WAIT = 5.0  # seconds any one wait may take


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="labchat.server")
    return caplog


def lines_about(log: pytest.LogCaptureFixture, words: str) -> list[str]:
    """The server's log lines that mention ``words``; none may carry a traceback."""
    records = [r for r in log.records if r.name == "labchat.server"]
    assert not any(r.exc_info for r in records), [r.getMessage() for r in records if r.exc_info]
    assert "Traceback" not in log.text
    return [r.getMessage() for r in records if words in r.getMessage()]


def said_by(nick: str) -> Callable[[object], bool]:
    return lambda e: e.kind == "message" and e.sender == nick


def keep_chatting(ada: ChatClient, bob: ChatClient, count: int = 20, tag: str = "") -> None:
    """Ada sends ``count`` messages; bob gets each one, in order, within a second."""
    for n in range(count):
        ada.send(f"{tag}{n}")
        started = time.monotonic()
        event = bob.receive_until(lambda e: e.kind == "message" and e.sender == "ada", timeout=WAIT)
        assert event.text == f"{tag}{n}"
        assert time.monotonic() - started < 1.0
    ada.pending()


@pytest.fixture
def bystanders(connect) -> tuple[ChatClient, ChatClient]:
    ada, bob = connect("ada"), connect("bob")
    ada.receive_until(lambda e: e.kind == "join" and e.sender == "bob", timeout=WAIT)
    return ada, bob


@pytest.fixture
def while_chatting(bystanders) -> Iterator[Callable[[Callable[[], None]], None]]:
    """``while_chatting(misbehave)``: run ``misbehave`` in a thread while ada and bob chat."""
    ada, bob = bystanders
    failures: list[BaseException] = []

    def run(misbehave: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                misbehave()
            except BaseException as exc:  # reported in the test's own thread below
                failures.append(exc)

        thread = threading.Thread(target=guarded, name="misbehaving peer")
        thread.start()
        keep_chatting(ada, bob, 50, tag="during ")
        thread.join(WAIT * 2)
        assert not thread.is_alive()
        if failures:
            raise failures[0]
        keep_chatting(ada, bob, 5, tag="after ")

    yield run


def peak_growth(action: Callable[[], None]) -> int:
    """How far traced memory rose above where it started while ``action`` ran, in bytes."""
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


def send_forever(peer, data: bytes, total: int) -> None:
    """Send ``total`` bytes of ``data`` until the server hangs up."""
    sent = 0
    try:
        while sent < total:
            peer.send(data)
            sent += len(data)
    except OSError:  # the server cut us off, as it should
        pass


# -- lines too long -----------------------------------------------------------------------


def test_megabytes_without_a_newline(raw, while_chatting, log) -> None:
    eve = raw()
    eve.hello("eve")
    chunk = b"x" * 65536

    def flood() -> None:
        growth = peak_growth(lambda: send_forever(eve, chunk, 8 * 2**20))
        assert growth < 2**20, f"memory grew by {growth} bytes for one endless line"

    while_chatting(flood)
    error = eve.event_until(lambda e: e["type"] == "error")
    assert error["code"] == "line-too-long"
    assert error["text"] == f"line too long: over {MAX_LINE} bytes with no newline, limit {MAX_LINE}"
    # The rest of that line is dropped unread; the next line is chat again.
    eve.send(b"\n")
    eve.say("back to normal")
    message = eve.event_until(lambda e: e["type"] == "message" and e["sender"] == "eve")
    assert message["text"] == "back to normal"
    assert len(lines_about(log, "line too long")) == 1


def test_an_endless_first_line(raw, while_chatting, log) -> None:
    eve = raw()
    eve.line()
    while_chatting(lambda: send_forever(eve, b"y" * 65536, 4 * 2**20))
    error = eve.event()
    assert (error["type"], error["code"]) == ("error", "line-too-long")
    eve.closed()
    assert len(lines_about(log, "line too long")) == 1


def test_a_long_line_with_a_newline_is_refused_the_same_way(raw, bystanders, log) -> None:
    eve = raw()
    eve.hello("eve")
    eve.say("before")
    eve.say("z" * (MAX_LINE + 1))
    eve.say("after")
    # The error takes the long line's place, between the messages around it.
    kinds = [eve.event_until(lambda e: e["type"] in ("message", "error")) for _ in range(3)]
    assert [(e["type"], e.get("text", "")[:6]) for e in kinds] == [
        ("message", "before"),
        ("error", "line t"),
        ("message", "after"),
    ]
    assert kinds[1]["code"] == "line-too-long" and f"limit {MAX_LINE}" in kinds[1]["text"]
    seen = bystanders[1].receive_until(lambda e: e.kind == "message" and e.text == "after", timeout=WAIT)
    assert seen.sender == "eve"
    keep_chatting(*bystanders)
    assert len(lines_about(log, "line too long")) == 1


# -- broken text and frames ---------------------------------------------------------------


def test_invalid_utf8_gets_an_error_and_the_chat_goes_on(raw, bystanders, log) -> None:
    ada, bob = bystanders
    eve = raw()
    eve.hello("eve")
    eve.send(b'{"type":"say","text":"caf\xe9"}\n')
    error = eve.event_until(lambda e: e["type"] == "error")
    assert (error["code"], error["text"]) == ("bad-utf8", "invalid UTF-8 at byte 25")
    eve.say("sorry, café")
    assert bob.receive_until(said_by("eve"), timeout=WAIT).text == "sorry, café"
    keep_chatting(ada, bob)
    assert len(lines_about(log, "invalid UTF-8")) == 1


def test_invalid_utf8_from_netcat(raw, bystanders, log) -> None:
    ada, bob = bystanders
    carl = raw()
    carl.line()
    carl.send("carl\n")
    carl.until(lambda line: line.startswith(b"greeter: "))
    carl.send(b"\xc3\x28 oops\n")
    assert carl.text() == "!!! invalid UTF-8 at byte 0"
    carl.send("fine now\n")
    assert bob.receive_until(said_by("carl"), timeout=WAIT).text == "fine now"
    keep_chatting(ada, bob)
    assert len(lines_about(log, "invalid UTF-8")) == 1


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"hello there", "bad-json"),
        (b"{not json}", "bad-json"),
        (b"42", "bad-frame"),
        (b'{"type":"teleport","to":"mars"}', "bad-frame"),
        (b'{"type":"say","text":123}', "bad-frame"),
        (b'{"type":"hello","nick":"again"}', "bad-frame"),
        (b'{"type":"say","text":"\\udc00"}', "bad-utf8"),
        (b"[" * 50_00, "bad-json"),
    ],
)
def test_malformed_and_unknown_frames_get_an_error_and_the_chat_goes_on(
    raw, bystanders, log, line: bytes, code: str
) -> None:
    ada, bob = bystanders
    eve = raw()
    eve.hello("eve")
    eve.send(line + b"\n")
    error = eve.event_until(lambda e: e["type"] == "error")
    assert error["code"] == code and error["text"]
    eve.say("still me")
    assert bob.receive_until(said_by("eve"), timeout=WAIT).text == "still me"
    keep_chatting(ada, bob, 5)
    assert len(lines_about(log, "eve")) == 2  # joined, and the one bad frame


def test_binary_junk(raw, while_chatting, log) -> None:
    junk = random.Random(2024).randbytes(200_000)
    eve = raw()
    eve.hello("eve")
    while_chatting(lambda: send_forever(eve, junk, len(junk)))
    eve.send(b"\n" + b'{"type":"say","text":"back to normal"}\n')
    # Junk lines get errors, and a line past the limit ends it; the server stays up either way.
    codes = set()
    try:
        while (answer := eve.event())["type"] != "message" or answer["sender"] != "eve":
            codes.add(answer.get("code"))
        assert answer["text"] == "back to normal"
    except (EOFError, ConnectionResetError):
        assert "line-too-long" in codes
    codes.discard(None)  # the join and the greeter's welcome
    assert codes and codes <= {"bad-json", "bad-utf8", "bad-frame", "line-too-long"}


def test_junk_instead_of_a_nick(raw, bystanders, log) -> None:
    for junk in (b"\x00\x01\x02\xff\n", b"\x1b[2J\x1b[H\n", b"   \n", b"<script>x</script>\n"):
        peer = raw()
        peer.line()
        peer.send(junk)
        answer = peer.text()
        assert answer.startswith("!!! ")
        assert "\x1b" not in answer and "\x00" not in answer
        peer.closed()
    keep_chatting(*bystanders)
    assert len(lines_about(log, "refused")) == 4


def test_escapes_from_netcat_reach_others_inert(raw, bystanders) -> None:
    ada, bob = bystanders
    carl = raw()
    carl.line()
    carl.send("carl\n")
    carl.until(lambda line: line.startswith(b"greeter: "))
    carl.send(b"\x1b[2J\x1b]0;owned\x07 \xc2\x9b31m hi\n")
    event = bob.receive_until(said_by("carl"), timeout=WAIT)
    assert event.text == "^[[2J^[]0;owned^G <U+009B>31m hi"


# -- too many, too fast -------------------------------------------------------------------


def test_a_burst_past_the_rate_is_paced_not_dropped(make_server, connect, raw, log) -> None:
    limited = make_server(rate=50, burst=20)
    ada, bob = connect("ada", server=limited), connect("bob", server=limited)
    eve = raw(limited)
    eve.hello("eve")
    eve.send(b"".join(b'{"type":"say","text":"spam %d"}\n' % n for n in range(30)))
    answers = [eve.event_until(lambda e: e["type"] in ("message", "system")) for _ in range(31)]
    notices = [a for a in answers if a["type"] == "system"]
    assert [n["code"] for n in notices] == ["paced"] and "nothing is lost" in notices[0]["text"]
    # The burst goes at once; the notice comes when the bucket runs dry; the rest follows.
    texts = [a.get("text") for a in answers]
    assert texts.index(notices[0]["text"]) == 20
    assert [t for t in texts if t.startswith("spam")] == [f"spam {n}" for n in range(30)]
    got = [bob.receive_until(said_by("eve"), timeout=WAIT).text for _ in range(30)]
    assert got == [f"spam {n}" for n in range(30)]  # every line, in order
    keep_chatting(ada, bob, 5)
    assert len(lines_about(log, "paced")) == 1


def test_a_paced_sender_that_hangs_up_at_once_still_has_every_line_delivered(make_server, connect) -> None:
    limited = make_server(rate=50, burst=20)
    bob = connect("bob", server=limited)
    with socket.create_connection(limited.address) as ann:  # printf 'ann\n...' | nc -q0 HOST PORT
        ann.sendall(b"ann\n" + b"".join(b"line %d\n" % n for n in range(30)))
    # Its echoes find the socket gone; the lines it sent are still the room's, at its pace.
    got = [bob.receive_until(said_by("ann"), timeout=WAIT).text for _ in range(30)]
    assert got == [f"line {n}" for n in range(30)]
    assert bob.receive_until(lambda e: e.kind == "leave", timeout=WAIT).sender == "ann"


def test_a_flood_is_slowed_and_the_room_keeps_talking(make_server, connect, raw, log) -> None:
    limited = make_server(rate=200, burst=20)
    ada, bob, carol = (connect(nick, server=limited) for nick in ("ada", "bob", "carol"))
    eve = raw(limited)
    eve.hello("eve")
    eve.send(b"".join(b'{"type":"say","text":"flood %d"}\n' % n for n in range(400)))
    keep_chatting(ada, carol, 5)  # others are heard while eve's lines trickle in
    got = [bob.receive_until(said_by("eve"), timeout=WAIT).text for _ in range(400)]
    assert got == [f"flood {n}" for n in range(400)]
    eve.say("still here")
    assert bob.receive_until(said_by("eve"), timeout=WAIT).text == "still here"
    assert "eve" in limited.users()
    assert len(lines_about(log, "paced")) == 1


# -- silent and slow peers ----------------------------------------------------------------


def test_a_peer_that_never_says_hello_is_told_and_cut_off(make_server, connect, raw, log) -> None:
    impatient = make_server(hello_timeout=0.3)
    ada, bob = connect("ada", server=impatient), connect("bob", server=impatient)
    mute = raw(impatient)
    assert mute.line().startswith(b"labchat/1 ")
    error = mute.event()
    assert (error["type"], error["code"], error["text"]) == (
        "error",
        "hello-timeout",
        "no hello within 0.3 seconds",
    )
    mute.closed()
    keep_chatting(ada, bob, 5)
    assert len(lines_about(log, "no hello")) == 1


def test_a_peer_that_stops_reading_is_cut_off_and_nobody_else_waits(make_server, connect, raw, log) -> None:
    busy = make_server(outbox_limit=64 * 1024, bot=False, replay=20)  # replay kept small: 4 KB events
    ada, bob = connect("ada", server=busy), connect("bob", server=busy)
    sloth = raw(busy)
    sloth.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sloth.hello("sloth")  # ... and reads nothing more
    bob.receive_until(lambda e: e.kind == "join" and e.sender == "sloth", timeout=WAIT)
    big = "😀" * 990  # about 4 KB a message on the wire
    cut_off: list[str] = []

    def talk() -> None:
        for n in range(2000):
            ada.send(f"{n} {big}")
            started = time.monotonic()
            while True:
                event = bob.receive(timeout=WAIT)
                if event.kind == "leave" and event.sender == "sloth":
                    cut_off.append(event.text)
                if event.kind == "message":
                    break
            assert event.text.startswith(f"{n} ")  # nothing lost, nothing out of order
            assert time.monotonic() - started < 1.0
            ada.pending()
            if cut_off and n >= 1000:  # 4 MB went out, long after the cut
                return

    growth = peak_growth(talk)
    assert cut_off == ["too slow: over 65536 bytes waiting to be read"]
    assert growth < 2 * 2**20, f"memory grew by {growth} bytes for a client that reads nothing"
    assert busy.users() == ["ada", "bob"]
    assert len(lines_about(log, "too slow")) == 1


def test_a_peer_that_reads_nothing_for_too_long_is_cut_off_as_stuck(make_server, connect, raw, log) -> None:
    busy = make_server(stall_timeout=1.0, outbox_limit=64 * 2**20, bot=False)
    ada, bob = connect("ada", server=busy), connect("bob", server=busy)
    sloth = raw(busy)
    sloth.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sloth.hello("sloth")  # ... and reads nothing more
    bob.receive_until(lambda e: e.kind == "join" and e.sender == "sloth", timeout=WAIT)
    big = "😀" * 900  # about 3.6 KB on the wire
    n = 0
    while True:  # well under the outbox limit: only the lack of progress can cut it off
        ada.send(f"{n} {big}")
        event = bob.receive_until(lambda e: e.kind in ("message", "leave"), timeout=WAIT)
        if event.kind == "leave":
            break
        assert event.text.startswith(f"{n} ")
        n += 1
    assert event.sender == "sloth" and event.text.startswith("stuck: stopped reading")
    assert "none taken for 1 second" in event.text and "1 seconds" not in event.text
    assert busy.users() == ["ada", "bob"]
