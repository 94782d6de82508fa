"""The ``labchat`` command: serve a room, join or diagnose one, make a TLS certificate, replay a transcript.

Argument parsing and the small commands live here; ``labchat serve`` is in
``serving.py`` and what ``join`` shares with it (addresses, connecting, the
chat itself) in ``joining.py``. The chat is ``ChatServer`` and ``ChatClient``;
what a person sees comes from ``render.py`` through ``terminal.py`` (a prompt)
or ``piped.py`` (plain lines). The rule it keeps: an ordinary failure (no
server there, nick taken, wrong token, port busy, connection lost) ends in one
clear line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from . import __version__, tls, tutorials
from .console import WireTap, use_color
from .doctor import doctor
from .hostaddr import hostport, is_loopback
from .joining import (
    OP_TOKEN_ENV,
    TOKEN_ENV,
    Failure,
    at_terminal,
    chat,
    client_context,
    connect,
    parse_address,
    token_from,
)
from .protocol import DEFAULT_PORT
from .render import terminal, wire
from .serving import cmd_serve
from .transcript import read_transcript

__all__ = ["build_parser", "is_loopback", "main", "parse_address"]


# -- argument parsing --------------------------------------------------------------------------


# A certificate's last day: a hundred years is more than any class needs, and well inside
# the dates a certificate can hold.
MAX_DAYS = 36_500


def _count(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, not {value}")
        return value

    return parse


def _port(text: str) -> int:
    value = _count(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return value


def _remote_port(text: str) -> int:
    """A port to join: 0 means "any free one" only to a server, so it is no port to reach."""
    value = _port(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 is not a port to join: a port is a number from 1 to 65535")
    return value


SERVE_EXAMPLES = """\
examples:
  labchat serve                           a room on 127.0.0.1:5050; you chat as 'host'
  labchat serve --port 0 --nick teacher   any free port: the first line says which
  LABCHAT_TOKEN=s3cret labchat serve --host 0.0.0.0
                                          a class room on the network, with a token
  labchat serve --tls-cert labchat-cert.pem --tls-key labchat-key.pem --log class.jsonl
                                          TLS (see 'labchat cert'), and a transcript
  labchat serve --port 5051 --backplane redis://127.0.0.1:6379/0 --room class-a
                                          one room across servers (docs/backplane.md)

The first line says where the room listens and the command others run to join.
When stdin and stdout are a terminal you chat too; otherwise the server only
serves and logs to stderr. Type bye (or press Ctrl-C) to close the room: everyone is told.
"""

JOIN_EXAMPLES = """\
examples:
  labchat join --nick ada                          the room on 127.0.0.1:5050
  labchat join 10.0.0.5:5050 --nick ada --token s3cret
  labchat join classroom.local --nick ada --tls --cafile labchat-cert.pem
  printf 'hi\\nbye\\n' | labchat join --nick bot    scripted: plain lines in and out

