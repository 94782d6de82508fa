"""``labchat doctor`` and ``labchat.doctor()``: each way a join breaks, told in words, over real sockets.

Rooms run on both engines (through ``make_server``); the services that are not
labchat (a closed port, a web server, one that says nothing, one that says
something else) are real sockets on 127.0.0.1 too.
"""

from __future__ import annotations

import http.server
import ipaddress
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
from conftest import WAIT, environ, wait_until

import labchat
from labchat import tls
from labchat.cli import main
from labchat.doctor import Report
from labchat.hostaddr import own_addresses

# A short wait for the services that never answer, so those tests stay quick.
QUIET = 0.3


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``labchat doctor ARGS`` in this process: (exit status, what it printed)."""
    status = main(["doctor", *args])
    out, err = capsys.readouterr()
    assert err == ""
    return status, out


def where(server_or_address: object) -> str:
    host, port = getattr(server_or_address, "address", server_or_address)
    return f"{host}:{port}"


def problem_line(out: str) -> str:
    """The line marked as the problem (there is exactly one)."""
    lines = [line for line in out.splitlines() if line.startswith("problem ")]
    assert len(lines) == 1, out
    return lines[0]


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on: bound once, noted, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def certificate(tmp_path) -> tuple[str, str]:
    pytest.importorskip("cryptography")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    tls.make_certificate(cert, key, ["localhost", "127.0.0.1"])
    return str(cert), str(key)


@pytest.fixture
def web_server() -> Iterator[tuple[str, int]]:
    """A tiny HTTP server on 127.0.0.1 port 0, served from a thread; shut down afterwards."""

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, name="web-server")
    thread.start()
    yield httpd.server_address[:2]
    httpd.shutdown()
    httpd.server_close()
    thread.join(WAIT)


@pytest.fixture
def one_liner() -> Iterator[Callable[[bytes], tuple[str, int]]]:
    """A factory: a service on 127.0.0.1 that says ``line`` to each connection and hangs up."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(line: bytes) -> tuple[str, int]:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.05)  # so it notices the end of the test

        def serve() -> None:
            with listener:
                while not stop.is_set():
                    try:
                        conn, _ = listener.accept()
                    except TimeoutError:
                        continue
                    with conn:
                        conn.sendall(line)

        thread = threading.Thread(target=serve, name="one-liner")
        thread.start()
        threads.append(thread)
        return listener.getsockname()[:2]

    yield start
    stop.set()
    for thread in threads:
        thread.join(WAIT)


# -- where the path breaks before any labchat -----------------------------------------------------


def test_closed_port_is_refused_nothing_is_listening(capsys, closed_port):
    status, out = run(capsys, f"127.0.0.1:{closed_port}")
    assert status == 1
    assert "nothing is listening" in problem_line(out)
    assert out.splitlines()[0] == f"labchat doctor 127.0.0.1:{closed_port}"
    assert "ok       resolve  127.0.0.1 is an IP address" in out
    assert "this machine (loopback)" in out
    assert out.rstrip().splitlines()[-1].startswith("result: a join would not work")

    report = labchat.doctor(("127.0.0.1", closed_port), timeout=WAIT)
    assert isinstance(report, Report)
    assert not report.ok
    assert report.problem is not None and report.problem.name == "connect"
    assert report.problem.hint  # what to try
    assert [step.name for step in report.steps] == ["resolve", "where", "connect", "here"]
    assert report.steps[-1].ok is None  # this machine's addresses: a hint, not a verdict


def test_the_cli_never_shows_a_traceback(closed_port):
    done = subprocess.run(
        [sys.executable, "-m", "labchat", "doctor", f"127.0.0.1:{closed_port}"],
        capture_output=True,
        text=True,
        timeout=30,
        env=environ(),
    )
    assert done.returncode == 1
    assert done.stderr == ""
    assert "nothing is listening" in done.stdout


def test_bad_arguments_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["doctor", "127.0.0.1:notaport"])
    assert exit_.value.code == 2
    assert "bad port" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["doctor", "--timeout", "0"])
    assert exit_.value.code == 2
    with pytest.raises(ValueError, match="timeout"):
        labchat.doctor("127.0.0.1:5050", timeout=0)


def test_a_web_server_is_named_as_such(capsys, web_server):
    status, out = run(capsys, where(web_server), "--timeout", str(QUIET))
    assert status == 1
    assert "this is a web server, not labchat" in problem_line(out)
    assert "check the port" in out


def test_a_silent_service_is_not_labchat(capsys):
    with socket.create_server(("127.0.0.1", 0)) as listener:  # the kernel accepts; nobody speaks
        status, out = run(capsys, where(listener.getsockname()), "--timeout", str(QUIET))
    assert status == 1
    assert f"said nothing within {QUIET:g} s: it is not labchat" in problem_line(out)


def test_another_service_is_quoted(capsys, one_liner):
    address = one_liner(b"SSH-2.0-OpenSSH_9.6\x1b[2J\r\n")
    status, out = run(capsys, where(address), "--timeout", str(QUIET))
    assert status == 1
    line = problem_line(out)
    assert "this is not labchat: it said 'SSH-2.0-OpenSSH_9.6^[[2J'" in line  # control bytes made inert
    assert "\x1b" not in out


# -- labchat rooms -----------------------------------------------------------------------------


def test_a_working_room_is_ok_and_left_as_it_was(capsys, server, connect):
    ada = connect("ada")
    before = server.users()
    status, out = run(capsys, where(server), "--nick", "checkup")
    assert status == 0, out
    assert "problem" not in out
    assert "ok       server   a labchat room answers" in out
    assert "ok       join     the room welcomed checkup" in out
    assert out.rstrip().splitlines()[-1] == f"result: a join works: labchat join {where(server)} --nick NAME"
    ada.receive_until(lambda e: e.kind == "leave" and e.sender == "checkup", timeout=WAIT)
    assert server.users() == before
    assert wait_until(lambda: len(server.connections()) == 1)  # only ada's


