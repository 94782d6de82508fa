"""Joining a room from a terminal: addresses, connecting with one-line failures, then chatting.

Shared by ``labchat join`` and by ``labchat serve``, whose host joins its own
room over loopback like everyone else. The rule it keeps: an ordinary failure
(no server there, nick taken, wrong token, TLS mismatch, connection lost)
becomes a ``Failure`` with one clear line and an exit status, never a
traceback. A connection that drops is re-established by the client itself,
which says so in the chat like any notice. The chat runs at a prompt
(``terminal.py``) when a person is at a terminal, and in plain lines
(``piped.py``) otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import sys
from collections.abc import Callable

from . import tls
from .client import ChatClient, JoinRefused
from .console import WireTap
from .hostaddr import hostport
from .protocol import DEFAULT_PORT, ProtocolError
from .render import safe

# Exit statuses: 0 all went well (leaving the chat included), 2 a usage error (argparse's).
FAILED = 1  # could not connect, lost the connection, could not listen, a file problem
REFUSED = 3  # the server said no: nick taken or invalid, wrong token, room full, TLS only

TOKEN_ENV = "LABCHAT_TOKEN"
OP_TOKEN_ENV = "LABCHAT_OP_TOKEN"
WILDCARDS = frozenset({"", "0.0.0.0", "::"})


class Failure(Exception):
    """An ordinary failure: the message is the one line shown, ``status`` the exit status."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


# -- addresses ------------------------------------------------------------------------------


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
    elif ":" in text:  # more than one colon and no brackets: an IPv6 address, or a slip
        try:
            ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            raise ValueError(f"cannot read the address {text!r}; write HOST:PORT, or [IPV6]:PORT") from None
    host = host or "127.0.0.1"
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r} in {text!r}: a port is a number from 1 to 65535")
    return host, int(port)


def public_host(bound: str) -> str:
    """The address others use to reach a server bound to ``bound``."""
    return socket.gethostname() if bound in WILDCARDS else bound


def loopback_for(bound: str) -> str:
    """The address this machine's own client uses to reach a server bound to ``bound``."""
    if bound in WILDCARDS:
        return "::1" if ":" in bound else "127.0.0.1"
    return bound


def at_terminal() -> bool:
    """A person at a terminal: stdin and stdout are both terminals."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def token_from(given: str | None) -> str | None:
    return given or os.environ.get(TOKEN_ENV) or None


def connect(
    host: str,
    port: int,
    nick: str,
    token: str | None,
    context: ssl.SSLContext | None,
    *,
    reconnect: bool = True,
    reconnect_for: float = 120.0,
    op_token: str | None = None,
    wire: WireTap | None = None,
) -> ChatClient:
    """A joined ChatClient, or Failure saying in one line why not.

    The client reconnects by itself when the connection drops (``reconnect``): the
    chat shows "reconnecting..." and goes on once the server is back.
    """
    where = hostport(host, port)
    try:
        return ChatClient(
            host,
            port,
            nick=nick,
            token=token,
            ssl_context=context,
            reconnect=reconnect,
            reconnect_for=reconnect_for,
            op_token=op_token,
            wire=wire,
        )
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


def client_context(cafile: str | None, *, check_hostname: bool = True) -> ssl.SSLContext:
    try:
        context = tls.client_context(cafile)
    except (OSError, ssl.SSLError) as exc:
        raise Failure(f"cannot read the CA file {cafile!r}: {exc.strerror or exc}") from None
    context.check_hostname = check_hostname
    return context


def chat(
    client: ChatClient,
    *,
    color: bool,
    interactive: bool,
    stoppers: list[Callable[[], None]] | None = None,
    quiet: bool = False,
    wire: WireTap | None = None,
) -> int:
    """Chat at a prompt or in plain lines; the exit status (0: the person left).

    At a prompt, the function that ends the chat politely is added to
    ``stoppers``, for a signal handler to call.
    """
    if interactive:
        try:
            from .terminal import TerminalChat
        except ImportError:
            print(
                "labchat: no prompt_toolkit, so plain lines (pip install 'labchat[terminal]')",
                file=sys.stderr,
            )
        else:
            prompt = TerminalChat(client, color=color, quiet=quiet, wire=wire)
            if stoppers is not None:
                stoppers.append(prompt.stop)
            status = prompt.run()
            if status:
                print(f"labchat: {safe(prompt.reason)}", file=sys.stderr)
            return status
    from .piped import LineChat

    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):  # no stdin at all: nothing to send
        fd = os.open(os.devnull, os.O_RDONLY)
    line_chat = LineChat(client, fd, sys.stdout, color=color, wire=wire)
    status = line_chat.run()
    if status:
        print(f"labchat: {safe(line_chat.reason)}", file=sys.stderr)
    return status
