"""The wire format without a socket: frames to bytes and back, and the line decoder.

Every sample session is fed to the decoder split at every byte offset; hypothesis
checks the round trip, that arbitrary bytes only ever raise ProtocolError, and
that the decoder never holds more than its limit.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labchat.protocol import (
    KINDS,
    MAX_LINE,
    MAX_LINES,
    MAX_TEXT,
    Decoder,
    Event,
    Hello,
    ProtocolError,
    Say,
    banner,
    decode_event,
    decode_frame,
    encode,
    encode_all,
    say_text,
    say_texts,
)

SESSION = (
    encode(Hello(nick="ada", token="s3cret"))
    + encode(Say(text="héllo wörld 👋"))
    + b"bob\r\n"
    + encode(Say(text="/msg bob psst"))
    + b"\n"
    + encode(Event(kind="message", sender="ada", text="hi", seq=3, time=1.5))
    + b"last line without newline"
)
SESSION_LINES = [
    b'{"type":"hello","nick":"ada","version":1,"token":"s3cret"}',
    '{"type":"say","text":"héllo wörld 👋"}'.encode(),
    b"bob",
    b'{"type":"say","text":"/msg bob psst"}',
    b"",
    b'{"type":"message","sender":"ada","text":"hi","seq":3,"time":1.5}',
    b"last line without newline",
]


def drain(decoder: Decoder) -> list[bytes]:
    return list(decoder)


# -- encoding -----------------------------------------------------------------------------


def test_frames_are_one_compact_json_line_each() -> None:
    assert encode(Hello(nick="ada")) == b'{"type":"hello","nick":"ada","version":1}\n'
    assert encode(Say(text="hi")) == b'{"type":"say","text":"hi"}\n'
    event = Event(kind="join", sender="bob", seq=7, time=12.25)
    assert encode(event) == b'{"type":"join","sender":"bob","seq":7,"time":12.25}\n'


def test_text_is_sent_as_utf8_not_escaped_and_newlines_stay_inside_the_frame() -> None:
    data = encode(Say(text="zwei\nZeilen ü"))
    assert data.count(b"\n") == 1 and data.endswith(b"\n")
    assert "ü".encode() in data
    assert decode_frame(data[:-1]) == Say(text="zwei\nZeilen ü")


def test_an_event_without_a_sequence_number_still_carries_seq() -> None:
    assert json.loads(encode(Event(kind="error", code="bad-json", text="x")))["seq"] == 0


def test_banner_names_the_protocol_first() -> None:
    assert banner("Welcome!") == b"labchat/1 Welcome!\n"


def test_unknown_event_kinds_are_refused_when_built() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        Event(kind="shout")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_survives_the_wire(kind: str) -> None:
    event = Event(
        kind=kind,
        sender="ada",
        text="t",
        seq=9,
        time=1.0,
        target="bob",
        code="c",
        users=("ada", "bob"),
        history=True,
    )
    assert decode_event(encode(event)[:-1]) == event


# -- decoding frames ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code", "words"),
    [
        (b"not json", "bad-json", "not valid JSON"),
        (b"\xff\xfe", "bad-utf8", "invalid UTF-8 at byte 0"),
        (b'{"type":"say","text":"\\ud800"}', "bad-utf8", "not valid Unicode"),
        (b"[1, 2]", "bad-frame", "JSON object with a 'type'"),
        (b'{"text":"no type"}', "bad-frame", "JSON object with a 'type'"),
        (b'{"type":"shout"}', "bad-frame", "unknown frame type 'shout'"),
        (b'{"type":"hello"}', "bad-frame", "hello needs a 'nick'"),
        (b'{"type":"hello","nick":7}', "bad-frame", "'nick' must be str"),
        (b'{"type":"hello","nick":"a","version":true}', "bad-frame", "'version' must be int"),
        (b'{"type":"say","text":["x"]}', "bad-frame", "'text' must be str"),
        (b"[" * 100_000, "bad-json", "too deeply nested"),
        (b'{"type":"say","text":"x","n":' + b"9" * 5000 + b"}", "bad-json", "too large a number"),
    ],
)
def test_bad_frames_raise_protocol_error_with_a_code_and_a_reason(line: bytes, code: str, words: str) -> None:
    with pytest.raises(ProtocolError, match=words) as caught:
        decode_frame(line)
    assert caught.value.code == code


def test_a_say_without_text_is_empty_and_a_hello_may_carry_a_token() -> None:
    assert decode_frame(b'{"type":"say"}') == Say(text="")
    assert decode_frame(b'{"type":"hello","nick":"ada","token":"t"}') == Hello(nick="ada", token="t")


def test_events_from_a_newer_server_fail_cleanly() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_event(b'{"type":"hologram","seq":1}')
    assert caught.value.code == "bad-frame"
    with pytest.raises(ProtocolError, match="malformed message event"):
        decode_event(b'{"type":"message","seq":"first"}')


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"type":"message","sender":{"a":1},"text":"hi"}', "its sender is not a string"),
        (b'{"type":"message","sender":"ada","text":["x"]}', "its text is not a string"),
        (b'{"type":"message","seq":true}', "its seq is not a whole number"),
        (b'{"type":"message","seq":1.5}', "its seq is not a whole number"),
        (b'{"type":"system","users":["ada",1]}', "its users are not all strings"),
        (b'{"type":"system","history":"no"}', "its history is not true or false"),
        (b'{"type":"message","time":1e300}', "its time 1e+300 is no date"),
        (b'{"type":"message","time":-1e20}', "its time -1e+20 is no date"),
        (b'{"type":"message","time":NaN}', "its time nan is no date"),
        (b'{"type":"message","time":"noon"}', "its time is not a number"),
    ],
)
def test_an_event_whose_fields_are_not_what_they_say_is_refused_naming_the_field(line, why) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_event(line)
    assert caught.value.code == "bad-frame" and str(caught.value).endswith(why)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"type":"message","sender":"ada","text":"x\\ud800"}', "its text is not valid Unicode"),
        (b'{"type":"message","sender":"\\uDC00","text":"hi"}', "its sender is not valid Unicode"),
        (b'{"type":"welcome","users":["ada","\\udfff"]}', "its users are not valid Unicode"),
    ],
)
def test_an_event_with_a_lone_surrogate_is_refused_and_an_escaped_emoji_is_not(line, why) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_event(line)
    assert caught.value.code == "bad-utf8" and str(caught.value).endswith(why)
    assert (
        decode_event(b'{"type":"message","text":"hi \\ud83d\\udc4b \\\\ud800"}').text
        == "hi \U0001f44b \\ud800"
    )


def test_an_event_takes_whole_seconds_and_lets_a_later_version_s_fields_through() -> None:
    event = decode_event(b'{"type":"message","sender":"ada","text":"hi","seq":3,"time":5,"mood":"ok"}')
    assert (event.seq, event.time, event.text) == (3, 5.0, "hi")


# -- the line decoder ---------------------------------------------------------------------


def test_a_whole_session_in_one_piece() -> None:
    decoder = Decoder()
    decoder.feed(SESSION)
    assert drain(decoder) == SESSION_LINES[:-1]
    decoder.feed(b"")
    assert drain(decoder) == SESSION_LINES[-1:]
    assert decoder.closed and decoder.buffered == 0


def test_a_session_split_at_every_byte_offset() -> None:
    for cut in range(1, len(SESSION)):  # (b"" would mean the end of the stream)
        decoder = Decoder()
        lines: list[bytes] = []
        for piece in (SESSION[:cut], SESSION[cut:], b""):
            decoder.feed(piece)
            lines += drain(decoder)
        assert lines == SESSION_LINES, f"split at byte {cut}"


def test_one_event_of_every_kind_split_at_every_byte_offset() -> None:
    events = [
        Event(kind=kind, sender="zoë", text="¿qué? 👋", seq=n, time=n + 0.5, users=("a", "zoë"), code=kind)
        for n, kind in enumerate(sorted(KINDS), 1)
    ]
    stream = b"".join(encode(e) for e in events)
    for cut in range(1, len(stream)):
        decoder = Decoder()
        decoder.feed(stream[:cut])
        lines = drain(decoder)
        decoder.feed(stream[cut:])
        lines += drain(decoder)
        assert [decode_event(line) for line in lines] == events, f"split at byte {cut}"


def test_every_pair_of_cuts_in_a_short_exchange() -> None:
    data = b'{"type":"say","text":"a"}\r\n\xc3\xa9\n\n'
    for i in range(1, len(data)):
        for j in range(i, len(data)):
            decoder = Decoder()
            lines: list[bytes] = []
            for piece in (data[:i], data[i:j], data[j:]):
                if piece:
                    decoder.feed(piece)
                    lines += drain(decoder)
            assert lines == [b'{"type":"say","text":"a"}', "é".encode(), b""], (i, j)


def test_end_of_stream_ends_the_decoder() -> None:
    decoder = Decoder()
    decoder.feed(b"")
    assert decoder.closed and drain(decoder) == []
    decoder.feed(b"late\n")
    assert drain(decoder) == []


def test_a_session_fed_one_byte_at_a_time() -> None:
    decoder = Decoder()
    lines: list[bytes] = []
    for i in range(len(SESSION)):
        decoder.feed(SESSION[i : i + 1])
        lines += drain(decoder)
        assert decoder.buffered <= MAX_LINE
    decoder.feed(b"")
    assert lines + drain(decoder) == SESSION_LINES


def test_a_line_of_exactly_the_limit_passes_and_one_more_byte_does_not() -> None:
    decoder = Decoder(max_line=10)
    decoder.feed(b"x" * 10 + b"\n")
    assert drain(decoder) == [b"x" * 10]
    decoder.feed(b"y" * 11 + b"\n")
    with pytest.raises(ProtocolError, match="line too long: 11 bytes, limit 10") as caught:
        drain(decoder)
    assert caught.value.code == "line-too-long"


def test_an_endless_line_is_refused_before_it_is_buffered() -> None:
    decoder = Decoder(max_line=100)
    decoder.feed(b"ok\n" + b"z" * 60)
    decoder.feed(b"z" * 60)  # 120 bytes without a newline
    assert decoder.buffered == 0 and decoder.closed
    assert next(iter(decoder)) == b"ok"  # lines before the fault are kept, in order
    with pytest.raises(ProtocolError, match="over 100 bytes with no newline"):
        drain(decoder)
    decoder.feed(b"more\n")  # after the fault, nothing is taken
    assert drain(decoder) == []


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Decoder(max_line=0)


# -- the limits fit together -----------------------------------------------------------------------


def test_the_limits_are_a_long_snippet_and_a_line_that_holds_it() -> None:
    assert (MAX_TEXT, MAX_LINES, MAX_LINE) == (4000, 200, 48 * 1024)


def test_the_largest_message_fits_one_line_however_a_program_writes_its_json() -> None:
    text = "👋" * MAX_TEXT  # 4 bytes each in UTF-8
    escaped = (json.dumps({"type": "say", "text": text}) + "\n").encode()  # json.dumps' default: \ud83d\udc4b
    assert len(escaped) == 12 * MAX_TEXT + len('{"type": "say", "text": ""}\n')
    as_labchat_writes_it = encode(Say(text=text))
    nicks = "é" * 20  # the longest nicks, 2 bytes a letter
    event = Event(kind="private", sender=nicks, target=nicks, text=text, seq=2**40, time=1.8e9, history=True)
    for line in (escaped, as_labchat_writes_it, encode(event)):
        decoder = Decoder()
        decoder.feed(line)
        (whole,) = drain(decoder)
        assert len(whole) < MAX_LINE
    assert decode_frame(escaped.rstrip(b"\n")) == Say(text=text)


def test_a_newline_in_a_message_travels_as_two_bytes_inside_the_json_string() -> None:
    line = encode(Say(text="def f():\n    return 1"))
    assert line == b'{"type":"say","text":"def f():\\n    return 1"}\n'
    assert line.count(b"\n") == 1  # still one frame, one line
    assert decode_frame(line[:-1]) == Say(text="def f():\n    return 1")


# -- properties ---------------------------------------------------------------------------

texts = st.text(max_size=60)


@settings(max_examples=150, deadline=None)
@given(
    st.builds(
        Event,
        kind=st.sampled_from(sorted(KINDS)),
        sender=texts,
        text=texts,
        seq=st.integers(0, 2**53),
        time=st.floats(0, 4e9, allow_nan=False),
        target=texts,
        code=texts,
        users=st.lists(st.text(min_size=1, max_size=10), max_size=5).map(tuple),
        history=st.booleans(),
    )
)
def test_round_trip_of_any_event(event: Event) -> None:
    data = encode(event)
    assert data.count(b"\n") == 1
    assert decode_event(data[:-1]) == event


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.builds(Say, text=texts), st.builds(Hello, nick=texts, token=st.none() | texts)))
def test_round_trip_of_any_frame(frame: Hello | Say) -> None:
    assert decode_frame(encode(frame)[:-1]) == frame


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_protocol_error(line: bytes) -> None:
    for parse in (decode_frame, decode_event):
        try:
            parse(line)
        except ProtocolError as exc:
            assert exc.code in {"bad-json", "bad-utf8", "bad-frame"} and str(exc)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=20), st.integers(1, 40))
def test_the_decoder_never_buffers_past_its_limit(chunks: list[bytes], limit: int) -> None:
    decoder = Decoder(max_line=limit)
    for chunk in chunks:
        decoder.feed(chunk)
        assert decoder.buffered <= limit
        try:
            for line in decoder:
                assert len(line) <= limit and b"\n" not in line
        except ProtocolError as exc:
            assert exc.code == "line-too-long"


# -- the quick paths agree with the full ones ----------------------------------------------

_texts = st.text(
    st.sampled_from(["a", '"', "\\", "\n", "\t", "\x00", "\x1f", "é", "😀", "\u2028", "\x7f", " "])
)


def _dumped(event: Event) -> bytes:
    """What encode() wrote before it built lines itself: json.dumps of the non-default fields."""
    data = {"type": event.kind}
    for key, value in vars(event).items():
        if key != "kind" and value not in ("", 0, 0.0, (), False):
            data[key] = list(value) if key == "users" else value
    data.setdefault("seq", 0)
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    sender=_texts,
    text=_texts,
    seq=st.sampled_from([0, 1, 12345, 2**70]),
    time=st.sampled_from([0.0, 1.5, 1764650000.123, 1e-7, 1e22, 0.1 + 0.2]),
    target=_texts,
    code=_texts,
    users=st.lists(_texts, max_size=3).map(tuple),
    history=st.booleans(),
    count=st.sampled_from([0, 3]),
)
def test_encode_writes_what_json_dumps_writes(
    kind, sender, text, seq, time, target, code, users, history, count
):
    event = Event(
        kind=kind,
        sender=sender,
        text=text,
        seq=seq,
        time=time,
        target=target,
        code=code,
        users=users,
        history=history,
        count=count,
    )
    assert encode(event) == _dumped(event)
    quick = Event.checked(kind, seq, time, sender, text, target, code, users, history, count)
    assert quick == event and repr(quick) == repr(event) and list(vars(quick)) == list(vars(event))
    assert encode_all([event, quick]) == encode(event) * 2


def test_encode_of_unusual_values_is_json_dumps_own() -> None:
    for event in (Event(kind="message", time=5), Event(kind="message", seq=True)):
        assert encode(event) == _dumped(event)


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"say","text":"hi"}',
        b'{"type":"say","text":"hi"}  ',
        b'{"type":"say","text":"hi"}\x0b',
        b'{"type":"say"}',
        b'{"type":"say","text":7}',
        b'{"type":"say","text":"\\ud800"}',
        b'{"type":"say","text":"\xc3\xa9"}',
        b'{"type":"say","text":"a","extra":1}',
        b'{"type":"hello","nick":"ada"}',
        b'{"type":1}',
        b"{" * 5000,
        b'{"type":"say","text":' + b"1" * 5000 + b"}",
        b" {}",
    ],
)
def test_say_text_agrees_with_decode_frame(line: bytes) -> None:
    try:
        frame = decode_frame(line)
    except ProtocolError:
        frame = None
    text = say_text(line)
    if text is not None:  # the quick path answers only when the full one says the same
        assert frame == Say(text=text)


def _one_by_one(lines: list[bytes]) -> list[str | None]:
    """What each line is read as alone: its say text, or None for anything else."""
    out: list[str | None] = []
    for line in lines:
        try:
            frame = decode_frame(line)
        except ProtocolError:
            frame = None
        out.append(frame.text if isinstance(frame, Say) else None)
    return out


def test_say_texts_reads_a_run_of_chat_at_once() -> None:
    lines = [
        b'{"type":"say","text":"hi"}',
        b' { "text" : "a ] , [ b" , "type" : "say" } ',
        b'{"type":"say","text":"quote \\" and \\u0041"}',
        b'{"type":"say","text":""}',
        b'{"type":"say","text":"/nick ada"}',
    ]
    assert say_texts(lines) == _one_by_one(lines) == ["hi", "a ] , [ b", 'quote " and A', "", "/nick ada"]


@pytest.mark.parametrize(
    "lines",
    [
        # a line that is two frames, beside two lines that make one between them
        [b'{"type":"say","text":"a"}],[{"type":"say","text":"b"}', b'{"type":"say","x":[[1', b"2]]}"],
        [b'{"type":"say","text":"a"', b'"x":1}', b'{"type":"say","text":"c"},{"type":"say","text":"d"}'],
        [b'{"type":"say","text":"a"}', b'{"type":"say","text":"b","extra":1}'],
        [b'{"type":"say","text":"a"}', b'{"type":"hello","nick":"ada"}'],
        [b'{"type":"say","text":"a"}', b'{"type":"say","text":7}'],
        [b'{"type":"say","text":"a"}', b'{"type":"say","text":"\xc3\xa9"}'],
        [b'{"type":"say","text":"a"}', b'"just a string"'],
        [b'{"type":"say","text":"a"}', b"[1]"],
        [b'{"type":"say","text":"a"}', b""],
        [b'{"type":"say","text":"a"}', b"[" * 5000],
        [b'{"type":"say","text":"a"}', ProtocolError("line-too-long", "line too long")],
    ],
)
def test_say_texts_leaves_anything_else_to_be_read_line_by_line(lines: list) -> None:
    assert say_texts(lines) is None


_PIECES = st.sampled_from(
    [b"{", b"}", b"[", b"]", b",", b":", b" ", b'"type"', b'"text"', b'"say"', b'"a"', b"1", b'"]\\n,["']
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(st.lists(_PIECES, max_size=12).map(b"".join), st.just(b'{"type":"say","text":"a"}')),
        min_size=1,
        max_size=5,
    )
)
def test_say_texts_agrees_with_reading_each_line(lines: list[bytes]) -> None:
    texts = say_texts(lines)
    if texts is not None:  # the quick path answers only when each line alone says the same
        assert texts == _one_by_one(lines)
