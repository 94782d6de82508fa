"""The chat panels without a browser: real servers on port 0, real clients, widgets driven by value.

Typing is simulated the way the browser does it: the input's ``value`` changes
(it syncs on Enter); what another client receives over a real socket is then
checked, and so is what the transcript widget holds after the receiver thread
has delivered events.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time

import pytest

from labchat import ChatClient, ChatServer, JoinRefused
from labchat.text import fence_open
from labchat.tls import make_certificate
from labchat.widgets import MAX_LINES, ChatPanel, ServerPanel, host, join, live_panels
from labchat.widgets.compose import fenced, typed_enter
from labchat.widgets.view import FOLD_LINES, CodeBlock


def labchat_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("labchat-"))


@pytest.fixture(autouse=True)
def nothing_left_behind():
    before = labchat_threads()
    yield
    for panel in live_panels():
        panel.close()
    assert labchat_threads() == before


@pytest.fixture
def server():
    with ChatServer(port=0, rate=None) as chat:
        yield chat


def message_from(nick: str):
    return lambda e: e.kind == "message" and e.sender == nick


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def enter(panel: ChatPanel, text: str) -> None:
    """Type ``text`` into the panel's box and press Enter, as the browser syncs it: the text, then
    the text with the newline Enter adds."""
    panel.input.value = text
    panel.input.value = text + "\n"


def event_divs(panel: ChatPanel) -> int:
    return panel.transcript.value.count('<div class="lc-event')


# -- the client panel ------------------------------------------------------------------


def test_typing_into_the_input_sends_to_another_client(server):
    port = server.address[1]
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        panel = join("127.0.0.1", port, nick="ada")
        assert panel.state == "connected" and panel.connected
        assert "connected to 127.0.0.1" in panel.status and "as ada" in panel.status
        enter(panel, "hello from the panel")
        event = bob.receive_until(message_from("ada"), timeout=5)
        assert event.text == "hello from the panel"
        assert panel.input.value == ""  # cleared for the next message
        assert not panel.input.disabled


def test_send_button_with_nothing_typed_sends_nothing(server):
    port = server.address[1]
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        panel = join(f"127.0.0.1:{port}", nick="ada")  # "host:port" works too
        panel.send_button.click()
        panel.input.value = "   "
        panel.send_button.click()
        panel.input.value = "first real message"
        panel.send_button.click()
        event = bob.receive_until(lambda e: e.kind in ("message", "error") and e.sender == "ada")
        assert (event.kind, event.text) == ("message", "first real message")


def test_events_from_the_receiver_thread_fill_the_transcript_and_the_user_list(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        panel.wait_for("--> bob joined")
        assert panel.users == ["ada", "bob"]
        assert "<li>bob</li>" in panel.user_list.value and "Here (2)" in panel.user_list.value
        bob.send("hi ada")
        assert panel.wait_for("bob: hi ada") == "bob: hi ada"
        assert re.search(r'lc-message">.*bob</b>: hi ada</div>', panel.transcript.value)
        assert re.search(r'<span class="lc-time">\d\d:\d\d</span>', panel.transcript.value)
    panel.wait_for("<-- bob left")
    assert panel.users == ["ada"] and "Here (1)" in panel.user_list.value
    lines = panel.transcript_lines()
    assert lines[0].startswith("Welcome, ada!")
    assert lines.index("--> bob joined") < lines.index("bob: hi ada") < lines.index("<-- bob left")


def test_user_text_is_shown_as_text_never_as_html(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    attack = "<img src=x onerror=alert(1)> <b>bold</b> \x1b[2J"
    with ChatClient("127.0.0.1", port, nick="mallory") as mallory:
        mallory.send(attack)
        line = panel.wait_for("mallory: <img")
    assert line == "mallory: <img src=x onerror=alert(1)> <b>bold</b> ^[[2J"
    value = panel.transcript.value
    assert "&lt;img src=x onerror=alert(1)&gt; &lt;b&gt;bold&lt;/b&gt; ^[[2J" in value
    assert "<img" not in value and "<b>bold" not in value and "\x1b" not in value


def test_private_bot_and_join_lines_are_styled_apart(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        bob.send("/msg ada just between us")
        panel.wait_for("[private] bob -> ada: just between us")
        bob.send("hello greeter")
        panel.wait_for("greeter: Hello bob!")
    value = panel.transcript.value
    assert re.search(r'class="lc-event lc-private">[^<]*<span class="lc-time">', value)
    assert 'class="lc-event lc-bot">' in value and 'class="lc-event lc-join">' in value
    assert 'class="lc-event lc-welcome">' in value
    assert 'class="lc-event lc-message">' in value


def test_history_replayed_to_a_newcomer_is_marked(server):
    port = server.address[1]
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        bob.send("said before ada came")
        bob.receive_until(message_from("bob"))
        panel = join("127.0.0.1", port, nick="ada")
        panel.wait_for("bob: said before ada came")
    old = r'<div class="lc-old"><div class="lc-event lc-message">[^\n]*said before'
    assert re.search(old, panel.transcript.value)


def test_a_long_chat_keeps_only_the_newest_lines(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada", max_lines=10)
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        for n in range(50):
            bob.send(f"line {n}")
        panel.wait_for("bob: line 49")
    lines = panel.transcript_lines()
    assert len(lines) == 10 and event_divs(panel) == 10
    messages = [line for line in lines if line.startswith("bob: ")]
    assert messages == [f"bob: line {n}" for n in range(50 - len(messages), 50)]
    assert MAX_LINES == 200


def test_the_view_keeps_the_newest_message_in_sight(server):
    # The scroll box runs bottom-up (column-reverse), so a freshly drawn transcript starts at
    # its newest line; the browser test checks the pixels.
    panel = join("127.0.0.1", server.address[1], nick="ada", height="180px")
    value = panel.transcript.value
    assert value.startswith('<div class="lc-scroll" style="--lc-height:180px"><div>')
    assert "flex-direction: column-reverse" in panel.title.value


def test_bye_leaves_and_the_panel_says_so(server):
    port = server.address[1]
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        panel = join("127.0.0.1", port, nick="ada")
        enter(panel, "bye")
        left = bob.receive_until(lambda e: e.kind == "leave", timeout=5)
        assert left.sender == "ada"
    panel.wait_for("Goodbye, ada!")
    panel.client._receiver.join(5)
    assert panel.state == "disconnected" and panel.status == "disconnected: you left the chat"
    assert panel.input.disabled and panel.send_button.disabled
    assert "you left the chat" in panel.status_line.value
    assert panel.say("anyone there?") is False
    assert panel.status.startswith("not sent: you are not connected")


def test_a_nick_change_follows_the_panel(server):
    panel = join("127.0.0.1", server.address[1], nick="ada")
    enter(panel, "/nick ada2")
    panel.wait_for("--- ada is now known as ada2")
    assert panel.nick == "ada2" and panel.users == ["ada2"]
    assert "labchat: ada2" in panel.title.value


def test_server_going_away_shows_why(server):
    panel = join("127.0.0.1", server.address[1], nick="ada")
    server.close("class is over")
    panel.wait_for("class is over")
    panel.client._receiver.join(5)
    assert panel.state == "disconnected"
    assert panel.status == "disconnected: the server closed the connection"
    assert panel.input.disabled


# -- errors show in the panel --------------------------------------------------------------


def test_unreachable_server_is_a_message_not_a_traceback():
    panel = join("127.0.0.1", free_port(), nick="ada", timeout=3)
    assert panel.state == "failed" and panel.client is None
    assert "connection refused (is the server running, on that port?)" in panel.status
    assert "✖" in panel.status_line.value and panel.input.disabled
    assert repr(panel) == "ChatPanel(nick='ada', state='failed')"


def test_a_token_with_spaces_is_quoted_in_the_join_lines():
    panel = host(port=0, nick="teacher", token="blue fish")
    port = panel.address[1]
    assert panel.join_command == f"labchat join 127.0.0.1:{port} --nick NAME --token 'blue fish'"
    assert panel.join_code == f'join("127.0.0.1", {port}, nick="NAME", token="blue fish")'


def test_nick_taken_and_wrong_token_are_messages():
    with ChatServer(port=0, token="s3cret") as chat:
        port = chat.address[1]
        ada = join("127.0.0.1", port, nick="ada", token="s3cret")
        assert ada.state == "connected"
        again = join("127.0.0.1", port, nick="ADA", token="s3cret")
        assert again.state == "failed"
        taken = "the nick 'ADA' is taken; please pick another"
        assert again.status == f"could not join 127.0.0.1:{port}: {taken}"
        intruder = join("127.0.0.1", port, nick="eve")
        assert intruder.status == f"could not join 127.0.0.1:{port}: wrong or missing room token"
        bad = join("127.0.0.1", port, nick="<script>", token="s3cret")
        assert bad.state == "failed" and "&lt;script&gt;" in bad.status_line.value


def test_a_port_that_is_not_labchat_is_named():
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def pretend_ssh() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

        talker = threading.Thread(target=pretend_ssh)
        talker.start()
        panel = join("127.0.0.1", listener.getsockname()[1], nick="ada", timeout=3)
        talker.join()
    assert panel.state == "failed"
    assert "is not a labchat server (it said 'SSH-2.0-OpenSSH_9.6')" in panel.status


def test_a_cafile_that_cannot_be_read_is_a_message_not_a_traceback(tmp_path):
    missing = tmp_path / "class.pem"
    panel = join("127.0.0.1", free_port(), nick="ada", cafile=missing)
    assert panel.state == "failed" and panel.client is None
    assert panel.status.endswith(f'cannot read the certificate "{missing}" (no such file or directory)')
    (tmp_path / "notes.pem").write_text("not a certificate\n")
    other = join("127.0.0.1", free_port(), nick="ada", cafile=tmp_path / "notes.pem")
    assert other.state == "failed" and other.status.endswith("(it holds no PEM certificate)")


def test_a_port_out_of_range_is_refused_never_wrapped_round(server):
    port = server.address[1]
    wrapped = join("127.0.0.1", port + 65536, nick="ada")  # a socket would take it as ``port``
    assert wrapped.state == "failed" and wrapped.client is None and server.users() == []
    assert wrapped.status == (
        f"could not connect to 127.0.0.1:{port + 65536}: a port is a whole number from 1 to 65535, "
        f"not {port + 65536}"
    )
    assert "from 1 to 65535, not 0" in join("127.0.0.1", 0, nick="ada").status
    assert "not 'fifty'" in join("127.0.0.1", "fifty", nick="ada").status
    assert join(f"127.0.0.1:{port + 65536}", nick="ada").state == "failed"
    digits = join("127.0.0.1", str(port), nick="ada")  # its digits are a port, as typed
    assert digits.state == "connected" and digits.address == ("127.0.0.1", port)
    refused = host(port=70000, nick="teacher")
    assert refused.state == "failed" and refused.server is None
    assert refused.status.endswith("a port is a whole number from 0 to 65535, not 70000")


# -- the host panel -------------------------------------------------------------------------


def test_host_panel_serves_says_how_to_join_and_chats():
    panel = host(port=0, nick="teacher")
    assert isinstance(panel, ServerPanel) and panel.state == "serving"
    address, port = panel.address
    assert address == "127.0.0.1" and panel.server.address == ("127.0.0.1", port)
    assert panel.addresses == ["127.0.0.1"]
    assert panel.join_command == f"labchat join 127.0.0.1:{port} --nick NAME"
    assert panel.join_code == f'join("127.0.0.1", {port}, nick="NAME")'
    assert "only this machine can join" in panel.status
    assert f"nc 127.0.0.1 {port}" in panel.howto.value
    assert html_of(panel.join_command) in panel.howto.value
    with ChatClient("127.0.0.1", port, nick="ada") as ada:
        panel.wait_for("--> ada joined")
        enter(panel, "welcome, class")
        assert ada.receive_until(message_from("teacher"), timeout=5).text == "welcome, class"
        ada.send("thanks")
        panel.wait_for("ada: thanks")
        assert panel.server.users() == ["teacher", "ada"]
        panel.stop_button.click()
        notice = ada.receive_until(lambda e: e.kind == "system", timeout=5)
        assert notice.text == "the host stopped the server"
    assert panel.state == "stopped" and panel.status == "stopped: the server is closed"
    assert panel.input.disabled and panel.stop_button.disabled
    with socket.create_server(("127.0.0.1", port)):  # the port is free again
        pass


def test_the_host_panel_shows_its_server_s_warnings_and_stops_listening_when_stopped():
    panel = host(port=0, nick="teacher", bot=False, max_clients=2)  # the host's own chat is one
    port = panel.address[1]
    assert panel.server_log.widget.layout.display == "none"  # nothing to show yet
    with ChatClient("127.0.0.1", port, nick="ada"):
        with pytest.raises(JoinRefused, match="full"):
            ChatClient("127.0.0.1", port, nick="bob")
        line = panel.server_log.wait_for("refused: the room is full")
        assert "(at most 2 at once)" in line
        assert "server warnings" in panel.server_log.widget.value
    panel.stop()
    assert panel.server_log not in logging.getLogger("labchat.server").handlers


def test_an_exercise_check_s_room_keeps_its_warnings_out_of_a_live_host_panel():
    from labchat.exercises.servers import quiet_room

    panel = host(port=0, nick="teacher", bot=False, max_clients=2)
    with (
        quiet_room(bot=False, max_clients=1) as room,
        ChatClient(*room.address, nick="ada"),
        pytest.raises(JoinRefused, match="full"),
    ):
        ChatClient(*room.address, nick="bob")  # the check's room warns: full, at most 1
    with ChatClient(*panel.address, nick="cy"), pytest.raises(JoinRefused, match="full"):
        ChatClient(*panel.address, nick="dee")  # the host's own room warns: at most 2
    panel.server_log.wait_for("(at most 2 at once)")
    assert "(at most 1 at once)" not in panel.server_log.widget.value
    panel.stop()


def test_the_host_chat_is_an_operator_and_kicks_mutes_from_its_panel():
    panel = host(port=0, nick="teacher", bot=False)
    port = panel.address[1]
    guest = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        panel.wait_for("--> bob joined")
        enter(panel, "/help")
        panel.wait_for("/kick NICK [REASON]")
        enter(panel, "/mute bob")
        guest.wait_for("bob was muted by teacher")
        enter(panel, "/unmute bob")
        guest.wait_for("bob was unmuted by teacher")
        enter(panel, "/kick bob talking over everyone")
        told = bob.receive_until(lambda e: e.kind == "error", timeout=5)
        assert (told.code, told.text) == ("kicked", "you were removed by teacher: talking over everyone")
        guest.wait_for("bob left")
        assert panel.server.users() == ["teacher", "ada"]
    enter(guest, "/kick teacher")  # a guest holds no operator token
    guest.wait_for("only an operator may /kick")
    assert panel.server.users() == ["teacher", "ada"]


def html_of(text: str) -> str:
    import html

    return html.escape(text)


def test_host_with_token_tls_and_transcript_log(tmp_path):
    cert, key = tmp_path / "class.pem", tmp_path / "class.key"
    make_certificate(cert, key)
    log = tmp_path / "room.jsonl"
    panel = host(port=0, nick="teacher", token="letmein", cert=cert, key=key, log=log, bot=False)
    assert panel.state == "serving", panel.status
    port = panel.address[1]
    flags = "--token letmein --tls --cafile class.pem"
    assert panel.join_command == f"labchat join 127.0.0.1:{port} --nick NAME {flags}"
    assert panel.join_code == f'join("127.0.0.1", {port}, nick="NAME", token="letmein", cafile="class.pem")'
    guest = join("127.0.0.1", port, nick="ada", token="letmein", cafile=cert)
    assert guest.state == "connected", guest.status
    enter(guest, "over TLS")
    panel.wait_for("ada: over TLS")
    plain = join("127.0.0.1", port, nick="bob", token="letmein", timeout=3)
    assert plain.state == "failed" and "TLS" in plain.status
    panel.stop()
    kinds = [json.loads(line)["type"] for line in log.read_text().splitlines()]
    assert kinds.count("message") == 1 and "join" in kinds


def test_binding_beyond_loopback_is_explicit_and_explained():
    panel = host(host="0.0.0.0", port=0, nick="teacher")
    port = panel.address[1]
    assert panel.address == ("0.0.0.0", port)
    assert panel.addresses[-1] == "127.0.0.1"
    assert "others join at " + ", ".join(panel.addresses) in panel.status
    assert panel.join_command == f"labchat join {panel.addresses[0]}:{port} --nick NAME"
    with ChatClient("127.0.0.1", port, nick="ada"):  # tests talk to loopback only
        panel.wait_for("--> ada joined")


def test_host_on_a_busy_port_says_so():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        panel = host(port=port, nick="teacher")
    assert panel.state == "failed" and panel.server is None and panel.client is None
    assert "another program has this port; try another, or port=0" in panel.status


def test_host_with_a_bad_nick_stops_its_server():
    panel = host(port=0, nick="9lives")
    assert panel.state == "failed" and panel.server is None
    assert "must start with a letter (so the server was stopped)" in panel.status


def test_a_port_given_as_digits_serves_and_a_mistaken_host_call_leaves_nothing_behind():
    port = free_port()
    panel = host(port=str(port), nick="teacher", bot=False)
    assert panel.state == "serving" and panel.address == ("127.0.0.1", port)
    again = host(port=port, nick="teacher", bot=False)  # the same port, as a number: replaced
    assert again.state == "serving" and live_panels() == [again]
    again.close()
    words = host(port="fifty", nick="teacher")
    assert words.state == "failed" and words.server is None
    assert words.status == (
        "could not start a server on 127.0.0.1:fifty: a port is a whole number from 0 to 65535, not 'fifty'"
    )
    busy = host(port=free_port(), nick="9lives")  # a failed start is registered nowhere
    assert busy.state == "failed" and live_panels() == []
    with pytest.raises(TypeError, match=r"^history is how many messages a newcomer is shown, .* not '20'$"):
        host(port=0, nick="teacher", history="20")
    with pytest.raises(TypeError, match="bogus"):  # ChatServer takes no such keyword
        host(port=0, nick="teacher", bogus=1)
    assert live_panels() == [] and labchat_threads() == []


def test_bye_from_the_host_panel_stops_the_room_as_stop_does():
    panel = host(port=0, nick="teacher", bot=False)
    with ChatClient("127.0.0.1", panel.address[1], nick="ada") as ada:
        panel.wait_for("--> ada joined")
        enter(panel, "bye")
        notice = ada.receive_until(lambda e: e.kind == "system" and e.code == "closing", timeout=5)
        assert notice.text == "the host stopped the server"
    assert panel.state == "stopped" and panel.status == "stopped: you said bye, which closes the room"
    assert not panel.server.running and panel.stop_button.disabled and panel.input.disabled
    assert connections_threads() == [] and live_panels() == []


def test_a_server_closed_from_python_stops_its_panel_and_the_panel_says_so():
    panel = host(port=0, nick="teacher", bot=False)
    assert connections_threads() == ["labchat-connections-teacher"]
    panel.server.close()
    panel.client._receiver.join(5)  # the own chat's end is handled on its receiver thread
    assert panel.state == "stopped" and panel.status == "stopped: the server was closed"
    assert connections_threads() == [] and panel.stop_button.disabled and live_panels() == []


def test_when_the_host_chat_ends_by_itself_the_panel_says_the_room_still_serves():
    panel = host(port=0, nick="teacher", bot=False)
    panel.client.close()  # not Stop: as if its connection broke
    assert panel.server.running and panel.state == "serving" and panel.input.disabled
    ended = "your own chat ended (you left the chat); the room still serves, and Stop closes it"
    assert panel.status == ended
    assert not panel.stop_button.disabled
    panel.stop_button.click()
    assert panel.state == "stopped" and not panel.server.running and connections_threads() == []


def test_hosting_again_on_the_same_port_replaces_the_old_panel():
    first = host(port=0, nick="teacher")
    port = first.address[1]
    with ChatClient("127.0.0.1", port, nick="ada") as ada:
        second = host(port=port, nick="teacher")  # no "Address already in use"
        assert second.state == "serving" and second.address[1] == port
        assert not first.server.running and first not in live_panels()
        assert first.status == "stopped: the cell was run again"
        notice = ada.receive_until(lambda e: e.kind == "system" and e.code == "restarting", timeout=5)
        assert notice.text == "the host is restarting the server"
    assert live_panels() == [second]
    second.close()
    assert live_panels() == [] and labchat_threads() == []


def test_a_restarted_host_gets_its_reconnecting_guests_back():
    first = host(port=0, nick="teacher")
    port = first.address[1]
    guest = join("127.0.0.1", port, nick="ada")
    first.wait_for("--> ada joined")
    second = host(port=port, nick="teacher")  # the host's cell, run again
    assert second.state == "serving"
    second.wait_for("--> ada joined", timeout=15)
    assert guest.state == "connected" and guest.client.connected
    enter(guest, "still here")
    second.wait_for("ada: still here")


def test_stopping_a_host_ends_its_guests_for_good():
    panel = host(port=0, nick="teacher")
    guest = join("127.0.0.1", panel.address[1], nick="ada")
    panel.stop()
    guest.wait_for("the host stopped the server")
    guest.client._receiver.join(5)
    assert guest.state == "disconnected" and not guest.client.reconnecting


def test_repr_is_deterministic_for_notebooks():
    panel = host(port=0, nick="teacher")
    bundle = panel._repr_mimebundle_()
    assert bundle["text/plain"] == "ServerPanel(nick='teacher', state='serving')"
    assert "application/vnd.jupyter.widget-view+json" in bundle
    guest = join("127.0.0.1", panel.address[1], nick="ada")
    assert repr(guest) == "ChatPanel(nick='ada', state='connected')"
    panel.stop()
    guest.client._receiver.join(5)
    assert repr(panel) == "ServerPanel(nick='teacher', state='stopped')"
    assert repr(guest) == "ChatPanel(nick='ada', state='disconnected')"


def test_close_removes_the_widgets_and_everything_behind_them():
    panel = host(port=0, nick="teacher")
    guest = join("127.0.0.1", panel.address[1], nick="ada")
    parts = [panel, *panel._widgets(), guest, *guest._widgets()]
    assert {panel.read_button, panel.title, guest.read_button, guest.input}.issubset(parts)
    guest.close()
    panel.close()
    assert all(w.comm is None for w in parts)
    assert live_panels() == [] and labchat_threads() == []


def test_many_messages_redraw_quickly(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        start = time.perf_counter()
        for n in range(1000):
            bob.send(f"message number {n} " + "x" * 60)
        panel.wait_for("message number 999", timeout=20)
        elapsed = time.perf_counter() - start
    assert len(panel.transcript_lines()) == MAX_LINES
    assert len(panel.transcript.value) < MAX_LINES * 400
    assert elapsed < 10, f"1000 messages took {elapsed:.1f} s to reach the transcript"


# -- the wire ----------------------------------------------------------------------------------


def wire_divs(panel: ChatPanel) -> list[str]:
    return re.findall(r'<div class="lc-wire">(.*?)</div>', panel.transcript.value)


def test_the_wire_from_the_first_byte_each_frame_under_its_event(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada", wire=True)
    assert panel.wire_box.value and "from the first byte" in panel.wire_box.tooltip
    with ChatClient("127.0.0.1", port, nick="mallory") as mallory:
        mallory.send("<script>alert(1)</script>")
        panel.wait_for("mallory: <script>")
        panel.say("hi")
        panel.wait_for("ada: hi")  # the last line to come while mallory stays
        lines = panel.wire_lines()
        value = panel.transcript.value
    assert lines[0].startswith("<- labchat/1 ")  # the banner
    assert json.loads(lines[1][3:]) == {"type": "hello", "nick": "ada", "version": 1}
    assert lines[2].startswith('<- {"type":"welcome"')
    said = lines.index('-> {"type":"say","text":"hi"}')
    assert json.loads(lines[said + 1][3:])["text"] == "hi"  # the server's echo of it
    # On screen: each event, then the frame it came in, escaped, in the wire's own style.
    assert "<script" not in value
    frame = html_of('<- {"type":"message","sender":"mallory","text":"<script>alert(1)</script>"')
    event = "mallory</b>: &lt;script&gt;alert(1)&lt;/script&gt;</div>"
    assert re.search(re.escape(event) + '<div class="lc-wire">' + re.escape(frame), value)
    welcome = value.index('<div class="lc-event lc-welcome')
    assert value.index("&lt;- labchat/1 ") < value.index("-&gt; {&quot;type&quot;:&quot;hello") < welcome
    assert re.findall(r'<div class="lc-wire">(.*?)</div>', value) == [html_of(line) for line in lines]
    assert ".lc-wire {" in panel.title.value and "code-font" in panel.title.value


def test_ticking_the_wire_later_shows_lines_from_then_on_and_unticking_forgets_them(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    assert not panel.wire_box.value and "from the moment you tick" in panel.wire_box.tooltip
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        bob.send("before")
        panel.wait_for("bob: before")
        assert panel.wire_lines() == [] and wire_divs(panel) == []
        panel.wire_box.value = True  # as a click in the browser does
        bob.send("after")
        panel.wait_for("bob: after")
        assert [json.loads(line[3:])["text"] for line in panel.wire_lines()] == ["after"]
        assert len(wire_divs(panel)) == 1
    panel.wire_box.value = False
    assert panel.wire_lines() == [] and wire_divs(panel) == []


def test_a_refusal_shows_on_the_wire_too(server):
    port = server.address[1]
    with ChatClient("127.0.0.1", port, nick="ada"):
        panel = join("127.0.0.1", port, nick="ada", wire=True)
    assert panel.state == "failed" and "could not join" in panel.status
    lines = panel.wire_lines()
    assert lines[0].startswith("<- labchat/1 ") and json.loads(lines[1][3:])["nick"] == "ada"
    refusal = json.loads(lines[2][3:])
    assert (refusal["type"], refusal["code"]) == ("error", "nick-taken")
    assert wire_divs(panel) == [html_of(line) for line in lines]


def test_the_wire_keeps_as_few_lines_as_the_transcript(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada", wire=True, max_lines=20)
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        for n in range(100):
            bob.send(f"number {n}")
        panel.wait_for("bob: number 99")
        lines = panel.wire_lines()  # before bob leaves: his leave would be one line more, on its way
        assert len(lines) == 20 and any('"text":"number 99"' in line for line in lines)
        assert len(wire_divs(panel)) == 20 and event_divs(panel) == 20


@pytest.mark.parametrize("token", ['say "please"', "back\\slash", "tab\there", "pässwörd"])
def test_an_operator_token_that_json_escapes_is_hidden_on_the_wire_too(token):
    panel = host(port=0, nick="teacher", wire=True, bot=False, op_token=token)
    hello = json.loads(panel.wire_lines()[1][3:])
    assert hello["op_token"] == "(hidden)"
    escaped = json.dumps(token)[1:-1]
    assert not any(token in line or escaped in line for line in panel.wire_lines())
    assert token not in panel.transcript.value and html_of(escaped) not in panel.transcript.value


def test_the_host_panel_shows_its_wire_with_the_operator_token_hidden():
    panel = host(port=0, nick="teacher", wire=True, bot=False)
    hello = json.loads(panel.wire_lines()[1][3:])
    assert hello["nick"] == "teacher" and hello["op_token"] == "(hidden)"
    assert panel.server.op_token not in panel.transcript.value
    enter(panel, "/who")
    panel.wait_for("1 here: teacher")
    assert '-> {"type":"say","text":"/who"}' in panel.wire_lines()


# -- the host's table of connections -----------------------------------------------------------


def table_rows(panel: ServerPanel) -> dict[str, list[str]]:
    """The table as drawn: each row's cells (tags stripped, text unescaped), by who."""
    import html

    rows = re.findall(r"<tr>(<td>.*?)</tr>", panel.connections_table.value)
    cells = [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", r)] for r in rows
    ]
    return {row[0]: row[1:] for row in cells}


