"""``labchat tutorials``: notebooks copied into a learner's folder, changes kept, JupyterLab opened.

The copies are checked byte for byte against ``notebooks/``; the command runs
in this process where that is enough, and as a process where what matters is
its exit status and what it prints (no JupyterLab, JupyterLab started for
real). The wheel test builds labchat the way pip does and runs the command from
the installed wheel, so the notebooks are known to travel inside it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from labchat.cli import main

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
RECORD = ".labchat-tutorials.json"


def shipped(name: str) -> bytes:
    return (ROOT / "notebooks" / name).read_bytes()


def copied(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.ipynb"))


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    """``python -m labchat ARGS`` as a process."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, **kw
    )


def test_copies_every_notebook_and_says_how_to_open_them(tmp_path, capsys):
    folder = tmp_path / "lab"
    assert main(["tutorials", str(folder), "--no-open"]) == 0
    out = capsys.readouterr().out
    assert copied(folder) == NOTEBOOKS and "00-Index.ipynb" in NOTEBOOKS
    for name in NOTEBOOKS:
        assert (folder / name).read_bytes() == shipped(name), name
    assert f"copied {len(NOTEBOOKS)} notebooks into {folder}" in out
    assert f"open them with: cd {folder} && jupyter lab 00-Index.ipynb" in out
    assert not list(folder.glob("*.part")), "a half-written copy was left behind"


def test_the_default_folder_is_labchat_tutorials_here(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["tutorials", "--no-open"]) == 0
    assert copied(tmp_path / "labchat-tutorials") == NOTEBOOKS
    assert "into labchat-tutorials" in capsys.readouterr().out


def test_a_second_run_finds_them_up_to_date(tmp_path, capsys):
    main(["tutorials", str(tmp_path), "--no-open"])
    capsys.readouterr()
    assert main(["tutorials", str(tmp_path), "--no-open"]) == 0
    assert f"the notebooks in {tmp_path} are up to date" in capsys.readouterr().out


def test_a_notebook_the_learner_changed_is_kept_and_the_report_says_so(tmp_path, capsys):
    main(["tutorials", str(tmp_path), "--no-open"])
    mine = tmp_path / NOTEBOOKS[3]
    mine.write_text('{"my": "work"}', encoding="utf-8")
    (tmp_path / NOTEBOOKS[1]).unlink()  # and one deleted: it comes back
    capsys.readouterr()
    assert main(["tutorials", str(tmp_path), "--no-open"]) == 0
    out = capsys.readouterr().out
    assert mine.read_text(encoding="utf-8") == '{"my": "work"}'
    assert (tmp_path / NOTEBOOKS[1]).read_bytes() == shipped(NOTEBOOKS[1])
    assert f"kept 1 notebook you have changed: {mine.name}" in out
    assert "--force replaces it" in out and "your changes are lost" in out
    assert "copied 1 notebook into" in out


def test_a_file_of_the_same_name_already_there_counts_as_the_learners(tmp_path, capsys):
    """No record of a copy (a folder the learner made): a different file is not labchat's to replace."""
    theirs = tmp_path / "00-Index.ipynb"
    theirs.write_text("{}", encoding="utf-8")
    assert main(["tutorials", str(tmp_path), "--no-open"]) == 0
    assert theirs.read_text(encoding="utf-8") == "{}"
    assert "kept 1 notebook you have changed: 00-Index.ipynb" in capsys.readouterr().out


def test_a_broken_record_makes_every_different_copy_the_learners(tmp_path, capsys):
    main(["tutorials", str(tmp_path), "--no-open"])
    (tmp_path / RECORD).write_text("[1, 2]", encoding="utf-8")
    (tmp_path / NOTEBOOKS[0]).write_text("{}", encoding="utf-8")
    capsys.readouterr()
    assert main(["tutorials", str(tmp_path), "--no-open"]) == 0
    assert (tmp_path / NOTEBOOKS[0]).read_text(encoding="utf-8") == "{}"
    assert f"kept 1 notebook you have changed: {NOTEBOOKS[0]}" in capsys.readouterr().out


def test_force_replaces_the_changed_ones(tmp_path, capsys):
    main(["tutorials", str(tmp_path), "--no-open"])
    for name in NOTEBOOKS[:2]:
        (tmp_path / name).write_text("{}", encoding="utf-8")
    capsys.readouterr()
    assert main(["tutorials", str(tmp_path), "--no-open", "--force"]) == 0
    out = capsys.readouterr().out
    for name in NOTEBOOKS:
        assert (tmp_path / name).read_bytes() == shipped(name), name
    assert f"replaced 2 notebooks you had changed (--force): {NOTEBOOKS[0]}, {NOTEBOOKS[1]}" in out
    assert "kept" not in out


def test_an_untouched_copy_of_an_older_version_is_brought_up_to_date(tmp_path, capsys):
    """The record says what labchat wrote: a copy still equal to it is not the learner's work."""
    main(["tutorials", str(tmp_path), "--no-open"])
    older = b'{"cells": [], "an": "older version"}'
    name = NOTEBOOKS[2]
    (tmp_path / name).write_bytes(older)
    record = json.loads((tmp_path / RECORD).read_text(encoding="utf-8"))
    record["notebooks"][name] = hashlib.sha256(older).hexdigest()  # as an older labchat wrote
    (tmp_path / RECORD).write_text(json.dumps(record), encoding="utf-8")
    capsys.readouterr()
    assert main(["tutorials", str(tmp_path), "--no-open"]) == 0
    assert (tmp_path / name).read_bytes() == shipped(name)
    assert f"brought 1 notebook you had not changed up to date: {name}" in capsys.readouterr().out


