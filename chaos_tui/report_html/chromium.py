"""Headless Chromium, for the PDF of a report (and the tests' screenshots): found on PATH or
named by CHAOS_CHROMIUM, run with its own throwaway profile, in its own process group so a
run that hangs is stopped whole, and only that group, by its id."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
TIMEOUT_S = 60.0


class ChromiumMissing(LookupError):
    """No Chromium to print with."""


class ChromiumFailed(RuntimeError):
    """Chromium ran but did not do what it was asked."""


def find_chromium() -> str:
    """CHAOS_CHROMIUM if set (it must exist), else the first of BROWSERS on PATH."""
    named = os.environ.get("CHAOS_CHROMIUM")
    if named:
        found = shutil.which(named)
        if found is None:
            raise ChromiumMissing(f"CHAOS_CHROMIUM={named} is not an executable")
        return found
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumMissing(
        "no Chromium found for the PDF (install chromium, or set CHAOS_CHROMIUM to one)"
    )


def run_headless(
    page: Path, args: list[str], timeout_s: float = TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Chromium on one local page with `args` (--print-to-pdf=..., --screenshot=...). Its
    stderr is returned: with --enable-logging=stderr it carries the page's console."""
    browser = find_chromium()
    with tempfile.TemporaryDirectory(prefix="chaos-tui-chromium-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",  # as root (CI) Chromium refuses to start with its sandbox
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",  # a report never needs the network
            f"--user-data-dir={profile}",
            *args,
            page.resolve().as_uri(),
        ]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its helpers share its group: stopped together below
        )
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except BaseException as exc:
            # Hung (or we were interrupted): the whole group goes, while its leader, not yet
            # reaped, still holds the group's id, so no other process can be hit.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise ChromiumFailed(f"Chromium did not finish within {timeout_s:g} s") from None
            raise
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def print_pdf(page: Path, pdf: Path, mode: int = 0o644, timeout_s: float = TIMEOUT_S) -> None:
    """The page printed to `pdf` as Chromium prints it (its print CSS, no header or footer),
    through a temporary file beside it and a rename: a reader never sees half a PDF. Its
    directory must exist (no directory is made for it)."""
    fd, name = tempfile.mkstemp(prefix=f".{pdf.name}.", suffix=".pdf", dir=pdf.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        done = run_headless(
            page, [f"--print-to-pdf={tmp}", "--no-pdf-header-footer"], timeout_s=timeout_s
        )
        head = tmp.read_bytes()[:5]
        if done.returncode != 0 or head != b"%PDF-":
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ChromiumFailed(f"Chromium did not print {pdf} (exit {done.returncode}): {last}")
        tmp.chmod(mode)
        os.replace(tmp, pdf)
    finally:
        tmp.unlink(missing_ok=True)
