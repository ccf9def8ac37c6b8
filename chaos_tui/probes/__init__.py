"""Probes: small async measurements the runner samples continuously."""
