"""Notebook 02's exercise, serve_once: the answer passes, typical wrong answers hear what to change.

Each wrong answer below is one a learner writes on the way: no greeting, one
answer only, one line per recv, a loop that never sees b'', a server that
forgets to close or never returns. The check runs each against a real client on
127.0.0.1; we assert on the Result, and that nothing is left open or running.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from conftest import assert_fails_saying, assert_passes, exercise_threads_end

from labchat import exercises
from labchat.exercises.answers import serve_once


def open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


# -- the wrong answers ---------------------------------------------------------------------------


def silent(listener):
    conn, _ = listener.accept()
    with conn:
        while data := conn.recv(1024):  # a fine echo, but the client is never greeted
            conn.sendall(data)


def answers_once(listener):
    conn, _ = listener.accept()
    with conn:
        conn.sendall(b"hi\n")
        conn.sendall(conn.recv(1024))  # one recv, one answer, and goodbye


def one_line_per_recv(listener):
    conn, _ = listener.accept()
    with conn:
        conn.sendall(b"hi\n")
        while data := conn.recv(1024):
            conn.sendall(data.split(b"\n")[0] + b"\n")  # takes one recv for one line


def never_sees_the_end(listener):
    conn, _ = listener.accept()
    with conn:
        conn.sendall(b"hi\n")
        while True:  # b"" is sent back like any data, for ever: a busy loop
            conn.sendall(conn.recv(1024))


def forgets_to_close(listener):
    conn, _ = listener.accept()
    conn.sendall(b"hi\n")
    while data := conn.recv(1024):
        conn.sendall(data)


def waits_for_the_next_client(listener):
    serve_once(listener)
    listener.accept()  # never comes: this one does not return


def starter(listener):
    conn, address = listener.accept()
    # your code here: greet, answer each line, close when recv returns b""


# -- the tests -----------------------------------------------------------------------------------


def test_labchats_answer_passes(capsys):
    result = exercises.check_serve_once(serve_once)
    assert_passes(result)
    assert len(result.lines) == 4
    assert capsys.readouterr().out == str(result) + "\n"
    assert exercises.answers.serve_once is serve_once


def test_a_server_that_does_not_greet_is_told_to_speak_first():
    assert_fails_saying(exercises.check_serve_once(silent, quiet=True), "no greeting", "speaks first")


def test_the_starter_is_not_yet_and_hears_about_the_greeting():
    assert_fails_saying(exercises.check_serve_once(starter, quiet=True), "no greeting")


def test_a_server_that_answers_once_is_told_to_loop():
    result = exercises.check_serve_once(answers_once, quiet=True)
    assert_fails_saying(result, "closed the connection", "in a loop")
    assert result.lines[0].startswith("ok: ") and result.lines[1].startswith("ok: ")


def test_a_server_taking_one_recv_for_one_line_hears_it_may_hold_more():
    result = exercises.check_serve_once(one_line_per_recv, quiet=True)
    assert_fails_saying(result, "one packet", "more than one line")


def test_a_loop_that_never_sees_b_empty_is_called_busy_and_is_stopped():
    result = exercises.check_serve_once(never_sees_the_end, quiet=True)
    assert_fails_saying(result, "busy loop", "b''", "return")
    assert exercise_threads_end(), "the learner's loop was left spinning"


def test_a_server_that_forgets_to_close_is_told_to_close():
    result = exercises.check_serve_once(forgets_to_close, quiet=True)
    assert_fails_saying(result, "left the connection open", "with conn:")


def test_a_server_that_never_returns_is_reported_not_waited_for():
    started = time.monotonic()
    result = exercises.check_serve_once(waits_for_the_next_client, quiet=True)
    assert time.monotonic() - started < 10
    assert_fails_saying(result, "still running", "return", "no second accept")
    assert exercise_threads_end(), "the learner's accept was not woken"


def test_a_server_stuck_in_recv_after_the_end_is_told_to_return():
    never = threading.Event()

    def waits_for_more(listener):
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"hi\n")
            while True:
                data = conn.recv(1024)
                if data:
                    conn.sendall(data)
                else:
                    never.wait(10)  # "maybe more comes later": it never does

    result = exercises.check_serve_once(waits_for_more, quiet=True)
    never.set()
    assert_fails_saying(result, "still running", "leave the loop on b''")


def test_an_answer_that_raises_is_described_not_raised():
    def broken(listener):
        raise NotImplementedError("write serve_once")

    result = exercises.check_serve_once(broken, quiet=True)
    assert_fails_saying(result, "NotImplementedError: write serve_once")


def test_the_check_leaves_no_socket_open():
    before = open_fds()
    for answer in (serve_once, forgets_to_close, never_sees_the_end, waits_for_the_next_client):
        exercises.check_serve_once(answer, quiet=True)
    assert exercise_threads_end()
    assert open_fds() <= before
