"""labchat's chat server engines: one room, two ways to wait.

``ThreadingChatServer`` gives each connection a thread, as the tutorials teach;
``SelectorChatServer`` serves every connection from one thread with
``selectors``. They take the same keywords and behave the same, because what a
client can observe lives in pieces they share: ``session`` (one connection's
rules), ``outbox`` (its bounded queue), ``fanout`` (the room's delivery path),
``limits`` (every bound and why), ``bus`` (the seam to other processes) and
``core`` (keywords, admission, shutdown). Standard library only.
"""

from .core import ChatServerCore, Connection
from .faults import Faults
from .selector import SelectorChatServer
from .threaded import ThreadingChatServer

__all__ = ["ChatServerCore", "Connection", "Faults", "SelectorChatServer", "ThreadingChatServer"]
