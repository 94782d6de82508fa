"""The room as pure logic: no socket, no thread, a fixed clock, members are plain strings."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

import pytest

import labchat
from labchat.bot import Greeter
from labchat.protocol import MAX_LINE, MAX_TEXT, Event, encode
from labchat.room import BIG_ROOM, MAX_NICK, Delivery, Room, RoomError, check_nick, clean_text


def quiet_room(**kwargs: object) -> Room:
    return Room(clock=lambda: 1000.0, **kwargs)


def seen_by(deliveries: list[Delivery], member: str, everyone: list[str]) -> list[Event]:
    """The events ``member`` gets from these deliveries, given who was in the room."""
    return [d.event for d in deliveries if (member in everyone if d.to is None else member in d.to)]


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


@pytest.fixture
def room() -> Room:
    """A room with ada and bob and no bot."""
    room = quiet_room()
    room.join("a", "ada")
    room.join("b", "bob")
    return room


def say(room: Room, member: str, text: str) -> list[Delivery]:
    return room.say(member, text).deliveries


# -- nicks --------------------------------------------------------------------------------


@pytest.mark.parametrize("nick", ["ada", "Bob_2", "li.wei", "zoë", "Ωμέγα", "x" * MAX_NICK, "a-b"])
def test_good_nicks(nick: str) -> None:
    assert check_nick(nick) == nick


@pytest.mark.parametrize(
    ("nick", "words"),
    [
        ("", "cannot be empty"),
        ("x" * (MAX_NICK + 1), f"nick too long: {MAX_NICK + 1} characters, limit {MAX_NICK}"),
        ("1st", "must start with a letter"),
        ("_x", "must start with a letter"),
        ("ada lovelace", "may hold only letters, digits, _ - . (not ' ')"),
        ("ada\x1b[2J", "'^['"),
        ("bob\x00", "'^@'"),
        ("eve<b>", "'<' '>'"),
        ("eve\u202e", "<U+202E>"),
    ],
)
def test_bad_nicks_are_refused_with_a_reason(nick: str, words: str) -> None:
    with pytest.raises(RoomError, match="nick") as caught:
        check_nick(nick)
    assert caught.value.code == "nick-invalid"
    assert words in str(caught.value)
    assert "\x1b" not in str(caught.value) and "\x00" not in str(caught.value)


def test_a_nick_is_unique_whatever_its_case(room: Room) -> None:
    for nick in ("ADA", "Bob", "ada"):
        with pytest.raises(RoomError, match="taken") as caught:
            room.join("c", nick)
        assert caught.value.code == "nick-taken"
    assert room.nicks() == ["ada", "bob"]


@pytest.mark.parametrize(
    "nick",
    [
        "ａｄａ",  # fullwidth
        "𝐚𝐝𝐚",  # mathematical bold
        "аԁа",  # Cyrillic, every letter
        "ᴀda",  # a small capital
        "Ada",
    ],
)
def test_a_look_alike_of_a_nick_here_is_taken(room: Room, nick: str) -> None:
    with pytest.raises(RoomError) as caught:
        room.join("c", nick)
    assert caught.value.code == "nick-taken"
    assert f"the nick {nick!r} is taken" in str(caught.value)
    if nick != "Ada":
        assert "it looks like 'ada', who is here" in str(caught.value)
    assert room.nicks() == ["ada", "bob"]


@pytest.mark.parametrize(
    ("nick", "code"),
    [
        ("аda", "nick-invalid"),  # one Cyrillic letter among Latin ones
        ("bοb", "nick-invalid"),  # a Greek omicron
        ("ada\u200d", "nick-invalid"),  # a zero-width joiner
        ("ada\u202e", "nick-invalid"),  # a right-to-left override
        ("ada\u0336", "nick-invalid"),  # a combining stroke
        ("b0b", "nick-taken"),  # a zero for an o
        ("b0B", "nick-taken"),
    ],
)
def test_impostors_are_refused_with_a_reason(room: Room, nick: str, code: str) -> None:
    with pytest.raises(RoomError) as caught:
        room.join("c", nick)
    assert caught.value.code == code and str(caught.value).isprintable()
    assert room.nicks() == ["ada", "bob"]


@pytest.mark.parametrize(
    "nick", ["server", "System", "ADMIN", "labchat", "you", "adm1n", "ｓｅｒｖｅｒ", "ѕуѕтем"]
)
def test_reserved_nicks_are_refused(nick: str) -> None:
    with pytest.raises(RoomError, match="reserved"):
        quiet_room().join("a", nick)


def test_the_bots_nick_is_taken_only_while_there_is_a_bot() -> None:
    for nick in ("Greeter", "gr𝐞eter", "GREETER"):
        with pytest.raises(RoomError, match="reserved"):
            quiet_room(bot=Greeter()).join("a", nick)
    quiet_room().join("a", "greeter")


def test_a_nick_and_its_look_alikes_are_free_again_once_it_goes(room: Room) -> None:
    say(room, "a", "/nick ada2")
    room.join("c", "ＡＤＡ")
    room.leave("b")
    room.join("d", "b0b")
    assert room.nicks() == ["ada2", "ＡＤＡ", "b0b"]


def test_the_members_are_a_snapshot_made_again_after_each_join_and_leave(room: Room) -> None:
    before = room.members()
    assert before == ("a", "b") and room.members() is before  # asked again: the same snapshot
    say(room, "a", "/nick ada2")  # a new nick is the same member
    assert room.members() is before
    room.join("c", "cy")
    assert room.members() == ("a", "b", "c") and before == ("a", "b")
    room.leave("a")
    assert room.members() == ("b", "c")


# -- joining and leaving ------------------------------------------------------------------


def test_a_newcomer_is_welcomed_and_everyone_sees_the_join() -> None:
    room = quiet_room()
    room.join("a", "ada")
    out = room.join("b", "bob")
    everyone = ["a", "b"]
    welcome = seen_by(out, "b", everyone)[0]
    assert welcome.kind == "welcome" and welcome.sender == "bob"
    assert welcome.users == ("ada", "bob")
    assert "Welcome, bob! 2 here: ada, bob." in welcome.text
    assert kinds(seen_by(out, "a", everyone)) == ["join"]
    assert kinds(seen_by(out, "b", everyone)) == ["welcome", "join"]


def test_the_welcome_counts_and_lists_a_small_room() -> None:
    room = quiet_room()
    for n in range(BIG_ROOM - 1):
        room.join(n, f"m{n}")
    welcome = room.join("last", "last")[0].event
    assert welcome.count == BIG_ROOM and len(welcome.users) == BIG_ROOM
    assert f"{BIG_ROOM} here: m0, m1, " in welcome.text and welcome.text.count(",") >= BIG_ROOM - 1


def test_a_big_rooms_welcome_gives_the_count_not_the_names() -> None:
    room = quiet_room(bot=Greeter())
    for n in range(BIG_ROOM):
        room.join(n, f"m{n}")
    welcome = room.join("ada", "ada")[0].event
    assert (welcome.kind, welcome.count, welcome.users) == ("welcome", BIG_ROOM + 1, ())
    assert welcome.text.startswith(f"Welcome, ada! {BIG_ROOM + 1} here. greeter (a bot) is here too.")
    assert "m0" not in welcome.text
    (who,) = say(room, "ada", "/who")
    assert len(who.event.users) == BIG_ROOM + 1 and who.event.users[-1] == "ada"


def _lines_run(call: Callable[[], object]) -> int:
    """How many lines of labchat's own code ``call`` runs: the work done, counted, not timed."""
    package = os.path.dirname(labchat.__file__)
    count = 0

    def local(frame, event, arg):  # noqa: ANN001, ANN202
        nonlocal count
        count += event == "line"
        return local

    def tracer(frame, event, arg):  # noqa: ANN001, ANN202
        return local if frame.f_code.co_filename.startswith(package) else None

    before = sys.gettrace()
    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(before)
    return count


