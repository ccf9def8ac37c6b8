"""HTTP probes: one client per probe for its whole life, and the status and latency of a
request."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from chaos_tui.core.contracts import Probe
from chaos_tui.core.lazy import lazy
from chaos_tui.http_client import shared_tls

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy("httpx")  # loaded at its first use: the picker lists this without it

# What a scenario file's `http:` probe expects when it names no status.
EXPECT_2XX = range(200, 300)


class HttpClientProbe(Probe):
    """A probe that speaks HTTP: its client is made on first use (so `open` cannot fail) and
    kept, since a new client per sample costs about 20 ms of CPU; every probe's client shares
    one TLS context (http_client.py)."""

    _client: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, verify=shared_tls())
        return self._client

    async def get_ok(self, url: str, **params: str) -> httpx.Response:
        """GET that fails the sample on any status but 2xx (for probes that read a body)."""
        response = await self.http.get(url, params=params or None)
        if not response.is_success:
            raise RuntimeError(f"HTTP {response.status_code} from {urlsplit(url).path or '/'}")
        return response

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class HttpProbe(HttpClientProbe):
    """One request per sample. `expect_status` is a code or a collection of codes; None accepts
    anything below 400 (the built-in scenarios' health checks). The value is the status code,
    or with `value="latency"` the request's time in ms (what `max:` in a scenario file limits).
    `timeout_ms` bounds the whole sample, connection included."""

    def __init__(
        self,
        name: str,
        url: str,
        expect_status: int | Collection[int] | None = None,
        *,
        method: str = "GET",
        body: str | bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_ms: float | None = None,
        value: Literal["status", "latency"] = "status",
    ) -> None:
        self.method = method.upper()
        shown = "status" if value == "status" else "latency ms"
        # The path only: a sandbox's port is picked when it starts, after this is shown.
        super().__init__(
            name, f"{self.method} {urlsplit(url).path or '/'} (latency ms; value = {shown})"
        )
        self.url = url
        self.expect: Collection[int] | None = (
            (expect_status,) if isinstance(expect_status, int) else expect_status
        )
        self.body = body
        self.headers = dict(headers or {})
        self.value = value
        if timeout_ms is not None:
            if timeout_ms <= 0:
                raise ValueError(f"timeout_ms must be positive, not {timeout_ms:g}")
            self.timeout_s = timeout_ms / 1000.0

    async def measure(self) -> float | None:
        clock = time.perf_counter()
        response = await self.http.request(
            self.method, self.url, content=self.body, headers=self.headers or None
        )
        latency_ms = (time.perf_counter() - clock) * 1000.0
        status = response.status_code
        if self.expect is not None and status not in self.expect:
            raise RuntimeError(f"HTTP {status}, expected {describe_codes(self.expect)}")
        if self.expect is None and status >= 400:
            raise RuntimeError(f"HTTP {status}")
        return float(status) if self.value == "status" else round(latency_ms, 3)


def describe_codes(codes: Collection[int]) -> str:
    if isinstance(codes, range) and codes.step == 1 and len(codes) > 2:
        return f"{codes.start}-{codes.stop - 1}"
    return " or ".join(str(code) for code in sorted(codes))
