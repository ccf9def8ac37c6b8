"""opa_restart: while the decision server is down the gateway must deny, and never allow
what the policy denies; allow must come back soon after the decision server does."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from chaos_tui.core.contracts import Fault, Presets, Probe, RunContext, ScenarioParams, hold_s_field
from chaos_tui.core.errors import UsageError
from chaos_tui.core.lazy import lazy
from chaos_tui.core.model import InvariantResult, InvariantSpec
from chaos_tui.core.platform_target import PlatformTarget, ServiceFaultParams
from chaos_tui.platform.policy import POLICY_PATH, policy_answers
from chaos_tui.probes.http_probe import HttpClientProbe, HttpProbe
from chaos_tui.scenarios.base import PlatformScenario
from chaos_tui.scenarios.load import SteadyLoad

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy("httpx")  # loaded at its first use: the picker lists this without it


def _request(role: str, action: str, resource_tenant: str) -> dict:
    """A caller of tenant acme with this role, acting on a resource of some tenant."""
    return {
        "subject": {"role": role},
        "tenant": "acme",
        "action": action,
        "resource": {"tenant": resource_tenant},
    }


# A spread of requests: some the policy allows, some it denies. What each should get is not
# written here but asked of the policy itself (see `expected`), so the two cannot drift.
REQUESTS: list[dict] = [
    _request("admin", "delete", "globex"),
    _request("viewer", "read", "acme"),
    _request("viewer", "write", "acme"),
    _request("editor", "write", "acme"),
    _request("editor", "write", "globex"),
    _request("guest", "read", "acme"),
]


class OpaRestartParams(ScenarioParams):
    decision_rate: float = Field(20.0, gt=0, le=500, description="gateway decisions per second")
    hold_s: float = hold_s_field(
        3.0, 60, "how long OPA stays dead (mode=kill); how long the restart's lease is held"
    )
    # restart: `docker restart` (SIGTERM, SIGKILL after 10 s, started again at once: OPA is
    # down for as long as it takes to stop and boot). kill: SIGKILL, started after hold_s.
    mode: Literal["auto", "restart", "kill"] = Field(
        "auto",
        description="how OPA goes down: restart (docker restart) or kill (start it after "
        "hold_s); auto: restart on the Docker target, kill on the sandbox",
    )
    resume_limit_s: float = Field(
        10.0, gt=0, description="allow must come back within this long of OPA answering again"
    )


Params = OpaRestartParams  # the name tests and callers import


@dataclass(frozen=True, slots=True)
class Decision:
    sent_at: float
    answered_at: float
    request: int  # index into REQUESTS
    answer: str  # allow | deny | error (the gateway itself did not answer)
    reason: str


class DecisionStream(SteadyLoad):
    """Asks the gateway for a decision on each request in turn and keeps every answer."""

    def __init__(self, gateway_url: str, rate_per_s: float) -> None:
        super().__init__(rate_per_s, "decisions")
        self.url = gateway_url + "/v1/decide"
        self.decisions: list[Decision] = []
        self._http = httpx.AsyncClient(timeout=2.0)

    async def tick(self, n: int) -> None:
        index = n % len(REQUESTS)
        sent = time.time()
        try:
            response = await self._http.post(self.url, json=REQUESTS[index])
            body = response.json() if response.status_code == 200 else {}
            allow = body.get("allow")
            if allow is True or allow is False:
                answer, reason = ("allow" if allow else "deny"), str(body.get("reason", ""))
            else:
                answer, reason = "error", f"HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            answer, reason = "error", str(exc) or type(exc).__name__
        self.decisions.append(Decision(sent, time.time(), index, answer, reason))

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            await self._http.aclose()


class AllowProbe(HttpClientProbe):
    """Passes while the gateway allows a request the policy allows: fails closed shows up
    here as a failure, and the recovery timings are read from it."""

    def __init__(self, name: str, gateway_url: str, request: dict) -> None:
        super().__init__(name, "gateway allows a request the policy allows")
        self.url = gateway_url + "/v1/decide"
        self.request = request

    async def measure(self) -> float | None:
        response = await self.http.post(self.url, json=self.request)
        body = response.json()
        if body.get("allow") is not True:
            raise RuntimeError(f"denied: {body.get('reason', response.status_code)}")
        return 1.0


def expected() -> list[bool]:
    """What the policy itself says about each request: the oracle for every answer."""
    return policy_answers(POLICY_PATH, REQUESTS)


class OpaRestart(PlatformScenario):
    name = "opa_restart"
    order = 10
    hypothesis = (
        "When the policy engine dies, the gateway fails closed: every decision while OPA is "
        "down is deny, nothing the policy denies is ever allowed, and allow comes back within "
        "10 s of OPA answering again."
    )
    profile = "chaos-opa"
    presets: ClassVar[Presets] = {"plan": {"hold_s": 5.0}}  # the platform plan holds OPA down 5 s
    invariant_budget_s = 60.0
    runbook = "chaos_tui/runbooks/opa_restart.md"
    Params = OpaRestartParams
    params: OpaRestartParams
    recovery_probe = "allow_path"

    def __init__(self, params: OpaRestartParams | None = None) -> None:
        super().__init__(params)
        self.stream: DecisionStream | None = None
        self._should_allow: list[bool] | None = None  # the policy's answers, asked once

    def probes(self, target: PlatformTarget) -> list[Probe]:
        allowed = REQUESTS[0]  # an admin: allowed by any sane policy, checked in steady state
        at = target.endpoints(self.profile)
        return [
            HttpProbe("opa", at.opa_url + "/health"),
            HttpProbe("gateway", at.gateway_url + "/health"),
            AllowProbe("allow_path", at.gateway_url, allowed),
        ]

    def steady_state(self) -> dict[str, float | None]:
        return {"opa": None, "gateway": None, "allow_path": None}

    def target_defaults(self, target: PlatformTarget) -> dict[str, Any]:
        """mode=auto: `docker restart` where the target restarts a part in place (the
        request's fault), else a kill and a start (the sandbox's processes)."""
        return {"mode": "restart" if target.restarts_in_place else "kill"}

    def mode_on(self, target: PlatformTarget) -> str:
        mode = self.params.mode
        return self.target_defaults(target)["mode"] if mode == "auto" else mode

    def faults(self, target: PlatformTarget) -> list[Fault]:
        params = ServiceFaultParams(service="opa", hold_s=self.params.hold_s)
        if self.mode_on(target) == "kill":
            return [target.hard_restart(params)]
        try:
            return [target.restart(params)]
        except UsageError as exc:
            raise UsageError(f"{self.name}: mode=restart refused: {exc}") from None

    def workload(self) -> str:
        return (
            f"{self.params.decision_rate:g} gateway decisions/s over {len(REQUESTS)} "
            "requests, allowed and denied"
        )

    async def start_workload(self, ctx: RunContext) -> None:
        mode = ctx.plan.params.get("mode", self.params.mode)
        fault = ctx.plan.faults[0].description if ctx.plan.faults else ""
        self.measurements["OPA fault mode"] = f"{mode}: {fault}" if fault else mode
        self.stream = DecisionStream(self.endpoints(ctx).gateway_url, self.params.decision_rate)
        self.stream.start()
        ctx.note(
            f"asking the gateway {self.params.decision_rate:g} decisions/s over "
            f"{len(REQUESTS)} requests, allowed and denied"
        )

    async def stop_workload(self, ctx: RunContext) -> None:
        if self.stream is not None:
            await self.stream.stop()

    def invariants(self) -> list[InvariantSpec]:
        return [
            InvariantSpec(
                name="fails_closed",
                description="every decision while OPA is down is deny (not allow, not unanswered)",
                limit=0,
                unit="decisions",
            ),
            InvariantSpec(
                name="never_allows_denied",
                description="no allow, ever, for a request the policy denies",
                limit=0,
                unit="allows",
            ),
            InvariantSpec(
                name="allow_resumes",
                description="allow comes back, counted from OPA answering again",
                limit=self.params.resume_limit_s,
                unit="s",
            ),
        ]

    def _policy(self) -> list[bool]:
        if self._should_allow is None:
            self._should_allow = expected()
        return self._should_allow

    def _split(self, ctx: RunContext) -> tuple[list[Decision], dict[str, list[Decision]]]:
        """Every decision so far, and by phase of the outage (as far as it is known now: a
        decision counted "while OPA down" stays there, since OPA's last failed check only
        moves later and its first answer again, once seen, stays)."""
        decisions = list(self.stream.decisions) if self.stream else []
        down_at, last_down, back_at = opa_down_span(ctx, self._restarted(ctx))
        phases: dict[str, list[Decision]] = {
            "before fault": [],
            "while OPA down": [],
            "across an edge": [],
            "after OPA back": [],
        }
        for d in decisions:
            phases[phase_of(d, down_at, last_down, back_at)].append(d)
        for phase, items in phases.items():
            self.measurements[f"decisions {phase}"] = count_answers(items)
        self.measurements["OPA down (s)"] = (
            round(back_at - down_at, 3) if down_at and back_at else None
        )
        return decisions, phases

    @staticmethod
    def _restarted(ctx: RunContext) -> bool:
        return ctx.plan.params.get("mode") == "restart"

    def _fails_closed(self, during: list[Decision]) -> InvariantResult:
        not_denied = [d for d in during if d.answer != "deny"]
        unanswered = sum(d.answer == "error" for d in not_denied)
        result = self.judge(
            "fails_closed",
            len(not_denied) if during else None,
            f"{len(during)} decisions while OPA was down: {len(not_denied) - unanswered} "
            f"allowed, {unanswered} unanswered"
            if during
            else "no decision was made while OPA was down: nothing to judge",
        )
        if not_denied:
            result.broke_at = min(d.answered_at for d in not_denied)
        return result

    def _never_allows_denied(self, decisions: list[Decision]) -> InvariantResult:
        should_allow = self._policy()
        wrongly = [d for d in decisions if d.answer == "allow" and not should_allow[d.request]]
        result = self.judge("never_allows_denied", len(wrongly), _example(wrongly))
        if wrongly:
            result.broke_at = min(d.answered_at for d in wrongly)
        return result

    async def judge_live(self, ctx: RunContext) -> list[InvariantResult]:
        """fails_closed once OPA is seen down (one decision not denied breaks it for good),
        and never_allows_denied from the start (one wrong allow breaks it for good);
        allow_resumes waits for OPA to come back, so only the verdict judges it."""
        decisions, phases = self._split(ctx)
        live = [self._never_allows_denied(decisions)]
        if phases["while OPA down"]:
            live.insert(0, self._fails_closed(phases["while OPA down"]))
        return live

    async def check_invariants(self, ctx: RunContext) -> list[InvariantResult]:
        decisions, phases = self._split(ctx)
        should_allow = self._policy()
        _, _, back_at = opa_down_span(ctx, self._restarted(ctx))
        during = phases["while OPA down"]
        not_denied = [d for d in during if d.answer != "deny"]
        resume = await self._allow_resume_s(ctx, decisions, should_allow, back_at)
        ctx.note(
            f"decisions: {len(decisions)}, {len(during)} while OPA was down, "
            f"{len(not_denied)} of them not deny"
        )
        return [
            self._fails_closed(during),
            self._never_allows_denied(decisions),
            self.judge(
                "allow_resumes",
                resume,
                ""
                if resume is not None
                else f"no allow within {self.params.resume_limit_s:g}s of OPA answering again",
            ),
        ]

    async def _allow_resume_s(
        self,
        ctx: RunContext,
        decisions: list[Decision],
        should_allow: list[bool],
        back_at: float | None,
    ) -> float | None:
        """Seconds from OPA answering again to the gateway's first allow of an allowed
        request: a decision of the stream, or the allow_path probe, which goes on sampling
        while this waits (so a run with no load after the heal is still judged)."""
        if back_at is None:
            return None
        deadline = back_at + self.params.resume_limit_s
        while True:
            allows = [
                d.answered_at
                for d in decisions
                if d.answer == "allow" and should_allow[d.request] and d.sent_at >= back_at
            ]
            allows += [x.t for x in ctx.timeline.since("allow_path", back_at) if x.ok]
            if allows:
                return round(max(0.0, min(allows) - back_at), 3)
            if time.time() > deadline:
                return None
            await asyncio.sleep(0.1)


def opa_down_span(
    ctx: RunContext, restart: bool = False
) -> tuple[float | None, float | None, float | None]:
    """When OPA was surely down (its first and last failed health check after the fault) and
    when it was first seen back. Between the last failure and the first success it may
    already have answered: decisions there are not held to deny."""
    down_at, back_at = ctx.timeline.outage("opa")
    if down_at is None:
        return None, None, None
    failed = [
        s.t
        for s in ctx.timeline.samples("opa")
        if not s.ok and down_at <= s.t and (back_at is None or s.t < back_at)
    ]
    if restart:
        # `docker restart` returns once the container runs again, while OPA may still be
        # booting: its return says nothing about when OPA went down. The first failed check
        # may have begun a moment before the SIGTERM landed, but it ended with OPA going
        # down, and a restart lets OPA answer again only once it has booted: surely down
        # from the start of the check after that one.
        return failed[min(1, len(failed) - 1)], max(failed), back_at
    # A health check may have begun a moment before the kill landed: OPA is surely down
    # only once the inject returned too.
    applied = ctx.timeline.windows[0].applied_at
    return max(down_at, applied or down_at), max(failed), back_at


def phase_of(
    d: Decision, down_at: float | None, last_down: float | None, back_at: float | None
) -> str:
    """Only a decision asked and answered while OPA was surely down must be deny; one that
    straddles either edge may have reached a live OPA, so it is counted apart."""
    if down_at is None or d.answered_at < down_at:
        return "before fault"
    if back_at is not None and d.sent_at >= back_at:
        return "after OPA back"
    if last_down is not None and d.sent_at >= down_at and d.answered_at <= last_down:
        return "while OPA down"
    return "across an edge"


def count_answers(items: list[Decision]) -> dict[str, int]:
    return {kind: sum(d.answer == kind for d in items) for kind in ("allow", "deny", "error")}


def _example(items: list[Decision]) -> str:
    if not items:
        return ""
    return f"e.g. {json.dumps(REQUESTS[items[0].request])} allowed ({items[0].reason})"
