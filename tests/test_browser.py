"""The panels in a real JupyterLab, in headless Chromium: two notebooks and a terminal chat together.

One notebook hosts (a server in its kernel), a second joins it, and
``labchat join`` joins from a real pty. Each types into its own input; the
test watches the others' views, checks that HTML sent as a message is shown
as text, that the transcript keeps its newest line in sight, that the host's
live table of connections gains a row as each guest joins (drawn by its timer,
nobody asking), that "show the wire" shows the frames as escaped text, and saves
a screenshot of the two panels side by side in test-artifacts/.

Then code: a block typed line by line (Enter inside an open ``` block is a new
line), a paste that stays whole until sent, a mention counted in the title
until the panel is used, and a cell shared with ``%%chat`` whose ``<script>``
and ``<img onerror>`` show, highlighted, as text in the other notebook's panel,
folded until opened, selected whole by one click, and put into the host's next
cell by ``%chat_paste``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from browser.lab import CHROMIUM, JupyterLab, Terminal, write_notebook
from playwright.sync_api import Page, expect, sync_playwright

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ATTACK = "<img src=x onerror=alert(1)> <b>bold</b>"
SHARED = [  # a cell shared with %%chat: long enough to be folded, and full of markup
    "def shout(text):",
    "    # <script>alert('from the chat')</script>",
    '    return "<img src=x onerror=alert(1)>" + text.upper()',
    *(f"print(shout('line {n}'))" for n in range(12)),
]
WAIT = 30_000  # ms: a kernel's first start on a busy machine


def panel(page: Page, title: str):
    return page.locator(".lc-panel", has_text=title)


def transcript(page: Page, title: str):
    return panel(page, title).locator(".lc-scroll")


def input_box(page: Page, title: str):
    return panel(page, title).locator(".lc-input textarea")


def type_into(page: Page, title: str, text: str, *, button: bool = False) -> None:
    """Type a line into a panel's input and send it with Enter (or the Send button)."""
    box = input_box(page, title)
    box.click()
    box.press_sequentially(text)
    if button:
        panel(page, title).locator("button", has_text="Send").click()
    else:
        box.press("Enter")
    expect(box).to_have_value("", timeout=WAIT)  # the kernel took it and cleared the box


def snapshot(page: Page, path: Path) -> None:
    """A picture of the two notebooks, cut just below the lower of the two panels."""
    dock = page.locator("#jp-main-dock-panel").bounding_box()
    boxes = [panel.bounding_box() for panel in page.locator(".lc-panel").all()]
    bottom = max(box["y"] + box["height"] for box in boxes)
    clip = {"x": dock["x"], "y": dock["y"], "width": dock["width"], "height": bottom + 16 - dock["y"]}
    page.screenshot(path=str(path), clip=clip)
    assert path.stat().st_size > 10_000


def run_when_idle(page: Page, path: str, command: str = "notebook:run-all-cells") -> None:
    """Run the current notebook's cells (all, or as ``command`` says) once its kernel is up and idle."""
    page.wait_for_function(
        """(path) => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = w && w.sessionContext && w.sessionContext.session?.kernel;
            return !!w && w.context?.path === path && !!kernel && kernel.connectionStatus === 'connected'
                && kernel.status === 'idle';
        }""",
        arg=path,
        timeout=WAIT,
    )
    start(page, command)


def run_cells(page: Page, path: str, first: int, count: int = 1) -> None:
    """Make the notebook at ``path`` current and run ``count`` of its cells from index ``first``."""
    page.evaluate(
        """([path, first, count]) => {
            const app = window.jupyterapp;
            const notebook = Array.from(app.shell.widgets('main')).find((w) => w.context?.path === path);
            app.shell.activateById(notebook.id);
            for (let index = first; index < first + count; index++) {
                notebook.content.activeCellIndex = index;
                app.commands.execute('notebook:run-cell');
            }
        }""",
        [path, first, count],
    )