def test_the_table_shows_each_connections_figures_after_known_traffic(raw_peer):
    panel = host(port=0, nick="teacher", bot=False)
    sent = [b'{"type":"hello","nick":"ada","version":1}\n', b'{"type":"say","text":"counted"}\n']
    peer = raw_peer(panel.server, read_banner=True)
    for line in sent:
        peer.send(line)
    peer.line_with(b'"text":"counted"')  # our message, back: the server has sent all it will
    person = raw_peer(panel.server, read_banner=True)
    person.send(b"bob\n")
    person.line_with(b"Welcome, bob")
    panel.wait_for("--> bob joined")
    panel.refresh_connections()
    rows = table_rows(panel)
    assert list(rows) == ["teacher", "ada", "bob"]
    address, mode, since, bytes_in, bytes_out, messages_in, messages_out, queued = rows["ada"]
    assert address == f"127.0.0.1:{peer.sock.getsockname()[1]}" and mode == "json"
    assert since == "for under a minute"
    assert int(bytes_in) == sum(map(len, sent)) and messages_in == "1"
    peer.until(lambda line: b'"sender":"bob"' in line)  # bob's join: nothing more is due to ada
    panel.refresh_connections()
    address, mode, since, bytes_in, bytes_out, messages_in, messages_out, queued = table_rows(panel)["ada"]
    assert int(bytes_out) == len(peer.received)
    assert messages_out == "4"  # welcome, her join, her message, bob's join
    assert queued == "0"
    assert table_rows(panel)["bob"][1] == "text"
    assert "<caption>3 connections</caption>" in panel.connections_table.value
    assert not panel.refresh_connections()  # nothing moved: the table is not drawn again
    later = time.time() + 185
    panel.clock = lambda: later
    assert panel.refresh_connections() and table_rows(panel)["ada"][2] == "for 3 min"


