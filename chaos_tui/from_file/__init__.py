"""Scenario files run: a validated file scenario (chaos_tui/scenario_file) becomes a Scenario,
planned and run by the same core as the built-ins (probes, faults, invariants, workload)."""
