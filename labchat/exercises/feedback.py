"""What every check shares: a result, its lines, and running the learner's code with a deadline.

The rule it keeps: nothing the learner's code does escapes as a traceback or a
hang. ``attempt`` runs a call in a daemon thread and waits for it at most a
given time; whatever it raised comes back as a value to describe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class Attempt:
    """How one call of the learner's code went: a value, an exception, or still running."""

    value: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

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
        """The failure in a few words: 'it was still running after 3 s' or 'it raised X: msg'."""
        if self.stuck:
            return "it was still running after the check stopped waiting (is it stuck in recv?)"
        if self.error is not None:
            return f"it raised {describe(self.error)}"
        return "it worked"


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
            outcome.value = call(*args)
        except BaseException as error:  # the learner's code may raise anything, SystemExit too
            outcome.error = error
        outcome.done.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    return outcome.wait(timeout)


def guarded(name: str) -> Callable[[Callable[..., None]], Callable[..., Result]]:
    """Make a check function safe: it gets a Feedback, returns the Result, never raises."""

    def wrap(body: Callable[..., None]) -> Callable[..., Result]:
        def check(*args: Any, quiet: bool = False, **kwargs: Any) -> Result:
            feedback = Feedback(name, quiet)
            try:
                body(feedback, *args, **kwargs)
            except Exception as error:  # a surprise in the check must not become a traceback either
                feedback.not_yet(
                    f"the check stopped early ({describe(error)})",
                    "look at the last 'ok' line: the part after it is where to look",
                )
            return feedback.result

        check.__name__ = body.__name__
        check.__doc__ = body.__doc__
        return check

    return wrap
