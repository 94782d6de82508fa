"""Start and stop the engines under test, each in its own process, and read their vital signs.

The rule it keeps: whatever is started here is stopped here (``with`` blocks), on a loopback
port chosen by the kernel, with the engine's protections as they ship except those the
benchmark must switch off to push load (labchat's rate limit, which stays on by default).
Three engines: labchat's two (``threading``: a thread per connection, ``selector``: one
thread for all) and Redis pub/sub. ``protocol`` says how the load generator speaks to each.
"""

from __future__ import annotations

import os
import resource
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import wire

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def raise_nofile(wanted: int = 1 << 20) -> int:
    """Raise this process's open-file limit toward ``wanted`` (at most the hard limit); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


class Engine:
    """A running server process: its address, and its memory, threads and CPU time."""

    name = ""
    protocol = ""  # a key of wire.ENGINES

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_kib(self) -> int:
        return int(_status(self.pid)["VmRSS"].split()[0])

    def peak_rss_kib(self) -> int:
        """The most resident memory the process has had (the kernel's high-water mark)."""
        return int(_status(self.pid)["VmHWM"].split()[0])

    def threads(self) -> int:
        return int(_status(self.pid)["Threads"])

    def cpu_times(self) -> tuple[float, float]:
        """CPU seconds so far in user space (the interpreter, for a Python server) and in the
        kernel (the system calls: sends, receives, waits)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS  # utime, stime

    def cpu_seconds(self) -> float:
        return sum(self.cpu_times())

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """Stop the process at once, skipping its shutdown (``stop`` then does nothing more)."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc = None


class LabchatServer(Engine):
    """``python -m benchmarks.run_server``: one of labchat's engines with the rate limit switched off.

    Every other keyword is left at the server's own default (outbox limit, stall timeout,
    connections waiting to join), except the room size, which must fit the idle clients.
    """

    protocol = "labchat"
    engine = ""
    module = "benchmarks.run_server"

    def __init__(self, max_clients: int = 12000) -> None:
        super().__init__()
        self.args = ["--engine", self.engine, "--no-rate-limit", "--max-clients", str(max_clients)]

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 30.0)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the {self.name} server did not start (it said {line!r})")
        self.address = ("127.0.0.1", int(line))

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            # Closing stdin is not enough: forked load workers hold copies of the pipe.
            self.proc.stdin.close()
            self.proc.terminate()
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        if self.proc.returncode != 0:
            raise RuntimeError(f"the {self.name} server exited with status {self.proc.returncode}")
        self.proc = None


class ThreadingServer(LabchatServer):
    """``ThreadingChatServer`` (``ChatServer``): a reader thread per connection."""

    name = engine = "threading"


class SelectorServer(LabchatServer):
    """``SelectorChatServer``: one thread waits on every socket."""

    name = engine = "selector"


class FloorServer(LabchatServer):
    """``benchmarks.floor_server``: the least a Python server does for a chat line (a peer, not labchat)."""

    name = "floor"
    module = "benchmarks.floor_server"

    def __init__(self, max_clients: int = 12000) -> None:
        super().__init__()
        self.args = []


class RedisServer(Engine):
    """Debian's ``redis-server`` on a free loopback port, persistence off."""

    name = protocol = "redis"

    def __init__(self, max_clients: int = 12000) -> None:
        super().__init__()
        self.max_clients = max_clients

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        port = _free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--protected-mode", "no", "--loglevel", "warning", "--maxclients", str(self.max_clients)],
            stdout=subprocess.DEVNULL,
            preexec_fn=raise_nofile,  # Redis sizes its client table from the limit it inherits
        )
        self.address = ("127.0.0.1", port)
        deadline = time.monotonic() + 10.0
        while True:
            try:
                with wire.connect(self.address) as sock:
                    if wire.redis_call(sock, b"PING").startswith(b"+PONG"):
                        return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class SharedRoom(Engine):
    """``servers`` labchat servers (one engine, ``kind``) that are one room through a ``redis-server``.

    ``address`` is the first server's, ``addresses`` all of them; memory, threads and CPU time
    are the sum of the processes, Redis's included, since the room costs all of them.
    """

    name = "shared"
    protocol = "labchat"
    servers = 2
    kind: type[LabchatServer] = ThreadingServer

    def __init__(self, max_clients: int = 12000) -> None:
        super().__init__()
        self.max_clients = max_clients
        self.parts: list[Engine] = []
        self.addresses: list[tuple[str, int]] = []

    def start(self) -> None:
        redis = RedisServer()
        redis.start()
        self.parts = [redis]
        url = f"redis://127.0.0.1:{redis.address[1]}/0"
        try:
            for _ in range(self.servers):
                server = self.kind(self.max_clients)
                server.args += ["--backplane", url, "--room", "bench"]
                server.start()
                self.parts.append(server)
        except BaseException:
            self.stop()
            raise
        self.addresses = [part.address for part in self.parts[1:]]
        self.address = self.addresses[0]

    def stop(self) -> None:
        parts, self.parts = self.parts, []
        for part in reversed(parts):  # the servers first, while Redis still answers
            part.stop()

    def kill(self) -> None:
        parts, self.parts = self.parts, []
        for part in reversed(parts):
            part.kill()

    def rss_kib(self) -> int:
        return sum(part.rss_kib() for part in self.parts)

    def peak_rss_kib(self) -> int:
        return sum(part.peak_rss_kib() for part in self.parts)

    def threads(self) -> int:
        return sum(part.threads() for part in self.parts)

    def cpu_times(self) -> tuple[float, float]:
        times = [part.cpu_times() for part in self.parts]
        return sum(user for user, _ in times), sum(system for _, system in times)


def shared(servers: int, kind: type[LabchatServer] = SelectorServer) -> type[SharedRoom]:
    """A SharedRoom of ``servers`` processes of one engine, as a class the scenarios can start."""
    return type(
        f"SharedRoom{servers}", (SharedRoom,), {"name": f"shared{servers}", "servers": servers, "kind": kind}
    )


ENGINES: dict[str, type[Engine]] = {
    "threading": ThreadingServer,
    "selector": SelectorServer,
    "redis": RedisServer,
    "floor": FloorServer,
    "shared": SharedRoom,  # two threaded servers in one room
    # for benchmarks.multi: one room on 1, 2 or 3 selector-engine servers through one Redis
    **{f"shared{n}": shared(n) for n in (1, 2, 3)},
}
LABCHAT = ("threading", "selector")  # the engines measured against Redis


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
