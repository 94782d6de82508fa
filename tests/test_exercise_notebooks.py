"""The notebooks' exercises: each has a starter, a hidden worked answer and a check that notices.

A notebook's exercise is three kinds of cell, in order: one or more starters
tagged ``exercise``, their worked answers tagged ``solution`` (collapsed), and a
cell tagged ``check``. The committed notebooks hold the solved run. Here each
notebook also runs in a real kernel as a learner who skipped every exercise
would run it (the ``solution`` cells removed): no cell may raise, and every
exercise's check must print something other than what the solved run printed,
with a ``not yet`` line: the checks noticed, and the notebook went on.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import nbformat
import pytest

from labchat.exercises import answers

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

# The path promises at least this much practice.
AT_LEAST_EXERCISES = 15
AT_LEAST_NOTEBOOKS = 6


def tags(cell: nbformat.NotebookNode) -> list[str]:
    return cell.metadata.get("tags", [])


def with_exercises() -> list[Path]:
    return [
        path
        for path in sorted(NOTEBOOKS.glob("*.ipynb"))
        if any("exercise" in tags(c) for c in nbformat.read(path, as_version=4).cells)
    ]


def exercise_checks(nb: nbformat.NotebookNode) -> list[int]:
    """The index of each exercise's check: the first ``check`` cell after a run of solutions."""
    checks, pending = [], False
    for index, cell in enumerate(nb.cells):
        if "solution" in tags(cell):
            pending = True
        elif "check" in tags(cell) and pending:
            checks.append(index)
            pending = False
    return checks


def shown(cell: nbformat.NotebookNode) -> str:
    """What a code cell printed or displayed, as one text."""
    texts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            texts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            texts.append(out.data.get("text/plain", ""))
    return "".join(texts)


def test_there_is_enough_practice_and_every_exercise_has_its_three_cells():
    notebooks = with_exercises()
    exercises = 0
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        cells = nb.cells
        for index, cell in enumerate(cells):
            if "exercise" in tags(cell):
                exercises += 1
                after = cells[index + 1 :]
                assert any("solution" in tags(c) for c in after), f"{path.name}: cell {index} has no answer"
            if "solution" in tags(cell):
                hidden = cell.metadata.get("jupyter", {}).get("source_hidden")
                assert hidden is True, f"{path.name}: solution cell {index} is not collapsed"
                assert any("check" in tags(c) for c in cells[index + 1 :]), f"{path.name}: no check"
        starters = sum("exercise" in tags(c) for c in cells)
        assert len(exercise_checks(nb)) >= 1 and starters >= 1, path.name
    assert exercises >= AT_LEAST_EXERCISES, f"only {exercises} exercises"
    assert len(notebooks) >= AT_LEAST_NOTEBOOKS, [p.name for p in notebooks]


@pytest.mark.parametrize("path", with_exercises(), ids=lambda p: p.stem)
def test_without_its_answers_the_notebook_says_not_yet_and_goes_on(path: Path):
    from nbclient import NotebookClient

    solved = nbformat.read(path, as_version=4)
    skipped = nbformat.read(path, as_version=4)
    skipped.cells = [c for c in skipped.cells if "solution" not in tags(c)]
    for cell in skipped.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    where = {"metadata": {"path": str(NOTEBOOKS)}}
    NotebookClient(skipped, timeout=60, kernel_name="python3", resources=where).execute()

    errors = [
        f"{out.ename}: {out.evalue}"
        for cell in skipped.cells
        for out in cell.get("outputs", [])
        if out.output_type == "error"
    ]
    assert not errors, errors
    ran = {cell.id: cell for cell in skipped.cells}
    for index in exercise_checks(solved):
        check = solved.cells[index]
        now = shown(ran[check.id])
        assert now != shown(check), f"{path.name}: the check in cell {index} did not notice"
        assert "not yet" in now, f"{path.name}: cell {index} printed:\n{now}"


DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _code(source: str) -> str:
    """The code of one definition without annotations and docstrings: what it does, not how it reads."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            node.annotation = None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
        if isinstance(node, DEFINITIONS) and ast.get_docstring(node):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


def worked_answers() -> list[tuple[str, str, str]]:
    """(notebook, name, source) of each solution cell that defines one of labchat's own answers."""
    found = []
    for path in with_exercises():
        for cell in nbformat.read(path, as_version=4).cells:
            if "solution" in tags(cell):
                match = re.match(r"(?:def|class) (\w+)", cell.source)
                if match and hasattr(answers, match.group(1)):
                    found.append((path.stem, match.group(1), cell.source))
    return found


@pytest.mark.parametrize("notebook, name, source", worked_answers(), ids=lambda v: v if len(v) < 40 else "")
def test_the_fallback_is_the_notebooks_own_worked_answer(notebook: str, name: str, source: str):
    """A learner who skipped an exercise goes on with the very answer the notebook hides."""
    ours = inspect.getsource(getattr(answers, name))
    assert _code(ours) == _code(source), f"{notebook}: labchat.exercises.answers.{name} differs"
