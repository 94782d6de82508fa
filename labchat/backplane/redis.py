"""Everything that speaks to Redis: a room's log, nicks, members and server heartbeats.

The rule it keeps: redis-py is imported here and only when a backplane is
opened, so ``import labchat`` and a server without a backplane never need it.
Each step that must not be seen half done is one Lua script (Redis runs a
script alone), and every failure to reach Redis is one exception, ``Unreachable``,
whose message shows the URL without its password. Keys of a room share the
hash tag ``{ROOM}`` (``labchat:{class-a}:events``), so a Redis Cluster keeps
them on one node, where a script may use them together.

The keys of room R:

- ``labchat:{R}:events``   the log: a stream whose entry IDs are the room's seqs ("LAST-N")
- ``labchat:{R}:epoch``    a random word; a Redis that lost its data has none, or another, or
  has it without the log (the log exists whenever its epoch does: it starts with an empty entry)
- ``labchat:{R}:nick:SK``  "SERVER<TAB>NICK": who holds the nicks of skeleton SK (expires)
- ``labchat:{R}:members:SERVER``  a hash SK -> "JOINED<TAB>NICK" of that server's members
- ``labchat:{R}:servers``  the servers that have joined the room
- ``labchat:{R}:server:SERVER``   a server's heartbeat (expires when it stops beating)
- ``labchat:{R}:cleanup:SERVER``  a lock, held by the one server announcing a dead one's leaves
- ``labchat:{R}:muted``    skeletons of muted nicks

Anyone who can write to this Redis can write these keys, so nothing read from
them is trusted: a value that is not what this module writes (a member's row
without its tab, a name that is not UTF-8, a key of the wrong type) is skipped
as if absent, and said once in the server's log (``Complaints``), never raised.
A key of the wrong type where the room cannot do without it (the log, the
servers, the mutes, this server's members) is a refusal (``check_keys``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from .address import BackplaneError, redact

__all__ = ["Complaints", "RedisLog", "Unreachable"]

log = logging.getLogger("labchat.backplane")

# The log keeps about this many entries (XADD MAXLEN ~): a few MB for a chatty class, more for long
# pastes (docs/security.md says how far, and the maxmemory policy to give Redis). A server
# that falls further behind than this has missed entries; so when Redis comes back without its
# data, numbering resumes this far above the highest seq a server saw, beyond any server's lag.
MAXLEN = 10_000


class Unreachable(BackplaneError):
    """Redis did not answer (refused, reset, timed out), or lost the room's log (``reset``)."""

    def __init__(self, message: str, *, reset: bool = False) -> None:
        super().__init__(message)
        self.reset = reset


# Adds an entry taking ``n`` numbers after the log's last ID and after ``floor`` (the highest
# seq the appending server has seen): "LAST-0" when it takes numbers, else the next "LAST-N".
# The last ID is its top entry's; if entries were taken off the top (XTRIM MAXLEN 0, XDEL) the
# first XADD is refused, and the stream's last-generated-id says where numbering is.
_ADD = """
local function ms(id) return tonumber(string.match(id, '^%d+')) end
local function add(events, floor, n, payload, maxlen)
  local last = tonumber(floor)
  n = tonumber(n)
  local top = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)[1]
  if top and ms(top[1]) > last then last = ms(top[1]) end
  local function id()
    if n > 0 then return string.format('%.0f-0', last + n) end
    return string.format('%.0f-*', last)
  end
  local done = redis.pcall('XADD', events, 'MAXLEN', '~', maxlen, id(), 'e', payload)
  if type(done) ~= 'table' or not done.err then return done end
  if redis.call('EXISTS', events) == 0 then return done end
  local info = redis.call('XINFO', 'STREAM', events)
  for i = 1, #info - 1, 2 do
    if info[i] == 'last-generated-id' and ms(info[i + 1]) > last then last = ms(info[i + 1]) end
  end
  return redis.call('XADD', events, 'MAXLEN', '~', maxlen, id(), 'e', payload)
end
"""

# Appends one entry to the log; nil when the log is not the one the appending server knows:
# another epoch, or none, or the epoch without its log (deleted, evicted): the log was lost.
_APPEND = (
    _ADD
    + """
local function append(events, epoch_key, epoch, floor, n, payload, maxlen)
  if redis.call('GET', epoch_key) ~= epoch then return false end
  if redis.call('EXISTS', events) == 0 then return false end
  return add(events, floor, n, payload, maxlen)
end
"""
)

