"""Chat panels for Jupyter: ``join(...)`` shows a client panel, ``host(...)`` also runs the server.

from labchat.widgets import host, join
panel = host(port=5050, nick="teacher")       # a ChatServer in this kernel, and its panel
panel = join("127.0.0.1", 5050, nick="ada")   # in another notebook: a client panel

The panels are thin: everything they show comes from ``render.py`` (user text is
always escaped, never HTML) and everything they do goes through ``ChatClient``
and ``ChatServer``; the host's own chat is an ordinary client over loopback.
A client panel whose connection drops reconnects by itself: its status line says
"reconnecting..." until it is back. The rules they keep: widgets are written
under one lock, from whichever thread has news; the input box is written only
by the kernel's main thread; at most ``max_lines`` recent lines are kept and
shown; and re-running a cell closes what its last run started, so there is
never an "Address already in use".
"""

from __future__ import annotations

import atexit
import html
import json
import shlex
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from . import render
from .client import ChatClient, ConnectionClosed, JoinRefused
from .protocol import Event
from .server import DEFAULT_PORT, ChatServer
from .tls import client_context, server_context

# Lines kept and shown: enough to follow a lesson, few enough that redrawing stays fast.
MAX_LINES = 200

# Seconds between two redraws of a transcript at most: a busy room's burst of events is
# drawn once per interval (20 a second), not once per event, so the browser keeps up.
REDRAW_INTERVAL = 0.05

# Every widget write, from any thread, happens under this lock (one comm stream per kernel).
# Order: this lock first, then a panel's own lock, never the other way round.
_WIDGET_LOCK = threading.RLock()

# How each state shows in the status line: a colour class and a mark.
_MARKS = {
    "connected": ("ok", "●"),
    "serving": ("ok", "●"),
    "reconnecting": ("wait", "◌"),
    "failed": ("bad", "✖"),
}

_CSS = """<style>
.lc-panel { max-width: 980px; font-family: var(--jp-ui-font-family, sans-serif); }
.lc-panel .widget-html-content { line-height: 1.45; }
.lc-howto td { padding: 1px 8px 1px 0; }
.lc-title { font-weight: 600; font-size: 1.05em; }
.lc-status-ok { color: #1e8449; } .lc-status-bad { color: #b03a2e; } .lc-status-off { color: #707070; }
.lc-status-wait { color: #b9770e; }
.lc-scroll { height: var(--lc-height, 260px); overflow-y: auto; display: flex;
  flex-direction: column-reverse; border: 1px solid #d0d0d0; border-radius: 4px; padding: 4px 8px;
  background: var(--jp-layout-color0, #fff); }
.lc-event { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.45; }
.lc-time { color: #909090; font-size: 0.85em; }
.lc-join, .lc-leave, .lc-nick { color: #808080; }
.lc-system, .lc-welcome { color: #505050; font-style: italic; }
.lc-private { color: #7d3c98; font-style: italic; }
.lc-bot { color: #117a65; }
.lc-error { color: #b03a2e; font-weight: 600; }
.lc-old { opacity: 0.6; }
.lc-users { border: 1px solid #d0d0d0; border-radius: 4px; padding: 4px 8px; height: var(--lc-height, 260px);
  overflow-y: auto; }
.lc-users li { list-style: none; margin: 0; } .lc-users ul { padding: 0; margin: 2px 0 0 0; }
.lc-howto code { user-select: all; }
</style>"""


