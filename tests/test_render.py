"""How events look to people: plain lines, terminal lines, HTML, and nothing a sender can abuse."""

from __future__ import annotations

import re
import time

import pytest

from labchat.protocol import Event
from labchat.render import describe, html_line, nick_colour, plain, safe, terminal

NOON = time.mktime((2024, 5, 6, 12, 34, 0, 0, 0, -1))  # local time, whatever the zone


def event(kind: str, **fields: object) -> Event:
    return Event(kind=kind, seq=1, time=NOON, **fields)


@pytest.mark.parametrize(
    ("item", "line"),
    [
        (event("message", sender="ada", text="hi"), "ada: hi"),
        (event("bot", sender="greeter", text="Hello"), "greeter: Hello"),
        (event("action", sender="ada", text="waves"), "* ada waves"),
        (event("private", sender="ada", target="bob", text="psst"), "[private] ada -> bob: psst"),
        (event("join", sender="bob"), "--> bob joined"),
        (event("leave", sender="bob"), "<-- bob left"),
        (event("leave", sender="bob", text="see you"), "<-- bob left (see you)"),
        (event("nick", sender="ada", target="ada2"), "--- ada is now known as ada2"),
        (event("error", code="usage", text="usage: /nick NEW"), "!!! usage: /nick NEW"),
        (event("system", text="2 here: ada, bob"), "2 here: ada, bob"),
        (event("welcome", sender="ada", text="Welcome, ada!"), "Welcome, ada!"),
    ],
)
def test_plain_lines_for_every_kind(item: Event, line: str) -> None:
    assert plain(item) == line
    assert terminal(item) == "12:34 " + line
    assert terminal(item, show_time=False) == line


def test_safe_shows_control_characters_as_visible_text() -> None:
    assert safe("a\x1b[2Jb") == "a^[[2Jb"
    assert safe("\x00\x07\r\n\x7f") == "^@^G^M^J^?"
    assert safe("tab\there") == "tab here"
    assert safe("\x9b31m") == "<U+009B>31m"
    assert safe("abc\u202edcba\u2066") == "abc<U+202E>dcba<U+2066>"
    assert safe("naïve 日本 👋") == "naïve 日本 👋"


def test_no_escape_reaches_the_terminal_from_any_field() -> None:
    nasty = "\x1b]0;pwned\x07\x1b[2J\r"
    for kind in ("message", "action", "private", "join", "leave", "nick", "error", "system", "bot"):
        item = event(kind, sender=nasty, target=nasty, text=nasty)
        for line in (plain(item), terminal(item)):
            assert not re.search(r"[\x00-\x1f\x7f-\x9f]", line), (kind, line)
        coloured = terminal(item, color=True)
        # The only escapes left are the renderer's own colour codes: ESC [ digits ; m
        assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == terminal(item)


def test_colour_is_stable_per_nick_whatever_its_case() -> None:
    assert nick_colour("ada") == nick_colour("ADA") == nick_colour("ada")
    assert len({nick_colour(f"user{i}") for i in range(100)}) > 6
    line = terminal(event("message", sender="ada", text="hi"), color=True)
    assert f"\x1b[1;{nick_colour('ada')}mada\x1b[0m: hi" in line


def test_html_escapes_everything_a_user_typed() -> None:
    item = event("message", sender="ada", text='<script>alert("x")</script> & <b>')
    fragment = html_line(item)
    assert "<script>" not in fragment and "<b>" not in fragment
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in fragment
    assert fragment.startswith('<div class="lc-event lc-message"><span class="lc-time">12:34</span> ')
    assert '<b class="lc-nick" style="color:#' in fragment and ">ada</b>: " in fragment


def test_html_for_notices_has_no_nick_and_no_time_when_asked() -> None:
    fragment = html_line(event("join", sender="<i>bob</i>"), show_time=False)
    assert fragment == '<div class="lc-event lc-join">--&gt; &lt;i&gt;bob&lt;/i&gt; joined</div>'


def test_describe_splits_speaker_from_text() -> None:
    assert describe(event("message", sender="ada", text="hi")) == ("ada", "hi")
    assert describe(event("action", sender="ada", text="waves")) == ("", "* ada waves")


def test_an_event_without_a_time_has_no_stamp() -> None:
    assert terminal(Event(kind="system", text="hello")) == "hello"
