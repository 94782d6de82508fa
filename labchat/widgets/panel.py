"""The client panel: a ChatClient as a widget, with its transcript, who is here, a status line and an input.

from labchat.widgets import join
panel = join("127.0.0.1", 5050, nick="ada")

The panel is thin: what it shows comes from ``render.py`` (user text is always
escaped, never HTML) and what it does goes through ``ChatClient``. A panel whose
connection drops reconnects by itself, its status line saying "reconnecting..."
until it is back. The rules it keeps: widgets are written under one lock, from
whichever thread has news; the input box is written only by the kernel's main
thread; a message the chat would refuse for its size is never sent (the status
line says why, and the typed text stays in the box); at most ``max_lines``
recent lines are kept and shown (and as many lines of the wire, when it is on
show), and a burst of events is drawn at most once per ``REDRAW_INTERVAL``.
"""

from __future__ import annotations

import html
import json
import ssl
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from .. import render
from ..client import ChatClient, ConnectionClosed, JoinRefused
from ..protocol import Event
from ..server import ChatServer
from ..tls import client_context
from .addresses import port_number, quoted, reason, where
from .compose import fenced, refusal, typed_enter
from .registry import WIDGET_LOCK, forget, request
from .style import CSS, MARKS, OTHER_MARK
from .view import CodeBlock, code_of, event_html, mentions
from .wire import WireLog

# Lines kept and shown: enough to follow a lesson, few enough that redrawing stays fast.
MAX_LINES = 200

# Seconds between two redraws of a transcript at most: a busy room's burst of events is
# drawn once per interval (20 a second), not once per event, so the browser keeps up.
REDRAW_INTERVAL = 0.05

# Code blocks kept for ``%chat_paste``: more than a lesson shares, bounded all the same.
MAX_CODE_BLOCKS = 100

# The input box grows with what is in it, up to this many rows, then scrolls.
MAX_INPUT_ROWS = 10

WIRE_TIP = (
    "show each line as it travels, under the event it carried: from the first byte if the panel "
    "was made with wire=True, else from the moment you tick this"
)


