"""Checks for the room's behaviour: a new command as a function, and one new answer for the greeter.

The rule it keeps: commands are pure (text in, text out, randomness passed in), so
they are checked by calling them; the greeter is checked where it lives, in a
real ``ChatServer`` on 127.0.0.1 port 0, asked by a real ``ChatClient``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from ..bot import Greeter
from .feedback import Feedback, attempt, guarded
from .servers import quiet_room


@guarded("/roll")
def check_roll(feedback: Feedback, roll: Callable[[str, str, random.Random], str]) -> None:
    """``roll(nick, arg, rng)``: '/roll' rolls 1-6, '/roll 20' rolls 1-20; a bad arg gets 'usage: ...'."""
    rng = random.Random(7)
    plain = attempt(roll, "ada", "", rng)
    if not plain.fine or not isinstance(plain.value, str):
        feedback.not_yet(
            f"roll('ada', '', rng): {plain.problem() if not plain.fine else plain.value!r}",
            "return a line of text, such as 'ada rolls 4 (1-6)'",
        )
        return
    faces = _numbers(roll, "", rng, 6)
    if "ada" in plain.value and faces == set(range(1, 7)):
        feedback.ok(f"'/roll' says who rolled and gives every face 1-6 ({plain.value!r})")
    else:
        feedback.not_yet(
            f"'/roll' gave {plain.value!r}; 300 rolls showed {sorted(faces)}",
            "name the roller and use rng.randint(1, 6): both ends are included",
        )
        return
    faces = _numbers(roll, "20", rng, 20)
    if faces == set(range(1, 21)):
        feedback.ok("'/roll 20' gives every number from 1 to 20")
    else:
        feedback.not_yet(
            f"300 rolls of '/roll 20' showed {sorted(faces)}", "int(arg) sides: rng.randint(1, sides)"
        )
    for bad in ("zero", "0", "1", "-3", "1001", "99999999999"):
        answer = attempt(roll, "ada", bad, rng)
        if not answer.fine or not str(answer.value).startswith("usage:"):
            feedback.not_yet(
                f"roll('ada', {bad!r}, rng): {answer.problem() if not answer.fine else repr(answer.value)}",
                "check the argument before you use it: a whole number from 2 to 1000, otherwise "
                "return 'usage: /roll [SIDES]'",
            )
            return
    feedback.ok(
        "'zero', '0', '1', '-3', '1001' and a huge number get a 'usage: ...' line, not an error: "
        "a die has 2 to 1000 sides"
    )


def _numbers(roll: Callable[[str, str, random.Random], str], arg: str, rng: random.Random, most: int) -> set:
    seen: set[int] = set()
    for _ in range(300):
        found = re.findall(r"\d+", str(roll("ada", arg, rng)).replace(f"1-{most}", ""))
        seen.update(int(n) for n in found)
    return seen


@guarded("greeter")
def check_greeter(feedback: Feedback, greeter: Greeter, ask: str, expect: str) -> None:
    """In a real room, ``greeter`` answers ``ask`` with a line holding ``expect``; it keeps the rest."""
    from ..client import ChatClient

    with quiet_room(bot=greeter, rate=None) as room, ChatClient(*room.address, nick="ada") as ada:
        ada.receive_until(lambda e: e.kind == "bot", timeout=5)  # the welcome

        def answer_to(text: str) -> str:
            ada.send(text)
            ada.receive_until(lambda e: e.kind == "message" and e.text == text, timeout=5)
            ada.send("hello")  # a known answer after it: the first bot line tells what `text` got
            said = ada.receive_until(lambda e: e.kind == "bot", timeout=5).text
            if said.startswith("Hello ada"):
                return ""
            ada.receive_until(lambda e: e.kind == "bot", timeout=5)
            return said

        got = answer_to(ask)
        if expect.lower() in got.lower():
            feedback.ok(f"asked {ask!r} in a real room, the greeter said: {got}")
        else:
            feedback.not_yet(
                f"asked {ask!r}, the greeter said {got!r}"
                if got
                else f"asked {ask!r}, the greeter said nothing",
                f"its answer should mention {expect!r}: add a glossary entry, or handle it in on_message",
            )
            return
        old = answer_to("what is a socket?")
        if "socket" in old.lower():
            feedback.ok("it still explains what a socket is")
        else:
            feedback.not_yet(
                "asked 'what is a socket?', it no longer knew",
                "keep what Greeter already knows: call super().on_message(...) for the rest",
            )
        quiet = answer_to("the weather is nice today")
        if not quiet:
            feedback.ok("it stays quiet when nobody asks it anything")
        else:
            feedback.not_yet(
                f"it answered small talk: {quiet!r}", "answer only a question, or when addressed"
            )
