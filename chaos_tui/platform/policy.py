"""The gateway's policy: the decision path the gateway asks, and what the policy itself
answers (the oracle a scenario holds the gateway's answers to)."""

from __future__ import annotations

from typing import Any

POLICY_PATH = "chaos/gateway/allow"


def policy_answers(path: str, requests: list[dict[str, Any]]) -> list[bool]:
    """Whether the shipped policy allows each request (evaluated in-process, as OPA would)."""
    from chaos_tui.platform.policy_engine import PolicyEngine, default_policy_dir

    engine = PolicyEngine(default_policy_dir())
    return [engine.evaluate(path, r) == (True, True) for r in requests]
