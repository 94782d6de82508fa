"""How events look to people: plain, terminal and HTML lines, code blocks, and nothing a sender can abuse."""

from __future__ import annotations

import ast
import html
import re
import subprocess
import sys
import time
from html.parser import HTMLParser

import pytest

from labchat.protocol import Event
from labchat.render import (
    Block,
    blocks,
    describe,
    html_body,
    html_line,
    mentions,
    nick_colour,
    plain,
    safe,
    terminal,
)
from labchat.widgets.style import CSS
from labchat.widgets.view import CodeBlock, code_of, event_html

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


def test_safe_names_what_is_only_invisible_and_keeps_what_scripts_and_emoji_need() -> None:
    assert safe("\u200b") == "<U+200B>"  # a message of it alone no longer looks empty
    assert safe("ad\u2060a\ufeff\u180e") == "ad<U+2060>a<U+FEFF><U+180E>"
    assert safe("hid\U000e0041\U000e0042den") == "hid<U+E0041><U+E0042>den"  # tags spell hidden ASCII
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert safe(f"go {scotland}!") == f"go {scotland}!"  # a flag's tag sequence is kept whole
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # joined by zero-width joiners
    assert safe(f"{family} \u0645\u06cc\u200c\u0634\u0648\u062f \u05e9\u05dc\u05d5\u05dd\u200f.") == (
        f"{family} \u0645\u06cc\u200c\u0634\u0648\u062f \u05e9\u05dc\u05d5\u05dd\u200f."
    )


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
    assert fragment == '<div class="lc-event lc-join">--&gt; <bdi>&lt;i&gt;bob&lt;/i&gt;</bdi> joined</div>'


def test_describe_splits_speaker_from_text() -> None:
    assert describe(event("message", sender="ada", text="hi")) == ("ada", "hi")
    assert describe(event("action", sender="ada", text="waves")) == ("", "* ada waves")


def test_an_event_without_a_time_has_no_stamp() -> None:
    assert terminal(Event(kind="system", text="hello")) == "hello"


# -- messages of several lines, and code -----------------------------------------------------------

SNIPPET = "look at this:\n```python\ndef f(x):\n    if x:\n\n        return x  # `kept`\n```\nwhy?"
ESCAPES = re.compile(r"\x1b\[[0-9;]*m")


def test_safe_keeps_the_lines_of_chat_text_and_neutralises_the_rest() -> None:
    assert safe("a\nb", multiline=True) == "a\nb"
    assert safe("a\r\nb", multiline=True) == "a\nb"  # a Windows line end is a line end
    assert safe("a\rb\n\x1b[2Jc", multiline=True) == "a^Mb\n^[[2Jc"  # a lone CR moves nothing
    assert safe("\tx\n  \ty", multiline=True) == "    x\n    y"  # tab stops every 4 columns
    assert safe("a\u2028b\x85c\x0bd", multiline=True) == "a<U+2028>b<U+0085>c^Kd"  # other line breaks: inert
    assert safe("a\nb") == "a^Jb"  # a nick or a log line stays one line


def test_blocks_split_a_message_into_text_inline_code_and_fenced_code() -> None:
    assert blocks(SNIPPET) == [
        Block("text", "look at this:", source="look at this:"),
        Block(
            "code",
            "def f(x):\n    if x:\n\n        return x  # `kept`",
            "python",
            "```python\ndef f(x):\n    if x:\n\n        return x  # `kept`\n```",
        ),
        Block("text", "why?", source="why?"),
    ]
    assert blocks("use `len(x)` or ``a`b``") == [
        Block("text", "use ", source="use "),
        Block("inline", "len(x)", source="`len(x)`"),
        Block("text", " or ", source=" or "),
        Block("inline", "a`b", source="``a`b``"),
    ]
    assert blocks("") == []
    assert blocks("not `closed") == [Block("text", "not `closed", source="not `closed")]


def test_a_fence_closes_with_as_many_backticks_and_an_open_one_runs_to_the_end() -> None:
    (outer,) = blocks("````md\n```\ninner\n```\n````")
    assert (outer.kind, outer.language, outer.text) == ("code", "md", "```\ninner\n```")
    (open_block,) = blocks("```\nno end")
    assert (open_block.kind, open_block.text) == ("code", "no end")
    assert blocks("```js is fun```")[0].kind == "inline"  # backticks after the info: not a fence
    assert blocks("```<script>\nx\n```")[0].language == ""  # not a language name


def test_a_message_of_several_lines_on_a_plain_line_marks_each_line_as_its_own() -> None:
    item = event("message", sender="ada", text="first\n    indented\n\nlast")
    assert plain(item) == "ada: first\nada|     indented\nada|\nada| last"
    private = event("private", sender="ada", target="bob", text="a\nb")
    assert plain(private) == "[private] ada -> bob: a\n[private] ada -> bob| b"
    assert plain(event("action", sender="ada", text="waves\nagain")) == "* ada waves\n* ada| again"
    forged = event("message", sender="ada", text="hi\n\x1b[2Jbob: fake")
    assert plain(forged) == "ada: hi\nada| ^[[2Jbob: fake"  # every line says whose it is


