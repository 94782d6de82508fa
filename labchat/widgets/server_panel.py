"""The host panel: a ChatPanel that first starts a ChatServer in this kernel, and says how others join.

from labchat.widgets import host
panel = host(port=5050, nick="teacher")

The host's own chat is an ordinary client over loopback, so the host takes the
same path as every guest, holding the server's operator token (so /kick, /mute
and /unmute work from the host panel). A table shows the server's connections,
looked at about once a second by a daemon thread (``labchat-connections-NICK``)
and redrawn only when what it shows changed; the thread ends when the panel
stops, is closed or its cell is run again, or when the table is hidden. The
rules it keeps: only this machine can join unless the host binds beyond
loopback on purpose, and the panel says so; the own chat lives and ends with the
server beside it (it never reconnects): ``bye`` typed by the host is Stop, and a
server closed from Python stops the panel too (its table's thread ends); should
the own chat end otherwise, the panel says the room still serves until Stop; a
failed start leaves no server running and no panel registered.
"""

from __future__ import annotations

import html
import shlex
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..hostaddr import hostport, is_loopback
from ..protocol import is_farewell
from ..server import ChatServer
from ..tls import own_server_context, server_context
from .addresses import loopback, port_number, quoted, reachable, reason, where
from .connections import Ticker, table_html
from .panel import MAX_LINES, ChatPanel
from .registry import WIDGET_LOCK, forget
from .server_log import ServerLog


