"""The ``labchat`` command: serve a room, join one, make a TLS certificate, replay a transcript.

Argument parsing and plumbing only: the chat is ``ChatServer`` and
``ChatClient``, and what a person sees comes from ``render.py`` through
``terminal.py`` (an interactive prompt) or ``piped.py`` (plain lines). The rule
it keeps: an ordinary failure (no server there, nick taken, wrong token, port
busy, connection lost) ends in one clear line on stderr and a non-zero exit
status, never a traceback; the room's token is never printed.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from . import __version__, tls
from .client import ChatClient, JoinRefused
from .console import use_color
from .protocol import ProtocolError
from .render import safe, terminal
from .room import RoomError, check_nick
from .server import DEFAULT_PORT, ChatServer
from .transcript import read_transcript

# Exit statuses: 0 all went well (leaving the chat included), 2 a usage error (argparse's).
FAILED = 1  # could not connect, lost the connection, could not listen, a file problem
REFUSED = 3  # the server said no: nick taken or invalid, wrong token, room full, TLS only

TOKEN_ENV = "LABCHAT_TOKEN"
WILDCARDS = frozenset({"", "0.0.0.0", "::"})

log = logging.getLogger("labchat.cli")


class Failure(Exception):
    """An ordinary failure: the message is the one line shown, ``status`` the exit status."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


# -- addresses ------------------------------------------------------------------------------


def hostport(host: str, port: int) -> str:
    """``HOST:PORT``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[IPV6]:PORT``, bare ``IPV6`` or ``:PORT`` as (host, port)."""
    text = text.strip()
    host, port = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"cannot read the address {text!r}; write [IPV6]:PORT")
        port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    host = host or "127.0.0.1"
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r} in {text!r}: a port is a number from 1 to 65535")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True if only this machine can reach ``host`` (127.x, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_host(bound: str) -> str:
    """The address others use to reach a server bound to ``bound``."""
    return socket.gethostname() if bound in WILDCARDS else bound


def loopback_for(bound: str) -> str:
    """The address this machine's own client uses to reach a server bound to ``bound``."""
    if bound in WILDCARDS:
        return "::1" if ":" in bound else "127.0.0.1"
    return bound


