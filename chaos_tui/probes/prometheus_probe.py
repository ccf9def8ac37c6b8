"""Prometheus probes: one sample read from a `/metrics` endpoint, or one PromQL answer from a
Prometheus server's HTTP API (the steady state most teams already have)."""

from __future__ import annotations

from typing import Any

from chaos_tui.probes.http_probe import HttpClientProbe
from chaos_tui.probes.prom_text import parse_exposition, select
from chaos_tui.probes.values import finite_or_none


class PrometheusMetricProbe(HttpClientProbe):
    """GETs `url` (a text exposition) and finds the samples called `metric` whose labels
    include all of `labels`. Several matching series are summed, so `labels: {code: "500"}`
    counts every route's 500s; none matching fails the sample. A NaN or infinite sum is a
    passing sample with no value."""

    def __init__(
        self,
        name: str,
        url: str,
        metric: str,
        labels: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.url, self.metric, self.labels = url, metric, dict(labels or {})
        super().__init__(name, f"{self.metric}{format_labels(self.labels)} from /metrics")
        if timeout_s is not None:
            self.timeout_s = timeout_s

    async def measure(self) -> float | None:
        response = await self.get_ok(self.url)
        found = select(parse_exposition(response.text), self.metric, self.labels)
        if not found:
            raise RuntimeError(f"no sample {self.metric}{format_labels(self.labels)}")
        return finite_or_none(sum(sample.value for sample in found))


class PrometheusQueryProbe(HttpClientProbe):
    """Asks `{url}/api/v1/query` for an instant PromQL `query`. The answer must be a scalar or
    exactly one series: no series, several, a range vector or an API error fail the sample
    with the reason. NaN (a rate over no data) is a passing sample with no value."""

    def __init__(self, name: str, url: str, query: str, timeout_s: float | None = None) -> None:
        self.url, self.query = url.rstrip("/"), query
        super().__init__(name, f"PromQL {' '.join(query.split())[:60]}")
        if timeout_s is not None:
            self.timeout_s = timeout_s

    async def measure(self) -> float | None:
        response = await self.http.get(f"{self.url}/api/v1/query", params={"query": self.query})
        try:
            answer = response.json()
        except ValueError:
            raise RuntimeError(f"HTTP {response.status_code}, not a Prometheus answer") from None
        if not isinstance(answer, dict):
            raise RuntimeError("not a Prometheus answer")
        if answer.get("status") != "success":
            # Prometheus answers 400/422/503 with the reason in the body: that is the message.
            kind = answer.get("errorType", f"HTTP {response.status_code}")
            raise RuntimeError(f"prometheus {kind}: {answer.get('error', 'no reason given')}")
        return instant_value(answer.get("data"), self.query)


def instant_value(data: Any, query: str) -> float | None:
    """The one number in an instant query's `data`, or a RuntimeError saying why not."""
    kind = data.get("resultType") if isinstance(data, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if kind == "scalar":
        return point_value(result)
    if kind != "vector" or not isinstance(result, list):
        raise RuntimeError(f"{query!r} gave a {kind or 'malformed'} result, not one number")
    if not result:
        raise RuntimeError(f"no series for {query!r}")
    if len(result) > 1:
        shown = ", ".join(format_labels(series.get("metric", {})) for series in result[:3])
        more = ", ..." if len(result) > 3 else ""
        raise RuntimeError(f"{len(result)} series for {query!r} ({shown}{more}): aggregate to one")
    return point_value(result[0].get("value"))


def point_value(point: Any) -> float | None:
    # A point is [unix time, "value as text"]: the text carries NaN and the infinities.
    if not (isinstance(point, list) and len(point) == 2 and isinstance(point[1], str)):
        raise RuntimeError(f"malformed point {point!r}")
    try:
        return finite_or_none(float(point[1]))
    except ValueError:
        raise RuntimeError(f"value {point[1]!r} is not a number") from None


def format_labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
