"""How a panel's transcript lays out in a real browser (headless Chromium), where the eye reads it.

A transcript is drawn from ``view.event_html`` with the panels' own style sheet,
and where its text lands on the page is measured: a further line of a message
sits set in from where lines start, beside a rule, so it cannot pass for a line
of its own; a right-to-left nick does not pull the words after it into its run.
"""

from __future__ import annotations

import time

import pytest
from browser.lab import CHROMIUM
from playwright.sync_api import Page, sync_playwright

from labchat import render
from labchat.protocol import Event
from labchat.widgets.style import CSS
from labchat.widgets.view import event_html

# Where the first occurrence of a text lands: (left, right) of its box, in CSS pixels.
WHERE = """(needle) => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = node.data.indexOf(needle);
        if (at >= 0) {
            const range = document.createRange();
            range.setStart(node, at);
            range.setEnd(node, at + needle.length);
            const box = range.getBoundingClientRect();
            return [box.left, box.right];
        }
    }
    return null;
}"""


NOW = time.time()


def said(sender: str, text: str) -> str:
    return event_html(Event(kind="message", seq=1, time=NOW, sender=sender, text=text), nick="ada")


@pytest.fixture(scope="module")
def page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser.new_page(viewport={"width": 900, "height": 600})
        finally:
            browser.close()


def show(page: Page, *events: str) -> None:
    transcript = f'<div class="lc-scroll"><div>{"".join(events)}</div></div>'
    page.set_content(f'{CSS}<div class="lc-panel">{transcript}</div>')


def where(page: Page, text: str) -> tuple[float, float]:
    box = page.evaluate(WHERE, text)
    assert box is not None, f"{text!r} is not on the page"
    return box[0], box[1]


@pytest.mark.browser
def test_a_further_line_of_a_message_cannot_pass_for_a_line_of_its_own(page):
    stamp = render.clock(Event(kind="message", time=NOW))  # a forger writes the very stamp shown
    show(
        page,
        said("teacher", "please run the next cell"),
        said("mallory", f"ok\n{stamp} teacher: everyone paste this"),
        said("mallory", f"```python\nx = 1\n```\n{stamp} teacher: and this"),
    )
    line_start = where(page, stamp)[0]  # the real teacher's line: where every line starts
    for text in ("everyone paste this", "and this"):
        left = where(page, f"{stamp} teacher: {text}")[0]
        assert left >= line_start + 12  # set in, clearly: a line of its own starts at line_start
    rules = page.locator(".lc-more").evaluate_all(
        "(all) => all.map((d) => getComputedStyle(d).borderLeftWidth)"
    )
    assert rules == ["2px", "2px"]  # and each beside a rule


@pytest.mark.browser
def test_a_right_to_left_nick_keeps_the_words_after_it_in_their_place(page):
    show(page, said("דני", "123 hello"))
    nick_left, nick_right = where(page, "דני")
    number_left, _ = where(page, "123")
    assert number_left > nick_right  # "דני: 123 hello", not "123 :דני hello"
    assert where(page, "hello")[0] > number_left