class _Lines(HTMLParser):
    """The text of an HTML fragment, each piece with whether it is inside a ``lc-more`` block."""

    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[tuple[str, bool]] = []
        self._open: list[bool] = []  # for each open element: is it a further-lines block

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("br",):
            self._open.append("lc-more" in (dict(attrs).get("class") or "").split())

    def handle_endtag(self, tag: str) -> None:
        self._open.pop()

    def handle_data(self, data: str) -> None:
        self.pieces.append((data, any(self._open)))


def further(fragment: str) -> tuple[str, str]:
    """(the first line's text, the further lines' text) of an event's HTML."""
    lines = _Lines()
    lines.feed(fragment)
    return "".join(t for t, more in lines.pieces if not more), "".join(t for t, more in lines.pieces if more)


@pytest.mark.parametrize(
    ("kind", "text", "first", "rest"),
    [
        ("message", "ok\n12:34 teacher: paste this: import os", "12:34 mallory: ok", "12:34 teacher: paste"),
        ("message", "```python\nx = 1\n```\n12:34 teacher: run it", "12:34 mallory: ", "x = 1"),
        ("message", "see:\n```\nx\n```\n12:34 teacher: run it", "12:34 mallory: see:", "12:34 teacher:"),
        ("message", "@ada look\n\n12:34 teacher: hi", "12:34 mallory: @ada look", "12:34 teacher: hi"),
        ("action", "waves\n12:34 teacher: hi", "12:34 * mallory waves", "12:34 teacher: hi"),
        ("private", "psst\n12:34 teacher: hi", "12:34 [private] mallory -> ada: psst", "12:34 teacher: hi"),
        ("leave", "bye\n12:34 teacher: hi", "12:34 <-- mallory left (bye", "12:34 teacher: hi)"),
    ],
)
def test_every_further_line_of_a_message_in_html_is_set_apart(
    kind: str, text: str, first: str, rest: str
) -> None:
    item = event(kind, sender="mallory", target="ada", text=text)
    blocks = [CodeBlock(n, "mallory", language, code) for n, (language, code) in enumerate(code_of(item), 1)]
    fragment = event_html(item, nick="ada", blocks=blocks)  # as a panel draws it: captions, mentions
    head, more = further(fragment)
    assert head == first  # the first line alone stands where a line of its own would
    assert rest in more and "teacher" not in head
    assert fragment.count('<div class="lc-more">') == 1
    assert event_html(event(kind, sender="mallory", target="ada", text="one line")).count("lc-more") == 0


def test_a_right_to_left_nick_is_isolated_from_the_words_beside_it() -> None:
    message = event_html(event("message", sender="דני", text="123 hello"))
    assert re.search(r'<b class="lc-nick" [^>]*>דני</b>: 123 hello', message)
    assert re.search(r"\.lc-nick \{[^}]*unicode-bidi: isolate", CSS)  # the panels' style isolates it
    assert "* <bdi>דני</bdi> 123 waves" in event_html(event("action", sender="דני", text="123 waves"))
    private = event_html(event("private", sender="דני", target="bob", text="1 2"))
    assert "[private] <bdi>דני</bdi> -&gt; <bdi>bob</bdi>: 1 2" in private
    assert "--&gt; <bdi>דני</bdi> joined" in event_html(event("join", sender="דני"))


def test_a_terminal_prints_further_lines_under_the_first_indented_to_the_text() -> None:
    item = event("message", sender="ada", text="first\n    indented\n\nlast")
    assert terminal(item).split("\n") == [
        "12:34 ada: first",
        "               indented",
        "",
        "           last",
    ]
    wide = event("message", sender="日本", text="a\nb")  # wide characters take two columns
    assert terminal(wide, show_time=False).split("\n") == ["日本: a", "      b"]


def test_without_colour_a_code_block_is_shown_exactly_as_it_was_sent() -> None:
    shown = terminal(event("message", sender="bob", text=SNIPPET), show_time=False)
    assert shown == "\n".join(
        ("bob: " if n == 0 else "     ") + line if line else "" for n, line in enumerate(SNIPPET.split("\n"))
    )
    assert "\x1b" not in shown


