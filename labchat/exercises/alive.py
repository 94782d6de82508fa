"""The check for notebook 09's exercise: noticing a peer that vanished, with TCP keepalive.

The rule it keeps: as every check, it never raises and never hangs.
"""

from __future__ import annotations

import socket

from .feedback import Feedback, guarded


@guarded("keep_alive")
def check_keep_alive(feedback: Feedback, keep_alive) -> None:
    """Placeholder: the check is being written."""
    feedback.not_yet("this check is not written yet", "come back later")


def keep_alive(sock: socket.socket) -> None:
    """Placeholder for labchat's own answer."""
    raise NotImplementedError
