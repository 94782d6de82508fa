"""What the input box sends: the Enter rule, code fenced as a chat message, and what is too long to send.

A stock ``Textarea`` cannot tell Enter from Shift+Enter (both insert a newline
before the kernel hears of it, and no stock widget reports keys), so the panel
reads the box's value as it changes and decides from the text alone:

- Enter at the end of what you typed sends it;
- inside an open ```` ``` ```` block, Enter is a new line, and the Enter after the
  closing ```` ``` ```` sends the whole block (the rule a netcat user follows too);
- a paste arrives whole and stays in the box, however many lines it has, until
  you press Enter at its end or click Send.

A message the chat would refuse for its size (over ``MAX_TEXT`` characters or
``MAX_LINES`` lines, measured as the room measures it) is not sent at all:
``refusal`` says why in one sentence, and the text stays where it was typed.

Nothing here touches a widget or a socket: each rule is a function of text
(the box's before and after a change), tested by values.
"""

from __future__ import annotations

import re

from ..protocol import MAX_LINES, MAX_TEXT
from ..text import FENCE_LINE, fence_open, safe, trim


def typed_enter(old: str, new: str) -> str | None:
    """The message to send when the box went from ``old`` to ``new``, or None to keep typing.

    A change counts as Enter when it added text at the end of the box, with exactly
    one newline, as its last character: typing (even several keys synced at once)
    does that; a multi-line paste adds more newlines and is kept whole; a newline
    typed in the middle of the text is kept as a new line.

    One exception to "more newlines is a paste": while one change is on its way to
    the kernel the browser merges every later key into the next one, so a block's
    last lines, its closing fence and the Enter after it, typed quickly, can arrive
    as one change. A change that closes a block that was open, and ends with that
    closing fence and a newline, sends the block however many lines it added.
    """
    if not new.endswith("\n") or not new.startswith(old):
        return None
    added = new[len(old) :]
    text = new[:-1]
    if fence_open(text):
        return None
    if added.count("\n") == 1:
        return text
    closed = fence_open(old) and FENCE_LINE.match(text.rpartition("\n")[2]) is not None
    return text if closed else None


def fenced(code: str, language: str = "python") -> str:
    """``code`` as a fenced block for the chat, with a fence longer than any inside it."""
    if not isinstance(code, str):
        raise TypeError(f"share() takes code as text, not {type(code).__name__}")
    language = language.strip()
    if "`" in language or "\n" in language or " " in language:
        raise ValueError(f"not a language name: {language!r}")
    code = code.strip("\n")
    inner = [len(run) for run in re.findall(r"^ {0,3}(`{3,})", code, flags=re.MULTILINE)]
    fence = "`" * max([3, *(n + 1 for n in inner)])
    return f"{fence}{language}\n{code}\n{fence}"


def refusal(text: str) -> str | None:
    """Why the chat would refuse ``text`` for its size, as one sentence, or None if it takes it.

    Measured as ``room.clean_text`` measures a message (trimmed, controls made visible),
    so the panel refuses just what the room would: ``//x`` is the message ``/x``, ``/msg
    NICK TEXT`` is measured by its TEXT, and any other ``/command`` by what follows its name.
    """
    body = text.strip()
    if body.startswith("//"):
        body = body[1:]
    elif body.startswith("/"):
        command, _, body = body.partition(" ")
        if command.lower() == "/msg":
            body = body.strip().partition(" ")[2]
    kept = safe(trim(body), multiline=True)
    if len(kept) > MAX_TEXT:
        return f"not sent: {len(kept)} characters as a message, and the chat takes {MAX_TEXT}"
    lines = kept.count("\n") + 1
    if lines > MAX_LINES:
        return f"not sent: {lines} lines as a message, and the chat takes {MAX_LINES}"
    return None
