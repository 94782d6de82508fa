"""The plain line mode of ``labchat join``: lines in from stdin, events out as lines of text.

Used when stdin is not a terminal (``printf 'hi\\nbye\\n' | labchat join``), so
a script can chat. Each input line is sent, at a pace the server accepts; each
event is printed as one line the moment it arrives. The rule it keeps: nothing
is lost at the end. When input ends the client says ``/quit`` and waits for
the server's goodbye, so every line was delivered and every answer printed
before the process exits.
"""

from __future__ import annotations

import queue
import threading
from typing import BinaryIO, TextIO

from .client import ChatClient, ConnectionClosed
from .console import Pace, is_farewell
from .protocol import Event
from .render import terminal

# Markers the stdin reader and the event printer put in the main thread's queue.
_END_OF_INPUT = object()
_CONNECTION_ENDED = object()


class LineChat:
    """Runs one client in plain line mode; ``run()`` returns the exit status."""

    def __init__(self, client: ChatClient, lines: BinaryIO, out: TextIO, *, color: bool = False) -> None:
        self.client = client
        self.lines = lines
        self.out = out
        self.color = color
        self.left = False  # the server said goodbye to us: we left on purpose
        self._inbox: queue.Queue[object] = queue.Queue()
        self._out_broken = False

    def run(self) -> int:
        """Chat until input ends, ``bye`` is sent or the connection ends; 0 if we left."""
        self._show(self.client.welcome)
        printer = threading.Thread(target=self._print_events, name="labchat-printer", daemon=True)
        reader = threading.Thread(target=self._read_lines, name="labchat-stdin", daemon=True)
        printer.start()
        reader.start()  # a daemon: a blocked read never holds the process
        pace = Pace()
        try:
            while True:
                item = self._inbox.get()
                if item is _CONNECTION_ENDED:
                    break
                if item is _END_OF_INPUT:
                    self.client.close()
                    self.left = True
                    break
                if not item.strip():
                    continue
                pace.wait()
                try:
                    self.client.send(item)
                except ConnectionClosed:
                    break
        except KeyboardInterrupt:
            self.client.close()
            self.left = True
        printer.join()
        return 0 if self.left else 1

    @property
    def reason(self) -> str:
        """Why the connection ended, for the one line on stderr."""
        return self.client.close_reason or "the connection ended"

    # -- threads -------------------------------------------------------------------------

    def _read_lines(self) -> None:
        try:
            for raw in self.lines:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._inbox.put(line)
                if is_farewell(line):
                    return  # the server will close; more input would go nowhere
        except (OSError, ValueError):
            pass
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

    def _show(self, event: Event) -> None:
        if self._out_broken:
            return
        try:
            print(terminal(event, color=self.color), file=self.out, flush=True)
        except (BrokenPipeError, ValueError):  # the reader went away: keep chatting quietly
            self._out_broken = True
