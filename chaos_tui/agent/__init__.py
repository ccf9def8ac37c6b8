"""The fault agent: a long-lived process that owns every fault as a lease with a TTL.

Leases are written to disk before they are applied, healed by a reaper at their TTL, and
healed at start-up if an earlier agent died holding them. The console and headless runs ask
the agent for faults over a token-protected HTTP API on loopback, so a fault outlives neither
its TTL nor a crash of whoever asked for it.
"""