# -- argument parsing --------------------------------------------------------------------------


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def _port(text: str) -> int:
    value = _count(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return value


SERVE_EXAMPLES = """\
examples:
  labchat serve                         a room on 127.0.0.1:5050; you chat as 'host'
  labchat serve --port 0 --nick teacher any free port, shown on the first line
  LABCHAT_TOKEN=s3cret labchat serve --host 0.0.0.0
                                        a class room on the network, with a token
  labchat serve --tls-cert labchat-cert.pem --tls-key labchat-key.pem --log class.jsonl

The first line says where the room listens and the command others run to join.
When stdin is a terminal you chat too; otherwise the server only serves and logs
to stderr. Type bye (or press Ctrl-C) to close the room: everyone is told.
"""

JOIN_EXAMPLES = """\
examples:
  labchat join --nick ada                          the room on 127.0.0.1:5050
  labchat join 10.0.0.5:5050 --nick ada --token s3cret
  labchat join classroom.local --nick ada --tls --cafile labchat-cert.pem
  printf 'hi\\nbye\\n' | labchat join --nick bot    scripted: plain lines in and out

In the chat: /help lists the commands; /msg NICK TEXT is private; bye, /quit,
Ctrl-D or Ctrl-C leave. Colours are off with --no-color, NO_COLOR=1, or when
output is not a terminal.

exit status: 0 you left, 1 no connection or it was lost, 2 bad arguments,
3 the server refused you (nick taken, wrong token, room full, TLS only).
"""

CERT_EXAMPLES = """\
examples:
  labchat cert                                  for localhost, 127.0.0.1 and this machine's name
  labchat cert --hosts classroom.local 10.0.0.5

Share the certificate with everyone who joins (it is public); keep the key secret.
"""

REPLAY_EXAMPLES = """\
examples:
  labchat serve --log class.jsonl      write the transcript while the room runs
  labchat replay class.jsonl           read it afterwards
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``labchat`` argument parser with its four commands."""
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
    serve.add_argument("--token", help=f"a secret everyone must give to join (or set {TOKEN_ENV})")
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
        "--history", type=_count(0), default=20, help="messages shown to newcomers (default: 20)"
    )
    serve.add_argument(
        "--max-clients", type=_count(1), default=100, help="most connections at once (default: 100)"
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
        "port", nargs="?", type=_port, metavar="PORT", help="the port, if not given after a colon"
    )
    join.add_argument(
        "--nick", required=True, help="your name in the room: letters, digits, _ - . (up to 20)"
    )
    join.add_argument("--token", help=f"the room's token, if it has one (or set {TOKEN_ENV})")
    join.add_argument("--tls", action="store_true", help="connect with TLS")
    join.add_argument(
        "--cafile", metavar="CA", help="trust the server's certificate from this file (implies --tls)"
    )
    join.add_argument("--no-color", action="store_true", help="no colours")

    cert = commands.add_parser(
        "cert",
        help="make a self-signed TLS certificate for a room",
        description="Write a self-signed certificate and its private key for 'labchat serve --tls-cert'.",
        epilog=CERT_EXAMPLES,
        formatter_class=formatter,
    )
    cert.add_argument(
        "--hosts", nargs="+", metavar="NAME", help="names and addresses the server is reached by"
    )
    cert.add_argument("--out-cert", default="labchat-cert.pem", metavar="FILE", help="(default: %(default)s)")
    cert.add_argument("--out-key", default="labchat-key.pem", metavar="FILE", help="(default: %(default)s)")
    cert.add_argument("--days", type=_count(1), default=365, help="how long it is valid (default: 365)")
    cert.add_argument("--force", action="store_true", help="overwrite existing files")

    replay = commands.add_parser(
        "replay",
        help="print a room's transcript (written by 'serve --log')",
        description="Print a transcript written by 'labchat serve --log FILE', one event a line.",
        epilog=REPLAY_EXAMPLES,
        formatter_class=formatter,
    )
    replay.add_argument("file", metavar="FILE")
    replay.add_argument("--no-color", action="store_true", help="no colours")
    return parser


# -- helpers ---------------------------------------------------------------------------------


