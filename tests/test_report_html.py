"""The HTML report as people share it: built from a real run on the sandbox by `chaos-tui report`,
opened in a real headless Chromium (Debian's package; the tests skip, saying so, only when no
Chromium can be found) in light and dark, with no console error; the shaded window at the
injection window's x range; the PDF printed; the history page's trend charts; bad input."""

from __future__ import annotations

import html as html_lib
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from chaos_tui.core.journal import load_result, save_result
from chaos_tui.core.model import BaselineComparison, MetricComparison
from chaos_tui.report_html.chromium import (
    ChromiumFailed,
    ChromiumMissing,
    find_chromium,
    run_headless,
)
from tests.conftest import clean_state_dir, env_for, run_cli

SCENARIO = "opa_restart"

try:
    find_chromium()
    NO_CHROMIUM = ""
except ChromiumMissing as exc:
    NO_CHROMIUM = f"{exc} (.ci/run installs Debian's chromium)"
needs_chromium = pytest.mark.skipif(bool(NO_CHROMIUM), reason=NO_CHROMIUM)


@pytest.fixture(scope="module")
def real_run():
    """One short real run of opa_restart on the sandbox: (state dir, saved result's path)."""
    with clean_state_dir("report-html") as state:
        done = run_cli(
            ["--headless", "--scenario", SCENARIO, "--set", "hold_s=1"], env_for(state), 180
        )
        assert done.returncode == 0, done.stderr[-2000:]
        [saved] = (state / "results" / SCENARIO).glob("*.json")
        yield state, saved


