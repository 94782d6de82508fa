"""The scenarios, each run against one engine: start it, drive it, measure, stop it.

The rule it keeps: one code path for every engine. A scenario is a plan of worker processes
(forked, each holding many clients) and what to measure; only ``wire`` knows how each engine
is spoken to. Every figure returned is for one run; ``fanout.py`` takes medians over runs.
"""

from __future__ import annotations

import multiprocessing
import socket
import time
from array import array
from dataclasses import dataclass, field

from . import wire
from .loadgen import Spec, flood_worker, room_worker, scale_worker
from .servers import ENGINES, Engine

CTX = multiprocessing.get_context("fork")
SLOW_RCVBUF = 4096  # the slow reader asks the kernel for a tiny receive buffer


@dataclass
class Shape:
    """The sizes of one run: the full benchmark and the smoke test differ only here."""

    latency_seconds: float = 2.0
    latency_rate: float = 1000.0
    room_clients: int = 50
    room_rate: float = 20.0
    room_seconds: float = 5.0
    # Long enough for the slow reader's kernel buffers (several hundred KiB on Linux) and
    # then its 1 MiB outbox to fill at the busy room's rate (about 180 KB/s), so its fate
    # shows in the run.
    slow_seconds: float = 12.0
    fanout_receivers: tuple[int, ...] = (10, 50, 200)
    fanout_seconds: float = 5.0
    fanout_window: int = 2048
    idle_clients: tuple[int, ...] = (1000, 5000, 10000)
    workers: int = 2
    # Idle clients per load worker, and how many of a worker's clients may be waiting to be
    # let in at once: with 4 workers, 48 in all, within the server's 64 not-yet-joined.
    idle_per_worker: int = 2500
    join_window: int = 12
    # The longest the idle clients are given to join. labchat tells every member of every
    # join, so filling a room costs the server N^2/2 deliveries: past a few thousand clients
    # that takes many minutes, and the run measures the room as far as it got.
    join_budget: float = 30.0


SMOKE = Shape(
    latency_seconds=0.5,
    latency_rate=200.0,
    room_clients=8,
    room_seconds=0.5,
    slow_seconds=0.5,
    fanout_receivers=(10,),
    fanout_seconds=0.5,
    idle_clients=(200,),
    join_budget=20.0,
)


@dataclass
class Run:
    """What one run of one scenario measured on one engine."""

    sent: int = 0
    delivered: int = 0
    expected: int = 0
    seconds: float = 0.0
    per_second: float = 0.0  # deliveries per second during the sending phase
    latencies_us: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    loadgen_cpu: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.expected - self.delivered


def _split(items: list, parts: int) -> list[list]:
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]


class _Workers:
    """Forked worker processes and their pipes, driven through the phases in step."""

    def __init__(self) -> None:
        self.procs: list[multiprocessing.Process] = []
        self.pipes = []

    def add(self, target, *args) -> None:
        parent, child = CTX.Pipe()
        proc = CTX.Process(target=target, args=(child, *args), daemon=True)
        proc.start()
        child.close()
        self.procs.append(proc)
        self.pipes.append(parent)

    def gather(self, phase: str, timeout: float = 60.0) -> list:
        out = []
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            if not pipe.poll(timeout):
                raise RuntimeError(f"a load worker said nothing for {timeout} s (waiting for {phase!r})")
            try:
                message = pipe.recv()
            except EOFError:
                raise RuntimeError(f"a load worker died (exit code {proc.exitcode})") from None
            if message[0] != phase:
                raise RuntimeError(f"a load worker said {message[0]!r}, expected {phase!r}")
            out.append(message[1] if len(message) > 1 else None)
        return out

    def tell(self, *message) -> None:
        for pipe in self.pipes:
            pipe.send(message)

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("stop",))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for pipe in self.pipes:
            pipe.close()


