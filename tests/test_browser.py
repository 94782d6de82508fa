"""The panels in a real JupyterLab, in headless Chromium: two notebooks and a terminal chat together.

One notebook hosts (a server in its kernel), a second joins it, and
``labchat join`` joins from a real pty. Each types into its own input; the
test watches the others' views, checks that HTML sent as a message is shown
as text, that the transcript keeps its newest line in sight, and saves a
screenshot of the two panels side by side in test-artifacts/.
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
WAIT = 30_000  # ms: a kernel's first start on a busy machine


def panel(page: Page, title: str):
    return page.locator(".lc-panel", has_text=title)


def transcript(page: Page, title: str):
    return panel(page, title).locator(".lc-scroll")


def type_into(page: Page, title: str, text: str, *, button: bool = False) -> None:
    """Type a line into a panel's input and send it with Enter (or the Send button)."""
    box = panel(page, title).locator(".widget-text input[type='text']")
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


def start(page: Page, command: str) -> None:
    """Start a JupyterLab command without waiting for it to finish (a cell may run for long)."""
    page.evaluate("(command) => { window.jupyterapp.commands.execute(command); }", command)


@pytest.mark.browser
def test_two_notebooks_and_a_terminal_chat_in_jupyterlab(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    with JupyterLab(tmp_path) as lab, sync_playwright() as playwright:
        host_code = 'from labchat.widgets import host\npanel = host(port=0, nick="teacher")'
        write_notebook(lab.root / "host.ipynb", host_code)
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
            run_when_idle(page, "host.ipynb")
            serving = panel(page, "labchat host: teacher").locator(".lc-status-ok")
            expect(serving).to_contain_text("serving on 127.0.0.1:", timeout=WAIT)
            port = int(re.search(r"127\.0\.0\.1:(\d+)", serving.inner_text()).group(1))
            howto = panel(page, "labchat host: teacher").locator(".lc-howto")
            expect(howto).to_contain_text(f"labchat join 127.0.0.1:{port} --nick NAME")

            # The guest notebook, opened beside the host's. Its second cell keeps the kernel
            # busy until a word comes: what arrives meanwhile comes from the receiver thread.
            guest_code = f'from labchat.widgets import join\npanel = join("127.0.0.1", {port}, nick="ada")'
            busy_cell = 'print(panel.wait_for("term: you may stop now", timeout=120))'
            write_notebook(lab.root / "guest.ipynb", guest_code, busy_cell)
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

            start(page, "notebook:run-cell-and-select-next")

            # And a terminal, through the real command line client.
            terminal = Terminal(["labchat", "join", f"127.0.0.1:{port}", "--nick", "term"])
            terminal.wait_for("Welcome, term!")
            expect(panel(page, "labchat: ada").locator(".lc-users")).to_contain_text("term")

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