class ChatPanel(widgets.VBox):
    """A chat client as a widget: transcript, who is here, a status line, and an input box.

    Public surface, for notebooks and tests:

    - ``client``: the ChatClient (None until connected, or after a failure);
      ``server``: None here, the ChatServer in a ServerPanel.
    - ``address``: (host, port) this panel talks to; ``nick``; ``users``.
    - ``state``: "connected", "reconnecting" (the connection dropped; the client is getting
      back in), "disconnected" or "failed"; ``status``: the status line as text.
    - ``say(text)``: send a line as if typed (a message, ``bye`` or a ``/command``).
    - ``transcript_lines()`` / ``transcript_text()``: the lines shown, as plain text, no times.
    - ``wait_for(text, timeout)``: wait until a line containing ``text`` is shown.
    - ``stop()``: leave the chat, keep the panel on screen; ``close()``: leave and remove it.
    - ``input``, ``send_button``, ``transcript``: the widgets themselves.

    The panel reads its client's events itself (``client.receive()`` finds none).
    """

    def __init__(self, *, nick: str, max_lines: int = MAX_LINES, height: str = "260px") -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self.nick = nick
        self.client: ChatClient | None = None
        self.server: ChatServer | None = None
        self.address: tuple[str, int] | None = None
        self.state = "disconnected"
        self.status = "not connected"
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._html: deque[str] = deque(maxlen=max_lines)
        self._text: deque[str] = deque(maxlen=max_lines)
        self._ended = False  # the client's end has been handled
        self._shown: tuple[str, ...] = ()  # the text lines as last drawn
        self._last_draw = 0.0
        self._redraw: threading.Timer | None = None  # a redraw waiting for its turn
        self._stopping = False  # we are leaving on purpose: keep our own status
        self._height = height
        self._shown_in: str | None = None  # the cell run that last displayed the panel
        self.title = widgets.HTML()
        self.status_line = widgets.HTML()
        self.transcript = widgets.HTML(layout=widgets.Layout(flex="1 1 auto", width="auto"))
        self.user_list = widgets.HTML(layout=widgets.Layout(width="170px", flex="0 0 auto"))
        self.input = widgets.Text(
            placeholder="Type a message and press Enter (bye to leave, /help for commands)",
            continuous_update=False,  # the value arrives whole, on Enter (or when focus leaves)
            layout=widgets.Layout(flex="1 1 auto", width="auto"),
        )
        self.send_button = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        self.input.observe(self._on_input_value, names="value")
        self.send_button.on_click(self._on_send_button)
        super().__init__(children=self._rows())
        self.add_class("lc-panel")
        self._draw()

    # -- public --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    @property
    def users(self) -> list[str]:
        return list(self.client.users) if self.client is not None else []

    def connect(
        self,
        host: str,
        port: int,
        *,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        reconnect: bool = True,
    ) -> bool:
        """Join the room at (host, port); on failure the status line says why. True if joined.

        With ``reconnect`` a dropped connection is re-established by the client, and the
        status line says "reconnecting..." meanwhile.
        """
        self.address = (host, port)
        where = _where(host, port)
        try:
            client = ChatClient(
                host,
                port,
                nick=self.nick,
                token=token,
                ssl_context=ssl_context,
                timeout=timeout,
                reconnect=reconnect,
            )
        except JoinRefused as exc:
            return self._fail(f"could not join {where}: {exc.reason}")
        except (OSError, ValueError, OverflowError) as exc:
            return self._fail(f"could not connect to {where}: {_reason(exc)}")
        with self._lock:
            self.client = client
            self._ended = False
            self._take(client.welcome)
        client.on_event(self._on_client_event)
        client.on_close(self._on_client_close)
        self._pull()
        if client.connected:
            self._set_state("connected", self._connected_status())
        else:
            self._on_client_close(client.close_reason)
        return True

    def say(self, text: str) -> bool:
        """Send one line as if typed. False, and the status line says why, if it could not go."""
        if not isinstance(text, str):
            raise TypeError(f"say() takes text, not {type(text).__name__}")
        if not text.strip():
            return False
        client = self.client
        if client is None or not client.connected:
            self._set_state(self.state, f"not sent: you are not connected ({self.status})")
            return False
        try:
            client.send(text)
        except ConnectionClosed as exc:
            self._set_state("disconnected", f"not sent: {exc}")
            return False
        return True

    def transcript_lines(self) -> list[str]:
        """The lines the panel shows, oldest first, as plain text without times."""
        with self._lock:
            return list(self._text)

    def transcript_text(self) -> str:
        """The lines the panel shows, one per line, as plain text without times."""
        return "\n".join(self.transcript_lines())

    def wait_for(self, text: str, timeout: float = 5.0) -> str:
        """Wait until a line containing ``text`` is drawn in the panel and return it; TimeoutError
        if none is in time."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._shown:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no line containing {text!r} within {timeout:g} seconds")
                self._changed.wait(left)

    def stop(self) -> None:
        """Leave the chat; the panel stays on screen, saying so."""
        self._stopping = True
        client = self.client
        if client is not None and (client.connected or client.reconnecting):
            client.close()
            self._pull()
            self._set_state("disconnected", "you left the chat")
        with self._lock:
            redraw, self._redraw = self._redraw, None
        if redraw is not None:
            redraw.cancel()
            redraw.join()
            self._draw()
        _forget(self)

    def close(self) -> None:
        """Leave the chat and close the widgets (their views disappear)."""
        self.stop()
        for child in self._widgets():
            for part in (getattr(child, "layout", None), getattr(child, "style", None), child):
                if isinstance(part, widgets.Widget):
                    part.close()
        super().close()

    def _ipython_display_(self) -> None:
        """Show the panel once per cell run: ``panel = join(...)`` shows it, so a bare
        ``join(...)`` as the cell's last line must not show it a second time."""
        from IPython.display import display

        run = (_request().get("header") or {}).get("msg_id")
        if run is not None and run == self._shown_in:
            return
        self._shown_in = run
        bundle = self._repr_mimebundle_() if callable(self._repr_mimebundle_) else {"text/plain": repr(self)}
        display(bundle, raw=True)

    def __repr__(self) -> str:  # what nbval compares: no ports, no times
        return f"{type(self).__name__}(nick={self.nick!r}, state={self.state!r})"

    # -- building and drawing ------------------------------------------------------------

    def _rows(self) -> tuple[widgets.Widget, ...]:
        chat = widgets.HBox([self.transcript, self.user_list], layout=widgets.Layout(width="100%"))
        entry = widgets.HBox([self.input, self.send_button], layout=widgets.Layout(width="100%"))
        return (self.title, self.status_line, chat, entry)

    def _widgets(self) -> list[widgets.Widget]:
        out: list[widgets.Widget] = []
        for child in self.children:
            out.append(child)
            out += list(getattr(child, "children", ()))
        return out

    def _title_html(self) -> str:
        return f'<span class="lc-title">labchat: {html.escape(self.nick)}</span>'

    def _draw(self) -> None:
        """Redraw everything from the panel's state (any thread).

        The state is read under the widget lock, so two threads drawing at once cannot
        leave an older picture on top of a newer one.
        """
        with _WIDGET_LOCK:
            with self._lock:
                lines = "".join(self._html)
                shown = tuple(self._text)
                users = self.users
                status, state = self.status, self.state
                self._last_draw = time.monotonic()
            style = f"--lc-height:{html.escape(self._height)}"
            people = "".join(f"<li>{html.escape(render.safe(u))}</li>" for u in users)
            tone, dot = _MARKS.get(state, ("off", "○"))
            self.title.value = _CSS + self._title_html()
            self.status_line.value = f'<span class="lc-status-{tone}">{dot} {html.escape(status)}</span>'
            self.transcript.value = f'<div class="lc-scroll" style="{style}"><div>{lines}</div></div>'
            self.user_list.value = (
                f'<div class="lc-users" style="{style}"><b>Here ({len(users)})</b><ul>{people}</ul></div>'
            )
            live = self.connected
            self.input.disabled = not live
            self.send_button.disabled = not live
            with self._changed:
                self._shown = shown
                self._changed.notify_all()

    def _set_state(self, state: str, status: str) -> None:
        with self._lock:
            self.state, self.status = state, status
        self._draw()

    def _fail(self, why: str) -> bool:
        self._set_state("failed", why)
        return False

    def _connected_status(self) -> str:
        host, port = self.address
        return f"connected to {_where(host, port)} as {self.client.nick}"

    # -- events (the client's receiver thread) --------------------------------------------

    def _take(self, event: Event) -> None:
        """Add one event to the transcript (caller holds the lock)."""
        line = render.html_line(event)
        self._html.append(f'<div class="lc-old">{line}</div>' if event.history else line)
        self._text.append(render.plain(event))
        if event.kind == "nick" and self.client is not None:
            self.nick = self.client.nick

    def _pull(self) -> None:
        """Move every event the client has queued into the transcript, in order, then redraw."""
        client = self.client
        if client is None:
            return
        with self._lock:
            events = client.pending()
            for event in events:
                self._take(event)
        if events:
            self._draw_soon()

    def _draw_soon(self) -> None:
        """Redraw now, or once REDRAW_INTERVAL has passed since the last redraw."""
        with self._lock:
            if self._redraw is not None:
                return  # already due: it will draw these events too
            wait = self._last_draw + REDRAW_INTERVAL - time.monotonic()
            if wait > 0:
                self._redraw = threading.Timer(wait, self._draw_due)
                self._redraw.name = f"labchat-panel-{self.nick}"
                self._redraw.daemon = True
                self._redraw.start()
                return
        self._draw()

    def _draw_due(self) -> None:
        with self._lock:
            if self._redraw is not threading.current_thread():
                return  # cancelled by stop()
            self._redraw = None
        self._draw()

    def _on_client_event(self, event: Event) -> None:
        if event.kind == "system" and event.code in ("reconnecting", "reconnected"):
            self._follow_reconnect(event.code, event.text)
        self._pull()  # the event is already queued; taking the whole queue keeps the order

    def _follow_reconnect(self, code: str, text: str) -> None:
        """The client's own notices: the status line says "reconnecting..." while it lasts."""
        with self._lock:  # drawn by the _pull that follows, with the notice itself
            if self._stopping or self._ended:
                return
            if code == "reconnecting":
                self.state, self.status = "reconnecting", text
            else:
                self.state, self.status = "connected", self._connected_status()

    def _on_client_close(self, reason: str) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self._pull()
        if not self._stopping:
            self._set_state("disconnected", f"disconnected: {reason}")
        else:
            self._draw()

    # -- the input (the kernel's main thread) --------------------------------------------

    def _on_input_value(self, change: dict[str, Any]) -> None:
        text = change["new"]
        if text.strip():
            self._send_input(text)

    def _on_send_button(self, _button: widgets.Button) -> None:
        if self.input.value.strip():
            self._send_input(self.input.value)

    def _send_input(self, text: str) -> None:
        if self.say(text):
            with _WIDGET_LOCK:
                self.input.value = ""