def _interactive() -> bool:
    """A person at a terminal: stdin and stdout are both terminals."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _token(given: str | None) -> str | None:
    return given or os.environ.get(TOKEN_ENV) or None


def _connect(
    host: str, port: int, nick: str, token: str | None, context: ssl.SSLContext | None
) -> ChatClient:
    """A joined ChatClient, or Failure saying in one line why not."""
    where = hostport(host, port)
    try:
        return ChatClient(host, port, nick=nick, token=token, ssl_context=context)
    except JoinRefused as exc:
        hint = ""
        if exc.code == "bad-token" and not token:
            hint = f" (this room needs a token: give it with --token or {TOKEN_ENV})"
        raise Failure(f"{where} refused you: {safe(exc.reason)}{hint}", REFUSED) from None
    except ConnectionRefusedError:
        raise Failure(
            f"cannot connect to {where}: no server is listening there (is 'labchat serve' running?)"
        ) from None
    except socket.gaierror as exc:
        raise Failure(f"cannot find the host {host!r}: {exc.strerror}") from None
    except TimeoutError as exc:
        raise Failure(f"cannot connect to {where}: {exc or 'no answer in time'}") from None
    except (OSError, ProtocolError) as exc:
        raise Failure(f"cannot connect to {where}: {safe(str(exc)) or exc.__class__.__name__}") from None


def _client_context(cafile: str | None, *, check_hostname: bool = True) -> ssl.SSLContext:
    try:
        context = tls.client_context(cafile)
    except (OSError, ssl.SSLError) as exc:
        raise Failure(f"cannot read the CA file {cafile!r}: {exc.strerror or exc}") from None
    context.check_hostname = check_hostname
    return context


def _run_chat(client: ChatClient, *, color: bool, interactive: bool, chat_box: list | None = None) -> int:
    """Chat at a prompt or in plain lines; returns the exit status."""
    if interactive:
        try:
            from .terminal import TerminalChat
        except ImportError:
            print(
                "labchat: no prompt_toolkit, so plain lines (pip install 'labchat[terminal]')",
                file=sys.stderr,
            )
        else:
            chat = TerminalChat(client, color=color)
            if chat_box is not None:
                chat_box.append(chat)
            status = chat.run()
            if status:
                print(f"labchat: {safe(chat.reason)}", file=sys.stderr)
            return status
    from .piped import LineChat

    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):  # no stdin at all: nothing to send
        fd = os.open(os.devnull, os.O_RDONLY)
    line_chat = LineChat(client, fd, sys.stdout, color=color)
    status = line_chat.run()
    if status:
        print(f"labchat: {safe(line_chat.reason)}", file=sys.stderr)
    return status


class _LiveStderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is now, so log lines go above a running prompt.

    Until ``show_held()`` it holds what it is given, so nothing is shown before the
    line that says where the room listens.
    """

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.setFormatter(_LogFormat())
        self._held: list[logging.LogRecord] | None = []

    def emit(self, record: logging.LogRecord) -> None:
        if self._held is not None:
            self._held.append(record)
            return
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)

    def show_held(self) -> None:
        with self.lock:
            held, self._held = self._held or [], None
        for record in held:
            self.emit(record)


class _LogFormat(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        return f"{stamp} {level}{safe(record.getMessage())}"


@contextmanager
def _logs_on_stderr(level: int) -> Iterator[_LiveStderr]:
    """Show labchat's log at ``level`` on stderr while the block runs."""
    handler = _LiveStderr(level)
    logger = logging.getLogger("labchat")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(level, old_level or logging.WARNING))
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# -- commands ---------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    """``labchat serve``: run the room in the foreground, chatting in it from a terminal."""
    token = _token(args.token)
    interactive = _interactive()
    if bool(args.tls_cert) != bool(args.tls_key):
        raise Failure("TLS needs both --tls-cert CERT and --tls-key KEY (make them with 'labchat cert')", 2)
    if args.log_private and not args.log:
        raise Failure("--log-private needs --log FILE", 2)
    if interactive:
        try:
            check_nick(args.nick)
        except RoomError as exc:
            raise Failure(f"--nick: {exc}", 2) from None
    context = None
    if args.tls_cert:
        try:
            context = tls.server_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise Failure(f"cannot load the TLS certificate or key: {exc.strerror or exc}") from None
    transcript = None
    if args.log:
        try:
            transcript = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise Failure(f"cannot write the transcript {args.log!r}: {exc.strerror}") from None
    server = ChatServer(
        args.host,
        args.port,
        token=token,
        bot=not args.no_bot,
        history=args.history,
        max_clients=args.max_clients,
        ssl_context=context,
        log=transcript,
        log_private=args.log_private,
    )
    # Without a terminal: joins, leaves and incidents. At a prompt: incidents only,
    # since joins and leaves show in the host's own chat.
    level = logging.WARNING if interactive else logging.INFO
    stop = _Stop() if not interactive else None  # catch signals before saying where we are
    try:
        with _logs_on_stderr(level) as logs:
            try:
                try:
                    server.start()
                except socket.gaierror as exc:
                    raise Failure(f"cannot listen on {args.host!r}: {exc.strerror}") from None
                except OSError as exc:
                    where = hostport(args.host, args.port)
                    raise Failure(f"cannot listen on {where}: {exc.strerror or exc}") from None
                _announce(server, args, token)
                logs.show_held()  # the server's own warnings (an open room, ...) come after that line
                if stop is not None:
                    return stop.wait()
                return _host_chat(server, args, token)
            finally:
                server.close()
    finally:
        if transcript is not None:
            transcript.close()