def test_the_table_draws_what_peers_chose_as_text():
    from labchat.server import Connection
    from labchat.widgets.connections import since_words, size_words, table_html

    odd = Connection(
        nick="<script>alert(1)</script>",
        address="<img src=x onerror=alert(1)>:1",
        mode="json",
        since=1000.0,
        received=12_345,
        sent=4_500_000,
        messages_in=2,
        messages_out=3,
        queued=0,
    )
    joining = Connection(
        nick=None,
        address="127.0.0.1:2",
        mode="text",
        since=0.0,
        received=0,
        sent=62,
        messages_in=0,
        messages_out=0,
        queued=0,
    )
    table = table_html([odd, joining], now=1000.0 + 3 * 3600 + 120)
    assert "<script" not in table and "<img" not in table
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in table and "12.3 kB" in table and "4500.0 kB" in table
    assert "for 3 h 2 min" in table and "(joining)" in table and "2 connections" in table
    words = [since_words(s) for s in (0, 59, 60, 3599, 3600, 7260, 86400, 3 * 86400)]
    assert words == [
        "for under a minute",
        "for under a minute",
        "for 1 min",
        "for 59 min",
        "for 1 h",
        "for 2 h 1 min",
        "for 1 day",
        "for 3 days",
    ]
    assert [size_words(n) for n in (0, 9999, 10_000, 12_000_000)] == ["0", "9999", "10.0 kB", "12.0 MB"]


