"""How an event looks to a person: terminal lines, plain text lines, or HTML, code blocks included.

Nothing here touches a socket. Every function treats the text inside an event
as untrusted: control characters (the start of every terminal escape sequence)
are shown as harmless visible text, and HTML is escaped, so nothing one user
sends can move another user's cursor or inject markup into their page. A
message may hold several lines, and every view marks each of them as part of
its message (indented under the speaker on a terminal, ``ada|`` on a plain
line), so no line of one message can pass for another.

Chat text is read as a small subset of Markdown (``blocks``): fenced code
blocks with an optional language, inline `code`, and everything else literal.
Code is highlighted with Pygments when it is installed (the ``terminal`` and
``jupyter`` extras bring it): it keeps well-tested lexers for hundreds of
languages, which a chat has no business writing again. Without it, code is
shown as it is, escaped and unhighlighted. Pygments is imported only when
colour or HTML is asked for, so the server, which renders plain text, never
loads it and never runs a lexer on what a stranger sent.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import time as _time
import unicodedata
from dataclasses import dataclass

from .protocol import Event
from .text import safe

__all__ = [
    "CHAT_KINDS",
    "Block",
    "blocks",
    "clock",
    "describe",
    "html_body",
    "html_line",
    "mentions",
    "nick_colour",
    "plain",
    "safe",
    "terminal",
]

# Bright, readable ANSI colours for nicks; each nick always gets the same one.
_NICK_COLOURS = (31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96)
_RESET = "\x1b[0m"
_STYLES = {
    "join": "\x1b[2m",  # dim
    "leave": "\x1b[2m",
    "nick": "\x1b[2m",
    "system": "\x1b[3m",  # italic
    "bot": "\x1b[36m",  # cyan
    "private": "\x1b[35m",  # magenta
    "error": "\x1b[1;31m",  # bold red
}
_DIM, _UNDIM = "\x1b[2m", "\x1b[22m"  # a code block's fences
_BOLD, _UNBOLD = "\x1b[1m", "\x1b[22m"  # a mention of the reader
_INLINE = "\x1b[36m"  # inline `code`

# The kinds whose text is a person's words, read as Markdown (code blocks, mentions).
CHAT_KINDS = frozenset({"message", "bot", "action", "private"})


# -- the Markdown subset ----------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One piece of a message: ``text`` (literal), ``inline`` (`code`) or ``code`` (a fenced block).

    ``text`` is what the piece says: for code, the lines between the fences,
    exactly; for inline code, what is between the backticks. ``language`` is
    the fence's language, if it names one (letters, digits, ``_ + # . -``).
    ``source`` is the piece as it was written, fences and backticks included.
    Text pieces never hold the line breaks next to a fence: a code block
    always stands on lines of its own.
    """

    kind: str
    text: str
    language: str = ""
    source: str = ""


# A fence: up to 3 spaces, then 3 or more backticks, then an info string without backticks.
_OPEN = re.compile(r" {0,3}(`{3,})([^`]*)")
_CLOSE = re.compile(r" {0,3}(`{3,})[ \t]*")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,32}")
# Inline code: a run of backticks, then the next run of exactly as many, on the same line.
_INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def blocks(text: str) -> list[Block]:
    """The pieces of a message, in order: literal text, inline code, fenced code blocks.

    A line of three or more backticks (optionally followed by a language)
    opens a block that the next line of at least as many backticks closes; a
    block never closed runs to the end of the message.
    """
    out: list[Block] = []
    if not text:
        return out
    lines = text.split("\n")
    loose: list[str] = []  # text lines waiting to become a piece
    i = 0
    while i < len(lines):
        opening = _OPEN.fullmatch(lines[i])
        if opening is None:
            loose.append(lines[i])
            i += 1
            continue
        if loose:
            out += _inline("\n".join(loose))
            loose = []
        ticks = len(opening.group(1))
        end = i + 1
        while end < len(lines) and not _closes(lines[end], ticks):
            end += 1
        info = opening.group(2).split()
        language = info[0] if info and _LANGUAGE.fullmatch(info[0]) else ""
        source = "\n".join(lines[i : end + 1])
        out.append(Block("code", "\n".join(lines[i + 1 : end]), language, source))
        i = end + 1
    if loose:
        out += _inline("\n".join(loose))
    return out


def _closes(line: str, ticks: int) -> bool:
    match = _CLOSE.fullmatch(line)
    return match is not None and len(match.group(1)) >= ticks


