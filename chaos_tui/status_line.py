"""A status line on a terminal's stderr while a headless run starts, before anything else can
be said: loading the scenarios takes a good part of a second, and a new user must not wonder
whether the command hangs. It is erased once the run's own progress (or an error) takes over,
so bad input still ends as one line. Nothing is shown when stderr is not a terminal: logs get
only the lines that stay.
"""

from __future__ import annotations

import sys

_shown = False


def show(text: str) -> None:
    global _shown
    try:
        if not sys.stderr.isatty():
            return
        sys.stderr.write(text)
        sys.stderr.flush()
        _shown = True
    except (OSError, ValueError):
        pass


def erase() -> None:
    """Back to the start of the line, which is cleared: what comes next is written there."""
    global _shown
    if not _shown:
        return
    _shown = False
    try:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
