"""How an event looks to a person: a terminal line, a plain text line, or HTML.

Nothing here touches a socket. Every function treats the text inside an event
as untrusted: control characters (the start of every terminal escape sequence)
are shown as harmless visible text, and HTML is escaped, so nothing one user
sends can move another user's cursor or inject markup into their page.
"""

from __future__ import annotations

import hashlib
import html
import time as _time

from .protocol import Event
from .text import safe

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


def nick_colour(nick: str) -> int:
    """A stable ANSI colour number for a nick (same nick, same colour, every run)."""
    digest = hashlib.blake2s(nick.lower().encode("utf-8"), digest_size=2).digest()
    return _NICK_COLOURS[int.from_bytes(digest, "big") % len(_NICK_COLOURS)]


def clock(event: Event) -> str:
    """The event's server time as local ``HH:MM``."""
    return _time.strftime("%H:%M", _time.localtime(event.time))


def describe(event: Event) -> tuple[str, str]:
    """An event as (who, what): the two halves every view shows, both made safe.

    ``who`` is empty for notices that have no speaker.
    """
    sender, text, target = safe(event.sender), safe(event.text), safe(event.target)
    kind = event.kind
    if kind == "message":
        return sender, text
    if kind == "bot":
        return sender, text
    if kind == "action":
        return "", f"* {sender} {text}"
    if kind == "private":
        return "", f"[private] {sender} -> {target}: {text}"
    if kind == "join":
        return "", f"--> {sender} joined" + (f" ({text})" if text else "")
    if kind == "leave":
        return "", f"<-- {sender} left" + (f" ({text})" if text else "")
    if kind == "nick":
        return "", f"--- {sender} is now known as {target}"
    if kind == "error":
        return "", f"!!! {text}"
    return "", text  # welcome, system


def plain(event: Event) -> str:
    """One line of plain text, as a netcat user or a log sees it (no newline)."""
    who, what = describe(event)
    return f"{who}: {what}" if who else what


def terminal(event: Event, *, color: bool = False, show_time: bool = True) -> str:
    """One line for a terminal: optional ``HH:MM`` stamp and ANSI colours."""
    who, what = describe(event)
    stamp = f"{clock(event)} " if show_time and event.time else ""
    if not color:
        return stamp + (f"{who}: {what}" if who else what)
    if who:
        style = _STYLES.get(event.kind, "")
        body = f"{style}{what}{_RESET}" if style else what
        return f"\x1b[2m{stamp}{_RESET}\x1b[1;{nick_colour(event.sender)}m{who}{_RESET}: {body}"
    style = _STYLES.get(event.kind, "")
    return f"\x1b[2m{stamp}{_RESET}{style}{what}{_RESET}" if style else f"\x1b[2m{stamp}{_RESET}{what}"


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


def html_line(event: Event, *, show_time: bool = True) -> str:
    """One event as an HTML fragment: every piece of user text escaped."""
    who, what = describe(event)
    stamp = f'<span class="lc-time">{clock(event)}</span> ' if show_time and event.time else ""
    body = html.escape(what)
    if who:
        colour = _HTML_COLOURS[_NICK_COLOURS.index(nick_colour(event.sender))]
        name = f'<b class="lc-nick" style="color:{colour}">{html.escape(who)}</b>: '
    else:
        name = ""
    return f'<div class="lc-event lc-{event.kind}">{stamp}{name}{body}</div>'