class ChatPanel(widgets.VBox):
    """A chat client as a widget: transcript, who is here, a status line, and an input box.

    Public surface, for notebooks and tests:

    - ``client``: the ChatClient (None until connected, or after a failure);
      ``server``: None here, the ChatServer in a ServerPanel.
    - ``address``: (host, port) this panel talks to; ``nick``; ``users``.
    - ``state``: "connected", "reconnecting" (the connection dropped; the client is getting
      back in), "disconnected" or "failed"; ``status``: the status line as text.
    - ``say(text)``: send a line as if typed (a message, ``bye`` or a ``/command``);
      ``share(code, language)``: send code as a fenced block. Either returns False, the
      status line saying why until a line goes, for what is not sent (too long, say).
    - ``code_blocks()``: the code blocks seen in the chat, oldest first, numbered as shown.
    - ``unread_mentions``: messages naming you with @ since you last used the panel
      (typed in it or clicked one of its buttons); ``mark_read()``.
    - ``transcript_lines()`` / ``transcript_text()``: the lines shown, as plain text, no times.
    - ``wait_for(text, timeout)``: wait until a line containing ``text`` is shown.
    - ``stop()``: leave the chat, keep the panel on screen; ``close()``: leave and remove it.
    - ``wire_box``: the "show the wire" checkbox (``wire=True`` ticks it from the first byte:
      banner, hello, welcome); ``wire_lines()``: the wire lines shown, as text, in order.
      An operator token in a line sent shows as ``(hidden)``.
    - ``input``, ``send_button``, ``read_button``, ``transcript``: the widgets themselves.

    The input is a ``Textarea``: Enter at the end sends, Enter inside an open ```` ``` ````
    block is a new line, and a paste stays whole in the box (see ``compose.py``).

    The panel reads its client's events itself (``client.receive()`` finds none).
    """

    def __init__(
        self, *, nick: str, max_lines: int = MAX_LINES, height: str = "260px", wire: bool = False
    ) -> None:
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
        self._html: deque[tuple[int, str]] = deque(maxlen=max_lines)  # (event number, its HTML)
        self._taken = 0  # events taken so far: the next one is numbered one more
        self._wire = WireLog(max_lines)
        self._wire_on = wire  # lines are kept only while the wire is on show
        self._hidden: tuple[bytes, ...] = ()  # the operator token, as sent: a screen may be projected
        self._text: deque[str] = deque(maxlen=max_lines)
        self._ended = False  # the client's end has been handled
        self._shown: tuple[str, ...] = ()  # the text lines as last drawn
        self._last_draw = 0.0
        self._redraw: threading.Timer | None = None  # a redraw waiting for its turn
        self._stopping = False  # we are leaving on purpose: keep our own status
        self._height = height
        self._shown_in: str | None = None  # the cell run that last displayed the panel
        self._codes: deque[CodeBlock] = deque(maxlen=MAX_CODE_BLOCKS)
        self._code_count = 0  # code blocks seen so far: the next one is numbered one more
        self._unread = 0
        self._sent_box = ""  # the box's text as it was last sent, until the next change
        self._refused: tuple[str, str] | None = None  # (the status before, why a line was not sent)
        self.title = widgets.HTML()
        self.read_button = widgets.Button(
            description="mark read",
            tooltip="you were mentioned; clear the count",
            layout=widgets.Layout(width="auto", display="none"),
        )
        self.read_button.add_class("lc-read")
        self.status_line = widgets.HTML()
        self.transcript = widgets.HTML(layout=widgets.Layout(flex="1 1 auto", width="auto"))
        self.user_list = widgets.HTML(layout=widgets.Layout(width="170px", flex="0 0 auto"))
        self.input = widgets.Textarea(
            placeholder="Type a message and press Enter; ``` opens a code block (bye leaves, /help helps)",
            continuous_update=True,  # every change reaches the kernel, which reads Enter from the text
            rows=2,
            layout=widgets.Layout(flex="1 1 auto", width="auto"),
        )
        self.input.add_class("lc-input")
        self.wire_box = widgets.Checkbox(
            value=wire,
            description="show the wire",
            tooltip=WIRE_TIP,
            indent=False,
            layout=widgets.Layout(width="auto", margin="2px 18px 0 0"),
        )
        self.wire_box.add_class("lc-wire-box")
        self.wire_box.observe(self._on_wire_box_value, names="value")
        self.send_button = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        self.input.observe(self._on_input_value, names="value")
        self.send_button.on_click(self._on_send_button)
        self.read_button.on_click(lambda _b: self.mark_read())
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
        tls: bool = False,
        cafile: str | Path | None = None,
        timeout: float = 10.0,
        reconnect: bool = True,
        op_token: str | None = None,
    ) -> bool:
        """Join the room at (host, port); on failure the status line says why. True if joined.

        ``port`` may be its digits ("5050"). ``tls=True`` (or a ``cafile``, the certificate
        to trust) speaks TLS unless ``ssl_context`` is given. With ``reconnect`` a dropped
        connection is re-established by the client, and the status line says
        "reconnecting..." meanwhile. ``op_token`` (the server's) joins as an operator, who
        may /kick, /mute and /unmute.
        """
        place = where(host, port)
        try:
            port = port_number(port)
        except ValueError as exc:
            return self._fail(f"could not connect to {place}: {exc}")
        self.address = (host, port)
        self._hidden = _sent_forms(op_token) if op_token else ()
        if ssl_context is None and (tls or cafile):
            try:
                ssl_context = client_context(cafile)
            except OSError as exc:  # a file that is not there, or (ssl.SSLError) holds no certificate
                what = f"the certificate {quoted(str(cafile))}" if cafile else "this machine's certificates"
                why = "it holds no PEM certificate" if isinstance(exc, ssl.SSLError) else reason(exc)
                return self._fail(f"could not connect to {place}: cannot read {what} ({why})")
        try:
            client = ChatClient(
                host,
                port,
                nick=self.nick,
                token=token,
                ssl_context=ssl_context,
                timeout=timeout,
                reconnect=reconnect,
                op_token=op_token,
                wire=self._on_wire,
            )
        except JoinRefused as exc:
            return self._fail(f"could not join {place}: {exc.reason}")
        except (OSError, ValueError, OverflowError) as exc:
            return self._fail(f"could not connect to {place}: {reason(exc)}")
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
        """Send one line as if typed. False, and the status line says why, if it could not go
        (a message longer than the chat takes is not sent at all)."""
        if not isinstance(text, str):
            raise TypeError(f"say() takes text, not {type(text).__name__}")
        if not text.strip():
            return False
        why = refusal(text)
        if why is not None:  # the room would refuse it: say so here, before it goes
            return self._refuse(why)
        client = self.client
        if client is None or not client.connected:
            return self._refuse(f"not sent: you are not connected ({self._plain_status()})")
        try:
            client.send(text)
        except ConnectionClosed as exc:
            self._set_state("disconnected", f"not sent: {exc}")
            return False
        self._unrefuse()
        return True

    def share(self, code: str, language: str = "python") -> bool:
        """Send ``code`` to the chat as a fenced block in ``language``; False (the status line
        says why) if it could not go."""
        text = fenced(code, language)
        if not code.strip():
            return self._refuse("not sent: there is no code to share")
        return self.say(text)  # which refuses a block longer than the chat takes

    def code_blocks(self) -> list[CodeBlock]:
        """The code blocks seen in the chat (the newest ``MAX_CODE_BLOCKS``), oldest first."""
        with self._lock:
            return list(self._codes)

    @property
    def unread_mentions(self) -> int:
        return self._unread

    def mark_read(self) -> None:
        """Clear the count of unread mentions in the title."""
        with self._lock:
            if not self._unread:
                return
            self._unread = 0
        self._draw()

    def transcript_lines(self) -> list[str]:
        """The lines the panel shows, oldest first, as plain text without times."""
        with self._lock:
            return list(self._text)

    def wire_lines(self) -> list[str]:
        """The wire lines kept for the panel (none while the wire is not on show), in order."""
        with self._lock:
            return self._wire.lines()

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

    def stop(self, *, restarting: bool = False) -> None:
        """Leave the chat; the panel stays on screen, saying so.

        ``restarting`` says the cell that made the panel is being run again; a client
        panel leaves all the same (a host panel tells its guests to come back).
        """
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
        forget(self)

    def close(self, *, restarting: bool = False) -> None:
        """Leave the chat and close the widgets (their views disappear); ``restarting`` as for stop()."""
        self.stop(restarting=restarting)
        for child in self._widgets():
            for part in (getattr(child, "layout", None), getattr(child, "style", None), child):
                if isinstance(part, widgets.Widget):
                    part.close()
        super().close()

    def _ipython_display_(self) -> None:
        """Show the panel once per cell run: ``panel = join(...)`` shows it, so a bare
        ``join(...)`` as the cell's last line must not show it a second time."""
        from IPython.display import display

        run = (request().get("header") or {}).get("msg_id")
        if run is not None and run == self._shown_in:
            return
        self._shown_in = run
        bundle = self._repr_mimebundle_() if callable(self._repr_mimebundle_) else {"text/plain": repr(self)}
        display(bundle, raw=True)

    def __repr__(self) -> str:  # what nbval compares: no ports, no times
        return f"{type(self).__name__}(nick={self.nick!r}, state={self.state!r})"

    # -- building and drawing ------------------------------------------------------------

    def _rows(self) -> tuple[widgets.Widget, ...]:
        return (self._head(), self.status_line, *self._body(), self._options())

    def _head(self) -> widgets.Widget:
        """The title, and the button that clears the count of unread mentions beside it."""
        return widgets.HBox([self.title, self.read_button], layout=widgets.Layout(align_items="center"))

    def _body(self) -> tuple[widgets.Widget, ...]:
        """The transcript beside who is here, and the input beside its Send button."""
        chat = widgets.HBox([self.transcript, self.user_list], layout=widgets.Layout(width="100%"))
        entry = widgets.HBox(
            [self.input, self.send_button], layout=widgets.Layout(width="100%", align_items="flex-end")
        )
        return (chat, entry)

    def _options(self) -> widgets.Widget:
        """The row of switches under the input."""
        return widgets.HBox(list(self._switches()), layout=widgets.Layout(width="100%"))

    def _switches(self) -> tuple[widgets.Widget, ...]:
        return (self.wire_box,)

    def _widgets(self) -> list[widgets.Widget]:
        out: list[widgets.Widget] = []
        for child in self.children:
            out.append(child)
            out += list(getattr(child, "children", ()))
        return out

    def _title_html(self) -> str:
        return f'<span class="lc-title">labchat: {html.escape(self.nick)}</span>'

    def _unread_html(self, count: int) -> str:
        if not count:
            return ""
        what = "mention" if count == 1 else "mentions"
        return f' <span class="lc-unread" title="messages naming you with @">@ {count} unread {what}</span>'

    def _draw(self) -> None:
        """Redraw everything from the panel's state (any thread).

        The state is read under the widget lock, so two threads drawing at once cannot
        leave an older picture on top of a newer one.
        """
        with WIDGET_LOCK:
            with self._lock:
                lines = self._wire.merged(self._html) if self._wire_on else "".join(h for _, h in self._html)
                shown = tuple(self._text)
                users = self.users
                status, state = self.status, self.state
                unread = self._unread
                self._last_draw = time.monotonic()
            style = f"--lc-height:{html.escape(self._height)}"
            people = "".join(f"<li>{html.escape(render.safe(u))}</li>" for u in users)
            tone, dot = MARKS.get(state, OTHER_MARK)
            self.title.value = CSS + self._title_html() + self._unread_html(unread)
            self.read_button.layout.display = "" if unread else "none"
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

    def _refuse(self, why: str) -> bool:
        """The status line says why a line was not sent, until one is (then it says what it said)."""
        with self._lock:
            self._refused = (self._plain_status(), why)
            self.status = why
        self._draw()
        return False

    def _plain_status(self) -> str:
        """The status line without a refusal still on it (caller may hold the lock)."""
        refused = self._refused
        return refused[0] if refused is not None and self.status == refused[1] else self.status

    def _unrefuse(self) -> None:
        """A line went: a refusal still on the status line has had its say."""
        with self._lock:
            if self._refused is None:
                return
            self.status, self._refused = self._plain_status(), None
        self._draw()

    def _connected_status(self) -> str:
        host, port = self.address
        return f"connected to {where(host, port)} as {self.client.nick}"

    # -- events (the client's receiver thread) --------------------------------------------

    def _take(self, event: Event) -> None:
        """Add one event to the transcript (caller holds the lock)."""
        blocks = []
        for language, code in code_of(event):
            self._code_count += 1
            blocks.append(CodeBlock(self._code_count, event.sender, language, code))
        self._codes.extend(blocks)
        if not event.history and event.sender != self.nick and mentions(event, self.nick):
            self._unread += 1
        self._taken += 1
        self._html.append((self._taken, event_html(event, nick=self.nick, blocks=blocks)))
        if self._wire_on:
            self._wire.took(self._taken, event)
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

    def _draw_soon(self, *, elsewhere: bool = False) -> None:
        """Redraw now, or once REDRAW_INTERVAL has passed since the last redraw.

        ``elsewhere``: always on the redraw timer's thread, never this one (a caller that
        may hold a client's lock must not wait for the widget lock).
        """
        with self._lock:
            if self._redraw is not None:
                return  # already due: it will draw these events too
            wait = self._last_draw + REDRAW_INTERVAL - time.monotonic()
            if wait > 0 or elsewhere:
                self._redraw = threading.Timer(max(0.0, wait), self._draw_due)
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
            self._set_state(*self._chat_ended(reason))
        else:
            self._draw()

    def _chat_ended(self, reason: str) -> tuple[str, str]:
        """The state and status once the client has ended by itself (not by stop())."""
        return "disconnected", f"disconnected: {reason}"

    def _on_wire(self, direction: str, line: bytes) -> None:
        """A line as it travels (from the thread that sent or received it)."""
        with self._lock:
            if not self._wire_on:
                return
            if direction == "->":
                for form in self._hidden:
                    line = line.replace(form, b"(hidden)")
            now = self._wire.add(direction, line)
        if now:  # a frame that carries an event is drawn with that event, a moment later
            self._draw_soon(elsewhere=True)  # the client may hold its send lock while it taps

    # -- the input (the kernel's main thread) --------------------------------------------

    def _on_wire_box_value(self, change: dict[str, Any]) -> None:
        """Show the wire from now on, or hide it (and forget its lines)."""
        with self._lock:
            self._wire_on = bool(change["new"])
            self._wire.clear()
        self._draw()

    def _on_input_value(self, change: dict[str, Any]) -> None:
        old, new = change["old"], change["new"]
        if new:
            self.mark_read()  # typing in the panel is using it
        sent, self._sent_box = self._sent_box, ""
        if sent and new.startswith(sent) and new != sent:
            # Keys typed before the browser heard that the box was cleared: the message went
            # already, so only they stay in the box. They were typed into what the person saw
            # as an empty box, so the Enter rule reads them so: an Enter among them sends too.
            old, new = "", new[len(sent) :]
            with WIDGET_LOCK:
                self.input.value = new
        text = typed_enter(old, new)
        if text is not None and text.strip():
            self._send_input(text)
        elif text is not None:
            self._clear_input()  # Enter in an empty box: nothing to send
        else:
            rows = min(MAX_INPUT_ROWS, max(2, new.count("\n") + 1))
            if rows != self.input.rows:
                with WIDGET_LOCK:
                    self.input.rows = rows

    def _on_send_button(self, _button: widgets.Button) -> None:
        self.mark_read()
        text = self.input.value.rstrip("\n")
        if text.strip():
            self._send_input(text)

    def _send_input(self, text: str) -> None:
        box = self.input.value
        if self.say(text):
            self._clear_input()
            self._sent_box = box  # set after the clear, whose own change would forget it
        elif box.endswith("\n") and box[:-1] == text:
            # Not sent (the status line says why): what was typed stays, without the newline
            # of the Enter that tried to send it, ready to be cut down and sent again.
            with WIDGET_LOCK:
                self.input.value = text

    def _clear_input(self) -> None:
        with WIDGET_LOCK:
            self.input.value = ""
            self.input.rows = 2


def _sent_forms(token: str) -> tuple[bytes, ...]:
    """The ways ``token`` can appear in a line this side sends: as it is and as a JSON string
    (``"`` and ``\\`` escaped, as the hello carries it), the longer first."""
    forms = {token, json.dumps(token, ensure_ascii=False)[1:-1], json.dumps(token)[1:-1]}
    return tuple(sorted((form.encode("utf-8") for form in forms if form), key=len, reverse=True))
