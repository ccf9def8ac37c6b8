"""HTTP probes: one client per probe for its whole life, and status plus latency of a GET."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from chaos_tui.core.contracts import Probe


class HttpClientProbe(Probe):
    """A probe that speaks HTTP: its client is made on first use (so `open` cannot fail) and
    kept, since a new client per sample costs about 20 ms of CPU."""

    _client: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class HttpProbe(HttpClientProbe):
    def __init__(self, name: str, url: str, expect_status: int | None = None) -> None:
        # The path only: a sandbox's port is picked when it starts, after this is shown.
        super().__init__(name, f"GET {urlsplit(url).path or '/'} (latency ms; value = status)")
        self.url = url
        self.expect_status = expect_status

    async def measure(self) -> float | None:
        response = await self.http.get(self.url)
        if self.expect_status is not None and response.status_code != self.expect_status:
            raise RuntimeError(f"HTTP {response.status_code}, expected {self.expect_status}")
        if self.expect_status is None and response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code}")
        return float(response.status_code)