def _inline(text: str) -> list[Block]:
    out = []
    start = 0
    for match in _INLINE_CODE.finditer(text):
        if match.start() > start:
            out.append(Block("text", text[start : match.start()], source=text[start : match.start()]))
        code = match.group(2)
        if len(code) > 2 and code[0] == code[-1] == " " and code.strip():
            code = code[1:-1]  # `` `x` `` shows `x`: one space either side is padding
        out.append(Block("inline", code, source=match.group(0)))
        start = match.end()
    if start < len(text) or not out:
        out.append(Block("text", text[start:], source=text[start:]))
    return out


@functools.lru_cache(maxsize=256)
def _mention(nick: str) -> re.Pattern[str]:
    # "@ada" but not "bob@ada.org" nor "@adam"; a full stop after it ends a sentence.
    return re.compile(rf"(?<![\w@.\-])@{re.escape(nick)}(?![\w\-]|\.[\w\-])", re.IGNORECASE)


def mentions(text: str, nick: str) -> bool:
    """Whether ``text`` mentions ``@nick`` (any case) outside its code."""
    if not nick or "@" not in text:
        return False
    pattern = _mention(nick)
    return any(block.kind == "text" and pattern.search(block.text) for block in blocks(text))


# -- Pygments, if it is here ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _aliases() -> frozenset[str]:
    """Every language name Pygments knows, or nothing without Pygments (no plug-ins: a fixed set)."""
    try:
        from pygments.lexers import get_all_lexers
    except ImportError:
        return frozenset()
    return frozenset(alias.lower() for _, aliases, _, _ in get_all_lexers(plugins=False) for alias in aliases)


@functools.lru_cache(maxsize=64)
def _lexer(language: str) -> object | None:
    if language.lower() not in _aliases():
        return None
    from pygments.lexers import get_lexer_by_name

    return get_lexer_by_name(language.lower(), stripnl=False, ensurenl=True)


def _highlight(code: str, language: str, formatter_name: str) -> str | None:
    """``code`` highlighted (one output line per input line), or None without Pygments or a lexer."""
    lexer = _lexer(language) if language else None
    if lexer is None:
        return None
    from pygments import highlight

    out = highlight(code + "\n", lexer, _formatter(formatter_name))
    return out[:-1] if out.endswith("\n") else out


@functools.lru_cache(maxsize=2)
def _formatter(name: str) -> object:
    if name == "html":
        from pygments.formatters import HtmlFormatter

        # Inline styles: the fragment needs no stylesheet; nowrap: the <pre><code> is ours.
        return HtmlFormatter(nowrap=True, noclasses=True)
    from pygments.formatters import TerminalFormatter

    # The 16 colours the terminal's own theme defines; most people chat on a dark background.
    return TerminalFormatter(bg="dark")


# -- one event, three ways ----------------------------------------------------------------------


def nick_colour(nick: str) -> int:
    """A stable ANSI colour number for a nick (same nick, same colour, every run)."""
    digest = hashlib.blake2s(nick.lower().encode("utf-8"), digest_size=2).digest()
    return _NICK_COLOURS[int.from_bytes(digest, "big") % len(_NICK_COLOURS)]


def clock(event: Event) -> str:
    """The event's server time as local ``HH:MM``."""
    return _time.strftime("%H:%M", _time.localtime(event.time))


def _frame(kind: str, text: str) -> tuple[str, str]:
    """(lead, tail): a view's own words around an event's text, ``{sender}`` and ``{target}``
    where the nicks go (a template: the words are ours, the nicks are filled in)."""
    if kind == "action":
        return "* {sender} ", ""
    if kind == "private":
        return "[private] {sender} -> {target}: ", ""
    if kind in ("join", "leave"):
        said = "--> {sender} joined" if kind == "join" else "<-- {sender} left"
        return (f"{said} (", ")") if text else (said, "")
    if kind == "nick":
        return "--- {sender} is now known as {target}", ""
    if kind == "error":
        return "!!! ", ""
    return "", ""  # message and bot (the speaker is shown apart), welcome, system


def _parts(event: Event) -> tuple[str, str, str, str]:
    """(who, lead, text, tail), all made safe: a view shows ``who`` apart, then lead + text + tail.

    ``text`` is the sender's words and may hold several lines; ``lead`` and
    ``tail`` are the view's own words around them.
    """
    sender, target = safe(event.sender), safe(event.target)
    text = safe(event.text, multiline=True)
    lead, tail = _frame(event.kind, text)
    who = sender if event.kind in ("message", "bot") else ""
    return who, lead.format(sender=sender, target=target), text, tail