def test_joining_renaming_and_whispering_cost_the_same_in_a_room_of_ten_thousand() -> None:
    small, big = quiet_room(replay=BIG_ROOM), quiet_room(replay=BIG_ROOM)  # both buffers full
    for n in range(BIG_ROOM + 10):
        small.join(n, f"m{n:05d}")
    for n in range(10_000):
        big.join(n, f"m{n:05d}")
    assert len(big.nicks()) == 10_000

    def costs(room: Room, newcomer: str) -> list[int]:
        return [
            _lines_run(lambda: room.join(newcomer, newcomer)),
            _lines_run(lambda: room.say(newcomer, "/nick q" + newcomer[1:])),
            _lines_run(lambda: room.say(0, "/msg Q" + newcomer[1:] + " hi")),
            _lines_run(lambda: room.leave(0)),
        ]

    assert costs(small, "z00042") == costs(big, "z00042")
    with pytest.raises(RoomError, match="taken"):
        big.join("late", "M09999")


def test_leaving_tells_everyone_and_frees_the_nick(room: Room) -> None:
    out = room.leave("a", "connection lost")
    assert [(d.event.kind, d.event.sender, d.event.text, d.to) for d in out] == [
        ("leave", "ada", "connection lost", None)
    ]
    assert room.leave("a") == []  # a second time is a no-op
    room.join("c", "Ada")
    assert room.nicks() == ["bob", "Ada"]


