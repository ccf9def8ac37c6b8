"""How a command that fails ends: one line on stderr, `chaos-tui: <message>`, and an exit code.

Commands raise `ChaosError` (core/errors.py) and its children; `main` alone turns them into
that line (`explain`). A few foreign exceptions that mean a known failure (an OSError on a
file, an HTTP error talking to the agent) are explained here too; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from chaos_tui.core.errors import ChaosError
from chaos_tui.core.exit_codes import ExitCode


def fail(code: int, message: str) -> NoReturn:
    """End the command with `message` and `code` (main prints it)."""
    raise ChaosError(message, exit_code=ExitCode(code))


def explain(exc: BaseException) -> tuple[int, str] | None:
    """The failures a command may end with, as (exit code, one line); None for a bug."""
    if isinstance(exc, ChaosError):
        return int(exc.exit_code), str(exc)
    # Looked up, not imported: if httpx was never loaded, this cannot be one of its errors
    # (and a command that succeeds need not pay for the import).
    httpx = sys.modules.get("httpx")
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        return ExitCode.ERROR, f"an HTTP request failed: {type(exc).__name__} {exc}".strip()
    if isinstance(exc, OSError):  # e.g. a read-only state dir: "path: reason", as Unix says it
        if not exc.filename:
            return ExitCode.ERROR, str(exc) or type(exc).__name__
        path = str(exc.filename)
        link = f" (a symlink to {os.readlink(path)})" if os.path.islink(path) else ""
        return ExitCode.ERROR, f"{path}{link}: {exc.strerror or exc}"
    return None
