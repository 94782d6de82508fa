"""The two entry points: ``join(...)`` shows a client panel, ``host(...)`` also runs the server.

The rules they keep: running a cell again replaces what its last run made
(through the registry), while every panel one run makes stays (two ``join``
calls in one cell are two panels); and errors show in the panel, never as a
traceback, so a learner can always re-run the cell after fixing it. A mistake in
calling them (an argument of the wrong kind, a keyword ChatServer does not take)
is a Python error as usual, raised before anything is left running or registered.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from ..server import DEFAULT_PORT
from . import registry
from .addresses import port_number, split
from .panel import MAX_LINES, ChatPanel
from .server_panel import ServerPanel


def join(
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    nick: str,
    token: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    tls: bool = False,
    cafile: str | Path | None = None,
    timeout: float = 10.0,
    reconnect: bool = True,
    max_lines: int = MAX_LINES,
    height: str = "260px",
    show: bool = True,
    wire: bool = False,
) -> ChatPanel:
    """Join a labchat room and show its panel. ``host`` may be ``"host:port"`` when ``port`` is None.

    ``tls=True`` (or a ``cafile``, the host's certificate) speaks TLS; ``ssl_context`` gives your own.
    Errors (unreachable, nick taken, wrong token, a port out of range, a cafile that cannot be
    read) show in the panel, not as a traceback.
    A dropped connection is re-established, the panel saying "reconnecting..." meanwhile
    (``reconnect=False``: the panel says "disconnected" instead).
    The panel shows itself as the cell's output (``show=False`` leaves that to you).
    ``wire=True`` shows every line as it travels, from the first byte (the banner, your
    hello, the welcome), under the event it carried; the panel's checkbox does it later.
    """
    host, port = split(host, port)
    panel = ChatPanel(nick=nick, max_lines=max_lines, height=height, wire=wire)
    registry.replace(("join", registry.cell_key()), panel, lambda old: False)
    panel.connect(
        host,
        port,
        token=token,
        ssl_context=ssl_context,
        tls=tls,
        cafile=cafile,
        timeout=timeout,
        reconnect=reconnect,
    )
    if show:
        registry.show(panel)
    return panel


def host(
    port: int = DEFAULT_PORT,
    nick: str = "host",
    *,
    host: str = "127.0.0.1",
    token: str | None = None,
    bot: Any = True,
    history: int = 20,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    ssl_context: ssl.SSLContext | None = None,
    log: Any = None,
    max_lines: int = MAX_LINES,
    height: str = "260px",
    show: bool = True,
    wire: bool = False,
    **server_options: Any,
) -> ServerPanel:
    """Start a labchat server in this kernel, join it as ``nick``, and show the host panel.

    Only this machine can join unless you choose ``host="0.0.0.0"`` (every interface).
    ``port=0`` picks a free port (a port may be given as its digits, "5050"). ``cert``/``key`` (or
    a server ``ssl_context``) speak TLS;
    ``token``, ``bot``, ``history``, ``log`` and any other keyword go to ChatServer.
    Re-running the cell stops the server the last run started before binding again.
    The panel shows itself as the cell's output (``show=False`` leaves that to you).
    ``wire=True`` shows the own chat's lines as they travel, from the first byte.
    """
    whole = isinstance(history, int) and not isinstance(history, bool)
    if not whole or history < 0:
        why = f"history is how many messages a newcomer is shown, a whole number like 20, not {history!r}"
        raise (ValueError if whole else TypeError)(why)
    try:
        wanted = port_number(port, server=True)
    except ValueError:
        wanted = None  # not a port: the panel says so, as for a port that is busy
    panel = ServerPanel(nick=nick, max_lines=max_lines, height=height, wire=wire)

    def same_port(old: ChatPanel) -> bool:
        bound = old.address if isinstance(old, ServerPanel) else None
        return bool(wanted) and bound is not None and bound[1] == wanted

    registry.replace(("host", registry.cell_key()), panel, same_port)
    try:
        panel.start(
            host,
            port,
            cert=cert,
            key=key,
            ssl_context=ssl_context,
            token=token,
            bot=bot,
            history=history,
            log=log,
            **server_options,
        )
    except BaseException:  # a mistake in the call (a keyword ChatServer does not take): nothing stays
        panel.close()
        raise
    if show:
        registry.show(panel)
    return panel
