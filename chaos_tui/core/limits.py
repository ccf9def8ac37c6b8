"""Defaults and bounds read in several places, written once here. No imports: the command
line's help reads them, and `chaos-tui --help` must stay quick.

The probes' sampling rate: CHAOS_PROBE_RATE_HZ (settings.py), `--rate` (its help and its
check, cli/root.py and cli/run.py).
"""

PROBE_RATE_DEFAULT_HZ = 10.0
PROBE_RATE_MAX_HZ = 100.0
