"""A file's `validation` and `cleanup` as invariants, judged from the run's own timeline (and
its loads) once every fault is healed. Each check is declared before the run (the detail view
shows its limit) and judged after it, with the probe and the time it waited named when it
did not hold. The checks that can be judged while the fault is live (an error rate or a p95
so far, a value past its bound, a fault not noticed in time) are judged then too, as they
stand so far; the verdict after the heal decides."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chaos_tui.core.contracts import RunContext
from chaos_tui.core.model import InvariantResult, InvariantSpec, PhaseSummary, ProbeSample
from chaos_tui.core.timeline import Timeline, summarise
from chaos_tui.probes.command_probe import kill_group, last_line
from chaos_tui.probes.http_load import HttpRequestLoad, LoadPhaseStats
from chaos_tui.scenario_file import model as m

STEADY_STREAK = 3  # consecutive passing samples: "passes again", as the steady state counts
DEFAULT_VERIFY_S = 30.0  # `verify_steady_state` with no bound
POLL_S = 0.1
OUTPUT_TAIL = 4096  # bytes of a cleanup command's output read for its last line
P95 = 0.95


@dataclass
class Judging:
    """What a check reads once the run is over: the timeline, the loads, the probe names."""

    ctx: RunContext
    loads: dict[str, HttpRequestLoad]
    # Every probe the steady state watched (plan names), with its ceiling: a probe over it
    # is not back to its steady state, as the runner judged it before the fault.
    steady: dict[str, float | None]
    probe_names: dict[str, str]  # the file's name for a probe -> the plan's

    @property
    def timeline(self) -> Timeline:
        return self.ctx.timeline

    def heal_done_at(self) -> float:
        """When the last fault was healed (now if a heal never finished)."""
        ends = [w.healed_at or time.time() for w in self.timeline.windows]
        return max(ends) if ends else time.time()

    def heal_started_at(self) -> float:
        starts = [w.heal_started_at or w.healed_at or time.time() for w in self.timeline.windows]
        return max(starts) if starts else time.time()

    def probe(self, name: str) -> str:
        return self.probe_names.get(name, name)

    def phase(self, source: str, phase: str) -> PhaseSummary | LoadPhaseStats:
        """One phase of a probe's samples or of a load's requests."""
        if source in self.loads:
            return self.loads[source].summary(self.timeline.phase_of)[phase]
        probe = self.probe(source)
        return summarise(
            s for s in self.timeline.samples(probe) if self.timeline.phase_of(s.t) == phase
        )


Judge = Callable[[Judging], Awaitable[tuple[float | None, str]]]
# How a check stands so far while the fault is live: (measured, detail), or None when
# nothing can be said yet (no sample of the phase, a bound not yet due).
LiveJudge = Callable[[Judging], "tuple[float | None, str] | None"]


@dataclass
class FileCheck:
    """One check: its spec (shown before the run), how it is measured, and how it stands so
    far while the fault is live (None: only after the heal)."""

    spec: InvariantSpec
    measure: Judge
    so_far: LiveJudge | None = None

    async def judge(self, judging: Judging) -> InvariantResult:
        measured, detail = await self.measure(judging)
        return self.spec.judge(measured, detail)

    def judge_live(self, judging: Judging) -> InvariantResult | None:
        if self.so_far is None:
            return None
        got = self.so_far(judging)
        return None if got is None else self.spec.judge(*got)


def build_checks(
    scenario: m.FileScenario, first_probe: str, first_http: str | None
) -> list[FileCheck]:
    """The file's validation checks, then its cleanup's verifications, in file order. The
    platform's named checks are not here: the built-in scenario judges them (platform.py)."""
    checks: list[FileCheck] = []
    for entry in scenario.validation:
        made = _validation(entry, first_probe, first_http)
        if made is not None:
            checks.append(made)
    commands = 0
    for step in scenario.cleanup:
        if isinstance(step, m.CommandStep):
            commands += 1
            checks.append(_command(step, commands))
        elif isinstance(step, m.VerifyStep):
            within = (
                step.verify_steady_state.within_seconds
                if isinstance(step.verify_steady_state, m.Within)
                else DEFAULT_VERIFY_S
            )
            checks.append(_steady_after("cleanup_steady_state", within))
        elif isinstance(step, m.DbHealthyStep):
            # The built-in's own Postgres probe (platform.py makes it the companion's).
            checks.append(_steady_after("cleanup_db_healthy", DEFAULT_VERIFY_S, ["postgres"]))
        # restore_network needs nothing of its own: every action's heal runs first, always.
    return _unique(checks)


