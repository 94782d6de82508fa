"""One entry of a room's shared log: the deliveries of one decision, as bytes, and back.

Nothing here touches a socket. An entry holds events in the wire format (one
JSON object each, as ``protocol.encode`` writes them) with, for each, who gets
it: ``None`` for everyone, else a list of references. A reference is the
session's number on the server that decided (an ``int``: only that server can
read it) or a nick (a ``str``: the server that has a member by that nick
delivers it). The room's sequence numbers are not in the entry: the log gives
each entry its place, and the events that carry a number (``seq`` not 0) are
numbered from it in their order, so every server reads the same numbers.

Anyone who can write to Redis can write an entry, so ``unpack`` trusts none:
whatever is not an entry as ``pack`` writes it (not JSON, not an object, a
reference that is neither a session number nor a nick, numbers that would go
below 1, ...) raises ``Malformed``, saying what was wrong, and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from ..protocol import Event, decode_event, encode

__all__ = ["FORMAT", "Entry", "Item", "Malformed", "Ref", "numbered", "pack", "unpack"]

FORMAT = 1
# While decoding a long entry, ``unpack`` calls its ``tick`` once every this many events.
TICK = 1024

Ref = int | str  # a session number on the deciding server, or a nick on whichever server holds it


class Malformed(ValueError):
    """Bytes read from the log that are not an entry; the message says what is wrong."""


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


def unpack(data: bytes, entry_id: str, *, tick: Callable[[], None] | None = None) -> Entry:
    """An entry read back from the log under ``entry_id`` ("LAST-N"), its events numbered.

    ``Malformed`` if it is not one. ``tick``, if given, is called every ``TICK`` events
    while a long entry is decoded (the reading thread beats its heartbeat there)."""
    try:
        return _unpack(data, entry_id, tick)
    except Malformed:
        raise
    except RecursionError:
        raise Malformed("nested too deeply") from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise Malformed(f"{type(exc).__name__}: {exc}") from None


def _unpack(data: bytes, entry_id: str, tick: Callable[[], None] | None) -> Entry:
    body = json.loads(data)
    if not isinstance(body, dict):
        raise Malformed(f"a JSON {type(body).__name__}, not an object")
    if body.get("v") != FORMAT:
        raise Malformed(f"an entry of format {body.get('v')!r}; this server reads format {FORMAT}")
    origin, lines, join, skip = body.get("o"), body.get("d"), body.get("j"), body.get("x")
    if not isinstance(origin, str):
        raise Malformed("its origin ('o') is not a string")
    if not isinstance(lines, list):
        raise Malformed("its events ('d') are not a list")
    if join is not None and not (
        isinstance(join, list)
        and len(join) == 2
        and _is_int(join[0])
        and (join[1] is None or _is_int(join[1]))
    ):
        raise Malformed("its join ('j') is not [session, since]")
    if skip is not None and not isinstance(skip, str):
        raise Malformed("the server it skips ('x') is not a string")
    last = int(entry_id.partition("-")[0])
    raw = []
    for n, row in enumerate(lines):
        if tick is not None and n and not n % TICK:
            tick()
        if not (isinstance(row, list) and len(row) in (2, 3) and isinstance(row[0], str)):
            raise Malformed(f"event {n} is not [line, to] or [line, to, 1]")
        line, to = row[0], row[1]
        if to is not None and not (isinstance(to, list) and all(_is_ref(ref) for ref in to)):
            raise Malformed(f"event {n} is not for everyone (null) nor for a list of sessions and nicks")
        raw.append((decode_event(line.encode("utf-8")), to, len(row) == 3 and bool(row[2])))
    seq = last - sum(1 for event, _, _ in raw if event.seq)
    if seq < 0:
        raise Malformed(f"it numbers {last - seq} events but its ID {entry_id} leaves room for {last}")
    items = []
    for n, (event, to, keep) in enumerate(raw):
        if tick is not None and n and not n % TICK:
            tick()
        if event.seq:
            seq += 1
            event = Event.checked(**{**event.__dict__, "seq": seq})  # replace(), without its checks
        items.append(Item(event, None if to is None else tuple(to), keep))
    return Entry(
        origin=origin,
        items=tuple(items),
        join=None if join is None else (join[0], join[1]),
        skip=skip,
        id=entry_id,
        last=last,
    )


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_ref(value: object) -> bool:
    """A session number or a nick (``True`` is an ``int`` to Python, and no session)."""
    return type(value) is int or (type(value) is str and value != "")
