"""The interactive terminal chat: a prompt to type in, with the room's events printed above it.

A printer thread takes each event from the ``ChatClient`` and prints it while
the person types: prompt_toolkit's stdout proxy draws it above the input
line and redraws the half-typed text intact. The rule it keeps: everything on
screen that came from the network went through ``render.terminal``, which
turns control characters into visible text, so no one else can move the
cursor, clear the screen or retitle the window. ``bye``, ``/quit``, Ctrl-D and
Ctrl-C all leave politely and wait for the server's goodbye.

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
from prompt_toolkit.patch_stdout import StdoutProxy

from .client import ChatClient, ConnectionClosed, Reconnecting
from .console import Pace
from .protocol import Event, is_farewell
from .render import nick_colour, safe, terminal
from .room import HELP

# How long to wait for the server's goodbye after asking to leave.
GOODBYE_WAIT = 5.0

# Output waiting to go above the prompt is written at most this often. prompt_toolkit's
# default (0.2 s) showed each message about 200 ms late; 0.05 s still redraws calmly.
REDRAW_INTERVAL = 0.05


# The room's commands, for Tab: every /word its /help lists.
COMMANDS = tuple(sorted({word for line in HELP for word in line.split() if word.startswith("/")}))


class _ChatCompleter(Completer):
    """Tab completes a /command at the start of the line, and the nick of someone here anywhere."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        word = before.rpartition(" ")[2]
        if not word:
            return
        if word == before and word.startswith("/"):
            options = [f"{command} " for command in COMMANDS]
        else:
            options = [nick for nick in self.client.users if nick != self.client.nick]
        for option in options:
            if option.lower().startswith(word.lower()) and option != word:
                yield Completion(option, start_position=-len(word))


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

    def __init__(self, client: ChatClient, *, color: bool = False) -> None:
        self.client = client
        self.color = color
        self.left = False  # we left on purpose (or the server said goodbye to us)
        self._ended = threading.Event()  # the connection is over
        self._stopping = threading.Event()  # someone asked us to leave
        self._input: PromptSession[str] | None = None

    def run(self) -> int:
        """Chat until the person leaves or the connection ends; 0 if they left."""
        self._input = PromptSession(
            erase_when_done=True, completer=_ChatCompleter(self.client), complete_while_typing=False
        )
        printer = threading.Thread(target=self._print_events, name="labchat-printer", daemon=True)
        with _above_the_prompt():
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
            for line in text.splitlines():  # a paste may hold several lines
                if not line.strip():
                    continue
                pace.wait()
                try:
                    self.client.send(line)
                except Reconnecting:
                    if is_farewell(line):  # nobody to say goodbye to: just go
                        self.left = True
                        return
                    self._show(_not_sent(line))
                    continue
                except ConnectionClosed:
                    return
                if is_farewell(line):
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

    def _show(self, event: Event) -> None:
        print(terminal(event, color=self.color), flush=True)


def _not_sent(line: str) -> Event:
    """The line a person typed while the client was reconnecting, shown as not sent."""
    return Event(kind="error", code="not-sent", text=f"not sent, reconnecting: {line}", time=time.time())