class ServerPanel(ChatPanel):
    """A ChatPanel that first starts a ChatServer in this kernel, and says how others join.

    Besides ChatPanel's surface: ``server`` (the ChatServer), ``address`` (where it
    is bound), ``addresses`` (where others can reach it), ``join_command`` (for a
    terminal), ``join_code`` (for a notebook), ``stop_button``. ``state`` is
    "serving", "stopped" or "failed"; ``stop()`` stops the server.
    """

    def __init__(self, *, nick: str, max_lines: int = MAX_LINES, height: str = "260px") -> None:
        self.howto = widgets.HTML()
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop")
        self.stop_button.on_click(lambda _b: self.stop())
        self.addresses: list[str] = []
        self.join_command = ""
        self.join_code = ""
        self._bind_host = "127.0.0.1"
        super().__init__(nick=nick, max_lines=max_lines, height=height)

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
        """Start the server and join it over loopback; on failure the status line says why."""
        self._bind_host = host
        try:
            if cert is not None or key is not None:
                if cert is None or key is None:
                    raise ValueError("TLS needs both cert= and key=")
                ssl_context = server_context(cert, key)
            server = ChatServer(host, port, ssl_context=ssl_context, **server_options)
            server.start()
        except (OSError, ValueError, OverflowError, ssl.SSLError) as exc:
            return self._fail(f"could not start a server on {_where(host, port)}: {_reason(exc)}")
        self.server = server
        bound = server.address
        self.addresses = _reachable(host, bound[0])
        self._describe_joining(bound[1], server.token, cert, tls=ssl_context is not None)
        loopback = _loopback(host, bound[0])
        own_tls = _own_tls_context(cert) if ssl_context is not None else None
        # The host's own chat lives and ends with the server beside it: nothing to reconnect to.
        if not self.connect(loopback, bound[1], token=server.token, ssl_context=own_tls, reconnect=False):
            failure = self.status
            server.close()
            self.server = None
            return self._fail(f"{failure} (so the server was stopped)")
        self.address = (bound[0], bound[1])
        self._set_state("serving", f"serving on {_where(*bound)} ({self._reach_note()})")
        return True

    def stop(self) -> None:
        """Leave the chat and stop the server (every client is told); the panel stays."""
        self._stopping = True
        super().stop()
        server = self.server
        if server is not None and server.running:
            server.close("the host stopped the server")
            self._set_state("stopped", "stopped: the server is closed")
        with _WIDGET_LOCK:
            self.stop_button.disabled = True

    @property
    def connected(self) -> bool:
        return super().connected and self.server is not None and self.server.running

    def _rows(self) -> tuple[widgets.Widget, ...]:
        head = widgets.HBox(
            [self.title, self.stop_button],
            layout=widgets.Layout(width="100%", justify_content="space-between", align_items="center"),
        )
        return (head, self.status_line, self.howto, *super()._rows()[2:])

    def _widgets(self) -> list[widgets.Widget]:
        return [*super()._widgets(), self.howto, self.stop_button]

    def _title_html(self) -> str:
        return f'<span class="lc-title">labchat host: {html.escape(self.nick)}</span>'

    def _reach_note(self, port: int | None = None) -> str:
        """Who can join; with ``port``, also what to do about it."""
        if _is_loopback(self._bind_host):
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
            extra += f", token={_quoted(token)}"
        if tls:
            flags += " --tls" + (f" --cafile {shlex.quote(Path(cert).name)}" if cert else "")
            extra += f", cafile={_quoted(Path(cert).name)}" if cert else ", tls=True"
        self.join_command = f"labchat join {_hostport(first, port)} --nick NAME{flags}"
        self.join_code = f'join({_quoted(first)}, {port}, nick="NAME"{extra})'
        rows = "".join(
            f"<tr><td>{html.escape(label)}</td><td><code>{html.escape(code)}</code></td></tr>"
            for label, code in (
                ("terminal", self.join_command),
                ("notebook", "from labchat.widgets import join; " + self.join_code),
                ("netcat", f"nc {first} {port}" if not tls else "(TLS: use labchat join)"),
            )
        )
        note = html.escape(self._reach_note(port))
        with _WIDGET_LOCK:
            self.howto.value = f'<div class="lc-howto"><b>How to join</b>: {note}<table>{rows}</table></div>'


