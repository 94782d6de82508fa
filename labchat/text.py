"""The text rules every layer shares: what makes a string safe to show anyone, and a message's shape.

Nothing here touches a socket. ``safe`` neutralises what could act on a reader's
terminal or page (controls, escapes, bidirectional overrides) or hide in it
(invisible characters, tag characters), keeping all printable text as it is,
so every view and every log line can use it. Chat text may hold several lines:
``safe(text, multiline=True)`` keeps each ``\\n`` and neutralises everything
else line by line, and ``trim`` gives a message its outline (no blank lines
around it), so code keeps its indentation; ``fence_open`` says whether a message
being typed ends inside a ```` ``` ```` block, where Enter is a new line (in a panel
and in the terminal alike).
"""

from __future__ import annotations

import re

# Line separators and bidirectional overrides: invisible, yet able to reorder or
# break what surrounds them, so they are shown by name too. So are the characters that
# are nothing but invisible: zero-width space, word joiner and the invisible operators, the
# byte order mark, the Mongolian vowel separator. A message of them alone would look empty,
# and they tell apart words that look the same. (The zero-width joiner and non-joiner stay:
# emoji and several scripts need them; so do the left-to-right and right-to-left marks.)
_INVISIBLE = frozenset(
    {
        0x180E,
        0x200B,
        0x2028,
        0x2029,
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2065),
        *range(0x2066, 0x206A),
        0xFEFF,
    }
)
# Tag characters (U+E0000 to U+E007F) spell out hidden ASCII; the one place they belong is
# a flag's tag sequence (black flag, tags, cancel tag: the flag of Scotland), kept whole.
_TAGS = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f|([\U000e0000-\U000e007f])")
# Any character safe() changes: controls, DEL, 8-bit controls, the invisibles, lone
# surrogates (a str can hold one, UTF-8 cannot: text with one could never be sent) and the
# tags (made from the set above, so the two never disagree).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f" + "".join(sorted(map(chr, _INVISIBLE))) + "\ud800-\udfff\U000e0000-\U000e007f]"
)

# Tab stops in multi-line text, every 4 columns: a tab-indented snippet keeps its shape
# (one space per tab would flatten it), and nothing moves a reader's cursor.
TAB = 4


def _safe_line(text: str) -> str:
    if not _UNSAFE.search(text):  # the usual case, found in one pass in C
        return text
    if max(text) >= "\U000e0000":  # a tag character: each one shown, but a flag's sequence
        text = _TAGS.sub(lambda m: f"<U+{ord(m[1]):04X}>" if m[1] else m[0], text)
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\t":
            out.append(" ")
        elif code < 0x20:
            out.append("^" + chr(code + 0x40))
        elif code == 0x7F:
            out.append("^?")
        elif 0x80 <= code < 0xA0 or code in _INVISIBLE or 0xD800 <= code < 0xE000:
            out.append(f"<U+{code:04X}>")
        else:
            out.append(ch)
    return "".join(out)


def safe(text: str, *, multiline: bool = False) -> str:
    """Text with every control character made visible and inert.

    ESC becomes ``^[``, a NUL ``^@``, DEL ``^?`` and the 8-bit controls
    ``<U+009B>`` style, as are a lone surrogate and the invisible characters; a
    tab becomes a space. Printable text is unchanged.

    With ``multiline=True`` (a chat message) each ``\\n`` is kept as a line
    break, a ``\\r\\n`` becomes ``\\n``, tabs become spaces to the next stop of
    ``TAB`` columns, and every other control, a lone ``\\r`` included (``^M``),
    is neutralised as above, line by line.
    """
    if not multiline:
        return _safe_line(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if "\t" in text:
        text = text.expandtabs(TAB)
    if "\n" not in text:
        return _safe_line(text)
    return "\n".join(_safe_line(line) for line in text.split("\n"))


def trim(text: str) -> str:
    """A message's outline: ``\\r\\n`` as ``\\n``, blank lines before and after it gone, no trailing space.

    Inner blank lines and every line's indentation stay, the first line's
    included, so a pasted snippet keeps its shape. A message of one line loses
    its leading spaces too: alone, they mean nothing.
    """
    text = text.replace("\r\n", "\n").rstrip()
    start = 0
    while (end := text.find("\n", start)) >= 0 and not text[start:end].strip():
        start = end + 1  # a blank line before the first line with words
    text = text[start:]
    return text if "\n" in text else text.lstrip()


def seconds(value: float) -> str:
    """A duration as people write it: '1 second', '0.5 seconds', '30 seconds'."""
    return f"{value:g} second{'' if value == 1 else 's'}"


# A fence line: three or more backticks, then an optional language (no backticks in it).
FENCE_LINE = re.compile(r"^ {0,3}(`{3,})([^`]*)$")


def fence_open(text: str) -> bool:
    """True if ``text`` ends inside a fenced code block that has not been closed yet."""
    opened = 0  # the length of the fence that opened the block, 0 outside one
    for line in text.split("\n"):
        found = FENCE_LINE.match(line)
        if not found:
            continue
        ticks, rest = found.groups()
        if not opened:
            opened = len(ticks)
        elif len(ticks) >= opened and not rest.strip():
            opened = 0
    return bool(opened)