PUBLISH = (
    _APPEND
    + """
return append(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"""
)

# The room's epoch, made anew if there is none (a new room, or a Redis that lost its data), if
# it is not one this module writes (hex), or if its log is gone (deleted, evicted). A new epoch
# starts its log with an entry that holds no events, numbered after ``floor``: so a log whose
# epoch is there always exists, and one that is missing is known to be lost.
EPOCH = (
    _ADD
    + """
local e = redis.call('GET', KEYS[1])
if e and string.match(e, '^%x+$') and redis.call('EXISTS', KEYS[2]) == 1 then return {e, 0} end
redis.call('SET', KEYS[1], ARGV[1])
add(KEYS[2], ARGV[2], 0, ARGV[3], ARGV[4])
return {ARGV[1], 1}
"""
)

# Take a nick's skeleton for this server (or write it anew when it is already this server's);
# nil when taken, else the nick of whoever holds it. A value that is no claim ("SERVER<TAB>NICK"
# as a string) holds nothing.
CLAIM = """
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'table' then v = false end
local mine = ARGV[1] .. '\t'
local tab = v and string.find(v, '\t', 2, true)
if tab and string.sub(v, 1, #mine) ~= mine then
  return string.sub(v, tab + 1)
end
redis.call('SET', KEYS[1], mine .. ARGV[2], 'PX', ARGV[3])
local at = redis.call('HGET', KEYS[2], ARGV[4])
if at then
  at = string.match(at, '^[^\t]*')
else
  local t = redis.call('TIME')
  at = t[1] .. string.format('%06d', tonumber(t[2]))
end
redis.call('HSET', KEYS[2], ARGV[4], at .. '\t' .. ARGV[2])
return false
"""

# Let a nick go, if it is this server's (compare and delete).
RELEASE = """
local v = redis.pcall('GET', KEYS[1])
if type(v) == 'table' then v = false end
local mine = ARGV[1] .. '\t'
if v and string.sub(v, 1, #mine) == mine then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
"""

# Everyone in the room, on every server whose heartbeat is alive: its server, then
# "JOINED<TAB>NICK", for each (a members key that is not a hash lists nobody).
ROSTER = """
local out = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'server:' .. sid) == 1 then
    local rows = redis.pcall('HVALS', ARGV[1] .. 'members:' .. sid)
    if not rows.err then
      for _, v in ipairs(rows) do
        out[#out + 1] = sid
        out[#out + 1] = v
      end
    end
  end
end
return out
"""

# Join the room's servers and beat once.
REGISTER = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"""

# A heartbeat, and this server's nicks kept from expiring; 0 when this server is no longer
# one of the room's (another announced it dead), and then nothing is refreshed.
BEAT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
local mine = ARGV[1] .. '\t'
for i = 4, #ARGV do
  local v = redis.pcall('GET', ARGV[i])
  if type(v) == 'string' and string.sub(v, 1, #mine) == mine then redis.call('PEXPIRE', ARGV[i], ARGV[3]) end
end
return 1
"""

# The room's servers whose heartbeat has expired.
DEAD = """
local dead = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'server:' .. sid) == 0 then dead[#dead + 1] = sid end
end
return dead
"""

# The lock on announcing a dead server's leaves, and its members; nil if another has the lock
# or the server beats again (a members key that is not a hash holds nobody).
REAP_TAKE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return false end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local rows = redis.pcall('HGETALL', KEYS[2])
if rows.err then return {} end
return rows
"""

# The dead server's leaves appended, its nicks and members gone, all at once.
REAP_FINISH = (
    _APPEND
    + """