# -- the two entry points ---------------------------------------------------------------


def join(
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    nick: str,
    token: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    tls: bool = False,
    cafile: str | Path | None = None,
    timeout: float = 10.0,
    reconnect: bool = True,
    max_lines: int = MAX_LINES,
    height: str = "260px",
    show: bool = True,
) -> ChatPanel:
    """Join a labchat room and show its panel. ``host`` may be ``"host:port"`` when ``port`` is None.

    ``tls=True`` (or a ``cafile``, the host's certificate) speaks TLS; ``ssl_context`` gives your own.
    Errors (unreachable, nick taken, wrong token) show in the panel, not as a traceback.
    A dropped connection is re-established, the panel saying "reconnecting..." meanwhile
    (``reconnect=False``: the panel says "disconnected" instead).
    The panel shows itself as the cell's output (``show=False`` leaves that to you).
    """
    host, port = _split(host, port)
    if ssl_context is None and (tls or cafile):
        ssl_context = client_context(cafile)
    panel = ChatPanel(nick=nick, max_lines=max_lines, height=height)
    _replace(("join", _cell_key()), panel, lambda old: False)
    panel.connect(host, port, token=token, ssl_context=ssl_context, timeout=timeout, reconnect=reconnect)
    if show:
        _show(panel)
    return panel


