"""The chat server: ``ChatServer`` is the threaded engine; ``SelectorChatServer`` waits on one thread.

Which to choose: ``ThreadingChatServer`` (``ChatServer``) is the model the
tutorials teach, a thread per connection, and is right for a class. The
``SelectorChatServer`` serves thousands of mostly idle clients from one thread
in a few KiB each. Both take the same keywords and behave the same; see
``labchat/engine/`` for how, and ``docs/protocol.md`` for what clients see.
"""

from .engine import Connection, Faults, SelectorChatServer, ThreadingChatServer
from .protocol import DEFAULT_PORT

ChatServer = ThreadingChatServer

__all__ = ["DEFAULT_PORT", "ChatServer", "Connection", "Faults", "SelectorChatServer", "ThreadingChatServer"]
