"""The host panel's view of its server's warnings: who was refused, what a bot raised, faults on.

A server writes what goes wrong to the ``labchat.server`` log from its own threads. In a
notebook nothing may print from those threads into whatever cell is running, so the host
panel shows the latest few warnings itself, under its table. The log does not say which
server wrote a line, so a kernel that runs two servers shows both servers' warnings (the
exercises' checks keep theirs out of it: ``exercises.servers.quiet_room``). The rules it keeps: a warning
is only kept (a short line, made safe) on the thread that logged it, which may hold the
server's locks, so that thread takes no widget lock; a timer thread of its own draws them,
at most ``SHOWN`` at a time; and the handler is on the log only while the panel serves.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections import deque

import ipywidgets as widgets

from ..text import safe
from .registry import WIDGET_LOCK

SHOWN = 5  # the latest warnings on show; the server's log, if kept, has them all
LOGGER = "labchat.server"


class ServerLog(logging.Handler):
    """Warnings of the servers in this kernel, kept and drawn into ``widget`` while attached."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.WARNING)
        self.widget = widgets.HTML()
        self.widget.layout.display = "none"  # until there is something to show
        self._name = name
        self._lines: deque[str] = deque(maxlen=SHOWN)
        self._kept = threading.Condition()  # guards _lines and _due; notified when drawn
        self._due: threading.Timer | None = None
        self._drawn: tuple[str, ...] = ()

    def attach(self) -> None:
        logging.getLogger(LOGGER).addHandler(self)

    def detach(self) -> None:
        logging.getLogger(LOGGER).removeHandler(self)
        with self._kept:
            due, self._due = self._due, None
        if due is not None:
            due.cancel()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            line = f"{stamp} {safe(record.getMessage())[:300]}"
        except Exception:
            self.handleError(record)
            return
        with self._kept:
            self._lines.append(line)
            if self._due is not None:
                return  # a draw is coming: it takes this line too
            self._due = threading.Timer(0.0, self._draw)
            self._due.name = f"labchat-server-log-{self._name}"
            self._due.daemon = True
            self._due.start()

    def wait_for(self, text: str, timeout: float = 5.0) -> str:
        """Wait until a warning on show contains ``text``; return it (TimeoutError if not in time)."""
        deadline = time.monotonic() + timeout
        with self._kept:
            while True:
                for line in self._drawn:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no server warning showed {text!r} within {timeout:g} seconds")
                self._kept.wait(left)

    def _draw(self) -> None:
        with self._kept:
            if self._due is not threading.current_thread():
                return  # detached meanwhile
            self._due = None
            lines = tuple(self._lines)
        rows = "".join(f"<div>{html.escape(line)}</div>" for line in lines)
        with WIDGET_LOCK:
            head = f"<b>server warnings</b> (this kernel's servers, the latest {SHOWN})"
            self.widget.value = f'<div class="lc-log">{head}{rows}</div>'
            self.widget.layout.display = ""
        with self._kept:
            self._drawn = lines
            self._kept.notify_all()