def host(
    port: int = DEFAULT_PORT,
    nick: str = "host",
    *,
    host: str = "127.0.0.1",
    token: str | None = None,
    bot: Any = True,
    history: int = 20,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    ssl_context: ssl.SSLContext | None = None,
    log: Any = None,
    max_lines: int = MAX_LINES,
    height: str = "260px",
    show: bool = True,
    **server_options: Any,
) -> ServerPanel:
    """Start a labchat server in this kernel, join it as ``nick``, and show the host panel.

    Only this machine can join unless you choose ``host="0.0.0.0"`` (every interface).
    ``port=0`` picks a free port. ``cert``/``key`` (or a server ``ssl_context``) speak TLS;
    ``token``, ``bot``, ``history``, ``log`` and any other keyword go to ChatServer.
    Re-running the cell stops the server the last run started before binding again.
    The panel shows itself as the cell's output (``show=False`` leaves that to you).
    """
    panel = ServerPanel(nick=nick, max_lines=max_lines, height=height)

    def same_port(old: ChatPanel) -> bool:
        bound = old.address if isinstance(old, ServerPanel) else None
        return bool(port) and bound is not None and bound[1] == port

    _replace(("host", _cell_key()), panel, same_port)
    panel.start(
        host,
        port,
        cert=cert,
        key=key,
        ssl_context=ssl_context,
        token=token,
        bot=bot,
        history=history,
        log=log,
        **server_options,
    )
    if show:
        _show(panel)
    return panel


