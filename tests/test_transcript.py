"""The instructor's transcript: what the room's JSON Lines log holds, when it is on disk, how it reads.

The rules checked: the log holds the room's public life (messages, actions,
joins, leaves, nick changes, the bot) and private messages only when asked;
each line is on disk before anyone sees the event, so a crash loses at most
the line being written; runs append; and reading it back, in Python or with
``labchat replay``, survives a torn line and shows nothing that acts on a terminal.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from labchat import ChatClient
from labchat.protocol import Event
from labchat.transcript import format_event, read_transcript, replay, replay_lines


def said(client: ChatClient, text: str, sender: str | None = None) -> Event:
    """Wait until ``client`` sees the message ``text`` (from ``sender`` if given)."""
    return client.receive_until(
        lambda e: e.kind in ("message", "action") and text in e.text and sender in (None, e.sender)
    )


def test_the_transcript_holds_the_rooms_public_life_as_json_lines(engine, tmp_path: Path) -> None:
    log = tmp_path / "class.jsonl"
    with (
        engine(port=0, log=log) as server,
        ChatClient(*server.address, nick="ada") as ada,
        ChatClient(*server.address, nick="bob") as bob,
    ):
        ada.send("hello everyone")
        ada.send("/me waves")
        ada.send("/msg bob a private word")
        ada.send("/who")
        ada.send("/frobnicate")
        ada.send("/nick ada2")
        said(bob, "waves")
        bob.receive_until(lambda e: e.kind == "nick")
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    kinds = [row["type"] for row in rows]
    assert {"join", "message", "action", "nick", "leave", "bot"} <= set(kinds)
    assert not {"private", "welcome", "system", "error"} & set(kinds)
    assert "a private word" not in log.read_text(encoding="utf-8")
    seqs = [row["seq"] for row in rows]
    assert seqs == sorted(set(seqs))
    assert [e.text for e in read_transcript(log) if e.kind == "message"][0] == "hello everyone"
    assert [(e.sender, e.target) for e in read_transcript(log) if e.kind == "nick"] == [("ada", "ada2")]


def test_private_messages_are_kept_only_when_asked(engine, tmp_path: Path) -> None:
    log = tmp_path / "class.jsonl"
    with (
        engine(port=0, bot=False, log=log, log_private=True) as server,
        ChatClient(*server.address, nick="ada") as ada,
        ChatClient(*server.address, nick="bob") as bob,
    ):
        ada.send("/msg bob see me after class")
        bob.receive_until(lambda e: e.kind == "private")
    (private,) = [e for e in read_transcript(log) if e.kind == "private"]
    assert (private.sender, private.target, private.text) == ("ada", "bob", "see me after class")


def test_each_event_is_on_disk_before_anyone_sees_it(engine, tmp_path: Path) -> None:
    log = tmp_path / "class.jsonl"
    with (
        engine(port=0, bot=False, log=log) as server,
        ChatClient(*server.address, nick="ada") as ada,
        ChatClient(*server.address, nick="bob") as bob,
    ):
        for n in range(20):
            ada.send(f"line {n}")
            said(bob, f"line {n}")
            on_disk = [e.text for e in read_transcript(log) if e.kind == "message"]
            assert on_disk[-1] == f"line {n}"


SERVE_FOREVER = """
import sys, threading
from labchat import ChatServer
server = ChatServer(port=0, bot=False, rate=None, log=sys.argv[1]).start()
print(server.address[1], flush=True)
threading.Event().wait()
"""


def test_a_crash_loses_nothing_anyone_saw_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "class.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", SERVE_FOREVER, str(log)], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(child.stdout.readline())
        ada = ChatClient("127.0.0.1", port, nick="ada")
        for n in range(50):
            ada.send(f"note {n}")
        said(ada, "note 49")  # every one of them was seen
        os.kill(child.pid, signal.SIGKILL)  # no goodbye, no flush at exit, no close
        child.wait(10)
        ada.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert [e.text for e in read_transcript(log) if e.kind == "message"] == [f"note {n}" for n in range(50)]

    with open(log, "ab") as out:  # what a crash in the middle of a write leaves behind
        out.write(b'{"type":"message","sender":"ada","text":"half of a')
    events = list(read_transcript(log))
    assert events[-1].text == "note 49"
    assert len(list(replay(log))) == len(events)


def test_replay_skips_lines_whose_time_or_fields_are_damaged(tmp_path: Path) -> None:
    log = tmp_path / "class.jsonl"
    good = '{"type":"message","seq":1,"time":0,"sender":"ada","text":"kept"}'
    damaged = [
        '{"type":"message","sender":"x","text":"hi","time":1e300}',
        '{"type":"message","sender":"x","text":"hi","time":-1e20}',
        '{"type":"message","sender":"x","text":"hi","time":NaN}',
        '{"type":"message","sender":{"a":1},"text":["x"]}',
    ]
    log.write_text("\n".join([*damaged, good]) + "\n", encoding="utf-8")
    replayed = subprocess.run(
        [sys.executable, "-m", "labchat", "replay", str(log), "--no-color"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert replayed.returncode == 0 and replayed.stderr == ""
    assert replayed.stdout.splitlines() == ["ada: kept"]


def test_runs_append_to_one_file_and_replay_marks_each_restart(engine, tmp_path: Path) -> None:
    log = tmp_path / "class.jsonl"
    for day in ("monday", "tuesday"):
        with (
            engine(port=0, bot=False, log=log) as server,
            ChatClient(*server.address, nick="ada") as ada,
        ):
            ada.send(f"good {day}")
            said(ada, day)
    lines = list(replay(log))
    texts = [line.split("  ", 1)[1] for line in lines]
    assert texts == [
        "--> ada joined",
        "ada: good monday",
        "<-- ada left",
        "--- the server was restarted here ---",
        "--> ada joined",
        "ada: good tuesday",
        "<-- ada left",
    ]
    stamp = lines[1].split("  ", 1)[0]
    assert len(stamp) == 19 and stamp[4] == "-" and stamp[13] == ":"  # 2026-11-25 21:30:05


def test_reading_a_transcript_never_lets_escapes_act_on_the_terminal(engine, tmp_path: Path) -> None:
    log = tmp_path / "class.jsonl"
    with (
        engine(port=0, bot=False, log=log) as server,
        ChatClient(*server.address, nick="mal") as mal,
    ):
        mal.send("\x1b[2J\x1b[31mred alert\x07")
        said(mal, "red alert")
    with open(log, "a", encoding="utf-8") as out:  # a line edited by hand, escapes and all
        edited = {"type": "message", "sender": "x\x1b]0;t\x07", "text": "\x9b2J", "seq": 99}
        out.write(json.dumps(edited) + "\n")
    shown = list(replay(log))
    assert any("^[[2J^[[31mred alert^G" in line for line in shown)
    for line in shown:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in line), line
    assert format_event(Event(kind="message", sender="ada", text="hi")).endswith("  ada: hi")
    assert list(replay_lines([])) == []

    result = subprocess.run(
        [sys.executable, "-m", "labchat", "replay", str(log)], capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert b"red alert" in result.stdout and b"mal" in result.stdout
    assert not any(b < 0x20 and b != 0x0A or b == 0x7F for b in result.stdout)  # no colour either: not a tty
    assert b"\xc2\x9b" not in result.stdout


def test_the_log_may_be_an_open_file_that_the_server_leaves_open(engine) -> None:
    out = io.StringIO()
    with engine(port=0, bot=False, log=out) as server, ChatClient(*server.address, nick="ada") as ada:
        ada.send("into a notebook variable")
        said(ada, "notebook")
    assert not out.closed
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r.get("text") for r in rows if r["type"] == "message"] == ["into a notebook variable"]


def test_a_full_disk_stops_the_transcript_not_the_room(engine, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="labchat")
    with (
        engine(port=0, bot=False, log="/dev/full") as server,  # every write: "No space left on device"
        ChatClient(*server.address, nick="ada") as ada,
        ChatClient(*server.address, nick="bob") as bob,
    ):
        ada.send("is anyone writing this down?")
        said(bob, "writing this down")
        bob.send("not any more")
        said(ada, "not any more")
    (complaint,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "transcript" in complaint and "No space left" in complaint


def test_a_multi_line_message_replays_with_its_lines_under_its_text() -> None:
    event = Event(kind="message", sender="ada", text="def f():\n    return 1", seq=1, time=0.0)
    first, second = format_event(event).split("\n")
    assert first.endswith("ada: def f():")
    assert second == " " * (len(first) - len("def f():")) + "    return 1"
