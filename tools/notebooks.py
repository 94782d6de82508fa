"""Keep the tutorial notebooks in order: navigation, the index, and stored outputs.

The rule it keeps: the list of tutorials lives in one place (``PATH`` below);
the index notebook, ``notebooks/README.md`` and the navigation line at the end
of every notebook are generated from it, never edited by hand.

    python tools/notebooks.py nav            # refresh the index and navigation lines
    python tools/notebooks.py run [NAMES]    # execute in a fresh kernel and save with outputs
    python tools/notebooks.py all [NAMES]    # both

Notebooks run with the ``notebooks/`` folder as their working directory, as
under nbval, so what is stored is what ``python -m pytest notebooks`` compares.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
INDEX = "00-Index.ipynb"

# (file, minutes a learner needs, what it teaches). The order is the learning path.
PATH: list[tuple[str, int, str]] = [
    (
        "01-The-Client-Server-Model.ipynb",
        20,
        "a server listens, a client connects; addresses, ports (0-65535), loopback; both ends in one kernel",
    ),
    (
        "02-The-Server-Socket.ipynb",
        35,
        "`socket`, `bind`, `listen`, `accept`; port 0; closing, TIME_WAIT and `SO_REUSEADDR`; "
        "**exercise**: a server for one client",
    ),
    (
        "03-The-Client-Socket.ipynb",
        40,
        "`connect`, `send`'s real numbers, `recv`; FIN, RST and half-close; UTF-8; "
        "**exercises**: `sendall` from `send`, `recv_exactly`",
    ),
    (
        "04-Message-Framing.ipynb",
        45,
        "why `recv` is not a message; delimiters and length prefixes; Nagle measured; "
        "**exercises**: `recv_line`, a line decoder, a length decoder",
    ),
    (
        "05-Threads-For-Real-Time-Chat.ipynb",
        45,
        "one thread listens, one sends; slow readers hold senders back; "
        "**exercises**: the receiver thread, a race fixed with a lock, a deadlock fixed",
    ),
    (
        "05.1-The-Classic-Two-Program-Chat.ipynb",
        30,
        "**write** the classic chat server and client, chat between two terminals, then join labchat",
    ),
    (
        "06-The-Labchat-Server-And-Client.ipynb",
        25,
        "`ChatServer` and `ChatClient`: several people, commands, history, the greeter, `bye`, netcat; "
        "its threads; one room on two engines",
    ),
    (
        "06.1-One-Thread-For-Everyone.ipynb",
        40,
        "`select` and `selectors`; both engines with 1,000 idle clients; the GIL; "
        "**exercise**: a selectors echo server",
    ),
    (
        "07-Chat-Panels.ipynb",
        25,
        "chat panels in JupyterLab: host a room, join it from a panel, a notebook or a terminal; "
        "open it to the classroom network, and what to do when it does not connect",
    ),
    (
        "07.1-Join-A-Room.ipynb",
        15,
        "the notebook for classmates: join someone's room (or a practice room of its own) and chat",
    ),
    (
        "08-Making-It-Friendly.ipynb",
        30,
        "the greeter bot and how events are rendered; **exercises**: a new answer for the greeter, `/roll`",
    ),
    (
        "09-When-Things-Go-Wrong.ipynb",
        40,
        "bad input answered in its place, a flood paced, a stuck reader cut off, peers that vanish, "
        "safe defaults; **exercises**: a client for a chopping server, keepalive",
    ),
]

NAV_KEY = "labchat"  # cell metadata key marking generated cells: {"labchat": "nav" | "index"}


def title_of(name: str) -> str:
    """The notebook's H1 title (first line of its first Markdown cell)."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise ValueError(f"{name} has no H1 title")


def label(name: str) -> str:
    """'04-Message-Framing.ipynb' -> '04 Message Framing' (number and title)."""
    return f"{name.partition('-')[0]} {title_of(name)}"


def index_table() -> str:
    """The learning path as a Markdown table: number, link, what it teaches, time."""
    rows = ["| | Notebook | What you will do | Time |", "|---|---|---|---|"]
    for name, minutes, summary in PATH:
        number, _, _ = name.partition("-")
        rows.append(f"| {number} | [{title_of(name)}]({name}) | {summary} | {minutes} min |")
    total = sum(minutes for _, minutes, _ in PATH)
    rows.append(f"| | **All of it** | | **about {round(total / 60, 1):g} hours** |")
    return "\n".join(rows)


def nav_line(name: str) -> str:
    """The last cell of a notebook: previous / index / next."""
    names = [n for n, _, _ in PATH]
    i = names.index(name)
    parts = []
    if i > 0:
        parts.append(f"[← {label(names[i - 1])}]({names[i - 1]})")
    parts.append(f"[Index]({INDEX})")
    if i + 1 < len(names):
        parts.append(f"[{label(names[i + 1])} →]({names[i + 1]})")
    return "---\n" + " | ".join(parts)


def _set_generated(nb: nbformat.NotebookNode, role: str, source: str, at_end: bool) -> None:
    cell = next((c for c in nb.cells if c.metadata.get(NAV_KEY) == role), None)
    if cell is None:
        cell = nbformat.v4.new_markdown_cell(source, metadata={NAV_KEY: role})
        if at_end:
            nb.cells.append(cell)
        else:  # the index list goes right after the introduction
            nb.cells.insert(min(1, len(nb.cells)), cell)
    cell.source = source


def refresh_navigation() -> None:
    """Rewrite every generated cell, and notebooks/README.md, from PATH."""
    missing = [n for n, _, _ in PATH if not (NOTEBOOKS / n).exists()]
    if missing:
        raise SystemExit(f"notebooks missing: {', '.join(missing)}")
    table = index_table()
    index = nbformat.read(NOTEBOOKS / INDEX, as_version=4)
    _set_generated(index, "index", "## The path\n\n" + table, at_end=False)
    nbformat.write(index, NOTEBOOKS / INDEX)
    for name, _, _ in PATH:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        _set_generated(nb, "nav", nav_line(name), at_end=True)
        nbformat.write(nb, NOTEBOOKS / name)
    readme = NOTEBOOKS / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- path: start -->", "<!-- path: end -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    readme.write_text(f"{head}{start}\n{table}\n{end}{tail}", encoding="utf-8")


def execute(names: list[str], timeout: int = 120) -> None:
    """Run each notebook top to bottom in a fresh kernel and save it with its outputs."""
    from nbclient import NotebookClient

    for name in names:
        path = NOTEBOOKS / name
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:  # clock times of an earlier run, kept by some Jupyter front ends
            cell.metadata.pop("execution", None)
        started = time.monotonic()
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            record_timing=False,
            store_widget_state=False,  # the panels' state holds ports and clock times
            resources={"metadata": {"path": str(NOTEBOOKS)}},
        )
        client.execute()
        nbformat.write(nb, path)
        print(f"{name}: executed in {time.monotonic() - started:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["nav", "run", "all"])
    parser.add_argument("names", nargs="*", help="notebook files (default: all of them)")
    args = parser.parse_args(argv)
    names = args.names or [INDEX] + [n for n, _, _ in PATH]
    names = [Path(n).name for n in names]
    if args.action in ("nav", "all"):
        refresh_navigation()
    if args.action in ("run", "all"):
        execute(names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
