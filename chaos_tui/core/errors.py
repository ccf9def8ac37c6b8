"""The failures chaos-tui knows how to explain.

Every one is a `ChaosError`: its message is the one line the user sees and `exit_code` says
how the command ends. The command line catches `ChaosError` in one place (`main`); anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

from chaos_tui.core.exit_codes import ExitCode


class ChaosError(Exception):
    """A known failure: one line for the user, one exit code."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(ChaosError):
    """Bad input from the user (a flag, a parameter, a name): nothing was started."""

    exit_code = ExitCode.USAGE


class TargetError(ChaosError):
    """The target would not start, answer or do what a run asked of it."""


class AgentError(ChaosError):
    """The fault agent refused a request or failed at it."""


class AgentUnavailable(AgentError):
    """No fault agent answers (and none could be started)."""
