"""The scenario reference (`docs/scenarios.md`) and the runbook index (`docs/runbooks/README.md`),
written from the built-in scenarios' own plans, so the pages cannot drift from the code.

    python -m chaos_tui.docs_gen            # rewrite both files in this checkout (`just docs`)
    python -m chaos_tui.docs_gen --check    # exit 1, naming the stale files, if they differ

Why here and not a `chaos-tui` subcommand: these are files of the repository, kept beside the
code by whoever changes a scenario; an installed chaos-tui has no docs/ folder to write, and its
users already get the same facts on their terminal from `chaos-tui list` (parameters) and
`chaos-tui --dry-run --scenario NAME` (the resolved plan). A maintainer finds it as `just docs`,
and `tests/test_docs_gen.py` fails, naming this command, when a committed page is stale.

Each scenario is planned with `core.plan.plan_run`, exactly as `--dry-run` and a run plan it,
on every platform target (the sandbox and the Docker stack), with default settings (the
environment's CHAOS_* variables are not read) and an empty state dir of its own, read-only:
nothing is started, no port is reserved, and the output is the same on every machine. Each
other value of a choice parameter (`--set scope=one-node`) is planned too, and what it changes
in the faults and invariants is listed. Parameters come from `core.params.param_infos`, as
`chaos-tui list` shows them. No Textual."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from chaos_tui.catalog import PLAN_REFUSALS
from chaos_tui.core.contracts import Scenario, Target
from chaos_tui.core.model import InvariantSpec
from chaos_tui.core.params import check_values, param_infos, value_text
from chaos_tui.core.plan import RunPlan, plan_run
from chaos_tui.core.runner import STEADY_STATE_STREAK, STEADY_STATE_TIMEOUT_S
from chaos_tui.runbooks import runbook_text
from chaos_tui.scenarios import SCENARIOS, source_of
from chaos_tui.settings import Settings
from chaos_tui.targets import PLATFORM_TARGETS, make_target

SCENARIOS_PAGE = "docs/scenarios.md"
RUNBOOK_INDEX = "docs/runbooks/README.md"
COMMAND = "python -m chaos_tui.docs_gen"
TARGET_WORDS = {"sandbox": "the embedded sandbox", "docker": "the Docker Compose stack"}
# What the sandbox's blast radius adds to a service it has not started: true of an empty state
# dir, not of the scenario, so the page leaves it out.
NOT_STARTED = " (not started yet)"


@dataclass(frozen=True)
class Planned:
    """One built-in scenario, planned with its defaults on each platform target, and again
    with each other value of a choice parameter (e.g. `scope=one-node`)."""

    cls: type[Scenario]
    plans: dict[str, RunPlan]  # target name -> plan, for the targets it runs on
    refused: dict[str, str]  # target name -> why it cannot be planned there
    variants: dict[tuple[str, str], dict[str, RunPlan]]  # (parameter, value) -> plans
    # (parameter, value) -> target name -> why that value cannot be planned there
    variants_refused: dict[tuple[str, str], dict[str, str]]

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def plan(self) -> RunPlan:
        """The first target's plan: what does not depend on the target is read here."""
        return next(iter(self.plans.values()))


def builtin_scenarios() -> dict[str, type[Scenario]]:
    """The built-ins in listing order; an installed plugin's scenarios are not this repo's."""
    return {n: cls for n, cls in SCENARIOS.items() if source_of(n) == "built-in"}


def _plans(
    scenario: Callable[[], Scenario], targets: dict[str, Target]
) -> tuple[dict[str, RunPlan], dict[str, str]]:
    plans, refused = {}, {}
    for name, target in targets.items():
        try:
            plans[name] = plan_run(scenario(), target)
        except PLAN_REFUSALS as exc:  # as the console shows a scenario it cannot plan
            refused[name] = str(exc)
    return plans, refused


