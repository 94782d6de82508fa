"""What every check shares: a result, its lines, and running the learner's code with a deadline.

The rule it keeps: nothing the learner's code does escapes as a traceback or a
hang. ``attempt`` runs a call in a daemon thread and waits for it at most a
given time; whatever it raised comes back as a value to describe, with the line
of the learner's own code it came from (never a traceback), and a call still
running can be told where it is waiting, or be stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import sys
import sysconfig
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

# How long one call of the learner's code may take before the check calls it stuck.
PATIENCE = 3.0


@dataclass
class Result:
    """What one check found: ``passed`` when every part works; ``lines`` as printed."""

    name: str
    passed: bool = True
    lines: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(self.lines)


class Feedback:
    """Collects findings for one check and prints each as it comes."""

    def __init__(self, name: str, quiet: bool = False) -> None:
        self.result = Result(name)
        self.quiet = quiet

    def ok(self, what: str) -> None:
        self._say(f"ok: {what}")

    def not_yet(self, what: str, hint: str) -> None:
        self.result.passed = False
        self._say(f"not yet: {what}; hint: {hint}")

    def note(self, text: str) -> None:
        self._say(text)

    def _say(self, line: str) -> None:
        self.result.lines.append(line)
        if not self.quiet:
            print(line, flush=True)


# -- the learner's own lines ----------------------------------------------------------------------

_LABCHAT = Path(__file__).resolve().parent.parent
_LIBRARIES = tuple(
    {Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")}
)
# IPython compiles each cell as a file of its own: /tmp/ipykernel_<pid>/<hash>.py, <ipython-input-...>
_CELL = re.compile(r"ipykernel_\d+[/\\]\d+\.py$|^<ipython-input-")


def learners_file(filename: str) -> bool:
    """True for a file of the learner's: not labchat, not Python's own library or site-packages
    (shared by the checks that name the learner's line in their own words)."""
    if filename.startswith("<"):
        return bool(_CELL.match(filename))  # <string>, <frozen ...>: no line a learner could find
    path = Path(filename).resolve()
    return not any(path.is_relative_to(root) for root in (_LABCHAT, *_LIBRARIES))


def _place(frame: FrameType, line: int) -> str:
    filename = frame.f_code.co_filename
    where = "your cell" if _CELL.search(filename) else Path(filename).name
    return f"line {line} of {where}"


def learners_line(error: BaseException) -> str:
    """Where in the learner's code ``error`` came from: 'line 7 of your cell', or '' if not from there."""
    found = ""
    tb: TracebackType | None = error.__traceback__
    while tb is not None:  # outermost first: the last of theirs is the innermost
        if learners_file(tb.tb_frame.f_code.co_filename):
            found = _place(tb.tb_frame, tb.tb_lineno)
        tb = tb.tb_next
    return found


def raised(who: str, error: BaseException) -> str:
    """'your serve_once raised TypeError: ... (line 7 of your cell)': the error in one line, no traceback."""
    line, said = learners_line(error), describe(error)
    if len(said) > 200:
        said = said[:197] + "..."
    return f"{who} raised {said}" + (f" ({line})" if line else "")


def _shown(value: Any, keep: int = 60) -> str:
    """``repr(value)``, cut to ``keep`` characters (a 4 MB value is not repr'd whole first)."""
    if isinstance(value, (str, bytes, bytearray)) and len(value) > keep // 2:
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[: keep // 3]!r}... ({len(value):,} {unit})"
    shown = repr(value)
    return shown if len(shown) <= keep else shown[: keep - 3] + "..."


def returned(value: Any, expected: str) -> str:
    """'returned a str, 'hi', not bytes': for a value of the wrong type, what it was and what was wanted."""
    if value is None:
        return f"returned None, not {expected} (is a `return` missing?)"
    shown = _shown(value)
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return f"returned {article} {kind}, {shown}, not {expected}"


class _Stopped(BaseException):
    """Raised inside a learner's thread that the check gave up on, to end a loop that never would."""


@dataclass
class Attempt:
    """How one call of the learner's code went: a value, an exception, or still running."""

    value: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    stopped_at: str = ""  # where a call the check stopped was, when it was stopped

    @property
    def stuck(self) -> bool:
        return not self.done.is_set()

    @property
    def fine(self) -> bool:
        return not self.stuck and self.error is None

    def wait(self, timeout: float) -> Attempt:
        self.done.wait(timeout)
        return self

    def problem(self) -> str:
        """The failure in a few words: 'it was still running ... (at line 5 of your cell ...)' or
        'it raised X: msg'."""
        if self.stuck:
            at = self.where()
            return "it was still running when the check stopped waiting" + (
                f" (at {at}: a loop that never ends, or a call that waits for ever?)" if at else ""
            )
        if self.error is not None:
            return f"it raised {describe(self.error)}"
        return "it worked"

    def where(self) -> str:
        """For a call still running, the line of the learner's code it is at now: 'line 5 of your cell'."""
        if self.stopped_at:
            return self.stopped_at
        thread = self.thread
        frame = sys._current_frames().get(thread.ident) if thread and thread.ident else None
        while frame is not None:  # innermost first: the first of theirs is the one to name
            if learners_file(frame.f_code.co_filename):
                return _place(frame, frame.f_lineno)
            frame = frame.f_back
        return ""

    def did(self, who: str, after: float = PATIENCE) -> str:
        """The outcome as a sentence: 'WHO returned b'x'', 'WHO raised ...', 'WHO was still running ...'."""
        if self.stuck:
            at = self.where()
            return f"{who} was still running after {after:g} s" + (f" (at {at})" if at else "")
        if self.error is not None:
            return raised(who, self.error)
        return f"{who} returned {_shown(self.value)}"

    def stop(self) -> None:
        """End a call that is still running, if it runs Python code (a loop); one blocked in C stays."""
        if self.stuck and self.thread is not None and self.thread.ident is not None:
            self.stopped_at = self.where()
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.thread.ident), ctypes.py_object(_Stopped)
            )


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def attempt(
    call: Callable[..., Any], *args: Any, timeout: float = PATIENCE, name: str = "exercise"
) -> Attempt:
    """Run ``call(*args)`` in a daemon thread; wait at most ``timeout`` seconds for it (0: not at all)."""
    outcome = Attempt()

    def run() -> None:
        try:
            try:
                outcome.value = call(*args)
            except _Stopped:  # the check gave up on it: it stays "still running" for the check
                return
            except BaseException as error:  # the learner's code may raise anything, SystemExit too
                outcome.error = error
            outcome.done.set()
        except _Stopped:  # stopped just as it ended on its own
            return

    outcome.thread = threading.Thread(target=run, name=name, daemon=True)
    if _checking:  # (a call made outside any check is the caller's to stop)
        _calls.append(outcome)
    outcome.thread.start()
    return outcome.wait(timeout)


