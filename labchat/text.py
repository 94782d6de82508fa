"""The text rules every layer shares: what makes a string safe to show anyone.

Nothing here touches a socket. ``safe`` neutralises what could act on a reader's
terminal or page (controls, escapes, bidirectional overrides), keeping all
printable text as it is, so every view and every log line can use it.
"""

from __future__ import annotations

import re

# Line separators and bidirectional overrides: invisible, yet able to reorder or
# break what surrounds them, so they are shown by name too.
_INVISIBLE = frozenset({0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)})
# Any character safe() changes: controls, DEL, 8-bit controls and the invisibles above.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")


def safe(text: str) -> str:
    """Text with every control character made visible and inert.

    ESC becomes ``^[``, a NUL ``^@``, DEL ``^?`` and the 8-bit controls
    ``<U+009B>`` style; a tab becomes a space. Printable text is unchanged.
    """
    if not _UNSAFE.search(text):  # the usual case, found in one pass in C
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\t":
            out.append(" ")
        elif code < 0x20:
            out.append("^" + chr(code + 0x40))
        elif code == 0x7F:
            out.append("^?")
        elif 0x80 <= code < 0xA0 or code in _INVISIBLE:
            out.append(f"<U+{code:04X}>")
        else:
            out.append(ch)
    return "".join(out)