def test_the_default_nick_is_a_throwaway(server, connect):
    ada = connect("ada")
    report = labchat.doctor(server.address)
    assert report.ok
    joined = ada.receive_until(lambda e: e.kind == "join" and e.sender.startswith("doctor-"), timeout=WAIT)
    assert joined.sender[len("doctor-") :].isdigit()
    ada.receive_until(lambda e: e.kind == "leave" and e.sender == joined.sender, timeout=WAIT)
    assert server.users() == ["ada"]


def test_a_room_with_a_token(capsys, make_server, monkeypatch):
    room = make_server(token="owl-7")
    monkeypatch.delenv("LABCHAT_TOKEN", raising=False)
    status, out = run(capsys, where(room))
    assert status == 1
    assert "a labchat room answers (it needs a token)" in out
    assert "this room needs a token, and none was given" in problem_line(out)
    assert "--token" in out

    status, out = run(capsys, where(room), "--token", "owl-8")
    assert status == 1
    assert "the room refused the token" in problem_line(out)

    status, out = run(capsys, where(room), "--token", "owl-7")
    assert status == 0, out
    assert "--token TOKEN" in out  # the join command says a token is needed, never which one
    assert "owl-7" not in out

    monkeypatch.setenv("LABCHAT_TOKEN", "owl-7")
    status, out = run(capsys, where(room))
    assert status == 0, out


def test_a_full_room(capsys, make_server, connect):
    room = make_server(max_clients=1)
    connect("ada", server=room)
    status, out = run(capsys, where(room))
    assert status == 1
    assert "the room is full" in problem_line(out)
    assert room.users() == ["ada"]


def test_a_nick_that_is_taken_or_not_allowed(capsys, server, connect):
    connect("ada")
    status, out = run(capsys, where(server), "--nick", "ada")
    assert status == 1
    assert "the room refused the nick: the nick 'ada' is taken" in problem_line(out)
    assert "--nick" in out

    report = labchat.doctor(server.address, nick="<b>9</b>")
    assert not report.ok
    assert "the room refused the nick" in report.problem.text
    page = report._repr_html_()
    assert "&lt;b&gt;9&lt;/b&gt;" in page and "<b>9</b>" not in page
    assert server.users() == ["ada"]


def test_plain_doctor_against_a_plain_room_with_tls_says_drop_it(capsys, server):
    status, out = run(capsys, where(server), "--tls")
    assert status == 1
    assert "this room does not speak TLS" in problem_line(out)
    assert "drop --tls" in out


# -- TLS rooms ---------------------------------------------------------------------------------


@pytest.fixture
def tls_room(make_server, certificate):
    cert, key = certificate
    return make_server(ssl_context=tls.server_context(cert, key))


def test_a_tls_room_with_the_class_certificate(capsys, tls_room, certificate):
    status, out = run(capsys, where(tls_room), "--tls", "--cafile", certificate[0])
    assert status == 0, out
    assert "with a certificate this machine trusts" in out
    assert f"--tls --cafile {certificate[0]}" in out
    assert wait_until(lambda: not tls_room.connections())


@pytest.mark.parametrize("timeout", [5.0, QUIET], ids=["told-after-a-wait", "told-at-once"])
def test_a_tls_room_without_tls_needs_it(capsys, tls_room, timeout):
    # A TLS room tells a silent plain client after a couple of seconds, and a talking one at once.
    status, out = run(capsys, where(tls_room), "--timeout", str(timeout))
    assert status == 1
    assert "this room needs TLS" in problem_line(out)
    assert "add --tls (and --cafile FILE" in out


def test_a_tls_room_without_the_certificate(capsys, tls_room, tmp_path):
    status, out = run(capsys, where(tls_room), "--tls")
    assert status == 1
    assert "certificate verification failed" in problem_line(out)
    assert "--cafile FILE" in out and "labchat.tls.fingerprint" in out

    other_cert, other_key = tmp_path / "other.pem", tmp_path / "other-key.pem"
    tls.make_certificate(other_cert, other_key, ["127.0.0.1"])
    status, out = run(capsys, where(tls_room), "--cafile", str(other_cert))  # --cafile implies --tls
    assert status == 1
    assert f"{other_cert} is not the room's certificate" in problem_line(out)


def test_the_room_s_certificate_for_another_name_is_said_to_be_for_another_name(
    capsys, make_server, tmp_path
):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    tls.make_certificate(cert, key, ["classroom.example"])
    room = make_server(ssl_context=tls.server_context(cert, key))
    status, out = run(capsys, where(room), "--cafile", str(cert))
    assert status == 1
    assert "the server's certificate is not made for 127.0.0.1" in problem_line(out)
    assert "labchat cert --hosts 127.0.0.1" in out


def test_a_certificate_file_that_is_not_one(capsys, tls_room, tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a certificate\n")
    status, out = run(capsys, where(tls_room), "--cafile", str(bogus))
    assert status == 1
    assert f"cannot use {bogus} as a certificate" in problem_line(out)


def test_this_machine_s_own_addresses_are_listed(closed_port):
    mine = own_addresses()
    for address in mine:
        ip = ipaddress.ip_address(address)
        assert not (ip.is_loopback or ip.is_unspecified)
    here = labchat.doctor(("127.0.0.1", closed_port)).steps[-1]
    assert here.name == "here" and here.ok is None
    if mine:
        assert ", ".join(mine) in here.text
    else:
        assert "no network address but loopback" in here.text
