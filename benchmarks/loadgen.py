"""The load generator: worker processes that drive many sockets each from one selector loop.

The rule it keeps: be cheaper than the server being measured. Receivers read up to 256 KiB
at a time and count frames with ``bytes.count`` (a regular expression pulls out send stamps
only where latency is measured); senders build tiny frames or reuse one prepared block. Every
worker talks to its parent over a pipe: ``ready``, then ``go`` (start and end on the shared
monotonic clock), ``sent`` (how many it sent), ``expect`` (how many each client must get),
``result``, and ``stop``. The idle-client worker (``scale_worker``) has phases of its own:
``go`` (join), ``joined``, ``shout`` (one message to everyone), ``reached``, ``stop``.
"""

from __future__ import annotations

import errno
import random
import resource
import selectors
import socket
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

from . import wire
from .servers import raise_nofile

CHUNK = 256 * 1024
Counts = Sequence[int]  # deliveries each client has counted so far, in shared memory
FLOOD_BATCH = 64  # frames the flooding sender writes per send


@dataclass(frozen=True)
class Spec:
    """One client of a worker: its slot in the shared counters, its send rate, and whether it times."""

    index: int
    rate: float = 0.0  # messages per second it sends to the room; 0 for none
    measure: bool = False  # record each delivery's latency
    rcvbuf: int | None = None


class _Client:
    __slots__ = ("spec", "sock", "pub", "count", "rest", "at_end", "closed", "due", "seq", "step")

    def __init__(self, spec: Spec, sock: socket.socket, pub: socket.socket) -> None:
        self.spec, self.sock, self.pub = spec, sock, pub
        self.count = 0
        self.rest = b""
        self.at_end = False  # the last chunk ended in "@": a mark may straddle two chunks
        self.closed = False
        self.due = 0
        self.seq = 0
        self.step = int(1e9 / spec.rate) if spec.rate else 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def room_worker(
    pipe: Connection, engine_name: str, address: tuple[str, int], specs: list[Spec], counts: Counts
) -> None:
    """Clients that join, send at a steady rate (if asked), and read everything delivered."""
    engine = wire.ENGINES[engine_name]()
    sel = selectors.DefaultSelector()
    clients = []
    for spec in specs:
        sock = wire.connect(address, spec.rcvbuf)
        engine.join(sock, f"c{spec.index}")
        pub = (engine.open_publisher(address, f"c{spec.index}") if spec.rate else None) or sock
        client = _Client(spec, sock, pub)
        clients.append(client)
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, client)
        if pub is not sock:
            pub.setblocking(False)
            sel.register(pub, selectors.EVENT_READ, None)
    sel.register(pipe, selectors.EVENT_READ, pipe)
    pipe.send(("ready",))
    _, start, end = pipe.recv()
    cpu = _cpu()
    senders = [c for c in clients if c.step]
    for c in senders:  # spread the senders' ticks evenly, not all at once
        c.due = start + int(random.random() * c.step)
    latencies = array("q")
    leaves: list[tuple[str, str]] = []
    sending = bool(senders)
    if not sending:
        pipe.send(("sent", 0))
    expected = None
    drain_until = 0.0
    while True:
        now = time.monotonic_ns()
        timeout = 0.05
        if sending:
            if now >= end:
                sending = False
                pipe.send(("sent", sum(c.seq for c in senders)))
            else:
                nearest = end
                for c in senders:
                    if c.due <= now:
                        _send_due(engine, c, now, end)
                    nearest = min(nearest, c.due)
                timeout = max(0.0, (nearest - time.monotonic_ns()) / 1e9)
        for key, _ in sel.select(timeout):
            client = key.data
            if client is None:  # a Redis publisher's replies: read and forget
                _drop(key.fileobj)
            elif client is pipe:
                _, expected = pipe.recv()
                drain_until = time.monotonic() + 15.0
            else:
                _receive(client, sel, latencies, leaves)
                counts[client.spec.index] = client.count
        if expected is not None and (
            all(c.closed or c.count >= expected for c in clients) or time.monotonic() > drain_until
        ):
            break
    result = {
        "counts": [c.count for c in clients],
        "closed": [c.spec.index for c in clients if c.closed],
        "latencies": latencies.tobytes(),
        "leaves": leaves,
        "cpu": _cpu() - cpu,
    }
    pipe.send(("result", result))
    _wait_for_stop(pipe, sel)
    for c in clients:
        c.sock.close()
        if c.pub is not c.sock:
            c.pub.close()