def _unique(checks: list[FileCheck]) -> list[FileCheck]:
    """Two checks of one kind on one probe get #2, #3: every result names one check."""
    seen: dict[str, int] = {}
    for check in checks:
        name = check.spec.name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            check.spec = check.spec.model_copy(update={"name": f"{name}#{seen[name]}"})
    return checks


def _validation(entry: m.CheckBase, first_probe: str, first_http: str | None) -> FileCheck | None:
    if isinstance(entry, m.HttpRecoveryCheck):
        probe = first_http or first_probe
        return _recovery(probe, entry.http_recovery_time_max_seconds)
    if isinstance(entry, m.RecoveryCheck):
        bound = entry.recovery_time_max_seconds
        return _recovery(bound.probe or first_probe, bound.max)
    if isinstance(entry, m.DetectCheck):
        bound = entry.detect_time_max_seconds
        return _detect(bound.probe or first_probe, bound.max)
    if isinstance(entry, m.ErrorRateCheck):
        rate = entry.error_rate_max
        source = rate.probe or rate.load or first_probe
        return _phase_stat(
            f"error_rate({source})",
            f"share of failed {_what(rate)} {source} during the fault",
            rate.max,
            "",
            source,
            "during",
            lambda s: s.error_rate,
        )
    if isinstance(entry, m.LatencyCheck):
        lat = entry.latency_p95_max_ms
        source = lat.probe or lat.load or first_probe
        return _phase_stat(
            f"latency_p95({source})",
            f"p95 latency of {_what(lat)} {source} {lat.phase} the fault",
            lat.max,
            "ms",
            source,
            lat.phase,
            lambda s: s.latency_ms_p95,
            failures_are_slow=True,
        )
    if isinstance(entry, m.SteadyAfterCheck):
        return _steady_after("steady_state_after", entry.steady_state_after.within_seconds)
    if isinstance(entry, m.ValueMaxCheck):
        vmax = entry.value_max
        return _phase_stat(
            f"value_max({vmax.probe})",
            f"highest value of {vmax.probe} {vmax.phase} the fault",
            vmax.max,
            "",
            vmax.probe,
            vmax.phase,
            lambda s: getattr(s, "value_max", None),
        )
    if isinstance(entry, m.ValueMinCheck):
        vmin = entry.value_min
        return _phase_stat(
            f"value_min({vmin.probe})",
            f"lowest value of {vmin.probe} {vmin.phase} the fault",
            vmin.min,
            "",
            vmin.probe,
            vmin.phase,
            lambda s: getattr(s, "value_min", None),
            comparison=">=",
        )
    return None  # a named platform check


def _what(bound: m.ProbeOrLoad) -> str:
    return "requests of load" if bound.load else "samples of"


def _recovery(probe: str, limit: float) -> FileCheck:
    spec = InvariantSpec(
        name=f"recovery_time({probe})",
        description=f"{probe} passes again for good within {limit:g} s of the heal",
        limit=limit,
        unit="s",
    )

    async def measure(j: Judging) -> tuple[float | None, str]:
        name = j.probe(probe)
        healed = j.heal_started_at()
        deadline = j.heal_done_at() + limit + 1.0
        while True:
            back = _back_for_good(j.timeline, name)
            if back is not None:
                return round(max(0.0, back - healed), 3), ""
            if time.time() > deadline:
                waited = time.time() - healed
                last = j.timeline.recent(name, 1)
                why = f" (last error: {last[0].error})" if last and last[0].error else ""
                return None, (
                    f"{probe} did not pass again: waited {waited:.1f} s after the heal{why}"
                )
            await asyncio.sleep(POLL_S)

    return FileCheck(spec, measure)