def test_a_file_where_the_folder_should_be_is_one_clear_line(tmp_path):
    (tmp_path / "lab").write_text("not a folder", encoding="utf-8")
    result = run("-m", "labchat", "tutorials", "lab", "--no-open", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "labchat: lab is a file, not a folder; name another folder\n"
    assert "Traceback" not in result.stderr


def test_a_folder_that_cannot_be_made_is_one_clear_line(tmp_path):
    (tmp_path / "notes").write_text("a file", encoding="utf-8")
    result = run("-m", "labchat", "tutorials", "notes/lab", "--no-open", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "labchat: cannot write the notebooks into notes/lab: Not a directory\n"


def without_site_packages(*args: str) -> list[str]:
    """``python -S -m labchat ARGS``: the standard library and labchat's source, and nothing installed."""
    return ["-S", "-m", "labchat", *args]


def test_without_jupyterlab_it_copies_and_says_what_to_install(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = run(*without_site_packages("tutorials", "lab"), cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "JupyterLab is not installed here; install it with: pip install 'labchat[jupyter]'" in result.stderr
    )
    assert "then open the notebooks with: cd lab && jupyter lab 00-Index.ipynb" in result.stderr
    assert copied(tmp_path / "lab") == NOTEBOOKS
    quiet = run(*without_site_packages("tutorials", "lab", "--no-open"), cwd=tmp_path, env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "pip install 'labchat[jupyter]'" in quiet.stdout
    assert "open them with: cd lab && jupyter lab 00-Index.ipynb" in quiet.stdout


def test_help_says_what_it_does_and_what_it_keeps(capsys):
    with pytest.raises(SystemExit) as done:
        main(["tutorials", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in (
        "usage: labchat tutorials [-h] [--force] [--no-open] [DIR]",
        "default: ./labchat-tutorials",
        "never replaced unless you say --force",
        "labchat tutorials ~/lab --no-open",
    ):
        assert words in text, words
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "tutorials" in capsys.readouterr().out


def lab_contents(runtime: Path, lab: subprocess.Popen, log: Path) -> tuple[dict, list[str]]:
    """Once the JupyterLab that ``lab`` started answers: its server file and the names in its folder.

    The server says it is up only by writing ``jpserver-PID.json`` (which may be read half written)
    and then by answering, so this asks until both have happened, for 60 s at most.
    """
    deadline = time.monotonic() + 60
    while True:
        assert lab.poll() is None, f"JupyterLab stopped:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"JupyterLab did not answer within 60 s:\n{log.read_text()}"
        try:
            server = json.loads(next(runtime.glob("jpserver-*.json")).read_text(encoding="utf-8"))
            contents = f"{server['url']}api/contents?token={server['token']}"
            with urllib.request.urlopen(contents, timeout=10) as reply:
                return server, sorted(item["name"] for item in json.load(reply)["content"])
        except (StopIteration, ValueError, KeyError, OSError):
            time.sleep(0.1)


@pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None, reason="needs JupyterLab")
def test_it_opens_jupyterlab_in_the_folder(tmp_path):
    """A real JupyterLab, started by the command in the folder it copied to (no browser: config says so)."""
    jupyter = tmp_path / "jupyter"
    config, runtime = jupyter / "config", jupyter / "runtime"
    config.mkdir(parents=True)
    settings = {"ServerApp": {"open_browser": False, "allow_root": True, "ip": "127.0.0.1"}}
    (config / "jupyter_server_config.json").write_text(json.dumps(settings), encoding="utf-8")
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(jupyter / "data"),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "IPYTHONDIR": str(jupyter / "ipython"),
    }
    log = (tmp_path / "lab.log").open("w")
    lab = subprocess.Popen(
        [sys.executable, "-m", "labchat", "tutorials", "lab"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        server, listed = lab_contents(runtime, lab, tmp_path / "lab.log")
        assert Path(server["root_dir"]).resolve() == (tmp_path / "lab").resolve()
        assert [n for n in listed if n.endswith(".ipynb")] == NOTEBOOKS
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(timeout=30)
        log.close()
    assert "labchat: opening JupyterLab in lab" in (tmp_path / "lab.log").read_text()


def test_the_wheel_holds_the_notebooks_and_the_command_finds_them(tmp_path):
    """Build the wheel as pip does, install it apart from the source, and copy the tutorials from it."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints")
    for part in ("labchat", "notebooks"):
        shutil.copytree(ROOT / part, source / part, symlinks=True, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    dist = tmp_path / "dist"
    built = run("-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source), cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("labchat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        inside = {name for name in archive.namelist() if name.startswith("labchat/notebooks/")}
        assert inside == {f"labchat/notebooks/{name}" for name in NOTEBOOKS}
        for name in NOTEBOOKS:
            assert archive.read(f"labchat/notebooks/{name}") == shipped(name), name
    site = tmp_path / "site"
    installed = run(
        "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel), cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stderr
    assert not (site / "labchat" / "notebooks").is_symlink()
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = run(*without_site_packages("tutorials", "lab", "--no-open"), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert copied(tmp_path / "lab") == NOTEBOOKS