# Every call of the learner's code made by the checks now running (``guarded``): a loop
# still going when its check ends is stopped then, so a cell leaves nothing spinning.
_calls: list[Attempt] = []
_checking: list[str] = []  # the names of the checks running now, outermost first


def _stop_the_rest(first: int) -> None:
    """Stop the calls made since ``_calls[first]`` that are still running, and forget them all."""
    left = [call for call in _calls[first:] if call.stuck]
    del _calls[first:]
    for call in left:
        call.stop()
    for call in left:  # a loop ends at its next line; a call blocked in C (recv) when that returns
        if call.thread is not None:
            call.thread.join(0.2)


@contextlib.contextmanager
def quiet_threads(patience: float = 1.0) -> Iterator[list[BaseException]]:
    """Keep the tracebacks of threads the learner's code starts out of the cell; collect their errors.

    A learner's own thread (a sender in ``swap``, say) raises when the check closes
    its socket; Python would print that traceback into the cell. While this block
    runs, and up to ``patience`` seconds after it while those threads end, their
    exceptions are collected instead. Threads that were running before are left alone.
    """
    before = set(threading.enumerate())
    previous = threading.excepthook
    caught: list[BaseException] = []

    def hook(args: Any) -> None:
        if args.thread is not None and args.thread not in before and args.exc_value is not None:
            caught.append(args.exc_value)
        else:
            previous(args)

    threading.excepthook = hook
    try:
        yield caught
    finally:
        for thread in set(threading.enumerate()) - before:
            if thread is not threading.current_thread():
                thread.join(patience / 4)
        if threading.excepthook is hook:
            threading.excepthook = previous


def guarded(name: str) -> Callable[[Callable[..., None]], Callable[..., Result]]:
    """Make a check function safe: it gets a Feedback, returns the Result, never raises."""

    def wrap(body: Callable[..., None]) -> Callable[..., Result]:
        def check(*args: Any, quiet: bool = False, **kwargs: Any) -> Result:
            feedback = Feedback(name, quiet)
            first = len(_calls)
            _checking.append(name)
            try:
                body(feedback, *args, **kwargs)
            except Exception as error:  # a surprise in the check must not become a traceback either
                line = learners_line(error)
                if line:
                    feedback.not_yet(
                        f"the check stopped early: {raised('your code', error)}",
                        "look at that line of your code: the check cannot go on past it",
                    )
                elif any(said.startswith("ok: ") for said in feedback.result.lines):
                    feedback.not_yet(
                        f"the check stopped early ({describe(error)})",
                        "look at the last 'ok' line: the part after it is where to look",
                    )
                else:
                    feedback.not_yet(
                        f"the check stopped at its first step ({describe(error)})",
                        "nothing worked yet: start with the first thing the exercise asks for",
                    )
            finally:
                _checking.pop()
                _stop_the_rest(first)
            return feedback.result

        check.__name__ = body.__name__
        check.__doc__ = body.__doc__
        return check

    return wrap
