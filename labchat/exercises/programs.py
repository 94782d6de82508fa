"""Checks for the classic two-program chat: the learner's chat_server.py and chat_client.py, run for real.

The rule it keeps: the programs run as a person runs them. The server is a
subprocess whose typing comes through a pipe; the client runs in a pseudo-terminal
(pexpect), so its ``input()`` reads a real terminal. Every wait has a deadline, and
every process the check started is ended before it returns.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .feedback import Feedback, guarded
from .servers import quiet_room

WAIT = 5.0  # seconds for any one thing to show up
HERE = Path(__file__).resolve().parent


def have_pexpect() -> bool:
    try:
        import pexpect  # noqa: F401
    except ImportError:
        return False
    return True


def classic(which: str) -> str:
    """labchat's own chat_server.py or chat_client.py (``which`` is 'server' or 'client')."""
    return str(HERE / f"classic_{which}.py")


class Server:
    """The learner's server as a subprocess: ``type`` writes to its stdin, ``expect`` reads its stdout."""

    def __init__(self, program: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", program, "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # Ctrl-C in the notebook's terminal does not reach it
        )
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, name="exercise-server-output", daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str, timeout: float = WAIT) -> re.Match | None:
        """The first line from now on that matches, or None at the deadline or the end of output."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)
                return None
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        return None

    def type(self, text: str) -> None:
        try:
            self.proc.stdin.write(text)
            self.proc.stdin.flush()
        except OSError:
            pass

    def ended(self, timeout: float = WAIT) -> bool:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def spawn_client(program: str, host: str, port: int) -> Any:
    """The learner's client in a pseudo-terminal, as if typed into a terminal."""
    import pexpect

    env = dict(os.environ, TERM="dumb", PYTHONUNBUFFERED="1")
    return pexpect.spawn(
        sys.executable,
        ["-u", program, host, str(port)],
        encoding="utf-8",
        timeout=WAIT,
        env=env,
        dimensions=(24, 200),
    )


def _shows(child: Any, pattern: str, timeout: float = WAIT) -> str | None:
    """The text the client's terminal showed that matches ``pattern``, or None."""
    import pexpect

    try:
        child.expect(pattern, timeout=timeout)
    except (pexpect.TIMEOUT, pexpect.EOF):
        return None
    return child.match.group(0)


def _client_ended(child: Any, timeout: float = WAIT) -> bool:
    import pexpect

    try:
        child.expect(pexpect.EOF, timeout=timeout)
    except pexpect.TIMEOUT:
        return False
    child.wait()
    return True


def _stop_client(child: Any) -> None:
    if child is not None:
        child.close(force=True)


def _missing(feedback: Feedback, *programs: str) -> bool:
    if not have_pexpect():
        feedback.not_yet(
            "pexpect is not installed, so the check cannot type into your programs",
            "install pexpect: pip install pexpect",
        )
        return True
    absent = [p for p in programs if not Path(p).is_file()]
    if absent:
        feedback.not_yet(
            f"there is no {' and no '.join(absent)} here yet", "run the %%writefile cell that writes it"
        )
        return True
    return False


@guarded("two-program chat")
def check_chat_programs(
    feedback: Feedback, server: str = "chat_server.py", client: str = "chat_client.py"
) -> None:
    """Run ``python SERVER 0`` and ``python CLIENT 127.0.0.1 PORT``; type on both sides; bye; a dead peer."""
    if _missing(feedback, server, client):
        return
    host = Server(server)
    child = None
    try:
        listening = host.expect(r"port (\d+)")
        if not listening:
            feedback.not_yet(
                f"{server} did not say which port it listens on (its last words: {host.seen[-1:]!r})",
                "print(f'listening on port {listener.getsockname()[1]}', flush=True) once bound: "
                "started with port 0, the system picks a free port, and only your server knows which",
            )
            return
        feedback.ok("the server listens and says on which port")
        port = int(listening.group(1))
        child = spawn_client(client, "127.0.0.1", port)
        greeting = _shows(child, r"(?i)[^\r\n]*welcome[^\r\n]*")
        if greeting:
            feedback.ok(f"the client connected, and the greeting arrived: {greeting.strip()}")
        else:
            feedback.not_yet(
                "the client showed no greeting with the word 'welcome'",
                "the server sends a greeting line as soon as it accepts; the client prints each line",
            )
            return
        child.sendline("hello from the client")
        if host.expect(r"hello from the client"):
            feedback.ok("a line typed in the client appeared on the server")
        else:
            feedback.not_yet(
                "a line typed in the client never appeared on the server",
                "the client sends each typed line with a newline (sendall((text + '\\n').encode())); "
                "the server's receiver thread prints each line it gets",
            )
            return
        child.send("half a li")  # the client is in the middle of typing a line ...
        host.type("hello from the server\n")  # ... when the server's person sends one
        if _shows(child, r"hello from the server"):
            feedback.ok("a line from the server appeared while the client was halfway through typing")
        else:
            feedback.not_yet(
                "while the client was typing, a line from the server did not appear",
                "input() blocks the main thread: receive and print in a second thread",
            )
            return
        child.sendline("ne")
        host.type("half ")  # and now the server's person is halfway through a line
        child.sendline("and back")
        both = host.expect(r"half a line") and host.expect(r"and back")
        host.type("done\n")
        if both and _shows(child, r"half done"):
            feedback.ok("lines went both ways while the other side was typing")
        else:
            feedback.not_yet(
                "with the server halfway through a line, the client's lines did not arrive",
                "the server needs the same two threads: one receives and prints, one reads input()",
            )
            return
        child.sendline("bye")
        client_gone = _client_ended(child)
        server_gone = host.ended()
        if client_gone and server_gone:
            feedback.ok("bye in the client ended both programs")
        else:
            stuck = " and ".join(
                n for n, gone in (("the client", client_gone), ("the server", server_gone)) if not gone
            )
            feedback.not_yet(
                f"after bye, {stuck} kept running",
                "send bye to the other side and leave the input loop; the side that receives bye must "
                "stop too, though its main thread waits in input() (the answer sends itself SIGINT)",
            )
            return
    finally:
        _stop_client(child)
        host.stop()
    _check_dead_client(feedback, server, client)


