"""The agent's admin API. Every route but /health needs `Authorization: Bearer <token>`,
checked by the Gate in front of it before any body is read (and again here)."""

from __future__ import annotations

import asyncio
import secrets
import time

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from chaos_tui import __version__
from chaos_tui.agent import protocol as p
from chaos_tui.agent.gate import Gate
from chaos_tui.agent.injectors import ProxyDown
from chaos_tui.agent.leases import LeaseBook, LeaseRefused
from chaos_tui.agent.protocol import (
    EndedLease,
    HaltState,
    HealResults,
    Health,
    Lease,
    LeaseRequest,
    LiveInjectors,
    ProxyRequest,
    ProxyView,
    Status,
)
from chaos_tui.agent.proxy import ProxyManager, ProxyProblem
from chaos_tui.agent.worker_injectors import live_injectors


def header_text(text: str) -> str:
    """Text as a header value can carry it: printable ASCII, anything else (a path's CJK or
    accented letters, a newline) escaped as Python writes it (\\u65e5, \\n). A header is
    sent as latin-1 and may not hold control characters: raw, such text made the agent
    answer 500 for a heal that had worked."""
    return "".join(
        c if c.isascii() and c.isprintable() else c.encode("unicode_escape").decode("ascii")
        for c in text
    ).strip()


