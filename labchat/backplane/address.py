"""Where a backplane lives: a Redis URL checked for safety and written without its password.

Nothing here opens a connection. The rules it keeps: a password in a URL is
never printed (``redact`` hides it wherever the URL is shown, in logs and
errors alike), and a Redis server that is not on this machine is reached over
TLS (``rediss://``) unless the caller says plainly that the network between
them is trusted (``insecure=True``, ``labchat serve --backplane-insecure``):
whoever can watch that network would read every message of the room.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

__all__ = ["BackplaneError", "check_room", "check_url", "redact"]

SCHEMES = ("redis", "rediss", "unix")

# Room names go into Redis key names: letters, digits and a few marks, as nicks are.
ROOM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class BackplaneError(RuntimeError):
    """The backplane cannot be used: a bad URL, a refused address, or Redis out of reach."""


def redact(url: str) -> str:
    """``url`` as it may be shown: any password (and user) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<an unreadable URL>"
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    return SplitResult(parts.scheme, f"***@{host}{port}", parts.path, parts.query, parts.fragment).geturl()


def check_url(url: str, *, insecure: bool = False) -> str:
    """The URL if it may be used; BackplaneError (saying why, without the password) if not."""
    shown = redact(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        raise BackplaneError(f"not a Redis URL: {shown} ({exc})") from None
    if parts.scheme not in SCHEMES:
        raise BackplaneError(f"not a Redis URL: {shown} (it must start with redis://, rediss:// or unix://)")
    if parts.scheme == "unix" or parts.scheme == "rediss" or insecure:
        return url
    if not _is_loopback(parts.hostname or "localhost"):
        raise BackplaneError(
            f"the backplane {shown} is not on this machine, and redis:// sends the room's messages "
            "unencrypted: use rediss:// (TLS), or say the network is trusted with --backplane-insecure "
            "(backplane_insecure=True)"
        )
    return url


def check_room(room: str) -> str:
    """The room's name if it may name Redis keys; ValueError if not."""
    if not isinstance(room, str) or not ROOM.fullmatch(room):
        raise ValueError(
            f"room name {room!r}: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return room


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere
