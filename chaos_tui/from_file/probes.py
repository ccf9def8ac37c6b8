"""A file's `steady_state` entries as probes. A `max:`/`min:` on an entry bounds its value: a
sample outside the bounds fails, so the steady-state check, the recovery timings and every
verdict read it as the thing being unwell."""

from __future__ import annotations

from typing import Literal

from chaos_tui import plugins
from chaos_tui.core.contracts import Probe
from chaos_tui.core.errors import UsageError
from chaos_tui.probes.command_probe import CommandProbe
from chaos_tui.probes.db_probe import PostgresQueryProbe
from chaos_tui.probes.http_probe import EXPECT_2XX, HttpProbe
from chaos_tui.probes.jetstream_probe import StreamProbe
from chaos_tui.probes.nats_probe import NatsProbe
from chaos_tui.probes.prometheus_probe import PrometheusMetricProbe, PrometheusQueryProbe
from chaos_tui.probes.tcp_probe import TcpProbe
from chaos_tui.scenario_file import model as m


class BoundedProbe(Probe):
    """Another probe's reading, failing when its value is above `max` or below `min`."""

    def __init__(self, inner: Probe, low: float | None, high: float | None) -> None:
        bounds = ", ".join(
            text
            for text in (
                f"min {low:g}" if low is not None else "",
                f"max {high:g}" if high is not None else "",
            )
            if text
        )
        super().__init__(inner.name, f"{inner.description} [{bounds}]")
        self.inner, self.low, self.high = inner, low, high
        self.timeout_s = inner.timeout_s

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def measure(self) -> float | None:
        value = await self.inner.measure()
        if value is None:
            raise RuntimeError("no value to hold to its bounds")
        if self.high is not None and value > self.high:
            raise RuntimeError(f"value {value:g} above max {self.high:g}")
        if self.low is not None and value < self.low:
            raise RuntimeError(f"value {value:g} below min {self.low:g}")
        return value


def build_probe(entry: m.ProbeBase) -> Probe:
    """The probe of one generic steady_state entry (the platform's named ones are the
    built-in scenarios' own probes: see platform.py)."""
    probe = _plain(entry, bounded=entry.max is not None or entry.min is not None)
    if entry.max is None and entry.min is None:
        return probe
    return BoundedProbe(probe, entry.min, entry.max)


def _plain(entry: m.ProbeBase, bounded: bool) -> Probe:
    name = entry.probe_name
    if isinstance(entry, m.PluginProbeBase):
        return plugin_probe(entry)
    # An HTTP probe's value is its status; with bounds it is the latency they limit.
    value: Literal["status", "latency"] = "latency" if bounded else "status"
    if isinstance(entry, m.Http200Probe):
        return HttpProbe(name, entry.http_200_from, 200, value=value)
    if isinstance(entry, m.HttpProbe):
        spec = entry.http
        return HttpProbe(
            name,
            spec.url,
            spec.expect_status if "expect_status" in spec.model_fields_set else EXPECT_2XX,
            method=spec.method,
            body=spec.body,
            headers=spec.headers,
            timeout_ms=spec.timeout_ms,
            value=value,
        )
    if isinstance(entry, m.TcpProbe):
        host, _, port = entry.tcp_open.rpartition(":")
        return TcpProbe(name, host.strip("[]"), int(port))
    if isinstance(entry, m.PostgresProbe):
        return PostgresQueryProbe(name, entry.postgres.dsn, entry.postgres.query)
    if isinstance(entry, m.NatsProbe):
        return NatsProbe(name, entry.nats)
    if isinstance(entry, m.JetStreamProbe):
        return StreamProbe(name, entry.jetstream_stream.url, entry.jetstream_stream.stream)
    if isinstance(entry, m.MetricProbe):
        spec_m = entry.prometheus_metric
        return PrometheusMetricProbe(name, spec_m.url, spec_m.name, spec_m.labels)
    if isinstance(entry, m.QueryProbe):
        return PrometheusQueryProbe(name, entry.prometheus_query.url, entry.prometheus_query.query)
    if isinstance(entry, m.CommandProbe):
        return CommandProbe(name, entry.command, entry.timeout_ms / 1000.0)
    raise UsageError(f"steady_state {entry.kind!r} has no probe on this target")


def plugin_probe(entry: m.PluginProbeBase) -> Probe:
    """A plugin kind's probe: its `build(name, spec)`, checked to be a Probe of that name."""
    plugin = entry.PLUGIN
    probe = plugins.call(plugin, "build", plugin.obj.build, entry.probe_name, entry.plugin_spec())
    if not isinstance(probe, Probe):
        raise plugins.PluginError(
            f"{plugin.describe()}: build returned {type(probe).__name__}, not a Probe"
        )
    probe.name = entry.probe_name  # the plan and the file's checks know it by this name
    return probe