local id = append(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
if not id then return false end
local theirs = ARGV[6] .. '\t'
for i = 8, #ARGV do
  local key = ARGV[7] .. 'nick:' .. ARGV[i]
  local v = redis.pcall('GET', key)
  if type(v) == 'string' and string.sub(v, 1, #theirs) == theirs then redis.call('DEL', key) end
end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[4], ARGV[6])
redis.call('DEL', KEYS[5])
return id
"""
)


class Complaints:
    """Warnings about what one server found malformed in Redis, so its log is not flooded: each
    thing once (of the last ``remember`` things), and of each kind ``burst`` in ``every``
    seconds at most; the first after a quiet spell says how many were not shown. Thread-safe."""

    def __init__(
        self,
        *,
        every: float = 60.0,
        burst: int = 10,
        remember: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every, self.burst, self.remember, self._clock = every, burst, remember, clock
        self._said: dict[tuple[str, Hashable], None] = {}
        self._window: dict[str, tuple[float, int]] = {}  # kind -> (window's start, warnings in it)
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, kind: str, thing: Hashable, message: str, *, exc_info: bool = False) -> bool:
        """Warn ``message`` about ``thing`` (of ``kind``) unless said already; whether it was."""
        now = self._clock()
        with self._lock:
            if (kind, thing) in self._said:
                return False
            self._said[(kind, thing)] = None
            if len(self._said) > self.remember:
                del self._said[next(iter(self._said))]
            start, count = self._window.get(kind, (now, 0))
            if now - start >= self.every:
                start, count = now, 0
            if count >= self.burst:
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            self._window[kind] = (start, count + 1)
            held = self._held.pop(kind, 0)
        if held:
            message += f" (and {held} more like it before, not shown)"
        log.warning("%s", message, exc_info=exc_info)
        return True


def _redis() -> Any:
    try:
        import redis
    except ImportError:
        raise BackplaneError(
            "a backplane needs the redis package: pip install 'labchat[redis]' (or pip install redis)"
        ) from None
    return redis


class RedisLog:
    """One room in one Redis, for one server (``sid``). Thread-safe: commands from any thread go
    through a pool; ``read`` (the subscriber's blocking read) has a connection of its own."""

    def __init__(self, url: str, room: str, sid: str, *, timeout: float = 1.0) -> None:
        self.complain = Complaints()
        redis = _redis()
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.shown = redact(url)
        self.sid = sid
        self.prefix = f"labchat:{{{room}}}:"
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
        self._response_error = redis.exceptions.ResponseError
        # No retries inside redis-py: a failure must come back at once, so the room can carry on.
        options = {
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
        }
        try:
            self._cmd = redis.Redis.from_url(url, socket_timeout=timeout, **options)
            self._sub = redis.Redis.from_url(url, socket_timeout=timeout + 2.0, **options)
        except ValueError as exc:
            raise BackplaneError(f"not a Redis URL: {self.shown} ({_words(exc, url)})") from None
        s = self._cmd.register_script
        self._publish, self._epoch, self._claim, self._release = s(PUBLISH), s(EPOCH), s(CLAIM), s(RELEASE)
        self._roster, self._register, self._beat, self._dead = s(ROSTER), s(REGISTER), s(BEAT), s(DEAD)
        self._reap_take, self._reap_finish = s(REAP_TAKE), s(REAP_FINISH)

    def key(self, name: str) -> str:
        return self.prefix + name

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise Unreachable(f"the backplane {self.shown} cannot be reached ({_words(exc, '')})") from None
        except self._response_error as exc:
            raise BackplaneError(f"the backplane {self.shown} refused to {what}: {exc}") from None

    # -- the log ---------------------------------------------------------------------------------

    def check_keys(self) -> None:
        """BackplaneError if a key the room cannot do without holds another type (written by
        someone else): the room is not joined until it is mended, rather than joined and lost."""
        wanted = {"events": b"stream", "epoch": b"string", "servers": b"set", "muted": b"set"}
        wanted[f"members:{self.sid}"] = b"hash"
        pipe = self._cmd.pipeline()
        for name in wanted:
            pipe.type(self.key(name))
        found = self._call("say what its keys hold", pipe.execute)
        for (name, want), got in zip(wanted.items(), found, strict=True):
            got = got if isinstance(got, bytes) else str(got).encode()
            if got not in (want, b"none"):
                raise BackplaneError(
                    f"the backplane {self.shown} holds a {got.decode(errors='replace')} at "
                    f"{self.key(name)}, where this room keeps a {want.decode()}: delete it to go on"
                )

    def epoch(self, candidate: str, floor: int, marker: bytes) -> tuple[str, bool]:
        """The room's epoch, and whether this call made it (``floor``: where numbering resumes)."""
        keys = [self.key("epoch"), self.key("events")]
        epoch, made = self._call(
            "start the room", self._epoch, keys=keys, args=[candidate, floor, marker, MAXLEN]
        )
        return epoch.decode(), bool(made)  # hex: the script makes a new one of anything else

    def append(self, epoch: str, floor: int, numbered: int, payload: bytes) -> str:
        """Append an entry; its ID ("LAST-N"). Unreachable(reset=True) if the log is not ``epoch``'s."""
        keys = [self.key("events"), self.key("epoch")]
        entry_id = self._call(
            "append to the log", self._publish, keys=keys, args=[epoch, floor, numbered, payload, MAXLEN]
        )
        if entry_id is None:
            raise Unreachable(f"the backplane {self.shown} lost the room's log", reset=True)
        return entry_id.decode()

    def read(self, after: str, *, block: float, count: int = 256) -> list[tuple[str, bytes | None]]:
        """Entries after ID ``after``, waiting up to ``block`` seconds for the first (subscriber only).
        An entry without the field this module writes comes with None."""
        key = self.key("events")
        found = self._call(
            "read the log", self._sub.xread, {key: after}, count=count, block=int(block * 1000)
        )
        if not found:
            return []
        streams = found.items() if isinstance(found, dict) else found
        out = []
        for _, entries in streams:
            for entry_id, fields in entries:
                out.append((entry_id.decode(), fields.get(b"e")))
        return out

    def tail(self, count: int) -> list[tuple[str, bytes | None]]:
        """The last ``count`` entries, oldest first (None for one without the field)."""
        found = self._call("read the log", self._cmd.xrevrange, self.key("events"), "+", "-", count=count)
        return [(entry_id.decode(), fields.get(b"e")) for entry_id, fields in reversed(found)]

    # -- nicks and members -----------------------------------------------------------------------

    def claim(self, skeleton: str, nick: str, ttl: float) -> str | None:
        """None when the nick is now this server's; else the nick of whoever holds its skeleton."""
        keys = [self.key(f"nick:{skeleton}"), self.key(f"members:{self.sid}")]
        held = self._call(
            "take a nick", self._claim, keys=keys, args=[self.sid, nick, int(ttl * 1000), skeleton]
        )
        return None if held is None else held.decode(errors="replace")

    def release(self, skeleton: str) -> None:
        keys = [self.key(f"nick:{skeleton}"), self.key(f"members:{self.sid}")]
        self._call("let a nick go", self._release, keys=keys, args=[self.sid, skeleton])

    def holder(self, skeleton: str) -> str | None:
        """The nick that holds ``skeleton`` on another server, or None."""
        key = self.key(f"nick:{skeleton}")
        try:
            value = self._call("look up a nick", self._cmd.get, key)
        except Unreachable:
            raise
        except BackplaneError:
            value = None  # not a string: nobody's claim
        row = self._row(value, "nick", key)
        if row is None:
            return None
        sid, nick = row
        return None if sid == self.sid else nick

    def roster(self) -> list[str]:
        """Everyone in the room on every live server, in joining order."""
        found = self._call("list the room", self._roster, keys=[self.key("servers")], args=[self.prefix])
        rows = []
        for sid, value in zip(found[::2], found[1::2], strict=True):
            row = self._row(value, "member", self.key(f"members:{sid.decode(errors='replace')}"))
            if row is not None:
                rows.append(row)
        return [nick for _, nick in sorted(rows)]

    def members(self) -> dict[str, str]:
        """This server's members as Redis has them: skeleton -> nick."""
        key = self.key(f"members:{self.sid}")
        found = self._call("list the room", self._cmd.hgetall, key)
        out = {}
        for k, v in found.items():
            row = self._row(v, "member", key)
            skeleton = self._text(k, "member", key)
            if row is not None and skeleton is not None:
                out[skeleton] = row[1]
        return out

    def _text(self, value: bytes, kind: str, where: str) -> str | None:
        """``value`` as text, or None (and said once) if it is not UTF-8."""
        try:
            return value.decode()
        except UnicodeDecodeError:
            self.complain(kind, (where, value), f"{where} holds {value[:40]!r}, which is not UTF-8; ignored")
            return None

    def _row(self, value: bytes | None, kind: str, where: str) -> tuple[str, str] | None:
        """A "FIRST<TAB>NICK" value as (first, nick), or None (and said once) if it is not one."""
        if value is None:
            return None
        text = self._text(value, kind, where)
        if text is None:
            return None
        first, tab, nick = text.partition("\t")
        if not (first and tab and nick):
            self.complain(kind, (where, value), f"{where} holds {text[:40]!r}, not FIRST<TAB>NICK; ignored")
            return None
        return first, nick

    # -- servers ---------------------------------------------------------------------------------

    def register(self, ttl: float) -> None:
        keys = [self.key("servers"), self.key(f"server:{self.sid}")]
        self._call("join the room", self._register, keys=keys, args=[self.sid, int(ttl * 1000)])

    def beat(self, ttl: float, nick_ttl: float, skeletons: list[str]) -> bool:
        """Beat, keep this server's nicks; False when this server was announced dead meanwhile."""
        keys = [self.key("servers"), self.key(f"server:{self.sid}")]
        nick_keys = [self.key(f"nick:{sk}") for sk in skeletons]
        args = [self.sid, int(ttl * 1000), int(nick_ttl * 1000), *nick_keys]
        return bool(self._call("beat", self._beat, keys=keys, args=args))

    def dead(self) -> list[str]:
        found = self._call(
            "look for dead servers", self._dead, keys=[self.key("servers")], args=[self.prefix]
        )
        sids = (self._text(sid, "servers", self.key("servers")) for sid in found)
        return [sid for sid in sids if sid is not None and sid != self.sid]

    def reap_take(self, sid: str, hold: float) -> list[tuple[str, str, str]] | None:
        """(joined, skeleton, nick) of a dead server's members, once this server holds the lock."""
        keys = [self.key(f"cleanup:{sid}"), self.key(f"members:{sid}"), self.key(f"server:{sid}")]
        found = self._call(
            "announce a dead server", self._reap_take, keys=keys, args=[self.sid, int(hold * 1000)]
        )
        if found is None:
            return None
        where = self.key(f"members:{sid}")
        rows = []
        for k, v in zip(found[::2], found[1::2], strict=True):
            row, skeleton = self._row(v, "member", where), self._text(k, "member", where)
            if row is not None and skeleton is not None:
                rows.append((row[0], skeleton, row[1]))
        return sorted(rows)

    def reap_finish(
        self, sid: str, epoch: str, floor: int, numbered: int, payload: bytes, skeletons: list[str]
    ) -> str:
        keys = [
            self.key("events"),
            self.key("epoch"),
            self.key(f"members:{sid}"),
            self.key("servers"),
            self.key(f"cleanup:{sid}"),
        ]
        args = [epoch, floor, numbered, payload, MAXLEN, sid, self.prefix, *skeletons]
        entry_id = self._call("announce a dead server", self._reap_finish, keys=keys, args=args)
        if entry_id is None:
            raise Unreachable(f"the backplane {self.shown} lost the room's log", reset=True)
        return entry_id.decode()

    def leave(self) -> None:
        """This server leaves the room (its members have gone already)."""
        pipe = self._cmd.pipeline()
        pipe.srem(self.key("servers"), self.sid)
        pipe.delete(self.key(f"server:{self.sid}"), self.key(f"members:{self.sid}"))
        self._call("leave the room", pipe.execute)

    # -- mutes -----------------------------------------------------------------------------------

    def muted(self) -> set[str]:
        key = self.key("muted")
        found = self._call("read the mutes", self._cmd.smembers, key)
        return {k for k in (self._text(k, "muted", key) for k in found) if k is not None}

    def set_muted(self, skeletons: set[str], unmuted: set[str]) -> None:
        pipe = self._cmd.pipeline()
        if skeletons:
            pipe.sadd(self.key("muted"), *skeletons)
        if unmuted:
            pipe.srem(self.key("muted"), *unmuted)
        self._call("record a mute", pipe.execute)

    def ping(self) -> None:
        self._call("answer", self._cmd.ping)
        self._call("answer", self._sub.ping)

    def check_version(self) -> None:
        """BackplaneError unless Redis is 7.0 or newer (entry IDs of the form ``LAST-*``)."""
        version = str(self._call("say its version", self._cmd.info, "server").get("redis_version", "0"))
        if int(version.split(".")[0] or 0) < 7:
            raise BackplaneError(
                f"the backplane {self.shown} is Redis {version}; labchat needs Redis 7.0 or newer"
            )

    def close(self) -> None:
        for client in (self._cmd, self._sub):
            try:
                client.close()
            except Exception:  # closing what may already be broken
                pass


def _words(exc: BaseException, url: str) -> str:
    """An exception's words, with the URL's password (if it appears) hidden."""
    text = str(exc) or type(exc).__name__
    return text.replace(url, redact(url)) if url else text