def plan_all() -> list[Planned]:
    with tempfile.TemporaryDirectory(prefix="chaos-docs-") as state_dir:
        # The defaults, whatever CHAOS_* says here: model_construct reads no environment.
        settings = Settings.model_construct(state_dir=Path(state_dir))
        targets = {}
        for name in PLATFORM_TARGETS:
            target = make_target(name, settings)
            target.read_only = True  # as --dry-run: plan, change nothing
            targets[name] = target
        planned = []
        for cls in builtin_scenarios().values():
            plans, refused = _plans(cls, targets)
            if not plans:
                raise RuntimeError(f"{cls.name} cannot be planned: {refused}")
            variants, variants_refused = {}, {}
            for info in param_infos(cls.Params):
                for value in info.choices:
                    if value != str(info.default):
                        params = cls.Params.model_validate({info.name: value})
                        key = (info.name, value)
                        variants[key], variants_refused[key] = _plans(partial(cls, params), targets)
            planned.append(Planned(cls, plans, refused, variants, variants_refused))
        return planned


# -- Markdown helpers --------------------------------------------------------------------------

WIDTH = 100
_CODE_SPAN = re.compile(r"`[^`]*`")
_QUANTITY = re.compile(r"(\d) (s|ms)\b")
# What must not start a wrapped line: it would turn into a list, a heading, a quote or a table.
_BLOCK_START = re.compile(r"^(?:[-+*>#|]|\d+[.)])(?:\s|$)")