def _send_due(engine, c: _Client, now: int, end: int) -> None:
    frames = []
    while c.due <= now and c.due < end:
        frames.append(engine.publish(wire.payload(time.monotonic_ns(), c.spec.index, c.seq)))
        c.seq += 1
        c.due += c.step
    data = b"".join(frames)
    try:
        sent = c.pub.send(data)
    except BlockingIOError:
        sent = 0
    if sent < len(data):  # the server is not reading: wait for it rather than lose a frame
        c.pub.setblocking(True)
        c.pub.sendall(data[sent:])
        c.pub.setblocking(False)


def _receive(c: _Client, sel: selectors.BaseSelector, latencies: array, leaves: list) -> None:
    try:
        data = c.sock.recv(CHUNK)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:
        c.closed = True
        sel.unregister(c.sock)
        return
    if c.spec.measure:
        now = time.monotonic_ns()
        buf = c.rest + data
        cut = buf.rfind(b"\n") + 1
        body, c.rest = buf[:cut], buf[cut:]
        stamps = wire.STAMP.findall(body)
        c.count += len(stamps)
        latencies.extend([now - int(s) for s in stamps])
        if b'"type":"leave"' in body:
            leaves.extend((n.decode(), t.decode()) for n, t in wire.LEAVE.findall(body))
    else:
        n = data.count(wire.MARK)
        if c.at_end and data[:1] == b"T":
            n += 1
        c.at_end = data[-1:] == b"@"
        c.count += n


def _drop(sock: socket.socket) -> None:
    try:
        sock.recv(CHUNK)
    except (BlockingIOError, InterruptedError):
        pass


def _wait_for_stop(pipe: Connection, sel: selectors.BaseSelector) -> None:
    """Keep reading (so no engine sees a stalled client) until the parent says stop."""
    while True:
        for key, _ in sel.select(1.0):
            if key.data is pipe:
                pipe.recv()
                return
            try:
                if not key.fileobj.recv(CHUNK):
                    sel.unregister(key.fileobj)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                sel.unregister(key.fileobj)


def flood_worker(
    pipe: Connection,
    engine_name: str,
    address: tuple[str, int],
    index: int,
    counts: Counts,
    watch: range,
    window: int | None,
) -> None:
    """One sender, as fast as the engine takes it. Paced: never more than ``window`` messages
    ahead of the slowest receiver (whose counts it watches), so no engine is asked to buffer
    without bound. Unpaced (``window`` None): it writes whenever its socket takes more, and only
    the engine's own flow control stands between it and the receivers."""
    engine = wire.ENGINES[engine_name]()
    sock = wire.connect(address)
    engine.join(sock, f"c{index}")
    pub = engine.open_publisher(address, f"c{index}") or sock
    block = b"".join(engine.publish(wire.payload(0, index, i)) for i in range(FLOOD_BATCH))
    sel = selectors.DefaultSelector()
    for s in {sock, pub}:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, s)
    pipe.send(("ready",))
    _, start, end = pipe.recv()
    cpu = _cpu()
    time.sleep(max(0.0, (start - time.monotonic_ns()) / 1e9))
    lo, hi = watch.start, watch.stop
    sent = 0
    out = memoryview(b"")
    writing = False
    while time.monotonic_ns() < end or out:
        if (
            not out
            and time.monotonic_ns() < end
            and (window is None or sent + FLOOD_BATCH - min(counts[lo:hi]) <= window)
        ):
            out = memoryview(block)
            sent += FLOOD_BATCH
        if out and not writing:
            sel.modify(pub, selectors.EVENT_READ | selectors.EVENT_WRITE, pub)
            writing = True
        elif not out and writing:
            sel.modify(pub, selectors.EVENT_READ, pub)
            writing = False
        for key, mask in sel.select(0.001):
            if mask & selectors.EVENT_READ:
                _drop(key.fileobj)
            if mask & selectors.EVENT_WRITE and out:
                try:
                    out = out[key.fileobj.send(out) :]
                except BlockingIOError:
                    pass
    if writing:
        sel.modify(pub, selectors.EVENT_READ, pub)
    pipe.send(("sent", sent))
    _, _expected = pipe.recv()
    pipe.send(("result", {"counts": [], "closed": [], "latencies": b"", "leaves": [], "cpu": _cpu() - cpu}))
    sel.register(pipe, selectors.EVENT_READ, pipe)
    _wait_for_stop(pipe, sel)
    sock.close()
    if pub is not sock:
        pub.close()


