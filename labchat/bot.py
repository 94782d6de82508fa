"""The greeter: a friendly bot that lives in the room, not on the network.

It sees room events (someone joined, said something, left) and answers with
lines of text: it welcomes newcomers by name, returns greetings, says goodbye,
and explains the ideas the tutorials teach from a small glossary. It has no
socket and no thread; the room calls it and broadcasts what it returns, so its
replies are ordinary room events that every client sees in order. The rule
for its methods: quick, and lines of text. The room waits while one thinks (a
``time.sleep`` in ``on_message`` holds every message up), and each line is
kept as a member's would be: controls shown, cut to the message limits.

To change what it says, subclass ``Greeter`` or pass your own ``glossary``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

GLOSSARY: dict[str, str] = {
    "socket": "A socket is one end of a network conversation: a program reads and writes "
    "bytes through it, and the operating system carries them to the other end.",
    "port": "A port is a number from 0 to 65535 that names one socket or service on a machine, "
    "not a program: the address finds the machine, the port the socket. "
    "Port 0 means 'pick a free one for me'.",
    "address": "An address (like 127.0.0.1) names a machine on a network; "
    "127.0.0.1, 'localhost', is always the machine you are on.",
    "server": "A server waits for others: it binds an address and port, listens, "
    "and accepts each client that connects.",
    "client": "A client starts the conversation: it connects to a server's address and port.",
    "thread": "A thread is a second line of work inside one program: one thread can wait "
    "for messages while another waits for your typing.",
    "framing": "Framing is how the receiver finds where one message ends: TCP delivers "
    "a stream of bytes, so labchat ends each message with a newline.",
    "tcp": "TCP is the protocol that delivers a reliable, ordered stream of bytes "
    "between two sockets. It knows nothing of messages: that is framing's job.",
    "utf-8": "UTF-8 turns text into bytes and back: sockets carry bytes, so every "
    "message is encoded before sending and decoded after receiving.",
    "json": "JSON is a text format for data; labchat sends each event as one line of JSON.",
    "bind": "bind() attaches a socket to an address and port, so clients know where to find it.",
    "listen": "listen() turns a bound socket into one that waits for connections.",
    "accept": "accept() waits for the next client and returns a new socket just for it.",
    "lock": "A lock lets only one thread at a time into a piece of code, so two threads "
    "never change the same data at once.",
    "protocol": "A protocol is the set of rules both sides follow: who speaks first, "
    "what each message looks like, and how to end.",
}

GREETINGS = (
    "hi",
    "hello",
    "hey",
    "hallo",
    "hola",
    "bonjour",
    "ciao",
    "salut",
    "good morning",
    "howdy",
)


class Greeter:
    """The friendly bot. Each method returns the lines it says (maybe none)."""

    def __init__(self, nick: str = "greeter", glossary: Mapping[str, str] | None = None) -> None:
        self.nick = nick
        self.glossary = dict(GLOSSARY if glossary is None else glossary)

    def on_join(self, nick: str) -> list[str]:
        return [f"👋 Hello {nick}, welcome to the chat! Type /help to see what you can do."]

    def on_leave(self, nick: str) -> list[str]:
        return [f"Goodbye {nick}, see you soon! 👋"]

    def on_message(self, nick: str, text: str) -> list[str]:
        words = re.findall(r"[\w'-]+", text.lower())
        addressed = self.nick.lower() in words or text.lower().startswith("@" + self.nick.lower())
        words = [w for w in words if w != self.nick.lower()]
        phrase = " ".join(words)
        if phrase in GREETINGS or (addressed and words and words[0] in GREETINGS):
            return [f"Hello {nick}! 😊"]
        if addressed or text.rstrip().endswith("?"):
            for term in words:
                term = {
                    "sockets": "socket",
                    "ports": "port",
                    "threads": "thread",
                    "utf8": "utf-8",
                }.get(term, term)
                if term in self.glossary:
                    return [self.glossary[term]]
            if addressed:
                topics = ", ".join(sorted(self.glossary))
                return [f"I can explain: {topics}. Ask me like 'what is a socket?'"]
        return []
