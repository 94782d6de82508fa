"""The later notebooks' checks (05.1, 06.1, 08, 09) on the wrong answers a beginner really writes.

Each wrong answer here is one a learner wrote: a server that sends str, a client
that prints bytes, an echo server that closes a client without unregistering it
or never closes its clients, a greeter without ``super()``, one that raises,
returns None or sleeps, a ``/roll`` that ignores its ``rng`` or never rolls the
top face, a ``read_lines`` that decodes byte by byte or keeps its leftovers in a
local variable. The checks run them for real (sockets on 127.0.0.1 port 0, real
processes, a real pty), and each test asserts the feedback the learner reads.
When the learner's code raised, that feedback names the line of this file that
did, found here with ``line_of``.
"""

from __future__ import annotations

import inspect
import random
import re
import selectors
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_fails_saying, assert_passes

from labchat import exercises
from labchat.bot import Greeter
from labchat.exercises.answers import read_lines, roll, serve_echo
from labchat.exercises.feedback import PATIENCE
from labchat.exercises.programs import classic

HERE = Path(__file__).name


def line_of(function, code: str) -> int:
    """The line number, in this file, of the first line of ``function`` that holds ``code``."""
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if code in line)


# -- 06.1: the selectors echo server ------------------------------------------------------------


def echo_server(*, decode: bool = False, unregister: bool = True, close_at_stop: bool = True):
    """A selectors echo server as a learner writes it, with one of their mistakes switched on."""

    def serve(listener, stop):
        selector = selectors.DefaultSelector()
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                if sock is listener:
                    conn, _ = listener.accept()
                    conn.setblocking(False)
                    selector.register(conn, selectors.EVENT_READ)
                    continue
                data = sock.recv(4096)
                if not data:
                    if unregister:
                        selector.unregister(sock)
                    sock.close()
                elif decode:
                    sock.sendall(data.decode())
                else:
                    sock.sendall(data)
        if close_at_stop:
            for key in list(selector.get_map().values()):
                if key.fileobj is not listener:
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
        selector.close()

    return serve


def test_the_echo_answer_passes_and_its_clients_see_the_end():
    result = exercises.check_selector_echo(serve_echo, quiet=True)
    assert_passes(result)
    assert result.lines[-1] == (
        "ok: the clients still connected saw the end (recv gave b'') once serve_echo returned"
    )


def test_an_echo_server_that_sends_str_is_told_what_it_raised_and_where():
    serve = echo_server(decode=True)
    result = exercises.check_selector_echo(serve, quiet=True)
    line = line_of(echo_server, "sock.sendall(data.decode())")
    assert_fails_saying(
        result,
        "not yet: while clients connected and sent lines, serve_echo raised TypeError: a bytes-like "
        f"object is required, not 'str', at line {line} of {HERE}: sock.sendall(data.decode()); "
        "hint: a socket sends bytes: send back the very bytes recv returned, without decoding them",
    )
    assert "blocking recv" not in str(result)


def test_an_echo_server_that_closes_without_unregistering_is_told_to_unregister_first():
    result = exercises.check_selector_echo(echo_server(unregister=False), quiet=True)
    line = line_of(echo_server, "selector.register(conn, selectors.EVENT_READ)")
    fd = re.search(r"<socket fd=(\d+)>", str(result)).group(1)  # the number the new client was given
    assert_fails_saying(
        result,
        f'not yet: after a client hung up, serve_echo raised KeyError: "<socket fd={fd}> (FD {fd}) is '
        f'already registered", at line {line} of {HERE}: selector.register(conn, selectors.EVENT_READ); '
        "hint: unregister a client before you close it: a closed socket's number goes to the next "
        "client, and the selector still holds the old one under it",
    )
    assert "give select() a timeout" not in str(result)


def test_an_echo_server_that_never_closes_its_clients_at_stop_is_told_so():
    result = exercises.check_selector_echo(echo_server(close_at_stop=False), quiet=True)
    assert "ok: setting stop ended serve_echo" in result.lines
    assert_fails_saying(
        result,
        "not yet: serve_echo returned, but left 2 client connections open: those clients wait for "
        "ever, never told that the server has gone; hint: once stop is set, unregister and close "
        "every client still registered (the listener belongs to whoever made it)",
    )


# -- 08: the greeter ----------------------------------------------------------------------------