# -- idle clients ----------------------------------------------------------------------------


class _Idle:
    __slots__ = ("number", "sock", "joined", "head", "at_end", "reached")

    def __init__(self, number: int, sock: socket.socket) -> None:
        self.number = number
        self.sock = sock
        self.joined = False
        self.head = b""  # what arrived before the welcome (small)
        self.at_end = False
        self.reached = 0  # when the shouted message arrived (monotonic ns), 0 before


def scale_worker(
    pipe: Connection,
    engine_name: str,
    address: tuple[str, int],
    clients: int,
    received: Counts,
    slot: int,
    window: int,
    shouter: bool,
) -> None:
    """Idle clients: join ``clients`` of them (at most ``window`` waiting to be let in at once),
    keep reading everything the room sends, and on ``shout`` time one message reaching them all.

    ``enough`` stops it opening more (the join phase ran out of time): it says ``joined`` once
    those already on their way are in. ``received[slot]`` is kept at the bytes this worker has
    read, so the parent can see when the room has gone quiet. The ``shouter`` worker's first
    client sends the message.
    """
    raise_nofile(clients + 64)
    engine = wire.ENGINES[engine_name]()
    sel = selectors.DefaultSelector()
    sel.register(pipe, selectors.EVENT_READ, None)
    pipe.send(("ready",))
    pipe.recv()  # go
    idle: list[_Idle] = []
    waiting = 0  # connected or connecting, not yet welcomed
    joined = 0
    last_welcome = 0
    told_joined = False
    total = 0
    shout_at = 0
    shout_deadline = 0.0
    reached = 0
    closed = 0  # hung up on by the server
    gone = 0  # of those, joined and not reached
    pub = None
    while True:
        while len(idle) < clients and waiting < window:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS):
                raise OSError(code, f"connect to {address}: {errno.errorcode.get(code, code)}")
            client = _Idle(len(idle), sock)
            sel.register(sock, selectors.EVENT_WRITE, client)
            idle.append(client)
            waiting += 1
        for key, mask in sel.select(0.2):
            client = key.data
            if client is None:
                message = pipe.recv()[0]
                if message == "stop":
                    for c in idle:
                        c.sock.close()
                    if pub is not None and pub is not idle[0].sock:
                        pub.close()
                    return
                if message == "enough":
                    clients = len(idle)
                elif message == "shout":
                    shout_deadline = time.monotonic() + 10.0
                    if shouter:
                        pub = engine.open_publisher(address, "shout") or idle[0].sock
                        pub.setblocking(True)
                        shout_at = time.monotonic_ns()
                        pub.sendall(engine.publish(wire.payload(shout_at, 0, 0)))
                        pub.setblocking(False)
                        if pub is not idle[0].sock:
                            sel.register(pub, selectors.EVENT_READ, False)
                continue
            if client is False:  # the Redis publisher's reply
                _drop(key.fileobj)
                continue
            if mask & selectors.EVENT_WRITE:
                error = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise OSError(error, f"connect to {address}: {errno.errorcode.get(error, error)}")
                client.sock.send(engine.hello(f"w{slot}c{client.number}"))
                sel.modify(client.sock, selectors.EVENT_READ, client)
                continue
            try:
                data = client.sock.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                continue
            if not data:  # the server hung up on it (or is gone): it will not be reached
                sel.unregister(client.sock)
                closed += 1
                if not client.joined:
                    waiting -= 1
                    clients -= 1
                elif not client.reached:
                    gone += 1
                continue
            total += len(data)
            if not client.joined:
                client.head += data
                if not engine.welcomed(client.head):
                    continue
                client.joined = True
                data, client.head = client.head, b""
                waiting -= 1
                joined += 1
                last_welcome = time.monotonic_ns()
            if not client.reached:
                if wire.MARK in data or (client.at_end and data[:1] == b"T"):
                    client.reached = time.monotonic_ns()
                    reached += 1
                client.at_end = data[-1:] == b"@"
        received[slot] = total
        if not told_joined and joined == clients:
            pipe.send(("joined", (joined, last_welcome)))
            told_joined = True
        if shout_deadline and (reached + gone >= joined or time.monotonic() > shout_deadline):
            latest = max((c.reached for c in idle), default=0)
            report = {"reached": reached, "latest": latest, "sent_at": shout_at, "closed": closed}
            pipe.send(("reached", report))
            shout_deadline = 0.0
