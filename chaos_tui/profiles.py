"""The sandbox's profiles by name, in start order: the one list the command line (its help,
its check of --profile) and the sandbox's service table (sandbox/services.py) agree on.

A module of its own, importing nothing: `chaos-tui --help` must not load the sandbox.
"""

PROFILE_NAMES: tuple[str, ...] = (
    "chaos-outbox",
    "chaos-opa",
    "chaos-observe",
    "mesh",
    "chaos-queue",
)
