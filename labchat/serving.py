"""``labchat serve``: a room in the foreground, with the host chatting in it or a log on stderr.

With a person at a terminal, the host joins its own room over loopback as an
ordinary ``ChatClient`` and chats at a prompt; incidents from the server's log
appear above that prompt. Without one (a service, a test, a background job),
it only serves and logs joins, leaves and incidents to stderr until SIGINT or
SIGTERM. The rule it keeps: the first line of output says where the room
listens and the exact command others run to join, and the token is never
printed. Leaving, Ctrl-C or SIGTERM closes the room and every client is told.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from . import tls
from .backplane import Backplane, BackplaneError
from .bot import Greeter
from .console import use_color
from .engine.faults import Faults
from .hostaddr import hostport, own_addresses
from .joining import (
    OP_TOKEN_ENV,
    WILDCARDS,
    Failure,
    at_terminal,
    chat,
    client_context,
    connect,
    loopback_for,
    public_host,
    token_from,
)
from .render import safe
from .room import RoomError, check_nick, is_reserved
from .server import ChatServer

log = logging.getLogger("labchat.cli")


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
    token = token_from(args.token)
    interactive = at_terminal()
    if bool(args.tls_cert) != bool(args.tls_key):
        raise Failure("TLS needs both --tls-cert CERT and --tls-key KEY (make them with 'labchat cert')", 2)
    if args.log_private and not args.log:
        raise Failure("--log-private needs --log FILE", 2)
    if (args.room or args.backplane_insecure) and not args.backplane:
        raise Failure("--room and --backplane-insecure need --backplane URL", 2)
    if interactive:
        try:
            check_nick(args.nick)
        except RoomError as exc:
            raise Failure(f"--nick: {exc}", 2) from None
        if is_reserved(args.nick, None if args.no_bot else Greeter().nick):
            raise Failure(f"--nick: the nick {safe(args.nick)!r} is the room's own; please pick another", 2)
    context = None
    if args.tls_cert:
        try:
            context = tls.server_context(args.tls_cert, args.tls_key)
        except ssl.SSLError:  # (before OSError, which it is too) read, but not a PEM pair
            raise Failure(
                f"{args.tls_cert} and {args.tls_key} are not a TLS certificate and its key "
                "(two PEM files that belong together, as 'labchat cert' writes them)"
            ) from None
        except OSError as exc:  # ssl does not say which of the two it could not read
            for what, path in (("certificate", args.tls_cert), ("key", args.tls_key)):
                try:
                    open(path, "rb").close()
                except OSError as missing:
                    raise Failure(f"cannot read the TLS {what} {path}: {missing.strerror}") from None
            raise Failure(f"cannot load the TLS certificate or key: {exc.strerror or exc}") from None
    transcript = None
    if args.log:
        try:
            transcript = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise Failure(f"cannot write the transcript {args.log!r}: {exc.strerror}") from None
    backplane = None
    if args.backplane:
        try:
            backplane = Backplane(args.backplane, args.room or "main", insecure=args.backplane_insecure)
        except (BackplaneError, ValueError) as exc:
            raise Failure(f"--backplane: {exc}", 2) from None
    server = ChatServer(
        args.host,
        args.port,
        token=token,
        bot=not args.no_bot,
        history=args.history,
        max_clients=args.max_clients,
        max_per_host=args.max_per_host,
        ssl_context=context,
        log=transcript,
        log_private=args.log_private,
        op_token=args.op_token or os.environ.get(OP_TOKEN_ENV) or None,
        faults=Faults(chop=args.chop, delay=args.delay / 1000),
        backplane=backplane,
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
                except BackplaneError as exc:
                    raise Failure(f"cannot share the room: {exc}") from None
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


def _for_others(bound: str) -> str:
    """The address to give classmates: this machine's network address when bound to every interface.

    A host name is the last resort, since classmates' machines often cannot look it up.
    """
    if bound not in WILDCARDS:
        return bound
    found = sorted(own_addresses(), key=lambda address: ":" in address)  # IPv4 first: easier to type
    return found[0] if found else public_host(bound)


def _announce(server: ChatServer, args: argparse.Namespace, token: str | None) -> None:
    """The first line: where the room listens and the exact command others run to join."""
    host, port = server.address
    command = f"labchat join {hostport(_for_others(host), port)} --nick NAME"
    if args.tls_cert:
        command += f" --tls --cafile {args.tls_cert}"
    if token:
        command += " --token TOKEN"
    print(f"labchat: listening on {hostport(host, port)}; others join with: {command}", flush=True)
    if token:
        print("labchat: the room needs its token: share it yourself (it is never printed)", flush=True)
    if server.backplane is not None:
        shared = server.backplane
        print(f"labchat: room {shared.room!r} is shared through {shared.shown}", flush=True)


def _host_chat(server: ChatServer, args: argparse.Namespace, token: str | None) -> int:
    """The host chats in its own room over loopback, like everyone else; leaving closes the room."""
    host, port = server.address
    context = client_context(args.tls_cert, check_hostname=False) if args.tls_cert else None
    client = connect(
        loopback_for(host), port, args.nick, token, context, reconnect=False, op_token=server.op_token
    )
    stoppers: list[Callable[[], None]] = []
    signal.signal(signal.SIGTERM, lambda *_: [stop() for stop in stoppers])
    color = use_color(sys.stdout, disabled=args.no_color)
    status = chat(client, color=color, interactive=True, stoppers=stoppers)
    print("labchat: the room is closed", flush=True)
    return status


class _Stop:
    """Waits for SIGINT or SIGTERM; the handlers are installed at once, so none is missed.

    The handler only writes a byte to a pipe that ``wait()`` reads: it takes no
    lock, so it is safe wherever the signal strikes.
    """

    def __init__(self) -> None:
        self._read_end, self._write_end = os.pipe()
        self._by = "stopped"
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, number: int, frame: object) -> None:
        self._by = signal.Signals(number).name
        try:
            os.write(self._write_end, b"!")
        except OSError:  # a second signal, once the room is already closing
            pass

    def wait(self) -> int:
        try:
            os.read(self._read_end, 1)
        finally:
            os.close(self._read_end)
            os.close(self._write_end)
        log.info("%s: closing the room", self._by)
        return 0
