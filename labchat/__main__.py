"""``python -m labchat``: the same as the ``labchat`` command."""

from .cli import main

raise SystemExit(main())
