"""The tutorial notebooks are stored executed, listed in the index, and free of run-to-run noise.

nbval (``python -m pytest notebooks``) re-runs every notebook and compares its
outputs with the stored ones; these tests check what nbval cannot: that the
stored outputs exist at all, that every notebook is on the learning path with
working navigation, and that no output holds something that changes between
runs or machines (a port, a clock time, a path of this machine).
"""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
INDEX = NOTEBOOKS / "00-Index.ipynb"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
LESSONS = [p for p in ALL if p != INDEX]


def _load_tool():
    spec = importlib.util.spec_from_file_location("notebooks_tool", ROOT / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()


def read(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def output_texts(cell: nbformat.NotebookNode) -> list[str]:
    """Every text a cell's outputs hold: streams, text/plain, text/html, error values."""
    texts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            texts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            texts += [v for k, v in out.data.items() if k.startswith("text/")]
        elif out.output_type == "error":
            texts.append(f"{out.ename}: {out.evalue}")
    return texts


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_the_tutorials_are_there():
    assert INDEX.exists()
    assert len(LESSONS) >= 9
    names = [p.name for p in LESSONS]
    for number in range(1, 10):
        assert any(n.startswith(f"{number:02d}-") for n in names), f"no notebook {number:02d}"


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_executed_top_to_bottom_with_outputs(path: Path):
    nb = read(path)
    cells = code_cells(nb)
    assert cells, f"{path.name} has no code"
    counts = [c.execution_count for c in cells]
    assert None not in counts, f"{path.name}: a code cell was never executed"
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: not run once, top to bottom: {counts}"
    assert any(c.outputs for c in cells), f"{path.name} has no stored outputs"
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.source.strip():
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: an empty cell ran"


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_no_errors_or_warnings_stored(path: Path):
    for cell in code_cells(read(path)):
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name}: stored error {out.ename}: {out.evalue}"
            if out.output_type == "stream":
                assert out.name == "stdout", f"{path.name}: stderr stored: {out.text[:200]!r}"


# Things that differ between runs or machines, and so must never be stored in an output.
NOISE = {
    "a port": re.compile(r"(127\.0\.0\.1|localhost|0\.0\.0\.0|\]):\d{2,5}\b|'127\.0\.0\.1', \d+\)"),
    "a clock time": re.compile(r"(?<![\d#:.])\d\d:\d\d(?![\d:])|\b1[6-9]\d{8}\.\d+"),
    "a path of this machine": re.compile(r"/(?:home|root|tmp|work|Users|usr|opt|var)/\w"),
    "an object address": re.compile(r"\bat 0x[0-9a-f]{6,}"),
    "a thread id": re.compile(r"Thread-\d+|\(\d{5,}\)>"),
}


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_outputs_are_deterministic(path: Path):
    for cell in code_cells(read(path)):
        if "NBVAL_IGNORE_OUTPUT" in cell.source:
            continue
        for text in output_texts(cell):
            for what, pattern in NOISE.items():
                found = pattern.search(text)
                assert not found, f"{path.name}: output holds {what}: {found.group(0)!r} in {text[:120]!r}"


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_no_clock_times_in_cell_metadata(path: Path):
    """A front end may record when each cell ran; tools/notebooks.py drops it, so diffs show only changes."""
    for cell in read(path).cells:
        assert "execution" not in cell.metadata, f"{path.name}: a cell keeps the times of an earlier run"


def _codes_in_protocol_section_5() -> set[str]:
    """The error and notice codes docs/protocol.md documents (the tables of its section 5)."""
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = text.partition("\n## 5.")[2].partition("\n## 6.")[0]
    return set(re.findall(r"^\| `([a-z][a-z-]*)` +\|", section, re.M))


# A code as the notebooks print or name it: "-> error usage: ...", "server-full -> ...",
# "nick-invalid: ...", "`error line-too-long`", "whose `code` is `closing`".
CODE_IN_OUTPUT = re.compile(r"\berror ([a-z][a-z-]*)\b|(?<![\w'-])([a-z]+(?:-[a-z]+)+)(?=: | ->| {2})")
CODE_IN_PROSE = re.compile(r"`error ([a-z][a-z-]*)`|\bcode`? is `([a-z][a-z-]*)`")


def test_every_code_a_notebook_shows_is_one_the_protocol_documents():
    """Notebooks and docs/protocol.md name the same codes: a code the server no longer sends shows up here."""
    documented = _codes_in_protocol_section_5()
    assert {"line-too-long", "paced", "closing"} <= documented, "docs/protocol.md section 5 moved?"
    shown = {}
    for path in ALL:
        for cell in read(path).cells:
            found = CODE_IN_PROSE.findall(cell.source) if cell.cell_type == "markdown" else []
            if cell.cell_type == "code":
                found = [m for text in output_texts(cell) for m in CODE_IN_OUTPUT.findall(text)]
            for code in (c for groups in found for c in groups if c):
                shown.setdefault(code, path.name)
    assert len(shown) >= 10, f"the notebooks show fewer codes than expected: {sorted(shown)}"
    unknown = {code: name for code, name in shown.items() if code not in documented}
    assert not unknown, f"codes the protocol does not document: {unknown}"


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_no_paths_of_this_machine_in_the_source(path: Path):
    pattern = NOISE["a path of this machine"]
    for cell in read(path).cells:
        found = pattern.search(cell.source)
        assert not found, f"{path.name}: {found.group(0)!r} in a cell"


def test_ignored_outputs_say_why():
    for path in ALL:
        cells = read(path).cells
        for i, cell in enumerate(cells):
            if cell.cell_type == "code" and "NBVAL_IGNORE_OUTPUT" in cell.source:
                comments = [line for line in cell.source.splitlines() if line.lstrip().startswith("#")]
                explained_above = i > 0 and cells[i - 1].cell_type == "markdown"
                assert len(comments) > 1 or explained_above, (
                    f"{path.name}: an ignored output with no sentence saying why"
                )


@pytest.mark.parametrize("path", LESSONS, ids=ids(LESSONS))
def test_lesson_shape(path: Path):
    """An H1 title, a 'by the end you will' list, small cells, and navigation at the end."""
    nb = read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), f"{path.name}: no H1 title"
    assert re.search(r"by the end you will", first.source, re.I), f"{path.name}: no 'by the end'"
    assert re.search(r"^- ", first.source, re.M), f"{path.name}: the goals are not a list"
    sizes = sorted(len(c.source.splitlines()) for c in code_cells(nb))
    assert sizes[len(sizes) // 2] <= 6, f"{path.name}: code cells are not small (median {sizes})"
    assert nb.cells[-1].metadata.get("labchat") == "nav", f"{path.name}: no navigation line at the end"
    assert nb.metadata.kernelspec.name == "python3"


def test_every_notebook_is_on_the_path_and_in_the_index():
    on_path = [name for name, _, _ in TOOL.PATH]
    assert sorted(on_path) == [p.name for p in LESSONS], "tools/notebooks.py PATH and notebooks/ differ"
    index = "\n".join(c.source for c in read(INDEX).cells if c.cell_type == "markdown")
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for name in on_path:
        assert f"]({name})" in index, f"the index does not link {name}"
        assert f"]({name})" in readme, f"notebooks/README.md does not link {name}"
    assert re.search(r"\d+ min", index), "the index gives no times"


def test_generated_cells_are_up_to_date():
    """The index table and the navigation lines match what tools/notebooks.py would write."""
    index = read(INDEX)
    table = next(c for c in index.cells if c.metadata.get("labchat") == "index")
    assert table.source == "## The path\n\n" + TOOL.index_table()
    for name, _, _ in TOOL.PATH:
        nav = read(NOTEBOOKS / name).cells[-1]
        assert nav.source == TOOL.nav_line(name), f"{name}: run python tools/notebooks.py nav"


def test_navigation_links_point_at_real_notebooks():
    for path in LESSONS:
        nav = read(path).cells[-1].source
        targets = re.findall(r"\]\(([^)]+)\)", nav)
        assert "00-Index.ipynb" in targets
        for target in targets:
            assert (NOTEBOOKS / target).exists(), f"{path.name} links a missing {target}"


BASELINE = """
import gc, socket, threading
_before_threads = set(threading.enumerate())
_before_sockets = {id(s) for s in gc.get_objects() if isinstance(s, socket.socket) and s.fileno() != -1}
"""

LEFT_BEHIND = """
import gc, socket, threading, time
_deadline = time.monotonic() + 5
for _t in set(threading.enumerate()) - _before_threads:
    _t.join(max(0.0, _deadline - time.monotonic()))  # a handler may still be finishing
gc.collect()
print(sorted(t.name for t in set(threading.enumerate()) - _before_threads))
print(sorted(f"{s.getsockname()}" for s in gc.get_objects()
             if isinstance(s, socket.socket) and s.fileno() != -1 and id(s) not in _before_sockets))
"""


@pytest.mark.parametrize("path", ALL, ids=ids(ALL))
def test_runs_quickly_and_leaves_nothing_behind(path: Path):
    """Run the notebook in a fresh kernel: under a minute, then no new thread or open socket."""
    from nbclient import NotebookClient

    nb = read(path)
    nb.cells.insert(0, nbformat.v4.new_code_cell(BASELINE))
    nb.cells.append(nbformat.v4.new_code_cell(LEFT_BEHIND))
    client = NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
        store_widget_state=False,
    )
    started = time.monotonic()
    client.execute()
    took = time.monotonic() - started
    assert took < 60, f"{path.name} took {took:.0f} s"
    report = "".join(out.text for out in nb.cells[-1].outputs if out.output_type == "stream")
    assert report == "[]\n[]\n", f"{path.name} left behind (threads, then sockets):\n{report}"


