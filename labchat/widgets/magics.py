"""IPython magics that reach from the notebook into the chat, and from the chat into the notebook.

%load_ext labchat

%%chat                 the cell's source goes to the chat as a ```python block
%%chat sql             ... as a ```sql block (any language name)
%chat hello, class     one line, as if typed into the panel
%chat_paste            the latest code block from the chat becomes the next cell
%chat_paste 2          the second latest; ``%chat_paste #7``: the block numbered 7 in the panel

They speak through this kernel's panel: the newest client panel still in the
chat, else the host panel's own chat. A cell does not run when ``%%chat``
shares it. The code for the next cell travels in the reply to the cell that
asked (IPython's ``set_next_input``), so ``%chat_paste`` works in a cell run by
a person, not from a button (a widget's click is not a cell run).

The rule it keeps: a learner never sees a traceback from here. What cannot be
done (no panel, nothing shared yet, a message the chat refuses) is a
``UsageError`` of one sentence, which IPython shows as that sentence alone.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from .panel import ChatPanel
from .registry import current_panel, live_panels
from .view import CodeBlock

NO_PANEL = "no chat panel in this kernel is connected: run join(...) or host(...) first"


@magics_class
class ChatMagics(Magics):
    """``%%chat`` / ``%chat`` and ``%chat_paste``."""

    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> None:
        """``%%chat [LANGUAGE]`` shares the cell as a code block; ``%chat TEXT`` says one line."""
        panel = _speaking_panel()
        if cell is None:
            if not line.strip():
                raise UsageError("%chat needs something to say: %chat hello, or %%chat for a cell")
            if not panel.say(line):
                raise UsageError(panel.status)
            return
        language = line.strip() or "python"
        if len(language.split()) != 1 or "`" in language:
            raise UsageError(f"%%chat takes one language name, like %%chat python, not {line.strip()!r}")
        if not panel.share(cell, language):
            raise UsageError(panel.status)
        lines = cell.strip("\n").count("\n") + 1
        print(f"shared {lines} line{'s' if lines != 1 else ''} of {language} as {panel.nick}")

    @line_magic
    def chat_paste(self, line: str) -> None:
        """``%chat_paste [N | #K]``: a code block from the chat as the next cell."""
        block = _pick(_reading_panel(), line.strip())
        self.shell.set_next_input(block.code, replace=False)
        language = block.language or "code"
        print(f"the next cell holds #{block.number}, {language} from {block.sender} ({_lines(block)})")


def _speaking_panel() -> ChatPanel:
    panel = current_panel()
    if panel is None:
        raise UsageError(NO_PANEL)
    return panel


def _reading_panel() -> ChatPanel:
    """The panel whose code to paste from: the speaking one, else the newest that saw any code."""
    panel = current_panel()
    if panel is not None:
        return panel
    seen = [p for p in live_panels() if p.code_blocks()]
    if not seen:
        raise UsageError(NO_PANEL)
    return seen[-1]


def _pick(panel: ChatPanel, which: str) -> CodeBlock:
    """The block ``which`` names: "" the latest, "N" the N-th latest, "#K" the one numbered K."""
    blocks = panel.code_blocks()
    if not blocks:
        raise UsageError("no code has been shared in the chat yet (a block between ``` lines)")
    usage = f"%chat_paste takes N (1 is the latest) or #K (a block's number), not {which!r}"
    if not which:
        return blocks[-1]
    if which.startswith("#"):
        if not which[1:].isdigit():
            raise UsageError(usage)
        number = int(which[1:])
        for block in blocks:
            if block.number == number:
                return block
        first, last = blocks[0].number, blocks[-1].number
        raise UsageError(f"no code block #{number} in this panel (it holds #{first} to #{last})")
    if not which.isdigit() or int(which) < 1:
        raise UsageError(usage)
    nth = int(which)
    if nth > len(blocks):
        many = f"{len(blocks)} code block" + ("s" if len(blocks) != 1 else "")
        raise UsageError(f"the chat holds {many}; %chat_paste 1 is the latest")
    return blocks[-nth]


def _lines(block: CodeBlock) -> str:
    return f"{block.lines} line" + ("s" if block.lines != 1 else "")


def load_ipython_extension(ipython: Any) -> None:
    """Register the chat magics with this IPython (what ``%load_ext labchat`` calls)."""
    ipython.register_magics(ChatMagics)