@pytest.mark.parametrize("line", ["bye", "Bye!", "bye.", "/quit", "/QUIT", "/exit", "/bye"])
def test_ways_out(room: Room, line: str) -> None:
    outcome = room.say("a", line)
    assert outcome.leaving
    goodbye, leave = (d.event for d in outcome.deliveries)
    assert (goodbye.kind, goodbye.code, goodbye.text) == ("system", "goodbye", "Goodbye, ada!")
    assert outcome.deliveries[0].to == ("a",)
    assert (leave.kind, leave.sender, outcome.deliveries[1].to) == ("leave", "ada", None)
    assert room.nicks() == ["bob"]


def test_quit_with_a_farewell(room: Room) -> None:
    leave = room.say("a", "/quit see you tomorrow").deliveries[1].event
    assert leave.text == "see you tomorrow"


def test_a_farewell_too_long_is_refused_and_the_member_stays(room: Room) -> None:
    outcome = room.say("a", "/quit " + "x" * (MAX_TEXT + 1))
    assert not outcome.leaving
    assert [d.event.code for d in outcome.deliveries] == ["text-too-long"]
    assert room.nicks() == ["ada", "bob"]
    assert room.say("a", "still here").deliveries[0].event.text == "still here"


def test_bye_inside_a_sentence_is_just_a_message(room: Room) -> None:
    outcome = room.say("a", "bye for now")
    assert not outcome.leaving and outcome.deliveries[0].event.kind == "message"


def test_saying_something_before_joining_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError):
        quiet_room().say("ghost", "hello")


# -- messages and commands ----------------------------------------------------------------


def test_a_message_goes_to_everyone_trimmed(room: Room) -> None:
    (delivery,) = say(room, "a", "  hello bob \n")
    event = delivery.event
    assert delivery.to is None
    assert (event.kind, event.sender, event.text, event.time) == ("message", "ada", "hello bob", 1000.0)


def test_blank_lines_say_nothing(room: Room) -> None:
    assert say(room, "a", "   ") == []


def test_control_characters_in_text_are_made_harmless(room: Room) -> None:
    (delivery,) = say(room, "a", "red \x1b[31malert\x07 \x9b2J")
    assert delivery.event.text == "red ^[[31malert^G <U+009B>2J"


def test_a_message_too_long_is_refused_to_its_sender_only(room: Room) -> None:
    say(room, "a", "x" * MAX_TEXT)
    (delivery,) = say(room, "a", "x" * (MAX_TEXT + 1))
    assert delivery.to == ("a",)
    assert delivery.event.code == "text-too-long"
    assert delivery.event.text == f"message too long: {MAX_TEXT + 1} characters, limit {MAX_TEXT}"


def test_help_lists_the_commands_to_the_asker(room: Room) -> None:
    out = say(room, "b", "/help")
    assert {d.to for d in out} == {("b",)}
    text = "\n".join(d.event.text for d in out)
    for command in ("/who", "/nick", "/me", "/msg", "/help", "/quit"):
        assert command in text


def test_who_lists_the_members(room: Room) -> None:
    (delivery,) = say(room, "a", "/who")
    assert delivery.to == ("a",)
    assert delivery.event.users == ("ada", "bob")
    assert delivery.event.text == "2 here: ada, bob"