def describe(event: Event) -> tuple[str, str]:
    """An event as (who, what): the two halves every view shows, both made safe.

    ``who`` is empty for notices that have no speaker. ``what`` may hold
    several lines (``\\n``), each one safe.
    """
    who, lead, text, tail = _parts(event)
    return who, lead + text + tail


def _mark(event: Event) -> str:
    """What starts each further line of a message on a plain line: whose message it is."""
    sender = safe(event.sender)
    if event.kind == "private":
        return f"[private] {sender} -> {safe(event.target)}|"
    if event.kind == "action":
        return f"* {sender}|"
    return f"{sender}|" if sender else "|"


def plain(event: Event) -> str:
    """Plain text, as a netcat user or a log sees it (no final newline).

    One line per line of the message: the first as ``ada: first line``, each
    further one marked with whose it is, ``ada| second line``.
    """
    who, what = describe(event)
    first, *rest = what.split("\n")
    head = f"{who}: {first}" if who else first
    if not rest:
        return head
    mark = _mark(event)
    return "\n".join([head, *(f"{mark} {line}" if line else mark for line in rest)])


def _width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    columns = 0
    for ch in text:
        if not unicodedata.combining(ch):
            columns += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return columns


def wire(direction: str, line: bytes, *, color: bool = False) -> str:
    """One line as it travelled (``->`` sent, ``<-`` received), escaped so nothing in it acts on a terminal.

    Invalid UTF-8 shows as ``\\xNN`` escapes; controls show as ``safe`` makes them.
    """
    text = safe(line.decode("utf-8", "backslashreplace"))
    shown = f"{direction} {text}"
    return f"\x1b[2m{shown}\x1b[0m" if color else shown


def terminal(event: Event, *, color: bool = False, show_time: bool = True, nick: str = "") -> str:
    """The event for a terminal: optional ``HH:MM`` stamp and ANSI colours (no final newline).

    A message of several lines prints each under the first, indented to where
    the text starts. With ``color``, code blocks are highlighted and a mention
    of ``@nick`` (the reader) is bold; without it, the text is as it was sent.
    """
    who, lead, text, tail = _parts(event)
    stamp = f"{clock(event)} " if show_time and event.time else ""
    speaker = f"{who}: " if who else ""
    if color and event.kind in CHAT_KINDS:
        body = _coloured(text, nick, _STYLES.get(event.kind, ""))
    else:
        body = text.split("\n")
    body[0] = lead + body[0]
    body[-1] += tail
    indent = " " * _width(stamp + speaker + lead)
    if not color:
        rest = [indent + line if line else "" for line in body[1:]]
        return "\n".join([stamp + speaker + body[0], *rest])
    style = _STYLES.get(event.kind, "")

    def styled(line: str) -> str:
        return f"{style}{line}{_RESET}" if style else line

    if who:
        head = f"{_DIM}{stamp}{_RESET}\x1b[1;{nick_colour(event.sender)}m{who}{_RESET}: {styled(body[0])}"
    else:
        head = f"{_DIM}{stamp}{_RESET}{styled(body[0])}"
    return "\n".join([head, *(indent + styled(line) if line else "" for line in body[1:])])


def _coloured(text: str, nick: str, style: str) -> list[str]:
    """A chat text's lines for a colour terminal: code highlighted, fences dim, ``@nick`` bold."""
    pattern = _mention(nick) if nick else None
    after_inline = _RESET + style if style else "\x1b[39m"
    lines: list[str] = []
    run: list[str] = []  # text and inline code, until the next code block
    for block in blocks(text):
        if block.kind == "inline":
            run.append(f"{_INLINE}{block.source}{after_inline}")
        elif block.kind == "text":
            words = block.text
            if pattern is not None:
                words = pattern.sub(lambda m: f"{_BOLD}{m.group(0)}{_UNBOLD}", words)
            run.append(words)
        else:
            if run:
                lines += "".join(run).split("\n")
                run = []
            lines += _code_lines(block)
    if run or not lines:
        lines += "".join(run).split("\n")
    return lines


