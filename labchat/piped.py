"""The plain line mode of ``labchat join``: lines in from stdin, events out as lines of text.

Used when stdin is not a terminal (``printf 'hi\\nbye\\n' | labchat join``), so
a script can chat. Each input line is sent, at a pace the server accepts; each
event is printed as one line the moment it arrives. The rule it keeps: nothing
is lost at the end. When input ends the client says ``/quit`` and waits for
the server's goodbye, so every line was delivered and every answer printed
before the process exits. A reconnect does not lose lines either: its notices
are printed like any event, and the lines that come meanwhile wait until the
client is back (Ctrl-C still leaves at once).

One input line is one message: a script's lines are not joined. A message of
several lines that arrives is printed as the terminal shows it, each further
line indented under the first.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from typing import TextIO

from .client import ChatClient, ConnectionClosed, Reconnecting
from .console import Pace, WireTap
from .protocol import Event, is_farewell
from .render import terminal, wire

# Seconds between two looks at Ctrl-C while waiting for a reconnect (a signal handler may
# only set a flag, so the main thread looks for it).
_CTRL_C_POLL = 0.2

# Markers the stdin reader and the event printer put in the main thread's queue.
_END_OF_INPUT = object()
_CONNECTION_ENDED = object()


class LineChat:
    """Runs one client in plain line mode; ``run()`` returns the exit status."""

    def __init__(
        self, client: ChatClient, fd: int, out: TextIO, *, color: bool = False, wire: WireTap | None = None
    ) -> None:
        self.client = client
        self.wire = wire  # show every line as it travels, among the rendered ones
        self._printing = threading.Lock()
        self.fd = fd  # where lines come from: stdin's file descriptor
        self.out = out
        self.color = color
        self.left = False  # the server said goodbye to us: we left on purpose
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._interrupted = False
        self._out_broken = False

    def run(self) -> int:
        """Chat until input ends, ``bye`` is sent or the connection ends; 0 if we left."""
        try:  # Ctrl-C leaves politely, like the end of input, wherever it strikes
            previous = signal.signal(signal.SIGINT, self._on_ctrl_c)
        except ValueError:  # not the main thread: leave Ctrl-C as it is
            previous = None
        try:
            return self._run()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _run(self) -> int:
        if self.wire is not None:
            self.wire.attach(self._show_wire)
        self._show(self.client.welcome)
        printer = threading.Thread(target=self._print_events, name="labchat-printer", daemon=True)
        reader = threading.Thread(target=self._read_lines, name="labchat-stdin", daemon=True)
        printer.start()
        reader.start()  # a daemon: a blocked read never holds the process
        pace = Pace()
        while True:
            item = self._inbox.get()
            if item is _CONNECTION_ENDED:
                break
            if item is _END_OF_INPUT or self._interrupted:
                self._leave()
                break
            if not item.strip():
                continue
            pace.wait()
            if not self._send(item):
                if self._interrupted:
                    self._leave()
                break
        printer.join()
        return 0 if self.left else 1

    def _send(self, line: str) -> bool:
        """Send a line, after waiting out a reconnect if need be; False if the chat is over."""
        while True:
            try:
                self.client.send(line)
                return True
            except Reconnecting:
                if not self._wait_connected():
                    return False
            except ConnectionClosed:
                return False

    def _wait_connected(self) -> bool:
        """True once the client is connected; False if it ended, or Ctrl-C came first."""
        while not self._interrupted:
            if self.client.wait_connected(timeout=_CTRL_C_POLL):
                return True
            if not self.client.reconnecting:
                return False
        return False

    def _leave(self) -> None:
        """Leave politely: once back, if the connection is being re-established (unless Ctrl-C)."""
        if not self._interrupted:
            self._wait_connected()
        if self.client.connected or self.client.reconnecting:  # not already cut off by the server
            self.left = True
            self.client.close()

    def _on_ctrl_c(self, number: int, frame: object) -> None:
        self._interrupted = True
        self._inbox.put(_END_OF_INPUT)  # SimpleQueue.put is safe in a signal handler

    @property
    def reason(self) -> str:
        """Why the connection ended, for the one line on stderr."""
        return self.client.close_reason or "the connection ended"

    # -- threads -------------------------------------------------------------------------

    def _read_lines(self) -> None:
        # Plain os.read, not a buffered file: a daemon thread blocked inside a
        # buffered read can abort the interpreter when the process exits.
        pending = b""
        try:
            while chunk := os.read(self.fd, 65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace").removesuffix("\r")
                    self._inbox.put(line)
                    if is_farewell(line):
                        return  # the server will close; more input would go nowhere
        except OSError:
            pass
        if pending:
            self._inbox.put(pending.decode("utf-8", "replace").removesuffix("\r"))
        self._inbox.put(_END_OF_INPUT)

    def _print_events(self) -> None:
        while True:
            try:
                event = self.client.receive()
            except ConnectionClosed:
                break
            if event.kind == "system" and event.code == "goodbye":
                self.left = True
            self._show(event)
        self._inbox.put(_CONNECTION_ENDED)

    def _show_wire(self, direction: str, line: bytes) -> None:
        self._print(wire(direction, line, color=self.color))

    def _show(self, event: Event) -> None:
        self._print(terminal(event, color=self.color, nick=self.client.nick))

    def _print(self, text: str) -> None:
        if self._out_broken:
            return
        try:
            with self._printing:  # three threads print here: each line goes out whole
                self.out.write(text + "\n")
                self.out.flush()
        except (BrokenPipeError, ValueError):  # the reader went away: keep chatting quietly
            self._out_broken = True
