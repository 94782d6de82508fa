"""TCP keepalive, for either end of a chat: a peer that vanished without a word is noticed.

A laptop whose lid closes sends no FIN: without help, the other end waits on it forever. With
keepalive on, an idle connection is probed after ``IDLE`` seconds, every ``INTERVAL`` seconds,
and given up after ``COUNT`` probes nobody answered: about a minute in all, after which a read
fails and the connection ends as a lost one (a client with ``reconnect`` then tries again).
The rule it keeps: only the kernel's own probes, never bytes of the protocol, so nothing a
program reads changes; options a platform does not have are left out.
"""

from __future__ import annotations

import socket

IDLE, INTERVAL, COUNT = 20, 5, 4


def keep_alive(sock: socket.socket, user_timeout_ms: int | None = None) -> None:
    """Turn keepalive on for ``sock``; with ``user_timeout_ms``, also give up on bytes left
    unacknowledged that long (TCP_USER_TIMEOUT, where the platform has it). OSError if the
    peer has already gone."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    options = {"TCP_KEEPIDLE": IDLE, "TCP_KEEPINTVL": INTERVAL, "TCP_KEEPCNT": COUNT}
    if user_timeout_ms is not None:
        options["TCP_USER_TIMEOUT"] = user_timeout_ms
    for name, value in options.items():
        option = getattr(socket, name, None)  # not every platform has every one
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
