"""One entry of a room's shared log: the deliveries of one decision, as bytes, and back.

Nothing here touches a socket. An entry holds events in the wire format (one
JSON object each, as ``protocol.encode`` writes them) with, for each, who gets
it: ``None`` for everyone, else a list of references. A reference is the
session's number on the server that decided (an ``int``: only that server can
read it) or a nick (a ``str``: the server that has a member by that nick
delivers it). The room's sequence numbers are not in the entry: the log gives
each entry its place, and the events that carry a number (``seq`` not 0) are
numbered from it in their order, so every server reads the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..protocol import Event, decode_event, encode

__all__ = ["FORMAT", "Entry", "Item", "Ref", "numbered", "pack", "unpack"]

FORMAT = 1

Ref = int | str  # a session number on the deciding server, or a nick on whichever server holds it


@dataclass(frozen=True)
class Item:
    """One event of an entry, with who gets it and whether newcomers are shown it."""

    event: Event
    to: tuple[Ref, ...] | None  # None: everyone in the room
    keep: bool = False  # part of the history a newcomer is shown


@dataclass(frozen=True)
class Entry:
    """A decoded entry, its events numbered. ``join``: (session number, since) of a newcomer
    whose backlog the deciding server fills in; ``skip``: a server that does not deliver it."""

    origin: str
    items: tuple[Item, ...]
    join: tuple[int, int | None] | None = None
    skip: str | None = None
    id: str = ""
    last: int = 0  # the highest seq in it (its first is last - numbered + 1)


def numbered(items: list[Item]) -> int:
    """How many sequence numbers these events take."""
    return sum(1 for item in items if item.event.seq)


def pack(
    origin: str,
    items: list[Item],
    *,
    join: tuple[int, int | None] | None = None,
    skip: str | None = None,
) -> bytes:
    """An entry's bytes (events numbered by the log later: their own ``seq`` only says 0 or not)."""
    body: dict = {
        "v": FORMAT,
        "o": origin,
        "d": [
            [encode(item.event).decode("utf-8").rstrip("\n"), None if item.to is None else list(item.to)]
            + ([1] if item.keep else [])
            for item in items
        ],
    }
    if join is not None:
        body["j"] = list(join)
    if skip is not None:
        body["x"] = skip
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def unpack(data: bytes, entry_id: str) -> Entry:
    """An entry read back from the log under ``entry_id`` ("LAST-N"), its events numbered."""
    body = json.loads(data)
    if body.get("v") != FORMAT:
        raise ValueError(f"an entry of format {body.get('v')!r}; this server reads format {FORMAT}")
    last = int(entry_id.partition("-")[0])
    raw = [(decode_event(line.encode("utf-8")), to, bool(rest)) for line, to, *rest in body["d"]]
    seq = last - sum(1 for event, _, _ in raw if event.seq)
    items = []
    for event, to, keep in raw:
        if event.seq:
            seq += 1
            event = Event.checked(**{**event.__dict__, "seq": seq})  # replace(), without its checks
        items.append(Item(event, None if to is None else tuple(to), keep))
    join = body.get("j")
    return Entry(
        origin=str(body["o"]),
        items=tuple(items),
        join=None if join is None else (int(join[0]), join[1]),
        skip=body.get("x"),
        id=entry_id,
        last=last,
    )
