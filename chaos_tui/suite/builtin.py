"""The built-in suites' text, apart from their loader: `chaos-tui list` shows them without
loading the scenario file's models (and the plugins those load)."""

# The built-in suites, written as a user would write theirs, and read the same way.
BUILTIN_SUITES = {
    "platform": """\
name: platform
description: >-
  The platform's four promises, one after another, at the hold times of the platform
  plan (the `plan` preset: partition 15 s, OPA 5 s).
preset: plan
runs:
  - postgres_restart_outbox
  - opa_restart
  - openobserve_stall
  - nats_partition_mesh
""",
    "queue": """\
name: queue
description: >-
  The job queue under patterned load: broker latency and drops, workers that crash
  mid-job, the broker's primary killed and failed over.
runs:
  - queue_latency_drop
  - queue_worker_crash
  - queue_broker_failover
""",
}