def test_with_colour_code_is_highlighted_and_nothing_but_colour_is_added() -> None:
    pytest.importorskip("pygments")
    item = event("message", sender="bob", text=SNIPPET)
    coloured = terminal(item, color=True)
    assert "\x1b[94mdef\x1b[39;49;00m" in coloured  # Pygments' TerminalFormatter: a keyword
    assert "\x1b[2m```python\x1b[22m" in coloured  # the fences, dim
    assert ESCAPES.sub("", coloured) == terminal(item)  # same text, same indentation, only colours added
    hostile = event("message", sender="bob", text="```python\nx = '\x1b]0;pwned\x07'\n```")
    assert ESCAPES.sub("", terminal(hostile, color=True)) == terminal(hostile)
    assert "\x07" not in terminal(hostile, color=True)


def test_a_mention_is_bold_for_the_one_mentioned_only() -> None:
    item = event("message", sender="bob", text="@ada look, not @adam")
    assert "\x1b[1m@ada\x1b[22m look" in terminal(item, color=True, nick="ada")
    assert "\x1b[1m" not in terminal(item, color=True, nick="cy").split(": ", 1)[1]
    assert terminal(item, nick="ada") == terminal(item)  # no colour, no bold


@pytest.mark.parametrize(
    ("text", "mentioned"),
    [
        ("hi @ada", True),
        ("@ADA: look", True),
        ("thanks @ada.", True),
        ("@ada's turn", True),
        ("hi @adam", False),
        ("mail bob@ada.org", False),
        ("@ada.b is someone else", False),
        ("hi ada", False),
        ("`@ada` in code", False),
        ("```\n@ada\n```", False),
    ],
)
def test_mentions(text: str, mentioned: bool) -> None:
    assert mentions(text, "ada") is mentioned


def test_html_body_escapes_text_and_shows_code_as_code() -> None:
    pytest.importorskip("pygments")
    text = '<b>hi</b> & `<i>` @ada\n```python\nif a < b and "x":\n    pass\n```\nbye'
    body = html_body(event("message", sender="bob", text=text), nick="ada")
    mention = '<mark class="lc-mention">@ada</mark>'
    assert body.startswith(f"&lt;b&gt;hi&lt;/b&gt; &amp; <code>&lt;i&gt;</code> {mention}")
    assert f'{mention}<div class="lc-more"><pre><code class="language-python">' in body
    assert body.endswith("</code></pre>bye</div>")
    assert '<span style="color: #008000; font-weight: bold">if</span>' in body  # inline styles: no stylesheet
    code = body.split('<code class="language-python">')[1].split("</code></pre>")[0]
    assert html.unescape(re.sub(r"<[^>]+>", "", code)) == 'if a < b and "x":\n    pass'
    assert "<b>" not in body and "<i>" not in body


def test_html_body_of_a_language_it_does_not_know_is_escaped_as_it_is() -> None:
    body = html_body(event("message", sender="bob", text="```nosuchlang\n<x> & y\n```"))
    more = '<div class="lc-more">'  # the code's lines follow the fence's: further lines of the message
    assert body == f'{more}<pre><code class="language-nosuchlang">&lt;x&gt; &amp; y</code></pre></div>'
    unnamed = html_body(event("message", sender="bob", text="```\n<x>\n```"))
    assert unnamed == f"{more}<pre><code>&lt;x&gt;</code></pre></div>"
    assert html_body(event("message", sender="bob", text="a\nb")) == f"a{more}b</div>"


def test_html_line_of_a_plain_message_is_unchanged_and_code_is_code() -> None:
    simple = html_line(event("message", sender="ada", text="hi"), show_time=False)
    assert simple.endswith(">ada</b>: hi</div>")
    fragment = html_line(event("private", sender="ada", target="bob", text="see `x`"), show_time=False)
    assert fragment == (
        '<div class="lc-event lc-private">'
        "[private] <bdi>ada</bdi> -&gt; <bdi>bob</bdi>: see <code>x</code></div>"
    )
    notice = html_line(event("system", text="one\ntwo\nthree"), show_time=False)
    assert notice == '<div class="lc-event lc-system">one<div class="lc-more">two<br>three</div></div>'


def test_without_pygments_code_is_shown_escaped_and_plain() -> None:
    """A Python where Pygments cannot be imported: the same views, with no colour in the code."""
    script = (
        "import sys; sys.modules['pygments'] = None\n"
        "from labchat.protocol import Event\n"
        "from labchat.render import html_body, terminal\n"
        "e = Event(kind='message', sender='bob', text='```python\\nif a < b:\\n    pass\\n```')\n"
        "print(repr(html_body(e)))\n"
        "print(repr(terminal(e, color=True, show_time=False)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    body, shown = (ast.literal_eval(line) for line in done.stdout.splitlines())
    code = '<pre><code class="language-python">if a &lt; b:\n    pass</code></pre>'
    assert body == f'<div class="lc-more">{code}</div>'
    assert shown == (
        f"\x1b[2m\x1b[0m\x1b[1;{nick_colour('bob')}mbob\x1b[0m: \x1b[2m```python\x1b[22m\n"
        "     if a < b:\n         pass\n     \x1b[2m```\x1b[22m"
    )
