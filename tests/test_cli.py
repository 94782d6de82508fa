"""``labchat serve``, ``join``, ``cert`` and ``replay`` as real processes, without a terminal.

Each test runs ``python -m labchat`` with pipes for stdin and stdout (the
scriptable, plain-line mode) against a real server on 127.0.0.1 port 0: either
a ``labchat serve`` process (conftest's ``serve``) or a ``ChatServer`` in this process.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LABCHAT, environ

from labchat import ChatClient, ChatServer, ConnectionClosed, __version__
from labchat.cli import is_loopback, parse_address
from labchat.hostaddr import own_addresses

pytestmark = pytest.mark.timeout(120)


def run(*args: str, input: str = "", env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run ``labchat ARGS`` to the end with ``input`` piped to it."""
    return subprocess.run(
        [*LABCHAT, *args],
        input=input,
        capture_output=True,
        text=True,
        env=env or environ(),
        cwd=cwd,
        timeout=60,
    )


@pytest.fixture
def room() -> Iterator[ChatServer]:
    with ChatServer("127.0.0.1", 0, bot=True) as server:
        yield server


def where(server: ChatServer) -> str:
    return "{}:{}".format(*server.address)


def messages_from(client: ChatClient, sender: str, count: int, timeout: float = 15.0) -> list[str]:
    got = []
    while len(got) < count:
        event = client.receive_until(lambda e: e.kind == "message" and e.sender == sender, timeout=timeout)
        got.append(event.text)
    return got


