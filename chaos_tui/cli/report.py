"""`chaos-tui report ID --html FILE [--pdf FILE] [--markdown FILE]`: one saved result as a page
to share (report_html/), a PDF of it printed by headless Chromium, or the Markdown report;
`chaos-tui report --history SCENARIO [--target T] --html FILE [--pdf FILE]`: the scenario's
past runs with trend charts. Every input is checked (each output path, the result, the
browser) before a file is written, and no directory is made; each file is written whole or not
at all, 0644 (it is meant to be shared). Only Chromium failing to print can stop the command
half-way: it then says which files were written and that the PDF was not (exit 5)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from chaos_tui.cli.root import cli
from chaos_tui.core.errors import ChaosError, UsageError

SHARED = 0o644


@cli.command("report")
@click.argument("ref", required=False, metavar="ID")
@click.option(
    "--history", "scenario", metavar="SCENARIO", help="A scenario's past runs instead of one run."
)
@click.option("--target", metavar="T", help="With --history: only the runs on this target.")
@click.option("--html", type=click.Path(path_type=Path), help="Write the page.")
@click.option("--pdf", type=click.Path(path_type=Path), help="Print it to a PDF (Chromium).")
@click.option(
    "--markdown",
    type=click.Path(path_type=Path),
    help="Write the Markdown report (one run).",
)
def report(ref, scenario, target, html, pdf, markdown):
    """Write a run's report (ID: a run id, its start, or a result file) or a scenario's
    history (--history) as HTML, PDF or Markdown."""
    if (ref is None) == (scenario is None):
        raise UsageError("report takes a run id or --history SCENARIO (one of them)")
    if target is not None and scenario is None:
        raise UsageError("--target goes with --history")
    if markdown is not None and scenario is not None:
        raise UsageError("--markdown is for one run; a history is --html or --pdf")
    if html is None and pdf is None and markdown is None:
        raise UsageError(
            "report needs somewhere to write: --html FILE, --pdf FILE or --markdown FILE"
        )
    from chaos_tui.cli.common import command_settings

    outputs = [(markdown, "--markdown"), (html, "--html"), (pdf, "--pdf")]
    _check_outputs([(path, flag) for path, flag in outputs if path is not None])
    results_dir = Path(command_settings().state_dir) / "results"
    if pdf is not None:  # no browser: said before anything is written
        _browser()
    if scenario is not None:
        page, text = _history_page(results_dir, scenario, target), None
    else:
        page, text = _result_pages(results_dir, ref, markdown is not None)
    written: list[Path] = []
    if markdown is not None and text is not None:
        _write(markdown, text)
        written.append(markdown)
    if html is not None:
        _write(html, page)
        written.append(html)
    if pdf is not None:
        _print(page, html, pdf, written)


def _check_outputs(outputs: list[tuple[Path, str]]) -> None:
    """Every output path as `--output` is checked (headless.check_output_path: its directory
    exists and is writable, it is not a directory), all before the first file is written."""
    from chaos_tui.headless import check_distinct, check_output_path

    try:
        check_distinct(outputs)
        for path, flag in outputs:
            check_output_path(path, flag)
    except OSError as exc:
        raise UsageError(str(exc)) from None


def _browser() -> str:
    from chaos_tui.report_html.chromium import ChromiumMissing, find_chromium

    try:
        return find_chromium()
    except ChromiumMissing as exc:
        raise UsageError(f"--pdf: {exc}") from None


def _result_pages(results_dir: Path, ref: str, with_markdown: bool) -> tuple[str, str | None]:
    from chaos_tui.core.history import find_result, open_result
    from chaos_tui.core.report import markdown_report
    from chaos_tui.report_html import result_html

    path = find_result(results_dir, ref)
    try:
        result = open_result(path)
    except (OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"cannot read {path}: {first}") from None
    return result_html(result), markdown_report(result) if with_markdown else None


def _history_page(results_dir: Path, scenario: str, target: str | None) -> str:
    from chaos_tui.report_html import history_html, history_rows

    rows = history_rows(results_dir, scenario, target)
    if not rows:
        on = f" on {target}" if target else ""
        raise UsageError(f"no saved run of {scenario}{on} in {results_dir}")
    return history_html(scenario, rows, target)


def _write(path: Path, text: str) -> None:
    from chaos_tui.core.journal import write_atomic

    try:
        write_atomic(path, text, mode=SHARED)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    click.echo(f"wrote {path}")


def _print(page: str, html: Path | None, pdf: Path, written: list[Path]) -> None:
    """The PDF from the page just written, or from a temporary copy when no --html was asked.
    Should Chromium fail, the files already written stay, and the error says which they are."""
    from chaos_tui.report_html.chromium import ChromiumFailed, print_pdf

    try:
        if html is not None:
            print_pdf(html, pdf, mode=SHARED)
        else:
            with tempfile.TemporaryDirectory(prefix="chaos-tui-report-") as folder:
                source = Path(folder) / "report.html"
                source.write_text(page)
                print_pdf(source, pdf, mode=SHARED)
    except OSError as exc:
        raise UsageError(f"cannot write {pdf}: {exc.strerror or exc}") from None
    except ChromiumFailed as exc:
        kept = f"; wrote {', '.join(map(str, written))}" if written else "; nothing was written"
        raise ChaosError(f"{exc}; the PDF was not written{kept}") from None
    click.echo(f"wrote {pdf}")
