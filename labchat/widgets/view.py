"""How one event looks in a panel: code as code, long blocks folded, mentions of you marked.

What an event says is rendered by ``render.py`` (``html_line``, ``html_body``,
``blocks``, ``mentions``); this module only arranges it for a panel: each code
block gets a caption with its number (what ``%chat_paste #N`` takes), a block
longer than ``FOLD_LINES`` lines is folded into a ``<details>`` that a click
opens (no script needed), and a line that mentions you is marked.

The rule it keeps: user text reaches the page only as ``render`` escaped it;
everything this module adds around that HTML is fixed markup of its own
(classes, a fold, a caption of numbers and the block's language name, which
``render`` allows only in letters, digits and ``_ + # . -``, escaped once more
here), so nothing a user sends becomes a tag, an attribute or a script.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .. import render
from ..protocol import Event
from ..text import safe

# A code block longer than this many lines is shown folded, with a line to open it.
FOLD_LINES = 12

# A code block as render.html_body writes it. User text inside is escaped, so the closing
# tags can only be render's own.
_PRE = re.compile(r'<pre><code(?: class="language-[^"<>]*")?>.*?</code></pre>', re.DOTALL)


@dataclass(frozen=True)
class CodeBlock:
    """A fenced code block seen in the chat; ``number`` counts from 1 in the order the panel saw them."""

    number: int
    sender: str
    language: str
    code: str

    @property
    def lines(self) -> int:
        return self.code.count("\n") + 1


def spoken(event: Event) -> bool:
    """True for the events whose text a person (or the greeter) wrote: code and mentions live there."""
    return event.kind in render.CHAT_KINDS


def code_of(event: Event) -> list[tuple[str, str]]:
    """The fenced code blocks in what someone said, as (language, code), in order.

    The code is what the panel shows: control characters neutralised, tabs as spaces.
    """
    if not spoken(event):
        return []
    pieces = render.blocks(safe(event.text, multiline=True))
    return [(piece.language, piece.text) for piece in pieces if piece.kind == "code"]


def mentions(event: Event, nick: str) -> bool:
    """True if what someone said names ``@nick`` outside its code."""
    return spoken(event) and render.mentions(event.text, nick)


def event_html(event: Event, *, nick: str = "", blocks: Sequence[CodeBlock] = ()) -> str:
    """One event as the panel's HTML; ``blocks`` are its code blocks as the panel numbered them."""
    line = render.html_line(event)
    if nick and mentions(event, nick):
        line = _with_mentions(event, line, nick)
        if event.sender != nick:
            line = line.replace('<div class="lc-event ', '<div class="lc-event lc-mentioned ', 1)
    if blocks:
        line = _captioned(line, blocks)
    if event.history:
        line = f'<div class="lc-old">{line}</div>'
    return line


def _with_mentions(event: Event, line: str, nick: str) -> str:
    """``line`` with its body drawn again so that ``@nick`` is marked.

    ``html_line`` ends with the event's body and ``</div>``; the body is swapped for
    the same body with mentions marked, or the line is left as it is.
    """
    body = render.html_body(event)
    marked = render.html_body(event, nick=nick)
    end = body + "</div>"
    if marked == body or not line.endswith(end):
        return line
    return line[: -len(end)] + marked + "</div>"


def _captioned(line: str, blocks: Sequence[CodeBlock]) -> str:
    """Each code block of ``line`` in a frame with its caption, folded when it is long."""
    found = list(_PRE.finditer(line))
    if len(found) != len(blocks):
        return line  # not the blocks we counted: show the line as render drew it
    out, start = [], 0
    for match, block in zip(found, blocks, strict=True):
        out.append(line[start : match.start()])
        out.append(_framed(match.group(0), block))
        start = match.end()
    out.append(line[start:])
    return "".join(out)


def _framed(pre: str, block: CodeBlock) -> str:
    language = html.escape(render.safe(block.language)) or "code"
    size = f"{block.lines} line" + ("s" if block.lines != 1 else "")
    how = f"one click selects the whole block; %chat_paste #{block.number} puts it in your next cell"
    caption = (
        f'<span class="lc-code-no">#{block.number}</span> {language}, {size}'
        f' · <span class="lc-code-how">%chat_paste #{block.number}</span>'
    )
    if block.lines > FOLD_LINES:
        return (
            f'<details class="lc-code lc-fold" title="{how}"><summary class="lc-code-head">{caption}'
            f' <span class="lc-code-open">(show)</span></summary>{pre}</details>'
        )
    return f'<div class="lc-code" title="{how}"><div class="lc-code-head">{caption}</div>{pre}</div>'
