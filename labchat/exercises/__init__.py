"""Checks for the tutorials' exercises: run the learner's code for real, then say what works.

The rule it keeps: a check never raises and never hangs. It runs the learner's
function or program against real sockets on 127.0.0.1 (port 0), each wait with a
deadline, and prints one line per finding: ``ok: ...`` for what works and
``not yet: ... hint: ...`` for what does not. Every check also returns a
``Result`` (``passed``, ``lines``), so a cell or a test can act on it.
"""

from . import answers
from .alive import check_keep_alive
from .answers import yours_or_ours
from .basics import check_serve_once
from .feedback import Result
from .framing import (
    check_length_decoder,
    check_line_decoder,
    check_recv_exactly,
    check_recv_line,
    check_sendall,
)
from .ipytests import use_ipytest
from .programs import ClientInTerminal, check_chat_programs, check_client_in_room, classic, have_pexpect
from .room import check_greeter, check_roll
from .servers import check_chopped_client, check_selector_echo
from .threads import check_counter, check_receiver, check_swap

__all__ = [
    "answers",
    "ClientInTerminal",
    "Result",
    "check_chat_programs",
    "check_chopped_client",
    "check_client_in_room",
    "check_counter",
    "check_greeter",
    "check_keep_alive",
    "check_length_decoder",
    "check_line_decoder",
    "check_receiver",
    "check_recv_exactly",
    "check_recv_line",
    "check_roll",
    "check_selector_echo",
    "check_serve_once",
    "check_sendall",
    "check_swap",
    "classic",
    "have_pexpect",
    "use_ipytest",
    "yours_or_ours",
]