def _code_lines(block: Block) -> list[str]:
    """A code block's lines for a colour terminal: its fences dim, the code highlighted if it can be."""
    source = block.source.split("\n")
    ticks = len(_OPEN.fullmatch(source[0]).group(1))
    closed = len(source) > 1 and _closes(source[-1], ticks)
    inner = source[1:-1] if closed else source[1:]
    shown = _highlight("\n".join(inner), block.language, "terminal") if inner else None
    coloured = [] if shown is None else shown.split("\n")
    if len(coloured) == len(inner):  # a blank line stays blank, with no colour codes around nothing
        inner = [line and colour for line, colour in zip(inner, coloured, strict=True)]
    lines = [f"{_DIM}{source[0]}{_UNDIM}", *inner]
    if closed:
        lines.append(f"{_DIM}{source[-1]}{_UNDIM}")
    return lines


# -- HTML ----------------------------------------------------------------------------------------

# Colours for the HTML view, matching the terminal's palette in spirit.
_HTML_COLOURS = (
    "#c0392b",
    "#27ae60",
    "#b7950b",
    "#2e86c1",
    "#8e44ad",
    "#16a085",
    "#e74c3c",
    "#229954",
    "#d68910",
    "#2874a6",
    "#7d3c98",
    "#138d75",
)


def html_body(event: Event, *, nick: str = "") -> str:
    """The HTML of an event's text: every piece escaped, code as code.

    A fenced block becomes ``<pre><code class="language-X">``, highlighted by
    Pygments with inline styles when it is installed and knows the language
    (escaped as it is otherwise); inline code becomes ``<code>``; line breaks
    in the text become ``<br>``, and every line after the first is inside one
    ``<div class="lc-more">`` (see ``continued``). A mention of ``@nick`` is
    wrapped in ``<mark class="lc-mention">``. No markup from the text itself
    survives.
    """
    pattern = _mention(nick) if nick else None
    out = []
    for block in blocks(safe(event.text, multiline=True)):
        if block.kind == "code":
            language = f' class="language-{html.escape(block.language)}"' if block.language else ""
            code = _highlight(block.text, block.language, "html")
            code = html.escape(block.text) if code is None else code
            out.append(f"<pre><code{language}>{code}</code></pre>")
        elif block.kind == "inline":
            out.append(f"<code>{html.escape(block.text)}</code>")
        else:
            words = html.escape(block.text)
            if pattern is not None:
                words = pattern.sub(lambda m: f'<mark class="lc-mention">{m.group(0)}</mark>', words)
            out.append(words.replace("\n", "<br>"))
    return continued("".join(out))


def continued(body: str) -> str:
    """HTML of a text's lines with every line after the first inside ``<div class="lc-more">``.

    The panel's style sets that block in and draws a rule beside it, so a further line of a
    message, ``10:02 teacher: run this`` say, can never pass for a line of its own.
    ``body`` is HTML as this module writes it: the first line ends at the first ``<br>``
    or where the first code block starts (user text is escaped, so neither can be the
    sender's; a code block holds no ``<br>``).
    """
    ends = [at for at in (body.find("<br>"), body.find("<pre>")) if at >= 0]
    if not ends:
        return body
    cut = min(ends)
    rest = body[cut + 4 :] if body.startswith("<br>", cut) else body[cut:]
    return f'{body[:cut]}<div class="lc-more">{rest}</div>'


def html_line(event: Event, *, show_time: bool = True) -> str:
    """One event as an HTML fragment: every piece of user text escaped, code blocks as code."""
    who, _, text, _ = _parts(event)
    stamp = f'<span class="lc-time">{clock(event)}</span> ' if show_time and event.time else ""
    # Every nick is isolated from the words beside it: a right-to-left nick must not pull them
    # into its run (nick "דני" and "123 hello" must not read "123 :דני hello"). A nick within
    # the words is in a <bdi>; the speaker's is a <b class="lc-nick">, which the panels' style
    # isolates (unicode-bidi: isolate), so a plain message's fragment stays as it always was.
    nicks = {
        name: f"<bdi>{html.escape(safe(nick))}</bdi>"
        for name, nick in (("sender", event.sender), ("target", event.target))
    }
    lead, tail = (html.escape(words).format(**nicks) for words in _frame(event.kind, text))
    if event.kind in CHAT_KINDS:
        body = lead + html_body(event) + tail
    else:
        body = continued(lead + html.escape(text).replace("\n", "<br>") + tail)
    if who:
        colour = _HTML_COLOURS[_NICK_COLOURS.index(nick_colour(event.sender))]
        name = f'<b class="lc-nick" style="color:{colour}">{html.escape(who)}</b>: '
    else:
        name = ""
    return f'<div class="lc-event lc-{event.kind}">{stamp}{name}{body}</div>'
