"""An OPA-compatible decision server for the sandbox: real Rego (regopy), OPA's REST shape.

    GET  /health              200 {} (policies are loaded before the port opens)
    POST /v1/data/{path}      {"input": ...} -> 200 {"result": value}, or 200 {} when the
                              document is undefined (OPA's answer, which callers must treat
                              as deny)
    GET  /v1/data/{path}      the same without input

Errors keep OPA's body shape, {"code": ..., "message": ...}: 400 invalid_parameter for a body
that is not JSON, 404 resource_not_found for other routes, 500 internal_error when Rego fails.

Run it as `python -m chaos_tui.sandbox.decision_server --port 8181`.
"""

from __future__ import annotations

import argparse
import logging

from chaos_tui.sandbox import asgi
from chaos_tui.sandbox.policy_engine import (
    InputError,
    PolicyEngine,
    PolicyError,
    default_policy_dir,
)

log = logging.getLogger("decision_server")

DATA = "/v1/data"


def make_app(engine: PolicyEngine) -> asgi.App:
    async def app(scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/health":
            if method != "GET":
                return await _error(send, 405, "method_not_allowed", "use GET")
            return await asgi.send_json(send, 200, {})
        if path != DATA and not path.startswith(DATA + "/"):
            return await _error(send, 404, "resource_not_found", f"no route {path}")
        if method not in ("GET", "POST"):
            return await _error(send, 405, "method_not_allowed", "use GET or POST")
        document = None
        if method == "POST":
            try:
                body = await asgi.read_body(receive)
                # OPA takes an empty body as "no input"; so do we.
                request = asgi.parse_json(body) if body.strip() else {}
            except asgi.BadRequest as exc:
                return await _error(send, 400, "invalid_parameter", str(exc))
            if not isinstance(request, dict):
                return await _error(
                    send, 400, "invalid_parameter", 'body must be a JSON object like {"input": ...}'
                )
            document = request.get("input")
        try:
            defined, value = engine.evaluate(path[len(DATA) :], document)
        except InputError as exc:
            return await _error(send, 400, "invalid_parameter", str(exc))
        except PolicyError as exc:
            log.warning("%s", exc)
            return await _error(send, 500, "internal_error", str(exc))
        except Exception as exc:  # e.g. an input regopy cannot take: still OPA's error shape
            log.exception("evaluating %s failed", path)
            return await _error(send, 500, "internal_error", f"{type(exc).__name__}: {exc}")
        await asgi.send_json(send, 200, {"result": value} if defined else {})

    return app


async def _error(send: asgi.Send, status: int, code: str, message: str) -> None:
    await asgi.send_json(send, status, {"code": code, "message": message})


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="decision_server", description="OPA-compatible decision server (Rego via regopy)"
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--policy-dir",
        default=None,
        help="directory of .rego files (default: the policies in the package)",
    )
    parser.add_argument("--ready-file", default=None)
    args = parser.parse_args()
    asgi.setup_logging()
    policy_dir = args.policy_dir or default_policy_dir()
    try:
        engine = PolicyEngine(policy_dir)
        sock = asgi.listen(args.host, args.port)
    except (PolicyError, asgi.ServeError) as exc:
        asgi.fail(parser.prog, str(exc))
    log.info(
        "serving %s on http://%s:%d (%s)",
        policy_dir,
        args.host,
        args.port,
        ", ".join(engine.modules),
    )
    asgi.serve(make_app(engine), sock, ready_file=args.ready_file)
    log.info("stopped")


if __name__ == "__main__":
    main()