def drive(
    engine: Engine,
    groups: list[list[Spec]],
    seconds: float,
    flood: tuple[int, int | None] | None = None,
    slow: bool = False,
    where: list[tuple[str, int]] | None = None,
) -> Run:
    """Start the workers, let them send for ``seconds``, drain, and gather what they saw.

    ``groups`` are the room workers' clients; ``flood`` is (index, window) for a sender as
    fast as the engine goes (window None: unpaced); ``slow`` adds a client that joins and then
    never reads. ``where`` is the address each group joins through (default: the engine's;
    the flood always uses the engine's), for an engine of several servers.
    """
    size = sum(len(g) for g in groups) + (1 if flood else 0)
    counts = CTX.RawArray("q", size)
    workers = _Workers()
    counted = sum(len(g) for g in groups)
    run = Run()
    slow_sock = None
    try:
        for n, group in enumerate(groups):
            address = engine.address if where is None else where[n]
            workers.add(room_worker, engine.protocol, address, group, counts)
        if flood:
            index, window = flood
            workers.add(flood_worker, engine.protocol, engine.address, index, counts, range(counted), window)
        workers.gather("ready")
        if slow:
            slow_sock = _slow_client(engine)
        user, system = engine.cpu_times()
        start = time.monotonic_ns() + 100_000_000
        end = start + int(seconds * 1e9)
        workers.tell("go", start, end)
        time.sleep(max(0.0, (end - time.monotonic_ns()) / 1e9))
        at_end = sum(counts[:counted])
        run.sent = sum(workers.gather("sent", 60.0 + seconds))
        workers.tell("expect", run.sent)
        results = workers.gather("result", 60.0)
        user_now, system_now = engine.cpu_times()
        user, system = user_now - user, system_now - system
        run.server_cpu = user + system
        run.extra["server_user_s"] = round(user, 2)
        run.extra["server_system_s"] = round(system, 2)
        run.seconds = seconds
        run.per_second = at_end / seconds
        run.expected = run.sent * counted
        run.delivered = sum(sum(r["counts"]) for r in results)
        run.loadgen_cpu = sum(r["cpu"] for r in results)
        lat = array("q")
        for r in results:
            lat.frombytes(r["latencies"])
        run.latencies_us = [v / 1000 for v in lat]
        run.extra["closed"] = sorted(i for r in results for i in r["closed"])
        if slow_sock is not None:
            run.extra["slow"] = _slow_fate(engine, slow_sock, [x for r in results for x in r["leaves"]])
        run.extra["rss_kib"] = engine.rss_kib()
    finally:
        # The server closes first, while every client is still reading: it tells them and
        # hangs up, as it does when whoever runs it stops it.
        try:
            engine.stop()
        finally:
            workers.stop()
            if slow_sock is not None:
                slow_sock.close()
    return run


# Seconds with nothing arriving before the client that never read is taken to be still connected.
SLOW_FATE_WAIT = 1.0


def _slow_client(engine: Engine) -> socket.socket:
    sock = wire.connect(engine.address, rcvbuf=SLOW_RCVBUF)
    if engine.protocol == "redis":
        wire.redis_call(sock, b"CLIENT", b"SETNAME", b"slow")
    wire.ENGINES[engine.protocol]().join(sock, "slow")
    return sock


def _slow_fate(engine: Engine, sock: socket.socket, leaves: list[tuple[str, str]]) -> str:
    """What became of the client that never read: cut off (and why), or still buffered."""
    if engine.protocol == "labchat":
        # A server that hung up shut the socket behind the bytes its kernel still held for this
        # client, so its end arrives only once they are read: read until it does, or until
        # nothing more comes for SLOW_FATE_WAIT (then it is still connected).
        sock.settimeout(SLOW_FATE_WAIT)
        ended = False
        try:
            while sock.recv(65536):
                pass
            ended = True
        except TimeoutError:
            pass
        except OSError:
            ended = True
        reasons = [text for nick, text in leaves if nick == "slow"]
        if reasons:
            return f"cut off: {reasons[0]}"
        return "cut off with no reason given" if ended else "still connected"
    with wire.connect(engine.address) as control:
        listing = wire.redis_call(control, b"CLIENT", b"LIST").decode()
    for line in listing.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("name") == "slow":
            return f"still connected, {int(fields['omem']) // 1024} KiB queued for it"
    return "disconnected by the server"


# -- the scenarios ----------------------------------------------------------------------------


def latency(engine: Engine, shape: Shape) -> Run:
    """Two clients: one sends at a steady rate, the other times each delivery."""
    groups = [[Spec(0, rate=shape.latency_rate)], [Spec(1, measure=True)]]
    return drive(engine, groups, shape.latency_seconds)


def busy_room(engine: Engine, shape: Shape, slow: bool = False) -> Run:
    """Everyone sends at a steady rate and times everyone's messages, optionally beside a slow reader."""
    specs = [Spec(i, rate=shape.room_rate, measure=True) for i in range(shape.room_clients)]
    seconds = shape.slow_seconds if slow else shape.room_seconds
    return drive(engine, _split(specs, shape.workers), seconds, slow=slow)


