"""Safety rules checked before anything is started. Each refusal is one line and an exit code."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from chaos_tui.core.errors import ChaosError
from chaos_tui.core.exit_codes import ExitCode

# Every variable that deploy tooling uses to name an environment. Any one of them naming
# production refuses, whatever the others say: an empty or harmless value in one never hides
# another.
ENVIRONMENT_VARIABLES = (
    "ENVIRONMENT",
    "CHAOS_ENVIRONMENT",
    "ENV",
    "APP_ENV",
    "NODE_ENV",
    "RAILS_ENV",
    "DEPLOY_ENV",
)
# Always in force; CHAOS_PRODUCTION_MARKERS can add to them, never take them away.
BUILTIN_MARKERS = ("production", "prod", "prd")


class EnvironmentSettings(Protocol):
    """What the production guard reads from the settings (chaos_tui.settings.Settings has both).

    A protocol rather than an import: the core imports no outer layer, settings included.
    """

    @property
    def environment(self) -> str: ...

    @property
    def production_markers(self) -> Sequence[str]: ...


class Refusal(ChaosError):
    """A safety rule said no. Nothing has been started or injected."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message, code)
        self.code = code


def marks_production(value: str, markers: Iterable[str]) -> str | None:
    """The marker that `value` starts a word with, if any (case-insensitive).

    A marker counts where it begins the value or follows a character that is not a letter or
    digit: `production-eu`, `eu-prod`, `PROD`, `prod1`, `eu_prd` are production; `preprod`,
    `staging` and `dev` are not. Erring towards refusing is deliberate (`non-prod` refuses too:
    call it `nonprod` or `dev`).
    """
    text = value.strip().lower()
    for marker in markers:
        marker = marker.strip().lower()
        if marker and re.search(r"(?<![a-z0-9])" + re.escape(marker), text):
            return marker
    return None


def production_reason(
    settings: EnvironmentSettings, environ: Mapping[str, str] | None = None
) -> str | None:
    """Why this is production (the variable and its value), or None."""
    environ = os.environ if environ is None else environ
    markers = (*BUILTIN_MARKERS, *settings.production_markers)
    candidates = [("CHAOS_ENVIRONMENT", settings.environment)]
    candidates += [(name, environ.get(name, "")) for name in ENVIRONMENT_VARIABLES]
    for name, value in candidates:
        marker = marks_production(value, markers)
        if marker is not None:
            return f"{name}={value!r} names a production environment (marker {marker!r})"
    return None


def is_production(settings: EnvironmentSettings, environ: Mapping[str, str] | None = None) -> bool:
    return production_reason(settings, environ) is not None


def check_not_production(
    settings: EnvironmentSettings, environ: Mapping[str, str] | None = None
) -> None:
    reason = production_reason(settings, environ)
    if reason is not None:
        raise Refusal(
            ExitCode.PRODUCTION_LOCKOUT, f"refusing to run: {reason}; chaos-tui never runs there"
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
