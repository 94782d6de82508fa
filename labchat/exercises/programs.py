"""Checks for the classic two-program chat: the learner's chat_server.py and chat_client.py, run for real.

The rule it keeps: the programs run as a person runs them. The server is a
subprocess whose typing comes through a pipe; the client runs in a pseudo-terminal
(pexpect), so its ``input()`` reads a real terminal. Every wait has a deadline, and
every process the check started is ended before it returns. Everything each program
prints is kept, so when one crashed the check says so first: the error and the line
of the learner's program that raised it, never the whole traceback.
"""

from __future__ import annotations

import io
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

    def printed(self) -> str:
        """All it has printed so far; once it has ended, all it ever printed (waiting for the last of it)."""
        ended = self.proc.poll() is not None
        deadline = time.monotonic() + WAIT
        while True:
            try:
                if ended:  # the pipe is closing: the reader thread is putting the last lines in
                    line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
                else:
                    line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self.lines.put(None)
                break
            self.seen.append(line)
        return "\n".join(self.seen)

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
    child = pexpect.spawn(
        sys.executable,
        ["-u", program, host, str(port)],
        encoding="utf-8",
        timeout=WAIT,
        env=env,
        dimensions=(24, 200),
    )
    child.logfile_read = io.StringIO()  # everything its terminal showed, to find a traceback in
    return child


def _client_printed(child: Any) -> str:
    """All the client's terminal has shown so far (all of it, once the program has ended)."""
    import pexpect

    deadline = time.monotonic() + WAIT
    try:
        while time.monotonic() < deadline:
            child.read_nonblocking(
                65536, timeout=0 if child.isalive() else max(0.0, deadline - time.monotonic())
            )
    except (pexpect.TIMEOUT, pexpect.EOF, OSError):
        pass
    return child.logfile_read.getvalue().replace("\r\n", "\n")


# The last line of a traceback: the exception's name, and its message if it has one.
_ERROR = re.compile(r"^((?:\w+\.)*\w*(?:Error|Exception|Interrupt|Exit))(?::\s?(.*))?$")
_FRAME = re.compile(r'^\s*File "(.+)", line (\d+)')


def crash_in(printed: str, program: str) -> tuple[str, str, bool] | None:
    """The error a program's last traceback ends with, where in ``program``, and whether in a thread.

    ('TypeError: a bytes-like object is required, not 'str'', 'line 33: conn.sendall(...)',
    False), read from what the program printed; None if it printed no traceback. A
    traceback names the frames, innermost last, so the last frame in ``program`` itself
    is the learner's line.
    """
    lines = printed.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    frames = [i for i, line in enumerate(lines) if _FRAME.match(line)]
    if not starts and not frames:
        return None
    first = starts[-1] if starts else frames[0]
    errors = [i for i in range(first, len(lines)) if _ERROR.match(lines[i])]
    if not errors:
        return None
    error = lines[errors[0]].strip()
    in_thread = first > 0 and lines[first - 1].startswith("Exception in thread")
    theirs = [
        i
        for i in frames
        if first <= i < errors[0] and Path(_FRAME.match(lines[i]).group(1)).name == Path(program).name
    ]
    if not theirs:
        return error, "", in_thread
    at = theirs[-1]
    number = _FRAME.match(lines[at]).group(2)
    code = lines[at + 1].strip() if at + 1 < len(lines) and not _FRAME.match(lines[at + 1]) else ""
    return error, f"line {number}{': ' + code if code else ''}", in_thread