def one_clear_line(result: subprocess.CompletedProcess) -> str:
    """The single line an ordinary failure prints on stderr (and nothing else anywhere)."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


# -- the commands and their help -------------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "join", "cert", "replay"])
def test_every_command_has_help_with_examples(command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: labchat {command}")
    assert "examples:\n  labchat " in result.stdout


def test_version_help_and_the_console_script_agree():
    # Beside this interpreter first (a virtual environment not activated), then on PATH.
    script = shutil.which("labchat", path=sysconfig.get_path("scripts")) or shutil.which("labchat")
    assert script, "the labchat console script is not installed (pip install -e .)"
    as_module = run("--version")
    as_script = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=30)
    assert as_module.stdout == as_script.stdout == f"labchat {__version__}\n"
    top = run("--help")
    for command in ("serve", "join", "cert", "replay"):
        assert command in top.stdout
    bare = run()
    assert bare.returncode == 2 and "usage: labchat" in bare.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("127.0.0.1", 5050)),
        ("example.org", ("example.org", 5050)),
        ("10.0.0.5:6000", ("10.0.0.5", 6000)),
        (":6000", ("127.0.0.1", 6000)),
        ("::1", ("::1", 5050)),
        ("[::1]:6000", ("::1", 6000)),
    ],
)
def test_addresses(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text", ["host:0", "host:99999", "host:http", "[::1", "[::1]6000", "127.0.0.1:5050:1", "localhost::5050"]
)
def test_bad_addresses_are_refused_with_a_reason(text):
    with pytest.raises(ValueError, match="port|address"):
        parse_address(text)


def test_loopback_rule():
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "classroom.local"]))


# -- labchat serve without a terminal ------------------------------------------------------------


def test_serve_without_a_terminal_serves_logs_and_stops_cleanly_on_ctrl_c(serve):
    server = serve("--no-bot")
    assert server.host == "127.0.0.1"
    assert server.join_command == f"labchat join 127.0.0.1:{server.port} --nick NAME"
    with ChatClient("127.0.0.1", server.port, nick="ada") as ada:
        with ChatClient("127.0.0.1", server.port, nick="bob") as bob:
            ada.send("hello bob")
            assert messages_from(bob, "ada", 1) == ["hello bob"]
        status, _, err = server.stop(signal.SIGINT)
        notice = ada.receive_until(lambda e: e.kind == "system", timeout=5)
        assert notice.text == "the server is shutting down"
        with pytest.raises(ConnectionClosed):
            ada.receive(timeout=5)
    assert status == 0
    assert re.search(r"ada \(127\.0\.0\.1:\d+\) joined", err)
    assert re.search(r"bob \(127\.0\.0\.1:\d+\) left", err)
    assert "SIGINT: closing the room" in err
    assert "Traceback" not in err


def test_serve_stops_cleanly_on_sigterm(serve):
    server = serve()
    with ChatClient("127.0.0.1", server.port, nick="ada") as ada:
        status, _, err = server.stop(signal.SIGTERM)
        assert (
            ada.receive_until(lambda e: e.kind == "system", timeout=5).text == "the server is shutting down"
        )
    assert status == 0
    assert "SIGTERM: closing the room" in err


def test_serve_on_a_busy_port_says_so(room):
    result = run("serve", "--port", str(room.address[1]))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr == f"labchat: cannot listen on {where(room)}: Address already in use\n"


def test_serve_beyond_loopback_without_a_token_warns(serve):
    server = serve("--host", "0.0.0.0")
    host = server.join_command.split()[2].rsplit(":", 1)[0]
    assert host in (own_addresses() or (socket.gethostname(),))  # one classmates can use, not 0.0.0.0
    assert server.join_command.endswith(f":{server.port} --nick NAME")
    with ChatClient("127.0.0.1", server.port, nick="ada") as ada:
        assert ada.users == ["ada", "greeter"] or ada.users == ["ada"]
    status, _, err = server.stop()
    assert status == 0
    (warning,) = [line for line in err.splitlines() if "warning:" in line]
    assert f"warning: listening on 0.0.0.0:{server.port} with no token: anyone" in warning
    assert "--token" in warning
    quiet = serve("--host", "127.0.0.1")
    assert "warning" not in quiet.stop()[2]


def test_the_token_guards_the_room_and_is_never_printed(serve):
    secret = "sekrit-1234"
    server = serve("--host", "0.0.0.0", env=environ(LABCHAT_TOKEN=secret))
    assert server.join_command.endswith("--token TOKEN")
    welcome = run("join", server.where, "--nick", "ada", input="hi\n", env=environ(LABCHAT_TOKEN=secret))
    assert welcome.returncode == 0, welcome.stderr
    assert "ada: hi" in welcome.stdout
    wrong = run("join", server.where, "--nick", "eve", "--token", "guess")
    assert one_clear_line(wrong) == f"labchat: {server.where} refused you: wrong or missing room token"
    assert wrong.returncode == 3
    missing = run("join", server.where, "--nick", "eve")
    assert missing.returncode == 3
    assert "this room needs a token: give it with --token or LABCHAT_TOKEN" in one_clear_line(missing)
    status, out, err = server.stop()
    assert status == 0
    assert "warning" not in err  # a token makes an open address acceptable
    for text in (server.first_line, out, err, welcome.stdout, welcome.stderr, wrong.stderr):
        assert secret not in text


def test_serve_max_per_host_refuses_the_member_one_address_has_too_many_of(serve):
    server = serve("--max-per-host", "1")
    with ChatClient(*server.address, nick="ada"):
        crowded = run("join", server.where, "--nick", "bob")
        assert crowded.returncode == 3
        assert "(at most 1 from one address)" in one_clear_line(crowded)
    assert server.stop()[0] == 0


# -- labchat join with piped input ----------------------------------------------------------------


def test_piped_join_sends_each_line_and_prints_every_answer_before_it_exits(room):
    with ChatClient(*room.address, nick="bob") as bob:
        result = run("join", where(room), "--nick", "ada", input="hi bob\n/who\nwhat is a socket?\n")
        assert messages_from(bob, "ada", 2) == ["hi bob", "what is a socket?"]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = [re.sub(r"^\d\d:\d\d ", "", line) for line in result.stdout.splitlines()]
    assert lines[0].startswith("Welcome, ada! 2 here: bob, ada.")
    assert "ada: hi bob" in lines
    assert "2 here: bob, ada" in lines
    assert any(
        line.startswith("greeter: A socket is one end") for line in lines
    )  # an answer to the last line
    assert lines[-1] == "Goodbye, ada!"
    assert "\x1b" not in result.stdout  # no colours into a pipe


def test_piped_bye_sent_with_other_lines_still_shows_them(room):
    with ChatClient(*room.address, nick="bob") as bob:
        result = run("join", where(room), "--nick", "ada", input="hi\nbye\nnever sent\n")
        assert messages_from(bob, "ada", 1) == ["hi"]
        left = bob.receive_until(lambda e: e.kind == "leave", timeout=5)
        assert left.sender == "ada"
        assert not [e for e in bob.pending() if e.kind == "message" and e.sender == "ada"]
    assert result.returncode == 0
    out = result.stdout
    assert "ada: hi" in out and "Goodbye, ada!" in out
    assert out.index("ada: hi") < out.index("Goodbye, ada!")
    assert "never sent" not in out


def test_piped_input_faster_than_the_flood_limit_arrives_whole(room):
    lines = [f"line {n}" for n in range(30)]  # more than the server's burst of 20
    with ChatClient(*room.address, nick="bob") as bob:
        result = run("join", where(room), "--nick", "ada", input="\n".join(lines) + "\n")
        assert messages_from(bob, "ada", len(lines)) == lines
    assert result.returncode == 0
    assert "slow down" not in result.stdout


def _join_and_keep_typing(where: str, *args: str) -> subprocess.Popen:
    """A piped ``labchat join`` whose input stays open, like a person still typing."""
    proc = subprocess.Popen(
        [*LABCHAT, "join", where, "--nick", "ada", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ(),
    )
    assert "Welcome, ada!" in proc.stdout.readline()
    return proc


def _until_exit(proc: subprocess.Popen) -> tuple[int, str, str]:
    """Read to the end without closing the process's input first."""
    out, err = proc.stdout.read(), proc.stderr.read()
    status = proc.wait(timeout=30)
    proc.stdin.close()
    return status, out, err