def _back_for_good(timeline: Timeline, probe: str) -> float | None:
    """When the probe passed again after its last failure since the first injection, with a
    streak behind it (0 s after the first injection if it never failed); None: not back."""
    if not timeline.windows:
        return None
    series = timeline.since(probe, timeline.windows[0].injected_at)
    failures = [i for i, s in enumerate(series) if not s.ok]
    if not failures:
        return timeline.windows[0].injected_at if series else None
    after = series[failures[-1] + 1 :]
    if len(after) < STEADY_STREAK:
        return None
    return after[0].t


def _detect(probe: str, limit: float) -> FileCheck:
    spec = InvariantSpec(
        name=f"detect_time({probe})",
        description=f"{probe} notices the fault within {limit:g} s of it landing",
        limit=limit,
        unit="s",
    )

    async def measure(j: Judging) -> tuple[float | None, str]:
        down, _ = j.timeline.outage(j.probe(probe))
        landed = _landed(j.timeline)
        if down is None or landed is None:
            return None, f"{probe} never failed: the fault went unnoticed"
        return round(max(0.0, down - landed), 3), ""

    def so_far(j: Judging) -> tuple[float | None, str] | None:
        landed = _landed(j.timeline)
        if landed is None:
            return None
        down, _ = j.timeline.outage(j.probe(probe))
        if down is not None:
            return round(max(0.0, down - landed), 3), ""
        waited = time.time() - landed
        if waited <= limit:
            return None  # not noticed yet, and still in time
        return round(waited, 3), f"{probe} has not noticed the fault yet"

    return FileCheck(spec, measure, so_far)


def _landed(timeline: Timeline) -> float | None:
    """When the first fault was in place (applied; requested, where that is unknown): a
    detection time counts from there, as the recovery metrics' time to detect does."""
    if not timeline.windows:
        return None
    first = timeline.windows[0]
    return first.applied_at if first.applied_at is not None else first.injected_at


def _phase_stat(
    name: str,
    description: str,
    limit: float,
    unit: str,
    source: str,
    phase: str,
    read: Callable[[PhaseSummary | LoadPhaseStats], float | None],
    comparison: str = "<=",
    failures_are_slow: bool = False,
) -> FileCheck:
    spec = InvariantSpec(
        name=name,
        description=description,
        limit=limit,
        unit=unit,
        comparison=comparison,  # type: ignore[arg-type]
    )

    def stat(j: Judging, so_far: str = "") -> tuple[float | None, str, int]:
        stats = j.phase(source, phase)
        value = read(stats)
        count: int = stats.samples if isinstance(stats, PhaseSummary) else stats.requests
        failed = round((stats.error_rate or 0) * count)
        if failures_are_slow and failed > count * (1 - P95):
            # A request that failed (timed out, refused) is slower than any answer: with more
            # than 5% of them failing, the 95th percentile is itself a failure.
            return (
                None,
                f"{failed} of {count} {phase} the fault{so_far} failed: counted as slower "
                "than any answer, the p95 is a failure",
                count,
            )
        if value is None:
            return (
                None,
                f"no measurement of {source} {phase} the fault ({count} in that phase)",
                count,
            )
        detail = f"{count} {phase} the fault{so_far}" + (f", {failed} failed" if failed else "")
        return value, detail, count

    async def measure(j: Judging) -> tuple[float | None, str]:
        value, detail, _ = stat(j)
        return value, detail

    def so_far(j: Judging) -> tuple[float | None, str] | None:
        # Before the fault is over only "before" (complete once the fault went in) and
        # "during" (so far) can be read; a phase with nothing in it yet says nothing.
        if not j.timeline.windows or phase not in ("before", "during"):
            return None
        value, detail, count = stat(j, " so far")
        if count == 0 or (value is None and not failures_are_slow):
            return None  # nothing measured yet is not a breach (later samples may answer)
        return value, detail

    return FileCheck(spec, measure, so_far)


