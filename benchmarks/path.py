"""The cost of one chat line inside the server, with no socket: a sender's bytes to N outboxes.

Run from the repository root:

    python -m benchmarks.path                      # microseconds a line, to 10 and to 200 readers
    python -m benchmarks.path --receivers 10 --instructions   # instructions a line (valgrind)
    python -m benchmarks.path --busy --receivers 50 --instructions   # one line a round, sent

``--busy`` measures the busy room's shape instead: one line arrives, and the selector engine's
own round hands it to the room and sends it to every reader (``_flush_dirty``, through sockets
whose ``send`` only says every byte went), before the next line arrives.

It builds a server's room, hub and sessions in this process (the engine's own code, with an
engine that empties each outbox instead of sending it), joins N readers and one sender, then
feeds the sender 64 KiB pieces of ``say`` frames, as ``recv`` would, and times ``process()``:
decoding, the room, encoding each event once, and queueing the bytes for every reader.
Nothing here waits on another process, so the figure does not depend on the load generator;
on a machine that others share, ``--instructions`` counts what the CPU executes instead
(``valgrind --tool=callgrind``, two runs of different lengths, differenced, so start-up and
joining cancel out), which comes out the same within a few per cent however busy it is.
"""

from __future__ import annotations

import argparse
import selectors
import shutil
import subprocess
import sys
import threading
import time

from labchat.engine import limits
from labchat.engine.core import ChatServerCore
from labchat.engine.fanout import Hub
from labchat.engine.rounds import Round
from labchat.engine.selector import SelectorChatServer
from labchat.engine.session import Session

PIECE = 65536  # what one recv hands the session at most
BLOCK = 512  # frames fed per round of the loop


class Draining(ChatServerCore):
    """An engine that sends nothing: each flush empties the session's outbox at once."""

    engine = "draining"

    def engine_flush_all(self, sessions: list[Session]) -> None:
        for session in sessions:
            with session.lock:
                size = session.outbox.size
                if size:
                    session.outbox.peek()
                    session.outbox.sent(size, 0.0)

    def engine_wake(self, session: Session) -> None:
        pass

    def engine_abort(self, session: Session) -> None:
        pass


class Taken:
    """A socket whose kernel takes every byte at once."""

    send = staticmethod(len)


class Rounds(SelectorChatServer):
    """The selector engine with no thread and no client sockets: its rounds are run by hand."""

    def _serve(self, listener) -> None:
        self._prepare(listener)
        self._thread = threading.current_thread()
        self.hub.round = Round()  # as the loop's first step does

    def add(self, session: Session) -> None:
        self._socks[session] = Taken()
        self._masks[session] = selectors.EVENT_READ

    def shut(self) -> None:
        """What ``close()`` would let go of, without telling sessions that have no socket."""
        for thing in (self._listener, self._selector, self._wake_r, self._wake_w):
            thing.close()


def busy_room_of(receivers: int) -> tuple[Rounds, Session]:
    """A started ``Rounds`` server with ``receivers`` readers and one sender; the sender."""
    core = Rounds(port=0, bot=False, rate=None, max_clients=receivers + 10)
    core.start()
    session = None
    for n in range(receivers + 1):
        session = Session(core, ("127.0.0.1", 10000 + n), n + 1)
        core.add(session)
        session.start()
        session.received(b'{"type":"hello","nick":"c%d"}\n' % n)
        session.process()
        core._flush_dirty()
        assert session.joined, session.reason
    return core, session


def feed_rounds(core: Rounds, sender: Session, messages: int) -> None:
    """One frame a round: read, hand to the room, send to every reader."""
    lines = frames(BLOCK).splitlines(keepends=True)
    for n in range(messages):
        sender.received(lines[n % BLOCK])
        core._after_process(sender, sender.process())
        core._flush_dirty()


def room_of(receivers: int) -> Session:
    """A room of ``receivers`` readers and one sender, all joined; the sender's session."""
    core = Draining(port=0, bot=False, rate=None, max_clients=receivers + 10)
    core.hub = Hub(
        core.room,
        max_clients=core.max_clients,
        soft_outbox=limits.SOFT_OUTBOX,
        clock=core.clock,
        flush=core.engine_flush_all,
    )
    session = None
    for n in range(receivers + 1):
        session = Session(core, ("127.0.0.1", 10000 + n), n + 1)
        session.start()
        session.received(b'{"type":"hello","nick":"c%d"}\n' % n)
        session.process()
        assert session.joined, session.reason
    return session


def frames(count: int) -> bytes:
    """``count`` say frames of the benchmark's 100-byte payload."""
    return b"".join(
        b'{"type":"say","text":"@T%d 0:%d %s"}\n' % (10**12 + n, n, b"x" * 70) for n in range(count)
    )


def feed(sender: Session, messages: int) -> None:
    block = frames(BLOCK)
    for _ in range(max(1, messages // BLOCK)):
        for start in range(0, len(block), PIECE):
            sender.received(block[start : start + PIECE])
            sender.process()


def run(receivers: int, messages: int, busy: bool) -> float:
    """Build the room, feed it ``messages`` lines; the process time they took."""
    if busy:
        core, sender = busy_room_of(receivers)
        try:
            started = time.process_time()
            feed_rounds(core, sender, messages)
            return time.process_time() - started
        finally:
            core.shut()
    sender = room_of(receivers)
    started = time.process_time()
    feed(sender, messages)
    return time.process_time() - started


def seconds_a_line(receivers: int, messages: int, busy: bool = False) -> float:
    """The least of three runs' process time a line (other processes' load does not count)."""
    return min(run(receivers, messages, busy) for _ in range(3)) / messages


def instructions_a_line(receivers: int, busy: bool = False, short: int = 1024, long: int = 6144) -> float:
    """Instructions a line, from valgrind: a run of ``long`` lines less one of ``short``."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")

    def count(messages: int) -> int:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
            + ["-m", "benchmarks.path", "--receivers", str(receivers), "--messages", str(messages), "--once"]
            + (["--busy"] if busy else []),
            capture_output=True,
            text=True,
            check=True,
        )
        for line in done.stderr.splitlines():
            if "Collected :" in line:
                return int(line.rsplit(":", 1)[1])
        raise RuntimeError("valgrind said no instruction count:\n" + done.stderr)

    return (count(long) - count(short)) / (long - short)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the cost of one chat line inside the server")
    parser.add_argument("--receivers", type=int, nargs="*", default=[10, 200])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--busy", action="store_true", help="one line a round, sent (the busy room)")
    parser.add_argument("--instructions", action="store_true", help="count instructions with valgrind")
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)  # one run, for valgrind
    args = parser.parse_args(argv)
    for receivers in args.receivers:
        if args.once:
            run(receivers, args.messages, args.busy)
        elif args.instructions:
            figure = instructions_a_line(receivers, args.busy)
            each = f"{figure / receivers:,.0f} a delivery"
            print(f"{receivers} readers: {figure:,.0f} instructions a line, {each}")
        else:
            seconds = seconds_a_line(receivers, args.messages, args.busy)
            each = f"{seconds / receivers * 1e9:.0f} ns a delivery"
            print(f"{receivers} readers: {seconds * 1e6:.2f} µs a line, {each}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
