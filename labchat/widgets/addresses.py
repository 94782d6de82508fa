"""Where a panel connects and how to say it: host:port forms, readable failures, reachable addresses.

Small pure helpers the panels share, and the addresses a host panel gives others
(this machine's own, from ``labchat.hostaddr``). The rules it keeps: nothing here
sends a packet; a port is a whole number from 1 to 65535 (0 too, for a server:
any free port), given as a number or as its digits, and anything else is refused
before a socket sees it (a socket would wrap 70000 round to another port); every
failure becomes one short sentence a learner can act on.
"""

from __future__ import annotations

import json
import socket

from ..hostaddr import hostport, own_addresses
from ..protocol import DEFAULT_PORT


def port_number(port: object, *, server: bool = False) -> int:
    """``port`` as a number, from an int or its digits ("5050"); ValueError, in one sentence, if it is
    not a port (``server``: 0 is one too, and picks a free port)."""
    lowest = 0 if server else 1
    number = None
    if isinstance(port, int) and not isinstance(port, bool):
        number = port
    elif isinstance(port, str) and port.strip().isascii() and port.strip().isdigit():
        number = int(port.strip())
    if number is None or not lowest <= number <= 65535:
        raise ValueError(f"a port is a whole number from {lowest} to 65535, not {port!r}")
    return number


def split(host: str, port: int | None) -> tuple[str, int]:
    """(host, port) from a host and a port, or from ``"host:port"`` when ``port`` is None."""
    if port is not None:
        return host, port
    name, sep, number = host.rpartition(":")
    if sep and number.isdigit() and name:
        return name.strip("[]"), int(number)
    return host, DEFAULT_PORT


def quoted(text: str) -> str:
    """A Python string literal in double quotes, as a person would type it."""
    return json.dumps(text, ensure_ascii=False)


def where(host: str, port: int) -> str:
    """Where a panel connects, as its status line says it."""
    return hostport(host, port)


def reason(exc: BaseException) -> str:
    """A short, readable cause for a failed connect or bind."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running, on that port?)"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return str(exc) or "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror[0].lower() + exc.strerror[1:]
        if exc.errno == 98 or "in use" in text:
            text += " (another program has this port; try another, or port=0)"
        return text
    return str(exc) or type(exc).__name__


def loopback(bind_host: str, bound: str) -> str:
    """Where the host's own client connects: loopback for a wildcard bind, else the bound address."""
    if bind_host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bind_host == "::":
        return "::1"
    return bound


def reachable(bind_host: str, bound: str) -> list[str]:
    """Addresses others can use: this machine's own addresses when bound to every interface
    (IPv4 ones for an IPv4 wildcard), then loopback for this machine's own programs."""
    if bind_host not in ("", "0.0.0.0", "::"):
        return [bound]
    outside = [a for a in own_addresses() if bind_host == "::" or ":" not in a]
    return [*outside, loopback(bind_host, bound)]
