"""The first notebooks' exercises (02 to 05), on the wrong answers a beginner really writes.

Each wrong answer below is one a learner writes on the way, and the check must
say exactly what it did: the error their own code raised, with its line, rather
than the symptom it caused; the type they returned, and the one wanted; a loop
that never ends, reported and stopped; and no wrong answer passes. The checks
run each answer on real sockets on 127.0.0.1; we assert on the Result's lines.
"""

from __future__ import annotations

import inspect
import re
import struct
import threading
import time
from pathlib import Path

import pytest
from conftest import assert_fails_saying, assert_passes, exercise_threads_end

from labchat import exercises
from labchat.exercises import answers, framing, wire
from labchat.exercises.feedback import attempt, learners_line, raised

HERE = Path(__file__).name


def line_of(code: object, text: str) -> str:
    """'line N of this file': where ``text`` first appears in the source of ``code``."""
    lines, start = inspect.getsourcelines(code)  # type: ignore[arg-type]
    for offset, line in enumerate(lines):
        if text in line:
            return f"line {start + offset} of {HERE}"
    raise AssertionError(f"{text!r} is not in {code}")


def lines_of(code: object, *texts: str) -> str:
    """A pattern for any of the lines holding ``texts``: a loop's thread may be at any of them."""
    return "(?:" + "|".join(re.escape(line_of(code, text)) for text in texts) + ")"


def says(result, *lines: str) -> None:
    """Not passed, with a hint, no traceback, and exactly these lines (each a full-match pattern)."""
    assert_fails_saying(result)
    assert len(result.lines) == len(lines), str(result)
    for said, pattern in zip(result.lines, lines, strict=True):
        assert re.fullmatch(pattern, said), f"\n{said}\n!=\n{pattern}"


def exactly(text: str) -> str:
    return re.escape(text)


# -- where an error came from -------------------------------------------------------------------


def test_an_error_in_a_notebook_cell_is_placed_on_the_line_of_the_cell():
    cell = compile("def serve(x):\n    y = 1\n    return x.decode()\n", "/tmp/ipykernel_7/123.py", "exec")
    space: dict = {}
    exec(cell, space)
    try:
        space["serve"](3)
    except AttributeError as error:
        assert learners_line(error) == "line 3 of your cell"


def test_an_error_raised_inside_labchat_has_no_line_of_the_learners():
    mine, theirs = wire.pair()
    theirs.close()
    outcome = attempt(answers.recv_exactly, mine, 3)  # labchat's own code raises, called by labchat
    mine.close()
    assert isinstance(outcome.error, EOFError)
    assert learners_line(outcome.error) == ""
    assert (
        raised("it", outcome.error) == "it raised EOFError: the peer closed with 3 of 3 bytes still to come"
    )


# -- 02: serve_once ------------------------------------------------------------------------------


def echoes_text(listener):
    conn, _ = listener.accept()
    with conn:
        conn.sendall(b"welcome\n")
        while data := conn.recv(1024):
            conn.sendall(data.decode())  # str: sendall wants bytes


def test_serve_once_that_sends_str_hears_its_own_type_error_first():
    says(
        exercises.check_serve_once(echoes_text, quiet=True),
        exactly("ok: the client connected, and the greeting arrived: b'welcome\\n'"),
        exactly(
            "not yet: the client sent b'hello\\n', and your serve_once raised TypeError: a bytes-like object "
            f"is required, not 'str' ({line_of(echoes_text, 'data.decode()')}); hint: a socket sends bytes, "
            "not str: send back data as recv gave it, conn.sendall(data)"
        ),
    )


def greets_in_text(listener):
    conn, _ = listener.accept()
    with conn:
        conn.sendall("welcome\n")