def connections_threads() -> list[str]:
    return [name for name in labchat_threads() if name.startswith("labchat-connections-")]


def test_the_table_follows_the_room_by_itself_and_its_timer_ends_with_the_panel():
    panel = host(port=0, nick="teacher", bot=False)
    assert connections_threads() == ["labchat-connections-teacher"]
    assert list(table_rows(panel)) == ["teacher"]
    with ChatClient("127.0.0.1", panel.address[1], nick="ada"):
        panel.wait_for_table("<td>ada</td>")  # drawn by the timer: nobody asked
    panel.wait_for_table("<caption>1 connection</caption>")
    panel.connections_box.value = False  # hidden: nothing watches the server
    assert connections_threads() == [] and panel.connections_table.layout.display == "none"
    panel.connections_box.value = True
    assert connections_threads() == ["labchat-connections-teacher"]
    assert panel.connections_table.layout.display == ""
    panel.close()
    assert connections_threads() == []


def test_rerunning_the_host_cell_leaves_one_table_timer():
    first = host(port=0, nick="teacher")
    second = host(port=first.address[1], nick="teacher")  # the same cell, run again
    assert connections_threads() == ["labchat-connections-teacher"]
    assert "<caption>0 connections</caption>" in first.connections_table.value
    second.stop()
    assert connections_threads() == []


