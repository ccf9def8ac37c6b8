"""The file `chaos-tui init` writes: the issue's checkout_crash example, commented. A test
checks that it validates exactly as written."""

EXAMPLE = """\
# chaos-tui scenario file. Check it with `chaos-tui validate FILE`, list it with
# `chaos-tui list --file FILE`. Every key is checked: a typo is an error with its line.
version: 1

safety:
  environment_check: true        # the production lockout (always on; false is an error)
  require_explicit_enable: true  # --enable-chaos or CHAOS_ENABLED=true for anything but the sandbox

# Defaults for ${name} in any string below (a value that is only "${name}" keeps its type).
variables:
  service_port: 8080

scenarios:
  checkout_crash:
    hypothesis: "Checkout is back within 10 s of a crash and keeps its p95 under 300 ms after"
    # Sampled before, during and after the fault. Each may carry `name:` and `max:`/`min:`.
    # Kinds: http_200_from, http {url, method, expect_status, timeout_ms}, tcp_open HOST:PORT,
    # postgres {dsn, query}, nats URL, jetstream_stream {url, stream},
    # prometheus_metric {url, name, labels}, prometheus_query {url, query}, command "...".
    steady_state:
      - http_200_from: http://127.0.0.1:${service_port}/health   # named "health"
      - tcp_open: 127.0.0.1:5432                                 # named "tcp_5432"
    # Optional traffic before, during and after the fault, counted per phase. Instead of
    # rate_per_s, a `pattern:` {kind: ramp|step|spike|sine|burst|constant, ...}, e.g.
    # {kind: ramp, start_per_s: 5, end_per_s: 50, over_s: 30}; `arrivals: poisson` + `seed: 7`.
    load:
      - http_requests:
          {url: "http://127.0.0.1:${service_port}/checkout", method: POST, rate_per_s: 20}
    # Each action is held by the fault agent as a lease with a TTL (ttl_seconds, default the
    # hold plus a margin). Types: kill_process, terminate_process, pause_process,
    # kill_container, stop_container, pause_container, restart_container, network_partition,
    # and on a proxy {listen, upstream}: latency, bandwidth, timeout, reset_peer, slicer,
    # limit_data, down.
    actions:
      - type: kill_process
        target: {listening_on: 8080}     # or {pid_file: /run/checkout.pid}
        duration_seconds: 3
        restart: "systemctl start checkout"   # optional: the heal; else its supervisor restarts it
    # The verdict. Others: recovery_time_max_seconds {probe, max}, detect_time_max_seconds,
    # latency_p95_max_ms {probe|load, phase, max}, steady_state_after {within_seconds},
    # value_max/value_min {probe, phase, max|min}.
    validation:
      - http_recovery_time_max_seconds: 10
      - error_rate_max: {probe: checkout, max: 0.5}   # "checkout": the load above
    # Service-level objectives per probe or load (by its name), each judged before, during
    # and after the fault and reported per phase. A miss fails the run only in `phases`
    # (default [before, after]: a fault is expected to hurt while it is live). Objectives:
    # p50/p95/p99_latency_ms, max_error_rate, min_throughput_rps (a load's).
    slo:
      checkout:
        p95_latency_ms: 300
        max_error_rate: 0.01
    # The heal of every action always runs first, whatever is written here.
    cleanup:
      - verify_steady_state
"""
