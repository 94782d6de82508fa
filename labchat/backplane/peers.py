"""The room's hook into the other servers: nicks claimed in Redis, the roster, shared mutes.

``SharedPeers`` is what ``Room(peers=...)`` asks when a nick is taken or let go,
when someone asks ``/who``, and when a command names someone who is not on this
server. The room calls it with its locks held, so every answer is one Redis
round trip at most, and none at all while the backplane is known to be down:
then a new nick cannot be checked (``RoomError('unavailable')``, so joins and
renames wait), ``/who`` lists this server's members, and letting a nick go is
left to the reconciliation when Redis is back. A failure here only answers the
room's question: the room's locks are held, so the backplane learns that Redis
is gone from its next publish or read, which hold the delivery lock alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..room import Peers, RoomError
from .address import BackplaneError

if TYPE_CHECKING:
    from .link import Backplane

UNAVAILABLE = "the rest of the room, on other servers, cannot be reached just now; try again in a moment"


class SharedPeers(Peers):
    """``Peers`` for a room shared through a backplane (see the module docstring)."""

    def __init__(self, link: Backplane) -> None:
        super().__init__()
        self._link = link

    def _log(self):
        log = self._link.log
        if log is None or self._link.down:
            raise RoomError("unavailable", UNAVAILABLE)
        return log

    def claim(self, key: str, nick: str) -> str | None:
        log = self._log()
        try:
            return log.claim(key, nick, self._link.nick_ttl)
        except BackplaneError:
            raise RoomError("unavailable", UNAVAILABLE) from None

    def release(self, key: str) -> None:
        log = self._link.log
        if log is None or self._link.down:
            return  # reconciled when the backplane is back
        try:
            log.release(key)
        except BackplaneError:
            pass  # reconciled when the backplane is back

    def roster(self) -> list[str] | None:
        log = self._link.log
        if log is None or self._link.down:
            return None
        try:
            return log.roster() or None
        except BackplaneError:
            return None

    def find(self, key: str) -> str | None:
        log = self._log()
        try:
            return log.holder(key)
        except BackplaneError:
            raise RoomError("unavailable", UNAVAILABLE) from None
