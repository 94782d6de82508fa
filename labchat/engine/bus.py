"""The seam between deciding and delivering: a room's broadcasts pass through a ``Bus``.

The room decides what happens and in which order; a bus carries the resulting
deliveries to every server that has members of the room; each server's hub
then queues them for its own connections. In one process the bus is
``LocalBus``, which hands them straight back, with no copy and no dependency.
A backplane that joins several server processes into one room (through Redis,
say) implements the same two methods. The rule: ``publish`` is called with the
delivery lock held and must not block; whatever is attached receives the
deliveries in one order, the room's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..room import Delivery

Deliver = Callable[[list[Delivery]], None]


class Bus(Protocol):
    """What a server needs of a bus: one receiver attached, deliveries published in order."""

    def attach(self, deliver: Deliver) -> None:
        """Call ``deliver(deliveries)`` for everything published to the room, in order."""

    def publish(self, deliveries: list[Delivery]) -> None:
        """Carry these deliveries to every attached server (this one included)."""


class LocalBus:
    """The in-process bus: one server, so publishing is delivering."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    def attach(self, deliver: Deliver) -> None:
        self._deliver = deliver

    def publish(self, deliveries: list[Delivery]) -> None:
        if deliveries and self._deliver is not None:
            self._deliver(deliveries)
