"""One room across several labchat servers, through Redis: optional, behind the bus seam.

``ChatServer(backplane="redis://127.0.0.1:6379/0", room="class-a")`` on every
server (either engine) makes their members one room: one order, one history,
nicks unique across servers, ``/who`` listing everyone. The pieces:

- ``address``  the URL's safety rules (TLS off this machine) and its redaction
- ``entries``  one entry of the room's log, as bytes and back (pure)
- ``mirror``   the room's recent past as the log has it, for newcomers (pure)
- ``peers``    the room's hook: nicks, roster, mutes of the other servers
- ``redis``    every Redis command, each step that must be whole as one Lua script
- ``link``     ``Backplane``: the bus, the reading thread, outages and dead servers

The rule it keeps: nothing here imports redis-py until a backplane starts, so
``import labchat`` and every server without a backplane stay standard library
only. See ``docs/backplane.md`` for the design and what holds when things fail.
"""

from .address import BackplaneError, redact
from .link import Backplane

__all__ = ["Backplane", "BackplaneError", "redact"]