def start(page: Page, command: str) -> None:
    """Start a JupyterLab command without waiting for it to finish (a cell may run for long)."""
    page.evaluate("(command) => { window.jupyterapp.commands.execute(command); }", command)


@pytest.mark.browser
def test_two_notebooks_and_a_terminal_chat_in_jupyterlab(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    with JupyterLab(tmp_path) as lab, sync_playwright() as playwright:
        host_code = 'from labchat.widgets import host\npanel = host(port=0, nick="teacher")'
        write_notebook(lab.root / "host.ipynb", host_code, "%load_ext labchat\n%chat_paste")
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1500, "height": 980})
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        terminal = None
        try:
            page.goto(lab.url("host.ipynb"))
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=WAIT)
            start(page, "application:toggle-left-area")
            run_when_idle(page, "host.ipynb", "notebook:run-cell-and-select-next")
            serving = panel(page, "labchat host: teacher").locator(".lc-status-ok")
            expect(serving).to_contain_text("serving on 127.0.0.1:", timeout=WAIT)
            port = int(re.search(r"127\.0\.0\.1:(\d+)", serving.inner_text()).group(1))
            howto = panel(page, "labchat host: teacher").locator(".lc-howto")
            expect(howto).to_contain_text(f"labchat join 127.0.0.1:{port} --nick NAME")
            table_rows = panel(page, "labchat host: teacher").locator(".lc-conns tbody tr")
            expect(table_rows).to_have_count(1)
            expect(table_rows.first.locator("td").first).to_have_text("teacher")

            # The guest notebook, opened beside the host's. Its second cell keeps the kernel
            # busy until a word comes: what arrives meanwhile comes from the receiver thread.
            guest_code = f'from labchat.widgets import join\npanel = join("127.0.0.1", {port}, nick="ada")'
            busy_cell = 'print(panel.wait_for("term: you may stop now", timeout=120))'
            chat_cell = "%%chat\n" + "\n".join(SHARED)
            write_notebook(lab.root / "guest.ipynb", guest_code, busy_cell, "%load_ext labchat", chat_cell)
            page.evaluate(
                """() => window.jupyterapp.commands.execute('docmanager:open',
                    {path: 'guest.ipynb', options: {mode: 'split-right'}})"""
            )
            # Only the first cell: a new kernel's widgets are drawn once the kernel has
            # answered the widget manager, so the busy cell starts after the panel is up.
            run_when_idle(page, "guest.ipynb", "notebook:run-cell-and-select-next")
            expect(panel(page, "labchat: ada").locator(".lc-status-ok")).to_contain_text(
                f"connected to 127.0.0.1:{port} as ada", timeout=WAIT
            )
            # The host's table follows by itself: its timer looks at the server once a second.
            expect(table_rows).to_have_count(2)
            ada_row = table_rows.filter(has=page.locator("td", has_text="ada"))
            expect(ada_row.locator("td").nth(2)).to_have_text("json")
            expect(ada_row.locator("td").nth(3)).to_have_text("for under a minute")

            start(page, "notebook:run-cell-and-select-next")

            # And a terminal, through the real command line client.
            terminal = Terminal(["labchat", "join", f"127.0.0.1:{port}", "--nick", "term"])
            terminal.wait_for("Welcome, term!")
            expect(panel(page, "labchat: ada").locator(".lc-users")).to_contain_text("term")
            expect(table_rows).to_have_count(3)
            expect(table_rows.filter(has=page.locator("td", has_text="term"))).to_have_count(1)

            type_into(page, "labchat host: teacher", "hello from the teacher")
            expect(transcript(page, "labchat: ada")).to_contain_text("teacher: hello from the teacher")
            terminal.wait_for("teacher: hello from the teacher")

            terminal.type("hello from the terminal")
            for title in ("labchat host: teacher", "labchat: ada"):
                expect(transcript(page, title)).to_contain_text("term: hello from the terminal")

            guest_notebook = page.locator(".jp-NotebookPanel", has=panel(page, "labchat: ada"))
            guest_cells = guest_notebook.locator(".jp-Cell")
            busy_prompt = guest_cells.nth(1).locator(".jp-InputPrompt")
            expect(busy_prompt).to_have_text("[*]:")  # all of the above arrived while it ran
            terminal.type("you may stop now")
            expect(guest_cells.nth(1).locator(".jp-OutputArea")).to_contain_text("term: you may stop now")
            expect(busy_prompt).to_have_text("[2]:")

            type_into(page, "labchat: ada", "hello from ada")
            expect(transcript(page, "labchat host: teacher")).to_contain_text("ada: hello from ada")
            terminal.wait_for("ada: hello from ada")
            type_into(page, "labchat host: teacher", "sent with the button", button=True)
            expect(transcript(page, "labchat: ada")).to_contain_text("teacher: sent with the button")

            # HTML typed into one panel is text in the other panel and on the terminal.
            type_into(page, "labchat: ada", ATTACK)
            host_view = transcript(page, "labchat host: teacher")
            expect(host_view).to_contain_text(f"ada: {ATTACK}")
            assert host_view.locator("img").count() == 0
            assert host_view.locator("b", has_text="bold").count() == 0
            terminal.wait_for(f"ada: {ATTACK}")
            expect(transcript(page, "labchat: ada")).to_contain_text(f"ada: {ATTACK}")
            # Each line went exactly once (the button's click after the box's commit sends nothing).
            for title in ("labchat host: teacher", "labchat: ada"):
                for line in ("sent with the button", "hello from ada", "hello from the teacher"):
                    expect(transcript(page, title).locator(".lc-event", has_text=line)).to_have_count(1)
            snapshot(page, ARTIFACTS / "panels.png")

            # A longer chat: the newest line stays in sight.
            for n in range(12):
                terminal.type(f"line {n} of a longer chat")
            expect(host_view).to_contain_text("term: line 11 of a longer chat")
            in_sight = host_view.evaluate(
                """(box) => {
                    const lines = box.querySelectorAll('.lc-event');
                    const last = lines[lines.length - 1].getBoundingClientRect();
                    const view = box.getBoundingClientRect();
                    return [box.scrollHeight > box.clientHeight, last.bottom <= view.bottom + 1
                            && last.top >= view.top];
                }"""
            )
            assert in_sight == [True, True]

            snapshot(page, ARTIFACTS / "panels-long-chat.png")
            the_wire(page)
            chat_with_code(page, terminal)
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "browser-failure.png"))
            shutil.copy(lab.log_path, ARTIFACTS / "jupyterlab.log")
            if terminal is not None:
                (ARTIFACTS / "terminal-screen.txt").write_text(terminal.text())
            raise
        finally:
            if terminal is not None:
                terminal.close()
            browser.close()
    assert dialogs == []  # no alert() ever ran


