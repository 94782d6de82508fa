"""The interactive terminal chat: a prompt to type in, with the room's events printed above it.

A printer thread takes each event from the ``ChatClient`` and prints it while
the person types: prompt_toolkit's stdout proxy draws it above the input
line and redraws the half-typed text intact. The rule it keeps: everything on
screen that came from the network went through ``render.terminal``, which
turns control characters into visible text, so no one else can move the
cursor, clear the screen or retitle the window. ``bye``, ``/quit``, Ctrl-D and
Ctrl-C all leave politely and wait for the server's goodbye.

What the person types is one message, however many lines it holds: Enter
sends it, Esc Enter (or Alt Enter) starts a new line in it, and a paste
(bracketed by the terminal) goes in whole, newlines and indentation included,
to be sent as one message with the next Enter. A message that mentions
``@nick`` (this person) shows the mention in bold and rings the terminal's
bell, unless the chat is quiet.

While the client reconnects, its notices print like any other and the prompt
says ``(reconnecting)``; a line typed meanwhile is not sent, and the screen says
so (the up arrow brings it back to send again).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.patch_stdout import StdoutProxy

from .client import ChatClient, ConnectionClosed, Reconnecting
from .console import Pace, WireTap
from .protocol import Event, is_farewell
from .render import CHAT_KINDS, mentions, nick_colour, safe, terminal
from .render import wire as render_wire
from .room import HELP, OPERATOR_HELP
from .text import fence_open

# How long to wait for the server's goodbye after asking to leave.
GOODBYE_WAIT = 5.0

# Output waiting to go above the prompt is written at most this often. prompt_toolkit's
# default (0.2 s) showed each message about 200 ms late; 0.05 s still redraws calmly.
REDRAW_INTERVAL = 0.05


def _commands(lines: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({word for line in lines for word in line.split() if word.startswith("/")}))


# The room's commands, for Tab: every /word its /help lists (an operator's /help lists more).
COMMANDS = _commands(HELP)
OPERATOR_COMMANDS = _commands(HELP + OPERATOR_HELP)


class _ChatCompleter(Completer):
    """Tab completes a /command at the start of a message, and the nick of someone here anywhere.

    A word that starts with ``@`` completes to ``@nick``, to mention them.
    """

    def __init__(self, client: ChatClient) -> None:
        self.client = client

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        word = before.split()[-1] if before and not before[-1].isspace() else ""
        if not word:
            return
        others = [nick for nick in self.client.users if nick != self.client.nick]
        if word == before and word.startswith("/"):
            commands = OPERATOR_COMMANDS if self.client.moderates else COMMANDS
            options = [f"{command} " for command in commands]
        elif word.startswith("@"):
            options = [f"@{nick}" for nick in others]
        else:
            options = others
        for option in options:
            if option.lower().startswith(word.lower()) and option != word:
                yield Completion(option, start_position=-len(word))


def _keys() -> KeyBindings:
    """Enter sends what was typed; Esc Enter (Alt Enter sends the same keys) starts a new line.

    Inside a ```` ``` ```` block that is still open, Enter at the end is a new line, and the
    Enter after the closing ```` ``` ```` sends the block: the panel's rule (``text.fence_open``).
    """
    keys = KeyBindings()

    @keys.add("enter")
    def _send(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.document.is_cursor_at_the_end and fence_open(buffer.text):
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    @keys.add("escape", "enter")
    def _new_line(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    # The chat asks for no mouse reports, so what reads as one is colour codes pasted
    # without bracketed paste (ESC [ 3 1 m): prompt_toolkit's own mouse handler fails on
    # those with a traceback over the chat. They are let go, as the other unknown keys are.
    @keys.add(Keys.Vt100MouseEvent)
    def _not_a_mouse(event: KeyPressEvent) -> None:
        pass

    return keys


def _continuation(width: int, line_number: int, wrap_count: int) -> str:
    """What stands before each further line of a message being typed: dots as wide as the prompt."""
    return "." * (width - 1) + " " if width > 1 else ""


@contextmanager
def _above_the_prompt() -> Iterator[None]:
    """Like prompt_toolkit's ``patch_stdout(raw=True)``: print() goes above the prompt."""
    with StdoutProxy(raw=True, sleep_between_writes=REDRAW_INTERVAL) as proxy:
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = proxy
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


