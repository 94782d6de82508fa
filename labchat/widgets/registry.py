"""What this kernel holds once: the panels it runs, and the lock every widget write takes.

A kernel runs cells again and again; this module is what makes that safe. Each
panel is remembered under the cell that made it (the front end's cell id, or the
cell's code) and the run of that cell that made it (its request's message id),
so re-running the cell closes the panels its earlier runs made, their clients
and their servers, before the new one binds: never an "Address already in use".
Every panel one run makes stays (two ``join`` calls in one cell, or a list of
them, are that many panels). At kernel shutdown every panel still live leaves
politely and its server stops.

The rule it keeps: a panel is in the registry from the moment its cell made it
until it is stopped, and only there; nothing here draws or touches a socket.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .panel import ChatPanel

# Every widget write, from any thread, happens under this lock (one comm stream per kernel).
# Order: this lock first, then a panel's own lock, never the other way round.
WIDGET_LOCK = threading.RLock()


class _Entry(NamedTuple):
    key: tuple  # (what made it, the cell), the cell None outside a kernel
    run: str | None  # the message id of the cell run that made it
    panel: ChatPanel


_LIVE: list[_Entry] = []  # oldest first
_LIVE_LOCK = threading.Lock()


def live_panels() -> list[ChatPanel]:
    """The panels of this kernel that have not been stopped, oldest first."""
    with _LIVE_LOCK:
        return [entry.panel for entry in _LIVE]


def current_panel() -> ChatPanel | None:
    """The panel this kernel's code speaks through: the newest client panel still in the
    chat, else the newest host panel still serving, else None."""
    panels = live_panels()[::-1]
    guests = [p for p in panels if p.server is None and (p.connected or p.state == "reconnecting")]
    hosts = [p for p in panels if p.server is not None and p.connected]
    return (guests or hosts or [None])[0]


def replace(key: tuple, panel: ChatPanel, also: Callable[[ChatPanel], bool]) -> None:
    """Close the panels ``key`` (what, cell) made in an earlier run of the cell (and any ``also``
    picks); remember this one with the run now going.

    The old panels are closed as restarting: a host's guests are told to come back.
    """
    same_cell = key[1] is not None
    run = (request().get("header") or {}).get("msg_id")

    def earlier(entry: _Entry) -> bool:
        return same_cell and entry.key == key and (run is None or entry.run != run)

    with _LIVE_LOCK:
        old = [entry.panel for entry in _LIVE if earlier(entry) or also(entry.panel)]
        _LIVE[:] = [entry for entry in _LIVE if not any(entry.panel is p for p in old)]
        _LIVE.append(_Entry(key, run, panel))
    for p in old:
        p.close(restarting=True)


def forget(panel: ChatPanel) -> None:
    """A stopped panel leaves the registry."""
    with _LIVE_LOCK:
        _LIVE[:] = [entry for entry in _LIVE if entry.panel is not panel]


def request() -> dict:
    """The kernel request now running (an execute_request from a front end), or {} outside a kernel."""
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        return (kernel.get_parent("shell") if kernel is not None else None) or {}
    except Exception:
        return {}


def cell_key() -> str | None:
    """The running cell: its id if the front end sent one, else its code; None outside a kernel."""
    running = request()
    if not running:
        return None
    cell = (running.get("metadata") or {}).get("cellId")
    return f"cell:{cell}" if cell else f"code:{(running.get('content') or {}).get('code', '')}"


def show(panel: ChatPanel) -> None:
    """Display the panel as the running cell's output, when there is a kernel to show it."""
    if request():
        from IPython.display import display

        display(panel)


@atexit.register
def _stop_all() -> None:
    """At kernel shutdown: leave politely and stop every server this kernel started."""
    for panel in live_panels():
        try:
            panel.stop()
        except Exception:
            pass
