"""The check for notebook 09's exercise: noticing a peer that vanished, with TCP keepalive.

The rule it keeps: as every check, it never raises and never hangs. It makes a
real TCP connection on 127.0.0.1 (port 0), lets the learner's ``keep_alive`` set
its options, then reads them back with ``getsockopt``: the options the kernel
holds are the answer, whatever the code looked like. Names a platform lacks are
skipped, as the exercise asks: macOS calls the idle time ``TCP_KEEPALIVE``, and
a system with neither name has only the switch, ``SO_KEEPALIVE``.
"""

from __future__ import annotations

import socket

from . import wire
from .feedback import Feedback, attempt, guarded

# A vanished peer should be noticed within about a minute: at most this many seconds of
# silence before TCP gives up (idle time, then every probe unanswered).
LONGEST = 90

# And not by a hair trigger: a Wi-Fi hiccup of a few seconds must not end a healthy chat.
SHORTEST = 10

# The name of the option for the idle time, on Linux and Windows, then on macOS.
IDLE_NAMES = ("TCP_KEEPIDLE", "TCP_KEEPALIVE")


def _idle_option() -> int | None:
    for name in IDLE_NAMES:
        option = getattr(socket, name, None)
        if option is not None:
            return option
    return None


def _tcp(sock: socket.socket, name: str) -> int | None:
    """The value of a TCP-level option, or None where this platform has no such option."""
    option = _idle_option() if name == "idle" else getattr(socket, name, None)
    if option is None:
        return None
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, option)
    except OSError:
        return None


def _settings(sock: socket.socket) -> dict[str, int | None]:
    return {
        "on": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "idle": _tcp(sock, "idle"),
        "intvl": _tcp(sock, "TCP_KEEPINTVL"),
        "cnt": _tcp(sock, "TCP_KEEPCNT"),
        "user": _tcp(sock, "TCP_USER_TIMEOUT"),  # Linux only, in milliseconds; 0 when unset
    }


def _given_up_after(idle: int, intvl: int | None, cnt: int | None, user_ms: int | None) -> tuple[int, str]:
    """Seconds from a peer's last word until keepalive gives up on it, and how that adds up.

    Without TCP_USER_TIMEOUT, it is the idle time plus every probe. On Linux, with
    keepalive on, a TCP_USER_TIMEOUT decides instead (tcp(7)): the probes go on
    every ``intvl`` seconds until that much time has passed since the peer last
    spoke, so TCP_KEEPCNT no longer counts.
    """
    if user_ms:
        step = intvl or 1
        probes = -(-(user_ms / 1000 - idle) // step)  # probes until the timeout has run out, rounded up
        after = int(idle + step * max(1, probes))
        return (
            after,
            f"{idle} s idle, then a probe every {step} s until TCP_USER_TIMEOUT ends it: {after} s",
        )
    if intvl and cnt:
        total = idle + intvl * cnt
        return total, f"{idle} s idle + {intvl} s × {cnt} probe{'s' if cnt > 1 else ''} = {total} s"
    return idle, f"{idle} s"


def _raised_hint(error: BaseException) -> str:
    if isinstance(error, NotImplementedError):
        return "write keep_alive: sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) first"
    if isinstance(error, AttributeError):
        return (
            "a constant this platform does not have: look it up with getattr(socket, 'TCP_KEEPIDLE', None) "
            "and skip it when that gives None"
        )
    if isinstance(error, OSError):
        return (
            "setsockopt(level, option, value): SO_KEEPALIVE is at level socket.SOL_SOCKET, the TCP_* "
            "options at socket.IPPROTO_TCP, and each value is a whole number of seconds (or probes)"
        )
    return "keep_alive only sets options: a few setsockopt calls, and nothing else"


@guarded("keep_alive")
def check_keep_alive(feedback: Feedback, keep_alive) -> None:
    """``keep_alive(sock)`` turns TCP keepalive on, with intervals short enough to notice a dead peer soon."""
    mine, theirs = wire.pair()
    fresh = socket.socket()  # one nobody touched: the system's defaults, to compare with
    try:
        defaults = _settings(fresh)
        done = attempt(keep_alive, mine)
        if not done.fine:
            hint = (
                "setsockopt returns at once: keep_alive has no reason to recv or wait"
                if done.stuck
                else _raised_hint(done.error)
            )
            feedback.not_yet(f"keep_alive(sock) on a connected socket: {done.problem()}", hint)
            return
        got = _settings(mine)
        if not got["on"]:
            feedback.not_yet(
                "SO_KEEPALIVE is off: TCP never probes a silent peer, so a laptop that vanished looks "
                "like one that is just quiet, for ever",
                "sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)",
            )
            return
        feedback.ok("SO_KEEPALIVE is on: TCP will probe a peer that has been silent")
        idle, intvl, cnt = got["idle"], got["intvl"], got["cnt"]
        if idle is None:
            feedback.ok("this platform has no option for the idle time: SO_KEEPALIVE is all it offers")
            return
        if idle == defaults["idle"] and idle >= 3600:
            feedback.not_yet(
                f"the idle time is still the system's default, {idle} s ({idle / 3600:g} hours) of silence "
                "before the first probe",
                "set TCP_KEEPIDLE (level socket.IPPROTO_TCP; on macOS it is called TCP_KEEPALIVE) "
                "to about 20 seconds, and shorten TCP_KEEPINTVL and TCP_KEEPCNT too",
            )
            return
        total, spelled = _given_up_after(idle, intvl, cnt, got["user"])
        if total > LONGEST:
            left = [
                f"{name} ({got[key]}{unit})"
                for key, name, unit in (("intvl", "TCP_KEEPINTVL", " s"), ("cnt", "TCP_KEEPCNT", " probes"))
                if got[key] is not None and got[key] == defaults[key]
            ]
            feedback.not_yet(
                f"a vanished peer is noticed only after {spelled} of silence",
                (f"still the system's defaults: {', '.join(left)}; " if left else "")
                + f"aim for about a minute, at most {LONGEST} s: for instance 20 s idle, "
                "then a probe every 5 s, 4 probes (40 s)",
            )
            return
        if total < SHORTEST:
            feedback.not_yet(
                f"a peer is given up after {spelled}: a Wi-Fi hiccup that short would end a healthy chat",
                "give it a little longer: for instance 20 s idle, then a probe every 5 s, 4 probes (40 s)",
            )
            return
        feedback.ok(f"a vanished peer is noticed after {spelled} of silence, within about a minute")
        if got["user"] and cnt:
            feedback.ok(
                f"TCP_USER_TIMEOUT is {got['user']} ms: with keepalive on, Linux gives up on a silent "
                f"peer once that long has passed since its last word, and TCP_KEEPCNT ({cnt}) no longer "
                f"counts (tcp(7)); without it, {idle} s + {intvl} s × {cnt} = {idle + (intvl or 0) * cnt} s"
            )
    finally:
        wire.close(mine, theirs)
        fresh.close()


def keep_alive(sock: socket.socket) -> None:
    """TCP keepalive on ``sock``: after 20 idle seconds, a probe every 5 s, given up after 4 unanswered.

    A peer that vanished without a word (a laptop lid closed, a cable pulled) is
    then noticed within 40 s. Each option is set only where the platform has it.
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    idle = getattr(socket, "TCP_KEEPIDLE", getattr(socket, "TCP_KEEPALIVE", None))  # macOS's name
    interval = getattr(socket, "TCP_KEEPINTVL", None)
    probes = getattr(socket, "TCP_KEEPCNT", None)
    for option, value in ((idle, 20), (interval, 5), (probes, 4)):
        if option is not None:  # None: this platform has no such option
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