class ServerPanel(ChatPanel):
    """A ChatPanel that first starts a ChatServer in this kernel, and says how others join.

    Besides ChatPanel's surface: ``server`` (the ChatServer), ``address`` (where it
    is bound), ``addresses`` (where others can reach it), ``join_command`` (for a
    terminal), ``join_code`` (for a notebook), ``stop_button``. ``state`` is
    "serving", "stopped" or "failed"; ``stop()`` stops the server, and so does ``say("bye")``.

    ``server_log``: the server's latest warnings, shown under the table (``wait_for(text)``).

    ``connections_table``: the live table of connections (``connections_box`` shows or
    hides it; hidden, nothing watches the server); ``refresh_connections()`` looks at the
    server now and redraws the table if it changed (True if it did);
    ``wait_for_table(text, timeout)`` waits until the table shows ``text``; ``clock``: what
    "for 3 min" counts from (``time.time``; a test may give its own).
    """

    def __init__(
        self, *, nick: str, max_lines: int = MAX_LINES, height: str = "260px", wire: bool = False
    ) -> None:
        self.howto = widgets.HTML()
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop")
        self.stop_button.on_click(lambda _b: self.stop())
        self.addresses: list[str] = []
        self.join_command = ""
        self.join_code = ""
        self._bind_host = "127.0.0.1"
        self.connections_table = widgets.HTML(layout=widgets.Layout(width="100%", overflow="auto"))
        self.connections_box = widgets.Checkbox(
            value=True,
            description="show connections",
            tooltip="who is connected, from where, since when, and the bytes and lines each has moved",
            indent=False,
            layout=widgets.Layout(width="auto", margin="2px 18px 0 0"),
        )
        self.connections_box.observe(self._on_connections_box_value, names="value")
        self._ticker: Ticker | None = None
        self._table = ""  # the table as last drawn
        self._table_drawn = threading.Condition()
        self.clock = time.time
        self.server_log = ServerLog(nick)  # its warnings, which may not print into a cell
        super().__init__(nick=nick, max_lines=max_lines, height=height, wire=wire)

    def start(
        self,
        host: str,
        port: int,
        *,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **server_options: Any,
    ) -> bool:
        """Start the server and join it over loopback; on failure the status line says why (and the
        panel leaves the registry: nothing of it runs). ``port`` may be its digits ("5050")."""
        self._bind_host = host
        try:
            number = port_number(port, server=True)
            if cert is not None or key is not None:
                if cert is None or key is None:
                    raise ValueError("TLS needs both cert= and key=")
                ssl_context = server_context(cert, key)
            server = ChatServer(host, number, ssl_context=ssl_context, **server_options)
            self.server_log.attach()  # before start, which warns if faults are on
            server.start()
        except (OSError, ValueError, OverflowError, ssl.SSLError) as exc:
            return self._fail_start(f"could not start a server on {where(host, port)}: {reason(exc)}")
        self.server = server
        bound = server.address
        self.addresses = reachable(host, bound[0])
        self._describe_joining(bound[1], server.token, cert, tls=ssl_context is not None)
        own_host = loopback(host, bound[0])
        own_tls = own_server_context(cert) if ssl_context is not None else None
        # The host's own chat lives and ends with the server beside it: nothing to reconnect to.
        # It holds the server's operator token, so the host may /kick, /mute and /unmute.
        own = {"token": server.token, "ssl_context": own_tls, "op_token": server.op_token}
        if not self.connect(own_host, bound[1], reconnect=False, **own):
            failure = self.status
            server.close()
            self.server = None
            return self._fail_start(f"{failure} (so the server was stopped)")
        self.address = (bound[0], bound[1])
        self._set_state("serving", f"serving on {where(*bound)} ({self._reach_note()})")
        self._watch(self.connections_box.value)
        return True

    def stop(self, *, restarting: bool = False) -> None:
        """Leave the chat and stop the server (every client is told); the panel stays.

        With ``restarting`` (the cell is being run again) clients are told the room is
        coming back, so those that reconnect join the new server when it is up.
        """
        if restarting:
            self._close_room("the host is restarting the server", "stopped: the cell was run again", True)
        else:
            self._close_room("the host stopped the server", "stopped: the server is closed")

    def say(self, text: str) -> bool:
        """As ChatPanel.say, but ``bye`` (or ``/quit``) from the host stops the server, as Stop does."""
        if isinstance(text, str) and is_farewell(text) and self.connected:
            # The host saying goodbye ends the lesson: that is what an instructor who types bye
            # means, and a room left serving would keep its guests with no host and nobody to
            # moderate (the own chat, the operator, never comes back). So bye is Stop.
            self._close_room("the host stopped the server", "stopped: you said bye, which closes the room")
            return True
        return super().say(text)

    def _close_room(self, told: str, status: str, restarting: bool = False) -> None:
        """Leave the chat, close the server telling every client ``told``, then say ``status``."""
        self._wind_down()
        server = self.server
        if server is not None and server.running:
            server.close(told, restarting=restarting)
            self._set_state("stopped", status)
            self.refresh_connections()  # none left
        self._wound_down()

    def _wind_down(self) -> None:
        """Leave the own chat and stop watching the server: the panel's threads end."""
        self._stopping = True
        self._watch(False)  # the table's thread ends: there is nothing left to watch
        super().stop()

    def _wound_down(self) -> None:
        """The server is gone: its warnings are no longer listened for, and Stop has done its work."""
        self.server_log.detach()
        with WIDGET_LOCK:
            self.stop_button.disabled = True

    def _chat_ended(self, reason: str) -> tuple[str, str]:
        """The own chat ended, not by stop() (the client's receiver thread)."""
        server = self.server
        if server is not None and server.running:
            # Another operator removed it, or its connection broke: the guests keep their room
            # (stopping it under a whole class for the host's own line would be worse), and
            # the panel says so rather than looking like the room is gone.
            return "serving", f"your own chat ended ({reason}); the room still serves, and Stop closes it"
        # The server was closed from Python (panel.server.close()): the panel stops with it, as
        # stop() would stop it (its threads end, it leaves the registry), the server aside.
        self._wind_down()
        self._wound_down()
        return "stopped", "stopped: the server was closed"

    def _fail_start(self, why: str) -> bool:
        """A start that failed: the status line says why, and nothing is left registered."""
        self.server_log.detach()
        self._fail(why)
        forget(self)
        return False

    @property
    def connected(self) -> bool:
        return super().connected and self.server is not None and self.server.running

    def refresh_connections(self) -> bool:
        """Look at the server's connections now; redraw the table if it changed. True if it did."""
        server = self.server
        if server is None:
            return False
        with WIDGET_LOCK:  # read and drawn under one lock: an older look never covers a newer one
            table = table_html(server.connections(), self.clock())
            if table == self._table:
                return False
            self._table = table
            self.connections_table.value = table
        with self._table_drawn:
            self._table_drawn.notify_all()
        return True

    def wait_for_table(self, text: str, timeout: float = 5.0) -> str:
        """Wait until the table as drawn contains ``text``; return the table's HTML (TimeoutError if not
        in time)."""
        deadline = time.monotonic() + timeout
        with self._table_drawn:
            while text not in self._table:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the table did not show {text!r} within {timeout:g} seconds")
                self._table_drawn.wait(left)
            return self._table

    def _watch(self, on: bool) -> None:
        """Start watching the server's connections (drawn now, then about once a second), or stop."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
        serving = self.server is not None and self.server.running and not self._stopping
        if on and serving:
            self.refresh_connections()
            self._ticker = Ticker(f"labchat-connections-{self.nick}", self.refresh_connections)

    def _on_connections_box_value(self, change: dict[str, Any]) -> None:
        with WIDGET_LOCK:
            self.connections_table.layout.display = "" if change["new"] else "none"
        self._watch(bool(change["new"]))

    def _rows(self) -> tuple[widgets.Widget, ...]:
        return (
            self._head(),
            self.status_line,
            self.howto,
            *self._body(),
            self.connections_table,
            self.server_log.widget,
            self._options(),
        )

    def _switches(self) -> tuple[widgets.Widget, ...]:
        return (*super()._switches(), self.connections_box)

    def _head(self) -> widgets.Widget:
        self._title_box = super()._head()
        return widgets.HBox(
            [self._title_box, self.stop_button],
            layout=widgets.Layout(width="100%", justify_content="space-between", align_items="center"),
        )

    def _widgets(self) -> list[widgets.Widget]:
        return [
            *super()._widgets(),
            *self._title_box.children,
            self.howto,
            self.stop_button,
            self.connections_box,
        ]

    def _title_html(self) -> str:
        return f'<span class="lc-title">labchat host: {html.escape(self.nick)}</span>'

    def _reach_note(self, port: int | None = None) -> str:
        """Who can join; with ``port``, also what to do about it."""
        if is_loopback(self._bind_host):
            advice = '; host(host="0.0.0.0", ...) lets others in' if port else ""
            return "only this machine can join" + advice
        outside = ", ".join(self.addresses)
        return f"others join at {outside}" + (f", if no firewall blocks port {port}" if port else "")

    def _describe_joining(self, port: int, token: str | None, cert: str | Path | None, *, tls: bool) -> None:
        first = self.addresses[0]
        flags = ""
        extra = ""
        if token:
            flags += f" --token {shlex.quote(token)}"
            extra += f", token={quoted(token)}"
        if tls:
            flags += " --tls" + (f" --cafile {shlex.quote(Path(cert).name)}" if cert else "")
            extra += f", cafile={quoted(Path(cert).name)}" if cert else ", tls=True"
        self.join_command = f"labchat join {hostport(first, port)} --nick NAME{flags}"
        self.join_code = f'join({quoted(first)}, {port}, nick="NAME"{extra})'
        rows = "".join(
            f"<tr><td>{html.escape(label)}</td><td><code>{html.escape(code)}</code></td></tr>"
            for label, code in (
                ("terminal", self.join_command),
                ("notebook", "from labchat.widgets import join; " + self.join_code),
                ("netcat", f"nc {first} {port}" if not tls else "(TLS: use labchat join)"),
            )
        )
        note = html.escape(self._reach_note(port))
        with WIDGET_LOCK:
            self.howto.value = f'<div class="lc-howto"><b>How to join</b>: {note}<table>{rows}</table></div>'
