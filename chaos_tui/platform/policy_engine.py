"""Rego policies evaluated in-process with regopy (rego-cpp), answering the way OPA does.

`evaluate("chaos/gateway/allow", input)` returns (defined, value) for data.chaos.gateway.allow:
(True, False) when the rule's default applies, (False, None) when the document does not exist.

Two rego-cpp habits shape this module:
- A bare query `data.x.allow` fails, and regopy prints "undefined", when the value is `false`,
  because a query is a list of conditions and `false` is a failed one. OPA's REST API reports
  the value instead. A compiled entrypoint (or a binding, `x := data.x.allow`) gives `false`.
- Each `Interpreter.query` compiles the modules again (about 1 ms); a bundle built once per
  path and queried by entrypoint takes well under 0.1 ms. So each path gets its bundle on first
  use, and one interpreter runs them all with a new input each time.

Not thread-safe: the decision server calls it from its one event loop.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regopy  # no stubs: mypy's config ignores its types

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT64 = (-(2**63), 2**63 - 1)
MAX_INPUT_DEPTH = 100
_MAX_PLANS = 256  # paths come from HTTP requests: do not let them grow memory without bound
# rego-cpp reports a parse error as an S-expression, strings prefixed by their byte length:
# (error 11:gateway.rego|19|1 (errormsg 16:this is unclosed) ...)
_ERROR = re.compile(
    rb"\(error \d+:(?P<file>[^|]*)\|(?P<offset>\d+)\|\d+\s+\(errormsg (?P<len>\d+):"
)


class PolicyError(Exception):
    """The policies cannot be loaded, or a decision could not be computed."""


class InputError(ValueError):
    """The input document cannot be evaluated (the caller's fault, not the policy's)."""


def default_policy_dir() -> Path:
    """The policies shipped in the package (a link to infra/docker/opa/policies)."""
    return Path(__file__).resolve().parent.parent / "sandbox" / "policies"


def _interpreter() -> regopy.Interpreter:
    rego = regopy.Interpreter()
    # rego-cpp prints its errors to stdout by default; we raise them instead.
    rego.log_level = regopy.LogLevel.NONE
    return rego


@dataclass
class _Plan:
    bundle: Any | None  # a compiled entrypoint, or None to fall back to a binding query
    entrypoint: str
    query: str
    # The interpreter that built the bundle. Bundles are meant to outlive it (they can be
    # saved and loaded elsewhere), but holding it costs little and rules out a dangling one.
    builder: Any | None = None


class PolicyEngine:
    def __init__(self, policy_dir: str | Path) -> None:
        self.policy_dir = Path(policy_dir)
        self.modules = _read_modules(self.policy_dir)
        self._plans: dict[str, _Plan] = {}
        self._runner = _interpreter()
        # A request without input must see `input` undefined, and regopy cannot unset it
        # once set, so those get an interpreter of their own that never receives one.
        self._runner_no_input = _interpreter()
        self._compiler()  # parse everything now, so a broken policy fails at start-up

    def _compiler(self) -> regopy.Interpreter:
        rego = _interpreter()
        for name, source in self.modules.items():
            try:
                rego.add_module(name, source)
            except regopy.RegoError as exc:
                raise PolicyError(_describe(exc, self.modules, self.policy_dir)) from None
        return rego

    def evaluate(self, path: str, input: Any = None) -> tuple[bool, Any]:
        """The document at data.<path> (path "chaos/gateway/allow") for this input.

        Returns (defined, value). `input=None` means no input document, as in OPA.
        Raises InputError for an input nested too deeply, PolicyError when rego-cpp fails to
        evaluate (e.g. conflicting rule values).
        """
        plan = self._plan(path)
        if plan.bundle is not None:
            runner = self._runner_no_input if input is None else self._runner
            if input is not None:
                runner.set_input(_int64_safe(input))
            output = runner.query_bundle_entrypoint(plan.bundle, plan.entrypoint)
        else:  # rare (odd path segments, or all of data): slow, but right
            rego = self._compiler()
            if input is not None:
                rego.set_input(_int64_safe(input))
            output = rego.query(plan.query)
        if not output.ok():
            where = ".".join(["data", *filter(None, plan.entrypoint.split("/"))])
            raise PolicyError(f"evaluating {where} failed")
        if str(output) == "undefined":
            return False, None
        result = output.results[0]
        return True, (result.expressions[0] if plan.bundle is not None else result.bindings["x"])

    def _plan(self, path: str) -> _Plan:
        plan = self._plans.get(path)
        if plan is not None:
            return plan
        segments = [s for s in path.split("/") if s]
        entrypoint = "/".join(segments)
        # JSON string escapes are valid Rego string escapes, so any segment is quoted safely.
        query = "x := data" + "".join(f"[{json.dumps(s)}]" for s in segments)
        bundle = builder = None
        if segments and all(_IDENT.fullmatch(s) for s in segments):
            builder = self._compiler()
            try:
                built = builder.build(None, [entrypoint])
                bundle = built if built.ok() else None
            except regopy.RegoError:
                bundle = None
        plan = _Plan(bundle, entrypoint, query, builder)
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[path] = plan
        return plan


def _read_modules(policy_dir: Path) -> dict[str, str]:
    if not policy_dir.is_dir():
        problem = "is not a directory" if policy_dir.exists() else "does not exist"
        raise PolicyError(f"policy directory {policy_dir} {problem}")
    files = sorted(policy_dir.glob("*.rego"))
    if not files:
        raise PolicyError(f"no .rego files in {policy_dir}")
    modules = {}
    for file in files:
        try:
            modules[file.name] = file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read {file}: {exc}") from None
    return modules


def _describe(exc: regopy.RegoError, modules: dict[str, str], policy_dir: Path) -> str:
    """The first error as FILE:LINE:COL: MESSAGE, from rego-cpp's S-expression."""
    raw = str(exc).encode()
    match = _ERROR.search(raw)
    if match is None:
        return f"{policy_dir}: {' '.join(str(exc).split())}"
    message = raw[match.end() : match.end() + int(match["len"])].decode(errors="replace")
    name, offset = match["file"].decode(errors="replace"), int(match["offset"])
    source = modules.get(name, "").encode()[:offset]
    line = source.count(b"\n") + 1
    col = offset - (source.rfind(b"\n") + 1) + 1
    return f"{policy_dir / name}:{line}:{col}: {message}"


def _int64_safe(value: Any, depth: int = 0) -> Any:
    """The input as regopy can take it. regopy wraps integers outside int64 silently (10**30
    became 5076944270305263616): those become floats, as other JSON readers make them. Its
    converter recurses once per level, so depth is bounded here rather than by a crash."""
    if depth > MAX_INPUT_DEPTH:
        raise InputError(f"input nested deeper than {MAX_INPUT_DEPTH} levels")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else float(value)
    if isinstance(value, dict):
        return {k: _int64_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_int64_safe(v, depth + 1) for v in value]
    return value
