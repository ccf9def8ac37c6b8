"""HTTP probe: status and latency of one endpoint."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from chaos_tui.core.contracts import Probe


class HttpProbe(Probe):
    def __init__(self, name: str, url: str, expect_status: int | None = None) -> None:
        # The path only: a sandbox's port is picked when it starts, after this is shown.
        super().__init__(name, f"GET {urlsplit(url).path or '/'} (latency ms; value = status)")
        self.url = url
        self.expect_status = expect_status
        self._client: httpx.AsyncClient | None = None

    async def measure(self) -> float | None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        response = await self._client.get(self.url)
        if self.expect_status is not None and response.status_code != self.expect_status:
            raise RuntimeError(f"HTTP {response.status_code}, expected {self.expect_status}")
        if self.expect_status is None and response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code}")
        return float(response.status_code)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
