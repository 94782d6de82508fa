"""Notebook 09's keepalive check, on labchat's answer (it passes) and on typical wrong ones (it says why).

The check reads the options back from a real TCP socket on 127.0.0.1, so these
tests run where the kernel has the options: SO_KEEPALIVE everywhere, the
intervals where ``socket`` knows their names.
"""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import assert_fails_saying, assert_passes

from labchat import exercises
from labchat.exercises.alive import keep_alive

linux_like = pytest.mark.skipif(
    not all(hasattr(socket, name) for name in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT")),
    reason="this platform does not name every keepalive interval",
)


def sets_nothing(sock):
    pass


def switch_only(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


def idle_only(sock):
    """Idle shortened, but the probes left at Linux's 75 s x 9: over eleven minutes in all."""
    switch_only(sock)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 20)


def every_interval_too_long(sock):
    switch_only(sock)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 5)


def hair_trigger(sock):
    switch_only(sock)
    for option in (socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT):
        sock.setsockopt(socket.IPPROTO_TCP, option, 1)


def not_written(sock):
    raise NotImplementedError("write keep_alive")


def zero_idle(sock):
    switch_only(sock)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 0)  # the kernel refuses: EINVAL


def waits_for_the_peer(sock):
    sock.recv(1)


def test_labchats_answer_passes() -> None:
    assert_passes(exercises.check_keep_alive(keep_alive, quiet=True))


def test_the_answer_is_reachable_where_the_notebook_looks() -> None:
    assert exercises.answers.keep_alive is keep_alive


@linux_like
def test_the_answer_gives_up_within_a_minute() -> None:
    result = exercises.check_keep_alive(keep_alive, quiet=True)
    assert "20 s idle + 5 s × 4 probes = 40 s" in str(result)


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="no TCP_USER_TIMEOUT here")
@linux_like
def test_the_servers_user_timeout_is_what_decides_on_linux() -> None:
    from labchat.engine import limits

    result = exercises.check_keep_alive(limits.tune, quiet=True)
    assert_passes(result)
    said = str(result)
    assert "until TCP_USER_TIMEOUT ends it: 45 s" in said
    assert "TCP_KEEPCNT (4) no longer counts" in said
    assert "40 s" in said  # what the probes alone would have given


def test_nothing_set_says_keepalive_is_off() -> None:
    assert_fails_saying(
        exercises.check_keep_alive(sets_nothing, quiet=True), "SO_KEEPALIVE is off", "SOL_SOCKET"
    )


@linux_like
def test_the_switch_alone_leaves_two_hours_of_silence() -> None:
    result = exercises.check_keep_alive(switch_only, quiet=True)
    assert result.lines[0].startswith("ok: SO_KEEPALIVE is on")
    defaults = socket.socket()
    with defaults:
        idle = defaults.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
    if idle < 3600:
        pytest.skip(f"this system's default idle time is {idle} s, not hours")
    assert_fails_saying(result, "default", "hours", "TCP_KEEPIDLE")


@linux_like
def test_the_default_probes_make_it_too_long() -> None:
    defaults = socket.socket()
    with defaults:
        default_probes = defaults.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) * defaults.getsockopt(
            socket.IPPROTO_TCP, socket.TCP_KEEPCNT
        )
    if 20 + default_probes <= 90:
        pytest.skip("this system's default probes are already quick")
    assert_fails_saying(
        exercises.check_keep_alive(idle_only, quiet=True),
        "noticed only after",
        "TCP_KEEPINTVL",
        "about a minute",
    )


@linux_like
def test_intervals_too_long_are_added_up_for_the_learner() -> None:
    assert_fails_saying(
        exercises.check_keep_alive(every_interval_too_long, quiet=True),
        "60 s idle + 30 s × 5 probes = 210 s",
        "at most 90 s",
    )


@linux_like
def test_a_hair_trigger_is_refused_too() -> None:
    assert_fails_saying(exercises.check_keep_alive(hair_trigger, quiet=True), "hiccup", "20 s idle")


def test_a_starter_that_raises_gets_a_first_step() -> None:
    assert_fails_saying(
        exercises.check_keep_alive(not_written, quiet=True), "NotImplementedError", "SO_KEEPALIVE"
    )


@linux_like
def test_a_value_the_kernel_refuses_is_explained() -> None:
    assert_fails_saying(
        exercises.check_keep_alive(zero_idle, quiet=True), "OSError", "IPPROTO_TCP", "seconds"
    )


def test_an_answer_that_waits_does_not_hang_the_check() -> None:
    before = set(threading.enumerate())
    assert_fails_saying(exercises.check_keep_alive(waits_for_the_peer, quiet=True), "still running")
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=5)  # the check closed the socket, so the stuck recv ends
        assert not thread.is_alive()