def make_api(book: LeaseBook, proxies: ProxyManager, token: str, pid: int) -> Gate:
    """The routes behind their Gate: what uvicorn serves."""
    started_at = time.time()
    bearer = HTTPBearer(auto_error=False)

    # async: FastAPI runs a plain `def` dependency on a worker thread, a thread hop on every
    # request (it showed as the largest single cost of a lease request in a profile).
    async def authorised(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        given = creds.credentials if creds is not None else ""
        # Constant time: the comparison must not tell how much of a guess was right. The
        # Gate checked already; an empty token is refused here too, in case one got this far.
        if not (secrets.compare_digest(given.encode(), token.encode()) and token and given):
            raise HTTPException(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )

    # The schema is served like every other route: behind the token (no open /docs either).
    api = FastAPI(
        title="chaos-tui agent",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        description="Fault leases with TTLs, healed by the agent whatever happens to "
        "whoever asked for them.",
    )
    guarded = [Depends(authorised)]

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each bad input back, which can be large or not JSON
        # at all (then the error itself was a 500): where and what is enough.
        return JSONResponse(
            status_code=422,
            content={
                "detail": [
                    {
                        "loc": list(e.get("loc", ())),
                        "msg": e.get("msg", ""),
                        "type": e.get("type", ""),
                    }
                    for e in exc.errors()
                ]
            },
        )

    @api.get("/openapi.json", dependencies=guarded, include_in_schema=False)
    async def schema() -> dict:
        return api.openapi()

    @api.get(p.HEALTH, response_model=Health)
    async def health() -> Health:
        return Health(ok=book.reaper_error is None, version=__version__)

    @api.get(p.STATUS, response_model=Status, dependencies=guarded)
    async def status() -> Status:
        return Status.model_validate(
            {
                "ok": book.reaper_error is None,
                "version": __version__,
                "pid": pid,
                "leases": len(book.leases),
                "halted": book.halted,
                "started_at": started_at,
                "recovered": book.recovered,
                "reaper_error": book.reaper_error,
            }
        )

    @api.get(p.KINDS, dependencies=guarded)
    async def kinds() -> dict[str, str]:
        return {name: injector.description for name, injector in book.injectors.items()}

    @api.get(p.LEASES, response_model=list[Lease], dependencies=guarded)
    async def list_leases() -> list[Lease]:
        return list(book.leases.values())

    @api.post(
        p.LEASES,
        response_model=Lease,
        status_code=201,
        dependencies=guarded,
        responses={400: {}, 409: {}, 502: {}, 507: {}},
    )
    async def create_lease(request: LeaseRequest) -> Lease:
        try:
            return await book.create(request)
        except LeaseRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @api.get(
        p.lease_path("{lease_id}"), response_model=Lease, dependencies=guarded, responses={404: {}}
    )
    async def get_lease(lease_id: str) -> Lease:
        lease = book.leases.get(lease_id)
        if lease is None:
            raise HTTPException(404, f"no live lease {lease_id!r}")
        return lease

    @api.delete(
        p.lease_path("{lease_id}"),
        status_code=204,
        dependencies=guarded,
        responses={404: {}, 502: {}},
    )
    async def delete_lease(lease_id: str) -> Response:
        try:
            healed = await book.heal(lease_id, "owner")
        except RuntimeError as exc:
            raise HTTPException(502, f"heal failed: {exc}") from None
        if healed is None:
            raise HTTPException(
                404, f"no live lease {lease_id!r} (already healed? see GET /history?lease_id=...)"
            )
        # Healed. A journal file the disk would not let go is a warning, not a failure.
        headers = {"X-Chaos-Warning": header_text(healed.error[:300])} if healed.error else None
        return Response(status_code=204, headers=headers)

    @api.get(p.HISTORY, response_model=list[EndedLease], dependencies=guarded)
    async def history(
        lease_id: str | None = Query(None, max_length=64),
        run_id: str | None = Query(None, max_length=64),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[EndedLease]:
        """Leases that ended: who ended each (owner, ttl, owner-died, halt, heal-all,
        shutdown, leftover, guardian, apply-failed), when, and any error."""
        found = await asyncio.to_thread(book.history.find, lease_id, run_id)
        ended = []
        for entry in found[-limit:]:
            try:
                ended.append(EndedLease.model_validate(entry))
            except ValidationError:
                continue  # a line this agent did not write: never a 500 for it
        return ended

    @api.post(p.HEAL_ALL, response_model=HealResults, dependencies=guarded)
    async def heal_all() -> HealResults:
        return HealResults.model_validate({"results": await book.heal_all("heal-all")})

    @api.post(p.HALT, response_model=HealResults, dependencies=guarded)
    async def halt() -> HealResults:
        return HealResults.model_validate({"results": await book.halt()})

    @api.get(p.HALT, response_model=HaltState, dependencies=guarded)
    async def halt_state() -> HaltState:
        return HaltState(halted=book.halted)

    @api.delete(p.HALT, response_model=HaltState, dependencies=guarded)
    async def release_halt() -> HaltState:
        book.release_halt()
        return HaltState(halted=False)

    @api.get(p.INJECTORS, response_model=LiveInjectors, dependencies=guarded)
    async def injectors() -> LiveInjectors:
        """What job workers act on now (they poll this every `poll_s`)."""
        return live_injectors(book.leases.values(), book.halted)

    @api.get(p.PROXIES, response_model=list[ProxyView], dependencies=guarded)
    async def list_proxies() -> list[ProxyView]:
        return [ProxyView(**p.to_json()) for p in proxies.proxies.values()]

    @api.post(
        p.PROXIES,
        response_model=ProxyView,
        status_code=201,
        dependencies=guarded,
        responses={400: {}},
    )
    async def create_proxy(request: ProxyRequest) -> ProxyView:
        try:
            proxy = await proxies.create(request.name, request.listen, request.upstream)
        except ProxyProblem as exc:
            raise HTTPException(400, str(exc)) from None
        return ProxyView(**proxy.to_json())

    @api.get(
        p.proxy_path("{name}"), response_model=ProxyView, dependencies=guarded, responses={404: {}}
    )
    async def get_proxy(name: str) -> ProxyView:
        proxy = proxies.proxies.get(name)
        if proxy is None:
            raise HTTPException(404, f"no proxy {name!r}")
        return ProxyView(**proxy.to_json())

    @api.delete(p.proxy_path("{name}"), status_code=204, dependencies=guarded, responses={404: {}})
    async def delete_proxy(name: str) -> Response:
        if name not in proxies.proxies:
            raise HTTPException(404, f"no proxy {name!r}")
        for lease in list(book.leases.values()):  # its toxics and downs end with it
            if lease.kind.startswith("proxy.") and name in ProxyDown.names(lease.params):
                try:
                    await book.heal(lease.id, "owner")
                except RuntimeError:
                    pass
        await proxies.delete(name)
        return Response(status_code=204)

    return Gate(api, token)
