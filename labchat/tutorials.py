"""``labchat tutorials``: copy the tutorial notebooks into a learner's folder and open JupyterLab there.

The notebooks ship inside the package, in ``labchat/notebooks`` (in a source
checkout that is a link to the repository's ``notebooks/`` folder, and a wheel
holds real copies). The rule it keeps: a learner's work is never overwritten
unasked. A copy is replaced only while it is still exactly what labchat put
there (the folder keeps a record of what was copied, ``.labchat-tutorials.json``)
or when ``force`` says so; a changed copy is kept, and the report says so.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

DEFAULT_FOLDER = "labchat-tutorials"
INDEX = "00-Index.ipynb"
RECORD = ".labchat-tutorials.json"  # name -> sha256 of the copy labchat last wrote there
INSTALL_LAB = "pip install 'labchat[jupyter]'"


class TutorialsError(Exception):
    """An ordinary failure, said in one line: no notebooks shipped, a folder that cannot be written."""


@dataclass
class CopyReport:
    """What ``copy_tutorials`` did with each notebook, by name."""

    folder: Path
    copied: list[str] = field(default_factory=list)  # new in the folder
    updated: list[str] = field(default_factory=list)  # an untouched older copy, brought up to date
    unchanged: list[str] = field(default_factory=list)  # already the same
    kept: list[str] = field(default_factory=list)  # changed by the learner, left as it is
    replaced: list[str] = field(default_factory=list)  # changed by the learner, replaced (force)


def shipped() -> list[Traversable]:
    """The tutorial notebooks this installation holds, in order; TutorialsError if there are none."""
    package = resources.files("labchat")
    for folder in (package / "notebooks", Path(__file__).resolve().parent.parent / "notebooks"):
        # The second: a checkout whose system made the link a plain file (Git on Windows may).
        if folder.is_dir() and (folder / INDEX).is_file():
            return sorted((f for f in folder.iterdir() if f.name.endswith(".ipynb")), key=lambda f: f.name)
    raise TutorialsError("this installation of labchat holds no tutorial notebooks; reinstall labchat")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_record(folder: Path) -> dict[str, str]:
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no record (or a broken one): every copy that differs counts as the learner's
    notebooks = record.get("notebooks") if isinstance(record, dict) else None
    if not isinstance(notebooks, dict):
        return {}
    return {k: v for k, v in notebooks.items() if isinstance(v, str)}


def _write(path: Path, data: bytes) -> None:
    """Write whole or not at all, so an interrupted copy leaves no half notebook."""
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    os.replace(part, path)


def copy_tutorials(folder: str | os.PathLike[str] = DEFAULT_FOLDER, force: bool = False) -> CopyReport:
    """Copy every shipped notebook into ``folder`` (made if missing); keep changed copies unless ``force``."""
    notebooks = shipped()
    folder = Path(folder)
    report = CopyReport(folder)
    if folder.exists() and not folder.is_dir():
        raise TutorialsError(f"{folder} is a file, not a folder; name another folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        record = _read_record(folder)
        for notebook in notebooks:
            name, data = notebook.name, notebook.read_bytes()
            target = folder / name
            if not target.exists():
                outcome = report.copied
            else:
                here = target.read_bytes()
                if here == data:
                    report.unchanged.append(name)
                    record[name] = _digest(data)
                    continue
                if record.get(name) == _digest(here):
                    outcome = report.updated
                elif force:
                    outcome = report.replaced
                else:
                    report.kept.append(name)
                    continue
            _write(target, data)
            record[name] = _digest(data)
            outcome.append(name)
        _write(folder / RECORD, (json.dumps({"notebooks": record}, indent=1, sort_keys=True) + "\n").encode())
    except OSError as exc:
        raise TutorialsError(f"cannot write the notebooks into {folder}: {exc.strerror or exc}") from None
    return report


def _notebooks(names: list[str]) -> str:
    return f"{len(names)} notebook{'s' if len(names) != 1 else ''}"


def describe(report: CopyReport) -> list[str]:
    """The report as lines a person reads: what was copied, and what was kept and why."""
    where = report.folder
    lines = []
    if report.copied:
        lines.append(f"copied {_notebooks(report.copied)} into {where}")
    if report.updated:
        names = ", ".join(report.updated)
        lines.append(f"brought {_notebooks(report.updated)} you had not changed up to date: {names}")
    if report.replaced:
        names = ", ".join(report.replaced)
        lines.append(f"replaced {_notebooks(report.replaced)} you had changed (--force): {names}")
    if not (report.copied or report.updated or report.replaced or report.kept):
        lines.append(f"the notebooks in {where} are up to date")
    if report.kept:
        them = "it" if len(report.kept) == 1 else "them"
        lines.append(
            f"kept {_notebooks(report.kept)} you have changed: {', '.join(report.kept)} "
            f"(--force replaces {them} with fresh copies, and your changes are lost)"
        )
    return lines


def lab_available() -> bool:
    """Whether JupyterLab is installed beside this labchat (so its kernels can import labchat)."""
    try:
        return importlib.util.find_spec("jupyterlab") is not None
    except (ImportError, ValueError):
        return False


def open_command(folder: Path) -> str:
    """The command a person types to open the tutorials in ``folder``."""
    return f"cd {shlex.quote(str(folder))} && jupyter lab {INDEX}"


def run_lab(folder: Path) -> int:
    """Run JupyterLab in ``folder`` with the index open, until it stops; its exit status."""
    command = [sys.executable, "-m", "jupyterlab", INDEX]
    try:
        lab = subprocess.Popen(command, cwd=folder)
    except OSError as exc:
        raise TutorialsError(f"cannot start JupyterLab: {exc.strerror or exc}") from None
    with lab:
        while True:
            try:
                return lab.wait()
            except KeyboardInterrupt:
                continue  # JupyterLab has its own Ctrl-C (it asks first): wait until it has stopped