def test_a_lost_connection_is_one_line_and_status_1(room):
    proc = _join_and_keep_typing(where(room))
    room.close()  # the room goes away while ada is still typing
    status, out, err = _until_exit(proc)
    assert status == 1
    assert "the server is shutting down" in out
    assert err == "labchat: the server closed the connection\n"


def test_a_kicked_member_is_told_why_in_its_last_line(room):
    proc = _join_and_keep_typing(where(room))  # it has its welcome: ada is in the room
    room.kick("ada", "time is up")
    status, out, err = _until_exit(proc)
    assert status == 1
    assert err == "labchat: you were removed by the server: time is up\n"


def test_a_killed_server_is_noticed_and_tried_again_for_a_while(serve):
    server = serve()
    proc = _join_and_keep_typing(server.where, "--reconnect-for", "1")
    server.proc.kill()
    server.proc.communicate()
    status, out, err = _until_exit(proc)
    assert status == 1
    assert "reconnecting..." in out  # a dropped connection is tried again, not a closed room
    assert err.startswith("labchat: ") and err.count("\n") == 1


# -- ordinary failures ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def test_no_server_there(room):
    port = _free_port()
    result = run("join", f"127.0.0.1:{port}", "--nick", "ada")
    assert result.returncode == 1
    assert one_clear_line(result) == (
        f"labchat: cannot connect to 127.0.0.1:{port}: "
        "no server is listening there (is 'labchat serve' running?)"
    )


def test_nick_taken_or_invalid(room):
    with ChatClient(*room.address, nick="ada"):
        taken = run("join", where(room), "--nick", "ADA")
    assert taken.returncode == 3
    assert (
        one_clear_line(taken)
        == f"labchat: {where(room)} refused you: the nick 'ADA' is taken; please pick another"
    )
    invalid = run("join", where(room), "--nick", "1st")
    assert invalid.returncode == 3
    assert one_clear_line(invalid).endswith("nick '1st' must start with a letter")


