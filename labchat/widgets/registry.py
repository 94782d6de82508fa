"""What this kernel holds once: the panels it runs, and the lock every widget write takes.

A kernel runs cells again and again; this module is what makes that safe. Each
panel is remembered under the cell that made it (the front end's cell id, or the
cell's code), so re-running the cell closes the old panel, its client and its
server, before the new one binds: never an "Address already in use". At kernel
shutdown every panel still live leaves politely and its server stops.

The rule it keeps: a panel is in the registry from the moment its cell made it
until it is stopped, and only there; nothing here draws or touches a socket.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .panel import ChatPanel

# Every widget write, from any thread, happens under this lock (one comm stream per kernel).
# Order: this lock first, then a panel's own lock, never the other way round.
WIDGET_LOCK = threading.RLock()

_LIVE: dict[object, ChatPanel] = {}
_LIVE_LOCK = threading.Lock()


def live_panels() -> list[ChatPanel]:
    """The panels of this kernel that have not been stopped, oldest first."""
    with _LIVE_LOCK:
        return list(_LIVE.values())


def current_panel() -> ChatPanel | None:
    """The panel this kernel's code speaks through: the newest client panel still in the
    chat, else the newest host panel still serving, else None."""
    panels = live_panels()[::-1]
    guests = [p for p in panels if p.server is None and (p.connected or p.state == "reconnecting")]
    hosts = [p for p in panels if p.server is not None and p.connected]
    return (guests or hosts or [None])[0]


def replace(key: tuple, panel: ChatPanel, also: Callable[[ChatPanel], bool]) -> None:
    """Close the panel the same cell started last time (and any ``also`` picks); remember this one.

    The old panel is closed as restarting: a host's guests are told to come back.
    """
    same_cell = key[1] is not None
    with _LIVE_LOCK:
        gone = [k for k, p in _LIVE.items() if (same_cell and k == key) or also(p)]
        old = [_LIVE.pop(k) for k in gone]
        _LIVE[key if same_cell else (key[0], id(panel))] = panel
    for p in old:
        p.close(restarting=True)


def forget(panel: ChatPanel) -> None:
    """A stopped panel leaves the registry."""
    with _LIVE_LOCK:
        for k in [k for k, v in _LIVE.items() if v is panel]:
            del _LIVE[k]


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