def _announce(server: ChatServer, args: argparse.Namespace, token: str | None) -> None:
    """The first line: where the room listens and the exact command others run to join."""
    host, port = server.address
    command = f"labchat join {hostport(public_host(host), port)} --nick NAME"
    if args.tls_cert:
        command += f" --tls --cafile {args.tls_cert}"
    if token:
        command += " --token TOKEN"
    print(f"labchat: listening on {hostport(host, port)}; others join with: {command}", flush=True)
    if token:
        print("labchat: the room needs its token: share it yourself (it is never printed)", flush=True)


def _host_chat(server: ChatServer, args: argparse.Namespace, token: str | None) -> int:
    """The host chats in its own room over loopback, like everyone else; leaving closes the room."""
    host, port = server.address
    context = _client_context(args.tls_cert, check_hostname=False) if args.tls_cert else None
    client = _connect(loopback_for(host), port, args.nick, token, context)
    chats: list = []
    signal.signal(signal.SIGTERM, lambda *_: [chat.stop() for chat in chats])
    color = use_color(sys.stdout, disabled=args.no_color)
    status = _run_chat(client, color=color, interactive=True, chat_box=chats)
    print("labchat: the room is closed", flush=True)
    return status


class _Stop:
    """Waits for SIGINT or SIGTERM (installed at once, so none is missed)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._by = ""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, number: int, frame: object) -> None:
        self._by = signal.Signals(number).name
        self._event.set()

    def wait(self) -> int:
        self._event.wait()
        log.info("%s: closing the room", self._by)
        return 0


def cmd_join(args: argparse.Namespace) -> int:
    """``labchat join``: chat in a room from this terminal (or in plain lines from a pipe)."""
    try:
        host, port = parse_address(args.address, args.port or DEFAULT_PORT)
    except ValueError as exc:
        raise Failure(str(exc), 2) from None
    if args.port is not None and ":" in args.address.lstrip("[").split("]")[-1]:
        raise Failure(f"the port is given twice: {args.address!r} and {args.port}", 2)
    context = _client_context(args.cafile) if (args.tls or args.cafile) else None
    client = _connect(host, port, args.nick, _token(args.token), context)
    return _run_chat(client, color=use_color(sys.stdout, disabled=args.no_color), interactive=_interactive())


def cmd_cert(args: argparse.Namespace) -> int:
    """``labchat cert``: write a self-signed certificate and key, and say how to use them."""
    hosts = args.hosts or list(dict.fromkeys(["localhost", "127.0.0.1", socket.gethostname()]))
    if not args.force:
        for path in (args.out_cert, args.out_key):
            if Path(path).exists():
                raise Failure(f"{path} exists already; use --force to replace it")
    try:
        tls.make_certificate(args.out_cert, args.out_key, hosts, days=args.days)
    except (RuntimeError, ValueError) as exc:
        raise Failure(str(exc)) from None
    except OSError as exc:
        raise Failure(f"cannot write the certificate: {exc.strerror or exc}") from None
    print(f"labchat: wrote {args.out_cert} (the certificate, for {', '.join(hosts)}: share it)")
    print(f"labchat: wrote {args.out_key} (the private key: keep it secret)")
    print(f"serve with: labchat serve --host 0.0.0.0 --tls-cert {args.out_cert} --tls-key {args.out_key}")
    print(f"join with:  labchat join {hosts[0]}:{DEFAULT_PORT} --nick NAME --tls --cafile {args.out_cert}")
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


COMMANDS = {"serve": cmd_serve, "join": cmd_join, "cert": cmd_cert, "replay": cmd_replay}


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
