"""Checks for the room's behaviour: a new command as a function, and one new answer for the greeter.

The rule it keeps: commands are pure (text in, text out, randomness passed in), so
they are checked by calling them, and two ``random.Random`` seeded alike must give
the same rolls. The greeter is called first, each method with a deadline, so what
it raises, returns or waits for is said plainly; then it is checked where it
lives, in a real ``ChatServer`` on 127.0.0.1 port 0, asked by a real ``ChatClient``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from ..bot import Greeter
from .feedback import PATIENCE, Feedback, attempt, guarded
from .servers import learner_error, quiet_room

Roll = Callable[[str, str, random.Random], str]


@guarded("/roll")
def check_roll(feedback: Feedback, roll: Roll) -> None:
    """``roll(nick, arg, rng)``: '/roll' rolls 1-6, '/roll 20' rolls 1-20; a bad arg gets 'usage: ...'."""
    rng = random.Random(7)
    plain = attempt(roll, "ada", "", rng)
    if not plain.fine or not isinstance(plain.value, str):
        feedback.not_yet(
            f"roll('ada', '', rng): {_how(plain) if not plain.fine else repr(plain.value)}",
            "return a line of text, such as 'ada rolls 4 (1-6)'",
        )
        return
    lines = attempt(_lines, roll, "", rng)
    if not lines.fine:
        feedback.not_yet(f"300 rolls of '/roll': {_how(lines)}", "each roll is one call, answered at once")
        return
    faces = _rolled(lines.value, 6)
    if "ada" in plain.value and faces == set(range(1, 7)):
        feedback.ok(f"'/roll' says who rolled and gives every face 1-6 ({plain.value!r})")
    else:
        feedback.not_yet(
            f"'/roll' gave {plain.value!r}; 300 rolls showed {sorted(faces)}",
            "name the roller and use rng.randint(1, 6): both ends are included",
        )
        return
    first, second = (attempt(_lines, roll, "", random.Random(2024), 50) for _ in range(2))
    if first.fine and second.fine and first.value != second.value:
        feedback.not_yet(
            "two random.Random(2024), seeded alike, gave different rolls: roll does not roll with "
            "the rng it is given",
            "roll with rng (rng.randint(1, sides)), not the random module: then the same seed gives "
            "the same rolls, which is how this notebook's outputs come out the same on every run",
        )
    else:
        feedback.ok("the same seed gave the same rolls: it rolls with the rng it is given")
    twenty = attempt(_lines, roll, "20", rng)
    faces = _rolled(twenty.value, 20) if twenty.fine else set()
    if faces == set(range(1, 21)):
        feedback.ok("'/roll 20' gives every number from 1 to 20")
    else:
        feedback.not_yet(
            f"300 rolls of '/roll 20' showed {sorted(faces)}"
            if twenty.fine
            else f"'/roll 20': {_how(twenty)}",
            "int(arg) sides: rng.randint(1, sides)",
        )
    for bad in ("zero", "0", "1", "-3", "1001", "99999999999"):
        answer = attempt(roll, "ada", bad, rng)
        if not answer.fine or not str(answer.value).lower().startswith("usage:"):
            feedback.not_yet(
                f"roll('ada', {bad!r}, rng): {_how(answer) if not answer.fine else repr(answer.value)}",
                "check the argument before you use it: a whole number from 2 to 1000, otherwise "
                "return 'usage: /roll [SIDES]'",
            )
            return
    feedback.ok(
        "'zero', '0', '1', '-3', '1001' and a huge number get a 'usage: ...' line, not an error: "
        "a die has 2 to 1000 sides"
    )


def _how(outcome) -> str:
    """What went wrong with one call: it is stuck, or what it raised and where."""
    if outcome.stuck:
        return outcome.problem()
    return f"it raised {learner_error(outcome.error)}"


def _lines(roll: Roll, arg: str, rng: random.Random, times: int = 300) -> list[str]:
    return [str(roll("ada", arg, rng)) for _ in range(times)]


def _rolled(lines: list[str], sides: int) -> set[int]:
    """The numbers rolled: in lines alike but for one number, that number; the die's size is not a roll.

    'ada rolls 4 (1-6)' and 'ada rolls a d6: 4' hold the die's size too, the same in
    every line; only the number rolled changes from line to line.
    """
    numbers = [[int(n) for n in re.findall(r"\d+", line)] for line in lines]
    if numbers and len({len(found) for found in numbers}) == 1:
        changing = [i for i in range(len(numbers[0])) if len({found[i] for found in numbers}) > 1]
        if len(changing) == 1:
            return {found[changing[0]] for found in numbers}
    return {int(n) for line in lines for n in re.findall(r"\d+", line.replace(f"1-{sides}", ""))}


# Said in the room, to the greeter: not a question, and nothing it was asked about.
SMALL_TALK = "the weather is nice today"


def _lines_from(feedback: Feedback, greeter: Greeter, hook: str, *args: str) -> list[str] | None:
    """``greeter.hook(*args)`` called directly, with a deadline: its lines, or None once a not-yet is said."""
    call = f"{hook}({', '.join(map(repr, args))})"
    said = attempt(getattr(greeter, hook), *args, name="exercise-greeter")
    if said.stuck:
        feedback.not_yet(
            f"{call} was still running after {PATIENCE:g} s, so the check did not put it in a room",
            "the room waits for its bot's answer, and everyone in the room waits with it: answer at "
            "once, with no time.sleep, input() or network call",
        )
        return None
    if said.error is not None:
        feedback.not_yet(
            f"{call} raised {learner_error(said.error)}",
            "the room calls it for every line anyone says: it must answer each with a list of lines "
            "([] for none), and never raise",
        )
        return None
    value = said.value
    if value is None:
        feedback.not_yet(
            f"{call} returned None, not a list of lines",
            "every way through the method must end in a return: return [] when it has nothing to "
            "say, or return super()." + hook + "(...) to leave it to Greeter",
        )
        return None
    if isinstance(value, str):
        feedback.not_yet(
            f"{call} returned the text {value[:40]!r}, not a list of lines",
            f"put even one line in a list: return [{value[:20]!r}]",
        )
        return None
    if not isinstance(value, list) or not all(isinstance(line, str) for line in value):
        feedback.not_yet(
            f"{call} returned {value!r:.60}, not a list of lines",
            "return a list of str: [] for no answer, ['one line'] for one",
        )
        return None
    return value


@guarded("greeter")
def check_greeter(feedback: Feedback, greeter: Greeter, ask: str, expect: str) -> None:
    """``greeter`` answers ``ask`` with a line holding ``expect`` and keeps the rest, in a real room too."""
    for hook, args in (("on_join", ("ada",)), ("on_leave", ("ada",))):
        if _lines_from(feedback, greeter, hook, *args) is None:
            return
    got = _lines_from(feedback, greeter, "on_message", "ada", ask)
    if got is None:
        return
    if any(expect.lower() in line.lower() for line in got):
        feedback.ok(f"asked {ask!r}, the greeter said: {' '.join(got)}")
    else:
        feedback.not_yet(
            f"asked {ask!r}, the greeter said {' '.join(got)!r}"
            if got
            else f"asked {ask!r}, the greeter said nothing",
            f"its answer should mention {expect!r}: add a glossary entry, or handle it in on_message",
        )
        return
    old = _lines_from(feedback, greeter, "on_message", "ada", "what is a socket?")
    if old is None:
        return
    if any("socket" in line.lower() for line in old):
        feedback.ok("it still explains what a socket is")
    else:
        feedback.not_yet(
            "asked 'what is a socket?', it no longer knew",
            "keep what Greeter already knows: call super().on_message(...) for the rest",
        )
    quiet = _lines_from(feedback, greeter, "on_message", "ada", SMALL_TALK)
    if quiet is None:
        return
    if not quiet:
        feedback.ok("it stays quiet when nobody asks it anything")
    else:
        feedback.not_yet(
            f"it answered small talk: {' '.join(quiet)!r}", "answer only a question, or when addressed"
        )
    _check_in_a_room(feedback, greeter, ask, expect)


def _check_in_a_room(feedback: Feedback, greeter: Greeter, ask: str, expect: str) -> None:
    """In a real room, a real client asks ``ask``, and an answer mentioning ``expect`` comes back
    to everyone (any answer: a greeter may choose its words afresh each time)."""
    from ..client import ChatClient

    with quiet_room(bot=greeter, rate=None) as room, ChatClient(*room.address, nick="ada") as ada:
        ada.send(ask)
        ada.receive_until(lambda e: e.kind == "message" and e.text == ask, timeout=5)
        try:
            ada.receive_until(lambda e: e.kind == "bot" and expect.lower() in e.text.lower(), timeout=5)
        except TimeoutError:
            feedback.not_yet(
                f"in a real room on 127.0.0.1, ada asked {ask!r}, and the greeter's answer never came",
                f"the room says what on_message returns: there too the answer should mention {expect!r}, "
                "as when on_message is called on its own",
            )
            return
        feedback.ok(f"in a real room on 127.0.0.1, ada asked {ask!r}, and the answer came to everyone")
