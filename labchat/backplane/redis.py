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
- ``labchat:{R}:epoch``    a random word; a Redis that lost its data has none, or another
- ``labchat:{R}:nick:SK``  "SERVER<TAB>NICK": who holds the nicks of skeleton SK (expires)
- ``labchat:{R}:members:SERVER``  a hash SK -> "JOINED<TAB>NICK" of that server's members
- ``labchat:{R}:servers``  the servers that have joined the room
- ``labchat:{R}:server:SERVER``   a server's heartbeat (expires when it stops beating)
- ``labchat:{R}:cleanup:SERVER``  a lock, held by the one server announcing a dead one's leaves
- ``labchat:{R}:muted``    skeletons of muted nicks
"""

from __future__ import annotations

from typing import Any

from .address import BackplaneError, redact

__all__ = ["RedisLog", "Unreachable"]

# The log keeps about this many entries (XADD MAXLEN ~): some 2 MB for a busy room. A server
# that falls further behind than this has missed entries; so when Redis comes back without its
# data, numbering resumes this far above the highest seq a server saw, beyond any server's lag.
MAXLEN = 10_000


class Unreachable(BackplaneError):
    """Redis did not answer (refused, reset, timed out), or lost the room's log (``reset``)."""

    def __init__(self, message: str, *, reset: bool = False) -> None:
        super().__init__(message)
        self.reset = reset


# Appends one entry to the log, numbered after the log's last entry and after ``floor``
# (the highest seq the appending server has seen); nil when the log is not the one it knows.
_APPEND = """
local function append(events, epoch_key, epoch, floor, n, payload, maxlen)
  if redis.call('GET', epoch_key) ~= epoch then return false end
  local last = tonumber(floor)
  local top = redis.call('XREVRANGE', events, '+', '-', 'COUNT', 1)[1]
  if top then
    local ms = tonumber(string.match(top[1], '^%d+'))
    if ms > last then last = ms end
  end
  last = last + tonumber(n)
  return redis.call('XADD', events, 'MAXLEN', '~', maxlen, last .. '-*', 'e', payload)
end
"""

PUBLISH = (
    _APPEND
    + """
return append(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
"""
)

# The room's epoch, made if there is none (a new room, or a Redis that lost its data); a new
# epoch after a loss starts the numbering at ``floor`` with an entry that holds no events.
EPOCH = """
local e = redis.call('GET', KEYS[1])
if e then return {e, 0} end
redis.call('SET', KEYS[1], ARGV[1])
local floor = tonumber(ARGV[2])
if floor > 0 then
  local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
  if not top or tonumber(string.match(top[1], '^%d+')) < floor then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], floor .. '-*', 'e', ARGV[3])
  end
end
return {ARGV[1], 1}
"""

# Take a nick's skeleton for this server (or write it anew when it is already this server's);
# nil when taken, else the nick of whoever holds it.
CLAIM = """
local v = redis.call('GET', KEYS[1])
local mine = ARGV[1] .. '\t'
if v and string.sub(v, 1, #mine) ~= mine then
  return string.sub(v, string.find(v, '\t', 1, true) + 1)
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
local v = redis.call('GET', KEYS[1])
local mine = ARGV[1] .. '\t'
if v and string.sub(v, 1, #mine) == mine then redis.call('DEL', KEYS[1]) end
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
"""