In the chat: Enter sends; Esc Enter (or Alt Enter) starts a new line in the
same message, and a paste is sent whole as one message, indentation kept. Put
code between lines of ``` (```python for colours): inside the block Enter is a
new line, and the Enter after the closing ``` sends it. /help lists the commands;
/msg NICK TEXT is private; Tab completes commands, nicks and @nicks (a mention
rings the bell of the one you mention); Up recalls what you typed; bye, /quit,
Ctrl-D or Ctrl-C leave. Colours are off with --no-color, NO_COLOR=1, or when
output is not a terminal. Piped input sends one message per line.

exit status: 0 you left, 1 no connection or it was lost, 2 bad arguments,
3 the server refused you (nick taken, wrong token, room full, TLS only).
"""

CERT_EXAMPLES = """\
examples:
  labchat cert                                  for localhost, 127.0.0.1 and this machine's name
  labchat cert --hosts classroom.local 10.0.0.5

Share the certificate with everyone who joins (it is public); keep the key secret.
"""

DOCTOR_EXAMPLES = """\
examples:
  labchat doctor 10.0.0.5:5050                     can a join reach this room, and if not, why?
  labchat doctor classroom.local --tls --cafile labchat-cert.pem
  LABCHAT_TOKEN=s3cret labchat doctor 10.0.0.5:5050

It looks the name up, connects, reads the banner, says hello with a throwaway
nick and leaves at once, printing one line a step: ok, problem or hint. The last
step lists this machine's own addresses (the ones a host gives the class).

exit status: 0 a join works, 1 it would not, 2 bad arguments.
"""

REPLAY_EXAMPLES = """\
examples:
  labchat serve --log class.jsonl      write the transcript while the room runs
  labchat replay class.jsonl           read it afterwards
"""


TUTORIALS_EXAMPLES = """\
examples:
  labchat tutorials                    copy them into ./labchat-tutorials and open JupyterLab
  labchat tutorials ~/lab --no-open    copy them into ~/lab and say how to open them
  labchat tutorials --force            fresh copies, even of the notebooks you have changed
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``labchat`` argument parser with its six commands."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="labchat",
        description="A teaching chat: serve a room, join it from a terminal, or from nc HOST PORT.",
        epilog="Run 'labchat COMMAND --help' for a command's options and examples.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"labchat {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run a chat room here (and chat in it)",
        description="Run a chat room in the foreground.",
        epilog=SERVE_EXAMPLES,
        formatter_class=formatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="port to listen on, 0 for any free one (default: %(default)s)",
    )
    serve.add_argument("--nick", default="host", help="your nick when you chat here (default: %(default)s)")
    serve.add_argument(
        "--token", metavar="T", help=f"a secret everyone must give to join (or set {TOKEN_ENV})"
    )
    serve.add_argument(
        "--tls-cert", metavar="CERT", help="serve TLS with this certificate (see 'labchat cert')"
    )
    serve.add_argument("--tls-key", metavar="KEY", help="the private key of --tls-cert")
    serve.add_argument("--log", metavar="FILE", help="append a JSON Lines transcript of the room to FILE")
    serve.add_argument(
        "--log-private", action="store_true", help="put private messages in the transcript too"
    )
    serve.add_argument("--no-bot", action="store_true", help="no greeter bot in the room")
    serve.add_argument(
        "--op-token",
        metavar="T",
        help=f"operators' token (or set {OP_TOKEN_ENV}; made up if not given): your own chat is one",
    )
    serve.add_argument(
        "--chop", action="store_true", help="for a lesson: send every client its bytes a few at a time"
    )
    serve.add_argument(
        "--delay",
        type=_milliseconds,
        default=0.0,
        metavar="MS",
        help="for a lesson: hold every delivery back MS milliseconds",
    )
    serve.add_argument(
        "--history", type=_count(0), default=20, metavar="N", help="messages shown to newcomers (default: 20)"
    )
    serve.add_argument(
        "--max-clients",
        type=_count(1),
        default=100,
        metavar="N",
        help="most members in the room at once (default: 100)",
    )
    serve.add_argument(
        "--max-per-host",
        type=_count(1),
        metavar="N",
        help="most members from one address at once (default: no such bound; a JupyterHub's "
        "kernels all come from one address)",
    )
    serve.add_argument(
        "--backplane",
        metavar="URL",
        help="share the room with every server given this Redis URL and the same --room",
    )
    serve.add_argument("--room", metavar="NAME", help="the shared room's name (default: main)")
    serve.add_argument(
        "--backplane-insecure",
        action="store_true",
        help="allow plain redis:// to another machine (anyone on that network reads the room)",
    )
    serve.add_argument("--no-color", action="store_true", help="no colours in your chat")

    join = commands.add_parser(
        "join",
        help="join a chat room from this terminal",
        description="Join a chat room. Address: HOST, HOST:PORT or [IPV6]:PORT (default 127.0.0.1:5050).",
        epilog=JOIN_EXAMPLES,
        formatter_class=formatter,
    )
    join.add_argument("address", nargs="?", default="127.0.0.1", metavar="HOST[:PORT]")
    join.add_argument(
        "port", nargs="?", type=_remote_port, metavar="PORT", help="the port, if not given after a colon"
    )
    join.add_argument(
        "--nick",
        required=True,
        help="your name in the room: a letter, then letters, digits, _ - . (up to 20)",
    )
    _reaching_a_room(join)
    join.add_argument(
        "--op-token", metavar="T", help=f"the room's operator token: /kick, /mute (or set {OP_TOKEN_ENV})"
    )
    join.add_argument("--no-color", action="store_true", help="no colours")
    join.add_argument("--quiet", action="store_true", help="no bell when someone mentions you")
    join.add_argument(
        "--wire",
        action="store_true",
        help="also show every line sent (->) and received (<-) exactly as it travels",
    )
    join.add_argument(
        "--reconnect-for",
        type=_seconds_or_never,
        default=120.0,
        metavar="S",
        help="after a dropped connection, try to get back in for S seconds; 0 never (default: 120)",
    )

    cert = commands.add_parser(
        "cert",
        help="make a self-signed TLS certificate for a room",
        description="Write a self-signed certificate and its private key for 'labchat serve --tls-cert'.",
        epilog=CERT_EXAMPLES,
        formatter_class=formatter,
    )
    cert.add_argument(
        "--hosts",
        nargs="+",
        metavar="NAME",
        help="names and addresses the server is reached by, besides this machine's own "
        "(localhost, 127.0.0.1, its name and network addresses, which it always covers)",
    )
    cert.add_argument(
        "--out-cert",
        default="labchat-cert.pem",
        metavar="FILE",
        help="where the certificate goes (default: %(default)s)",
    )
    cert.add_argument(
        "--out-key",
        default="labchat-key.pem",
        metavar="FILE",
        help="where the key goes (default: %(default)s)",
    )
    cert.add_argument(
        "--days",
        type=_count(1, MAX_DAYS),
        default=365,
        metavar="N",
        help=f"how long it is valid, at most {MAX_DAYS} (default: 365)",
    )
    cert.add_argument("--force", action="store_true", help="overwrite existing files")

    doctor = commands.add_parser(
        "doctor",
        help="say why a join does not work (or that it does)",
        description="Walk the path a join takes, step by step, and say where it breaks and what to try.",
        epilog=DOCTOR_EXAMPLES,
        formatter_class=formatter,
    )
    doctor.add_argument("address", nargs="?", default="127.0.0.1", metavar="HOST[:PORT]")
    _reaching_a_room(doctor)
    doctor.add_argument("--nick", metavar="N", help="the nick to try (default: a throwaway, doctor-NNNN)")
    doctor.add_argument(
        "--timeout", type=_seconds, default=5.0, metavar="S", help="seconds each step may wait (default: 5)"
    )

    replay = commands.add_parser(
        "replay",
        help="print a room's transcript (written by 'serve --log')",
        description="Print a transcript written by 'labchat serve --log FILE', one event a line.",
        epilog=REPLAY_EXAMPLES,
        formatter_class=formatter,
    )
    replay.add_argument("file", metavar="FILE")
    replay.add_argument("--no-color", action="store_true", help="no colours")

    lessons = commands.add_parser(
        "tutorials",
        help="copy the tutorial notebooks into a folder and open them in JupyterLab",
        description=(
            "Copy the tutorial notebooks into DIR and open JupyterLab there, at the index. A notebook "
            "you have changed is never replaced unless you say --force; one you have not touched is "
            "brought up to date."
        ),
        epilog=TUTORIALS_EXAMPLES,
        formatter_class=formatter,
    )
    lessons.add_argument(
        "dir",
        nargs="?",
        default=tutorials.DEFAULT_FOLDER,
        metavar="DIR",
        help="where to (default: ./%(default)s)",
    )
    lessons.add_argument(
        "--force", action="store_true", help="replace the notebooks you have changed (your changes are lost)"
    )
    lessons.add_argument(
        "--no-open", action="store_true", help="only copy them, and print the command that opens them"
    )
    return parser


def cmd_join(args: argparse.Namespace) -> int:
    """``labchat join``: chat in a room from this terminal (or in plain lines from a pipe)."""
    try:
        host, port = parse_address(args.address, DEFAULT_PORT if args.port is None else args.port)
    except ValueError as exc:
        raise Failure(str(exc), 2) from None
    if args.port is not None and ":" in args.address.lstrip("[").split("]")[-1]:
        raise Failure(f"the port is given twice: {args.address!r} and {args.port}", 2)
    context = client_context(args.cafile) if (args.tls or args.cafile) else None
    tap = WireTap() if args.wire else None
    color = use_color(sys.stdout, disabled=args.no_color)
    try:
        client = connect(
            host,
            port,
            args.nick,
            token_from(args.token),
            context,
            reconnect=args.reconnect_for > 0,
            reconnect_for=args.reconnect_for,
            op_token=args.op_token or os.environ.get(OP_TOKEN_ENV) or None,
            wire=tap,
        )
    except Failure:
        if tap is not None:  # what did travel shows why it went wrong
            tap.attach(lambda direction, line: print(wire(direction, line, color=color), flush=True))
        raise
    return chat(client, color=color, interactive=at_terminal(), quiet=args.quiet, wire=tap)


def _reaching_a_room(parser: argparse.ArgumentParser) -> None:
    """The options a join and the doctor share: the room's token, and TLS."""
    parser.add_argument("--token", metavar="T", help=f"the room's token, if it has one (or set {TOKEN_ENV})")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument(
        "--cafile", metavar="CA", help="trust the server's certificate from this file (implies --tls)"
    )


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds") from None
    if not 0 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"must be from 0 to 60000 milliseconds, not {text}")
    return value


def _seconds(text: str) -> float:
    value = _finite_seconds(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _seconds_or_never(text: str) -> float:
    value = _finite_seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (never) or more seconds, not {text}")
    return value


def _finite_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def cmd_doctor(args: argparse.Namespace) -> int:
    """``labchat doctor``: print what each step of a join finds; 0 only when a join works."""
    try:
        address = parse_address(args.address)
    except ValueError as exc:
        raise Failure(str(exc), 2) from None
    report = doctor(
        address,
        tls=args.tls,
        cafile=args.cafile,
        token=token_from(args.token),
        nick=args.nick,
        timeout=args.timeout,
    )
    print(report, flush=True)
    return 0 if report.ok else 1


def cmd_cert(args: argparse.Namespace) -> int:
    """``labchat cert``: write a self-signed certificate and key, and say how to use them."""
    # The names asked for first (the first one names the certificate), then this machine's own:
    # whichever address `labchat serve` prints in its join line, the certificate covers it.
    hosts = list(dict.fromkeys([*(args.hosts or []), *tls.class_hosts()]))
    if not args.force:
        for path in (args.out_cert, args.out_key):
            if Path(path).exists():
                raise Failure(f"{path} exists already; use --force to replace it")
    try:
        tls.make_certificate(args.out_cert, args.out_key, hosts, days=args.days)
    except (RuntimeError, ValueError) as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:
        raise Failure(f"cannot write {exc.filename or 'the certificate'}: {exc.strerror or exc}") from None
    print(f"labchat: wrote {args.out_cert} (the certificate, for {', '.join(hosts)}: share it)")
    print(f"labchat: wrote {args.out_key} (the private key: keep it secret)")
    print(f"serve with: labchat serve --host 0.0.0.0 --tls-cert {args.out_cert} --tls-key {args.out_key}")
    where = hostport(hosts[0], DEFAULT_PORT)
    print(f"join with:  labchat join {where} --nick NAME --tls --cafile {args.out_cert}")
    return 0


def cmd_replay(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``labchat replay``: print a transcript, one event a line, with a line for each new day."""
    out = out or sys.stdout
    color = use_color(out, disabled=args.no_color)
    day = ""
    shown = 0
    try:
        for event in read_transcript(args.file):
            shown += 1
            stamp = time.strftime("%Y-%m-%d", time.localtime(event.time)) if event.time else ""
            if stamp and stamp != day:
                day = stamp
                print(f"--- {day} ---", file=out)
            print(terminal(event, color=color), file=out)
        if not shown and Path(args.file).stat().st_size:
            raise Failure(
                f"{args.file} is not a labchat transcript (one is written by 'labchat serve --log')"
            )
    except OSError as exc:
        raise Failure(f"cannot read {args.file!r}: {exc.strerror or exc}") from None
    return 0


def cmd_tutorials(args: argparse.Namespace) -> int:
    """``labchat tutorials``: copy the notebooks (keeping a learner's changes), then open JupyterLab."""
    try:
        report = tutorials.copy_tutorials(args.dir, force=args.force)
    except tutorials.TutorialsError as exc:
        raise Failure(str(exc)) from None
    for line in tutorials.describe(report):
        print(f"labchat: {line}")
    folder, lab = report.folder, tutorials.lab_available()
    missing = f"JupyterLab is not installed here; install it with: {tutorials.INSTALL_LAB}"
    if not lab and not args.no_open:
        raise Failure(f"{missing}, then open the notebooks with: {tutorials.open_command(folder)}")
    if args.no_open:
        if not lab:
            print(f"labchat: {missing}")
        print(f"open them with: {tutorials.open_command(folder)}")
        return 0
    print(f"labchat: opening JupyterLab in {folder} (Ctrl-C twice stops it)", flush=True)
    try:
        return tutorials.run_lab(folder)
    except tutorials.TutorialsError as exc:
        raise Failure(str(exc)) from None


COMMANDS = {
    "serve": cmd_serve,
    "join": cmd_join,
    "doctor": cmd_doctor,
    "cert": cmd_cert,
    "replay": cmd_replay,
    "tutorials": cmd_tutorials,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``labchat`` with ``argv`` (default: the command line); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return COMMANDS[args.command](args)
    except Failure as exc:
        if exc.status == 2:
            parser.exit(2, f"labchat {args.command}: error: {exc}\n")
        print(f"labchat: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:  # a second Ctrl-C while leaving: go now, quietly
        return 0
    except BrokenPipeError:  # the reader of our output went away
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (so the final flush does not complain)
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
