"""Chat panels for Jupyter: ``join(...)`` shows a client panel, ``host(...)`` also runs the server.

from labchat.widgets import host, join
panel = host(port=5050, nick="teacher")       # a ChatServer in this kernel, and its panel
panel = join("127.0.0.1", 5050, nick="ada")   # in another notebook: a client panel

%load_ext labchat                              # %%chat shares a cell, %chat_paste fetches code

One idea per module: ``panel`` (the client panel), ``server_panel`` (the host
panel), ``registry`` (what this kernel runs, so re-running a cell is safe),
``view`` (an event as the panel's HTML: code, folds, mentions), ``compose``
(what the input box sends: the Enter rule, fenced code), ``wire`` (the lines as
they travelled, each under its event), ``connections`` (the host's live table of
connections), ``magics`` (``%%chat``,
``%chat_paste``), ``style`` (the CSS), ``addresses`` (host:port and readable
failures) and ``entry`` (``join`` and ``host``). The rule the package keeps: the
panels are thin. What they show comes from ``render.py`` (user text is always
escaped, never HTML) and what they do goes through ``ChatClient`` and
``ChatServer``; the host's own chat is an ordinary client over loopback.
"""

from .entry import host, join
from .panel import MAX_LINES, ChatPanel
from .registry import current_panel, live_panels
from .server_panel import ServerPanel
from .view import CodeBlock

__all__ = [
    "MAX_LINES",
    "ChatPanel",
    "CodeBlock",
    "ServerPanel",
    "current_panel",
    "host",
    "join",
    "live_panels",
]