class NoSuperGreeter(Greeter):
    """Knows how to leave, and nothing else: the rest is not handed to Greeter."""

    def on_message(self, nick, text):
        if "leave" in text:
            return [f"Type bye, {nick}."]
        return []


class RaisingGreeter(Greeter):
    def on_message(self, nick, text):
        if "leave" in text:
            raise ValueError("no idea")
        return super().on_message(nick, text)


class SilentGreeter(Greeter):
    """Forgets to return anything when the question is not about leaving: None."""

    def on_message(self, nick, text):
        if "leave" in text:
            return ["Type bye."]


class TextGreeter(Greeter):
    def on_message(self, nick, text):
        if "leave" in text:
            return "Type bye."
        return super().on_message(nick, text)


class StuckGreeter(Greeter):
    """Waits (for ``release``) before it answers how to leave: as a learner's time.sleep(60) does."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def on_message(self, nick, text):
        if "leave" in text:
            self.release.wait(60)
        return super().on_message(nick, text)


ASK = "how do I leave?"


def test_a_greeter_without_super_is_told_to_call_super():
    result = exercises.check_greeter(NoSuperGreeter(), ASK, "bye", quiet=True)
    assert result.lines == [
        "ok: asked 'how do I leave?', the greeter said: Type bye, ada.",
        "not yet: asked 'what is a socket?', it no longer knew; hint: keep what Greeter already "
        "knows: call super().on_message(...) for the rest",
        "ok: it stays quiet when nobody asks it anything",
        "ok: in a real room on 127.0.0.1, ada asked 'how do I leave?', and the answer came to everyone",
    ]


def test_a_greeter_that_raises_is_told_its_error_and_line():
    result = exercises.check_greeter(RaisingGreeter(), ASK, "bye", quiet=True)
    line = line_of(RaisingGreeter, 'raise ValueError("no idea")')
    assert result.lines == [
        "not yet: on_message('ada', 'how do I leave?') raised ValueError: no idea, at line "
        f'{line} of {HERE}: raise ValueError("no idea"); hint: the room calls it for every line '
        "anyone says: it must answer each with a list of lines ([] for none), and never raise"
    ]


def test_a_greeter_that_returns_none_is_told_to_return_a_list():
    result = exercises.check_greeter(SilentGreeter(), ASK, "bye", quiet=True)
    assert_fails_saying(
        result,
        "not yet: on_message('ada', 'what is a socket?') returned None, not a list of lines; hint: "
        "every way through the method must end in a return: return [] when it has nothing to say, "
        "or return super().on_message(...) to leave it to Greeter",
    )
    assert result.lines[0] == "ok: asked 'how do I leave?', the greeter said: Type bye."


def test_a_greeter_that_returns_text_is_told_to_put_it_in_a_list():
    result = exercises.check_greeter(TextGreeter(), ASK, "bye", quiet=True)
    assert result.lines == [
        "not yet: on_message('ada', 'how do I leave?') returned the text 'Type bye.', not a list of "
        "lines; hint: put even one line in a list: return ['Type bye.']"
    ]


def test_a_greeter_that_waits_is_reported_within_the_deadline_and_never_put_in_a_room():
    greeter = StuckGreeter()
    started = time.monotonic()
    try:
        result = exercises.check_greeter(greeter, ASK, "bye", quiet=True)
    finally:
        greeter.release.set()  # lets the learner's stuck call end
    assert time.monotonic() - started < PATIENCE + 3
    assert result.lines == [
        f"not yet: on_message('ada', 'how do I leave?') was still running after {PATIENCE:g} s, so "
        "the check did not put it in a room; hint: the room waits for its bot's answer, and everyone "
        "in the room waits with it: answer at once, with no time.sleep, input() or network call"
    ]


# -- 08: /roll ----------------------------------------------------------------------------------


def roll_with_the_random_module(nick, arg, rng):
    if not arg:
        sides = 6
    elif arg.isdecimal() and 2 <= int(arg) <= 1000:
        sides = int(arg)
    else:
        return "usage: /roll [SIDES]"
    return f"{nick} rolls {random.randint(1, sides)} (1-{sides})"


def roll_never_the_top_face(nick, arg, rng):
    if not arg:
        sides = 6
    elif arg.isdecimal() and 2 <= int(arg) <= 1000:
        sides = int(arg)
    else:
        return "usage: /roll [SIDES]"
    return f"{nick} rolls a d{sides}: {rng.randrange(1, sides)}"


def test_the_roll_answer_rolls_with_its_rng():
    result = exercises.check_roll(roll, quiet=True)
    assert_passes(result)
    assert "ok: the same seed gave the same rolls: it rolls with the rng it is given" in result.lines


def test_a_roll_with_the_random_module_is_told_to_use_the_rng():
    result = exercises.check_roll(roll_with_the_random_module, quiet=True)
    assert_fails_saying(
        result,
        "not yet: two random.Random(2024), seeded alike, gave different rolls: roll does not roll with "
        "the rng it is given; hint: roll with rng (rng.randint(1, sides)), not the random module: then "
        "the same seed gives the same rolls, which is how this notebook's outputs come out the same on "
        "every run",
    )


def test_a_roll_that_never_rolls_the_top_face_is_caught_though_the_line_says_d6():
    result = exercises.check_roll(roll_never_the_top_face, quiet=True)
    assert result.lines[0] == (
        "not yet: '/roll' gave 'ada rolls a d6: 3'; 300 rolls showed [1, 2, 3, 4, 5]; hint: name the "
        "roller and use rng.randint(1, 6): both ends are included"
    )


# -- 09: read_lines on a chopping server --------------------------------------------------------


def read_lines_decoding_each_byte(sock, count):
    lines = []
    for _ in range(count):
        line = ""
        while not line.endswith("\n"):
            byte = sock.recv(1)
            if not byte:
                raise EOFError
            line += byte.decode("utf-8", errors="replace")
        lines.append(line[:-1])
    return lines


def read_lines_with_a_local_buffer(sock, count):
    buffer, lines = b"", []
    while len(lines) < count:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError
        buffer += chunk
        while b"\n" in buffer and len(lines) < count:
            line, _, buffer = buffer.partition(b"\n")
            lines.append(line.decode("utf-8"))
    return lines  # what is left in buffer is lost


def test_the_read_lines_answer_passes_both_parts():
    result = exercises.check_chopped_client(read_lines, quiet=True)
    assert_passes(result)
    assert result.lines[-1] == (
        "ok: 'one\\ntwo\\n' arrived in one piece: read_lines(sock, 1) gave ['one'], and a second call ['two']"
    )


def test_read_lines_decoding_byte_by_byte_is_told_the_emoji_was_cut_up():
    result = exercises.check_chopped_client(read_lines_decoding_each_byte, quiet=True)
    assert result.lines == [
        "not yet: 4 lines were sent in tiny pieces; the greeter's came out as "
        "'greeter: \ufffd\ufffd\ufffd\ufffd Hello ada, welco', not 'greeter: 👋 Hello ada, welco'; "
        "hint: decode a whole line at once, never byte by byte or one recv at a time: "
        "👋 is 4 bytes in UTF-8, and a piece of it is no character "
        "(errors='replace' turns each piece into '\ufffd')"
    ]


def test_read_lines_keeping_leftovers_in_a_local_is_caught_on_the_second_call():
    result = exercises.check_chopped_client(read_lines_with_a_local_buffer, quiet=True)
    assert result.lines[:2] == [
        "ok: the server sent its bytes 1 to 7 at a time, and 4 whole lines came out",
        "ok: the room said: --> ada joined",
    ]
    assert_fails_saying(
        result,
        "not yet: 'one\\ntwo\\n' arrived in one piece; read_lines(sock, 1) gave ['one'], then a second "
        "read_lines(sock, 1) was still waiting when the check stopped waiting for it: the first call "
        "had taken 'two' out of the socket; hint: a plain function keeps nothing between calls, so "
        "what its recv took past the last line is lost when it returns: take one byte at a time "
        "(sock.recv(1), as notebook 4's recv_line did), so that nothing after the line leaves the socket",
    )


# -- 05.1: the two programs, as processes -------------------------------------------------------

pexpect = pytest.importorskip("pexpect")


def learner_program(tmp_path: Path, which: str, old: str, new: str) -> tuple[str, int]:
    """labchat's own program with one line changed as a learner would: (its path, that line's number)."""
    text = Path(classic(which)).read_text(encoding="utf-8")
    assert old in text
    text = text.replace(old, new)
    path = tmp_path / f"chat_{which}.py"
    path.write_text(text, encoding="utf-8")
    number = next(i for i, line in enumerate(text.splitlines(), 1) if new in line)
    return str(path), number


def test_a_server_that_sends_str_is_told_it_crashed_and_where(tmp_path: Path):
    server, line = learner_program(
        tmp_path, "server", 'conn.sendall((GREETING + "\\n").encode())', 'conn.sendall(GREETING + "\\n")'
    )
    result = exercises.check_chat_programs(server, classic("client"), quiet=True)
    assert result.lines == [
        "ok: the server listens and says on which port",
        "not yet: chat_server.py crashed: TypeError: a bytes-like object is required, not 'str', at "
        f'line {line}: conn.sendall(GREETING + "\\n"); hint: a socket sends bytes, not str: encode '
        "the text before sending it, as in sock.sendall((text + '\\n').encode())",
    ]
    assert "Traceback" not in str(result)


def test_a_client_that_prints_bytes_is_told_to_decode(tmp_path: Path):
    client, _ = learner_program(
        tmp_path, "client", "print(text, flush=True)", "print(line.encode(), flush=True)"
    )
    result = exercises.check_chat_programs(classic("server"), client, quiet=True)
    assert result.lines == [
        "ok: the server listens and says on which port",
        "not yet: the client printed the greeting as bytes: b'Welcome to the chat! Type a line and "
        "press Enter; bye ends the chat.\\n'; hint: decode what arrives before you print it: read "
        "text lines with sock.makefile('r', encoding='utf-8'), or print(data.decode('utf-8'))",
    ]


def test_a_client_that_prints_the_room_s_banner_as_bytes_is_told_to_decode(tmp_path: Path):
    client, _ = learner_program(
        tmp_path, "client", "print(text, flush=True)", "print(line.encode(), flush=True)"
    )
    result = exercises.check_client_in_room(client, quiet=True)
    assert result.lines[-1].startswith(
        "not yet: the client printed the room's banner as bytes: b'labchat/1 Welcome"
    )
    assert result.lines[-1].endswith(
        "hint: decode what arrives before you print it: read text lines with "
        "sock.makefile('r', encoding='utf-8')"
    )


@pytest.mark.parametrize("check", ["programs", "room"])
def test_a_client_that_prints_bytes_after_a_label_is_told_to_decode(tmp_path: Path, check):
    client, _ = learner_program(
        tmp_path, "client", "print(text, flush=True)", 'print("got:", line.encode(), flush=True)'
    )
    if check == "programs":
        result = exercises.check_chat_programs(classic("server"), client, quiet=True)
        assert result.lines[-1].startswith(
            "not yet: the client printed the greeting as bytes: got: b'Welcome"
        )
    else:
        result = exercises.check_client_in_room(client, quiet=True)
        assert result.lines[-1].startswith("not yet: the client printed the room's banner as bytes: got: b'")


def test_a_server_that_ends_with_a_traceback_is_not_told_it_ended_well(tmp_path: Path):
    server, _ = learner_program(
        tmp_path, "server", "except (KeyboardInterrupt, EOFError, OSError):", "except (EOFError, OSError):"
    )
    result = exercises.check_chat_programs(server, classic("client"), quiet=True)
    assert not result.passed
    assert not any("ended both programs" in line or "noticed and ended" in line for line in result.lines)
    crash = next(line for line in result.lines if "crashed" in line)
    assert crash.startswith("not yet: chat_server.py crashed: KeyboardInterrupt")
    assert "catch it around the input loop (except KeyboardInterrupt)" in crash


def read_lines_keeping_newlines(sock, count):
    stream = sock.makefile("r", encoding="utf-8", newline="\n")
    return [stream.readline() for _ in range(count)]


def test_read_lines_that_keeps_each_newline_is_told_to_leave_it_out():
    result = exercises.check_chopped_client(read_lines_keeping_newlines, quiet=True)
    assert result.lines == [
        "not yet: 4 whole lines came out, each still ending in its newline: '--> ada joined\\n'; hint: "
        "a line is what comes before b'\\n': leave the newline out of the line you return"
    ]


def test_a_client_that_receives_in_its_main_thread_is_told_to_start_one(tmp_path: Path):
    client, _ = learner_program(
        tmp_path,
        "client",
        "threading.Thread(target=receive, args=(sock,), daemon=True).start()",
        "receive(sock)",
    )
    result = exercises.check_chat_programs(classic("server"), client, quiet=True)
    assert result.lines[-1] == (
        "not yet: a line typed in the client never appeared on the server; hint: the client starts no "
        "thread, so it receives in its main thread and never gets to input(): run receive in a second "
        "one, threading.Thread(target=receive, args=(sock,), daemon=True).start()"
    )
