"""Each finished run sent to the user's telemetry as OTLP/HTTP JSON (CHAOS_OTLP_ENDPOINT), so
the chaos window shows on the dashboard beside the graphs it explains.

What is sent: a span for the run, a child span per injection window, and log records for the
phases, the invariant verdicts and the verdict, each with the run id and the scenario as
attributes. The trace and span ids are derived from the run id: sending a run again gives the
same ids, so a backend that keys on them keeps one copy.

`encode_traces` and `encode_logs` are pure (a RunResult in, the OTLP JSON body out);
`RunExporter` posts them, bounded, and turns any failure into one line for the caller to say.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any
from urllib.parse import urlsplit

from chaos_tui import __version__
from chaos_tui.core.model import RunResult
from chaos_tui.core.report import invariant_measure

SCOPE = "chaos-tui"
TIMEOUT_S = 2.5  # per request; two requests: a dead endpoint costs a run at most 5 s
# OTLP severity numbers (the log data model): INFO, WARN, ERROR.
INFO, WARN, ERROR = 9, 13, 17
SPAN_KIND_INTERNAL = 1
STATUS_OK, STATUS_ERROR = 1, 2


def check_endpoint(url: str) -> str:
    """The endpoint as given, or ValueError saying what is wrong: an http(s) base URL, to
    which /v1/traces and /v1/logs are appended (http://127.0.0.1:4318 for a collector,
    http://host:5080/api/ORG for OpenObserve)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL like http://127.0.0.1:4318")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: give a base URL, without ?query or #fragment")
    if any(c.isspace() for c in url.strip()):
        raise ValueError(f"{url!r}: a URL has no spaces")
    try:
        parts.port  # noqa: B018 -- raises on a port that is not a number in range
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number from 1 to 65535") from None
    return url.strip().rstrip("/")


# -- encoding (pure) ---------------------------------------------------------------------------


def trace_id(run_id: str) -> str:
    return hashlib.sha256(f"chaos-tui trace {run_id}".encode()).hexdigest()[:32]


def span_id(run_id: str, part: str) -> str:
    return hashlib.sha256(f"chaos-tui span {run_id} {part}".encode()).hexdigest()[:16]


def nanos(t: float) -> str:
    """Wall-clock seconds as OTLP's unix nanoseconds (a string: JSON's 64-bit integers)."""
    return str(round(t * 1e9))


def attribute(key: str, value: object) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _attributes(values: dict[str, object]) -> list[dict[str, Any]]:
    return [attribute(k, v) for k, v in values.items() if v is not None]


def _run_keys(result: RunResult) -> dict[str, object]:
    """What every span and record carries, so any one of them finds the run."""
    return {"chaos.run_id": result.run_id, "chaos.scenario": result.scenario}


def _resource() -> dict[str, Any]:
    return {
        "attributes": _attributes({"service.name": "chaos-tui", "service.version": __version__})
    }


def _scope() -> dict[str, Any]:
    return {"name": SCOPE, "version": __version__}


def encode_traces(result: RunResult) -> dict[str, Any]:
    """The run's span and a child span per injection window, as an ExportTraceServiceRequest."""
    tid = trace_id(result.run_id)
    run_span = span_id(result.run_id, "run")
    run_attrs = {
        **_run_keys(result),
        "chaos.target": result.target,
        "chaos.outcome": result.outcome,
        "chaos.reason": result.reason or None,
        "chaos.hypothesis": result.hypothesis,
        **{f"chaos.parameter.{k}": v for k, v in sorted(result.parameters.items())},
    }
    passed = result.outcome == "pass"
    spans = [
        {
            "traceId": tid,
            "spanId": run_span,
            "name": f"chaos run {result.scenario}",
            "kind": SPAN_KIND_INTERNAL,
            "startTimeUnixNano": nanos(result.started_at),
            "endTimeUnixNano": nanos(result.finished_at),
            "attributes": _attributes(run_attrs),
            "status": {
                "code": STATUS_OK if passed else STATUS_ERROR,
                "message": "" if passed else (result.reason or result.outcome),
            },
        }
    ]
    for i, window in enumerate(result.injection_windows):
        start = window.applied_at if window.applied_at is not None else window.injected_at
        # Never healed (the agent's TTL will): the window lasts as long as the run said.
        end = window.healed_at if window.healed_at is not None else result.finished_at
        attrs = {
            **_run_keys(result),
            "chaos.fault": window.fault,
            "chaos.lease_id": window.lease_id,
            "chaos.description": window.description,
            "chaos.injected_at": window.injected_at,
            "chaos.healed_by": window.healed_by if window.healed_at is not None else None,
        }
        spans.append(
            {
                "traceId": tid,
                "spanId": span_id(result.run_id, f"window {i} {window.lease_id}"),
                "parentSpanId": run_span,
                "name": f"chaos fault {window.fault}",
                "kind": SPAN_KIND_INTERNAL,
                "startTimeUnixNano": nanos(start),
                "endTimeUnixNano": nanos(max(start, end)),
                "attributes": _attributes(attrs),
            }
        )
    return {
        "resourceSpans": [
            {"resource": _resource(), "scopeSpans": [{"scope": _scope(), "spans": spans}]}
        ]
    }


def encode_logs(result: RunResult) -> dict[str, Any]:
    """A record per phase, per invariant verdict and for the verdict, as an
    ExportLogsServiceRequest, each tied to the run's span."""
    tid, sid = trace_id(result.run_id), span_id(result.run_id, "run")
    records: list[tuple[float, int, str, dict[str, object]]] = []
    for phase, began in sorted(result.phases.items(), key=lambda item: item[1]):
        records.append(
            (began, INFO, f"{result.scenario}: phase {phase} began", {"chaos.phase": phase})
        )
    for inv in result.invariants:
        verdict = "held" if inv.passed else "broke"
        when = inv.broke_at if inv.broke_at is not None else result.finished_at
        attrs: dict[str, object] = {
            "chaos.invariant": inv.name,
            "chaos.passed": inv.passed,
            "chaos.measured": inv.measured,
            "chaos.limit": inv.limit,
            "chaos.unit": inv.unit or None,
        }
        body = f"{result.scenario}: invariant {inv.name} {verdict}: {invariant_measure(inv)}"
        records.append((when, INFO if inv.passed else ERROR, body, attrs))
    severity = (
        INFO if result.outcome == "pass" else WARN if result.outcome == "interrupted" else ERROR
    )
    verdict_body = f"{result.scenario}: verdict {result.outcome.upper()}"
    if result.reason:
        verdict_body += f": {result.reason}"
    records.append((result.finished_at, severity, verdict_body, {"chaos.outcome": result.outcome}))
    log_records = [
        {
            "timeUnixNano": nanos(t),
            "observedTimeUnixNano": nanos(t),
            "severityNumber": number,
            "severityText": {INFO: "INFO", WARN: "WARN", ERROR: "ERROR"}[number],
            "body": {"stringValue": body},
            "attributes": _attributes({**_run_keys(result), **attrs}),
            "traceId": tid,
            "spanId": sid,
        }
        for t, number, body, attrs in records
    ]
    return {
        "resourceLogs": [
            {"resource": _resource(), "scopeLogs": [{"scope": _scope(), "logRecords": log_records}]}
        ]
    }


# -- sending -----------------------------------------------------------------------------------


class RunExporter:
    """Sends each run once (the console's last run is handed over twice: by the app when it
    ends, by the session on the way out). `export` never raises: it returns the one line to
    say when the endpoint did not take it, else None."""

    def __init__(self, endpoint: str, timeout_s: float = TIMEOUT_S) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout_s = timeout_s
        self._sent: set[str] = set()
        self._lock = threading.Lock()

    def export(self, result: RunResult) -> str | None:
        with self._lock:
            if result.run_id in self._sent:
                return None
            self._sent.add(result.run_id)
        try:
            self._post("traces", encode_traces(result))
            self._post("logs", encode_logs(result))
        except Exception as exc:  # any failure is one line: the run and its exit code stand
            return (
                f"chaos-tui: warning: the run was not sent to CHAOS_OTLP_ENDPOINT "
                f"{self.endpoint}: {exc}"
            )
        return None

    def _post(self, signal: str, body: dict[str, Any]) -> None:
        import httpx  # only when a run is sent: the export is optional

        url = f"{self.endpoint}/v1/{signal}"
        try:
            response = httpx.post(url, json=body, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"{signal}: {type(exc).__name__}: {exc or 'no answer'}") from None
        if response.status_code // 100 != 2:
            raise RuntimeError(f"{signal}: HTTP {response.status_code} {response.text[:200]}")


def run_exporter(settings) -> RunExporter | None:
    """The exporter the settings ask for (CHAOS_OTLP_ENDPOINT), or None."""
    endpoint = getattr(settings, "otlp_endpoint", None)
    return RunExporter(endpoint) if endpoint else None
