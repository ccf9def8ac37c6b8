"""Listing the scenarios (the console's picker, `chaos-tui list`) loads no queue, NATS or
OTLP driver: redis-py, Dramatiq, nats-py and protobuf take some 175 ms to import together,
and only a run that talks to them needs them."""

from __future__ import annotations

from tests.test_no_textual_headless import run_probe

PROBE = """
import sys
import chaos_tui.app
from chaos_tui.cli import main
assert main(["list"]) == 0
heavy = ("redis", "dramatiq", "nats", "google")  # google: protobuf, for OTLP
# A lazy module (core/lazy.py) sits in sys.modules unloaded until its first attribute read.
loaded = sorted(
    m for m, module in sys.modules.items()
    if m.split(".")[0] in heavy and type(module).__name__ != "_LazyModule"
)
assert not loaded, loaded
"""


def test_listing_the_scenarios_loads_no_queue_or_nats_driver(fresh_state_dir):
    run_probe(PROBE, fresh_state_dir)


def test_a_lazy_driver_loads_at_its_first_use():
    from chaos_tui.platform import jobs

    assert jobs.no_retry() is not None  # redis-py's Retry: imported here, at the call
    assert jobs.job_message("run", "job", 5).queue_name == jobs.QUEUE
