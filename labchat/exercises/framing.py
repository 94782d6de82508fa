"""Checks for framing: recv_exactly, recv_line, sendall from send, and two decoders.

The rule it keeps: the same bytes, cut where they hurt. Socket checks send their
data in pieces (``wire.trickle``) on a real connection; the decoder checks are
pure and feed the same input split at every offset.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any

from . import wire
from .feedback import Feedback, attempt, describe, guarded

PIECES = [b"hel", b"lo w", b"orld"]
EOF_HINT = (
    "recv returns b'' when the peer has closed: raise EOFError then, instead of waiting or returning less"
)


@guarded("recv_exactly")
def check_recv_exactly(feedback: Feedback, recv_exactly: Callable[[socket.socket, int], bytes]) -> None:
    """``recv_exactly(sock, n)`` returns exactly n bytes, however they arrive, or raises EOFError."""
    mine, theirs = wire.pair()
    try:
        wire.trickle(theirs, mine, PIECES)
        got = attempt(recv_exactly, mine, 11)
        if got.fine and got.value == b"hello world":
            feedback.ok("11 bytes sent in three pieces came back as b'hello world'")
        elif got.fine and isinstance(got.value, bytes) and got.value and b"hello world".startswith(got.value):
            feedback.not_yet(
                f"asked for 11 bytes, it returned {got.value!r} (the first piece only)",
                "one recv gives what has arrived so far: call recv again, in a loop, until you have n bytes",
            )
            return
        else:
            feedback.not_yet(f"asked for 11 bytes sent in pieces, {_said(got)}", "loop: recv(n - len(data))")
            return
        theirs.sendall(b"abcdefXYZ")
        first = attempt(recv_exactly, mine, 6)
        rest = attempt(recv_exactly, mine, 3) if first.fine else first
        if first.fine and first.value == b"abcdef" and rest.fine and rest.value == b"XYZ":
            feedback.ok("it takes no more than n bytes: the next call got the rest")
        else:
            feedback.not_yet(
                f"after b'abcdefXYZ', asking for 6 then 3 bytes gave {_said(first)} and {_said(rest)}",
                "ask recv for n - len(data) bytes, never more, so the next message stays in the socket",
            )
        theirs.sendall(b"abc")
        theirs.shutdown(socket.SHUT_WR)
        short = attempt(recv_exactly, mine, 10)
        if isinstance(short.error, EOFError):
            feedback.ok("the peer closing after 3 of 10 bytes raised EOFError")
        else:
            feedback.not_yet(f"the peer closed after 3 of 10 bytes, and {_said(short)}", EOF_HINT)
    finally:
        wire.close(mine, theirs)


@guarded("recv_line")
def check_recv_line(feedback: Feedback, recv_line: Callable[[socket.socket], bytes]) -> None:
    """``recv_line(sock)`` returns the next line without its b'\\n'; what follows stays for the next call."""
    mine, theirs = wire.pair()
    try:
        wire.trickle(theirs, mine, [b"hel", b"lo\n"])
        got = attempt(recv_line, mine)
        if got.fine and got.value == b"hello":
            feedback.ok("a line sent in two pieces came back whole: b'hello'")
        elif got.fine and got.value == b"hello\n":
            feedback.not_yet(
                "it returned b'hello\\n'", "leave the newline out: it ends the line, it is not part of it"
            )
            return
        else:
            feedback.not_yet(
                f"b'hel' then b'lo\\n' were sent, and {_said(got)}",
                "keep receiving until you have seen b'\\n'",
            )
            return
        theirs.sendall(b"one\ntwo\n")
        first = attempt(recv_line, mine)
        second = attempt(recv_line, mine, timeout=1.0) if first.fine else first
        if first.fine and second.fine and (first.value, second.value) == (b"one", b"two"):
            feedback.ok("two lines in one send came back one at a time: b'one', b'two'")
        else:
            feedback.not_yet(
                f"b'one\\ntwo\\n' arrived in one piece; two calls gave {_said(first)} and {_said(second)}",
                "a recv may hold more than one line: take one byte at a time (recv(1)) up to b'\\n', "
                "so the next line stays in the socket",
            )
        theirs.sendall(b"no newline")
        theirs.shutdown(socket.SHUT_WR)
        cut = attempt(recv_line, mine)
        if isinstance(cut.error, EOFError):
            feedback.ok("the peer closing in the middle of a line raised EOFError")
        else:
            feedback.not_yet(f"the peer closed in the middle of a line, and {_said(cut)}", EOF_HINT)
    finally:
        wire.close(mine, theirs)


class _Watched(socket.socket):
    """A real socket that notes whether ``sendall`` was used (the exercise builds it from ``send``)."""

    used_sendall = False

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self.used_sendall = True
        super().sendall(*args, **kwargs)


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
        sent = attempt(my_sendall, mine, data, timeout=10)
        if mine.used_sendall:
            feedback.not_yet(
                "it called sock.sendall", "build it from sock.send, which returns how many bytes it took"
            )
            return
        mine.shutdown(socket.SHUT_WR)
        reader.wait(10)
        if not sent.fine:
            feedback.not_yet(
                f"sending 4 MB: {sent.problem()}", "loop: data = data[sock.send(data):] until empty"
            )
        elif bytes(received) == data:
            feedback.ok("4 MB arrived complete and in order, sent with send() alone")
        else:
            feedback.not_yet(
                f"only {len(received):,} of {len(data):,} bytes arrived",
                "send() returns how many bytes it took, often fewer than you gave: send the rest, in a loop",
            )
    finally:
        wire.close(mine, theirs)


def _all_splits(data: bytes) -> list[list[bytes]]:
    """The data in one piece, cut in two at every offset, and a byte at a time."""
    cuts = [[data[:i], data[i:]] for i in range(1, len(data))]
    return [[data], *cuts, [bytes([b]) for b in data]]


def _as_bytes(items: Any) -> list[bytes]:
    return [item.encode() if isinstance(item, str) else bytes(item) for item in items]


@guarded("line decoder")
def check_line_decoder(feedback: Feedback, decoder_class: Callable[[], Any]) -> None:
    """``d = decoder_class(); d.feed(data); d.lines()`` gives the complete lines so far, each once."""
    data = b"hi\nhello world\n\nlast\n"
    want = [b"hi", b"hello world", b"", b"last"]
    first_bad = None
    for pieces in _all_splits(data):
        decoder = decoder_class()
        got: list[bytes] = []
        for piece in pieces:
            decoder.feed(piece)
            got += _as_bytes(decoder.lines())
        if got != want:
            first_bad = (pieces, got)
            break
    if first_bad is None:
        feedback.ok(f"{len(want)} lines came out right with the input split at every one of its offsets")
    else:
        pieces, got = first_bad
        feedback.not_yet(
            f"fed {' + '.join(repr(p) for p in pieces[:3])}{' + ...' if len(pieces) > 3 else ''}, "
            f"it gave {got!r}",
            "a piece can end in the middle of a line: keep the bytes after the last b'\\n' "
            "in a buffer and put them in front of the next piece",
        )
        return
    decoder = decoder_class()
    decoder.feed(b"par")
    early = _as_bytes(decoder.lines())
    decoder.feed(b"tial\n")
    later = _as_bytes(decoder.lines()) + _as_bytes(decoder.lines())
    if early == [] and later == [b"partial"]:
        feedback.ok("half a line waits in the buffer, and each line comes out once")
    else:
        feedback.not_yet(
            f"fed b'par' then b'tial\\n', lines() gave {early!r} then {later!r}",
            "lines() hands out only complete lines, and forgets them once handed out",
        )


HEADER = struct.Struct("!I")  # the length prefix: 4 bytes, big-endian


@guarded("length-prefixed decoder")
def check_length_decoder(feedback: Feedback, decoder_class: Callable[..., Any]) -> None:
    """``d = decoder_class(max_size=1024); d.feed(data); d.messages()``: 4-byte big-endian lengths."""
    messages = [b"hello", b"", b"x" * 300]
    data = b"".join(HEADER.pack(len(m)) + m for m in messages)
    for pieces in _all_splits(data):
        decoder = decoder_class(max_size=1024)
        got: list[bytes] = []
        for piece in pieces:
            decoder.feed(piece)
            got += _as_bytes(decoder.messages())
        if got != messages:
            split = f"{len(pieces)} piece{'' if len(pieces) == 1 else 's'}"
            feedback.not_yet(
                f"split into {split}, it gave {[g[:12] for g in got]!r}",
                "read the 4-byte length first, then wait until that many bytes are in the buffer; "
                "an empty message (length 0) is a message too",
            )
            return
    feedback.ok("3 messages (one of them empty) came out right with the input split at every offset")
    decoder = decoder_class(max_size=1024)
    try:
        decoder.feed(HEADER.pack(4_000_000_000))
    except Exception as error:
        feedback.ok(f"an announced length of 4 GB was refused at once ({describe(error)})")
    else:
        feedback.not_yet(
            "a header announcing 4,000,000,000 bytes was taken without complaint",
            "check the length against max_size as soon as the 4 header bytes are in, and raise ValueError: "
            "otherwise a peer makes you wait for (and buffer) gigabytes",
        )


def _said(got: Any) -> str:
    if got.fine:
        return f"it returned {got.value!r}"
    return got.problem()
