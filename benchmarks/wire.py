"""How the load generator speaks to each engine: labchat's JSON lines and Redis's RESP.

The rule it keeps: both engines carry the same 100-byte payload, which starts with ``@T``
followed by the sender's clock in nanoseconds, so one counting and timing code path serves
both. ``@`` never appears anywhere else in either stream.
"""

from __future__ import annotations

import re
import socket
import time

MARK = b"@T"
STAMP = re.compile(rb"@T(\d+) ")
LEAVE = re.compile(rb'"type":"leave","sender":"([^"]*)","text":"([^"]*)"')
PAYLOAD_SIZE = 100


def payload(stamp_ns: int, sender: int, seq: int) -> bytes:
    """The 100 bytes one message carries: clock, sender and sequence, padded."""
    head = b"@T%d %d:%d " % (stamp_ns, sender, seq)
    return head + b"x" * (PAYLOAD_SIZE - len(head))


class Labchat:
    """One socket per client: it sends ``say`` frames and receives the room's events."""

    name = "labchat"
    separate_publisher = False

    def hello(self, nick: str) -> bytes:
        return b'{"type":"hello","nick":"%s"}\n' % nick.encode()

    def welcomed(self, buf: bytes) -> bool:
        """Whether what the server has said so far includes the whole welcome."""
        at = buf.find(b'"type":"welcome"')
        return at >= 0 and b"\n" in buf[at:]

    def join(self, sock: socket.socket, nick: str) -> bytes:
        """Say hello; return the bytes the server answered up to the welcome."""
        sock.sendall(self.hello(nick))
        return _read_until(sock, self.welcomed)

    def open_publisher(self, address: tuple[str, int], nick: str) -> socket.socket | None:
        return None

    def publish(self, data: bytes) -> bytes:
        return b'{"type":"say","text":"' + data + b'"}\n'


class Redis:
    """Two sockets per client: a subscriber on one channel and a publisher (RESP)."""

    name = "redis"
    separate_publisher = True
    channel = b"room"

    def hello(self, nick: str) -> bytes:
        return _command(b"SUBSCRIBE", self.channel)

    def welcomed(self, buf: bytes) -> bool:
        return buf.count(b"\r\n") >= 5  # *3 $9 subscribe $4 room :1

    def join(self, sock: socket.socket, nick: str) -> bytes:
        sock.sendall(self.hello(nick))
        return _read_until(sock, self.welcomed)

    def open_publisher(self, address: tuple[str, int], nick: str) -> socket.socket | None:
        return connect(address)

    def publish(self, data: bytes) -> bytes:
        return _command(b"PUBLISH", self.channel, data)


ENGINES = {"labchat": Labchat, "redis": Redis}


def connect(address: tuple[str, int], rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(10.0)
    sock.connect(address)
    return sock


def redis_call(sock: socket.socket, *words: bytes) -> bytes:
    """Send one command and return its whole reply (enough RESP for PING and CLIENT LIST)."""
    sock.sendall(_command(*words))
    head = _read_until(sock, lambda buf: b"\r\n" in buf)
    if not head.startswith(b"$"):
        return head
    start = head.index(b"\r\n") + 2
    size = int(head[1 : start - 2])
    reply = _read_until(sock, lambda buf: len(buf) >= start + size + 2, head)
    return reply[start : start + size]


def _command(*words: bytes) -> bytes:
    parts = [b"*%d\r\n" % len(words)]
    for word in words:
        parts.append(b"$%d\r\n%s\r\n" % (len(word), word))
    return b"".join(parts)


def _read_until(sock: socket.socket, done, buf: bytes = b"", timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while not done(buf):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer in {timeout} s; got {buf[-200:]!r}")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the server; got {buf[-200:]!r}")
        buf += chunk
    return buf
