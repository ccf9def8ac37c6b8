"""The scenario engine: steady state -> workload -> inject -> hold -> heal -> recover -> verify.

Heal always runs: after a failed invariant, an exception, a blown budget or a cancellation
(the faces cancel the run task on SIGINT / SIGTERM). The result says what happened and whether
the heal held.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from chaos_tui.core.contracts import Fault, FaultLease, Probe, RunContext, Scenario, Target
from chaos_tui.core.events import (
    EmitFn,
    FaultHealed,
    FaultInjected,
    InvariantChecked,
    LiveJudgement,
    Note,
    PhaseChanged,
    RunEvent,
    RunFinished,
    RunPlanned,
    SampleTaken,
)
from chaos_tui.core.limits import PROBE_RATE_DEFAULT_HZ
from chaos_tui.core.model import (
    FaultHealReport,
    HealReport,
    InjectionWindow,
    InvariantResult,
    OperatorNote,
    RunResult,
)
from chaos_tui.core.plan import RunPlan, plan_run
from chaos_tui.core.run_record import RunRecord
from chaos_tui.core.timeline import Timeline

INJECT_BUDGET_S = 10.0  # the spec: injecting a fault completes within 10 s
HEAL_BUDGET_S = 60.0  # a crash-recovering database may need a while; longer is a heal failure
STEADY_STATE_TIMEOUT_S = 15.0
STEADY_STATE_STREAK = 3  # consecutive passing samples that count as "holds"
WORKLOAD_STOP_S = 15.0
SAMPLER_STOP_S = 5.0  # a probe's own timeout is about 1 s
LIVE_JUDGE_EVERY_S = 1.0  # how often invariants are judged while the fault is live
LIVE_JUDGE_BUDGET_S = 5.0  # one live judgement that takes longer is skipped, not waited for


class BudgetExceeded(Exception):
    pass


class SteadyStateNotMet(Exception):
    pass


class HaltedBeforeInject(Exception):
    """The operator halted before any fault landed: there is nothing to verify."""


class TargetMoved(Exception):
    """The target's addresses changed between planning and start-up (a sandbox port was
    taken meanwhile): the plan's probes would watch the wrong places, so nothing is run."""


@dataclass
class RunOptions:
    rate_hz: float = PROBE_RATE_DEFAULT_HZ
    live_judge_every_s: float = LIVE_JUDGE_EVERY_S
    invariant_budget_s: float | None = None  # None: the scenario's own budget
    inject_budget_s: float = INJECT_BUDGET_S
    heal_budget_s: float = HEAL_BUDGET_S
    steady_state_timeout_s: float = STEADY_STATE_TIMEOUT_S
    # Where the run keeps a trace of itself while it lives (None: nowhere), so a run killed
    # mid-way is reported by the next command.
    record_dir: Path | None = None


@dataclass
class _LiveFault:
    fault: Fault
    lease: FaultLease
    window: InjectionWindow
    healed: bool = False
    # The heal in flight. A cancelled await does not stop it (it may be a thread), so a
    # second heal waits for this one instead of racing it.
    heal_task: asyncio.Future[None] | None = None
    reported_task: asyncio.Future[None] | None = None  # the heal attempt whose outcome was emitted
    error: str | None = None  # why the last heal attempt failed


def addresses_moved(planned: BaseModel, now: BaseModel) -> list[str]:
    """The addresses a plan relied on that are no longer where they were. One the plan did
    not have yet (port 0: that part was not placed, since its profile was not planned) may
    have been placed since, by a plan or a run of another profile: not a move."""
    before, after = planned.model_dump(), now.model_dump()
    return [
        name for name, value in before.items() if after.get(name) != value and not _unplaced(value)
    ]


