"""The telemetry backend's names, as OpenObserve (and the sandbox's stand-in) serve them."""

from __future__ import annotations

ORG = "default"  # OpenObserve's default organisation
