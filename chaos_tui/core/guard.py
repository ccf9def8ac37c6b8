"""Safety rules checked before anything is started. Each refusal is one line and an exit code."""

from __future__ import annotations

from chaos_tui.exit_codes import ExitCode
from chaos_tui.settings import Settings


class Refusal(Exception):
    """A safety rule said no. Nothing has been started or injected."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def is_production(settings: Settings) -> bool:
    markers = {m.strip().lower() for m in settings.production_markers if m.strip()}
    return settings.environment.strip().lower() in markers


def check_not_production(settings: Settings) -> None:
    if is_production(settings):
        raise Refusal(
            ExitCode.PRODUCTION_LOCKOUT,
            f"refusing to run: ENVIRONMENT={settings.environment!r} marks a production "
            "environment; chaos-tui never runs there",
        )


def check_enabled(target_name: str, target_is_sandbox: bool, enabled: bool) -> None:
    """The tool's own sandbox is always fair game; anything else needs an explicit enable."""
    if not target_is_sandbox and not enabled:
        raise Refusal(
            ExitCode.CHAOS_NOT_ENABLED,
            f"refusing to run against target {target_name!r}: set CHAOS_ENABLED=true or pass "
            "--enable-chaos to allow faults outside the sandbox",
        )


def confirmation_matches(typed: str, scenario_name: str) -> bool:
    """The typed-confirmation guard: the exact scenario name, nothing looser."""
    return typed.strip() == scenario_name
