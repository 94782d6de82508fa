"""Every exercise check, run on a correct answer (it passes) and on a typical wrong one (it says why).

The answers are the learner's side: plain functions and classes as a notebook
cell would define them. A check runs them against real sockets on 127.0.0.1; here
we assert on the Result it returns: ``passed``, and a hint that names the problem.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import WAIT, assert_fails_saying, assert_passes

from labchat import exercises
from labchat.bot import Greeter
from labchat.exercises.answers import (
    Counter,
    LengthDecoder,
    LineDecoder,
    my_sendall,
    read_lines,
    receive_into,
    recv_exactly,
    recv_line,
    roll,
    serve_echo,
    swap,
)
from labchat.exercises.programs import classic

# -- recv_exactly, recv_line, sendall -----------------------------------------------------------


def recv_exactly_one_recv(sock, n):
    return sock.recv(n)


def recv_exactly_returns_short(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return data
        data += chunk
    return data


def test_recv_exactly_passes(capsys):
    result = exercises.check_recv_exactly(recv_exactly)
    assert_passes(result)
    assert capsys.readouterr().out == str(result) + "\n"  # what it returns is what it printed


def test_recv_exactly_after_one_recv_is_told_to_loop():
    assert_fails_saying(
        exercises.check_recv_exactly(recv_exactly_one_recv, quiet=True), "first piece", "loop"
    )


def test_recv_exactly_that_returns_short_is_told_about_eof():
    result = exercises.check_recv_exactly(recv_exactly_returns_short, quiet=True)
    assert_fails_saying(result, "EOFError", "b''")
    assert result.lines[0].startswith("ok: ")  # what works is said too


def recv_line_reads_a_block(sock):
    data = b""
    while b"\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError
        data += chunk
    return data.split(b"\n")[0]  # and whatever came after the newline is lost


def test_recv_line_passes():
    assert_passes(exercises.check_recv_line(recv_line, quiet=True))


def test_recv_line_that_loses_the_next_line_is_told_why():
    assert_fails_saying(exercises.check_recv_line(recv_line_reads_a_block, quiet=True), "more than one line")


def sendall_one_send(sock, data):
    sock.send(data)


def test_sendall_passes():
    assert_passes(exercises.check_sendall(my_sendall, quiet=True))


def test_sendall_with_one_send_is_told_that_send_takes_part():
    assert_fails_saying(exercises.check_sendall(sendall_one_send, quiet=True), "bytes arrived", "in a loop")


def test_sendall_that_calls_sendall_is_caught():
    result = exercises.check_sendall(lambda sock, data: sock.sendall(data), quiet=True)
    assert_fails_saying(result, "sock.sendall", "sock.send")


# -- decoders ---------------------------------------------------------------------------------


class OneRecvOneMessage:
    """Assumes every piece is whole lines."""

    def __init__(self):
        self.ready = []

    def feed(self, data):
        self.ready += data.split(b"\n")[:-1]

    def lines(self):
        ready, self.ready = self.ready, []
        return ready


def test_line_decoder_passes():
    assert_passes(exercises.check_line_decoder(LineDecoder, quiet=True))


def test_line_decoder_that_takes_a_piece_for_lines_is_told_to_buffer():
    assert_fails_saying(
        exercises.check_line_decoder(OneRecvOneMessage, quiet=True), "buffer", "middle of a line"
    )


class LengthDecoderWithoutLimit(LengthDecoder):
    def feed(self, data):
        self.buffer += data


def test_length_decoder_passes():
    assert_passes(exercises.check_length_decoder(LengthDecoder, quiet=True))


def test_length_decoder_without_a_limit_is_told_to_refuse_huge_lengths():
    result = exercises.check_length_decoder(LengthDecoderWithoutLimit, quiet=True)
    assert_fails_saying(result, "4,000,000,000", "max_size")


# -- threads ----------------------------------------------------------------------------------


def receive_into_without_end(sock, inbox):
    buffer = b""
    while True:  # never notices b"": spins on, and never says the stream ended
        buffer += sock.recv(4096)
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            inbox.put(line.decode())
        if sock.fileno() == -1:
            return


def test_receiver_passes():
    assert_passes(exercises.check_receiver(receive_into, quiet=True))


def test_receiver_that_never_says_the_end_is_told_to_put_none():
    assert_fails_saying(exercises.check_receiver(receive_into_without_end, quiet=True), "None", "b''")


class CounterWithoutLock:
    def __init__(self):
        self.value = 0

    def increment(self, pause):
        current = self.value
        pause()
        self.value = current + 1


def test_counter_with_lock_passes():
    assert_passes(exercises.check_counter(Counter, quiet=True))


def test_counter_without_lock_is_told_about_the_race():
    assert_fails_saying(exercises.check_counter(CounterWithoutLock, quiet=True), "race", "Lock")


def swap_send_first(sock, data):
    sock.sendall(data)
    return recv_exactly(sock, len(data))


def test_swap_in_a_thread_passes():
    assert_passes(exercises.check_swap(swap, quiet=True))


def test_swap_that_sends_first_is_told_about_the_deadlock():
    assert_fails_saying(exercises.check_swap(swap_send_first, quiet=True), "deadlock", "thread")


# -- the room: a command and the greeter -------------------------------------------------------


def roll_trusting(nick, arg, rng):
    sides = int(arg or 6)
    return f"{nick} rolls {rng.randint(1, sides)} (1-{sides})"


def test_roll_passes():
    assert_passes(exercises.check_roll(roll, quiet=True))


def test_roll_whose_usage_line_starts_with_a_capital_passes():
    def roll_capital(nick, arg, rng):
        answer = roll(nick, arg, rng)
        return "U" + answer[1:] if answer.startswith("usage:") else answer

    assert_passes(exercises.check_roll(roll_capital, quiet=True))


def test_roll_that_trusts_its_argument_is_told_to_check_it():
    assert_fails_saying(exercises.check_roll(roll_trusting, quiet=True), "ValueError", "check the argument")


def test_roll_that_forgets_the_top_face_is_told_randint_includes_it():
    def roll_off_by_one(nick, arg, rng):
        return f"{nick} rolls {rng.randrange(1, 6)}"

    assert_fails_saying(exercises.check_roll(roll_off_by_one, quiet=True), "both ends")


def test_roll_that_accepts_a_one_sided_die_is_told_the_range():
    def roll_from_one(nick, arg, rng):
        if arg and not (arg.isdecimal() and 1 <= int(arg) <= 1000):
            return "usage: /roll [SIDES]"
        sides = int(arg or 6)
        return f"{nick} rolls {rng.randint(1, sides)} (1-{sides})"

    assert_fails_saying(exercises.check_roll(roll_from_one, quiet=True), "'1'", "from 2 to 1000")


class QueueGreeter(Greeter):
    def on_message(self, nick, text):
        if "queue" in text.lower() and text.rstrip().endswith("?"):
            return ["A queue hands items from one thread to another, safely and in order."]
        return super().on_message(nick, text)


class ForgetfulGreeter(Greeter):
    def on_message(self, nick, text):
        if "queue" in text.lower():
            return ["A queue hands items from one thread to another."]
        if text.lower().startswith("hello"):
            return [f"Hello {nick}! 😊"]
        return []


def test_greeter_with_a_new_answer_passes():
    assert_passes(exercises.check_greeter(QueueGreeter(), "what is a queue?", "thread", quiet=True))


class ChattyGreeter(Greeter):
    """Chooses its words afresh each time: right too."""

    def __init__(self):
        super().__init__()
        self.turn = 0

    def on_message(self, nick, text):
        if "queue" in text.lower() and text.rstrip().endswith("?"):
            self.turn += 1
            return [
                ("A queue passes items between threads.", "Threads share work through a queue.")[
                    self.turn % 2
                ]
            ]
        return super().on_message(nick, text)


def test_greeter_that_words_its_answer_differently_each_time_passes():
    assert_passes(exercises.check_greeter(ChattyGreeter(), "what is a queue?", "thread", quiet=True))


def test_greeter_that_was_not_taught_is_told_what_to_add():
    assert_fails_saying(
        exercises.check_greeter(Greeter(), "what is a queue?", "thread", quiet=True), "glossary"
    )


def test_greeter_that_forgot_the_rest_is_told_to_call_super():
    result = exercises.check_greeter(ForgetfulGreeter(), "what is a queue?", "thread", quiet=True)
    assert_fails_saying(result, "super()")


# -- servers: a chopping room, a selectors echo server ------------------------------------------


def read_lines_one_recv_each(sock, count):
    return [sock.recv(4096).decode("utf-8", "replace").rstrip("\n") for _ in range(count)]


def test_client_on_a_chopping_server_passes():
    assert_passes(exercises.check_chopped_client(read_lines, quiet=True))


def test_client_taking_one_recv_for_one_line_is_told_why():
    result = exercises.check_chopped_client(read_lines_one_recv_each, quiet=True)
    assert_fails_saying(result, "one recv is not one line")


def serve_echo_one_at_a_time(listener, stop):
    while not stop.is_set():
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)


def serve_echo_thread_per_client(listener, stop):
    """Echoes everyone and ends on stop, but with a thread for each client: not the exercise."""

    def echo(conn):
        with conn:
            conn.settimeout(0.1)
            while not stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    return
                conn.sendall(data)

    listener.settimeout(0.1)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def test_selector_echo_passes():
    result = exercises.check_selector_echo(serve_echo, quiet=True)
    assert_passes(result)
    assert any("one thread" in line for line in result.lines), str(result)


def test_echo_server_that_serves_one_client_at_a_time_is_told_about_select():
    result = exercises.check_selector_echo(serve_echo_one_at_a_time, quiet=True)
    assert_fails_saying(result, "silent", "select")


def test_echo_server_with_a_thread_per_client_is_told_to_use_one_thread():
    result = exercises.check_selector_echo(serve_echo_thread_per_client, quiet=True)
    assert_fails_saying(result, "new threads ran", "one thread and a selector, not a thread per client")
    assert any("while a third sat silent" in line for line in result.lines), str(result)


# -- nothing escapes ---------------------------------------------------------------------------


def test_a_check_reports_a_surprise_instead_of_raising():
    result = exercises.check_line_decoder(lambda: None, quiet=True)  # no feed() at all
    assert_fails_saying(result, "AttributeError")


def test_a_hanging_answer_is_reported_not_waited_for():
    hang = threading.Event()
    result = exercises.check_recv_line(lambda sock: hang.wait(), quiet=True)
    assert_fails_saying(result, "still running")
    hang.set()


# -- the two programs ---------------------------------------------------------------------------

pytest.importorskip("pexpect")

BROKEN_CLIENT = """
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print(sock.recv(1024).decode(), flush=True)   # prints the greeting, then only ever types
while (text := input()) != "bye":
    sock.sendall((text + "\\n").encode())
