"""The policy engine moved to `chaos_tui.platform.policy_engine` (scenarios use it as their
oracle); its names stay importable from here."""

from chaos_tui.platform.policy_engine import (  # noqa: F401
    MAX_INPUT_DEPTH,
    InputError,
    PolicyEngine,
    PolicyError,
    default_policy_dir,
)