def the_wire(page: Page) -> None:
    """Ticking "show the wire" in ada's panel: what she sends next shows as its frames, escaped."""
    guest_view = transcript(page, "labchat: ada")
    wire_box = panel(page, "labchat: ada").locator(".lc-wire-box input[type=checkbox]")
    expect(guest_view.locator(".lc-wire")).to_have_count(0)
    wire_box.check()
    type_into(page, "labchat: ada", "over the wire <img src=x onerror=alert(2)>")
    sent = guest_view.locator(".lc-wire", has_text='-> {"type":"say","text":"over the wire <img')
    expect(sent).to_have_count(1)
    echo = guest_view.locator(".lc-event", has_text="ada: over the wire").locator("+ .lc-wire")
    expect(echo).to_contain_text('<- {"type":"message","sender":"ada","text":"over the wire <img')
    assert guest_view.locator("img").count() == 0
    snapshot(page, ARTIFACTS / "panels-wire.png")
    wire_box.uncheck()
    expect(guest_view.locator(".lc-wire")).to_have_count(0)


def chat_with_code(page: Page, terminal: Terminal) -> None:
    """Several lines, a paste, a mention, and a cell shared with %%chat, between the two notebooks."""
    host_view, guest_view = transcript(page, "labchat host: teacher"), transcript(page, "labchat: ada")

    # A block typed line by line: Enter (or Shift+Enter) inside an open ``` block is a new line.
    box = input_box(page, "labchat: ada")
    box.click()
    box.press_sequentially("```python")
    box.press("Shift+Enter")
    box.press_sequentially("total = 0")
    box.press("Enter")
    # The kernel has read the open block once the box grows to three rows. Keys typed after
    # that may still reach it together with the closing Enter, which sends all the same.
    expect(box).to_have_attribute("rows", "3", timeout=WAIT)
    box.press_sequentially("```")
    box.press("Enter")
    expect(box).to_have_value("", timeout=WAIT)
    typed = host_view.locator(".lc-code code.language-python")
    expect(typed).to_have_text("total = 0")
    expect(typed.locator("span").first).to_be_visible()  # highlighted

    # A paste of several lines stays whole in the box, and goes as one message.
    box.click()
    page.keyboard.insert_text("pasted line one\n    pasted line two\n")
    expect(box).to_have_value("pasted line one\n    pasted line two\n")
    panel(page, "labchat: ada").locator("button", has_text="Send").click()
    expect(box).to_have_value("", timeout=WAIT)
    pasted = host_view.locator(".lc-event", has_text="pasted line one")
    expect(pasted).to_have_count(1)
    expect(pasted).to_contain_text("pasted line two")
    terminal.wait_for("pasted line two")

    # A mention is counted in ada's title until she types in her panel.
    type_into(page, "labchat host: teacher", "@ada have a look at this")
    title = panel(page, "labchat: ada").locator(".lc-title").locator("..")
    expect(title).to_contain_text("@ 1 unread mention")
    expect(guest_view.locator("mark.lc-mention")).to_have_text("@ada")
    input_box(page, "labchat: ada").press_sequentially("o")
    expect(title).not_to_contain_text("unread mention")
    input_box(page, "labchat: ada").fill("")

    # %%chat in the guest notebook posts a cell; the host's panel shows it as highlighted text.
    run_cells(page, "guest.ipynb", 2, 2)
    guest_cells = page.locator(".jp-NotebookPanel", has=panel(page, "labchat: ada")).locator(".jp-Cell")
    expect(guest_cells.nth(3).locator(".jp-OutputArea")).to_contain_text("shared 15 lines of python as ada")
    shared = host_view.locator("details.lc-fold", has_text="python, 15 lines")
    expect(shared).to_have_count(1)
    code = shared.locator("pre code.language-python")
    expect(code).not_to_be_visible()  # folded: a long block opens on a click
    shared.locator("summary").click()
    expect(code).to_be_visible()
    expect(code).to_contain_text("# <script>alert('from the chat')</script>")
    expect(code).to_contain_text('return "<img src=x onerror=alert(1)>" + text.upper()')
    assert code.locator("span[style]").count() > 10  # Pygments' colours
    for view in (host_view, guest_view):
        assert view.locator("script").count() == 0 and view.locator("img").count() == 0
    code.click()  # one click selects the whole block, ready to copy
    assert page.evaluate("() => window.getSelection().toString()") == "\n".join(SHARED)
    snapshot(page, ARTIFACTS / "panels-code.png")

    # %chat_paste in the host notebook puts that block into the next cell.
    run_cells(page, "host.ipynb", 1)
    host_cells = page.locator(".jp-NotebookPanel", has=panel(page, "labchat host: teacher")).locator(
        ".jp-Cell"
    )
    expect(host_cells).to_have_count(3, timeout=WAIT)
    expect(host_cells.nth(1).locator(".jp-OutputArea")).to_contain_text(
        "the next cell holds #2, python from ada"
    )
    expect(host_cells.nth(2).locator(".jp-InputArea")).to_contain_text("def shout(text):")
    expect(host_cells.nth(2).locator(".jp-InputArea")).to_contain_text("print(shout('line 11'))")
