"""Test helpers: a private JupyterLab server, notebooks written on the fly, a terminal client on a screen.

Everything stays inside one temporary folder: Jupyter's config, data and
runtime folders and IPython's, so nothing is written to the home directory.
JupyterLab binds a free port on 127.0.0.1 and runs in its own process group,
which ``stop()`` ends with its kernels. Nothing here sleeps in the hope that
something happened: every wait watches for the thing itself, with a deadline.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pexpect
import pyte

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright never downloads a browser here


KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def write_notebook(path: Path, *cells: str) -> Path:
    """A notebook of code cells, not yet run."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = KERNELSPEC
    nbformat.write(notebook, path)
    return path


class JupyterLab:
    """``with JupyterLab(tmp_path) as lab:`` serves ``lab.root`` until the block ends."""

    def __init__(self, base: Path, start_timeout: float = 30.0) -> None:
        self.root = base / "notebooks"
        self.root.mkdir(parents=True, exist_ok=True)
        self.home = base / "jupyter-home"
        self.token = secrets.token_hex(16)
        self.start_timeout = start_timeout
        self.port = 0
        self.log_path = base / "jupyterlab.log"
        self._process: subprocess.Popen | None = None
        self.env = dict(os.environ)
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            folder = self.home / name.lower()
            folder.mkdir(parents=True, exist_ok=True)
            self.env[name] = str(folder)
        # The news pop-up would cover the page; switch it off, as the CLI's
        # `jupyter labextension disable` does, in our private config.
        labconfig = self.home / "jupyter_config_dir" / "labconfig"
        labconfig.mkdir(parents=True, exist_ok=True)
        disabled = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
        (labconfig / "page_config.json").write_text(json.dumps(disabled))

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{path}?token={self.token}&reset"

    def start(self) -> JupyterLab:
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run commands
            "--ServerApp.terminals_enabled=False",
        ]
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.port = self._wait_for_port()
        self._wait_for_status()
        return self

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        self._process = None

    def __enter__(self) -> JupyterLab:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def _deadline_check(self, deadline: float, what: str) -> None:
        if self._process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({self._process.returncode}) {what}:\n{self.log()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"JupyterLab not ready ({what}) in {self.start_timeout} s:\n{self.log()}")

    def _wait_for_port(self) -> int:
        """The server writes jpserver-PID.json, with its port, to the runtime folder once it listens."""
        runtime = Path(self.env["JUPYTER_RUNTIME_DIR"])
        info = runtime / f"jpserver-{self._process.pid}.json"
        deadline = time.monotonic() + self.start_timeout
        while True:
            self._deadline_check(deadline, "writing its server info")
            if info.exists():
                try:
                    return int(json.loads(info.read_text())["port"])
                except (ValueError, KeyError):
                    pass  # caught mid-write; read it again
            self._process_wait(0.1)

    def _wait_for_status(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        status = f"http://127.0.0.1:{self.port}/api/status?token={self.token}"
        while True:
            self._deadline_check(deadline, "answering /api/status")
            try:
                with urllib.request.urlopen(status, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            self._process_wait(0.1)

    def _process_wait(self, seconds: float) -> None:
        """Wait a little for the process to change (it may exit), instead of a blind sleep."""
        try:
            self._process.wait(seconds)
        except subprocess.TimeoutExpired:
            pass


class Terminal:
    """A command in a real pty, its output kept on a pyte screen to read as a person would."""

    def __init__(self, argv: list[str], rows: int = 60, cols: int = 160) -> None:
        env = dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", NO_COLOR="1")
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(rows, cols))

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        """Read output until ``text`` is on the screen; TimeoutError (with the screen) if it never is."""
        deadline = time.monotonic() + timeout
        while text not in self.text():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{text!r} never appeared on the terminal:\n{self.text()}")
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=min(left, 0.5)))
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                raise EOFError(f"the terminal client ended before {text!r}:\n{self.text()}") from None
        return self.text()

    def type(self, line: str) -> None:
        self.child.send(line + "\r")

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self.child.close()
