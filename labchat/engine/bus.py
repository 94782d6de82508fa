"""The seam between deciding and delivering: a room's broadcasts pass through a ``Bus``.

The room decides what happens and in which order; a bus carries the resulting
deliveries to every server that has members of the room; each server's hub
then queues them for its own connections. In one process the bus is
``LocalBus``, which hands them straight back, with no copy and no dependency.
A backplane that joins several server processes into one room (through Redis,
``labchat/backplane``) implements the same methods. The rule: ``publish`` is
called with the delivery lock held and must not block for long; whatever is
attached receives the deliveries in one order, the room's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol

from ..room import Delivery

# ``deliver(deliveries, members=None)``: queue them for this server's members (with the delivery
# lock held); ``members`` are those a delivery to everyone reaches (default: all who joined here).
Deliver = Callable[..., None]


class Bus(Protocol):
    """What a server needs of a bus: one receiver attached, deliveries published in order."""

    def attach(self, deliver: Deliver) -> None:
        """Call ``deliver(deliveries)`` for everything published to the room, in order."""

    def publish(self, deliveries: list[Delivery]) -> None:
        """Carry these deliveries to every attached server (this one included)."""

    def publish_join(self, member: Hashable, since: int | None, deliveries: list[Delivery]) -> None:
        """A member's join. The room put the newcomer's backlog (recent history, or what it
        missed since ``since``) after its welcome; a bus whose log is shared by several servers
        takes the backlog from that log instead, at the join's place in its order."""

    def settle(self, timeout: float) -> None:
        """Return once what this server published has been delivered here (or after ``timeout``):
        a member leaving is sent its goodbye before its connection closes."""


class LocalBus:
    """The in-process bus: one server, so publishing is delivering."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    def attach(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def publish(self, deliveries: list[Delivery]) -> None:
        if deliveries and self._deliver is not None:
            self._deliver(deliveries)

    def publish_join(self, member: Hashable, since: int | None, deliveries: list[Delivery]) -> None:
        self.publish(deliveries)

    def settle(self, timeout: float) -> None:
        """Published is delivered, here: nothing to wait for."""
