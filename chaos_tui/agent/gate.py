"""The agent's front door, in raw ASGI in front of FastAPI: the token is checked before a
single byte of the body is read, a body is capped at 1 MB, and it must be strict JSON.

Without it, FastAPI read and parsed a body before its auth dependency ran: a 60 MB body with
no token cost the agent 1.7 GB and blocked its event loop (and so its reaper) for seconds.
Python's JSON reader also takes NaN and Infinity, which then broke the error response (500).

    app = Gate(fastapi_app, token)   # what uvicorn serves
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import MutableMapping
from typing import Any, NoReturn

from chaos_tui.agent.protocol import HEALTH
from chaos_tui.sandbox.asgi import App, Receive, Scope, Send

MAX_BODY = 1 << 20  # no request of this API comes anywhere near it
OPEN_ROUTES = {("GET", HEALTH)}  # liveness only; it reads no body


class _NotStrict(ValueError):
    pass


def _no_constant(name: str) -> NoReturn:
    raise _NotStrict(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # e.g. 1e400
        raise _NotStrict(f"{text[:40]} is too large for a number")
    return value


def strict_json_problem(body: bytes) -> str | None:
    """Why the body is not strict JSON (None if it is)."""
    try:
        json.loads(body.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float)
    except _NotStrict as exc:
        return f"request body is refused: {exc}"
    except (ValueError, UnicodeDecodeError) as exc:  # ValueError also: ints of 4300+ digits
        return f"request body is not valid JSON: {str(exc)[:120]}"
    except RecursionError:
        return "request body is nested too deeply"
    return None


def bearer_matches(headers: list[tuple[bytes, bytes]], token: bytes) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time. An empty token never
    matches anything, even if one got this far."""
    given = b""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            if scheme.lower() == b"bearer":
                given = credentials.strip()
            break
    # compare_digest first, always: how long it takes must not depend on the guess.
    return secrets.compare_digest(given, token) and bool(token) and bool(given)


class Gate:
    def __init__(self, app: App, token: str, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.token = token.encode()
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if (scope["method"], scope["path"]) not in OPEN_ROUTES and not bearer_matches(
            scope["headers"], self.token
        ):
            return await _refuse(
                send, 401, "a valid bearer token is required", ((b"www-authenticate", b"Bearer"),)
            )
        declared = _content_length(scope["headers"])
        if declared is not None and declared > self.max_body:
            return await _refuse(send, 413, f"request body over {self.max_body} bytes")
        body, whole = await self._read(receive)
        if not whole:
            if body is None:
                return  # the client went away: nobody to answer
            return await _refuse(send, 413, f"request body over {self.max_body} bytes")
        if body:
            problem = strict_json_problem(body)
            if problem:
                return await _refuse(send, 422, problem)
        return await self.app(scope, _replay(body or b"", receive), send)

    async def _read(self, receive: Receive) -> tuple[bytes | None, bool]:
        """(body, True) when it fit; (None, False) on a disconnect; (b"", False) as soon as
        it passes the cap (a chunked body declares no length, so it is counted)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), True


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses such a request before us
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, once; then the server's own receive (e.g. a disconnect)."""
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(
    send: Send, status: int, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Answer and close: the body the client may still be sending is never read."""
    payload = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