# -- code in the chat ------------------------------------------------------------------------

SNIPPET = (
    "def greet(name):\n    # <script>alert('x')</script>\n    return f\"<img src=x onerror=alert(1)> {name}\""
)


def test_a_code_block_shows_as_code_and_its_html_stays_text(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        bob.send(f"try `greet('ada')` with:\n```python\n{SNIPPET}\n```\n<b>done</b>")
        panel.wait_for("bob| <b>done</b>")
    value = panel.transcript.value
    assert '<pre><code class="language-python">' in value
    assert "<code>greet(&#x27;ada&#x27;)</code>" in value  # inline code in a code font
    assert "&lt;script&gt;" in value and "&lt;img src=x onerror=alert(1)&gt;" in value
    assert "<script" not in value and "<img" not in value and "<b>done" not in value
    assert re.search(r'<span style="[^"]*">def</span>', value)  # highlighted, by Pygments
    assert '<span class="lc-code-no">#1</span> python, 3 lines' in value
    assert (
        '· <span class="lc-code-how">%chat_paste #1</span>' in value and 'title="one click selects' in value
    )
    assert panel.code_blocks() == [CodeBlock(1, "bob", "python", SNIPPET)]
    assert "<details" not in value  # a short block is open


def test_a_long_code_block_is_folded_and_opens_without_a_script(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    long = "\n".join(f"print({n})" for n in range(FOLD_LINES + 1))
    short = "\n".join(f"x{n} = {n}" for n in range(FOLD_LINES))
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        bob.send(f"```python\n{long}\n```")
        bob.send(f"```\n{short}\n```")
        panel.wait_for(f"bob| x{FOLD_LINES - 1} = {FOLD_LINES - 1}")
    value = panel.transcript.value
    assert value.count('<details class="lc-code lc-fold"') == 1
    folded = re.search(r'<details class="lc-code lc-fold"[^>]*><summary[^>]*>(.*?)</summary>', value).group(1)
    assert f"#1</span> python, {FOLD_LINES + 1} lines" in folded and "(show)" in folded
    assert f"#2</span> code, {FOLD_LINES} lines" in value
    assert [b.number for b in panel.code_blocks()] == [1, 2]
    assert panel.code_blocks()[1].language == ""


def test_mentions_are_marked_and_counted_until_the_panel_is_used(server):
    port = server.address[1]
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        bob.send("@ada said before she came")
        bob.receive_until(message_from("bob"))
        panel = join("127.0.0.1", port, nick="ada")
        panel.wait_for("bob: @ada said before")
        assert panel.unread_mentions == 0  # history is not news
        bob.send("@ada can you look?")
        bob.send("@adam is someone else, and so is ada@example.org")
        bob.send("`@ada` in code is not a mention")
        bob.send("thanks @ADA!")
        panel.wait_for("bob: thanks @ADA!")
        assert panel.unread_mentions == 2
        assert "@ 2 unread mentions" in panel.title.value
        assert panel.read_button.layout.display == ""
        value = panel.transcript.value
        assert '<mark class="lc-mention">@ada</mark> can you look?' in value
        assert '<mark class="lc-mention">@ADA</mark>!' in value
        # Marked: the two new ones, and the one from before (shown, not counted).
        assert value.count('<div class="lc-event lc-mentioned lc-message">') == 3
        enter(panel, "@ada talking to myself")
        panel.wait_for("ada: @ada talking to myself")
        assert panel.unread_mentions == 0  # typing in the panel is using it
        assert "unread mention" not in panel.title.value and panel.read_button.layout.display == "none"
        bob.send("@ada once more")
        panel.wait_for("bob: @ada once more")
        assert panel.unread_mentions == 1
        panel.read_button.click()  # so is clicking in it
        assert panel.unread_mentions == 0 and "unread mention" not in panel.title.value


def test_the_host_panel_counts_its_mentions_too():
    panel = host(port=0, nick="teacher", bot=False)
    assert panel.read_button in panel._title_box.children
    with ChatClient("127.0.0.1", panel.address[1], nick="ada") as ada:
        ada.send("@teacher I have a question")
        panel.wait_for("ada: @teacher I have a question")
    assert panel.unread_mentions == 1 and "@ 1 unread mention" in panel.title.value
    panel.read_button.click()
    assert panel.unread_mentions == 0 and panel.read_button.layout.display == "none"


def test_share_sends_code_as_a_fenced_block(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        assert panel.share("def f():\n    return 1\n") is True
        assert bob.receive_until(message_from("ada")).text == "```python\ndef f():\n    return 1\n```"
        assert panel.share("SELECT 1;", language="sql") is True
        assert bob.receive_until(message_from("ada")).text == "```sql\nSELECT 1;\n```"
        markdown = 'text = """\n```\ninside\n```\n"""'
        assert panel.share(markdown) is True
        assert bob.receive_until(message_from("ada")).text == f"````python\n{markdown}\n````"
        panel.wait_for("ada| ````")
        assert [b.code for b in panel.code_blocks()][-1] == markdown  # one block, fences inside kept
        assert panel.share("  \n") is False and panel.status == "not sent: there is no code to share"
        assert panel.share("x = 1\n" * 1000) is False
        assert panel.status == "not sent: 6013 characters as a message, and the chat takes 4000"
        assert panel.share("\n".join("x" for _ in range(300))) is False
        assert panel.status == "not sent: 302 lines as a message, and the chat takes 200"
        with pytest.raises(ValueError, match="not a language name"):
            panel.share("x", language="python ```")


def test_enter_sends_a_line_and_a_code_block_takes_lines_until_it_closes(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        for value in ("```python", "```python\n", "```python\nx = 1", "```python\nx = 1\n"):
            panel.input.value = value  # Enter inside the open block is a new line
        assert panel.input.value == "```python\nx = 1\n" and panel.input.rows == 3
        panel.input.value = "```python\nx = 1\n```"
        panel.input.value = "```python\nx = 1\n```\n"  # Enter after the closing fence sends
        assert bob.receive_until(message_from("ada")).text == "```python\nx = 1\n```"
        assert panel.input.value == "" and panel.input.rows == 2
        enter(panel, "just one line")
        assert bob.receive_until(message_from("ada")).text == "just one line"


def test_a_paste_stays_whole_in_the_box_until_it_is_sent(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        pasted = "first line\n  second, indented\n\nfourth\n"
        panel.input.value = pasted  # one change holding several lines: a paste, not Enter
        assert panel.input.value == pasted and panel.input.rows == 5
        panel.send_button.click()
        assert bob.receive_until(message_from("ada")).text == "first line\n  second, indented\n\nfourth"
        panel.input.value = "a\nb"  # pasted without a final newline: Enter at its end sends it
        panel.input.value = "a\nb\n"
        assert bob.receive_until(message_from("ada")).text == "a\nb"
        panel.input.value = "one\ntwo"
        panel.input.value = "one\n\ntwo"  # Enter in the middle is a new line
        assert panel.input.value == "one\n\ntwo"
        panel.input.value = ""
        panel.input.value = "\n"  # Enter in an empty box sends nothing
        assert panel.input.value == ""
        enter(panel, "after all that")
        assert bob.receive_until(message_from("ada")).text == "after all that"
        # Typed faster than the kernel hears: the block's last keys arrive as one change.
        panel.input.value = "```python\ntotal = 0"
        panel.input.value = "```python\ntotal = 0\n```\n"
        assert bob.receive_until(message_from("ada")).text == "```python\ntotal = 0\n```"
        assert panel.input.value == ""


def test_keys_typed_just_after_enter_stay_and_the_sent_line_does_not_come_back(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        enter(panel, "first")
        assert bob.receive_until(message_from("ada")).text == "first"
        # The browser had buffered what was typed next before it saw the box cleared.
        panel.input.value = "first\nsec"
        assert panel.input.value == "sec"
        panel.input.value = "second"
        panel.input.value = "second\n"
        assert bob.receive_until(message_from("ada")).text == "second"
        panel.input.value = "second"  # typed again, after the clear: just text
        assert panel.input.value == "second"


def test_an_enter_typed_just_after_enter_sends_what_follows_too(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        enter(panel, "ok")
        assert bob.receive_until(message_from("ada")).text == "ok"
        panel.input.value = "ok\nyes\n"  # "yes" and Enter, typed before the browser saw the clear
        assert bob.receive_until(message_from("ada")).text == "yes"
        assert panel.input.value == ""
        panel.input.value = "yes\nand\nmore\n"  # several lines after it: a paste, kept whole
        assert panel.input.value == "and\nmore\n"


def test_a_message_longer_than_the_chat_takes_stays_in_the_box_unsent(server):
    port = server.address[1]
    panel = join("127.0.0.1", port, nick="ada")
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        code = "\n".join(f"print({n})" for n in range(250))
        panel.input.value = code  # a paste
        panel.input.value = code + "\n"  # and Enter at its end
        assert panel.input.value == code  # kept, without the Enter
        assert panel.status == "not sent: 250 lines as a message, and the chat takes 200"
        enter(panel, "x" * 4500)
        assert panel.input.value == "x" * 4500
        assert panel.status == "not sent: 4500 characters as a message, and the chat takes 4000"
        assert "not sent: 4500 characters" in panel.status_line.value
        assert panel.say("/me " + "y" * 4001) is False  # a command's text is measured too
        assert panel.say("//" + "z" * 4000) is False  # the message "/zzz...": 4001 characters
        assert panel.status == "not sent: 4001 characters as a message, and the chat takes 4000"
        assert panel.say("/msg bob " + "p" * 4000) is True  # the private text is what is measured
        assert len(bob.receive_until(lambda e: e.kind == "private").text) == 4000
        enter(panel, "short")
        assert bob.receive_until(message_from("ada")).text == "short"  # the first thing that went
        panel.wait_for("ada: short")
        assert panel.status == f"connected to 127.0.0.1:{port} as ada"  # the refusal has had its say
        assert not any("too long" in line for line in panel.transcript_lines())
        assert panel.say("x" * 4000) is True  # as long as the chat takes: sent
        assert len(bob.receive_until(message_from("ada")).text) == 4000


@pytest.mark.parametrize(
    ("old", "new", "sent"),
    [
        ("hi", "hi\n", "hi"),
        ("", "hi\n", "hi"),  # keys synced together still end in one Enter
        ("", "a\nb\n", None),  # a paste of lines ending in a newline stays
        ("a\nb", "a\n\nb", None),  # a newline in the middle
        ("```py\nx", "```py\nx\n", None),  # inside an open block
        ("```py\nx\n```", "```py\nx\n```\n", "```py\nx\n```"),
        ("````\n```\n", "````\n```\nx\n", None),  # a shorter fence does not close a longer one
        ("say `x`", "say `x`\n", "say `x`"),  # inline code is not a fence
        ("```x```", "```x```\n", "```x```"),
        ("hi", "h", None),
        # The browser merged the block's last keys into one change: the closing fence and Enter send.
        ("```python\ntotal = 0", "```python\ntotal = 0\n```\n", "```python\ntotal = 0\n```"),
        ("```py", "```py\nx\ny\n```\n", "```py\nx\ny\n```"),
        ("```py\nx", "```py\nx\n```\nmore\n", None),  # closed, then more lines: a paste, kept
        ("```py\nx", "```py\nx\ny\n", None),  # still open
        ("", "```py\nx\n```\n", None),  # a whole block pasted into the box stays, as any paste
    ],
)
def test_the_enter_rule(old, new, sent):
    assert typed_enter(old, new) == sent


def test_fenced_picks_a_fence_longer_than_any_inside():
    assert fenced("x = 1\n\n") == "```python\nx = 1\n```"
    assert fenced("```\nx\n```", "md") == "````md\n```\nx\n```\n````"
    assert fenced("  `````\n", "") == "``````\n  `````\n``````"
    assert fence_open("```") and not fence_open("```\n```") and not fence_open("```x```")


# -- in a real kernel: re-running cells, restarting, shutting down ---------------------------


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    from jupyter_client.manager import start_new_kernel

    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    yield manager, client
    client.stop_channels()
    if manager.is_alive():
        manager.shutdown_kernel(now=True)


def run_cell(client, code: str, cell_id: str | None = None, shown: list | None = None) -> str:
    """Execute code as a front end would (with a cell id if given); return what it printed.

    Each display or result goes into ``shown`` as (message type, its text/plain).
    """
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}}
    request = client.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
    client.shell_channel.send(request)
    printed = []
    while True:
        msg = client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != request["header"]["msg_id"]:
            continue
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        elif msg["msg_type"] in ("display_data", "execute_result") and shown is not None:
            shown.append((msg["msg_type"], msg["content"]["data"].get("text/plain")))
        elif msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(printed)


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


THREADS = (  # after any redraw still due (each ends within REDRAW_INTERVAL) has run
    "import threading\n"
    "for t in threading.enumerate():\n"
    "    t.join(2) if t.name.startswith('labchat-panel-') else None\n"
    "print(sorted(t.name for t in threading.enumerate() if 'labchat' in t.name))"
)


def test_rerunning_a_join_cell_replaces_its_panel(kernel, server):
    _, client = kernel
    port = server.address[1]
    cell = f"from labchat.widgets import join\np = join('127.0.0.1', {port}, nick='ada')\nprint(p.state)"
    assert run_cell(client, cell, cell_id="cell-1") == "connected\n"
    assert run_cell(client, cell, cell_id="cell-1") == "connected\n"  # the old ada left first
    assert server.users() == ["ada"]
    assert run_cell(client, cell, cell_id="cell-2") == "failed\n"  # another cell: a second ada
    assert run_cell(client, cell.replace("ada", "bob")) == "connected\n"  # no cell id: keyed by code
    assert run_cell(client, cell.replace("ada", "bob")) == "connected\n"
    assert server.users() == ["ada", "bob"]
    assert run_cell(client, THREADS) == "['labchat-client-ada', 'labchat-client-bob']\n"


def test_rerun_restart_and_shutdown_leave_no_server_behind(kernel):
    manager, client = kernel
    cell = "from labchat.widgets import host\np = host(port=0, nick='teacher')\nprint(p.address[1])"
    first = int(run_cell(client, cell, cell_id="host-cell"))
    second = int(run_cell(client, cell, cell_id="host-cell"))
    accept_and_own_chat = [
        "labchat-accept",
        "labchat-client-teacher",
        "labchat-connections-teacher",
        "labchat-reader-teacher",
    ]
    assert run_cell(client, THREADS) == f"{accept_and_own_chat}\n"  # a writer only for a client that lags
    assert first != second and refuses(first) and not refuses(second)
    manager.restart_kernel(now=False)
    client.wait_for_ready(timeout=30)
    assert refuses(second)
    again = f"from labchat.widgets import host\np = host(port={second}, nick='teacher')\nprint(p.state)"
    assert run_cell(client, again) == "serving\n"  # the same port binds at once
    manager.shutdown_kernel(now=False)
    assert not manager.is_alive() and refuses(second)


def test_every_panel_one_run_of_a_cell_makes_stays_until_the_cell_runs_again(kernel, server):
    _, client = kernel
    port = server.address[1]
    cell = (
        "from labchat.widgets import host, join, live_panels\n"
        f"ada = join('127.0.0.1', {port}, nick='ada')\n"
        f"bob = join('127.0.0.1', {port}, nick='bob')\n"
        f"more = [join('127.0.0.1', {port}, nick=n) for n in ('cyd', 'dee')]\n"
        "rooms = [host(port=0, nick=n, bot=False) for n in ('t1', 't2')]\n"
        "print([(p.nick, p.state) for p in live_panels()])"
    )
    guests = [(nick, "connected") for nick in ("ada", "bob", "cyd", "dee")]
    made = f"{guests + [('t1', 'serving'), ('t2', 'serving')]}\n"
    assert run_cell(client, cell, cell_id="class") == made
    assert server.users() == ["ada", "bob", "cyd", "dee"]
    assert run_cell(client, cell, cell_id="class") == made  # the earlier run's panels went first
    assert server.users() == ["ada", "bob", "cyd", "dee"]
    threads = run_cell(client, THREADS)
    assert threads.count("'labchat-accept'") == 2 and threads.count("labchat-client-") == 6


def test_a_panel_shows_itself_once_per_cell_run(kernel, server):
    _, client = kernel
    port = server.address[1]
    shown: list = []
    run_cell(client, "from labchat.widgets import join", shown=shown)
    run_cell(client, f"panel = join('127.0.0.1', {port}, nick='ada')", shown=shown)
    assert shown == [("display_data", "ChatPanel(nick='ada', state='connected')")]
    shown.clear()
    run_cell(client, f"join('127.0.0.1', {port}, nick='bob')", shown=shown)  # a bare call: still once
    assert shown == [("display_data", "ChatPanel(nick='bob', state='connected')")]
    shown.clear()
    run_cell(client, "panel", shown=shown)  # asked for again in a later cell: shown again
    assert shown == [("display_data", "ChatPanel(nick='ada', state='connected')")]
    shown.clear()
    run_cell(client, f"p = join('127.0.0.1', {port}, nick='cyd', show=False)", shown=shown)
    assert shown == []