def test_not_a_labchat_server():
    with socket.create_server(("127.0.0.1", 0)) as impostor:
        port = impostor.getsockname()[1]
        proc = subprocess.Popen(
            [*LABCHAT, "join", f"127.0.0.1:{port}", "--nick", "ada"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ(),
        )
        conn, _ = impostor.accept()
        with conn:
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert out == "" and "Traceback" not in err
    assert err == (
        f"labchat: cannot connect to 127.0.0.1:{port}: 127.0.0.1:{port} is not a labchat server "
        "(it said 'SSH-2.0-OpenSSH_9.6')\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["join", "127.0.0.1:99999", "--nick", "ada"], "bad port '99999'"),
        (["join", "127.0.0.1"], "the following arguments are required: --nick"),
        (["join", "127.0.0.1:5050", "6000", "--nick", "ada"], "the port is given twice"),
        (["serve", "--tls-cert", "c.pem"], "TLS needs both --tls-cert CERT and --tls-key KEY"),
        (["serve", "--log-private"], "--log-private needs --log FILE"),
        (["serve", "--max-clients", "0"], "must be at least 1"),
        (["serve", "--max-per-host", "0"], "must be at least 1"),
        (["join", "127.0.0.1", "0", "--nick", "ada"], "0 is not a port to join"),
        (["join", "127.0.0.1:5050:1", "--nick", "ada"], "cannot read the address '127.0.0.1:5050:1'"),
        (
            ["join", "127.0.0.1", "--nick", "ada", "--reconnect-for", "nan"],
            "'nan' is not a number of seconds",
        ),
        (["join", "127.0.0.1", "--nick", "ada", "--reconnect-for", "-5"], "must be 0 (never) or more"),
        (["doctor", "127.0.0.1", "--timeout", "inf"], "'inf' is not a number of seconds"),
        (["cert", "--days", "3000000"], "must be at most 36500, not 3000000"),
    ],
)
def test_usage_mistakes_are_status_2(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# -- TLS, transcripts --------------------------------------------------------------------------


def test_tls_end_to_end_with_a_class_certificate(serve, tmp_path):
    made = run("cert", "--hosts", "localhost", "127.0.0.1", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (
        "serve with: labchat serve --host 0.0.0.0 --tls-cert labchat-cert.pem --tls-key labchat-key.pem"
        in (made.stdout)
    )
    assert (tmp_path / "labchat-key.pem").stat().st_mode & 0o077 == 0  # the key is private
    again = run("cert", cwd=tmp_path)
    assert again.returncode == 1 and "exists already; use --force" in one_clear_line(again)

    server = serve("--tls-cert", "labchat-cert.pem", "--tls-key", "labchat-key.pem", "--no-bot", cwd=tmp_path)
    assert server.join_command.endswith("--nick NAME --tls --cafile labchat-cert.pem")
    secure = run(
        "join",
        server.where,
        "--nick",
        "ada",
        "--tls",
        "--cafile",
        "labchat-cert.pem",
        input="over tls\n",
        cwd=tmp_path,
    )
    assert secure.returncode == 0, secure.stderr
    assert "ada: over tls" in secure.stdout
    plain = run("join", server.where, "--nick", "bob")
    assert plain.returncode == 3
    assert "this server speaks TLS only" in one_clear_line(plain)
    untrusted = run("join", server.where, "--nick", "cy", "--tls")  # the system's CAs do not know it
    assert untrusted.returncode == 1
    assert one_clear_line(untrusted).endswith(
        "certificate was not accepted: self-signed certificate; a room's own certificate is "
        "trusted by giving its file as the CA (--cafile FILE)"
    )
    assert server.stop()[0] == 0


def test_serve_says_which_tls_file_it_cannot_use(tmp_path):
    assert run("cert", cwd=tmp_path).returncode == 0
    cert, key = "labchat-cert.pem", "labchat-key.pem"
    for files, said in [
        (("nope.pem", key), "cannot read the TLS certificate nope.pem: No such file or directory"),
        ((cert, "nope.pem"), "cannot read the TLS key nope.pem: No such file or directory"),
        ((key, cert), f"{key} and {cert} are not a TLS certificate and its key (two PEM files"),
    ]:
        served = run("serve", "--port", "0", "--tls-cert", files[0], "--tls-key", files[1], cwd=tmp_path)
        assert served.returncode == 1 and one_clear_line(served).startswith(f"labchat: {said}")


def test_the_join_line_a_tls_room_prints_works_with_a_certificate_for_another_name(serve, tmp_path):
    made = run("cert", "--hosts", "classroom.example", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "for classroom.example, localhost, 127.0.0.1" in made.stdout  # the machine's own, always
    server = serve("--tls-cert", "labchat-cert.pem", "--tls-key", "labchat-key.pem", "--no-bot", cwd=tmp_path)
    words = server.join_command.split()[1:]  # as printed: labchat join HOST:PORT --nick NAME --tls ...
    joined = run(*[("ada" if word == "NAME" else word) for word in words], input="bye\n", cwd=tmp_path)
    assert joined.returncode == 0, joined.stderr
    assert "Goodbye, ada!" in joined.stdout
    assert server.stop()[0] == 0


def test_replay_prints_the_transcript_serve_wrote(serve, tmp_path):
    server = serve("--log", "room.jsonl", "--no-bot", cwd=tmp_path)
    with ChatClient("127.0.0.1", server.port, nick="bob") as bob:
        said = run(
            "join", server.where, "--nick", "ada", input="hello transcript\n/msg bob not for the log\n"
        )
        assert said.returncode == 0
        bob.receive_until(lambda e: e.kind == "leave", timeout=5)
    assert server.stop()[0] == 0
    result = run("replay", "room.jsonl", cwd=tmp_path)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"--- \d{4}-\d\d-\d\d ---", lines[0])
    body = [re.sub(r"^\d\d:\d\d ", "", line) for line in lines[1:]]
    assert body == [
        "--> bob joined",
        "--> ada joined",
        "ada: hello transcript",
        "<-- ada left",
        "<-- bob left",
    ]
    (tmp_path / "notes.txt").write_text("not a transcript\n")
    wrong = run("replay", "notes.txt", cwd=tmp_path)
    assert wrong.returncode == 1
    assert "notes.txt is not a labchat transcript" in one_clear_line(wrong)
    missing = run("replay", "nowhere.jsonl", cwd=tmp_path)
    assert missing.returncode == 1
    assert one_clear_line(missing) == "labchat: cannot read 'nowhere.jsonl': No such file or directory"


def test_ctrl_c_on_a_piped_join_leaves_politely(room):
    proc = _join_and_keep_typing(where(room))
    proc.send_signal(signal.SIGINT)
    status, out, err = _until_exit(proc)
    assert status == 0
    assert out.rstrip().endswith("Goodbye, ada!")
    assert err == ""


# -- the wire, live -------------------------------------------------------------------------


def test_join_wire_shows_every_line_as_it_travels_beside_the_chat(room):
    result = run("join", where(room), "--nick", "ada", "--wire", input="hello\nbye\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("<- labchat/1 Welcome to labchat!")  # the banner, as it came
    assert lines[1] == '-> {"type":"hello","nick":"ada","version":1}'
    assert '-> {"type":"say","text":"hello"}' in lines
    came = next(i for i, line in enumerate(lines) if line.startswith('<- {"type":"message","sender":"ada"'))
    assert any(line.endswith("ada: hello") for line in lines[came + 1 :])  # the line, then the chat it makes


def test_join_wire_shows_what_travels_inert(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as impostor:
        port = impostor.getsockname()[1]
        proc = subprocess.Popen(
            [*LABCHAT, "join", f"127.0.0.1:{port}", "--nick", "ada", "--wire"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environ(),
        )
        conn, _ = impostor.accept()
        with conn:
            conn.sendall(b"labchat/1 hi \x1b]0;pwned\x07 \xff\n")
            conn.recv(4096)  # the hello
            conn.sendall(b'{"type":"error","code":"nick-taken","text":"taken","seq":0}\n')
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert out.splitlines()[0] == b"<- labchat/1 hi ^[]0;pwned^G \\xff"
    assert b"\x1b" not in out and b"\x07" not in out