def test_a_str_greeting_is_said_in_one_sentence():
    says(
        exercises.check_serve_once(greets_in_text, quiet=True),
        exactly(
            "not yet: a client connected, and your serve_once raised TypeError: a bytes-like object is "
            f"required, not 'str' ({line_of(greets_in_text, 'welcome')}); hint: a socket sends bytes, not "
            "str: send back data as recv gave it, conn.sendall(data)"
        ),
    )


def shuts_down_but_never_closes(listener):
    conn, _ = listener.accept()
    conn.sendall(b"welcome\n")
    while data := conn.recv(1024):
        conn.sendall(data)
    conn.shutdown(2)  # SHUT_RDWR: the client sees its end, but the socket is still open


def test_shutdown_without_close_is_told_to_close():
    result = exercises.check_serve_once(shuts_down_but_never_closes, quiet=True)
    assert result.lines[:3] == [
        "ok: the client connected, and the greeting arrived: b'welcome\\n'",
        "ok: the client sent b'hello\\n' and got it back",
        "ok: two lines sent in one packet, b'one\\ntwo\\n', both came back",
    ]
    says(
        result,
        *map(exactly, result.lines[:3]),
        exactly(
            "not yet: serve_once ended the connection (the client saw its end) and returned, but never "
            "closed "
            "it: the socket still holds its file descriptor; hint: shutdown only ends the sending; close "
            "gives "
            "the socket back to the system: call conn.close(), or put a `with conn:` block around the loop"
        ),
    )


# -- 03: recv_exactly ----------------------------------------------------------------------------


def recv_exactly_asking_n_each_time(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n)  # n, not n - len(data): may take the next message's bytes
        if not chunk:
            raise EOFError
        data += chunk
    return data


