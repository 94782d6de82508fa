"""Checks for framing: recv_exactly, recv_line, sendall from send, and two decoders.

The rule it keeps: the same bytes, cut where they hurt. Socket checks send their
data in pieces (``wire.trickle``) on a real connection; the decoder checks are
pure and feed the same input split at every offset. Every call of the learner's
code runs through ``attempt`` with a deadline, so a loop that never ends is
reported (and stopped), not waited for; a value of the wrong type is named as
such, with the type that was wanted.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .feedback import Attempt, Feedback, attempt, describe, guarded, raised, returned

PIECES = [b"hel", b"lo w", b"orld"]
EOF_HINT = (
    "recv returns b'' when the peer has closed: raise EOFError then, instead of waiting or returning less"
)
NEVER_MORE_HINT = "ask recv for n - len(data) bytes, never more, so the next message stays in the socket"
NEXT_LINE_HINT = (
    "a recv may hold more than one line: take one byte at a time (recv(1)) up to b'\\n', "
    "so the next line stays in the socket"
)
BYTES_LIKE = (bytes, bytearray)


def _type_hint(value: Any, whole: str = "one bytes object") -> str:
    """What to return instead of ``value``, a value of the wrong type."""
    if value is None:
        return "end with `return data`, once data holds what was asked for"
    if isinstance(value, str):
        return "return the bytes as recv gave them: decoding them is for whoever calls it, later"
    if isinstance(value, (list, tuple)):
        return f"join the pieces into {whole}: b''.join(pieces), or build it up with data += chunk"
    return f"return {whole}"


def _short(data: bytes, keep: int = 24) -> str:
    return repr(data) if len(data) <= keep else repr(data[:keep])[:-1] + "...'"


@guarded("recv_exactly")
def check_recv_exactly(feedback: Feedback, recv_exactly: Callable[[socket.socket, int], bytes]) -> None:
    """``recv_exactly(sock, n)`` returns exactly n bytes, however they arrive, or raises EOFError."""
    mine, theirs = wire.pair()
    try:
        wire.trickle(theirs, mine, PIECES)
        got = attempt(recv_exactly, mine, 11)
        value = got.value
        if got.fine and value == b"hello world" and isinstance(value, BYTES_LIKE):
            feedback.ok("11 bytes sent in three pieces came back as b'hello world'")
        elif got.fine and not isinstance(value, BYTES_LIKE):
            feedback.not_yet(
                f"asked for 11 bytes sent in three pieces, your recv_exactly {returned(value, 'bytes')}",
                _type_hint(value),
            )
            return
        elif got.fine and value and b"hello world".startswith(value):
            feedback.not_yet(
                f"asked for 11 bytes, it returned {value!r} (the first piece only)",
                "one recv gives what has arrived so far: call recv again, in a loop, until you have n bytes",
            )
            return
        else:
            feedback.not_yet(
                f"asked for 11 bytes sent in three pieces, {got.did('your recv_exactly')}",
                "loop: recv(n - len(data)) until data holds n bytes",
            )
            return
        if not _takes_no_more(feedback, recv_exactly, mine, theirs):
            return
        theirs.sendall(b"abc")
        theirs.shutdown(socket.SHUT_WR)
        short = attempt(recv_exactly, mine, 10)
        if isinstance(short.error, EOFError):
            feedback.ok("the peer closing after 3 of 10 bytes raised EOFError")
        else:
            feedback.not_yet(
                f"the peer closed after 3 of 10 bytes, and {short.did('your recv_exactly')}", EOF_HINT
            )
    finally:
        wire.close(mine, theirs)


def _takes_no_more(feedback: Feedback, recv_exactly: Callable[..., Any], mine: Any, theirs: Any) -> bool:
    """b'abc', then b'defXYZ' in one go: 6 bytes, then 3, and nothing taken early. True to go on."""
    arrived = "b'abc' arrived, then b'defXYZ' in one piece"
    wire.trickle(theirs, mine, [b"abc", b"defXYZ"])
    first = attempt(recv_exactly, mine, 6)
    if not first.fine:
        feedback.not_yet(f"{arrived}; asked for 6 bytes, {first.did('your recv_exactly')}", NEVER_MORE_HINT)
        return False
    if first.value != b"abcdef":
        taken = f", {len(first.value)} bytes" if isinstance(first.value, BYTES_LIKE) else ""
        feedback.not_yet(
            f"{arrived}; asked for 6 bytes, your recv_exactly returned {first.value!r}{taken}",
            NEVER_MORE_HINT,
        )
        return False
    rest = attempt(recv_exactly, mine, 3, timeout=1.0)
    if rest.fine and rest.value == b"XYZ":
        feedback.ok("it takes no more than n bytes: the next call got the rest")
        return True
    if rest.stuck:
        feedback.not_yet(
            f"{arrived}; asked for 6 bytes it returned b'abcdef', but then "
            f"{rest.did('the call for the 3 left', 1)}: "
            "the first call had taken b'XYZ' out of the socket too",
            NEVER_MORE_HINT,
        )
    else:
        feedback.not_yet(
            f"{arrived}; asked for 6 bytes it returned b'abcdef', then asked for 3, "
            f"{rest.did('your recv_exactly')}",
            NEVER_MORE_HINT,
        )
    return False


@guarded("recv_line")
def check_recv_line(feedback: Feedback, recv_line: Callable[[socket.socket], bytes]) -> None:
    """``recv_line(sock)`` returns the next line without its b'\\n'; what follows stays for the next call."""
    mine, theirs = wire.pair()
    try:
        wire.trickle(theirs, mine, [b"hel", b"lo\n"])
        got = attempt(recv_line, mine)
        sent = "b'hel' then b'lo\\n' were sent"
        if got.fine and got.value == b"hello" and isinstance(got.value, BYTES_LIKE):
            feedback.ok("a line sent in two pieces came back whole: b'hello'")
        elif got.fine and got.value == b"hello\n":
            feedback.not_yet(
                "it returned b'hello\\n'", "leave the newline out: it ends the line, it is not part of it"
            )
            return
        elif got.fine and not isinstance(got.value, BYTES_LIKE):
            feedback.not_yet(
                f"{sent}, and your recv_line {returned(got.value, 'bytes')}",
                _type_hint(got.value, "one line of bytes"),
            )
            return
        elif got.stuck:
            feedback.not_yet(
                f"{sent}, and {got.did('your recv_line')}",
                "keep receiving until you have seen b'\\n', then return; a byte compares equal only to "
                "bytes: b'\\n', not '\\n'",
            )
            return
        else:
            feedback.not_yet(
                f"{sent}, and {got.did('your recv_line')}", "keep receiving until you have seen b'\\n'"
            )
            return
        theirs.sendall(b"one\ntwo\n")
        one_piece = "b'one\\ntwo\\n' arrived in one piece"
        first = attempt(recv_line, mine)
        second = attempt(recv_line, mine, timeout=1.0) if first.fine else first
        if first.fine and second.fine and (first.value, second.value) == (b"one", b"two"):
            feedback.ok("two lines in one send came back one at a time: b'one', b'two'")
        elif not first.fine:
            feedback.not_yet(f"{one_piece}, and {first.did('your recv_line')}", NEXT_LINE_HINT)
        elif second.stuck and first.value == b"one":
            feedback.not_yet(
                f"{one_piece}: the first call returned b'one', but {second.did('the second', 1)}: "
                "the first had taken b'two\\n' out of the socket too",
                NEXT_LINE_HINT,
            )
        elif not second.fine:
            feedback.not_yet(
                f"{one_piece}: the first call returned {first.value!r}, and {second.did('the second', 1)}",
                NEXT_LINE_HINT,
            )
        else:
            feedback.not_yet(
                f"{one_piece}; two calls returned {first.value!r} and {second.value!r}", NEXT_LINE_HINT
            )
        if first.stuck or second.stuck:
            return  # a call still waiting in recv would take the next test's bytes
        theirs.sendall(b"no newline")
        theirs.shutdown(socket.SHUT_WR)
        cut = attempt(recv_line, mine)
        if isinstance(cut.error, EOFError):
            feedback.ok("the peer closing in the middle of a line raised EOFError")
        else:
            feedback.not_yet(
                f"the peer closed in the middle of a line, and {cut.did('your recv_line')}", EOF_HINT
            )
    finally:
        wire.close(mine, theirs)


class _Watched(socket.socket):
    """A real socket that takes only part of what each send is given, and notes whether sendall was used.

    A real send may take fewer bytes than it is given at any time; this one does it
    on purpose, every time but one in four, so a loop that ignores send's answer
    loses bytes at once, whatever size of piece it sends.
    """

    SHARES = (1 << 16, 1000, 12_345, 3)  # the most each send takes, in turn
    used_sendall = False
    sends = 0  # how many times send was called
    asked = 0  # how many bytes, in all, the calls of send were given

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self.used_sendall = True
        super().sendall(*args, **kwargs)

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            view = memoryview(data).cast("B")
        except (TypeError, ValueError):
            return super().send(data, flags)  # a str, say: the real send says what is wrong
        share = self.SHARES[self.sends % len(self.SHARES)]
        self.sends += 1
        self.asked += len(view)
        return super().send(view[:share], flags)


SEND_HINT = (
    "send() returns how many bytes it took, often fewer than you gave: send the rest, in a loop, "
    "starting where it stopped (data[taken:])"
)
SEND_PATIENCE = 10.0  # seconds for 4 MB; a working loop takes well under one


@guarded("sendall")
def check_sendall(feedback: Feedback, my_sendall: Callable[[socket.socket, bytes], Any]) -> None:
    """``my_sendall(sock, data)`` sends every byte, calling ``sock.send`` as often as it takes."""
    plain, theirs = wire.pair()
    mine = _Watched(plain.family, plain.type, plain.proto, fileno=plain.detach())
    # With a timeout set, each send takes only what fits in the buffers right now: a big
    # payload then needs many sends, as it does on a busy network.
    mine.settimeout(5)
    # Small kernel buffers on both ends: otherwise Linux may grow them to take 4 MB in one send.
    mine.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    data = bytes(range(256)) * 16_000  # 4 MB
    received = bytearray()

    def read_all() -> None:
        while chunk := theirs.recv(1 << 16):
            received.extend(chunk)

    try:
        reader = attempt(read_all, timeout=0, name="exercise-reader")
        sent = attempt(my_sendall, mine, data, timeout=SEND_PATIENCE)
        finished = not sent.stuck  # before the check's shutdown below makes a running loop raise
        if mine.used_sendall:
            feedback.not_yet(
                "it called sock.sendall", "build it from sock.send, which returns how many bytes it took"
            )
            return
        if not finished:
            _still_sending(feedback, sent, mine, len(data), received)
            return
        mine.shutdown(socket.SHUT_WR)
        reader.wait(10)
        if sent.error is not None:
            bytes_like = isinstance(sent.error, TypeError) and "bytes-like" in str(sent.error)
            feedback.not_yet(
                f"sending 4 MB, {raised('your my_sendall', sent.error)}",
                "send takes bytes: give it data (or memoryview(data)) as it is, not a str"
                if bytes_like
                else "loop: data = data[sock.send(data):] until empty",
            )
        elif bytes(received) == data:
            feedback.ok("4 MB arrived complete and in order, sent with send() alone")
        elif len(received) > len(data):
            feedback.not_yet(
                f"more than was sent arrived: {len(received):,} bytes for the {len(data):,} it was given",
                SEND_HINT,
            )
        elif len(received) < len(data):
            feedback.not_yet(f"only {len(received):,} of {len(data):,} bytes arrived", SEND_HINT)
        else:
            differ = next(i for i, (a, b) in enumerate(zip(received, data, strict=True)) if a != b)
            feedback.not_yet(
                f"{len(received):,} bytes arrived, but not the ones it was given: they differ from byte "
                f"{differ:,} on",
                SEND_HINT,
            )
    finally:
        wire.close(mine, theirs)


def _still_sending(feedback: Feedback, sent: Attempt, mine: _Watched, size: int, received: bytearray) -> None:
    """my_sendall did not return in time: sending for ever, sending slowly, or waiting for something."""
    sends = mine.sends
    sent.wait(0.2)  # is it still calling send?
    arrived = len(received)
    still = f"after {SEND_PATIENCE:g} s your my_sendall was still sending"
    if arrived > size:
        feedback.not_yet(
            f"{still}, and {arrived:,} bytes had arrived, more than the {size:,} it was given",
            "stop once every byte is gone: loop while some are left, and send only the rest, data[taken:]",
        )
    elif mine.sends > sends:
        each = round(mine.asked / max(1, mine.sends))
        feedback.not_yet(
            f"{still}: {arrived:,} of {size:,} bytes had arrived, its sends were given {each:,} "
            f"byte{'' if each == 1 else 's'} each on average",
            "give send all that is left (data[taken:]) every time, not a small piece: "
            "it takes as much as fits",
        )
    else:
        feedback.not_yet(
            f"sending 4 MB, {sent.did('your my_sendall', SEND_PATIENCE)}, and it had stopped calling send",
            "loop: data = data[sock.send(data):] until empty",
        )


# -- the decoders: pure, fed the same bytes in every split -------------------------------------


def _all_splits(data: bytes) -> list[list[bytes]]:
    """The data in one piece, cut in two at every offset, and a byte at a time."""
    cuts = [[data[:i], data[i:]] for i in range(1, len(data))]
    return [[data], *cuts, [bytes([b]) for b in data]]


def _fed(pieces: list[bytes]) -> str:
    """The pieces a decoder was fed, in a few words."""
    if len(pieces) == 1:
        return f"fed {_short(pieces[0], 40)} in one piece"
    if all(len(piece) == 1 for piece in pieces):
        return f"fed {_short(b''.join(pieces), 40)} one byte at a time"
    return "fed " + " + ".join(_short(piece, 40) for piece in pieces)


def _so_far(pieces: list[bytes], count: int) -> str:
    """The pieces fed before a call went wrong: 'fed b'ab' (the first of 2 pieces)'."""
    if count == 0:
        return "the check made its decoder"
    if count >= len(pieces):
        return _fed(pieces)
    if all(len(piece) == 1 for piece in pieces):
        return (
            f"fed {_short(b''.join(pieces[:count]), 40)} one byte at a time ({count} of {len(pieces)} bytes)"
        )
    first = "the first" if count == 1 else f"the first {count}"
    return "fed " + " + ".join(_short(p, 40) for p in pieces[:count]) + f" ({first} of {len(pieces)} pieces)"


@dataclass
class _Fed:
    """What one decoder gave for a list of pieces, and where it went wrong if it did."""

    got: list[bytes] = field(default_factory=list)
    call: str = ""  # the call running, or the last one made: 'LineDecoder()', 'feed()', 'lines()'
    count: int = 0  # how many of the pieces it has been fed so far
    bad: Any = None  # a value of the wrong type, from ``call``
    wrong: bool = False  # ``bad`` is set (None may be the bad value)
    item: bool = False  # ``bad`` is one item of what was returned, not the value returned
    outcome: Attempt | None = None


def _feed(make: Callable[[], Any], pieces: list[bytes], method: str, made: str) -> _Fed:
    """Make a decoder, feed it the pieces one by one and call ``method`` after each, with a deadline."""
    fed = _Fed()

    def run() -> None:
        fed.call = made
        decoder = make()
        for piece in pieces:
            fed.count += 1
            fed.call = "feed()"
            decoder.feed(piece)
            fed.call = f"{method}()"
            out = getattr(decoder, method)()
            if out is None or isinstance(out, (str, *BYTES_LIKE)) or not hasattr(out, "__iter__"):
                fed.bad, fed.wrong = out, True
                return
            for item in out:
                if not isinstance(item, BYTES_LIKE):
                    fed.bad, fed.wrong, fed.item = item, True, True
                    return
                fed.got.append(bytes(item))

    fed.outcome = attempt(run, name="exercise-decoder")
    if fed.outcome.stuck:
        fed.outcome.stop()  # a loop that never ends: end it, or it spins on in the background
    return fed


def _went_wrong(feedback: Feedback, fed: _Fed, pieces: list[bytes], unit: str, loop_hint: str) -> bool:
    """Say what a decoder did if it raised, hung or gave the wrong type; True if it did one of those."""
    outcome = fed.outcome
    assert outcome is not None
    so_far = _so_far(pieces, fed.count)
    if outcome.error is not None and not fed.count:
        feedback.not_yet(
            f"the check made its decoder, and {raised(fed.call, outcome.error)}",
            f"keep the starter's __init__ and its arguments: the check calls {fed.call}",
        )
    elif outcome.stuck:
        feedback.not_yet(f"{so_far}: {outcome.did(fed.call)}", loop_hint)
    elif outcome.error is not None:
        feedback.not_yet(
            f"{so_far}: {raised(fed.call, outcome.error)}",
            f"feed(data) adds data to self.buffer (made in __init__, b''); {unit}s() cuts the complete "
            f"{unit}s off its front and returns them in a list",
        )
    elif fed.wrong and not fed.item:
        feedback.not_yet(
            f"{so_far}: {fed.call} {returned(fed.bad, f'a list of {unit}s')}",
            "return a list of the complete ones, [] when there are none yet"
            if fed.bad is None or isinstance(fed.bad, BYTES_LIKE)
            else _type_hint(fed.bad),
        )
    elif fed.wrong:
        shown = repr(fed.bad) if len(repr(fed.bad)) <= 40 else repr(fed.bad)[:37] + "..."
        feedback.not_yet(
            f"{so_far}: {fed.call} gave a {unit} that is a {type(fed.bad).__name__}, {shown}, not bytes",
            f"hand each {unit} out as bytes, as it came in: decoding it is a step of its own, later",
        )
    else:
        return False
    return True


@guarded("line decoder")
def check_line_decoder(feedback: Feedback, decoder_class: Callable[[], Any]) -> None:
    """``d = decoder_class(); d.feed(data); d.lines()`` gives the complete lines so far, each once."""
    data = b"hi\nhello world\n\nlast\n"
    want = [b"hi", b"hello world", b"", b"last"]
    made = f"{getattr(decoder_class, '__name__', 'the decoder')}()"
    loop_hint = (
        "a loop in lines() must shorten the buffer on every turn (cut off the line it took), or it never ends"
    )
    for pieces in _all_splits(data):
        fed = _feed(decoder_class, pieces, "lines", made)
        if _went_wrong(feedback, fed, pieces, "line", loop_hint):
            return
        if fed.got != want:
            _wrong_lines(feedback, pieces, fed.got, want)
            return
    feedback.ok(f"{len(want)} lines came out right with the input split at every one of its offsets")
    fed = _feed(decoder_class, [b"par", b"tial\n", b""], "lines", made)
    if _went_wrong(feedback, fed, [b"par", b"tial\n"], "line", loop_hint):
        return
    if fed.got == [b"partial"]:
        feedback.ok("half a line waits in the buffer, and each line comes out once")
    else:
        feedback.not_yet(
            f"fed b'par' then b'tial\\n', lines() after each (and once more) gave {fed.got!r} in all",
            "lines() hands out only complete lines, and forgets them once handed out",
        )


def _wrong_lines(feedback: Feedback, pieces: list[bytes], got: list[bytes], want: list[bytes]) -> None:
    said = f"{_fed(pieces)}, it gave {got!r}"
    if got and all(line.endswith(b"\n") for line in got) and [line[:-1] for line in got] == want:
        feedback.not_yet(said, "leave the b'\\n' out: it ends the line, it is not part of it")
    elif got == [line for line in want if line]:
        feedback.not_yet(
            f"{said}: the empty line between b'hello world\\n' and b'last\\n' is missing",
            "b'\\n\\n' holds an empty line: hand it out as b'', a line like any other",
        )
    elif len(got) > len(want) and _within(want, got):
        feedback.not_yet(
            f"{said}: some lines came out more than once",
            "lines() hands out each line once: cut the lines it returns off the buffer, keep only the rest",
        )
    else:
        feedback.not_yet(
            said,
            "a piece can end in the middle of a line: keep the bytes after the last b'\\n' "
            "in a buffer and put them in front of the next piece",
        )


def _within(short: list[bytes], long: list[bytes]) -> bool:
    """True if ``short`` is in ``long`` in order, perhaps with other items between."""
    rest = iter(long)
    return all(any(item == other for other in rest) for item in short)


HEADER = struct.Struct("!I")  # the length prefix: 4 bytes, big-endian


@guarded("length-prefixed decoder")
def check_length_decoder(feedback: Feedback, decoder_class: Callable[..., Any]) -> None:
    """``d = decoder_class(max_size=1024); d.feed(data); d.messages()``: 4-byte big-endian lengths."""
    messages = [b"hello", b"", b"x" * 300]
    data = b"".join(HEADER.pack(len(m)) + m for m in messages)
    made = f"{getattr(decoder_class, '__name__', 'the decoder')}(max_size=1024)"
    loop_hint = (
        "when the payload is not all in yet, leave the loop (break, not continue) until the next feed; "
        "and each turn must cut the message it took off the buffer, or the loop never ends"
    )
    for pieces in _all_splits(data):
        fed = _feed(lambda: decoder_class(max_size=1024), pieces, "messages", made)
        outcome = fed.outcome
        assert outcome is not None
        if isinstance(outcome.error, ValueError) and fed.call == "feed()":
            feedback.not_yet(
                f"{_so_far(pieces, fed.count)}: {raised(fed.call, outcome.error)}, "
                "but no length in it is over 1,024",
                "read each length big-endian, struct.unpack('!I', header): read little-endian ('<I', "
                "or 'I' on most machines), b'\\x00\\x00\\x00\\x05' says "
                f"{struct.unpack('<I', HEADER.pack(5))[0]:,}, not 5",
            )
            return
        if _went_wrong(feedback, fed, pieces, "message", loop_hint):
            return
        if fed.got != messages:
            split = f"{len(pieces)} piece{'' if len(pieces) == 1 else 's'}"
            feedback.not_yet(
                f"split into {split}, it gave {[g[:12] for g in fed.got]!r}",
                "read the 4-byte big-endian length first (struct.unpack('!I', ...)), then wait until that "
                "many bytes are in the buffer; an empty message (length 0) is a message too",
            )
            return
    feedback.ok("3 messages (one of them empty) came out right with the input split at every offset")
    huge = attempt(_feed_huge, decoder_class)
    if huge.stuck:
        huge.stop()
        feedback.not_yet(f"fed a header announcing 4,000,000,000 bytes: {huge.did('feed()')}", loop_hint)
    elif huge.error is not None:
        feedback.ok(f"an announced length of 4 GB was refused at once ({describe(huge.error)})")
    elif (later := attempt(_messages, huge.value)).error is not None:
        feedback.not_yet(
            "a header announcing 4,000,000,000 bytes was refused only when messages() was called "
            f"({describe(later.error)}), not by feed()",
            "check the length in feed(), as soon as the 4 header bytes are in: a program that feeds "
            "and waits for a whole message would wait (and buffer) for ever before asking",
        )
    else:
        later.stop()
        feedback.not_yet(
            "a header announcing 4,000,000,000 bytes was taken without complaint",
            "check the length against max_size as soon as the 4 header bytes are in, and raise ValueError: "
            "otherwise a peer makes you wait for (and buffer) gigabytes",
        )


def _feed_huge(decoder_class: Callable[..., Any]) -> Any:
    decoder = decoder_class(max_size=1024)
    decoder.feed(HEADER.pack(4_000_000_000))
    return decoder


def _messages(decoder: Any) -> list[Any]:
    return list(decoder.messages())
