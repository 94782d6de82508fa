"""Addresses: this machine's own, as others on the network would use them, and how to write one.

The rule it keeps: nothing here sends a packet. The host name is looked up in the
machine's own resolver, and the default route is found with a UDP ``connect()``,
which picks a route and sends nothing. ``labchat serve``'s join line, the host
panel's addresses, ``labchat doctor`` and ``labchat cert`` all ask here, so that
the address one of them shows is the address the others know.
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["ROUTE_PROBE", "hostport", "ip_of", "is_loopback", "own_addresses"]

# A documentation address (TEST-NET-1): a UDP connect() to it only picks a route, no packet leaves.
ROUTE_PROBE = ("192.0.2.1", 9)


def hostport(host: str, port: int) -> str:
    """``HOST:PORT``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """True if only this machine can reach ``host`` (127.x, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    ip = ip_of(host)
    return ip is not None and ip.is_loopback


def ip_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``text`` as an IP address (an IPv6 scope such as ``%eth0`` left out), or None if it is a name."""
    try:
        return ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None


def own_addresses() -> tuple[str, ...]:
    """This machine's network addresses, loopback and link-local left out: the one the
    default route leaves from first (the likeliest to reach classmates), then the host
    name's other addresses."""
    candidates: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(ROUTE_PROBE)
            candidates.append(probe.getsockname()[0])
    except OSError:  # no route out: this machine is on no network
        pass
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP)
    except OSError:
        infos = []
    candidates += [info[4][0] for info in infos]
    found = []
    for text in candidates:
        ip = ip_of(text)
        if ip is not None and not (ip.is_loopback or ip.is_unspecified or ip.is_link_local):
            found.append(str(ip))
    return tuple(dict.fromkeys(found))
