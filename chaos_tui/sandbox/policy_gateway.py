"""policy-gateway: asks OPA about every request and fails closed.

    POST /v1/decide   body = the input document -> 200 {"allow": bool, "reason": str}
    GET  /health      200 {"status": "ok"}: the gateway's own health, whatever OPA's

Only an OPA answer of 200 with `"result": true` allows. A timeout, a refused connection, any
other status, an undefined document (no "result") or any other value denies, and the reason
says which. Nothing is cached: a cached allow would outlive a policy change or an OPA outage,
which is exactly what the opa_restart scenario checks.

`--test-fail-open` turns the gateway into the bug the scenario must catch: it allows whenever
OPA cannot be asked. It exists for the scenario's negative test and nothing else.

Run it as `python -m chaos_tui.sandbox.policy_gateway --port 8080 --opa-url http://127.0.0.1:8181`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import httpx

from chaos_tui.sandbox import asgi

log = logging.getLogger("policy_gateway")

DEFAULT_POLICY_PATH = "chaos/gateway/allow"


class Gateway:
    def __init__(
        self,
        opa_url: str,
        policy_path: str = DEFAULT_POLICY_PATH,
        timeout_s: float = 0.5,
        test_fail_open: bool = False,
    ) -> None:
        self.url = f"{opa_url.rstrip('/')}/v1/data/{policy_path.strip('/')}"
        self.timeout_s = timeout_s
        self.test_fail_open = test_fail_open
        # One client for every decision: a new connection per request would cost more than
        # the decision. trust_env=False: an HTTP_PROXY in the environment must not carry our
        # loopback calls somewhere else.
        self.client = httpx.AsyncClient(timeout=timeout_s, trust_env=False)

    async def decide(self, input_json: bytes) -> tuple[bool, str]:
        """(allow, reason) for an input document given as JSON text."""
        payload = b'{"input":' + input_json + b"}"
        try:
            # httpx's timeout bounds each phase; this bounds the whole exchange.
            async with asyncio.timeout(self.timeout_s):
                response = await self.client.post(
                    self.url, content=payload, headers={"content-type": "application/json"}
                )
        except TimeoutError:
            return self._unreachable(f"opa unreachable: no answer within {self.timeout_s:g}s")
        except httpx.HTTPError as exc:
            detail = str(exc) or type(exc).__name__
            return self._unreachable(f"opa unreachable: {type(exc).__name__}: {detail}")
        if response.status_code != 200:
            return self._unreachable(f"opa status {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            return False, "opa bad response: not JSON"
        if not isinstance(answer, dict):
            return False, "opa bad response: not a JSON object"
        if "result" not in answer:
            return False, "opa undefined"
        if answer["result"] is True:  # `is`: 1, "true" or {"allow": true} are not an allow
            return True, "policy allow"
        return False, "policy deny"

    def _unreachable(self, reason: str) -> tuple[bool, str]:
        if self.test_fail_open:
            return True, f"TEST FAIL-OPEN allow ({reason})"
        return False, reason

    async def close(self) -> None:
        await self.client.aclose()


def make_app(gateway: Gateway) -> asgi.App:
    async def app(scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/health":
            if method != "GET":
                return await asgi.send_json(send, 405, {"error": "use GET"})
            return await asgi.send_json(send, 200, {"status": "ok"})
        if path != "/v1/decide":
            return await asgi.send_json(send, 404, {"error": f"no route {path}"})
        if method != "POST":
            return await asgi.send_json(send, 405, {"error": "use POST"})
        try:
            body = await asgi.read_body(receive)
            asgi.parse_json(body)  # only a valid document goes to OPA, unchanged
        except asgi.BadRequest as exc:
            # Still a decision in the body: a careless client that ignores the status denies.
            return await asgi.send_json(
                send, 400, {"allow": False, "reason": f"bad request: {exc}"}
            )
        try:
            allow, reason = await gateway.decide(body)
        except Exception as exc:  # whatever went wrong, the answer is deny
            log.exception("decision failed")
            allow, reason = False, f"gateway error: {type(exc).__name__}"
        await asgi.send_json(send, 200, {"allow": allow, "reason": reason})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="policy_gateway",
        description="Policy gateway: asks OPA for every decision, fails closed",
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--opa-url", required=True, help="e.g. http://127.0.0.1:8181")
    parser.add_argument(
        "--policy-path",
        default=DEFAULT_POLICY_PATH,
        help="the document to ask for, under /v1/data/",
    )
    parser.add_argument("--opa-timeout-s", type=float, default=0.5)
    parser.add_argument("--test-fail-open", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", default=None)
    args = parser.parse_args()
    asgi.setup_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every request at INFO
    if not args.opa_url.startswith(("http://", "https://")):
        asgi.fail(
            parser.prog, f"--opa-url must be an http:// or https:// URL, not {args.opa_url!r}"
        )
    if args.opa_timeout_s <= 0:
        asgi.fail(parser.prog, "--opa-timeout-s must be positive")
    try:
        sock = asgi.listen(args.host, args.port)
    except asgi.ServeError as exc:
        asgi.fail(parser.prog, str(exc))
    gateway = Gateway(args.opa_url, args.policy_path, args.opa_timeout_s, args.test_fail_open)
    if args.test_fail_open:
        log.warning(
            "!!! TEST-ONLY --test-fail-open: this gateway ALLOWS every request while OPA "
            "cannot be asked. It is broken on purpose; never run it outside a test. !!!"
        )
    log.info(
        "serving on http://%s:%d, asking %s (timeout %gs)",
        args.host,
        args.port,
        gateway.url,
        args.opa_timeout_s,
    )
    asgi.serve(make_app(gateway), sock, ready_file=args.ready_file, on_shutdown=gateway.close)
    log.info("stopped")


if __name__ == "__main__":
    main()
