"""ChatClient over real loopback sockets: joining, refusals, events, callbacks, closing."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from labchat import ChatClient, ChatServer, ConnectionClosed, Event, JoinRefused

WAIT = 5.0  # seconds any one wait may take


def message_from(nick: str):
    return lambda e: e.kind == "message" and e.sender == nick


def test_the_example_from_the_package_docs() -> None:
    with ChatServer(host="127.0.0.1", port=0) as server:
        host, port = server.address
        with ChatClient(host, port, nick="ada") as ada, ChatClient(host, port, nick="bob") as bob:
            ada.send("hello bob")
            event = bob.receive_until(lambda e: e.kind == "message", timeout=WAIT)
            assert (event.kind, event.sender, event.text) == ("message", "ada", "hello bob")
            assert event.seq > 0 and event.time > 0


def test_receive_returns_events_in_order_starting_with_joins_and_the_welcome(connect) -> None:
    ada = connect("ada")
    assert ada.welcome.kind == "welcome" and ada.welcome.users == ("ada",)
    first = ada.receive(timeout=WAIT)
    assert (first.kind, first.sender) == ("join", "ada")
    greeting = ada.receive(timeout=WAIT)
    assert (greeting.kind, greeting.sender) == ("bot", "greeter") and "Hello ada" in greeting.text
    bob = connect("bob")
    assert ada.receive(timeout=WAIT).sender == "bob"
    bob.send("one")
    bob.send("two")
    texts = [ada.receive_until(message_from("bob"), timeout=WAIT).text for _ in range(2)]
    assert texts == ["one", "two"]


def test_every_event_has_kind_sender_text_seq_and_time(connect) -> None:
    ada = connect("ada")
    ada.send("hi")
    event = ada.receive_until(message_from("ada"), timeout=WAIT)
    for name in ("kind", "sender", "text", "seq", "time"):
        assert hasattr(event, name)
    assert isinstance(event, Event)


def test_receive_times_out_when_nothing_comes(make_server, connect) -> None:
    quiet = make_server(bot=False)
    ada = connect("ada", server=quiet)
    ada.receive(timeout=WAIT)  # her own join
    with pytest.raises(TimeoutError, match="no event within 0.2 seconds"):
        ada.receive(timeout=0.2)
    assert ada.pending() == []
    with pytest.raises(TimeoutError, match=r"^no matching event within 0.3 seconds$"):
        ada.receive_until(lambda e: False, timeout=0.3)


def test_a_line_from_the_server_over_the_limit_ends_the_client_saying_so() -> None:
    # Not a labchat server's doing (it keeps every line within the limit): a broken or
    # hostile one. The client's decoder takes nothing after such a line, so that is the end.
    listener = socket.create_server(("127.0.0.1", 0))
    try:

        def serve() -> None:
            conn, _ = listener.accept()
            with conn, conn.makefile("rb") as reader:
                conn.sendall(b"labchat/1 Welcome.\n")
                reader.readline()  # the hello
                conn.sendall(b'{"type":"welcome","sender":"ada","seq":1}\n' + b"x" * 60_000 + b"\n")
                reader.readline()  # until the client goes

        threading.Thread(target=serve, daemon=True).start()
        ada = ChatClient(*listener.getsockname(), nick="ada", timeout=WAIT, reconnect=True)
        with pytest.raises(ConnectionClosed):
            while True:
                ada.receive(timeout=WAIT)
        assert ada.close_reason.startswith("bad data from the server: line too long")
        assert ada.reconnects == 0  # bad data is final: no knocking again
        ada.close()
    finally:
        listener.close()


def test_a_client_s_connection_has_keepalive_so_a_vanished_server_is_noticed(connect) -> None:
    from labchat import keepalive

    ada = connect("ada")
    sock = ada._sock  # the kernel's own record of the options, read back
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    idle, interval, count = keepalive.IDLE, keepalive.INTERVAL, keepalive.COUNT
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == idle
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == interval
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == count
        assert idle + interval * count <= 60  # noticed within about a minute


def test_close_from_another_thread_ends_a_send_the_server_is_holding_up(make_server) -> None:
    server = make_server(rate=1.0, burst=1)  # a paced sender: the server stops reading from it
    ada = ChatClient(*server.address, nick="ada")
    ended: list[BaseException] = []

    def flood() -> None:
        try:
            while True:
                ada.send("x" * 3900)
        except ConnectionClosed as exc:
            ended.append(exc)

    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    ada.receive_until(lambda e: e.code == "paced", timeout=WAIT)
    started = time.monotonic()
    ada.close(timeout=1.0)
    assert time.monotonic() - started < 3.0
    sender.join(WAIT)
    assert not sender.is_alive() and str(ended[0]) == "you left the chat"


def test_on_event_is_called_from_the_receiver_thread(connect) -> None:
    ada = connect("ada")
    got: list[tuple[str, str]] = []
    done = threading.Event()

    @ada.on_event
    def record(event: Event) -> None:
        got.append((event.text, threading.current_thread().name))
        if event.text == "ping":
            done.set()

    connect("bob").send("ping")
    assert done.wait(WAIT)
    assert got[-1] == ("ping", "labchat-client-ada")


def test_a_failing_callback_does_not_stop_the_chat(connect, caplog) -> None:
    ada = connect("ada")
    ada.on_event(lambda event: 1 / 0)
    connect("bob").send("still here?")
    assert ada.receive_until(message_from("bob"), timeout=WAIT).text == "still here?"
    assert "an on_event callback failed" in caplog.text


def test_a_callback_may_close_its_own_client(connect) -> None:
    ada, bob = connect("ada"), connect("bob")
    closed = threading.Event()

    @ada.on_event
    def leave_when_asked(event: Event) -> None:
        if event.text == "ada, please go":
            ada.close("asked to go")
            closed.set()

    bob.send("ada, please go")
    assert closed.wait(WAIT) and not ada.connected
    leave = bob.receive_until(lambda e: e.kind == "leave" and e.sender == "ada", timeout=WAIT)
    assert leave.text == "asked to go"


def test_send_from_many_threads_at_once_loses_nothing(connect) -> None:
    ada, bob = connect("ada"), connect("bob")

    def talk(n: int) -> None:
        for i in range(20):
            ada.send(f"t{n}-{i}")

    threads = [threading.Thread(target=talk, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    texts = {bob.receive_until(message_from("ada"), timeout=WAIT).text for _ in range(80)}
    assert texts == {f"t{n}-{i}" for n in range(4) for i in range(20)}


def test_private_messages_reach_only_the_two(connect) -> None:
    ada, bob, cy = connect("ada"), connect("bob"), connect("cy")
    ada.send("/msg bob the cake is in the fridge")
    for client in (ada, bob):
        event = client.receive_until(lambda e: e.kind == "private", timeout=WAIT)
        assert (event.sender, event.target, event.text) == ("ada", "bob", "the cake is in the fridge")
    ada.send("public again")
    seen = []
    while (event := cy.receive(timeout=WAIT)).text != "public again":
        seen.append(event)
    assert not any(e.kind == "private" or "cake" in e.text for e in seen)


def test_two_slashes_send_a_literal_slash_line(connect) -> None:
    ada, bob = connect("ada"), connect("bob")
    ada.send("//who is a command, says the tutorial")
    event = bob.receive_until(message_from("ada"), timeout=WAIT)
    assert event.text == "/who is a command, says the tutorial"


def test_a_newcomer_gets_recent_history_flagged(make_server, connect) -> None:
    room = make_server(history=2, bot=False)
    ada = connect("ada", server=room)
    for text in ("one", "two", "three"):
        ada.send(text)
    ada.receive_until(lambda e: e.text == "three", timeout=WAIT)
    bob = connect("bob", server=room)
    replay = [bob.receive(timeout=WAIT) for _ in range(3)]
    assert [(e.text, e.history) for e in replay] == [("two", True), ("three", True), ("", False)]
    assert replay[2].kind == "join"


def test_nick_and_users_follow_the_room(connect) -> None:
    ada = connect("ada")
    bob = connect("bob")
    ada.receive_until(lambda e: e.kind == "join" and e.sender == "bob", timeout=WAIT)
    assert ada.users == ["ada", "bob"] and bob.users == ["ada", "bob"]
    ada.send("/nick ada2")
    bob.receive_until(lambda e: e.kind == "nick", timeout=WAIT)
    ada.receive_until(lambda e: e.kind == "nick", timeout=WAIT)
    assert ada.nick == "ada2" and bob.users == ["ada2", "bob"]
    bob.close()
    ada.receive_until(lambda e: e.kind == "leave", timeout=WAIT)
    assert ada.users == ["ada2"]


def test_errors_come_back_as_error_events(connect) -> None:
    ada = connect("ada")
    ada.send("/dance")
    event = ada.receive_until(lambda e: e.kind == "error", timeout=WAIT)
    assert event.code == "unknown-command" and "/help" in event.text


def test_a_client_nobody_reads_keeps_only_the_newest_events(make_server, connect) -> None:
    quiet = make_server(bot=False)
    ada = connect("ada", server=quiet, queue_size=5)
    bob = connect("bob", server=quiet)
    seen = threading.Event()
    ada.on_event(lambda e: e.text == "m19" and seen.set())  # callbacks still see every event
    for n in range(20):
        bob.send(f"m{n}")
    assert seen.wait(WAIT)
    assert [e.text for e in ada.pending()] == [f"m{n}" for n in range(15, 20)]
    assert ada.dropped == 17  # her own join, bob's join and m0..m14


def test_send_takes_only_text(connect) -> None:
    with pytest.raises(TypeError, match="send\\(\\) takes text, not bytes"):
        connect("ada").send(b"hi")


# -- refusals -----------------------------------------------------------------------------


def test_a_nick_taken_is_refused_with_the_reason(server, connect) -> None:
    connect("ada")
    with pytest.raises(JoinRefused, match="the nick 'ADA' is taken") as caught:
        connect("ADA")
    assert caught.value.code == "nick-taken"
    assert server.users() == ["ada"]


def test_an_invalid_nick_is_refused_with_the_reason(connect) -> None:
    with pytest.raises(JoinRefused, match="must start with a letter") as caught:
        connect("42")
    assert caught.value.code == "nick-invalid"


def test_a_wrong_or_missing_token_is_refused(make_server, connect) -> None:
    locked = make_server(token="open sesame")
    for token in (None, "wrong"):
        with pytest.raises(JoinRefused, match="wrong or missing room token") as caught:
            connect("ada", server=locked, token=token)
        assert caught.value.code == "bad-token"
    assert connect("ada", server=locked, token="open sesame").nick == "ada"


def test_a_full_server_says_so(make_server, connect) -> None:
    small = make_server(max_clients=1)
    connect("ada", server=small)
    with pytest.raises(JoinRefused, match="the room is full \\(at most 1 at once\\)") as caught:
        connect("bob", server=small)
    assert caught.value.code == "server-full"
    assert isinstance(caught.value, ConnectionError)


def test_an_unreachable_server_raises_connection_refused() -> None:
    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            ChatClient("127.0.0.1", port, nick="ada", timeout=WAIT)


def test_something_that_is_not_labchat_is_named() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()

        def speak_http() -> None:
            conn, _ = other.accept()
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=speak_http)
        thread.start()
        with pytest.raises(ConnectionError, match="is not a labchat server \\(it said 'HTTP/1.1 400"):
            ChatClient(*other.getsockname(), nick="ada", timeout=WAIT)
        thread.join()


# -- the end ------------------------------------------------------------------------------


def test_leaving_the_with_block_says_goodbye_and_joins_the_thread(connect, server) -> None:
    bob = connect("bob")
    with ChatClient(*server.address, nick="ada") as ada:
        thread = ada._receiver
        assert thread.is_alive()
    assert not thread.is_alive() and not ada.connected
    assert ada.close_reason == "you left the chat"
    leave = bob.receive_until(lambda e: e.kind == "leave", timeout=WAIT)
    assert leave.sender == "ada"
    with pytest.raises(ConnectionClosed):
        ada.send("anyone?")
    ada.close()  # twice is fine


def test_close_with_a_farewell(connect) -> None:
    ada, bob = connect("ada"), connect("bob")
    ada.close("off to lunch")
    assert bob.receive_until(lambda e: e.kind == "leave", timeout=WAIT).text == "off to lunch"


def test_bye_ends_the_connection_and_receive_then_says_so(connect) -> None:
    ada = connect("ada")
    ada.send("bye")
    goodbye = ada.receive_until(lambda e: e.code == "goodbye", timeout=WAIT)
    assert goodbye.text == "Goodbye, ada!"
    with pytest.raises(ConnectionClosed, match="you left the chat"):
        ada.receive_until(lambda e: False, timeout=WAIT)


def test_receive_after_the_server_goes_away_raises_connection_closed(make_server, connect) -> None:
    short_lived = make_server()
    ada = connect("ada", server=short_lived)
    reasons: list[str] = []
    ended = threading.Event()
    ada.on_close(lambda reason: (reasons.append(reason), ended.set()))
    short_lived.close()
    notice = ada.receive_until(lambda e: e.kind == "system", timeout=WAIT)
    assert notice.text == "the server is shutting down"
    with pytest.raises(ConnectionClosed, match="the server closed the connection"):
        ada.receive(timeout=WAIT)
    assert ended.wait(WAIT) and reasons == ["the server closed the connection"]
    with pytest.raises(ConnectionClosed):
        ada.send("hello?")


def test_on_close_given_after_the_end_is_called_at_once(connect) -> None:
    ada = connect("ada")
    ada.send("bye")
    with pytest.raises(ConnectionClosed):
        ada.receive_until(lambda e: False, timeout=WAIT)
    reasons: list[str] = []
    ada.on_close(reasons.append)
    assert reasons == ["you left the chat"]


def test_on_wire_sees_every_line_as_it_travels(connect) -> None:
    seen: list[tuple[str, bytes]] = []
    ada = connect("ada", wire=lambda direction, line: seen.append((direction, line)))
    ada.send("hello")
    ada.receive_until(lambda e: e.kind == "message" and e.text == "hello")
    assert seen[0][0] == "<-" and seen[0][1].startswith(b"labchat/1 Welcome")  # the banner
    assert seen[1] == ("->", b'{"type":"hello","nick":"ada","version":1}')
    assert ("->", b'{"type":"say","text":"hello"}') in seen
    received = [json.loads(line) for direction, line in seen[2:] if direction == "<-"]
    assert received[0]["type"] == "welcome" and any(e.get("text") == "hello" for e in received)
