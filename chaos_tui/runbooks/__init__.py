"""The scenarios' runbooks: what to do when an invariant breaks. Shipped inside the package
(package data), so an installed console can show them; read with importlib.resources, which
finds them in a wheel, a zip or a checkout alike.

A scenario names its runbook by its path from the package's parent (`RUNBOOK_PREFIX` + file),
which is the same in a checkout (from the repository's root) and in an installed package (from
site-packages). Results saved before the runbooks moved name `docs/runbooks/<file>`: those
still resolve here, by their file name."""

from __future__ import annotations

from importlib import resources
from pathlib import PurePosixPath

RUNBOOK_PREFIX = "chaos_tui/runbooks/"
OLD_PREFIX = "docs/runbooks/"  # where results saved before the move point


class RunbookMissing(LookupError):
    """No runbook of that name ships with this package."""


def runbook_ref(file_name: str) -> str:
    """What a scenario puts in `runbook` for one of these files."""
    return RUNBOOK_PREFIX + file_name


def runbook_text(ref: str) -> str:
    """The Markdown of the runbook a scenario or a saved result names."""
    name = ref.removeprefix(RUNBOOK_PREFIX).removeprefix(OLD_PREFIX)
    # Only a plain file of this package: a result file is data, and must not name any path.
    if PurePosixPath(name).name != name or not name.endswith(".md"):
        raise RunbookMissing(f"{ref} is not a runbook shipped with chaos-tui")
    file = resources.files(__name__).joinpath(name)
    if not file.is_file():
        raise RunbookMissing(f"no runbook {name} in this installation of chaos-tui")
    return file.read_text(encoding="utf-8")
