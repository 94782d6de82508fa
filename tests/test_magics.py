"""The chat magics in a real kernel: %%chat shares a cell, %chat_paste fills the next cell.

A kernel is started with jupyter_client and sent cells as a front end sends
them; the chat server runs in the test's own process, and a plain ChatClient
plays the rest of the class. What the magics send is read off that client's
socket; what ``%chat_paste`` puts in the next cell is read from the
``set_next_input`` payload of the cell's execute_reply, which is how
JupyterLab learns of it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from labchat import ChatClient, ChatServer

NO_PANEL = "no chat panel in this kernel is connected: run join(...) or host(...) first"


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    from jupyter_client.manager import start_new_kernel

    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    yield client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


@pytest.fixture
def server():
    with ChatServer(port=0, rate=None, bot=False) as chat:
        yield chat


class Ran:
    """What one cell did: its printed output, its reply (status, error, payload)."""

    def __init__(self, stdout: str, stderr: str, reply: dict) -> None:
        self.stdout, self.stderr, self.reply = stdout, stderr, reply

    @property
    def next_cell(self) -> list[str]:
        return [p["text"] for p in self.reply["payload"] if p["source"] == "set_next_input"]


def run(client, code: str) -> Ran:
    """Execute ``code`` as a front end would; wait for the kernel to be idle and for its reply."""
    msg_id = client.execute(code)
    out = {"stdout": [], "stderr": []}
    while True:
        msg = client.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out[msg["content"]["name"]].append(msg["content"]["text"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    while True:
        reply = client.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return Ran("".join(out["stdout"]), "".join(out["stderr"]), reply["content"])


def ok(client, code: str) -> Ran:
    ran = run(client, code)
    assert ran.reply["status"] == "ok", ran.reply.get("traceback") or ran.stderr
    return ran


def refused(client, code: str) -> str:
    """Run a cell that must fail as a usage error, with no traceback; return what it said."""
    ran = run(client, code)
    assert ran.reply["status"] == "error" and ran.reply["ename"] == "UsageError"
    assert ran.reply["traceback"] == [] and "Traceback" not in ran.stderr
    assert ran.stderr == f"UsageError: {ran.reply['evalue']}\n"
    return ran.reply["evalue"]


def message_from(nick: str):
    return lambda e: e.kind == "message" and e.sender == nick


def test_without_a_panel_the_magics_say_so_without_a_traceback(kernel):
    ok(kernel, "%load_ext labchat")
    assert refused(kernel, "%%chat\nprint('hello')") == NO_PANEL
    assert refused(kernel, "%chat_paste") == NO_PANEL
    assert refused(kernel, "%chat hello") == NO_PANEL


def test_chat_cell_magic_sends_the_cell_as_a_fenced_block(kernel, server):
    port = server.address[1]
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        ok(kernel, "%load_ext labchat")
        ok(kernel, f"from labchat.widgets import join\npanel = join('127.0.0.1', {port}, nick='ada')")
        ran = ok(kernel, "%%chat\ndef area(r):\n    return 3.14159 * r ** 2\n")
        assert ran.stdout == "shared 2 lines of python as ada\n"
        sent = bob.receive_until(message_from("ada"))
        assert sent.text == "```python\ndef area(r):\n    return 3.14159 * r ** 2\n```"
        assert ok(kernel, "print('area' in globals())").stdout == "False\n"  # shared, not run
        ok(kernel, "%%chat sql\nSELECT * FROM pupils;")
        assert bob.receive_until(message_from("ada")).text == "```sql\nSELECT * FROM pupils;\n```"
        ok(kernel, "%chat a line, as if typed")
        assert bob.receive_until(message_from("ada")).text == "a line, as if typed"
        assert refused(kernel, "%%chat python3 please\nx = 1") == (
            "%%chat takes one language name, like %%chat python, not 'python3 please'"
        )
        assert refused(kernel, "%%chat\n\n") == "not sent: there is no code to share"
        big = refused(kernel, "%%chat\n" + "x = 1\n" * 1000)
        assert big == "not sent: 6013 characters as a message, and the chat takes 4000"


def test_a_line_longer_than_the_chat_takes_is_refused_in_one_sentence_and_never_sent(kernel, server):
    port = server.address[1]
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        ok(kernel, "%load_ext labchat")
        ok(kernel, f"from labchat.widgets import join\npanel = join('127.0.0.1', {port}, nick='ada')")
        said = refused(kernel, "%chat " + "x" * 4500)
        assert said == "not sent: 4500 characters as a message, and the chat takes 4000"
        ok(kernel, "%chat after that")
        assert bob.receive_until(message_from("ada")).text == "after that"  # the first that went
        seen = "panel.wait_for('ada: after that', timeout=10)\nprint(panel.transcript_lines()[-2:])"
        assert ok(kernel, seen).stdout == "['--> ada joined', 'ada: after that']\n"  # no error between


def test_chat_paste_puts_a_code_block_from_the_chat_in_the_next_cell(kernel, server):
    port = server.address[1]
    with ChatClient("127.0.0.1", port, nick="bob") as bob:
        ok(kernel, "%load_ext labchat")
        ok(kernel, f"from labchat.widgets import join\npanel = join('127.0.0.1', {port}, nick='ada')")
        assert (
            refused(kernel, "%chat_paste")
            == "no code has been shared in the chat yet (a block between ``` lines)"
        )
        bob.send("first:\n```python\nprint('one')\n```")
        bob.send("and a second, with a <tag>:\n```\nfor n in range(3):\n    print('<two>', n)\n```")
        ok(kernel, 'panel.wait_for("bob| for n in range(3):", timeout=10)')
        latest = ok(kernel, "%chat_paste")
        assert latest.next_cell == ["for n in range(3):\n    print('<two>', n)"]
        assert latest.stdout == "the next cell holds #2, code from bob (2 lines)\n"
        assert ok(kernel, "%chat_paste 2").next_cell == ["print('one')"]
        assert ok(kernel, "%chat_paste #1").next_cell == ["print('one')"]
        assert refused(kernel, "%chat_paste 3") == "the chat holds 2 code blocks; %chat_paste 1 is the latest"
        assert refused(kernel, "%chat_paste #9") == "no code block #9 in this panel (it holds #1 to #2)"
        assert refused(kernel, "%chat_paste 0") == (
            "%chat_paste takes N (1 is the latest) or #K (a block's number), not '0'"
        )
        shared = ok(kernel, "%%chat\nx = 42")  # our own block comes back to us, and counts too
        assert shared.next_cell == []
        ok(kernel, "panel.wait_for('ada| x = 42', timeout=10)")
        assert ok(kernel, "%chat_paste").next_cell == ["x = 42"]


def test_the_host_panel_speaks_when_there_is_no_client_panel(kernel):
    ok(kernel, "%load_ext labchat")
    ok(kernel, "from labchat.widgets import host\nroom = host(port=0, nick='teacher', bot=False)")
    port = int(ok(kernel, "print(room.address[1])").stdout)
    with ChatClient("127.0.0.1", port, nick="ada") as ada:
        ok(kernel, "room.wait_for('--> ada joined', timeout=10)")
        ok(kernel, "%%chat\nimport this")
        assert ada.receive_until(message_from("teacher")).text == "```python\nimport this\n```"
        ok(kernel, f"from labchat.widgets import join\nguest = join('127.0.0.1', {port}, nick='bea')")
        ok(kernel, "%chat now the newest client panel speaks")  # bea, not the teacher
        said = ada.receive_until(lambda e: e.kind == "message" and e.text.startswith("now"))
        assert said.sender == "bea"
        ok(kernel, "guest.stop()")
        ok(kernel, "%chat and the host again")
        assert ada.receive_until(lambda e: e.kind == "message" and e.text == "and the host again").sender == (
            "teacher"
        )


def test_importing_labchat_loads_no_ipython_nor_widgets():
    code = "import sys, labchat\nprint(sorted({'IPython', 'ipywidgets', 'pygments'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