def test_a_lone_surrogate_is_shown_by_name_so_every_text_kept_can_be_sent() -> None:
    # A str may hold one (a JSON "\\ud800" escape), UTF-8 may not: kept as it is, the room's
    # history would hold an event no client could be sent.
    assert clean_text("x\ud800y\udfff") == "x<U+D800>y<U+DFFF>"
    assert clean_text("one\n\udc80two") == "one\n<U+DC80>two"
    assert clean_text("\U0001f44b") == "\U0001f44b"  # a whole character past the BMP is kept


def test_who_in_a_room_of_thousands_counts_everyone_and_fits_in_a_line() -> None:
    room = Room(clock=lambda: 1.0, bot=None)
    nicks = [f"Ωμ{n:05d}" + "α" * 13 for n in range(3000)]  # 20 characters, Greek: \uXXXX each in JSON
    for n, nick in enumerate(nicks):
        room.join(n, nick)
    (answer,) = say(room, 0, "/who")
    line = encode(answer.event)
    assert len(line) < MAX_LINE  # every client can read it
    listed = answer.event.users
    assert 50 < len(listed) < 3000 and list(listed) == nicks[: len(listed)]
    assert answer.event.text.startswith("3000 here: Ωμ00000")
    assert answer.event.text.endswith(f", and {3000 - len(listed)} more")
    small = Room(clock=lambda: 1.0, bot=None)
    small.join("a", "ada")
    assert say(small, "a", "/who")[0].event.text == "1 here: ada"


def test_me_is_an_action(room: Room) -> None:
    (delivery,) = say(room, "a", "/me waves")
    assert (delivery.event.kind, delivery.event.text, delivery.to) == ("action", "waves", None)
    (delivery,) = say(room, "a", "/me   ")
    assert delivery.event.code == "usage"


def test_nick_changes_are_announced_and_checked(room: Room) -> None:
    (delivery,) = say(room, "a", "/nick ada2")
    event = delivery.event
    assert (event.kind, event.sender, event.target, delivery.to) == ("nick", "ada", "ada2", None)
    assert room.nicks() == ["ada2", "bob"]
    assert say(room, "a", "/nick BOB")[0].event.code == "nick-taken"
    assert say(room, "a", "/nick 9lives")[0].event.code == "nick-invalid"
    assert say(room, "a", "/nick")[0].event.code == "usage"
    (same,) = say(room, "a", "/nick ada2")  # the same nick: nothing changes, and she is told so
    assert (same.event.kind, same.event.text, same.to) == ("system", "you are already ada2", ("a",))
    assert say(room, "a", "/nick ADA2")[0].event.target == "ADA2"  # a new case is allowed


def test_renaming_to_a_look_alike_of_your_own_nick_is_allowed(room: Room) -> None:
    assert say(room, "b", "/nick b0b")[0].event.target == "b0b"
    assert say(room, "b", "/nick ｂｏｂ")[0].event.target == "ｂｏｂ"
    assert say(room, "a", "/nick BOB")[0].event.code == "nick-taken"  # still bob's, whatever it looks like
    assert say(room, "a", "/nick ｂ0ｂ")[0].event.code == "nick-taken"
    with pytest.raises(RoomError, match="taken"):
        room.join("c", "bob")


def test_a_private_message_reaches_only_the_two(room: Room) -> None:
    room.join("c", "cy")
    (delivery,) = say(room, "a", "/msg BOB meet at noon")
    event = delivery.event
    assert (event.kind, event.sender, event.target, event.text) == ("private", "ada", "bob", "meet at noon")
    assert delivery.to == ("a", "b")
    assert say(room, "a", "/msg ada note to self")[0].to == ("a",)
    assert "cy" in room.nicks()


def test_a_private_message_finds_its_reader_by_what_the_nick_looks_like(room: Room) -> None:
    (delivery,) = say(room, "a", "/msg ＢＯＢ psst")
    assert delivery.to == ("a", "b") and delivery.event.target == "bob"
    say(room, "b", "/nick robert")
    assert say(room, "a", "/msg bob psst")[0].event.code == "no-such-nick"
    assert say(room, "a", "/msg r0bert psst")[0].to == ("a", "b")