# -- what is running in this kernel ------------------------------------------------------

_LIVE: dict[object, ChatPanel] = {}
_LIVE_LOCK = threading.Lock()


def live_panels() -> list[ChatPanel]:
    """The panels of this kernel that have not been stopped."""
    with _LIVE_LOCK:
        return list(_LIVE.values())


def _replace(key: tuple, panel: ChatPanel, also: Callable[[ChatPanel], bool]) -> None:
    """Close the panel the same cell started last time (and any ``also`` picks); remember this one."""
    same_cell = key[1] is not None
    with _LIVE_LOCK:
        gone = [k for k, p in _LIVE.items() if (same_cell and k == key) or also(p)]
        old = [_LIVE.pop(k) for k in gone]
        _LIVE[key if same_cell else (key[0], id(panel))] = panel
    for p in old:
        p.close()


def _forget(panel: ChatPanel) -> None:
    with _LIVE_LOCK:
        for k in [k for k, v in _LIVE.items() if v is panel]:
            del _LIVE[k]


def _request() -> dict:
    """The kernel request now running (an execute_request from a front end), or {} outside a kernel."""
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        return (kernel.get_parent("shell") if kernel is not None else None) or {}
    except Exception:
        return {}


def _cell_key() -> str | None:
    """The running cell: its id if the front end sent one, else its code; None outside a kernel."""
    request = _request()
    if not request:
        return None
    cell = (request.get("metadata") or {}).get("cellId")
    return f"cell:{cell}" if cell else f"code:{(request.get('content') or {}).get('code', '')}"


def _show(panel: ChatPanel) -> None:
    """Display the panel as the running cell's output, when there is a kernel to show it."""
    if _request():
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


# -- small helpers -----------------------------------------------------------------------


def _split(host: str, port: int | None) -> tuple[str, int]:
    if port is not None:
        return host, port
    name, sep, number = host.rpartition(":")
    if sep and number.isdigit() and name:
        return name.strip("[]"), int(number)
    return host, DEFAULT_PORT


def _quoted(text: str) -> str:
    """A Python string literal in double quotes, as a person would type it."""
    return json.dumps(text, ensure_ascii=False)


def _where(host: str, port: int) -> str:
    return _hostport(host, port)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: BaseException) -> str:
    """A short, readable cause for a failed connect or bind."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running, on that port?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return str(exc) or "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror[0].lower() + exc.strerror[1:]
        if exc.errno == 98 or "in use" in text:
            text += " (another program has this port; try another, or port=0)"
        return text
    return str(exc) or type(exc).__name__


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _loopback(bind_host: str, bound: str) -> str:
    """Where the host's own client connects: loopback for a wildcard bind, else the bound address."""
    if bind_host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bind_host == "::":
        return "::1"
    return bound


def _reachable(bind_host: str, bound: str) -> list[str]:
    """Addresses others can use: this machine's own addresses when bound to every interface."""
    if bind_host not in ("", "0.0.0.0", "::"):
        return [bound]
    found: list[str] = []
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET, socket.SOCK_STREAM)
        found = [info[4][0] for info in infos]
    except OSError:
        pass
    try:  # the address of the default route; a UDP connect sends no packet
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            found.insert(0, probe.getsockname()[0])
    except OSError:
        pass
    outside = [a for a in dict.fromkeys(found) if not a.startswith("127.") and a != "0.0.0.0"]
    return [*outside, "127.0.0.1"]


def _own_tls_context(cert: str | Path | None) -> ssl.SSLContext:
    """TLS for the host's own loopback connection to the server it just started."""
    if cert is not None:
        context = client_context(cert)  # the chain is checked; the name is ours by construction
        context.check_hostname = False
        return context
    # Only a server context was given, so there is no certificate to check against; this
    # connection goes from this process to its own listening socket over loopback.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


__all__ = ["MAX_LINES", "ChatPanel", "ServerPanel", "host", "join", "live_panels"]