def recv_exactly_dropping_the_rest(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(1024)
        if not chunk:
            raise EOFError
        data += chunk
    return data[:n]


HELLO_OK = exactly("ok: 11 bytes sent in three pieces came back as b'hello world'")
NEVER_MORE = "hint: ask recv for n - len(data) bytes, never more, so the next message stays in the socket"


def test_recv_exactly_asking_for_n_again_is_caught_taking_too_much():
    says(
        exercises.check_recv_exactly(recv_exactly_asking_n_each_time, quiet=True),
        HELLO_OK,
        exactly(
            "not yet: b'abc' arrived, then b'defXYZ' in one piece; asked for 6 bytes, your recv_exactly "
            f"returned b'abcdefXYZ', 9 bytes; {NEVER_MORE}"
        ),
    )


def test_recv_exactly_that_drops_what_it_took_too_much_is_told_where_the_next_call_waits():
    says(
        exercises.check_recv_exactly(recv_exactly_dropping_the_rest, quiet=True),
        HELLO_OK,
        exactly(
            "not yet: b'abc' arrived, then b'defXYZ' in one piece; asked for 6 bytes it returned b'abcdef', "
            "but then the call for the 3 left was still running after 1 s (at "
            f"{line_of(recv_exactly_dropping_the_rest, 'recv(1024)')}): the first call had taken b'XYZ' out "
            f"of the socket too; {NEVER_MORE}"
        ),
    )


def joined(recv_exactly_shape):
    """recv_exactly's loop, with a different last step: what it returns."""

    def recv_exactly(sock, n):
        pieces = []
        while sum(map(len, pieces)) < n:
            pieces.append(sock.recv(n - sum(map(len, pieces))))
        return recv_exactly_shape(pieces)

    return recv_exactly


@pytest.mark.parametrize(
    "shape, said, hint",
    [
        (
            lambda pieces: b"".join(pieces).decode(),
            "returned a str, 'hello world', not bytes",
            "return the bytes as recv gave them: decoding them is for whoever calls it, later",
        ),
        (
            lambda pieces: None,
            "returned None, not bytes (is a `return` missing?)",
            "end with `return data`, once data holds what was asked for",
        ),
        (
            lambda pieces: pieces,
            "returned a list, [b'hel', b'lo w', b'orld'], not bytes",
            "join the pieces into one bytes object: b''.join(pieces), or build it up with data += chunk",
        ),
    ],
    ids=["str", "None", "list"],
)
def test_recv_exactly_of_the_wrong_type_hears_the_type(shape, said, hint):
    says(
        exercises.check_recv_exactly(joined(shape), quiet=True),
        exactly(f"not yet: asked for 11 bytes sent in three pieces, your recv_exactly {said}; hint: {hint}"),
    )


# -- 03: my_sendall ------------------------------------------------------------------------------

SEND_HINT = exactly(
    "hint: send() returns how many bytes it took, often fewer than you gave: send the rest, in a loop, "
    "starting where it stopped (data[taken:])"
)


def sendall_ignoring_what_send_took(sock, data):
    for i in range(0, len(data), 16384):
        sock.send(data[i : i + 16384])  # send may take less than 16384: the rest is lost


def test_sendall_in_pieces_that_ignores_sends_answer_is_caught():
    says(
        exercises.check_sendall(sendall_ignoring_what_send_took, quiet=True),
        r"not yet: only [\d,]+ of 4,096,000 bytes arrived; " + SEND_HINT,
    )


def sendall_from_the_start_each_time(sock, data):
    sent = 0
    while sent < len(data):
        sent += sock.send(data)  # counts right, but sends the start again every time


def test_sendall_that_resends_from_the_start_is_told_more_arrived_than_was_sent():
    says(
        exercises.check_sendall(sendall_from_the_start_each_time, quiet=True),
        r"not yet: more than was sent arrived: [\d,]+ bytes for the 4,096,000 it was given; " + SEND_HINT,
    )


def sendall_for_ever(sock, data):
    while True:
        sock.send(data)


def sendall_a_byte_at_a_time(sock, data):
    for i in range(len(data)):
        sock.send(data[i : i + 1])


def test_sendall_that_never_stops_is_told_so_not_that_the_checks_shutdown_broke_it(monkeypatch):
    monkeypatch.setattr(framing, "SEND_PATIENCE", 1.0)
    says(
        exercises.check_sendall(sendall_for_ever, quiet=True),
        r"not yet: after 1 s your my_sendall was still sending, and [\d,]+ bytes had arrived, more than the "
        r"4,096,000 it was given; hint: stop once every byte is gone: loop while some are left, and send "
        r"only the rest, data\[taken:\]",
    )
    assert exercise_threads_end(), "the endless loop was left running"


def test_sendall_a_byte_at_a_time_is_told_it_is_slow_not_broken(monkeypatch):
    monkeypatch.setattr(framing, "SEND_PATIENCE", 1.0)
    says(
        exercises.check_sendall(sendall_a_byte_at_a_time, quiet=True),
        r"not yet: after 1 s your my_sendall was still sending: [\d,]+ of 4,096,000 bytes had arrived, its "
        r"sends were given 1 byte each on average; hint: give send all that is left \(data\[taken:\]\) every "
        r"time, not a small piece: it takes as much as fits",
    )
    assert exercise_threads_end()


def sendall_as_text(sock, data):
    text = data.decode("latin-1")
    while text:
        text = text[sock.send(text) :]


def test_sendall_of_str_hears_the_type_error_and_its_line():
    says(
        exercises.check_sendall(sendall_as_text, quiet=True),
        exactly(
            "not yet: sending 4 MB, your my_sendall raised TypeError: a bytes-like object is required, not "
            f"'str' ({line_of(sendall_as_text, 'sock.send(text)')}); hint: send takes bytes: give it data "
            "(or "
            "memoryview(data)) as it is, not a str"
        ),
    )


# -- 04: recv_line -------------------------------------------------------------------------------


def recv_line_as_text(sock):
    line = b""
    while (byte := sock.recv(1)) != b"\n":
        if not byte:
            raise EOFError
        line += byte
    return line.decode()


def recv_line_in_blocks(sock):
    data = b""
    while b"\n" not in data:
        data += sock.recv(1024)
    return data.split(b"\n")[0]


def test_recv_line_returning_str_hears_the_type():
    says(
        exercises.check_recv_line(recv_line_as_text, quiet=True),
        exactly(
            "not yet: b'hel' then b'lo\\n' were sent, and your recv_line returned a str, 'hello', not bytes; "
            "hint: return the bytes as recv gave them: decoding them is for whoever calls it, later"
        ),
    )


def test_recv_line_that_takes_the_next_line_hears_it_in_one_sentence():
    says(
        exercises.check_recv_line(recv_line_in_blocks, quiet=True),
        exactly("ok: a line sent in two pieces came back whole: b'hello'"),
        exactly(
            "not yet: b'one\\ntwo\\n' arrived in one piece: the first call returned b'one', but the second "
            "was "
            f"still running after 1 s (at {line_of(recv_line_in_blocks, 'recv(1024)')}): the first had taken "
            "b'two\\n' out of the socket too; hint: a recv may hold more than one line: take one byte at a "
            "time "
            "(recv(1)) up to b'\\n', so the next line stays in the socket"
        ),
    )


# -- 04: LineDecoder -----------------------------------------------------------------------------

WHOLE = "fed b'hi\\nhello world\\n\\nlast\\n' in one piece"


class Buffered:
    def __init__(self):
        self.buffer = b""

    def feed(self, data):
        self.buffer += data


class KeepsNewlines(Buffered):
    def lines(self):
        out = []
        while b"\n" in self.buffer:
            end = self.buffer.index(b"\n") + 1
            out.append(self.buffer[:end])
            self.buffer = self.buffer[end:]
        return out


class DropsEmptyLines(Buffered):
    def lines(self):
        *complete, self.buffer = self.buffer.split(b"\n")
        return [line for line in complete if line]


class NeverShortens(Buffered):
    def lines(self):
        out = []
        while b"\n" in self.buffer:
            line = self.buffer[: self.buffer.index(b"\n")]
            if line not in out:
                out.append(line)
        return out


class ReturnsNothing(Buffered):
    def lines(self):
        *complete, self.buffer = self.buffer.split(b"\n")


class DecodesLines(Buffered):
    def lines(self):
        *complete, self.buffer = self.buffer.split(b"\n")
        return [line.decode() for line in complete]


class NeverForgets(Buffered):
    def lines(self):
        return self.buffer.split(b"\n")[:-1]


def test_line_decoder_keeping_the_newline_is_told_to_leave_it_out():
    says(
        exercises.check_line_decoder(KeepsNewlines, quiet=True),
        exactly(
            f"not yet: {WHOLE}, it gave [b'hi\\n', b'hello world\\n', b'\\n', b'last\\n']; hint: leave the "
            "b'\\n' out: it ends the line, it is not part of it"
        ),
    )


def test_line_decoder_dropping_an_empty_line_is_told_it_is_a_line():
    says(
        exercises.check_line_decoder(DropsEmptyLines, quiet=True),
        exactly(
            f"not yet: {WHOLE}, it gave [b'hi', b'hello world', b'last']: the empty line between "
            "b'hello world\\n' and b'last\\n' is missing; hint: b'\\n\\n' holds an empty line: hand it out "
            "as "
            "b'', a line like any other"
        ),
    )


def test_line_decoder_that_loops_for_ever_is_reported_and_stopped():
    started = time.monotonic()
    says(
        exercises.check_line_decoder(NeverShortens, quiet=True),
        exactly(f"not yet: {WHOLE}: lines() was still running after 3 s (at ")
        + lines_of(NeverShortens, "while b", "line = self", "if line not", "out.append")
        + exactly(
            "); hint: a loop in lines() must shorten the buffer on every turn (cut off the line it took), "
            "or it never ends"
        ),
    )
    assert time.monotonic() - started < 6
    assert exercise_threads_end(), "the endless loop was left running"


def test_line_decoder_returning_none_or_str_hears_the_type():
    says(
        exercises.check_line_decoder(ReturnsNothing, quiet=True),
        exactly(
            f"not yet: {WHOLE}: lines() returned None, not a list of lines (is a `return` missing?); hint: "
            "return a list of the complete ones, [] when there are none yet"
        ),
    )
    says(
        exercises.check_line_decoder(DecodesLines, quiet=True),
        exactly(
            f"not yet: {WHOLE}: lines() gave a line that is a str, 'hi', not bytes; hint: hand each line out "
            "as bytes, as it came in: decoding it is a step of its own, later"
        ),
    )


def test_line_decoder_that_never_forgets_is_told_each_line_comes_out_once():
    says(
        exercises.check_line_decoder(NeverForgets, quiet=True),
        exactly(
            "not yet: fed b'hi\\n' + b'hello world\\n\\nlast\\n', it gave [b'hi', b'hi', b'hello world', "
            "b'', "
            "b'last']: some lines came out more than once; hint: lines() hands out each line once: cut the "
            "lines it returns off the buffer, keep only the rest"
        ),
    )


# -- 04: LengthDecoder ---------------------------------------------------------------------------


class Framed:
    def __init__(self, max_size=65536):
        self.max_size = max_size
        self.buffer = b""


class ContinuesInsteadOfBreaking(Framed):
    def feed(self, data):
        self.buffer += data

    def messages(self):
        out = []
        while len(self.buffer) >= 4:
            (size,) = struct.unpack("!I", self.buffer[:4])
            if len(self.buffer) < 4 + size:
                continue  # break: wait for the next feed
            out.append(self.buffer[4 : 4 + size])
            self.buffer = self.buffer[4 + size :]
        return out


class LittleEndian(Framed):
    def feed(self, data):
        self.buffer += data
        if len(self.buffer) >= 4 and struct.unpack("<I", self.buffer[:4])[0] > self.max_size:
            raise ValueError("too big")

    def messages(self):
        return []


def test_length_decoder_that_continues_for_ever_is_reported_and_stopped():
    loop = lines_of(ContinuesInsteadOfBreaking.messages, "while len", "(size,)", "if len", "continue")
    says(
        exercises.check_length_decoder(ContinuesInsteadOfBreaking, quiet=True),
        exactly(
            "not yet: fed b'\\x00\\x00\\x00\\x05' (the first of 2 pieces): messages() was still running "
            "after 3 s (at "
        )
        + loop
        + exactly(
            "); hint: when the payload is not all in yet, leave the loop (break, not continue) until the "
            "next "
            "feed; and each turn must cut the message it took off the buffer, or the loop never ends"
        ),
    )
    assert exercise_threads_end(), "the endless loop was left running"


def test_length_decoder_reading_little_endian_is_told_the_byte_order():
    says(
        exercises.check_length_decoder(LittleEndian, quiet=True),
        exactly(
            "not yet: fed "
            "b'\\x00\\x00\\x00\\x05hello\\x00\\x00\\x00\\x00\\x00\\x00\\x01,xxxxxxxxxxxxxxxxxxxxxxx...' "
            f"in one piece: feed() raised ValueError: too big ({line_of(LittleEndian, 'raise ValueError')}), "
            "but "
            "no length in it is over 1,024; hint: read each length big-endian, struct.unpack('!I', header): "
            "read little-endian ('<I', or 'I' on most machines), b'\\x00\\x00\\x00\\x05' says 83,886,080, "
            "not 5"
        ),
    )


# -- 05: the receiver thread ---------------------------------------------------------------------

SENT_IN_PIECES = "two lines were sent in pieces, cut inside the é and the 👋 of 'héllo 👋'"


def receive_into_raising(sock, inbox):
    raise NotImplementedError("write receive_into")


def receive_into_without_decoding(sock, inbox):
    buffer = b""
    while chunk := sock.recv(4096):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            inbox.put(line)  # bytes on the queue
    inbox.put(None)


def receive_into_decoding_each_piece(sock, inbox):
    text = ""
    while chunk := sock.recv(4096):
        text += chunk.decode("utf-8")  # a piece may end inside a character
        *lines, text = text.split("\n")
        for line in lines:
            inbox.put(line)
    inbox.put(None)


def test_labchats_receiver_passes_on_characters_cut_in_two():
    assert_passes(exercises.check_receiver(answers.receive_into, quiet=True))


def test_a_receiver_that_raises_hears_its_error_not_an_empty_queue():
    says(
        exercises.check_receiver(receive_into_raising, quiet=True),
        exactly(
            f"not yet: {SENT_IN_PIECES}, and your receive_into raised NotImplementedError: write "
            "receive_into "
            f"({line_of(receive_into_raising, 'raise')}); hint: split what arrives at b'\\n' (keep the rest "
            "for "
            "later), decode each line, queue it"
        ),
    )


def test_a_receiver_that_queues_bytes_is_told_to_decode():
    says(
        exercises.check_receiver(receive_into_without_decoding, quiet=True),
        exactly(
            f"not yet: {SENT_IN_PIECES}; the queue got bytes, [b'hi bob', b'h\\xc3\\xa9llo "
            "\\xf0\\x9f\\x91\\x8b']; "
            "hint: decode each whole line before you queue it: inbox.put(line.decode('utf-8'))"
        ),
    )


def test_a_receiver_that_decodes_each_piece_meets_a_character_cut_in_two():
    says(
        exercises.check_receiver(receive_into_decoding_each_piece, quiet=True),
        exactly(
            f"not yet: {SENT_IN_PIECES}, and your receive_into raised UnicodeDecodeError: 'utf-8' codec "
            "can't "
            "decode byte 0xc3 in position 4: unexpected end of data "
            f"({line_of(receive_into_decoding_each_piece, 'chunk.decode')}); hint: a piece can end in the "
            "middle of a character (é is 2 bytes, 👋 is 4): join the bytes, cut whole lines at b'\\n', and "
            "decode each whole line"
        ),
    )


# -- 05: the counter -----------------------------------------------------------------------------


class CounterPausingFirst:
    def __init__(self):
        self.value = 0

    def increment(self, pause):
        pause()
        self.value += 1  # no lock: read and write with nothing between them, but a race all the same


class CounterNeverReleasing:
    def __init__(self):
        self.value = 0
        self.lock = threading.Lock()

    def increment(self, pause):
        self.lock.acquire()  # and never release()
        current = self.value
        pause()
        self.value = current + 1


class CounterPausingOutsideTheLock:
    def __init__(self):
        self.value = 0
        self.lock = threading.Lock()

    def increment(self, pause):
        pause()
        with self.lock:
            self.value += 1


class CounterWithAProperty:
    def __init__(self):
        self._value = 0
        self._lock = threading.Lock()

    @property
    def value(self):
        return self._value

    def increment(self, pause):
        with self._lock:
            current = self._value
            pause()
            self._value = current + 1


def test_a_counter_whose_value_is_a_read_only_property_passes():
    assert_passes(exercises.check_counter(CounterWithAProperty, quiet=True))


def test_a_counter_without_a_lock_fails_wherever_it_calls_pause():
    says(
        exercises.check_counter(CounterPausingFirst, quiet=True),
        exactly(
            "not yet: two threads incremented, with the check waiting right after each read of value, and "
            "the "
            "count is 1: both read the same value (a race); hint: hold a threading.Lock around the read, the "
            "pause and the write: pause() is only where the check waits, and without a lock another thread "
            "can "
            "cut in anywhere between read and write"
        ),
    )


def test_a_counter_whose_lock_covers_read_and_write_passes_wherever_pause_is():
    assert_passes(exercises.check_counter(CounterPausingOutsideTheLock, quiet=True))


def test_a_counter_that_never_releases_its_lock_is_told_and_its_thread_freed():
    says(
        exercises.check_counter(CounterNeverReleasing, quiet=True),
        exactly(
            "not yet: two threads called increment(pause) at the worst moment: one returned, and the other "
            "was "
            f"still running after 5 s (at {line_of(CounterNeverReleasing, 'acquire()')}); hint: a lock taken "
            "with acquire() must be given back with release(), even after an error: `with self.lock:` does "
            "both"
        ),
    )
    assert exercise_threads_end(), "the thread waiting for the lock was left waiting"


# -- 05: swap ------------------------------------------------------------------------------------


def swap_joining_first(sock, data):
    sender = threading.Thread(target=sock.sendall, args=(data,))
    sender.start()
    sender.join()  # waits for a sendall that waits for the other side, which waits here too
    return answers.recv_exactly(sock, len(data))


def swap_as_text(sock, data):
    return answers.swap(sock, data).decode()


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_swap_joining_before_it_receives_is_told_about_join_and_prints_no_traceback(capsys):
    says(
        exercises.check_swap(swap_joining_first, quiet=True),
        exactly(
            "not yet: both sides sent 4 MB at once, and after 5 s your swap was still waiting in join (at "
            f"{line_of(swap_joining_first, 'sender.join()')}), before it had received everything; hint: join "
            "waits for the sender thread, which cannot finish until the other side has read it all: start "
            "the "
            "sender thread, receive all len(data) bytes here, and only then join"
        ),
    )
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err + printed.out
    assert "Exception in thread" not in printed.err


def test_a_swap_returning_str_hears_the_type():
    says(
        exercises.check_swap(swap_as_text, quiet=True),
        exactly(
            "not yet: both sides sent 4 MB, and your swap returned a str, 'RRRRRRRRRRRRRRRRRRRR'... "
            "(4,000,000 "
            "characters), not bytes; hint: return the bytes as they came, bytes(got): decoding is for "
            "whoever "
            "uses them"
        ),
    )


def roll_for_ever(nick, arg, rng):
    while True:
        pass


def test_a_roll_that_never_returns_is_named_at_its_line_and_stopped():
    result = exercises.check_roll(roll_for_ever, quiet=True)
    said = [  # the loop is at one of its two lines when it is looked at
        "not yet: roll('ada', '', rng): it was still running when the check stopped waiting (at "
        f"{line_of(roll_for_ever, code)}: a loop that never ends, or a call that waits for ever?); "
        "hint: return a line of text, such as 'ada rolls 4 (1-6)'"
        for code in ("while True", "pass")
    ]
    assert len(result.lines) == 1 and result.lines[0] in said, result.lines
    assert exercise_threads_end(), "the learner's loop was left spinning in the kernel"


class LengthDecoderCheckingLate:
    def __init__(self, max_size=65536):
        self.max_size = max_size
        self.buffer = b""

    def feed(self, data):
        self.buffer += data

    def messages(self):
        out = []
        while len(self.buffer) >= 4:
            size = int.from_bytes(self.buffer[:4], "big")
            if size > self.max_size:
                raise ValueError("too big")
            if len(self.buffer) < 4 + size:
                break
            out.append(self.buffer[4 : 4 + size])
            self.buffer = self.buffer[4 + size :]
        return out


def test_a_length_decoder_that_refuses_a_huge_header_only_in_messages_is_told_where():
    result = exercises.check_length_decoder(LengthDecoderCheckingLate, quiet=True)
    assert result.lines[-1] == (
        "not yet: a header announcing 4,000,000,000 bytes was refused only when messages() was called "
        "(ValueError: too big), not by feed(); hint: check the length in feed(), as soon as the 4 header "
        "bytes are in: a program that feeds and waits for a whole message would wait (and buffer) for "
        "ever before asking"
    )