def _steady_after(name: str, within: float, only: list[str] | None = None) -> FileCheck:
    which = "every steady-state probe" if only is None else ", ".join(only)
    spec = InvariantSpec(
        name=name,
        description=f"{which} passes again within {within:g} s of the heal",
        limit=within,
        unit="s",
    )

    async def measure(j: Judging) -> tuple[float | None, str]:
        healed = j.heal_done_at()
        deadline = healed + within + 1.0
        probes = {p: j.steady.get(p) for p in (j.steady if only is None else only)}
        while True:
            failing = [p for p, c in probes.items() if not _passing_since(j.timeline, p, healed, c)]
            if not failing:
                return _steady_at(j, healed, probes), ""
            if time.time() > deadline:
                waited = time.time() - healed
                return None, (
                    f"still failing after {waited:.1f} s: "
                    + "; ".join(f"{p}: {_last_error(j.timeline, p, probes[p])}" for p in failing)
                )
            await asyncio.sleep(POLL_S)

    return FileCheck(spec, measure)


def _steady(sample: ProbeSample, ceiling: float | None) -> bool:
    """A sample as the runner's steady-state check reads it: passing, and not over the
    probe's ceiling (no value counts as 0 there too)."""
    return sample.ok and (ceiling is None or (sample.value or 0) <= ceiling)


def _passing_since(timeline: Timeline, probe: str, t: float, ceiling: float | None) -> bool:
    recent = timeline.since(probe, t)[-STEADY_STREAK:]
    return len(recent) == STEADY_STREAK and all(_steady(s, ceiling) for s in recent)


def _steady_at(j: Judging, healed: float, probes: dict[str, float | None]) -> float:
    """Seconds from the heal to the moment the last of the probes passed again for good."""
    latest = healed
    for probe, ceiling in probes.items():
        series = j.timeline.since(probe, healed)
        failures = [i for i, s in enumerate(series) if not _steady(s, ceiling)]
        if failures and failures[-1] + 1 < len(series):
            latest = max(latest, series[failures[-1] + 1].t)
    return round(latest - healed, 3)


def _last_error(timeline: Timeline, probe: str, ceiling: float | None = None) -> str:
    last = timeline.recent(probe, 1)
    if not last:
        return "no sample"
    if last[0].ok and not _steady(last[0], ceiling):
        return f"value {last[0].value:g} above {ceiling:g}"
    return last[0].error or "passing"


def _command(step: m.CommandStep, n: int) -> FileCheck:
    spec = InvariantSpec(
        name=f"cleanup_command#{n}" if n > 1 else "cleanup_command",
        description=f"$ {' '.join(step.command.split())[:80]} exits 0 after the heal",
        limit=0,
        comparison="==",
    )

    async def measure(j: Judging) -> tuple[float | None, str]:
        return await run_command(step.command, step.timeout_ms / 1000.0)

    return FileCheck(spec, measure)


async def run_command(command: str, timeout_s: float) -> tuple[float | None, str]:
    """Exit code and the last line it wrote. Judged when the shell exits, not when its output
    closes: something it started in the background (a service brought back) is its purpose
    and keeps running. Only a command still running at its timeout, or when the run is
    cancelled, has its process group killed."""
    with tempfile.TemporaryFile() as out:
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            kill_group(proc.pid)
            await proc.wait()
            return None, f"still running after {timeout_s:g} s: killed"
        except asyncio.CancelledError:
            kill_group(proc.pid)
            raise
        # Only the tail is read (the output may be huge), as printable text.
        out.seek(max(0, out.seek(0, os.SEEK_END) - OUTPUT_TAIL))
        tail = last_line(out.read())
        return float(code), "".join(c if c.isprintable() else "?" for c in tail)[-300:]