def _crash_hint(error: str, program: str) -> str:
    if "bytes-like object is required, not 'str'" in error:
        return (
            "a socket sends bytes, not str: encode the text before sending it, "
            "as in sock.sendall((text + '\\n').encode())"
        )
    if error.startswith("KeyboardInterrupt"):
        return (
            "the receiver thread wakes input() with SIGINT, which arrives as KeyboardInterrupt: "
            "catch it around the input loop (except KeyboardInterrupt) and end the chat there"
        )
    if error.startswith("SyntaxError") or error.startswith("IndentationError"):
        return "Python could not read the program: fix that line, then run the %%writefile cell again"
    return (
        f"fix that line, then run the %%writefile cell again (python {Path(program).name} 0 in a "
        "terminal shows the whole traceback)"
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


class _Chat:
    """The two programs of one chat as the check runs them, and what to say when one of them crashed."""

    def __init__(self, feedback: Feedback, server: str, client: str) -> None:
        self.feedback, self.server_name, self.client_name = feedback, server, client
        self.host = Server(server)
        self.child: Any = None

    def not_yet(self, what: str, hint: str) -> None:
        """Say what went wrong; but if a program crashed, that comes first, and instead."""
        if not self.crashed():
            self.feedback.not_yet(what, hint)

    def crashed(self) -> bool:
        programs = [(self.server_name, self.host.printed())]
        if self.child is not None:
            programs.append((self.client_name, _client_printed(self.child)))
        for program, printed in programs:
            found = crash_in(printed, program)
            if found:
                error, where, in_thread = found
                who = f"a thread of {Path(program).name}" if in_thread else Path(program).name
                at = f", at {where}" if where else ""
                self.feedback.not_yet(f"{who} crashed: {error}{at}", _crash_hint(error, program))
                return True
        return False

    def close(self) -> None:
        _stop_client(self.child)
        self.host.stop()


@guarded("two-program chat")
def check_chat_programs(
    feedback: Feedback, server: str = "chat_server.py", client: str = "chat_client.py"
) -> None:
    """Run ``python SERVER 0`` and ``python CLIENT 127.0.0.1 PORT``; type on both sides; bye; a dead peer."""
    if _missing(feedback, server, client):
        return
    chat = _Chat(feedback, server, client)
    host = chat.host
    try:
        listening = host.expect(r"port (\d+)")
        if not listening:
            chat.not_yet(
                f"{server} did not say which port it listens on (its last words: {host.seen[-1:]!r})",
                "print(f'listening on port {listener.getsockname()[1]}', flush=True) once bound: "
                "started with port 0, the system picks a free port, and only your server knows which",
            )
            return
        feedback.ok("the server listens and says on which port")
        port = int(listening.group(1))
        child = chat.child = spawn_client(client, "127.0.0.1", port)
        greeting = _shows(child, r"(?i)[^\r\n]*welcome[^\r\n]*")
        if _printed_bytes(feedback, "the greeting", greeting, ", or print(data.decode('utf-8'))"):
            return
        if greeting:
            feedback.ok(f"the client connected, and the greeting arrived: {greeting.strip()}")
        else:
            chat.not_yet(
                "the client showed no greeting with the word 'welcome'",
                "the server sends a greeting line as soon as it accepts; the client prints each line",
            )
            return
        child.sendline("hello from the client")
        if host.expect(r"hello from the client"):
            feedback.ok("a line typed in the client appeared on the server")
        elif "Thread(" not in Path(client).read_text(encoding="utf-8", errors="replace"):
            chat.not_yet(
                "a line typed in the client never appeared on the server",
                "the client starts no thread, so it receives in its main thread and never gets to "
                "input(): run receive in a second one, threading.Thread(target=receive, args=(sock,), "
                "daemon=True).start()",
            )
            return
        else:
            chat.not_yet(
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
            chat.not_yet(
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
            chat.not_yet(
                "with the server halfway through a line, the client's lines did not arrive",
                "the server needs the same two threads: one receives and prints, one reads input()",
            )
            return
        child.sendline("bye")
        client_gone = _client_ended(child)
        server_gone = host.ended()
        if client_gone and server_gone:
            if chat.crashed():  # ended, but with a traceback: not the end the exercise asks for
                return
            feedback.ok("bye in the client ended both programs")
        else:
            stuck = " and ".join(
                n for n, gone in (("the client", client_gone), ("the server", server_gone)) if not gone
            )
            chat.not_yet(
                f"after bye, {stuck} kept running",
                "send bye to the other side and leave the input loop; the side that receives bye must "
                "stop too, though its main thread waits in input() (the answer sends itself SIGINT)",
            )
            return
    finally:
        chat.close()
    _check_dead_client(feedback, server, client)


# bytes printed as they are: b'...' (or b"..."), at the start or after a space, a colon, a bracket.
_BYTES_SHOWN = re.compile(r"(?:^|[\s:=(\[,])b['\"]")


def _printed_bytes(feedback: Feedback, what: str, shown: str | None, more: str = "") -> bool:
    """Say "not yet" if the client printed ``what`` as bytes (b'...' rather than the text)."""
    if not shown or _BYTES_SHOWN.search(shown) is None:
        return False
    feedback.not_yet(
        f"the client printed {what} as bytes: {shown.strip()}",
        "decode what arrives before you print it: read text lines with "
        f"sock.makefile('r', encoding='utf-8'){more}",
    )
    return True


def _check_dead_client(feedback: Feedback, server: str, client: str) -> None:
    chat = _Chat(feedback, server, client)
    host = chat.host
    child = None
    try:
        listening = host.expect(r"port (\d+)")
        child = chat.child = spawn_client(client, "127.0.0.1", int(listening.group(1))) if listening else None
        if child is None or not _shows(child, r"(?i)welcome"):
            chat.not_yet("a second chat did not start", "the server should start afresh each time it is run")
            return
        os.kill(child.pid, signal.SIGKILL)  # the client's machine is switched off, say
        if host.ended():
            chat.child = None  # the client was killed on purpose: only the server's crash counts
            if chat.crashed():
                return
            feedback.ok("when the client was killed, the server noticed and ended")
        else:
            chat.child = None  # the client was killed on purpose: only the server's crash counts now
            chat.not_yet(
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
            banner = _shows(child, r"[^\r\n]*labchat/1 Welcome[^\r\n]*")
            if banner and _printed_bytes(feedback, "the room's banner", banner.strip()[:60]):
                return
            if banner:
                banner = banner.strip()
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
                said = _shows(child, r"[^\r\n]*bob: hi ada[^\r\n]*")
                if said and _printed_bytes(feedback, "bob's message", said.strip()):
                    return
                if said:
                    said = said[said.index("bob: hi ada") :]
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