def fan_out(engine: Engine, shape: Shape, receivers: int, paced: bool = True) -> Run:
    """One sender as fast as the engine takes it; ``receivers`` clients count deliveries.

    Paced, the sender stays within ``fanout_window`` messages of the slowest receiver;
    unpaced, it writes whenever its socket takes more, and the engine alone must hold it back.
    """
    specs = [Spec(i) for i in range(receivers)]
    groups = _split(specs, shape.workers)
    window = shape.fanout_window if paced else None
    return drive(engine, groups, shape.fanout_seconds, flood=(receivers, window))


def scale(engine: Engine, shape: Shape, clients: int) -> Run:
    """Many idle clients: how long they take to join, what they cost the server, and how long
    one message takes to reach them all.

    Workers join their clients as fast as the server lets them in; the room then goes quiet
    (labchat tells everyone of every join, so that takes a while). Memory and threads are
    read on the quiet server, and one client says one line that everyone must receive.
    """
    before = (engine.rss_kib(), engine.threads())
    parts = max(1, min(-(-clients // shape.idle_per_worker), 8))
    sizes = [len(part) for part in _split(list(range(clients)), parts)]
    received = CTX.RawArray("q", parts)
    workers = _Workers()
    run = Run(sent=1, expected=clients)
    try:
        for slot, size in enumerate(sizes):
            args = (engine.protocol, engine.address, size, received, slot, shape.join_window, slot == 0)
            workers.add(scale_worker, *args)
        workers.gather("ready")
        cpu = engine.cpu_seconds()
        start = time.monotonic_ns()
        workers.tell("go")
        deadline = time.monotonic() + shape.join_budget
        for pipe in workers.pipes:
            pipe.poll(max(0.0, deadline - time.monotonic()))
        if not all(pipe.poll() for pipe in workers.pipes):
            workers.tell("enough")
        joins = workers.gather("joined", 600.0)
        members = sum(n for n, _ in joins)
        joined = max(t for _, t in joins)
        run.expected = members
        quiet = _wait_quiet(received, 600.0)
        run.server_cpu = engine.cpu_seconds() - cpu
        run.extra["server_cpu_s"] = round(run.server_cpu, 2)  # joining and telling everyone
        idle_cpu = engine.cpu_seconds()
        time.sleep(1.0)
        idle_cpu = engine.cpu_seconds() - idle_cpu
        rss = engine.rss_kib()
        run.extra.update(
            clients=clients,
            joined=members,
            join_s=round((joined - start) / 1e9, 3),
            quiet_s=round((quiet - start) / 1e9, 3),
            rss_idle_kib=before[0],
            threads_idle=before[1],
            rss_kib=rss,
            peak_rss_kib=engine.peak_rss_kib(),
            threads=engine.threads(),
            kib_per_client=round((rss - before[0]) / members, 2),
            idle_cpu_pct=round(100 * idle_cpu, 1),
            received_mib=round(sum(received) / 2**20, 1),
        )
        workers.tell("shout")
        reached = workers.gather("reached", 60.0)
        sent_at = max(r["sent_at"] for r in reached)
        run.delivered = sum(r["reached"] for r in reached)
        run.extra["cut_off"] = sum(r["closed"] for r in reached)
        run.extra["reach_all_ms"] = round((max(r["latest"] for r in reached) - sent_at) / 1e6, 2)
    finally:
        # labchat tells everyone left of every departure too, so N clients hanging up at once
        # cost the server another N^2/2 deliveries: not what this scenario measures. The
        # server goes first, at once.
        engine.kill()
        workers.stop()
    return run


def _wait_quiet(received, timeout: float, still: float = 0.5) -> int:
    """Wait until the workers have read nothing new for ``still`` seconds; when it went quiet."""
    deadline = time.monotonic() + timeout
    last, since = sum(received), time.monotonic_ns()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now_total = sum(received)
        if now_total != last:
            last, since = now_total, time.monotonic_ns()
        elif time.monotonic_ns() - since > still * 1e9:
            return since
    raise RuntimeError(f"the room did not go quiet within {timeout} s")


def run_one(name: str, engine_name: str, shape: Shape) -> Run:
    """One scenario against a freshly started engine."""
    with ENGINES[engine_name]() as engine:
        if name == "latency":
            return latency(engine, shape)
        if name == "busy":
            return busy_room(engine, shape)
        if name == "slow":
            return busy_room(engine, shape, slow=True)
        if name.startswith("fanout"):
            return fan_out(engine, shape, int(name[len("fanout") :]))
        if name.startswith("unpaced"):
            return fan_out(engine, shape, int(name[len("unpaced") :]), paced=False)
        if name.startswith("scale"):
            return scale(engine, shape, int(name[len("scale") :]))
    raise ValueError(f"unknown scenario {name!r}")
