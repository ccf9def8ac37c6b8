"""The HTML report as people share it: built from a real run on the sandbox by `chaos-tui report`,
opened in a real headless Chromium (Debian's package; the tests skip, saying so, only when no
Chromium can be found) in light and dark, with no console error; the shaded window at the
injection window's x range; the PDF printed; the history page's trend charts; bad input."""

from __future__ import annotations

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
    assert [e.get("class") for e in runs] == ["run pass"] * 4 + ["run fail"]
    [ring] = [e for e in outage.iter() if e.get("class") == "regressed"]
    assert (ring.get("cx"), ring.get("cy")) == (runs[-1].get("cx"), runs[-1].get("cy"))
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
        "cannot write /proc/": ["report", str(saved), "--html", "/proc/no/r.html"],
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
    run's would be): the runbook's opening sections as HTML, and "no baseline" said."""
    from chaos_tui.report_html import result_html

    _, saved = real_run
    failed = load_result(saved).model_copy(
        update={"outcome": "fail", "runbook": "chaos_tui/runbooks/opa_restart.md"}
    )
    page = result_html(failed)
    runbook = page[page.index('<div class="runbook">') :]
    assert "<h4>Symptoms</h4>" in runbook and "<table>" in runbook and "<pre>" in runbook
    assert "Verification" not in runbook  # an excerpt: the first sections only
    assert "no baseline" in page and '<div class="verdict fail">FAIL' in page


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
