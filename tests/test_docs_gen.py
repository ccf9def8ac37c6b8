"""docs/scenarios.md and docs/runbooks/README.md are made from the scenarios' own plans
(chaos_tui/docs_gen.py): the committed pages must be what the command makes now, list every
built-in scenario and every shipped runbook, and read the same on every machine."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from chaos_tui import docs_gen

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return docs_gen.render()


def test_the_committed_pages_are_what_the_command_makes_now(pages):
    stale = docs_gen.stale(ROOT, pages)
    assert not stale, (
        f"stale, not what the scenarios' plans make now: {', '.join(stale)}. Regenerate with "
        f"`{docs_gen.COMMAND}` (or `just docs`) from the repository's root, and commit it"
    )


def test_every_built_in_scenario_has_its_section_and_its_runbook_line(pages):
    page, index = pages[docs_gen.SCENARIOS_PAGE], pages[docs_gen.RUNBOOK_INDEX]
    names = list(docs_gen.builtin_scenarios())
    assert len(names) >= 7
    for name in names:
        cls = docs_gen.builtin_scenarios()[name]
        assert f"\n## `{name}`\n" in page
        assert f"[`{name}`](#{name})" in page  # the overview table links to it
        assert f"chaos-tui --headless --scenario {name}\n" in page
        assert f"just chaos scenario={name} " in page
        assert cls.hypothesis.split()[-1] in page
        assert f"[`{name}`](../../{cls.runbook})" in index
    # In listing order, as `chaos-tui list` shows them.
    found = re.findall(r"^## `(\w+)`$", page, flags=re.M)
    assert found == names


def test_every_shipped_runbook_belongs_to_a_scenario_and_is_indexed(pages):
    shipped = {
        f.name for f in resources.files("chaos_tui.runbooks").iterdir() if f.name.endswith(".md")
    }
    named = {Path(cls.runbook).name for cls in docs_gen.builtin_scenarios().values() if cls.runbook}
    assert shipped == named
    for name in shipped:
        assert f"(../../chaos_tui/runbooks/{name})" in pages[docs_gen.RUNBOOK_INDEX]


def test_the_pages_are_the_same_on_every_machine(pages, monkeypatch, tmp_path):
    # The environment's settings and state dir change nothing: the defaults are documented.
    monkeypatch.setenv("CHAOS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CHAOS_DOCKER__PROJECT", "someone-else")
    monkeypatch.setenv("CHAOS_PLATFORM__QUEUE_PROXY_1_PORT", "1234")
    assert docs_gen.render() == pages
    text = "\n".join(pages.values())
    for machine in (str(ROOT), str(Path.home()), str(tmp_path), "/tmp/", "chaos-docs-"):
        assert machine not in text
    assert not re.search(r"\b\d{4}-\d\d-\d\d\b|\b\d\d:\d\d:\d\d\b", text)  # no date, no time
    assert not re.search(r"\bpid \d+|127\.0\.0\.1:\d+", text)  # nothing a live sandbox picked
    assert "not started yet" not in text


def test_check_says_which_page_is_stale_and_the_command(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    shutil.copytree(ROOT / "docs" / "runbooks", tmp_path / "docs" / "runbooks")
    assert docs_gen.main(["--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"docs/scenarios.md is stale: run `{docs_gen.COMMAND}`" in err
    assert docs_gen.main(["--root", str(tmp_path)]) == 0
    assert docs_gen.main(["--check", "--root", str(tmp_path)]) == 0
    assert docs_gen.main(["--root", str(tmp_path / "nowhere")]) == 2
