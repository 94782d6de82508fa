"""Nick rules on their own: strings in, a verdict or a skeleton out, no room and no socket."""

from __future__ import annotations

import pytest

from labchat.nicks import MAX_NICK, RoomError, check_nick, skeleton
from labchat.room import RoomError as RoomsRoomError
from labchat.room import check_nick as rooms_check_nick

# -- skeletons: what a reader sees ----------------------------------------------------------------


def test_look_alikes_of_one_nick_share_its_skeleton() -> None:
    plain = skeleton("ada")
    for nick in ("аda", "аԁа", "ADA", "ａｄａ", "𝐚𝐝𝐚", "𝖆𝖉𝖆", "ᴀda", "ɑda"):
        assert skeleton(nick) == plain, nick


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("bob", "b0b"),  # digit zero
        ("lee", "1ee"),  # digit one
        ("lee", "Iee"),  # capital i
        ("ian", "lan"),  # i folds from I, which reads as l
        ("emma", "ernrna"),  # m and rn
        ("Helen", "Ηelen"),  # Greek capital eta
        ("kate", "кате"),  # Cyrillic, every letter
        ("xena", "χενα"),  # Greek, every letter
        ("Zoë", "Zoe\u0308"),  # composed or not
        ("hoël", "hоёl"),  # Cyrillic ё carries its diaeresis onto e
        ("ada", "ADA"),
        ("ada", "\u13aa\u13a0\u13aa"),  # Cherokee capitals
        ("ada", "\uab7a\uab70\uab7a"),  # Cherokee small letters, which fold to the capitals
        ("teacher", "\u13a2\u13ac\u13aa\u13df\u13bb\u13ac\u13a1"),  # Cherokee, every letter
        ("ada", "\ua4ee\ua4d3\ua4ee"),  # Lisu
        ("bob", "\u15f7o\u15f7"),  # Canadian syllabics
    ],
)
def test_confusable_pairs(one: str, other: str) -> None:
    assert skeleton(one) == skeleton(other)


@pytest.mark.parametrize(("one", "other"), [("ada", "bob"), ("José", "Jose"), ("Zoë", "Zoe"), ("mia", "nia")])
def test_different_nicks_keep_different_skeletons(one: str, other: str) -> None:
    assert skeleton(one) != skeleton(other)


# -- what a nick may be -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nick",
    [
        "José",
        "Zoë",
        "Дмитрий",
        "李雷",
        "ada_l-2.0",
        "Ωμέγα",
        "田中さん",  # Han with Hiragana, as Japanese writes
        "カタカナー",  # with the prolonged sound mark
        "김민수",
        "अर्जुन",  # Devanagari with its own vowel signs and virama
        "علی",
        "x" * MAX_NICK,
    ],
)
def test_international_nicks_are_welcome(nick: str) -> None:
    assert check_nick(nick) == nick


def test_a_nick_is_kept_composed() -> None:
    assert check_nick("Jose\u0301") == "José"
    assert len(check_nick("e\u0301" * MAX_NICK)) == MAX_NICK  # the limit counts composed letters


@pytest.mark.parametrize(
    ("nick", "words"),
    [
        ("ada\u200d", "U+200D ZERO WIDTH JOINER"),
        ("a\u200db", "U+200D ZERO WIDTH JOINER"),
        ("eve\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("bob\u2066", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("ada\u00ad", "U+00AD SOFT HYPHEN"),
        ("ada\ufe0f", "U+FE0F VARIATION SELECTOR-16"),
        ("ada\u034f", "U+034F COMBINING GRAPHEME JOINER"),
        ("ada\u3164", "U+3164 HANGUL FILLER"),
    ],
)
def test_invisible_characters_are_refused_by_name(nick: str, words: str) -> None:
    with pytest.raises(RoomError) as caught:
        check_nick(nick)
    message = str(caught.value)
    assert caught.value.code == "nick-invalid"
    assert "invisible character" in message and words in message
    assert message.isprintable()  # the refusal shows where it hid, e.g. 'ada<U+200D>'
    assert f"<{words.split()[0]}>" in message


@pytest.mark.parametrize(
    ("nick", "mark"),
    [
        ("ada\u0336", "U+0336 COMBINING LONG STROKE OVERLAY"),  # strikes through a letter
        ("bo\u0308\u0308b", "U+0308 COMBINING DIAERESIS"),  # the second one has no letter to join
        ("x\u0301", "U+0301 COMBINING ACUTE ACCENT"),  # no x-acute exists to compose into
    ],
)
def test_combining_marks_that_compose_no_letter_are_refused(nick: str, mark: str) -> None:
    with pytest.raises(RoomError) as caught:
        check_nick(nick)
    assert caught.value.code == "nick-invalid"
    assert "combining mark" in str(caught.value) and mark in str(caught.value)


def test_a_mark_that_composes_is_just_an_accent() -> None:
    assert check_nick("Zoe\u0308") == "Zoë"


def test_too_many_marks_on_one_letter_are_refused() -> None:
    with pytest.raises(RoomError, match="more than 3 marks"):
        check_nick("क" + "\u094d\u0941\u0942\u0943")


@pytest.mark.parametrize(
    ("nick", "words"),
    [
        ("аda", "mixes Latin and Cyrillic letters (U+0430 CYRILLIC SMALL LETTER A)"),
        ("bοb", "mixes Latin and Greek letters (U+03BF GREEK SMALL LETTER OMICRON)"),
        ("Ωmega", "mixes Latin and Greek letters (U+03A9 GREEK CAPITAL LETTER OMEGA)"),
        ("lаο", "mixes Latin, Cyrillic and Greek letters"),
        ("Дmitry", "U+0414 CYRILLIC CAPITAL LETTER DE"),
        ("김민수ㅋ日本かな", "mixes"),  # Hangul and kana are two languages' ways
    ],
)
def test_a_nick_keeps_to_one_script(nick: str, words: str) -> None:
    with pytest.raises(RoomError) as caught:
        check_nick(nick)
    assert caught.value.code == "nick-invalid"
    assert words in str(caught.value) and "one script" in str(caught.value)


def test_digits_and_punctuation_go_with_any_script() -> None:
    assert check_nick("Дима_2.0") == "Дима_2.0"
    assert check_nick("李雷-7") == "李雷-7"


def test_the_old_rules_still_hold() -> None:
    for nick, words in [
        ("", "cannot be empty"),
        ("x" * (MAX_NICK + 1), "nick too long"),
        ("1st", "must start with a letter"),
        ("𝟏st", "must start with a letter"),  # a styled digit is still a digit
        ("ada lovelace", "(not ' ')"),
        ("ada\x1b[2J", "'^['"),
    ]:
        with pytest.raises(RoomError, match="nick") as caught:
            check_nick(nick)
        assert caught.value.code == "nick-invalid" and words in str(caught.value)
        assert "\x1b" not in str(caught.value)


def test_the_room_still_offers_the_same_names() -> None:
    assert rooms_check_nick is check_nick and RoomsRoomError is RoomError


@pytest.mark.parametrize("nick", ["ada\u200d\u202e", "a\x00b", "аda\u200b", "ada\u0336", "z" + "\u0301" * 5])
def test_every_refusal_is_printable_text(nick: str) -> None:
    with pytest.raises(RoomError) as caught:
        check_nick(nick)
    assert str(caught.value).isprintable()
