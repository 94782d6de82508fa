"""The check for notebook 02's exercise: a server that serves one client, start to end.

The rule it keeps: as every check, it never raises and never hangs.
"""

from __future__ import annotations

import socket

from .feedback import Feedback, guarded


@guarded("serve_once")
def check_serve_once(feedback: Feedback, serve_once) -> None:
    """Placeholder: the check is being written."""
    feedback.not_yet("this check is not written yet", "come back later")


def serve_once(listener: socket.socket) -> None:
    """Placeholder for labchat's own answer."""
    raise NotImplementedError