"""


def test_labchats_own_programs_pass_the_program_check():
    assert_passes(exercises.check_chat_programs(classic("server"), classic("client"), quiet=True))


def test_a_client_without_a_receiver_thread_is_told_to_use_one(tmp_path: Path):
    client = tmp_path / "chat_client.py"
    client.write_text(BROKEN_CLIENT, encoding="utf-8")
    result = exercises.check_chat_programs(classic("server"), str(client), quiet=True)
    assert_fails_saying(result, "while the client was typing", "second thread")
    assert any("greeting arrived" in line for line in result.lines)


@pytest.mark.parametrize("which", ["server", "client"])
def test_labchats_own_programs_end_cleanly_when_the_other_side_leaves_at_once(which):
    """The receiver's wake-up (SIGINT) may come before the main thread reaches its next line."""
    for _ in range(20):
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            args = ["0"] if which == "server" else ["127.0.0.1", str(port)]
            program = subprocess.Popen(
                [sys.executable, "-m", f"labchat.exercises.classic_{which}", *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                if which == "server":
                    port = int(program.stdout.readline().split()[-1])
                    other = socket.create_connection(("127.0.0.1", port))
                else:
                    other, _ = listener.accept()
                with other:
                    other.sendall(b"bye\n")
                    program.wait(WAIT)  # its input still open: only the other side's bye ends it
                out, err = program.stdout.read(), program.stderr.read()
            finally:
                if program.poll() is None:
                    program.kill()
                program.communicate()
        assert "Traceback" not in err and program.returncode == 0, err
        assert out.endswith("said bye\nchat over\n"), out


def test_missing_programs_are_named():
    result = exercises.check_chat_programs("no_such_server.py", "no_such_client.py", quiet=True)
    assert_fails_saying(result, "no_such_server.py", "%%writefile")


@pytest.mark.parametrize("chop", [False, True], ids=["plain", "chopping"])
def test_labchats_own_client_joins_a_room(chop: bool):
    result = exercises.check_client_in_room(classic("client"), chop=chop, quiet=True)
    assert_passes(result)
    assert any("bob: hi ada" in line for line in result.lines)


def test_the_checks_leave_no_socket_open_in_this_process():
    before = len(list(Path("/proc/self/fd").iterdir()))
    exercises.check_recv_exactly(recv_exactly, quiet=True)
    exercises.check_selector_echo(serve_echo, quiet=True)
    assert len(list(Path("/proc/self/fd").iterdir())) <= before


NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05.1-The-Classic-Two-Program-Chat.ipynb"


def written_by(tag: str) -> dict[str, str]:
    """The files the notebook's %%writefile cells with this tag write: {name: text}."""
    import nbformat

    files = {}
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if tag in cell.metadata.get("tags", []) and cell.source.startswith("%%writefile"):
            first, _, body = cell.source.partition("\n")
            files[first.split()[1]] = body + "\n"
    return files


def test_the_notebooks_worked_answers_are_labchats_own_programs():
    answers = written_by("solution")
    assert set(answers) == {"chat_server.py", "chat_client.py"}
    for name, text in answers.items():
        own = classic_text(name.removeprefix("chat_").removesuffix(".py"))
        assert text.partition("\n")[2].strip() == own.split('"""\n', 1)[1].strip(), name


def test_the_notebooks_starters_are_not_yet_and_say_why(tmp_path: Path):
    for name, text in written_by("exercise").items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    result = exercises.check_chat_programs(
        str(tmp_path / "chat_server.py"), str(tmp_path / "chat_client.py"), quiet=True
    )
    assert_fails_saying(result, "listening on port")


def classic_text(which: str) -> str:
    return Path(classic(which)).read_text(encoding="utf-8")


def test_without_pexpect_the_program_check_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pexpect", None)  # as on a machine where it is not installed
    result = exercises.check_chat_programs(classic("server"), classic("client"))
    assert_fails_saying(result, "pip install pexpect")
    assert "Traceback" not in capsys.readouterr().out


def test_without_ipytest_use_ipytest_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ipytest", None)
    assert exercises.use_ipytest() is False
    assert "pip install ipytest" in capsys.readouterr().out


FAILING_CELL = """%%ipytest
from labchat import exercises


def recv_exactly(sock, n):
    return sock.recv(n)


def test_recv_exactly():
    result = exercises.check_recv_exactly(recv_exactly, quiet=True)
    assert result.passed, str(result)
"""


def test_a_failing_ipytest_cell_prints_the_hint_and_the_notebook_goes_on(tmp_path: Path):
    """In a real kernel: pytest's report holds the check's hint, and no error stops the next cell."""
    pytest.importorskip("ipytest")
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from labchat import exercises\nready = exercises.use_ipytest()"),
        nbformat.v4.new_code_cell(FAILING_CELL),
        nbformat.v4.new_code_cell("print('still running')"),
    ]
    where = {"metadata": {"path": str(tmp_path)}}
    NotebookClient(nb, timeout=60, kernel_name="python3", resources=where).execute()
    report = "".join(out.get("text", "") for out in nb.cells[1].outputs)
    assert "FAILED" in report and "hint: one recv gives what has arrived so far" in report
    assert all(out.output_type != "error" for cell in nb.cells for out in cell.outputs)
    assert nb.cells[2].outputs[0].text == "still running\n"