# Everyone in the room, on every server whose heartbeat is alive: "JOINED<TAB>NICK" each.
ROSTER = """
local out = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'server:' .. sid) == 1 then
    for _, v in ipairs(redis.call('HVALS', ARGV[1] .. 'members:' .. sid)) do out[#out + 1] = v end
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
  local v = redis.call('GET', ARGV[i])
  if v and string.sub(v, 1, #mine) == mine then redis.call('PEXPIRE', ARGV[i], ARGV[3]) end
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
# or the server beats again.
REAP_TAKE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return false end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('HGETALL', KEYS[2])
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
  local v = redis.call('GET', key)
  if v and string.sub(v, 1, #theirs) == theirs then redis.call('DEL', key) end
end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[4], ARGV[6])
redis.call('DEL', KEYS[5])
return id
"""
)


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

    def epoch(self, candidate: str, floor: int, marker: bytes) -> tuple[str, bool]:
        """The room's epoch, and whether this call made it (``floor``: where numbering resumes)."""
        keys = [self.key("epoch"), self.key("events")]
        epoch, made = self._call(
            "start the room", self._epoch, keys=keys, args=[candidate, floor, marker, MAXLEN]
        )
        return epoch.decode(), bool(made)

    def append(self, epoch: str, floor: int, numbered: int, payload: bytes) -> str:
        """Append an entry; its ID ("LAST-N"). Unreachable(reset=True) if the log is not ``epoch``'s."""
        keys = [self.key("events"), self.key("epoch")]
        entry_id = self._call(
            "append to the log", self._publish, keys=keys, args=[epoch, floor, numbered, payload, MAXLEN]
        )
        if entry_id is None:
            raise Unreachable(f"the backplane {self.shown} lost the room's log", reset=True)
        return entry_id.decode()

    def read(self, after: str, *, block: float, count: int = 256) -> list[tuple[str, bytes]]:
        """Entries after ID ``after``, waiting up to ``block`` seconds for the first (subscriber only)."""
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
                out.append((entry_id.decode(), fields[b"e"]))
        return out

    def tail(self, count: int) -> list[tuple[str, bytes]]:
        """The last ``count`` entries, oldest first."""
        found = self._call("read the log", self._cmd.xrevrange, self.key("events"), "+", "-", count=count)
        return [(entry_id.decode(), fields[b"e"]) for entry_id, fields in reversed(found)]

    # -- nicks and members -----------------------------------------------------------------------

    def claim(self, skeleton: str, nick: str, ttl: float) -> str | None:
        """None when the nick is now this server's; else the nick of whoever holds its skeleton."""
        keys = [self.key(f"nick:{skeleton}"), self.key(f"members:{self.sid}")]
        held = self._call(
            "take a nick", self._claim, keys=keys, args=[self.sid, nick, int(ttl * 1000), skeleton]
        )
        return None if held is None else held.decode()

    def release(self, skeleton: str) -> None:
        keys = [self.key(f"nick:{skeleton}"), self.key(f"members:{self.sid}")]
        self._call("let a nick go", self._release, keys=keys, args=[self.sid, skeleton])

    def holder(self, skeleton: str) -> str | None:
        """The nick that holds ``skeleton`` on another server, or None."""
        value = self._call("look up a nick", self._cmd.get, self.key(f"nick:{skeleton}"))
        if value is None:
            return None
        sid, _, nick = value.decode().partition("\t")
        return None if sid == self.sid else nick

    def roster(self) -> list[str]:
        """Everyone in the room on every live server, in joining order."""
        found = self._call("list the room", self._roster, keys=[self.key("servers")], args=[self.prefix])
        rows = sorted(value.decode().split("\t", 1) for value in found)
        return [nick for _, nick in rows]

    def members(self) -> dict[str, str]:
        """This server's members as Redis has them: skeleton -> nick."""
        found = self._call("list the room", self._cmd.hgetall, self.key(f"members:{self.sid}"))
        return {k.decode(): v.decode().split("\t", 1)[1] for k, v in found.items()}

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
        return [sid.decode() for sid in found if sid.decode() != self.sid]

    def reap_take(self, sid: str, hold: float) -> list[tuple[str, str, str]] | None:
        """(joined, skeleton, nick) of a dead server's members, once this server holds the lock."""
        keys = [self.key(f"cleanup:{sid}"), self.key(f"members:{sid}"), self.key(f"server:{sid}")]
        found = self._call(
            "announce a dead server", self._reap_take, keys=keys, args=[self.sid, int(hold * 1000)]
        )
        if found is None:
            return None
        pairs = zip(found[::2], found[1::2], strict=True)
        rows = [(v.decode().split("\t", 1), k.decode()) for k, v in pairs]
        return sorted((joined, skeleton, nick) for (joined, nick), skeleton in rows)

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
        return {k.decode() for k in self._call("read the mutes", self._cmd.smembers, self.key("muted"))}

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