def console_lines(stderr: str) -> list[str]:
    """The page's console messages as Chromium logs them with --enable-logging=stderr."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def screenshot(page: Path, png: Path, dark: bool) -> list[str]:
    """A screenshot of the page; returns the console messages seen while it loaded."""
    args = [
        f"--screenshot={png}",
        "--window-size=1100,2400",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ]
    if dark:
        args.append("--force-dark-mode")  # also what prefers-color-scheme reports
    done = run_headless(page, args)
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
    return console_lines(done.stderr)


@needs_chromium
def test_report_opens_in_chromium_light_and_dark_and_prints(real_run, tmp_path):
    state, saved = real_run
    result = load_result(saved)
    html, pdf, md = tmp_path / "r.html", tmp_path / "r.pdf", tmp_path / "r.md"
    done = run_cli(
        [
            "report",
            result.run_id[:6],
            "--html",
            str(html),
            "--pdf",
            str(pdf),
            "--markdown",
            str(md),
        ],
        env_for(state),
        120,
    )
    assert done.returncode == 0, done.stderr
    page = html.read_text()
    for written in (html, pdf, md):
        assert written.stat().st_mode & 0o777 == 0o644
    # Self-contained: nothing to fetch, and the page's CSP would refuse it anyway.
    assert not re.search(r"""(src|href)=|url\(|@import|<script""", page)
    assert f">{result.outcome.upper()}<" in page and result.hypothesis in page
    assert pdf.read_bytes().startswith(b"%PDF-") and pdf.stat().st_size > 20_000

    # The console check works: a page that logs an error is caught by it.
    control = tmp_path / "control.html"
    control.write_text('<html><body><script>console.error("control-error")</script></body></html>')
    assert any("control-error" in line for line in screenshot(control, tmp_path / "c.png", False))

    light, dark = tmp_path / "light.png", tmp_path / "dark.png"
    assert screenshot(html, light, dark=False) == []
    assert screenshot(html, dark, dark=True) == []
    means = {}
    for png in (light, dark):
        image = Image.open(png).convert("L")
        stats = ImageStat.Stat(image)
        assert stats.stddev[0] > 10, f"{png} is blank"  # text and charts, not one colour
        assert len(image.getcolors(1 << 16) or []) > 20, f"{png} has hardly any colours"
        means[png] = stats.mean[0]
    assert means[light] > 150 > means[dark], means  # a light page, then a dark one


def svgs(page: str) -> list[ET.Element]:
    """Every inline SVG of the page, parsed as XML (each is well-formed on its own)."""
    return [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", page, re.S)]


def test_shaded_window_sits_at_the_injection_windows_times(real_run, tmp_path):
    state, saved = real_run
    result = load_result(saved)
    html = tmp_path / "r.html"
    assert run_cli(["report", str(saved), "--html", str(html)], env_for(state)).returncode == 0
    charts = [s for s in svgs(html.read_text()) if "series" in s.get("class", "")]
    assert len(charts) == len(result.probes) > 0
    [window] = result.injection_windows
    last = max(s[0] for p in result.probes.values() for s in p.samples)
    span = max(result.duration_s, last)
    start_s, end_s = window.injected_at - result.started_at, window.healed_at - result.started_at
    landed_s = window.applied_at - result.started_at
    assert 0 < start_s < end_s < span
    for chart in charts:
        left, right = float(chart.get("data-x-left")), float(chart.get("data-x-right"))

        def x(t: float, left=left, right=right) -> float:
            return left + t / span * (right - left)

        [rect] = [e for e in chart.iter() if e.get("class") == "window"]
        x0, width = float(rect.get("x")), float(rect.get("width"))
        assert x0 == pytest.approx(x(start_s), abs=0.2)
        assert x0 + width == pytest.approx(x(end_s), abs=0.3)
        [inject] = [e for e in chart.iter() if e.get("class") == "edge inject"]
        assert float(inject.get("x1")) == pytest.approx(x(landed_s), abs=0.2)
        [heal] = [e for e in chart.iter() if e.get("class") == "edge heal"]
        heal_s = window.heal_started_at - result.started_at
        assert float(heal.get("x1")) == pytest.approx(x(heal_s), abs=0.2)
        assert float(heal.get("x1")) > float(inject.get("x1"))


@needs_chromium
def test_history_page_has_trend_charts_and_marks_the_regression(real_run, tmp_path):
    _, saved = real_run
    real = load_result(saved)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    # The real result, saved again as five earlier runs with other outages; the last one
    # failed, and its comparison flagged its outage.
    for i, outage in enumerate([3.0, 3.2, 2.9, 3.1, 9.5]):
        shift = (i - 5) * 600.0
        run = real.model_copy(deep=True)
        run.run_id, run.started_at = f"hist{i}{real.run_id[5:]}", real.started_at + shift
        run.recovery.outage_s = outage
        if i == 4:
            run.outcome = "fail"
            run.comparison = BaselineComparison(
                scenario=SCENARIO,
                target=run.target,
                runs=["hist0", "hist1", "hist2", "hist3"],
                metrics=[
                    MetricComparison(
                        name="outage_s",
                        label="outage",
                        unit="s",
                        value=outage,
                        baseline_median=3.05,
                        baseline_p95=3.2,
                        baseline_runs=4,
                        threshold_pct=20,
                        floor=0.5,
                        limit=3.84,
                        regressed=True,
                    )
                ],
            )
        save_result(state / "results", run)
    html, pdf = tmp_path / "h.html", tmp_path / "h.pdf"
    cmd = ["report", "--history", SCENARIO, "--html", str(html), "--pdf", str(pdf)]
    done = run_cli(cmd, env_for(state), 120)
    assert done.returncode == 0, done.stderr
    page = html.read_text()
    trends = [s for s in svgs(page) if "trend" in s.get("class", "")]
    assert len(trends) >= 4  # detect, recover, outage, error rate, duration
    outage = svgs(page[page.index('data-trend="outage_s"') :])[0]
    runs = [e for e in outage.iter() if (e.get("class") or "").startswith("run ")]
    # hold_s=1 is not the default: every run is drawn as one of other parameters.
    assert [e.get("class") for e in runs] == ["run pass other"] * 4 + ["run fail other"]
    [ring] = [e for e in outage.iter() if e.get("class") == "regressed"]
    assert (ring.get("cx"), ring.get("cy")) == (runs[-1].get("data-x"), runs[-1].get("data-y"))
    assert page.count("<tr><td>") == 5  # the table: one row a run
    assert pdf.read_bytes().startswith(b"%PDF-")
    # Only this target's runs: none on another.
    done = run_cli(
        ["report", "--history", SCENARIO, "--target", "docker", "--html", str(html)],
        env_for(state),
    )
    assert done.returncode == 2 and "no saved run of opa_restart on docker" in done.stderr


def test_bad_input_is_one_line_and_exit_2(real_run, tmp_path):
    state, saved = real_run
    env = env_for(state)
    out = tmp_path / "out.html"
    cases = {
        "no saved result has the run id": ["report", "zzzz", "--html", str(out)],
        "needs somewhere to write": ["report", str(saved)],
        "a run id or --history": ["report", str(saved), "--history", SCENARIO, "--html", str(out)],
        "--html /proc/no/r.html: directory /proc/no does not exist": [
            "report",
            str(saved),
            "--html",
            "/proc/no/r.html",
        ],
        "no saved run of nope": ["report", "--history", "nope", "--html", str(out)],
    }
    for words, args in cases.items():
        done = run_cli(args, env)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and words in done.stderr, done.stderr
    # No browser for --pdf: said before anything is written.
    done = run_cli(
        ["report", str(saved), "--html", str(out), "--pdf", str(tmp_path / "r.pdf")],
        env_for(state, CHAOS_CHROMIUM="/nonexistent/chromium"),
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "CHAOS_CHROMIUM=/nonexistent/chromium" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_chromium_is_stopped_when_it_hangs(tmp_path, monkeypatch):
    """A browser that never finishes is stopped (its process group, by id) at the timeout,
    helpers included. A stand-in script plays the hung browser and its helper: a real Chromium
    cannot be made to hang on cue."""
    helper = tmp_path / "helper.pid"
    fake = tmp_path / "chromium"
    fake.write_text(f"#!/bin/sh\nsleep 30 &\necho $! > {helper}\nwait\n")
    fake.chmod(0o755)
    page = tmp_path / "p.html"
    page.write_text("<p>x</p>")
    monkeypatch.setenv("CHAOS_CHROMIUM", str(fake))
    with pytest.raises(ChromiumFailed, match="did not finish within 1 s"):
        run_headless(page, [], timeout_s=1)
    pid = int(helper.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "the hung browser's helper outlived it"


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that is not ours to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_failed_run_shows_its_runbook_and_no_baseline(real_run):
    """The page of a run that failed (the real result, its outcome and runbook set as a failed
    run's would be): the runbook's opening sections as HTML, and why there is no baseline said."""
    from chaos_tui.report_html import result_html

    _, saved = real_run
    failed = load_result(saved).model_copy(
        update={"outcome": "fail", "runbook": "chaos_tui/runbooks/opa_restart.md"}
    )
    page = result_html(failed)
    runbook = page[page.index('<div class="runbook">') :]
    assert "<h4>Symptoms</h4>" in runbook and "<table>" in runbook and "<pre>" in runbook
    assert "Verification" not in runbook  # an excerpt: the first sections only
    assert "nothing to compare with yet" in page and '<div class="verdict fail">FAIL' in page


def test_baseline_error_rate_is_in_points_as_the_terminal_says_it():
    """A comparison keeps an error rate in points (88.24, not 0.8824): the page must not
    multiply it by 100 again (it read "8824%", "floor 500%")."""
    from chaos_tui.report_html.page import comparison_html

    rate = MetricComparison(
        name="error_rate_during_fault",
        label="error rate during fault (allow_path)",
        unit="%",
        value=93.33,
        baseline_median=88.24,
        baseline_p95=93.75,
        baseline_runs=6,
        floor=5.0,
        limit=93.24,
        regressed=True,
    )
    page = comparison_html(
        BaselineComparison(scenario=SCENARIO, target="sandbox", runs=["a"] * 6, metrics=[rate])
    )
    cells = [re.sub(r"<[^>]+>", " ", c).split() for c in re.findall(r"<td>(.*?)</td>", page)]
    assert [c[0] for c in cells[1:5]] == ["93.3%", "88.2%", "93.8%", "93.2%"], cells
    assert "at least 5 points worse" in page and "8824" not in page and "500%" not in page


def test_every_output_path_is_checked_before_anything_is_written(real_run, tmp_path):
    """A missing directory is not made, an unwritable one refused, a directory is no file: one
    line, exit 2, in check_output_path's words, and nothing written, not even the files whose
    own path was good (--markdown is written first)."""
    state, saved = real_run
    env = env_for(state)
    md = tmp_path / "h.md"
    nodir = tmp_path / "nodir"
    cases = {
        f"--html {nodir}/x.html: directory {nodir} does not exist": ["--html", f"{nodir}/x.html"],
        # /sys refuses a new file even to root, as a read-only directory would.
        "--html /sys/h.html is not writable: Permission denied": ["--html", "/sys/h.html"],
        f"--pdf {tmp_path} is a directory": ["--pdf", str(tmp_path)],
        # One file named twice would keep only the last written (a PDF where the page was).
        f"--html {md} is also --markdown's file: give each its own": ["--html", str(md)],
    }
    for words, args in cases.items():
        done = run_cli(["report", str(saved), "--markdown", str(md), *args], env)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr == f"{words}\n" or (
            done.stderr.count("\n") == 1 and words in done.stderr
        ), done.stderr
        assert list(tmp_path.iterdir()) == [], args


def test_chromium_failing_to_print_says_what_was_written_and_exits_5(real_run, tmp_path):
    """/bin/false plays a Chromium that fails to print (it exits 1 and writes nothing): the
    Markdown and the page are written, the PDF is not, and the error line says both."""
    state, saved = real_run
    md, html, pdf = tmp_path / "g.md", tmp_path / "g.html", tmp_path / "g.pdf"
    args = ["report", str(saved), "--html", str(html), "--markdown", str(md), "--pdf", str(pdf)]
    done = run_cli(args, env_for(state, CHAOS_CHROMIUM="/bin/false"))
    assert done.returncode == 5, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"the PDF was not written; wrote {md}, {html}" in done.stderr, done.stderr
    assert md.is_file() and html.is_file() and not pdf.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.html", "g.md"]  # no temp left


def test_history_marks_runs_of_other_parameters(real_run, tmp_path):
    """Runs held 1 s, 6 s and 3 s (the default) are not one trend: each parameter set has its
    own line, a run of other parameters is a diamond, said in the legend, its tooltip and the
    table; a run whose probe never failed reads "never failed", not a 0 ms recovery."""
    from chaos_tui.report_html import history_html, history_rows

    _, saved = real_run
    real = load_result(saved)
    default_hold = real.parameter_defaults["hold_s"]
    holds = [default_hold, 6, default_hold, 1, default_hold]
    for i, hold in enumerate(holds):
        run = real.model_copy(deep=True)
        run.run_id, run.started_at = f"par{i}{real.run_id[4:]}", real.started_at + i * 60.0
        run.parameters = {**run.parameters, "hold_s": hold}
        run.recovery.outage_s = 1.0 + hold
        if i == 4:  # the newest: its probe passed all through the fault
            run.recovery.time_to_detect_s = run.recovery.outage_s = None
            run.recovery.time_to_recover_s = 0.0
        save_result(tmp_path / "results", run)
    page = history_html(SCENARIO, history_rows(tmp_path / "results", SCENARIO))
    outage = svgs(page[page.index('data-trend="outage_s"') :])[0]
    marks = [e for e in outage.iter() if (e.get("class") or "").startswith("run ")]
    assert [e.tag.split("}")[-1] for e in marks] == ["circle", "path", "circle", "path"]
    assert [e.get("class") for e in marks] == ["run pass", "run pass other"] * 2
    six = f"hold_s=6 (default {default_hold:g})"
    titles = [e.find("{*}title").text for e in marks]
    assert six in titles[1] and "(default" not in titles[0], titles
    lines = [e for e in outage.iter() if (e.get("class") or "").startswith("line")]
    assert sorted(e.get("class") for e in lines) == ["line", "line other", "line other"]
    assert "other parameters" in page[: page.index('data-trend="')]  # the legend
    table = page[page.index("Runs, newest first") :]
    assert six in table and f"hold_s=1 (default {default_hold:g})" in table
    newest = table[table.index("par4") : table.index("par3")]
    assert newest.count("never failed") == 3 and ">0 ms<" not in newest
    recover = svgs(page[page.index('data-trend="time_to_recover_s"') :])[0]
    assert len([e for e in recover.iter() if (e.get("class") or "").startswith("run ")]) == 4


def test_slos_are_worded_as_the_terminal_words_them(real_run):
    from chaos_tui.core.model import SloResult
    from chaos_tui.core.report import slo_facts
    from chaos_tui.report_html.page import slos_html

    _, saved = real_run
    slos = [
        SloResult(
            subject="callers",
            phase="during",
            objective="max_error_rate",
            measured=0.0,
            limit=0.01,
            passed=True,
        ),
        SloResult(
            subject="callers",
            phase="during",
            objective="min_throughput_rps",
            measured=9.937,
            limit=5.0,
            comparison=">=",
            unit="/s",
            passed=True,
        ),
        SloResult(
            subject="callers",
            phase="before",
            objective="p95_latency_ms",
            measured=310.0,
            limit=150.0,
            unit="ms",
            passed=False,
            counts=False,
        ),
    ]
    result = load_result(saved).model_copy(update={"slos": slos})
    page = slos_html(result)
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", page))
    for label, value in slo_facts(result):
        assert label.removeprefix("SLO ") in text, (label, text)
        for cell in value.split("; "):
            assert cell.split(" ", 1)[1] in text, (cell, text)
    assert "error rate <= 1%" in text and "0% met" in text
    assert "throughput >= 5/s" in text and "9.94/s met" in text
    assert "310 ms missed (not counted)" in text
    assert "0.01" not in text and "9.937" not in text


def test_baseline_card_says_why_nothing_was_compared():
    from chaos_tui.core.model import BaselineComparison
    from chaos_tui.report_html.page import comparison_html

    for note in (
        "not compared: the run ended as interrupted, with no verdict",
        "no baseline yet: 1 passing run of this parameter set, 3 needed",
    ):
        page = comparison_html(
            BaselineComparison(scenario=SCENARIO, target="sandbox", source="none", note=note)
        )
        assert f"<p>{note}</p>" in page and "nothing to compare" not in page, page
        assert page.count(note) == 1
    recent = comparison_html(
        BaselineComparison(scenario=SCENARIO, target="sandbox", runs=["a"], note="baseline: 1 runs")
    )
    assert "the last passing run of this scenario on this target" in recent
    assert "run(s)" not in recent


def test_a_run_that_never_failed_reads_never_failed_against_its_baseline(real_run):
    """A failed run whose recovery probe never failed: its comparison holds a 0 s recovery,
    which the page says as the terminal does, not as "0 ms"."""
    from chaos_tui.report_html import result_html

    _, saved = real_run
    real = load_result(saved)
    recovery = real.recovery.model_copy(
        update={"time_to_detect_s": None, "outage_s": None, "time_to_recover_s": 0.0}
    )
    comparison = BaselineComparison(
        scenario=SCENARIO,
        target=real.target,
        runs=["a", "b", "c"],
        metrics=[
            MetricComparison(
                name="time_to_recover_s",
                label="time to recover (allow_path)",
                unit="s",
                value=0.0,
                baseline_median=0.4,
                baseline_p95=0.5,
                baseline_runs=3,
                floor=0.25,
                limit=0.65,
            )
        ],
        note="baseline: 3 runs, nothing regressed",
    )
    failed = real.model_copy(
        update={"outcome": "fail", "recovery": recovery, "comparison": comparison}
    )
    page = result_html(failed)
    against = page[page.index("Against the baseline") :]
    against = against[: against.index("</section>")]
    assert "<b>never failed</b>" in against and ">0 ms<" not in against
    recovered = page[page.index("<h3>Recovery</h3>") : page.index("<h3>Measurements</h3>")]
    assert recovered.count("never failed") == 3 and ">0 ms<" not in recovered