def _check_dead_client(feedback: Feedback, server: str, client: str) -> None:
    host = Server(server)
    child = None
    try:
        listening = host.expect(r"port (\d+)")
        child = spawn_client(client, "127.0.0.1", int(listening.group(1))) if listening else None
        if child is None or not _shows(child, r"(?i)welcome"):
            feedback.not_yet(
                "a second chat did not start", "the server should start afresh each time it is run"
            )
            return
        os.kill(child.pid, signal.SIGKILL)  # the client's machine is switched off, say
        if host.ended():
            feedback.ok("when the client was killed, the server noticed and ended")
        else:
            feedback.not_yet(
                "the client was killed, and the server kept waiting",
                "recv returns b'' when the other side is gone (the loop over makefile() simply ends): "
                "then say so and end the program",
            )
    finally:
        _stop_client(child)
        host.stop()


@guarded("client in a labchat room")
def check_client_in_room(feedback: Feedback, client: str = "chat_client.py", *, chop: bool = False) -> None:
    """Point ``client`` at a real labchat room: join as ada, read bob's message, answer, leave with bye."""
    if _missing(feedback, client):
        return
    from ..client import ChatClient

    child = None
    with quiet_room(faults={"chop": True} if chop else None, rate=None) as room:
        try:
            child = spawn_client(client, *room.address)
            banner = _shows(child, r"labchat/1 Welcome[^\r\n]*")
            if banner:
                feedback.ok(f"the room's banner arrived {'in pieces, shown ' if chop else ''}whole: {banner}")
            else:
                feedback.not_yet(
                    "the room's first line did not arrive whole",
                    "print whole lines only: read with sock.makefile() (or buffer until b'\\n')",
                )
                return
            child.sendline("ada")  # a first line that is not JSON: labchat talks plain lines from now on
            if _shows(child, r"--> ada joined"):
                feedback.ok("the nick line joined the room: --> ada joined")
            else:
                feedback.not_yet(
                    "typing a nick did not join the room", "send each typed line with '\\n' at the end"
                )
                return
            with ChatClient(*room.address, nick="bob") as bob:
                bob.send("hi ada, can you read this?")
                said = _shows(child, r"bob: hi ada[^\r\n]*")
                if said:
                    feedback.ok(f"a message from bob arrived: {said}")
                else:
                    feedback.not_yet(
                        "bob's message did not show up", "print every line the receiver thread gets"
                    )
                    return
                child.sendline("hello bob!")
                heard = bob.receive_until(lambda e: e.kind == "message" and e.sender == "ada", timeout=WAIT)
                feedback.ok(f"bob got ada's answer: {heard.text}")
                child.sendline("bye")
                left = bob.receive_until(lambda e: e.kind == "leave", timeout=WAIT)
                if left.sender == "ada" and _client_ended(child):
                    feedback.ok("bye left the room and ended the client")
                else:
                    feedback.not_yet(
                        "after bye the client kept running", "leave the input loop after sending bye"
                    )
        finally:
            _stop_client(child)


class ClientInTerminal:
    """A chat client program running in a terminal of its own: type into it, read what it shows.

    ``with ClientInTerminal("chat_client.py", host, port) as ada:`` then ``ada.type("hi")``
    and ``ada.shows("bob:")``, which returns the whole line holding those words (or says
    it did not appear). Closing ends the program if it is still running.
    """

    def __init__(self, program: str, host: str, port: int) -> None:
        self.child = spawn_client(program, host, port)

    def type(self, line: str) -> None:
        """Type ``line`` and press Enter."""
        self.child.sendline(line)

    def shows(self, words: str, timeout: float = WAIT) -> str:
        """The next line on the screen that holds ``words``."""
        found = _shows(self.child, rf"[^\r\n]*{re.escape(words)}[^\r\n]*", timeout)
        return found.strip() if found else f"(nothing holding {words!r} appeared within {timeout:g} s)"

    def ended(self, timeout: float = WAIT) -> bool:
        """Whether the program has ended (waiting for it up to ``timeout`` seconds)."""
        return _client_ended(self.child, timeout)

    def close(self) -> None:
        _stop_client(self.child)

    def __enter__(self) -> ClientInTerminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
