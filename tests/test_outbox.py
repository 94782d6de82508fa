"""The outbox alone: whatever is put comes out once, in order, whatever the sends take."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from labchat.engine.outbox import CHUNK, Outbox, State

# A step: put these bytes, or send with a kernel that takes at most this many bytes.
steps = st.lists(
    st.one_of(
        st.binary(min_size=0, max_size=300).map(lambda data: ("put", data)),
        st.integers(min_value=0, max_value=700).map(lambda most: ("send", most)),
    ),
    max_size=60,
)


def send_some(box: Outbox, most: int, now: float, out: bytearray, *, together: bool) -> None:
    """One send through a kernel that takes ``most`` bytes, as the session's write does."""
    data = box.peek()
    count = min(most, len(data))
    out += data[:count]
    if together and count == len(data):
        rest = box.sent_next(count, now)
        assert rest == box.peek()
    else:
        box.sent(count, now)


@given(steps, st.booleans())
def test_every_byte_leaves_once_and_in_order(plan, together):
    box = Outbox(0.0)
    put, out = bytearray(), bytearray()
    for now, (what, arg) in enumerate(plan, start=1):
        if what == "put":
            assert box.put(arg, float(now))
            put += arg
        else:
            send_some(box, arg, float(now), out, together=together)
        assert box.size == len(put) - len(out)
        assert box.sent_total == len(out)
    while box.size:
        send_some(box, 1000, 99.0, out, together=together)
    assert bytes(out) == bytes(put)
    assert box.peek() == b""


def test_small_pieces_go_out_in_one_send_up_to_a_chunk():
    box = Outbox()
    for n in range(3):
        box.put(b"line %d\n" % n, 0.0)
    assert box.peek() == b"line 0\nline 1\nline 2\n"
    big = b"x" * (CHUNK + 10)
    box.put(big, 0.0)
    assert len(box.peek()) == CHUNK  # one send never offers more than CHUNK
    box.sent(CHUNK, 1.0)
    assert box.peek() == big[CHUNK - 21 :]


def test_progress_is_when_bytes_last_moved_and_an_empty_outbox_has_not_stalled():
    box = Outbox(0.0)
    assert box.stalled(50.0) == 0.0
    box.put(b"hello\n", 10.0)  # a wait starts when bytes arrive, not when it was last empty
    assert box.stalled(12.0) == 2.0
    box.sent(2, 15.0)
    assert box.stalled(16.0) == 1.0
    box.sent(4, 17.0)
    assert box.stalled(30.0) == 0.0


def test_an_outbox_closed_while_its_bytes_are_being_sent_takes_the_news_quietly():
    """The threaded engine's writer sends outside the session's lock; a cut may close the outbox
    meanwhile. What the writer then reports sent, or a round's unsent rest, changes nothing."""
    box = Outbox()
    box.put(b"a" * 100, 0.0)
    box.put(b"b" * 100, 0.0)
    data = box.peek()
    box.close()  # cut off, on another thread
    assert box.sent_next(len(data), 1.0) == b""
    box.sent(50, 1.0)
    box.put_front(b"rest of a round\n", 1.0)
    assert (box.state, box.size, box.front, box.peek()) == (State.CLOSED, 0, 0, b"")


def test_a_draining_outbox_sends_what_it_has_and_takes_no_more():
    box = Outbox()
    box.put(b"bye\n", 0.0)
    box.drain()
    assert box.state is State.DRAINING
    assert not box.put(b"more\n", 0.0)
    assert box.peek() == b"bye\n"
    box.close()
    assert (box.state, box.size, box.peek()) == (State.CLOSED, 0, b"")
    assert not box.put(b"after\n", 0.0)
