"""The greeter on its own: lines in, lines out, no room and no socket."""

from __future__ import annotations

import pytest

from labchat.bot import GLOSSARY, Greeter


@pytest.fixture
def bot() -> Greeter:
    return Greeter()


def test_welcomes_a_newcomer_by_name(bot: Greeter) -> None:
    (line,) = bot.on_join("ada")
    assert "Hello ada" in line and "/help" in line


def test_says_goodbye_by_name(bot: Greeter) -> None:
    (line,) = bot.on_leave("bob")
    assert line.startswith("Goodbye bob")


@pytest.mark.parametrize(
    "text", ["hi", "Hello!", "hey", "Good morning", "hola", "hi greeter", "greeter, hello"]
)
def test_answers_greetings(bot: Greeter, text: str) -> None:
    assert bot.on_message("ada", text) == ["Hello ada! 😊"]


@pytest.mark.parametrize(
    ("question", "term"),
    [
        ("what is a socket?", "socket"),
        ("What are PORTS?", "port"),
        ("why do we need threads?", "thread"),
        ("what is framing?", "framing"),
        ("what is utf-8?", "utf-8"),
        ("utf8?", "utf-8"),
        ("greeter explain tcp", "tcp"),
        ("@greeter lock", "lock"),
    ],
)
def test_answers_short_questions_from_the_glossary(bot: Greeter, question: str, term: str) -> None:
    assert bot.on_message("ada", question) == [GLOSSARY[term]]


def test_offers_its_topics_when_addressed_with_something_it_does_not_know(bot: Greeter) -> None:
    (line,) = bot.on_message("ada", "greeter, what is love?")
    assert line.startswith("I can explain: accept, address,") and "socket" in line


@pytest.mark.parametrize("text", ["the socket is open", "how are you?", "hello world", "bye for now", ""])
def test_stays_quiet_in_ordinary_chat(bot: Greeter, text: str) -> None:
    assert bot.on_message("ada", text) == []


def test_a_glossary_and_a_nick_of_your_own() -> None:
    owl = Greeter(nick="owl", glossary={"mutex": "A mutex is a lock by another name."})
    assert owl.on_message("ada", "what is a mutex?") == ["A mutex is a lock by another name."]
    assert owl.on_message("ada", "what is a socket?") == []
    assert owl.on_message("ada", "owl hi") == ["Hello ada! 😊"]
    assert Greeter().on_message("ada", "what is a mutex?") == []


def test_every_glossary_entry_is_a_short_sentence() -> None:
    for term, text in GLOSSARY.items():
        assert term == term.lower() and text.endswith(".") and len(text) < 300


def test_a_port_names_a_socket_or_service_and_port_0_picks_one() -> None:
    port = GLOSSARY["port"]
    assert "socket or service" in port and "0 to 65535" in port and "Port 0" in port
