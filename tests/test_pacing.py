"""TokenBucket and the terminal's Pace, on a fake clock: every level and delay is exact.

No test here reads the real clock or sleeps: time moves only when a test (or
Pace, through the injected ``sleep``) moves the fake clock.
"""

from __future__ import annotations

import threading

import pytest

from labchat.console import Pace
from labchat.pacing import TokenBucket
from labchat.server import ChatServer


class FakeClock:
    """A clock that stands still until told to move; ``sleep`` moves it and records how long."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, f"asked to sleep {seconds!r} s"
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# -- TokenBucket ---------------------------------------------------------------------------------


def test_a_new_bucket_is_full_and_gives_its_burst_at_once(clock) -> None:
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert bucket.tokens == 3.0 and bucket.full
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert bucket.tokens == 0.0 and not bucket.full


def test_an_empty_bucket_refuses_without_spending_and_refills_at_the_rate(clock) -> None:
    bucket = TokenBucket(rate=4.0, burst=2, clock=clock)
    assert bucket.take() and bucket.take()
    assert not bucket.take()
    assert not bucket.take()  # refusing spends nothing: the level does not go below 0
    assert bucket.tokens == 0.0
    clock.advance(0.125)
    assert bucket.tokens == 0.5
    assert not bucket.take()
    clock.advance(0.125)
    assert bucket.tokens == 1.0
    assert bucket.take()
    assert not bucket.take()


def test_delay_is_the_exact_time_until_the_next_token(clock) -> None:
    bucket = TokenBucket(rate=4.0, burst=1, clock=clock)
    assert bucket.delay() == 0.0  # a token is there now
    assert bucket.take()
    assert bucket.delay() == 0.25
    clock.advance(0.0625)
    assert bucket.delay() == 0.1875
    clock.advance(0.1875)
    assert bucket.delay() == 0.0
    assert bucket.take()


@pytest.mark.parametrize(("start", "rate"), [(12345.678, 3.0), (987654.321, 13.0), (3.1e7, 1000.0)])
def test_delay_does_not_spend_and_waiting_it_out_is_always_enough(start, rate) -> None:
    clock = FakeClock(start)  # a clock far from zero, where float rounding shows
    bucket = TokenBucket(rate=rate, burst=1, clock=clock)
    assert bucket.take()
    for _ in range(1000):
        wait = bucket.delay()
        assert wait == pytest.approx(1 / rate)
        assert bucket.delay() == wait  # asking twice changes nothing
        clock.advance(wait)
        assert bucket.take(), f"no token after waiting the {wait!r} s the bucket asked for"


def test_the_level_is_capped_at_the_burst_however_long_the_quiet(clock) -> None:
    bucket = TokenBucket(rate=10.0, burst=5, clock=clock)
    for _ in range(5):
        assert bucket.take()
    clock.advance(3600.0)
    assert bucket.tokens == 5.0 and bucket.full
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]


def test_full_says_when_the_sender_has_been_quiet_long_enough(clock) -> None:
    bucket = TokenBucket(rate=2.0, burst=2, clock=clock)
    assert bucket.take() and bucket.take()
    clock.advance(0.5)
    assert bucket.tokens == 1.0 and not bucket.full
    clock.advance(0.25)
    assert not bucket.full
    clock.advance(0.25)
    assert bucket.full
    assert bucket.take()
    assert not bucket.full


def test_the_level_is_refilled_lazily_from_the_clock_not_by_calls(clock) -> None:
    bucket = TokenBucket(rate=1.0, burst=4, clock=clock)
    for _ in range(4):
        assert bucket.take()
    for _ in range(100):  # asking often does not make tokens
        assert bucket.tokens == 0.0
    clock.advance(2.0)
    assert bucket.tokens == 2.0


def test_a_clock_that_steps_back_adds_nothing(clock) -> None:
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock)
    assert bucket.take() and bucket.take()
    clock.advance(-10.0)
    assert bucket.tokens == 0.0
    clock.advance(10.5)  # back where it was, and half a second on
    assert bucket.tokens == 0.5


def test_a_fractional_rate_and_a_burst_of_one(clock) -> None:
    bucket = TokenBucket(rate=0.5, burst=1, clock=clock)
    assert bucket.take()
    assert bucket.delay() == 2.0
    clock.advance(1.0)
    assert bucket.tokens == 0.5 and bucket.delay() == 1.0


@pytest.mark.parametrize("rate", [0, 0.0, -1.0, float("nan"), float("inf"), "5", None])
def test_a_rate_that_is_not_a_positive_number_is_refused(rate, clock) -> None:
    with pytest.raises(ValueError, match="rate must be"):
        TokenBucket(rate, 5, clock=clock)


@pytest.mark.parametrize("burst", [0, -3, 2.5, 1.0, True, "20", None])
def test_a_burst_that_is_not_a_whole_number_of_at_least_one_is_refused(burst, clock) -> None:
    with pytest.raises(ValueError, match="burst must be"):
        TokenBucket(5.0, burst, clock=clock)


def test_an_integer_rate_is_accepted(clock) -> None:
    bucket = TokenBucket(2, 1, clock=clock)
    assert bucket.rate == 2.0 and bucket.burst == 1


# -- Pace: the terminal's wait ---------------------------------------------------------------------


def test_pace_lets_a_burst_through_without_sleeping(clock) -> None:
    pace = Pace(rate=4.0, burst=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        pace.wait()
    assert clock.slept == []
    assert (pace.rate, pace.burst) == (4.0, 3)


def test_pace_sleeps_exactly_as_long_as_the_next_line_needs(clock) -> None:
    pace = Pace(rate=4.0, burst=2, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(6):
        pace.wait()
    assert clock.slept == [0.25, 0.25, 0.25, 0.25]  # two at once, then one every quarter second
    assert clock.now - start == 1.0


def test_pace_sleeps_only_for_what_is_left_after_a_pause(clock) -> None:
    pace = Pace(rate=2.0, burst=1, clock=clock, sleep=clock.sleep)
    pace.wait()
    clock.advance(0.375)  # the person paused before the next line
    pace.wait()
    assert clock.slept == [0.125]
    clock.advance(5.0)  # a long quiet: the next line goes at once
    pace.wait()
    assert clock.slept == [0.125]


def test_pace_with_a_clock_far_from_zero_never_sleeps_twice_for_one_line() -> None:
    clock = FakeClock(start=987654.321)
    pace = Pace(rate=13.0, burst=1, clock=clock, sleep=clock.sleep)
    for _ in range(301):
        pace.wait()
    assert len(clock.slept) == 300
    assert all(s == pytest.approx(1 / 13) for s in clock.slept)


def test_pace_shared_between_threads_spends_each_token_once(clock) -> None:
    pace = Pace(rate=8.0, burst=2, clock=clock, sleep=clock.sleep)
    start = clock.now
    threads = [threading.Thread(target=pace.wait) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5.0)
    assert not any(thread.is_alive() for thread in threads)
    assert clock.slept == [0.125] * 8  # two from the burst, then eight turns of an eighth of a second
    assert clock.now - start == 1.0


def test_pace_refuses_a_bad_rate_like_the_bucket() -> None:
    with pytest.raises(ValueError, match="rate must be"):
        Pace(rate=0.0)


def test_pace_defaults_are_under_the_servers_defaults() -> None:
    server = ChatServer()  # not started: only its limits are read
    pace = Pace()
    assert pace.burst <= server.burst and pace.rate <= server.rate
