"""Hardening, proven over real sockets: the room token, TLS, and clients that misbehave on purpose.

Every test runs a real ChatServer on 127.0.0.1, port 0, and talks to it with
ChatClient or with a raw socket that does exactly what a hostile peer would:
say nothing, trickle bytes, flood, stop reading, send bytes that are not text.
The rule checked throughout: the offender gets a clear reason, everyone else
carries on undisturbed, and nothing one person sends can act on another's view.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import environ, wait_until

from labchat import ChatClient, ChatServer, Event, JoinRefused
from labchat.engine import limits
from labchat.protocol import MAX_LINE, decode_event
from labchat.render import html_line, plain, terminal
from labchat.tls import client_context, fingerprint, make_certificate, server_context


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The server's log records at ERROR or worse: each one is a surprise it did not handle."""
    caplog.set_level(logging.DEBUG, logger="labchat")
    return lambda: [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def is_event(kind: str, **fields: object) -> Callable[[Event], bool]:
    return lambda e: e.kind == kind and all(getattr(e, k) == v for k, v in fields.items())


def collect_until(client: ChatClient, match: Callable[[Event], bool], timeout: float = 5.0) -> list[Event]:
    """Every event the client receives up to and including the first that matches."""
    seen: list[Event] = []
    client.receive_until(lambda e: seen.append(e) or match(e), timeout)
    return seen


# -- the room token ------------------------------------------------------------------------------------

TOKEN = "owl-7-harbour"


def test_the_right_token_lets_programs_and_people_in(engine, raw_peer) -> None:
    with (
        engine(port=0, token=TOKEN, bot=False) as server,
        ChatClient(*server.address, nick="ada", token=TOKEN) as ada,
    ):
        person = raw_peer(server, read_banner=True)
        assert b"token" in person.banner  # a person is told how to give it
        person.send(f"bob {TOKEN}\n".encode())
        assert person.line().startswith(b"Welcome, bob!")
        ada.receive_until(is_event("join", sender="bob"))
        assert server.users() == ["ada", "bob"]
        person.close()


@pytest.mark.parametrize("token", [None, "owl-7-harbor", TOKEN + "x", ""])
def test_a_wrong_or_missing_token_is_refused_before_seeing_or_saying_anything(
    engine, token: str | None, raw_peer
) -> None:
    with (
        engine(port=0, token=TOKEN, bot=False) as server,
        ChatClient(*server.address, nick="ada", token=TOKEN) as ada,
    ):
        ada.send("a secret plan")
        with pytest.raises(JoinRefused) as refused:
            ChatClient(*server.address, nick="eve", token=token, timeout=5)
        assert refused.value.code == "bad-token"
        assert "token" in str(refused.value)

        eve = raw_peer(server, read_banner=True)
        eve.send((f"eve {token}\n" if token else "eve\n").encode())
        lines = eve.rest()
        assert len(lines) == 1 and b"token" in lines[0]  # one line saying why, then the door shuts
        seen = bytes(eve.received)
        assert b"secret" not in seen and b"ada" not in seen  # nothing of the room leaked
        ada.send("still here")
        ada.receive_until(is_event("message", text="still here"))
        assert not [e for e in ada.pending() if "eve" in (e.sender, e.text)]
        assert server.users() == ["ada"]


def test_the_token_never_appears_in_logs_or_transcript(engine, tmp_path: Path, caplog, raw_peer) -> None:
    caplog.set_level(logging.DEBUG)
    transcript = tmp_path / "room.jsonl"
    with (
        engine(port=0, token=TOKEN, log=transcript) as server,
        ChatClient(*server.address, nick="ada", token=TOKEN) as ada,
    ):
        with pytest.raises(JoinRefused):
            ChatClient(*server.address, nick="eve", token=TOKEN[:-1] + "?")
        person = raw_peer(server, read_banner=True)
        person.send(f"bob {TOKEN}\n".encode())
        person.line()
        person.send(b"hi all\n")
        ada.receive_until(is_event("message", sender="bob"))
        person.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused" in logged and "joined" in logged  # the log does speak of these
    assert TOKEN not in logged and TOKEN[:-1] not in logged
    assert TOKEN[:-1] not in transcript.read_text()


def test_listening_beyond_loopback_without_a_token_warns_what_anyone_can_do(engine, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="labchat")
    with engine("127.0.0.1", 0, bot=False):
        pass
    with engine("0.0.0.0", 0, bot=False, token=TOKEN):
        pass
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with engine("0.0.0.0", 0, bot=False):
        pass
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "no token" in warning and "anyone" in warning and "read every message" in warning
    assert "--token" in warning


# -- TLS -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "class.pem", folder / "class-key.pem"
    make_certificate(cert, key)
    return cert, key


@pytest.fixture
def tls_server(certificate):
    cert, key = certificate
    context = server_context(cert, key)
    with ChatServer(port=0, bot=False, rate=None, outbox_limit=1 << 26, ssl_context=context) as server:
        yield server


def test_a_class_certificate_is_self_signed_for_this_machine_and_its_key_is_private(certificate) -> None:
    cert, key = certificate
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert key.stat().st_mode & 0o077 == 0  # only the instructor can read the key
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert fingerprint(cert) == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_chat_over_tls_with_a_verified_certificate(tls_server, certificate) -> None:
    cert, _ = certificate
    context = client_context(cert)
    with (
        ChatClient(*tls_server.address, nick="ada", ssl_context=context) as ada,
        ChatClient("localhost", tls_server.address[1], nick="bob", ssl_context=context) as bob,
    ):
        ada.send("over TLS")
        assert bob.receive_until(is_event("message", sender="ada")).text == "over TLS"
        peer = ada._sock.getpeercert(binary_form=True)
        assert hashlib.sha256(peer).hexdigest().upper() == fingerprint(cert).replace(":", "")


def test_a_client_that_does_not_trust_the_certificate_refuses_the_server(tls_server, tmp_path) -> None:
    with pytest.raises(ConnectionError, match="certificate was not accepted"):
        ChatClient(*tls_server.address, nick="ada", ssl_context=client_context())
    other, other_key = tmp_path / "other.pem", tmp_path / "other-key.pem"
    make_certificate(other, other_key)  # a look-alike made by someone else
    with pytest.raises(ConnectionError, match="certificate was not accepted"):
        ChatClient(*tls_server.address, nick="ada", ssl_context=client_context(other))


def test_a_certificate_for_another_host_is_refused(engine, tmp_path) -> None:
    cert, key = tmp_path / "elsewhere.pem", tmp_path / "elsewhere-key.pem"
    make_certificate(cert, key, hosts=["chat.example.org"])
    with (
        engine(port=0, bot=False, ssl_context=server_context(cert, key)) as server,
        pytest.raises(ConnectionError, match="certificate was not accepted"),
    ):
        ChatClient(*server.address, nick="ada", ssl_context=client_context(cert))


def test_a_plain_client_gets_a_clear_refusal_from_a_tls_server_quickly(tls_server, errors, raw_peer) -> None:
    started = time.monotonic()
    with pytest.raises(JoinRefused, match="TLS") as refused:
        ChatClient(*tls_server.address, nick="ada")
    assert refused.value.code == "tls-required"
    assert time.monotonic() - started < 4.0
    person = raw_peer(tls_server, read_banner=True)  # a person on netcat reads the same words
    assert person.banner.startswith(b"labchat/1 refused tls-required: ")
    assert b"--tls" in person.banner
    assert not errors()


def test_a_tls_client_gets_a_clear_error_from_a_plain_server_quickly(engine, certificate, errors) -> None:
    cert, _ = certificate
    with engine(port=0, bot=False) as server:
        started = time.monotonic()
        with pytest.raises(ConnectionError, match="does not speak TLS"):
            ChatClient(*server.address, nick="ada", ssl_context=client_context(cert))
        assert time.monotonic() - started < 2.0
        with ChatClient(*server.address, nick="bob") as bob:  # and it carries on serving
            assert bob.users == ["bob"]
    assert not errors()


def test_a_tls_handshake_that_stalls_is_timed_out_after_hello_timeout(
    engine, certificate, raw_peer, caplog
) -> None:
    cert, key = certificate
    caplog.set_level(logging.INFO, logger="labchat")
    timeout = limits.TLS_SNIFF + 2  # past the wait for a first byte: the handshake has begun
    with engine(port=0, bot=False, hello_timeout=timeout, ssl_context=server_context(cert, key)) as server:
        peer = raw_peer(server, timeout=timeout + 5)
        peer.send(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        started = time.monotonic()
        peer.closed()
        assert timeout - 1 < time.monotonic() - started < timeout + 3
        peer.close()
    assert any(f"no hello within {timeout:g} seconds" in r.getMessage() for r in caplog.records)


def test_plain_bytes_after_the_handshake_are_a_broken_record_not_a_failed_handshake(
    engine, certificate
) -> None:
    cert, key = certificate
    with engine(port=0, bot=False, ssl_context=server_context(cert, key)) as server:
        context = client_context(cert)
        with ChatClient(*server.address, nick="bob", ssl_context=context) as bob:
            raw = socket.create_connection(server.address)
            ada = context.wrap_socket(raw, server_hostname="127.0.0.1")
            assert ada.recv(4096).startswith(b"labchat/1 Welcome")
            ada.sendall(b'{"type":"hello","nick":"ada","version":1}\n')
            bob.receive_until(is_event("join", sender="ada"))
            os.write(ada.fileno(), b"plain words on a TLS connection\n")  # under the TLS layer
            left = bob.receive_until(is_event("leave", sender="ada"))
            assert left.text.startswith("broken TLS record (")
            ada.close()


def test_tls_connections_carry_a_two_way_burst_intact(tls_server, certificate) -> None:
    """Each TLS socket is read by one thread while another writes to it, on both ends, at full speed."""
    context = client_context(certificate[0])
    clients = [ChatClient(*tls_server.address, nick=f"u{i}", ssl_context=context) for i in range(3)]
    count = 1500

    def blast(client: ChatClient) -> None:
        for n in range(count):
            client.send(f"{client.nick} {n} " + "x" * 200)

    senders = [threading.Thread(target=blast, args=(c,)) for c in clients]
    for t in senders:
        t.start()
    try:
        for client in clients:
            got: dict[str, list[int]] = {c.nick: [] for c in clients}
            seqs = []
            while sum(map(len, got.values())) < count * len(clients):
                try:
                    event = client.receive(timeout=30)
                except ConnectionError:
                    pytest.fail(f"{client.nick} was cut off: {client.close_reason}")
                if event.kind == "message":
                    nick, n, _ = event.text.split(" ")
                    got[nick].append(int(n))
                    seqs.append(event.seq)
            assert all(numbers == list(range(count)) for numbers in got.values())
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            assert client.connected
    finally:
        for t in senders:
            t.join()
        for c in clients:
            c.close()


# -- clients that misbehave ----------------------------------------------------------------------------


def test_a_client_that_never_says_hello_is_timed_out(engine, raw_peer) -> None:
    with engine(port=0, bot=False, hello_timeout=0.5) as server:
        started = time.monotonic()
        idle = raw_peer(server, read_banner=True)
        (line,) = idle.rest()
        assert decode_event(line).code == "hello-timeout"
        assert 0.4 < time.monotonic() - started < 2.5


def test_a_client_that_trickles_its_hello_is_timed_out_however_slowly_it_sends(engine, raw_peer) -> None:
    with engine(port=0, bot=False, hello_timeout=0.8) as server:
        slow = raw_peer(server, read_banner=True)
        started = time.monotonic()
        stop = threading.Event()

        def trickle() -> None:
            for byte in b'{"type":"hello","nick":"' + b"s" * 1000:
                if stop.wait(0.05):
                    return
                try:
                    slow.send(bytes([byte]))
                except OSError:
                    return

        dripper = threading.Thread(target=trickle)
        dripper.start()
        lines = slow.rest()
        elapsed = time.monotonic() - started
        stop.set()
        dripper.join()
        assert [decode_event(x).code for x in lines] == ["hello-timeout"]
        assert elapsed < 2.5
        with ChatClient(*server.address, nick="ada") as ada:  # nobody else was held up
            assert ada.users == ["ada"]


def test_a_flood_is_paced_with_one_notice_and_nothing_is_dropped(engine, raw_peer) -> None:
    with (
        engine(port=0, bot=False, rate=20.0, burst=5) as server,
        ChatClient(*server.address, nick="ada") as ada,
    ):
        flooder = raw_peer(server, read_banner=True)
        flooder.hello("flo")
        flooder.send(b"".join(f'{{"type":"say","text":"spam {n}"}}\n'.encode() for n in range(30)))
        notice = flooder.decoded_until(is_event("system", code="paced"))
        assert "nothing is lost" in notice.text
        ada.send("can anyone hear me")  # the room is not held up by the flood
        ada.receive_until(is_event("message", sender="ada", text="can anyone hear me"))
        seen = collect_until(ada, is_event("message", sender="flo", text="spam 29"))
        spam = [e.text for e in seen if e.sender == "flo" and e.kind == "message"]
        assert spam[-1] == "spam 29" and spam == sorted(spam, key=lambda t: int(t.split()[1]))
        assert "flo" in server.users()  # slowed, never cut off
        flooder.say("calm again")
        ada.receive_until(is_event("message", text="calm again"))


def test_a_client_that_stops_reading_is_cut_off_and_nobody_else_waits(engine, raw_peer) -> None:
    limit = 64 * 1024
    with (
        engine(port=0, bot=False, rate=None, outbox_limit=limit) as server,
        ChatClient(*server.address, nick="ada") as ada,
        ChatClient(*server.address, nick="bob") as bob,
    ):
        sloth = raw_peer(server, rcvbuf=4096, read_banner=True)
        sloth.hello("sloth")  # ... and from now on it reads nothing
        bob.receive_until(is_event("join", sender="sloth"))
        text = "z" * 900
        delays = []
        cut_off = None
        for n in range(5000):
            started = time.monotonic()
            ada.send(f"{n} {text}")
            while True:
                event = bob.receive(timeout=5)
                if event.kind == "leave" and event.sender == "sloth":
                    cut_off = event
                if event.kind == "message" and event.text.startswith(f"{n} "):
                    break
            delays.append(time.monotonic() - started)
            if cut_off:
                break
        assert cut_off is not None, "the client that stopped reading was never cut off"
        assert "too slow" in cut_off.text and str(limit) in cut_off.text
        assert server.users() == ["ada", "bob"]
        delays.sort()
        assert delays[len(delays) // 2] < 0.05, f"median {delays[len(delays) // 2]:.3f}s"
        assert delays[-1] < 1.0, f"slowest {delays[-1]:.3f}s"
        sloth.close()


def test_connection_limits_hold_and_free_up_again(engine, raw_peer) -> None:
    with engine(port=0, bot=False, max_clients=2, hello_timeout=30) as server:
        ada = ChatClient(*server.address, nick="ada")
        lurkers = [raw_peer(server, read_banner=True) for _ in range(3)]  # connected, not joined: no seat
        bob = ChatClient(*server.address, nick="bob")
        with pytest.raises(JoinRefused) as refused:
            ChatClient(*server.address, nick="carol")
        assert refused.value.code == "server-full" and "full" in str(refused.value)
        person = raw_peer(server, read_banner=True)
        assert person.banner.startswith(b"labchat/1 refused server-full: ")
        for lurker in lurkers:
            lurker.close()
        bob.close()
        assert wait_until(lambda: len(server.connections()) == 1)
        with ChatClient(*server.address, nick="carol") as carol:
            assert carol.users == ["ada", "carol"]
        ada.close()


def test_bytes_that_are_not_text_are_refused_and_the_sender_may_carry_on(engine, errors, raw_peer) -> None:
    with engine(port=0, bot=False) as server, ChatClient(*server.address, nick="ada") as ada:
        program = raw_peer(server, read_banner=True)
        program.hello("prog")
        program.send(b'{"type":"say","text":"caf\xe9"}\n')  # Latin-1, not UTF-8
        assert program.decoded_until(is_event("error")).code == "bad-utf8"
        program.send(b'{"type":"say","text":"\\ud800 lone surrogate"}\n')
        assert program.decoded_until(is_event("error")).code == "bad-utf8"
        program.send(b"[" * 4000 + b"\n")
        assert program.decoded_until(is_event("error")).code == "bad-json"
        program.send(b'{"type":"say","text":"caf\xc3\xa9"}\n')
        assert ada.receive_until(is_event("message", sender="prog")).text == "café"

        person = raw_peer(server, read_banner=True)
        person.send(b"pat\n")
        person.line()
        person.send(b"\xff\xfe\xfd\n")
        assert person.line_with(b"invalid UTF-8")
        person.send(b"still me\n")
        assert ada.receive_until(is_event("message", sender="pat")).text == "still me"

        with ChatClient(*server.address, nick="cy") as cy:  # the room is not poisoned
            assert cy.users == ["ada", "prog", "pat", "cy"]
    assert not errors()


def test_bad_frames_in_one_packet_are_judged_one_by_one(engine, errors, raw_peer) -> None:
    # A program's lines that arrive together are read at once; what is wrong in such a run
    # must be refused exactly as it is alone, and nothing of it may reach the room's history.
    # (Unpaced, as a room with rate=None reads them: a paced sender's lines come one by one.)
    with engine(port=0, bot=False, rate=None) as server, ChatClient(*server.address, nick="ada") as ada:
        program = raw_peer(server, read_banner=True)
        program.hello("prog")
        program.send(b'{"type":"say","text":"one"}\n{"type":"say","text":"x\\ud800y"}\n')
        assert ada.receive_until(is_event("message", sender="prog")).text == "one"
        assert program.decoded_until(is_event("error")).code == "bad-utf8"
        # Two lines that are not JSON, written so that spliced together they would parse
        # as two frames (a key given twice hides the brackets between them).
        program.send(b'{"type":"say","text":"a"}],[{"type":"say","text":[[\n]],"text":"b"}\n')
        assert program.decoded_until(is_event("error")).code == "bad-json"
        assert program.decoded_until(is_event("error")).code == "bad-json"
        program.send(b'{"type":"say","text":"still here"}\n')
        assert ada.receive_until(is_event("message", sender="prog")).text == "still here"
        with ChatClient(*server.address, nick="cy") as cy:  # the history a newcomer is shown is sound
            assert cy.users == ["ada", "prog", "cy"]
        back = raw_peer(server, read_banner=True)  # and so is the replay a returning client asks for
        back.send(b'{"type":"hello","nick":"dee","since":0}\n')
        assert back.event_until(lambda e: e["type"] == "message" and e.get("history"))["text"] == "one"
    assert not errors()


@pytest.mark.parametrize(
    "nick",
    ["a\x00b", "a\x1b[31m", "<b>bold</b>", "a\u202eb", "x\x07", "a b", "ada\n", "\x9b1m"],
)
def test_control_characters_and_markup_in_nicks_are_refused(engine, nick: str) -> None:
    with engine(port=0, bot=False) as server:
        with pytest.raises(JoinRefused) as refused:
            ChatClient(*server.address, nick=nick)
        assert refused.value.code == "nick-invalid"
        assert not any(c in str(refused.value) for c in "\x00\x1b\x07\u202e\x9b")


HOSTILE = [
    "\x1b[2J\x1b[Hyou have been hacked",
    "\x1b]0;owned\x07title",
    "nul\x00byte",
    "\x9b31mred",
    "<img src=x onerror=alert(1)>",
    "<script>alert('hi')</script>",
    "right\u202eto-left",
    "bell\x07\x08\x7f",
    "\u200b",  # nothing visible at all
    "hidden\U000e0069\U000e0067\U000e006e\U000e006f\U000e0072\U000e0065 words",
]
# Characters that must reach no view as themselves: they move text, or hide in it.
UNSEEN = "\u202e\u200b\U000e0069"


def test_escapes_and_markup_in_messages_are_neutralised_for_every_view(engine, raw_peer) -> None:
    with (
        engine(port=0, bot=False) as server,
        ChatClient(*server.address, nick="ada") as ada,
        ChatClient(*server.address, nick="mal") as mal,
    ):
        person = raw_peer(server, read_banner=True)
        person.send(b"pat\n")
        for text in HOSTILE:
            mal.send(text)
        received = [ada.receive_until(is_event("message", sender="mal")) for _ in HOSTILE]
        for event in received:
            for view in (plain(event), terminal(event), terminal(event, color=True)):
                payload = view.split("mal", 1)[1]  # what mal controls: after their nick
                assert not any(ord(c) < 0x20 and c != "\x1b" or 0x7F <= ord(c) < 0xA0 for c in payload)
                assert "\x1b[2J" not in payload and "\x1b]" not in payload
                assert not any(c in payload for c in UNSEEN)
            shown = html_line(event)
            assert "<img" not in shown and "<script" not in shown and not any(c in shown for c in UNSEEN)
        assert "^[[2J" in received[0].text and "^@" in received[2].text  # visible, inert
        assert "&lt;img src=x" in html_line(received[4])
        lines = []
        while len([x for x in lines if x.startswith(b"mal: ")]) < len(HOSTILE):
            lines.append(person.line())
        for line in lines:  # a person on netcat receives nothing that could move their cursor
            assert not any(b < 0x20 or b == 0x7F for b in line), line
            assert not any(c in line.decode() for c in UNSEEN + "\x9b")


def test_an_overlong_line_gets_a_reason_in_its_place_and_the_sender_carries_on(
    engine, errors, raw_peer
) -> None:
    with engine(port=0, bot=False) as server, ChatClient(*server.address, nick="ada") as ada:
        big = raw_peer(server, read_banner=True)
        big.hello("big")
        big.send(b'{"type":"say","text":"' + b"a" * (MAX_LINE + 1000) + b'"}\n')
        assert big.decoded_until(is_event("error")).code == "line-too-long"
        big.say("shorter now")
        assert ada.receive_until(is_event("message", sender="big")).text == "shorter now"
        early = raw_peer(server, read_banner=True)  # too long before even saying hello
        early.send(b"x" * (MAX_LINE + 1000))
        (line,) = early.rest()
        assert decode_event(line).code == "line-too-long"
        assert server.users() == ["ada", "big"]
    assert not errors()


def test_abrupt_resets_mid_frame_leave_no_one_behind(engine, errors, raw_peer) -> None:
    with engine(port=0, bot=False) as server, ChatClient(*server.address, nick="ada") as ada:
        for n in range(20):
            peer = raw_peer(server, read_banner=True)
            if n % 2:
                peer.hello(f"r{n}")
            peer.send(b'{"type":"say","te')  # half a frame ...
            peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            peer.close()  # ... and a reset
            if n % 2:
                ada.receive_until(is_event("leave", sender=f"r{n}"))
        assert wait_until(lambda: len(server.connections()) == 1)
        assert server.users() == ["ada"]
    assert not errors()


# -- the same from the command line --------------------------------------------------------------------


def labchat(*args: str, env: dict[str, str] | None = None, **options) -> subprocess.CompletedProcess:
    """Run ``labchat ARGS`` to the end, with a timeout; text in and out."""
    return subprocess.run(
        [sys.executable, "-m", "labchat", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=environ(NO_COLOR="1", **(env or {})),
        **options,
    )


def test_cli_cert_then_serve_tls_then_a_piped_join_that_verifies_it(tmp_path: Path, serve) -> None:
    made = labchat("cert", "--hosts", "localhost", "127.0.0.1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "labchat-cert.pem").exists() and (tmp_path / "labchat-key.pem").exists()
    cafile, key = str(tmp_path / "labchat-cert.pem"), str(tmp_path / "labchat-key.pem")
    served = serve("--no-bot", "--tls-cert", cafile, "--tls-key", key)
    try:
        assert "--tls --cafile" in served.first_line  # the server tells people how to join
        context = client_context(cafile)
        with ChatClient("127.0.0.1", served.port, nick="teacher", ssl_context=context) as teacher:
            joined = labchat(
                "join",
                f"127.0.0.1:{served.port}",
                "--nick",
                "ada",
                "--tls",
                "--cafile",
                cafile,
                input="hello over TLS\nbye\n",
            )
            assert joined.returncode == 0, joined.stderr
            assert "Welcome, ada!" in joined.stdout
            assert teacher.receive_until(is_event("message", sender="ada")).text == "hello over TLS"

            started = time.monotonic()
            plain = labchat("join", f"127.0.0.1:{served.port}", "--nick", "bob", input="hi\n")
            assert plain.returncode == 3 and "TLS" in plain.stderr
            assert time.monotonic() - started < 10
    finally:
        served.stop()


def test_cli_cert_keeps_the_key_private_and_never_leaves_half_a_pair(tmp_path: Path) -> None:
    same = labchat("cert", "--out-cert", "both.pem", "--out-key", "both.pem", cwd=tmp_path)
    assert same.returncode == 1 and not (tmp_path / "both.pem").exists()
    assert same.stderr == "labchat: the certificate and the key must be two files, not both both.pem\n"
    old = tmp_path / "labchat-key.pem"  # a world-readable file in the key's place, replaced
    old.write_text("old")
    old.chmod(0o644)
    made = labchat("cert", "--force", "--hosts", "::1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert old.stat().st_mode & 0o777 == 0o600 and old.read_text().startswith("-----BEGIN PRIVATE KEY")
    assert "labchat join [::1]:5050 --nick NAME" in made.stdout
    half = labchat("cert", "--out-cert", "c.pem", "--out-key", "missing/k.pem", cwd=tmp_path)
    assert half.stderr == "labchat: cannot write missing/k.pem: No such file or directory\n"
    assert not (tmp_path / "c.pem").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labchat-cert.pem", "labchat-key.pem"]
    odd = labchat("cert", "--hosts", "bad host!", "--out-cert", "c.pem", "--out-key", "k.pem", cwd=tmp_path)
    assert (
        odd.returncode == 1
        and odd.stderr == "labchat: 'bad host!' is neither an IP address nor a host name\n"
    )


def test_cli_join_with_tls_to_a_plain_server_fails_clearly_and_fast(
    engine, tmp_path: Path, certificate
) -> None:
    with engine(port=0, bot=False) as server:
        started = time.monotonic()
        result = labchat(
            *("join", f"127.0.0.1:{server.address[1]}", "--nick", "ada", "--cafile", str(certificate[0])),
            input="hi\n",
        )
        assert result.returncode == 1
        assert "does not speak TLS" in result.stderr and "Traceback" not in result.stderr
        assert time.monotonic() - started < 10


def test_cli_token_from_the_environment_is_required_and_never_printed(tmp_path: Path, serve) -> None:
    secret = "quiet-owl-93"
    served = serve("--no-bot", "--log", str(tmp_path / "room.jsonl"), env=environ(LABCHAT_TOKEN=secret))
    try:
        ok = labchat(
            "join",
            f"127.0.0.1:{served.port}",
            "--nick",
            "ada",
            input="hi\nbye\n",
            env={"LABCHAT_TOKEN": secret},
        )
        assert ok.returncode == 0, ok.stderr
        refused = labchat("join", f"127.0.0.1:{served.port}", "--nick", "eve", input="hi\n")
        assert refused.returncode == 3 and "token" in refused.stderr
        where = f"127.0.0.1:{served.port}"
        wrong = labchat("join", where, "--nick", "eve", "--token", secret[:-1], input="hi\n")
        assert wrong.returncode == 3
    finally:
        _, out, err = served.stop()
    assert "refused" in err and "ada" in err  # the server does log what happened ...
    assert secret not in out + err and secret[:-1] not in out + err  # ... but never the token
    assert secret[:-1] not in (tmp_path / "room.jsonl").read_text()


def test_cli_serve_beyond_loopback_without_a_token_warns(serve) -> None:
    served = serve("--no-bot", "--host", "0.0.0.0")
    _, out, err = served.stop()
    assert "no token" in err and "anyone" in err
    guarded = serve("--no-bot", "--host", "0.0.0.0", env=environ(LABCHAT_TOKEN="t0ken-here"))
    _, out, err = guarded.stop()
    assert "no token" not in out + err


def test_nothing_a_client_sends_reaches_the_servers_log_raw(engine, caplog, raw_peer) -> None:
    """The instructor reads the log in a terminal: it must not be a way into it."""
    caplog.set_level(logging.DEBUG, logger="labchat")
    with engine(port=0, bot=False, rate=1.0, burst=1, hello_timeout=1.0) as server:
        program = raw_peer(server, read_banner=True)
        program.send(b'{"type":"hello","nick":"\\u001b[2Jevil\\u0007"}\n')
        program.rest()
        person = raw_peer(server, read_banner=True)
        person.send(b"\x1b]0;pwned\x07 token\n")
        person.rest()
        joined = raw_peer(server, read_banner=True)
        joined.hello("ok")
        joined.send(b'{"type":"\x1b[31m"}\n{"type":"say","text":"\x1b[5m"}\n/\x1b[1mx\n')
        joined.send(b'{"type":"say","text":"' + b"\x1b" * (MAX_LINE + 1) + b'"}\n')
        joined.decoded_until(is_event("error", code="line-too-long"))
        joined.say("/quit")
        joined.rest()
        with ChatClient(*server.address, nick="after") as after:  # the server is fine
            assert after.users == ["after"]
    shown = [r.getMessage() for r in caplog.records]
    assert any("refused" in line for line in shown)
    for line in shown:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in line), line
