"""labchat: a teaching chat for Jupyter, from raw sockets to a class chat.

from labchat import ChatServer, ChatClient

with ChatServer(port=0) as server:
    host, port = server.address
    with ChatClient(host, port, nick="ada") as ada:
        ada.send("hello")

A library does not choose where its log goes: the server's loggers ("labchat.server",
"labchat.backplane") have a handler that does nothing, so a server's background
threads never write warnings into whatever a notebook cell is printing (the host
panel shows them); a program that configures logging (``labchat serve`` does) sees
them all. A client's log is left alone: a callback of yours that raises is shown.
"""

import logging

from .client import ChatClient, ConnectionClosed, JoinRefused
from .doctor import doctor
from .protocol import Event, ProtocolError
from .server import ChatServer

# Without it, Python's last-resort handler prints a warning from any thread on stderr,
# which a kernel shows in the cell that happens to be running.
for _name in ("labchat.server", "labchat.backplane"):
    logging.getLogger(_name).addHandler(logging.NullHandler())

__version__ = "0.1.0"
__all__ = [
    "ChatClient",
    "ChatServer",
    "ConnectionClosed",
    "Event",
    "JoinRefused",
    "ProtocolError",
    "__version__",
    "doctor",
    "load_ipython_extension",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext labchat``: the chat magics (``%%chat``, ``%chat_paste``) in this IPython.

    They need ipywidgets and IPython, imported only now, so ``import labchat`` stays
    standard library only.
    """
    from .widgets.magics import load_ipython_extension as load

    load(ipython)