def _para(text: str, indent: str = "") -> list[str]:
    """A paragraph (or a list item: `indent` for its next lines) wrapped at WIDTH (the caller
    adds the blank line after it); left on one line where a wrap would start a line with
    Markdown syntax."""
    # A code span is kept whole: a space in it becomes NUL for the wrap, then a space again.
    kept = _CODE_SPAN.sub(lambda m: m.group().replace(" ", "\0"), text)
    kept = _QUANTITY.sub("\\1\0\\2", kept)  # nor is `15 s` split from its unit
    lines = textwrap.wrap(
        kept,
        WIDTH,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    if any(_BLOCK_START.match(line.strip()) for line in lines[1:]):
        lines = [" ".join(kept.split())]
    return [line.replace("\0", " ") for line in lines]


def _item(text: str) -> list[str]:
    return _para("- " + text, indent="  ")


def _cell(text: str) -> str:
    """Text for a table cell: one line, pipes escaped (GitHub wants it inside code too)."""
    return " ".join(text.split()).replace("|", "\\|")


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _anchor(name: str) -> str:
    """GitHub's anchor of a heading that is just `name` in backticks."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower())


def _runbook_link(ref: str | None, from_dir: str) -> str:
    """A link to a scenario's runbook from a page in `from_dir` (repository-relative)."""
    if ref is None:
        return "none yet"
    runbook_text(ref)  # a scenario naming a runbook that does not ship fails the generation
    up = "../" * len(Path(from_dir).parts)
    return f"[{ref}]({up}{ref})"


def _on(target: str) -> str:
    return f"On {TARGET_WORDS.get(target, target)}:"


def _per_target(plans: dict[str, RunPlan], render: Callable[[RunPlan], list[str]]) -> list[str]:
    """What `render(plan)` gives on each target: once, said so, when every target agrees."""
    by_target = {t: render(plan) for t, plan in plans.items()}
    values = list(by_target.values())
    if len(values) > 1 and all(v == values[0] for v in values):
        return ["The same on every target:", "", *values[0]]
    out = []
    for target, lines in by_target.items():
        out += [_on(target), "", *lines]
    return out


# -- docs/scenarios.md ---------------------------------------------------------------------------


def _run_commands(p: Planned) -> list[str]:
    name, profile = p.name, p.cls.profile
    lines = ["```bash"]
    if "sandbox" in p.plans:
        lines += [
            "# on the embedded sandbox: starts the profile's services itself, no Docker needed",
            f"chaos-tui --headless --scenario {name}",
        ]
    if "docker" in p.plans:
        lines += [
            "# on the Docker Compose stack (CHAOS_TESTBED=1 before chaos-up and chaos: the"
            " offline test bed)",
            f"just chaos-up {profile}",
            f"just chaos scenario={name}   # chaos-tui --headless --scenario {name} --target"
            " docker --enable-chaos",
            "just chaos-down",
        ]
    lines += [
        "# the plan of a run, resolved, with nothing injected (add --target docker for Docker)",
        f"chaos-tui --dry-run --scenario {name}",
        "```",
        "",
    ]
    for target, why in p.refused.items():
        lines += _para(f"Not on {TARGET_WORDS.get(target, target)}: {why}")
        lines.append("")
    return lines


def _probe_table(plan: RunPlan) -> list[str]:
    rows = []
    for probe in plan.probes:
        if probe.name in plan.ceilings:
            ceiling = plan.ceilings[probe.name]
            before = "must pass" + (f", value at most {ceiling:g}" if ceiling is not None else "")
        else:
            before = "watched"
        rows.append((f"`{probe.name}`", probe.description, before))
    return _table(("probe", "what it measures", "before the fault"), rows)


def _fault_lines(plan: RunPlan) -> list[str]:
    lines = []
    for f in plan.faults:
        lines += _item(
            f"`{f.name}`: {f.description}. Held {_seconds(f.hold_s)}; "
            f"lease TTL {_seconds(f.ttl_s)}."
        )
    return [*lines, ""]


def _faults(p: Planned) -> list[str]:
    head = []
    if len(p.plan.faults) > 1:
        how = (
            "All injected in order and held together, then healed in reverse order."
            if p.plan.faults_together
            else "One after another: each is injected, held and healed before the next."
        )
        head = [*_para(how), ""]
    return head + _per_target(p.plans, _fault_lines)


def _invariant_rows(specs: Iterable[InvariantSpec]) -> list[tuple[str, ...]]:
    return [(f"`{i.name}`", i.description, i.limit_text) for i in specs]


def _invariant_table(plan: RunPlan) -> list[str]:
    return _table(("invariant", "holds when", "limit"), _invariant_rows(plan.invariants))


def _variants(p: Planned) -> list[str]:
    """What a choice parameter's other values change in the faults and the invariants."""
    out: list[str] = []
    base_names = [i.name for i in p.plan.invariants]
    for (param, value), plans in p.variants.items():
        refused = [
            f"Refused on {TARGET_WORDS.get(t, t)}: {why}"
            for t, why in p.variants_refused.get((param, value), {}).items()
            if t in p.plans  # where the defaults plan but this value does not
        ]
        plan = next(iter(plans.values()), None)
        if plan is None:
            continue
        faults_differ = any(
            [(f.name, f.description) for f in plans[t].faults]
            != [(f.name, f.description) for f in p.plans[t].faults]
            for t in plans
            if t in p.plans
        )
        names = [i.name for i in plan.invariants]
        added = [i for i in plan.invariants if i.name not in base_names]
        dropped = [n for n in base_names if n not in names]
        if not (faults_differ or added or dropped or refused):
            continue  # e.g. another load pattern: the same faults and invariants
        out += [f"#### `--set {param}={value}`", ""]
        for line in refused:
            out += [*_para(line), ""]
        if faults_differ:
            out += _per_target(plans, _fault_lines)
        if added:
            out += [
                "Judged as well:",
                "",
                *_table(("invariant", "holds when", "limit"), _invariant_rows(added)),
            ]
        if dropped:
            out += _para("No longer judged: " + ", ".join(f"`{n}`" for n in dropped) + ".")
            out.append("")
    if out:
        out = [
            "### Variants",
            "",
            *_para("Choice parameters that change what is broken or judged:"),
            "",
            *out,
        ]
    return out


def _cleanup(p: Planned) -> list[str]:
    plan = p.plan
    text = (
        f"Each fault is healed when its hold ends, as its line above says. The load goes on "
        f"for {_seconds(plan.recover_s)} after the heal (`recover_s`) and stops; the "
        f"invariants are then judged within {_seconds(plan.invariant_budget_s)}."
    )
    return [*_para(text), "", "What a run may touch:", "", *_per_target(p.plans, _blast_lines)]


def _blast_lines(plan: RunPlan) -> list[str]:
    lines = []
    for line in plan.blast_radius:
        lines += _item(line.removesuffix(NOT_STARTED))
    return [*lines, ""]


def _set_example(p: Planned) -> str:
    """`--set hold_s=N` with N other than the default and accepted by the scenario."""
    default = float(p.cls.Params().hold_s)
    for value in (default * 2, default / 2, 10.0):
        params, _errors = check_values(p.cls.Params, {"hold_s": value}, p.name)
        if params is not None and value != default:
            return f" (e.g. `chaos-tui --headless --scenario {p.name} --set hold_s={value:g}`)"
    return ""


def _parameters(p: Planned) -> list[str]:
    rows = [
        (f"`{i.name}`", f"`{value_text(i.default)}`", i.allowed, i.meaning)
        for i in param_infos(p.cls.Params)
    ]
    out = [
        *_para(f"Set with `--set KEY=VALUE`{_set_example(p)}; `chaos-tui list` shows them too."),
        "",
        *_table(("parameter", "default", "allowed", "meaning"), rows),
    ]
    for name, values in p.cls.presets.items():
        given = ", ".join(f"`{k}={value_text(v)}`" for k, v in values.items()) or "the defaults"
        users = _suites_using(p.name, name)
        used = f" (the built-in suite {users} runs it so)" if users else ""
        out += [*_para(f"Preset `--preset {name}`{used}: {given}."), ""]
    return out


def _suites_using(scenario: str, preset: str) -> str:
    """The built-in suites that run `scenario` with `preset`, as `a`, `b`."""
    from chaos_tui.suite.load import BUILTIN_SUITES, load_suite

    names = []
    for name in BUILTIN_SUITES:
        spec = load_suite(name).spec
        steps = [s for s in spec.runs if s.scenario == scenario]
        if any((s.preset or spec.preset) == preset for s in steps):
            names.append(f"`{name}`")
    return ", ".join(names)


def _scenario_section(p: Planned) -> list[str]:
    plan = p.plan
    duration = (
        f"{_seconds(plan.expected_duration_s)} of load and holds (warm-up "
        f"{_seconds(plan.warmup_s)}, faults held {_seconds(plan.hold_s)}, recovery "
        f"{_seconds(plan.recover_s)}), plus start-up, the steady-state wait and the checks"
    )
    return [
        f"## `{p.name}`",
        "",
        *_para(f"**Hypothesis.** {plan.hypothesis}"),
        "",
        *_item(f"Profile: `{plan.profile}` (the part of the stack it needs)"),
        *_item(f"Load: {plan.workload or 'none'}"),
        *_item(f"Duration at the defaults: {duration}"),
        *_item(f"Runbook: {_runbook_link(plan.runbook, 'docs')}"),
        "",
        "### Run it",
        "",
        *_run_commands(p),
        "### Steady state",
        "",
        *_per_target(p.plans, _probe_table),
        "### Faults" if len(plan.faults) > 1 else "### Fault",
        "",
        *_faults(p),
        "### Invariants",
        "",
        *_per_target(p.plans, _invariant_table),
        *_variants(p),
        "### Cleanup and heal",
        "",
        *_cleanup(p),
        "### Parameters",
        "",
        *_parameters(p),
    ]


def scenarios_page(planned: list[Planned]) -> str:
    rows = [
        (
            f"[`{p.name}`](#{_anchor(p.name)})",
            f"`{p.cls.profile}`",
            ", ".join(f"`{f.name}`" for f in p.plan.faults) + f" ({_seconds(p.plan.hold_s)})",
            ", ".join(f"`{i.name}`" for i in p.plan.invariants),
        )
        for p in planned
    ]
    lines = [
        "# Scenarios",
        "",
        f"<!-- Generated by `{COMMAND}` (`just docs`) from the scenarios' own plans.",
        "     Do not edit: change the scenario, then regenerate. A test fails while it is"
        " stale. -->",
        "",
        *_para(
            "Every built-in scenario as a run plans it with its default parameters: the plan "
            "`chaos-tui --dry-run --scenario NAME` prints and a run executes. For each: its "
            "hypothesis, how to run it, the steady state it needs before breaking anything, "
            "the fault, the invariants that decide the verdict, how it cleans up, and its "
            "parameters. What to do when an invariant breaks is in its runbook "
            "([index](runbooks/README.md))."
        ),
        "",
        *_para(
            "A run starts what the scenario's profile needs, waits for the steady state, starts "
            "the load (`warmup_s`), injects each fault and holds it (`hold_s`), heals it, keeps "
            "the load going (`recover_s`), then judges the invariants: PASS exits 0, FAIL 1 "
            '(README, "Exit codes"). On the Docker stack, bring the profile up first '
            '(README, "The Docker Compose stack").'
        ),
        "",
        *_item(
            "**Steady state.** Every probe is sampled from start to end. Each one marked "
            f"*must pass* must show {STEADY_STATE_STREAK} passing samples in a row (under its "
            f"ceiling, where it has one) within {_seconds(STEADY_STATE_TIMEOUT_S)}, or the run "
            "is aborted with nothing injected."
        ),
        *_item(
            "**Invariants** are judged after the heal; some also live, while the fault holds. "
            "One that fails makes the run FAIL."
        ),
        *_item(
            "**Cleanup.** The run heals each fault when its hold ends and checks that the "
            "target is whole again; whatever is still live when the run stops, even after an "
            "error or Ctrl-C, it heals then. Each fault is a lease of the fault agent: if "
            "chaos-tui itself dies, the agent heals it within seconds, and at the latest when the "
            "lease's TTL runs out (`chaos-tui leases` lists live leases, `chaos-tui heal` "
            "heals them now)."
        ),
        "",
        *_table(("scenario", "profile", "fault on the sandbox (held)", "invariants"), rows),
    ]
    for p in planned:
        lines += _scenario_section(p)
    return "\n".join(lines).rstrip("\n") + "\n"


# -- docs/runbooks/README.md ---------------------------------------------------------------------


def runbook_summary(ref: str) -> str:
    """What a runbook covers, in its own words: the first sentence of its opening paragraph
    (`The promise: ...`), capitalised."""
    paragraph: list[str] = []
    for line in runbook_text(ref).splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    text = " ".join(paragraph).removeprefix("The promise:").strip()
    sentence = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
    return sentence[:1].upper() + sentence[1:]


def runbook_index(planned: list[Planned]) -> str:
    lines = [
        "# Runbooks",
        "",
        f"<!-- Generated by `{COMMAND}` (`just docs`) from the scenarios' plans and the",
        "     runbooks' opening lines. Do not edit: a test fails while it is stale. -->",
        "",
        *_para(
            "What to do when a scenario's invariant breaks: symptoms by invariant, immediate "
            "mitigation, verification and escalation. The runbooks ship inside the package, so "
            "an installed `chaos-tui` can show them (`b` on the console's report): they live "
            "in [`chaos_tui/runbooks/`](../../chaos_tui/runbooks/), one Markdown file per "
            "scenario. That folder is their only copy; edit them there. Each scenario's steady "
            "state, fault, invariants and parameters are in [../scenarios.md](../scenarios.md)."
        ),
        "",
    ]
    for p in planned:
        ref = p.plan.runbook
        if ref is None:
            lines += _item(f"`{p.name}`: no runbook yet.")
            continue
        invariants = ", ".join(f"`{i.name}`" for i in p.plan.invariants)
        lines += _item(
            f"[`{p.name}`](../../{ref}): {runbook_summary(ref)} Invariants: {invariants}."
        )
    return "\n".join(lines) + "\n"


# -- the command --------------------------------------------------------------------------------


def render() -> dict[str, str]:
    """Each generated page, by its path from the repository's root."""
    planned = plan_all()
    return {SCENARIOS_PAGE: scenarios_page(planned), RUNBOOK_INDEX: runbook_index(planned)}


def stale(root: Path, pages: dict[str, str] | None = None) -> list[str]:
    """The generated pages whose committed copy under `root` differs from what is made now."""
    pages = render() if pages is None else pages
    out = []
    for rel, text in pages.items():
        file = root / rel
        if not file.is_file() or file.read_text(encoding="utf-8") != text:
            out.append(rel)
    return out


def default_root() -> Path:
    """The checkout this package was imported from."""
    return Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("--root", type=Path, default=default_root(), help="the checkout")
    args = parser.parse_args(argv)
    root: Path = args.root
    if not (root / "docs").is_dir():
        print(f"{root} has no docs/ folder: run this from a chaos-tui checkout", file=sys.stderr)
        return 2
    pages = render()
    if args.check:
        old = stale(root, pages)
        for rel in old:
            print(f"{rel} is stale: run `{COMMAND}` (or `just docs`)", file=sys.stderr)
        return 1 if old else 0
    for rel, text in pages.items():
        file = root / rel
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