@pytest.mark.parametrize(
    ("line", "code"),
    [("/msg", "usage"), ("/msg bob", "usage"), ("/msg bob    ", "usage"), ("/msg eve hi", "no-such-nick")],
)
def test_private_message_mistakes(room: Room, line: str, code: str) -> None:
    (delivery,) = say(room, "a", line)
    assert delivery.to == ("a",) and delivery.event.code == code


def test_an_unknown_command_is_a_helpful_error(room: Room) -> None:
    (delivery,) = say(room, "a", "/frobnicate now")
    assert delivery.to == ("a",)
    assert delivery.event.code == "unknown-command"
    assert delivery.event.text == "unknown command /frobnicate; type /help to see the commands"


def test_two_slashes_send_a_literal_slash_line(room: Room) -> None:
    (delivery,) = say(room, "a", "//help is not a command")
    assert (delivery.event.kind, delivery.event.text) == ("message", "/help is not a command")


# -- order and history --------------------------------------------------------------------


def test_every_event_gets_the_next_sequence_number(room: Room) -> None:
    seqs = [d.event.seq for line in ("one", "/who", "/me two", "/frob") for d in say(room, "a", line)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_a_newcomer_gets_the_last_n_messages_flagged_as_history() -> None:
    room = quiet_room(history=3)
    room.join("a", "ada")
    for n in range(5):
        say(room, "a", f"message {n}")
    say(room, "a", "/me waves")
    say(room, "a", "/who")  # a reply to one person is not history
    out = room.join("b", "bob")
    replay = [e for e in seen_by(out, "b", ["a", "b"]) if e.history]
    assert [e.text for e in replay] == ["message 3", "message 4", "waves"]
    assert kinds(replay) == ["message", "message", "action"]
    assert all(e.seq < out[-1].event.seq for e in replay)
    assert not any(e.history for e in seen_by(out, "a", ["a", "b"]))
    assert room.history()[-1].history is False  # the room's own copy is unchanged


def test_no_history_when_n_is_zero() -> None:
    room = quiet_room(history=0)
    room.join("a", "ada")
    say(room, "a", "hello")
    assert not any(d.event.history for d in room.join("b", "bob"))


# -- the greeter in the room --------------------------------------------------------------


def test_the_greeter_welcomes_answers_and_says_goodbye() -> None:
    room = quiet_room(bot=Greeter())
    out = room.join("a", "ada")
    bot = [d.event for d in out if d.event.kind == "bot"]
    assert len(bot) == 1 and "Hello ada" in bot[0].text and bot[0].sender == "greeter"
    out = say(room, "a", "what is a port?")
    assert kinds([d.event for d in out]) == ["message", "bot"]
    assert out[1].event.text.startswith("A port is")
    out = say(room, "a", "bye")
    assert kinds([d.event for d in out]) == ["system", "leave", "bot"]
    assert "Goodbye ada" in out[2].event.text


def test_a_newcomer_sees_the_greeters_answers_but_not_old_welcomes() -> None:
    room = quiet_room(bot=Greeter())
    room.join("a", "ada")
    say(room, "a", "hi")
    out = room.join("b", "bob")
    replay = [(e.kind, e.text) for e in seen_by(out, "b", ["a", "b"]) if e.history]
    assert replay == [("message", "hi"), ("bot", "Hello ada! 😊")]


# -- threads may ask ----------------------------------------------------------------------


def test_many_threads_joining_at_once_never_share_a_nick() -> None:
    room = quiet_room()
    won: list[str] = []
    start = threading.Barrier(16)

    def attempt(member: str) -> None:
        start.wait()
        try:
            room.join(member, "same")
            won.append(member)
        except RoomError:
            pass

    threads = [threading.Thread(target=attempt, args=(f"m{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and room.nicks() == ["same"]


def test_a_big_room_does_not_announce_comings_and_goings_to_everyone() -> None:
    room = Room(bot=Greeter())
    for n in range(BIG_ROOM):
        room.join(n, f"m{n}")
    out = room.join("late", "late")
    assert {d.to for d in out} == {("late",)}  # welcome, its own join and the bot's hello: to it alone
    assert [d.event.kind for d in out] == ["welcome", "join", "bot"]
    left = room.leave("late")  # nobody is told of a leave in a big room either ...
    assert [(d.event.kind, d.event.sender, d.to) for d in left] == [
        ("leave", "late", ())
    ]  # ... but the record
    assert room.leave(0)[0].to is None  # back to 50: announced again


@pytest.mark.parametrize(
    "lines",
    [
        ["hi", "  spaced  ", "", "two\nlines", "tab\there", "\x1b[2Jesc", "x" * (MAX_TEXT + 1), "after"],
        ["one", "/me waves", "two", "bye", "never"],
        ["one", "BYE!!", "never"],
        ["//not a command", "ok"],
        ["bye-bye", "Byebye", "b", "B.", "bYe. !", "after"],
        ["hello", "what is a socket?", "hi", "bye"],  # the bot answers between the lines
    ],
)
@pytest.mark.parametrize("bot", [False, True])
def test_say_many_is_say_line_by_line(lines: list[str], bot: bool) -> None:
    """The room's quick path for a run of lines gives what say() gives for each in turn."""
    one, many = (quiet_room(bot=Greeter() if bot else None) for _ in range(2))
    for r in (one, many):
        r.join("a", "ada")
        r.join("b", "bob")
    expected = []
    for line in lines:
        outcome = one.say("a", line)
        expected += outcome.deliveries
        if outcome.leaving:
            break
    got, start = [], 0
    while start < len(lines):
        deliveries, taken = many.say_many("a", lines[start:])
        got += deliveries
        start += taken
        if start < len(lines):
            outcome = many.say("a", lines[start])
            got += outcome.deliveries
            start += 1
            if outcome.leaving:
                break
    assert got == expected
    assert one.seq == many.seq and one.history() == many.history()
    if bot and lines[0] == "hello":
        assert [d.event.kind for d in got[:2]] == ["message", "bot"]


@pytest.mark.parametrize("replay", [0, 1, 2, 3, 50])
def test_say_many_keeps_for_replay_what_say_keeps(replay: int) -> None:
    """A late client asking for what it missed gets the same from either path, gap notice and all."""
    lines = ["one", "two", "three", "four"]
    one, many = quiet_room(replay=replay), quiet_room(replay=replay)
    for r in (one, many):
        r.join("a", "ada")
        r.join("b", "bob")
        r.leave("b")
    for line in lines:
        one.say("a", line)
    assert many.say_many("a", lines)[1] == len(lines)
    for since in range(one.seq + 1):
        caught = [r.join(("c", since), "cy", since=since) for r in (one, many)]
        assert caught[0] == caught[1]
        for r in (one, many):
            r.leave(("c", since))


def test_say_many_leaves_a_muted_member_to_say() -> None:
    room = quiet_room()
    room.join("a", "ada")
    room.join("b", "bob")
    room.moderate("mute", "bob")
    assert room.say_many("b", ["hello"]) == ([], 0)


def test_a_catch_up_too_big_to_send_at_once_keeps_the_newest_and_says_how_many_are_left_out():
    room = quiet_room(replay_bytes=3 * (1000 + 160))
    room.join("a", "ada")
    for n in range(5):
        say(room, "a", f"{n}" * 1000)
    room.leave("a", "")
    caught = [d.event for d in room.join("a2", "ada", since=1)]
    assert (caught[1].code, caught[1].text) == (
        "history-gap",
        "4 earlier events were missed while you were away: too much to replay at once.",  # join, 0, 1, 2
    )
    # the newest that fit, oldest first, marked as history; then the live join
    assert [(e.kind, e.text[:1], e.history) for e in caught[2:]] == [
        ("message", "3", True),
        ("message", "4", True),
        ("leave", "", True),
        ("join", "", False),
    ]


def test_a_small_catch_up_is_replayed_whole_under_the_bound():
    room = quiet_room(replay_bytes=100_000)
    room.join("a", "ada")
    for n in range(5):
        say(room, "a", f"line {n}")
    caught = [d.event for d in room.join("b", "bob", since=1)]
    assert [e.text for e in caught if e.kind == "message"] == [f"line {n}" for n in range(5)]
    assert not [e for e in caught if e.code == "history-gap"]


def test_a_kick_gets_no_friendly_farewell_from_the_bot() -> None:
    room = quiet_room(bot=Greeter())
    room.join("t", "teacher", operator=True)
    room.join("m", "mal")
    out = room.say("t", "/kick mal enough").deliveries
    assert [(d.event.kind, d.event.code) for d in out] == [("error", "kicked"), ("leave", "")]