def test_join_a_room_joins_a_real_host():
    """Pointed at someone else's room, the joining notebook chats there instead of practising."""
    from nbclient import NotebookClient

    from labchat import ChatClient, ChatServer

    path = NOTEBOOKS / "07.1-Join-A-Room.ipynb"
    nb = read(path)
    settings = next(c for c in code_cells(nb) if c.source.startswith("ROOM_HOST = None"))
    with ChatServer(port=0, token="blue-fish") as room:
        host, port = room.address
        settings.source = (
            settings.source.replace("ROOM_HOST = None", f"ROOM_HOST = {host!r}")
            .replace("ROOM_PORT = 5050", f"ROOM_PORT = {port}")
            .replace("TOKEN = None", 'TOKEN = "blue-fish"')
        )
        assert f"ROOM_PORT = {port}" in settings.source and "blue-fish" in settings.source
        with ChatClient(host, port, nick="teacher", token="blue-fish") as teacher:
            NotebookClient(
                nb,
                timeout=60,
                kernel_name="python3",
                resources={"metadata": {"path": str(NOTEBOOKS)}},
                store_widget_state=False,
            ).execute()
            said = teacher.receive_until(lambda e: e.kind == "message", timeout=5)
            assert (said.sender, said.text) == ("ada", "hello everyone!")
            gone = teacher.receive_until(lambda e: e.kind == "leave", timeout=5)
            assert gone.sender == "ada"
        assert room.users() == []
    shown = "".join(out.text for c in code_cells(nb) for out in c.outputs if out.output_type == "stream")
    assert "joining the host's room" in shown
    assert "bob" not in shown  # no practice classmate in a real room