class TerminalChat:
    """Runs one client at an interactive prompt; ``run()`` returns the exit status.

    ``stop()`` may be called from any thread or a signal handler: the prompt
    ends and the client leaves as if the person had typed ``bye``.
    """

    def __init__(
        self, client: ChatClient, *, color: bool = False, quiet: bool = False, wire: WireTap | None = None
    ) -> None:
        self.client = client
        self.color = color
        self.quiet = quiet  # no bell when someone mentions you
        self.wire = wire  # show every line as it travels, above the rendered chat
        self._printing = threading.Lock()
        self.left = False  # we left on purpose (or the server said goodbye to us)
        self._ended = threading.Event()  # the connection is over
        self._stopping = threading.Event()  # someone asked us to leave
        self._input: PromptSession[str] | None = None

    def run(self) -> int:
        """Chat until the person leaves or the connection ends; 0 if they left."""
        self._input = PromptSession(
            erase_when_done=True,
            completer=_ChatCompleter(self.client),
            complete_while_typing=False,
            multiline=True,  # a message may hold lines; Enter still sends (see _keys)
            key_bindings=_keys(),
            prompt_continuation=_continuation,
        )
        printer = threading.Thread(target=self._print_events, name="labchat-printer", daemon=True)
        with _above_the_prompt():
            if self.wire is not None:
                self.wire.attach(self._show_wire)
            self._show(self.client.welcome)
            printer.start()
            try:
                self._prompt_loop(self._input)
            except (KeyboardInterrupt, EOFError):  # Ctrl-C, Ctrl-D
                self.left = True
            if self.left or self._stopping.is_set():
                self.left = True
                self.client.close()  # says /quit and waits for the server to hang up
            printer.join(GOODBYE_WAIT)
        return 0 if self.left else 1

    @property
    def reason(self) -> str:
        """Why the connection ended, for the one line on stderr."""
        return self.client.close_reason or "the connection ended"

    def stop(self) -> None:
        """Leave as soon as possible (safe from any thread and from a signal handler)."""
        self._stopping.set()
        self._wake()

    # -- the prompt (main thread) -------------------------------------------------------

    def _prompt_loop(self, line_input: PromptSession[str]) -> None:
        pace = Pace()
        while not (self._ended.is_set() or self._stopping.is_set()):
            text = line_input.prompt(self._prompt_text(), pre_run=self._exit_if_done)
            if text is None:  # woken: the connection ended or stop() was called
                continue
            if not text.strip():
                continue
            pace.wait()  # one message, however many lines: a paste is one message
            try:
                self.client.send(text)
            except Reconnecting:
                if is_farewell(text):  # nobody to say goodbye to: just go
                    self.left = True
                    return
                self._show(_not_sent(text))
                continue
            except ConnectionClosed:
                return
            if is_farewell(text):
                self.left = True
                self._ended.wait(GOODBYE_WAIT)
                return

    def _prompt_text(self) -> Callable[[], object]:
        def text() -> object:  # asked again at every redraw, so it follows the connection
            nick = safe(self.client.nick)
            state = " (reconnecting)" if self.client.reconnecting else ""
            if not self.color:
                return f"{nick}{state}> "
            return ANSI(f"\x1b[1;{nick_colour(self.client.nick)}m{nick}\x1b[0m{state}> ")

        return text

    def _exit_if_done(self) -> None:
        """End the running prompt if the chat is over (runs on the prompt's event loop)."""
        if not (self._ended.is_set() or self._stopping.is_set()) or self._input is None:
            return
        app = self._input.app
        if app.future is not None and not app.future.done():
            app.exit(result=None)

    def _wake(self) -> None:
        """Ask the prompt's event loop to check whether the chat is over."""
        loop = self._input.app.loop if self._input is not None else None
        if loop is None:
            return  # no prompt running: the next one checks before it waits
        try:
            loop.call_soon_threadsafe(self._exit_if_done)
        except RuntimeError:  # that prompt's loop has just closed
            pass

    # -- the printer thread ---------------------------------------------------------------

    def _print_events(self) -> None:
        while True:
            try:
                event = self.client.receive()
            except ConnectionClosed:
                break
            if event.kind == "system" and event.code == "goodbye":
                self.left = True
            self._show(event)
        self._ended.set()
        self._wake()

    def _show_wire(self, direction: str, line: bytes) -> None:
        self._print(render_wire(direction, line, color=self.color))

    def _show(self, event: Event) -> None:
        me = self.client.nick
        line = terminal(event, color=self.color, nick=me)
        self._print(line + ("\a" if self._rings(event, me) else ""))

    def _print(self, text: str) -> None:
        with self._printing:  # several threads print above the prompt: each line goes out whole
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def _rings(self, event: Event, me: str) -> bool:
        """The bell: someone else just mentioned ``@me`` (not in replayed history), and we are not quiet."""
        if self.quiet or event.history or event.kind not in CHAT_KINDS or event.sender == me:
            return False
        return mentions(event.text, me)


def _not_sent(line: str) -> Event:
    """The line a person typed while the client was reconnecting, shown as not sent."""
    return Event(kind="error", code="not-sent", text=f"not sent, reconnecting: {line}", time=time.time())