def _unplaced(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value == 0
    if isinstance(value, str):
        try:
            return urlsplit(value).port == 0
        except ValueError:
            return False
    return False


SAMPLING_SLOT_S = 0.01  # probes that sample together, in slots at least this far apart
# The slots fill at most this much of an interval: a probe's first sample must not wait for
# most of a slow interval (at 0.15 Hz, 6 s) when the steady state asks for samples in 15 s.
SAMPLING_SPREAD_S = 0.1


def sampling_phases(count: int, interval: float, slot_s: float = SAMPLING_SLOT_S) -> list[float]:
    """When in each interval each of `count` probes samples: in turn, in slots spread evenly
    over it. A hundred probes woken at the same instant would queue behind each other, and the
    last one's sample would start late by the others' work, by a different amount each time
    (jitter); each woken alone would cost the loop a wake-up of its own per sample (at 100
    probes, 0.17 of a core more). A slot of 10 ms groups them: ten slots at 10 Hz, and at a
    slower rate ten in the interval's first 100 ms, so no probe starts later than that."""
    span = min(interval, SAMPLING_SPREAD_S)
    slots = max(1, min(count, int(span / slot_s)))
    return [span * (i % slots) / slots for i in range(count)]


class Run:
    """One execution of one scenario against one target. Use `await Run(...).execute()`.

    Give it a scenario (the plan is made here, once) or the plan a face already showed; the
    run executes that plan and never asks the scenario's hooks again."""

    def __init__(
        self,
        scenario: Scenario[Any] | RunPlan,
        target: Target,
        emit: EmitFn,
        options: RunOptions | None = None,
    ) -> None:
        plan = scenario if isinstance(scenario, RunPlan) else plan_run(scenario, target)
        if plan.target != target.name:
            raise ValueError(f"a plan for target {plan.target!r} cannot run on {target.name!r}")
        self.plan = plan
        self.scenario = plan.scenario
        self.target = target
        self.options = options or RunOptions()
        self.run_id = uuid.uuid4().hex[:12]
        self.timeline = Timeline()
        self._emit_fn = emit
        self._phases: dict[str, float] = {}
        self._target_versions: dict[str, str] = {}
        self._live: list[_LiveFault] = []
        self._probes: list[Probe] = []
        self._samplers: list[asyncio.Task[None]] = []
        self._heal_early = asyncio.Event()  # set by heal_now(): the current hold ends at once
        self._halted = False  # set by halt(): no further fault is injected in this run
        self._sampling_stopped = False
        self._injecting: asyncio.Future[None] | None = (
            None  # an inject in flight, which a heal awaits
        )
        self._target_gone: str | None = None  # why the target went away under the run
        self._live_judge: asyncio.Task[None] | None = None  # judging while the fault is live
        self._broke_at: dict[str, float] = {}  # invariant -> when it was first seen broken
        self._operator_notes: list[OperatorNote] = []
        self.ctx = RunContext(self.run_id, target, self.timeline, self._note, plan)
        self._record = (
            RunRecord(self.options.record_dir, self.run_id, plan.scenario_name, target.name)
            if self.options.record_dir is not None
            else None
        )

    # -- events ---------------------------------------------------------------------------

    def _emit(self, event: RunEvent) -> None:
        try:
            self._emit_fn(event)
        except Exception:  # a broken face must never stop a heal
            pass

    def _note(self, text: str, level: str = "info") -> None:
        self._emit(Note(text, time.time(), level))

    def _phase(self, name: str, detail: str = "") -> None:
        now = time.time()
        self._phases.setdefault(name, now)
        if self._record is not None:
            self._record.phase(name)
        self._emit(PhaseChanged(name, now, detail))

    # -- the run --------------------------------------------------------------------------

    async def execute(self) -> RunResult:
        started = time.time()
        outcome, reason = "error", ""
        invariants: list[InvariantResult] = []
        plan = self.plan
        self._emit(RunPlanned(plan))
        watch = asyncio.ensure_future(self._watch_target(asyncio.current_task()))
        try:
            self._phase("prepare", f"target {self.target.name}")
            self._target_versions = await asyncio.to_thread(self._read_versions)
            await self.target.ensure_up(plan.profile)
            await self._check_endpoints()
            await self._start_sampling()
            self._phase("steady_state")
            await self._await_steady_state()
            await self.scenario.start_workload(self.ctx)
            self._phase("warmup", f"{plan.warmup_s:g}s of load before the fault")
            await asyncio.sleep(plan.warmup_s)
            # One after another: each fault is a group of its own. Together: one group.
            faults = [planned.fault for planned in plan.faults]
            groups = [faults] if plan.faults_together else [[f] for f in faults]
            self._live_judge = asyncio.create_task(self._judge_live_forever(), name="judge-live")
            for group in groups:
                if self._halted:
                    self._note(
                        f"halted: {', '.join(f.name for f in group)} not injected", "warning"
                    )
                    continue
                self._heal_early.clear()
                held = []
                for fault in group:
                    if self._halted:
                        self._note(f"halted: {fault.name} not injected", "warning")
                        break
                    await self._inject(fault)
                    held.append(self._live[-1])
                try:
                    # The TTL caps the hold: while the runner lives, no lease outlives it.
                    hold = max(min(f.hold_s, f.ttl_s) for f in group)
                    await asyncio.wait_for(self._heal_early.wait(), hold)
                except TimeoutError:
                    pass  # the faults were held for as long as planned
                for live in reversed(held):  # undone in the reverse order they went in
                    await self._heal(live)
            if self._halted and not self._live:
                raise HaltedBeforeInject("halted by the operator before any fault was injected")
            self._phase("recover", f"{plan.recover_s:g}s of load after the heal")
            await asyncio.sleep(plan.recover_s)
            await self.scenario.stop_workload(self.ctx)
            await self._stop_live_judge()  # from here on the verdict, not a guess, decides
            budget = self.options.invariant_budget_s or plan.invariant_budget_s
            self._phase("verify", f"invariant budget {budget:g}s")
            try:
                invariants = await asyncio.wait_for(
                    self.scenario.check_invariants(self.ctx), budget
                )
            except TimeoutError:
                raise BudgetExceeded(f"checking invariants took longer than {budget:g}s") from None
            invariants = [self._with_breach_time(r) for r in invariants]
            for checked in invariants:
                self._emit(InvariantChecked(checked))
            failed = [r.name for r in invariants if not r.passed]
            outcome = "fail" if failed else "pass"
            reason = f"invariant(s) broken: {', '.join(failed)}" if failed else ""
            if self._halted:
                reason = "; ".join(
                    filter(None, [reason, "halted by the operator: faults healed early"])
                )
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            outcome, reason = "interrupted", "interrupted (signal or abort); healed before exit"
            if self._target_gone:
                outcome, reason = "error", self._target_gone
        except (SteadyStateNotMet, HaltedBeforeInject, TargetMoved) as exc:
            outcome, reason = "aborted", str(exc)
        except Exception as exc:
            outcome, reason = (
                "error",
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
            )
            self._note(reason, "error")
        watch.cancel()  # from here on the run only heals and reports
        if self._live_judge is not None:
            self._live_judge.cancel()  # a run that ended early judges nothing more live

        heal = await self._heal_everything()
        if outcome == "interrupted" and not heal.ok:
            reason = "interrupted (signal or abort); heal FAILED"
        result = self._result(started, outcome, reason, invariants, heal)
        self._phase("done", outcome)
        if self._record is not None:
            self._record.close()  # ended, not killed: the faces save the result next
        self._emit(RunFinished(result))
        return result

    async def _check_endpoints(self) -> None:
        if self.plan.endpoints is None:
            return
        now = await asyncio.to_thread(self.target.endpoints, self.plan.profile)
        moved = addresses_moved(self.plan.endpoints, now) if now is not None else ["all"]
        if moved:
            raise TargetMoved(
                f"the {self.target.name} target's addresses changed after the run was planned "
                f"({', '.join(moved)}: a port was taken meanwhile); nothing injected: run it again"
            )

    async def _watch_target(self, run_task: asyncio.Task[Any] | None) -> None:
        """A target taken away under the run (`sandbox down`) ends it at once, as an error;
        the heal still runs."""
        try:
            reason = await self.target.wait_gone()
        except Exception:  # a broken watch must never end a run
            return
        self._target_gone = reason
        self._note(reason, "error")
        if run_task is not None:
            run_task.cancel()

    async def _start_sampling(self) -> None:
        self._probes = list(self.plan.probes)
        for probe in self._probes:
            self.timeline.register(probe.name, probe.description)
            await probe.open()
        interval = 1.0 / self.options.rate_hz
        start = asyncio.get_running_loop().time()
        phases = sampling_phases(len(self._probes), interval)
        self._samplers = [
            asyncio.create_task(
                self._sample_forever(p, interval, start + phase), name=f"probe:{p.name}"
            )
            for p, phase in zip(self._probes, phases, strict=True)
        ]

    async def _sample_forever(self, probe: Probe, interval: float, first: float) -> None:
        """Samples at `first`, then every `interval` on a fixed schedule (a deadline each,
        so the time a sample takes does not add up into drift)."""
        loop = asyncio.get_running_loop()
        due = first
        await asyncio.sleep(max(0.0, due - loop.time()))
        # The flag as well as the cancel: on Python 3.11 a cancel that lands just as a
        # wait_for or a timeout inside a probe finishes can be swallowed, and the loop would
        # go on.
        while not self._sampling_stopped:
            sample = await probe.sample()
            self.timeline.add(sample)
            self._emit(SampleTaken(sample))
            due += interval
            delay = due - loop.time()
            if delay < 0:  # a slow sample: re-arm from now rather than burst to catch up
                due, delay = loop.time(), 0.0
            await asyncio.sleep(delay)

    async def _await_steady_state(self) -> None:
        checks = self.plan.ceilings
        deadline = time.monotonic() + self.options.steady_state_timeout_s
        while True:
            problems = [p for p in (self._steady_problem(n, m) for n, m in checks.items()) if p]
            if not problems:
                return
            if time.monotonic() > deadline:
                raise SteadyStateNotMet(
                    "steady state not met, nothing injected: " + "; ".join(problems)
                )
            await asyncio.sleep(0.1)

    def _steady_problem(self, probe: str, ceiling: float | None) -> str | None:
        recent = self.timeline.samples(probe)[-STEADY_STATE_STREAK:]
        if len(recent) < STEADY_STATE_STREAK:
            return f"{probe}: not enough samples yet"
        failing = [s for s in recent if not s.ok]
        if failing:
            return f"{probe}: {failing[-1].error}"
        if ceiling is not None and any((s.value or 0) > ceiling for s in recent):
            return f"{probe}: value {recent[-1].value:g} above {ceiling:g}"
        return None

    # -- judging while the fault is live ---------------------------------------------------

    async def _judge_live_forever(self) -> None:
        """Ask the scenario what it can judge so far, about once a second, and tell the faces
        when that changed: a broken invariant shows the moment it breaks, not after the run."""
        told: object = ([], {})  # a scenario that judges nothing live emits nothing
        warned = False
        while True:
            await asyncio.sleep(self.options.live_judge_every_s)
            try:
                results = await asyncio.wait_for(
                    self.scenario.judge_live(self.ctx), LIVE_JUDGE_BUDGET_S
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a guess that failed is no reason to stop a run
                if not warned:
                    warned = True
                    why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    self._note(f"judging invariants while the fault is live: {why}", "warning")
                continue
            now = time.time()
            stamped = []
            for r in results:
                if not r.passed:
                    first = self._broke_at.setdefault(r.name, min(r.broke_at or now, now))
                    r = r.model_copy(update={"broke_at": first})
                stamped.append(r)
            measurements = dict(self.scenario.measurements)
            state = ([(r.name, r.passed, r.measured) for r in stamped], measurements)
            if state != told:
                told = state
                self._emit(LiveJudgement(now, tuple(stamped), measurements))

    async def _stop_live_judge(self) -> None:
        task, self._live_judge = self._live_judge, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _with_breach_time(self, result: InvariantResult) -> InvariantResult:
        """A verdict of broken that was seen breaking live keeps when that was."""
        at = self._broke_at.get(result.name)
        if result.passed or at is None or result.broke_at is not None:
            return result
        return result.model_copy(update={"broke_at": at})

    async def _inject(self, fault: Fault) -> None:
        self._phase("inject", fault.name)
        lease = fault.lease(self.target.name)
        lease.run_id = self.run_id
        window = InjectionWindow(
            fault=fault.name,
            lease_id=lease.lease_id,
            description=fault.description,
            injected_at=time.time(),
            expires_at=lease.expires_at,
            parts=list(fault.parts),
        )
        # Known before it is applied: whatever happens next, this lease gets healed.
        self._live.append(_LiveFault(fault, lease, window))
        self.timeline.windows.append(window)
        self._injecting = asyncio.ensure_future(
            asyncio.wait_for(fault.inject(lease), self.options.inject_budget_s)
        )
        try:
            await asyncio.shield(self._injecting)
        except TimeoutError:
            raise BudgetExceeded(
                f"injecting {fault.name} took longer than {self.options.inject_budget_s:g}s"
            ) from None
        window.applied_at = time.time()
        window.planned_heal_at = window.applied_at + min(fault.hold_s, fault.ttl_s)  # the hold
        self._emit(FaultInjected(window.model_copy()))  # as it is now; the run keeps changing it

    async def _heal(self, live: _LiveFault) -> FaultHealReport:
        if live.healed:
            return FaultHealReport(fault=live.fault.name, lease_id=live.lease.lease_id, ok=True)
        if self._injecting is not None and not self._injecting.done():
            # Undoing a fault that is still being applied would race it: let it land first
            # (the inject budget bounds the wait).
            await asyncio.wait([self._injecting])
        live.window.heal_started_at = live.window.heal_started_at or time.time()
        if live.heal_task is None or live.heal_task.done():
            live.heal_task = asyncio.ensure_future(
                asyncio.wait_for(live.fault.heal(live.lease), self.options.heal_budget_s)
            )
        task = live.heal_task
        try:
            await asyncio.shield(task)
            live.healed, live.error = True, None
        except TimeoutError:
            live.error = f"heal took longer than {self.options.heal_budget_s:g}s"
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # we were cancelled, the heal goes on; the final heal waits for it
            live.error = "heal was cancelled"
        except Exception as exc:
            live.error = f"{type(exc).__name__}: {exc}"
        # heal_now() and the run loop may both wait on one attempt: it is reported once.
        if live.reported_task is not task:
            live.reported_task = task
            if live.healed:  # a failed heal leaves the window open
                self._close_window(live)
            self._emit(FaultHealed(live.window.model_copy(), live.healed, live.error))
        return FaultHealReport(
            fault=live.fault.name, lease_id=live.lease.lease_id, ok=live.healed, error=live.error
        )

    def _close_window(self, live: _LiveFault) -> None:
        """Stamp the heal. If the agent had undone the fault before this run asked (its TTL
        while this process was stopped, a new agent after a crash), the window ends when the
        agent healed it, not when this run woke up to ask."""
        window, elsewhere = live.window, live.lease.healed_elsewhere
        window.healed_at = time.time()
        if elsewhere is not None and elsewhere.healed_at < window.healed_at:
            window.heal_started_at = min(
                window.heal_started_at or elsewhere.started_at, elsewhere.started_at
            )
            window.healed_at = elsewhere.healed_at
            window.healed_by = elsewhere.by
            when = time.strftime("%H:%M:%S", time.localtime(elsewhere.healed_at))
            self._note(
                f"{live.fault.name} had already been healed by {elsewhere.by} at {when}", "warning"
            )

    # -- operator controls (the console's heal / halt keys) --------------------------------

    async def heal_now(self) -> list[FaultHealReport]:
        """Heal every live fault at once; the run goes on to recover and verify."""
        self._heal_early.set()
        return [await self._heal(live) for live in list(self._live)]

    async def halt(self) -> list[FaultHealReport]:
        """Heal every live fault and inject nothing more in this run."""
        self._halted = True
        self._note("halt: healing every live fault; nothing more will be injected", "warning")
        return await self.heal_now()

    def add_note(self, text: str) -> OperatorNote | None:
        """An operator's note, stamped now: in the event stream (level "operator") and in the
        result. Blank text is no note. A note typed once the result is made is not in it."""
        text = " ".join(text.split())
        if not text:
            return None
        note = OperatorNote(t=time.time(), text=text)
        self._operator_notes.append(note)
        self._emit(Note(text, note.t, "operator"))
        return note

    @property
    def live_faults(self) -> list[InjectionWindow]:
        return [live.window for live in self._live if not live.healed]

    async def _heal_everything(self) -> HealReport:
        """Undo every live fault, stop load and sampling. Shielded: a second signal cannot
        stop it."""
        task = asyncio.ensure_future(self._heal_everything_unshielded())
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                if task.cancelled():
                    # The loop is shutting down and cancelled the heal itself (asyncio.run
                    # cancels every task): start it again, it is safe to repeat.
                    task = asyncio.ensure_future(self._heal_everything_unshielded())
                self._note("heal in progress; it finishes before the run stops", "warning")

    async def _heal_everything_unshielded(self) -> HealReport:
        self._phase("heal", f"{sum(not f.healed for f in self._live)} fault(s) still live")
        # Faults first: nothing (a workload retrying against a dead server) may delay them.
        reports = [await self._heal(live) for live in self._live]
        verified = True
        for live in self._live:
            try:
                ok = await asyncio.wait_for(
                    live.fault.verify_healed(live.lease), self.options.heal_budget_s
                )
            except Exception as exc:
                ok = False
                self._note(f"verifying heal of {live.fault.name} failed: {exc}", "error")
            verified = verified and ok
        try:
            await asyncio.wait_for(self.scenario.stop_workload(self.ctx), WORKLOAD_STOP_S)
        except Exception as exc:
            self._note(f"stopping the workload failed: {exc or type(exc).__name__}", "warning")
        self._sampling_stopped = True
        for task in self._samplers:
            task.cancel()
        if self._samplers:
            _, stuck = await asyncio.wait(self._samplers, timeout=SAMPLER_STOP_S)
            for task in stuck:
                self._note(
                    f"probe {task.get_name()} did not stop in {SAMPLER_STOP_S:g}s; left behind",
                    "warning",
                )
        for probe in self._probes:
            try:
                await probe.close()
            except Exception:
                pass
        return HealReport(
            ok=all(r.ok for r in reports) and verified, verified=verified, faults=reports
        )

    def _read_versions(self) -> dict[str, str]:
        try:
            return self.target.versions(self.plan.profile)
        except Exception as exc:  # worth a note, never worth failing a run
            self._note(f"could not read the target's versions: {exc}", "warning")
            return {}

    def _result(
        self,
        started: float,
        outcome: Any,
        reason: str,
        invariants: list[InvariantResult],
        heal: HealReport,
    ) -> RunResult:
        finished = time.time()
        scenario, plan = self.scenario, self.plan
        return RunResult(
            run_id=self.run_id,
            scenario=plan.scenario_name,
            hypothesis=plan.hypothesis,
            target=self.target.name,
            outcome=outcome,
            reason=reason,
            started_at=started,
            finished_at=finished,
            duration_s=round(finished - started, 3),
            phases=self._phases,
            parameters=plan.params,
            parameter_defaults=plan.param_defaults,
            probe_rate_hz=self.options.rate_hz,
            injection_windows=self.timeline.windows,
            invariants=invariants,
            recovery=self.timeline.recovery(plan.recovery_probe, plan.backlog_probe),
            delivery=scenario.delivery,
            measurements=scenario.measurements,
            versions=self._target_versions,
            probes={p: self.timeline.report(p, started) for p in self.timeline.probes},
            heal=heal,
            runbook=plan.runbook if outcome == "fail" else None,
            notes=list(self._operator_notes),
            slos=list(scenario.slos),
        )
