"""openobserve_stall's reading of the collector's own evidence: the contrib collector's
Prometheus page (:8888) read into exporter figures, and the verdict drawn from them and from
its health endpoint (:13133); where neither answers, the evidence is said to be missing, and
why, rather than judged. (No contrib collector image can be pulled here: the pages below are
written as the collector 0.115 serves them.)"""

from __future__ import annotations

import pytest

from chaos_tui.core.model import ProbeSample
from chaos_tui.probes.collector_evidence import ExporterReading, exporter_reading, judge

LABELS = (
    'exporter="otlphttp/openobserve",service_instance_id="3f1c",'
    'service_name="otelcol-contrib",service_version="0.115.0"'
)
URLS = ("http://127.0.0.1:13133/", "http://127.0.0.1:8888/metrics")


def page(queue: int, sent: int, failed: int, spans: int = 0) -> str:
    return f"""# HELP otelcol_exporter_queue_capacity Fixed capacity of the retry queue (in batches)
# TYPE otelcol_exporter_queue_capacity gauge
otelcol_exporter_queue_capacity{{data_type="logs",{LABELS}}} 1000
# HELP otelcol_exporter_queue_size Current size of the retry queue (in batches)
# TYPE otelcol_exporter_queue_size gauge
otelcol_exporter_queue_size{{data_type="logs",{LABELS}}} {queue}
otelcol_exporter_queue_size{{data_type="traces",{LABELS}}} 0
# TYPE otelcol_exporter_sent_log_records_total counter
otelcol_exporter_sent_log_records_total{{{LABELS}}} {sent}
# TYPE otelcol_exporter_sent_spans_total counter
otelcol_exporter_sent_spans_total{{{LABELS}}} {spans}
# TYPE otelcol_exporter_send_failed_log_records_total counter
otelcol_exporter_send_failed_log_records_total{{{LABELS}}} {failed}
# TYPE otelcol_exporter_enqueue_failed_log_records_total counter
otelcol_exporter_enqueue_failed_log_records_total{{{LABELS}}} 7
# TYPE otelcol_process_uptime_total counter
otelcol_process_uptime_total{{service_name="otelcol-contrib"}} 12.5
"""


def test_a_page_is_read_into_queue_sent_and_failed():
    reading = exporter_reading(page(queue=4, sent=120, failed=2, spans=5), 10.0)
    # The capacity, the enqueue failures and the process' own metrics are not the exporter's
    # queue, sends or send failures.
    assert reading == ExporterReading(10.0, 4.0, 125.0, 2.0)
    with pytest.raises(ValueError, match="no otelcol_exporter"):
        exporter_reading("# TYPE up gauge\nup 1\n", 0.0)


def health(*oks: bool, t0: float = 0.0) -> list[ProbeSample]:
    return [
        ProbeSample("collector_health", t0 + i * 0.5, ok, 1.0 if ok else None, 200.0)
        for i, ok in enumerate(oks)
    ]


# A run: first read at t=0, the stall from t=2 to t=6, 10 markers a second accepted.
ACCEPTED = [i / 10 for i in range(80)]
STALL = (2.0, 6.0)


def readings(queue_peak: int, sent_during_stall: int, failed: int) -> list[ExporterReading]:
    return [
        ExporterReading(0.0, 0, 0, 0),
        ExporterReading(1.0, 0, 10, 0),
        ExporterReading(2.5, 0, 20, 0),
        ExporterReading(4.0, queue_peak, 20 + sent_during_stall, failed),
        ExporterReading(5.5, queue_peak, 20 + sent_during_stall, failed),
    ]


def test_a_collector_that_rode_out_the_stall_passes_every_check():
    evidence = judge(
        health(*[True] * 16),
        readings(queue_peak=6, sent_during_stall=0, failed=0),
        ExporterReading(9.0, 0, 80, 0),
        STALL,
        ACCEPTED,
        URLS,
    )
    assert evidence.failed == 0, evidence.used
    assert "http://127.0.0.1:13133/: 0 of 16 checks failed" in evidence.used
    assert "http://127.0.0.1:8888/metrics" in evidence.used and "caught up" in evidence.used
    assert evidence.figures["collector queue peak during the stall"] == 6
    assert evidence.figures["collector send failures"] == 0


@pytest.mark.parametrize(
    ("case", "health_oks", "peak", "sent_during", "failed", "final", "says", "checks"),
    [
        ("health down", [True, False, True], 6, 0, 0, (0, 80, 0), "1 of 3 checks failed", 1),
        # Dropped after its retries: counted, and what was dropped was never sent either.
        ("dropped", [True], 6, 0, 3, (0, 77, 3), "3 send failures", 2),
        ("not caught up", [True], 6, 0, 0, (0, 50, 0), "NOT caught up", 1),
        ("queue not drained", [True], 6, 0, 0, (5, 80, 0), "5 at the end", 1),
        # It went on sending everything through the stall: the stall did not reach it.
        ("no backlog", [True], 0, 45, 0, (0, 80, 0), "no backlog seen", 1),
    ],
)
def test_each_broken_promise_fails_its_checks(
    case, health_oks, peak, sent_during, failed, final, says, checks
):
    evidence = judge(
        health(*health_oks),
        readings(peak, sent_during, failed),
        ExporterReading(9.0, *final),
        STALL,
        ACCEPTED,
        URLS,
    )
    assert evidence.failed == checks, (case, evidence.used)
    assert says in evidence.used, evidence.used


def test_nothing_answering_is_said_to_be_not_available_and_why_not_judged():
    refused = [
        ProbeSample("collector_health", 0.1 * i, False, None, None, "connection refused")
        for i in range(20)
    ]
    evidence = judge(refused, [], None, STALL, ACCEPTED, URLS)
    assert evidence.failed is None and evidence.figures == {}
    assert evidence.used.startswith(
        "not available: nothing answered at http://127.0.0.1:13133/ (connection refused) nor "
        "at http://127.0.0.1:8888/metrics"
    )
    assert "rotel" in evidence.used


def test_health_alone_is_judged_and_the_missing_metrics_said():
    evidence = judge(health(True, True), [], None, STALL, ACCEPTED, URLS)
    assert evidence.failed == 0
    assert "exporter metrics http://127.0.0.1:8888/metrics: not available" in evidence.used
