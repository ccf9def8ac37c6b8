"""The OpenTelemetry collector of the chaos-observe profile: rotel, from the `rotel` wheel.

rotel takes OTLP on gRPC and HTTP and exports logs and traces over OTLP/HTTP to our sink's
OpenObserve paths. Facts about rotel-agent found by running it (they shape the flags below):
- `--otlp-exporter-endpoint` is a base URL: rotel appends /v1/logs, /v1/traces, /v1/metrics.
  The per-signal `--otlp-exporter-logs-endpoint` / `-traces-endpoint` are used verbatim.
- It refuses to start without an endpoint for metrics, even with the metrics receiver off,
  so the base endpoint is always given (the sink accepts and ignores metrics).
- A failed export is retried on a connection error or a timeout (seen here; rotel's source
  adds 408, 429 and 500-504), with
  backoff from `--otlp-exporter-retry-initial-backoff` (default 5 s) until
  `--otlp-exporter-retry-max-elapsed-time` (default 300 s). A connection reset is not
  retried: that batch is dropped even with retries on.
- With max elapsed time 0s the first failure is final ("Exporting failed, dropping data"):
  with the sink killed every batch of the outage was lost. "Dropping" after a timeout does not
  mean the backend never got it: the request already sits in the paused backend's socket and
  is read on SIGCONT (a 10 s pause: rotel dropped 10 batches, the sink got every marker).
- While the backend is down or paused rotel keeps answering 200 at once and holds the backlog
  in memory (a 30 s pause at 200 markers/s: all 6000 accepted within 16 ms, none lost).
- It has no health endpoint: ready means its OTLP/HTTP port accepts a TCP connection.
- The pid and log files default to /tmp/rotel-agent.*; they go into the caller's directory
  so two sandboxes never share them (in the foreground rotel writes neither: it logs to
  stdout, which the caller redirects).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from chaos_tui.platform.telemetry import ORG
from chaos_tui.sandbox.postgres import SandboxError

# Batches leave within 100 ms, so a marker's delivery time is the backend's, not the batcher's.
BATCH_TIMEOUT = "100ms"
# rotel's default. A shorter one does not help against a paused backend: the paused kernel
# still takes the request, and the sink answers it on SIGCONT, so every timeout shorter than
# the pause only adds a retry that arrives as a duplicate (measured: 2 s timeout, 5 s pause,
# 15 of 51 markers twice; 5 s timeout, 5 s pause, none).
REQUEST_TIMEOUT = "5s"
# rotel retries from 5 s, doubling up to 30 s: after a 5 s outage the backlog then arrived
# about 11 s after the backend was back, which measures the collector's sleep, not the
# backend's recovery. From 1 s, capped at 2 s, it arrived within 2.3 s.
RETRY_INITIAL_BACKOFF = "1s"
RETRY_MAX_BACKOFF = "2s"
RETRY_MAX_ELAPSED = "300s"  # rotel's default: the retry window the scenario relies on


def binary() -> Path:
    """rotel-agent ships inside the rotel Python package."""
    try:
        import rotel
    except ImportError as exc:
        raise SandboxError("the rotel collector is not installed: pip install rotel") from exc
    path = Path(rotel.__file__).parent / "rotel-agent"
    if not path.is_file():
        raise SandboxError(
            f"rotel is installed but {path} is missing (a wheel for another platform?)"
        )
    return path


def version(path: Path | None = None) -> str:
    """What `rotel-agent --version` says, e.g. 'rotel 0.0.1-alpha10' (the wheel's own version
    number differs: rotel 0.0.1a15 ships agent 0.0.1-alpha10)."""
    out = subprocess.run(
        [str(path or binary()), "--version"],
        capture_output=True,
        text=True,
        timeout=10,
        stdin=subprocess.DEVNULL,
    )
    if out.returncode != 0:
        raise SandboxError(f"rotel-agent --version failed: {out.stderr.strip()}")
    return out.stdout.strip()


def command(
    binary: Path | str,
    grpc_port: int,
    http_port: int,
    sink_base_url: str,
    org: str = ORG,
    retries: bool = True,
    log_file: Path | str | None = None,
    *,
    state_dir: Path | str | None = None,
    host: str = "127.0.0.1",
    request_timeout: str = REQUEST_TIMEOUT,
    retry_initial_backoff: str = RETRY_INITIAL_BACKOFF,
    retry_max_backoff: str = RETRY_MAX_BACKOFF,
) -> list[str]:
    """The rotel-agent command line. The pid and log files go into `state_dir`, or beside
    `log_file`; one of the two is required. With retries=False a failed export is dropped."""
    if state_dir is not None:
        state = Path(state_dir)
    elif log_file is not None:
        state = Path(log_file).parent
    else:
        raise ValueError("give state_dir or log_file: rotel's defaults are shared files in /tmp")
    state.mkdir(parents=True, exist_ok=True)
    log = Path(log_file) if log_file is not None else state / "rotel-agent.log"
    base = f"{sink_base_url.rstrip('/')}/api/{org}"
    cmd = [
        str(binary),
        "start",  # no --daemon: we own the process and its pid
        "--pid-file",
        str(state / "rotel-agent.pid"),
        "--log-file",
        str(log),
        "--otlp-grpc-endpoint",
        f"{host}:{grpc_port}",
        "--otlp-http-endpoint",
        f"{host}:{http_port}",
        "--otlp-receiver-metrics-disabled",
        "--exporter",
        "otlp",
        "--otlp-exporter-protocol",
        "http",
        "--otlp-exporter-endpoint",
        base,  # required for metrics; logs and traces are explicit
        "--otlp-exporter-logs-endpoint",
        f"{base}/v1/logs",
        "--otlp-exporter-traces-endpoint",
        f"{base}/v1/traces",
        "--otlp-exporter-request-timeout",
        request_timeout,
        "--batch-timeout",
        BATCH_TIMEOUT,
    ]
    if retries:
        cmd += [
            "--otlp-exporter-retry-initial-backoff",
            retry_initial_backoff,
            "--otlp-exporter-retry-max-backoff",
            retry_max_backoff,
            "--otlp-exporter-retry-max-elapsed-time",
            RETRY_MAX_ELAPSED,
        ]
    else:
        cmd += ["--otlp-exporter-retry-max-elapsed-time", "0s"]
    return cmd


def ready(http_port: int, host: str = "127.0.0.1", timeout_s: float = 1.0) -> None:
    """Raise unless the OTLP/HTTP receiver accepts a connection (rotel has no health check)."""
    try:
        with socket.create_connection((host, http_port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise SandboxError(f"rotel not accepting on {host}:{http_port}: {exc}") from exc


def is_ready(http_port: int, host: str = "127.0.0.1", timeout_s: float = 1.0) -> bool:
    try:
        ready(http_port, host, timeout_s)
        return True
    except SandboxError:
        return False
